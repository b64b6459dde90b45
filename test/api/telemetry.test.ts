// Istio's Telemetry (src/api/telemetry.ts, telemetry-select.ts, analyze-telemetry.ts): what
// validation refuses (Istio's CRD and webhook rules), which Telemetries apply to a workload, and
// what `weft analyze` says of them. Istio's own fixtures run in conformance.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { analyze, checkResource, formatProblem, warningsOf, type Resource } from '../../src/api/index.ts';
import type { Telemetry } from '../../src/api/types.ts';
import { applicableTelemetries } from '../../src/api/telemetry-select.ts';
import { telemetry, validationProblems } from './helpers.ts';

describe('Telemetry validation', () => {
  test('v1 and v1alpha1 are one schema; a full resource is accepted', () => {
    const spec = {
      selector: { matchLabels: { app: 'reviews' } },
      accessLogging: [{ providers: [{ name: 'envoy' }], filter: { expression: "response.code >= 400 || request.headers['x-debug'] == 'true'" }, match: { mode: 'SERVER' } }],
      metrics: [{ providers: [{ name: 'prometheus' }], reportingInterval: '10s', overrides: [{ match: { metric: 'REQUEST_COUNT', mode: 'CLIENT' }, tagOverrides: { request_protocol: { operation: 'REMOVE' } } }] }],
      tracing: [{ randomSamplingPercentage: 10, customTags: { env: { literal: { value: 'prod' } } } }],
    };
    for (const v of ['telemetry.istio.io/v1', 'telemetry.istio.io/v1alpha1']) assert.deepEqual(validationProblems(telemetry(spec, 'r', 'default', v)), []);
  });

  const refused: [string, Record<string, unknown>, string[]][] = [
    ['a filter that is no CEL expression (Istio parses it)', { accessLogging: [{ filter: { expression: 'response.code >=' } }] }, ['spec.accessLogging[0].filter.expression: must be a valid CEL expression: expected an expression at 16 (end of expression)']],
    ['an unterminated CEL string', { accessLogging: [{ filter: { expression: "request.path == 'x" } }] }, ['spec.accessLogging[0].filter.expression: must be a valid CEL expression: unterminated string at 16']],
    ['has() of no field', { accessLogging: [{ filter: { expression: 'has(request)' } }] }, ['spec.accessLogging[0].filter.expression: must be a valid CEL expression: invalid argument to has() macro']],
    ['a mode not in the enum', { accessLogging: [{ match: { mode: 'BOTH' } }] }, ['spec.accessLogging[0].match.mode: must be one of CLIENT_AND_SERVER, CLIENT, SERVER (got "BOTH")']],
    ['both metric and customMetric', { metrics: [{ overrides: [{ match: { metric: 'REQUEST_COUNT', customMetric: 'x' } }] }] }, ['spec.metrics[0].overrides[0].match: only one of metric, customMetric may be set (got metric, customMetric)']],
    ['a reporting interval under 1ms', { metrics: [{ reportingInterval: '500us' }] }, ['spec.metrics[0].reportingInterval: must be a valid duration greater than 1ms']],
    ['a sampling percentage over 100', { tracing: [{ randomSamplingPercentage: 101 }] }, ['spec.tracing[0].randomSamplingPercentage: must be between 0 and 100']],
    ['selector and targetRef both', { selector: { matchLabels: { app: 'a' } }, targetRef: { kind: 'Service', group: '', name: 'a' } }, ['spec: only one of selector, targetRef and targetRefs may be set (got selector, targetRef)']],
    ['a wildcard in a selector', { selector: { matchLabels: { app: 'a*' } } }, ['spec.selector.matchLabels[app]: wildcard not allowed in label value match']],
  ];
  for (const [name, spec, problems] of refused) test(`refused: ${name}`, () => assert.deepEqual(validationProblems(telemetry(spec)), problems));

  test('CEL: the expressions of Istio\'s docs parse; syntax errors do not', () => {
    const ok = [
      'response.code >= 400',
      "response.code >= 400 || xds.cluster_name == 'BlackHoleCluster' ||  xds.cluster_name == 'PassthroughCluster' ",
      "(connection.mtls && request.headers['x-log-mtls'] == 'true') || request.url_path.contains('v1beta3')",
      "!has(request.headers['x-b3-sampled'])".replace("['x-b3-sampled']", '.foo'),
      'request.path.startsWith("/api") && !request.path.endsWith(".js") && request.host in ["a", "b"]',
      "request.path.matches('^/v[0-9]+/') ? true : false",
      "r'\\d' == '\\\\d' && b'ab' == b\"ab\" && 0x1F == 31 && 3u > 2u && 1.5e3 > -2.0 && {'a': 1}['a'] == 1",
      '[1, 2, 3].exists(x, x > 2) && size(request.headers) > 0 // a comment',
    ];
    for (const e of ok) assert.deepEqual(validationProblems(telemetry({ accessLogging: [{ filter: { expression: e } }] })), [], e);
    const bad = ['a &&', '(a', "'a' 'b'", 'a.if', '1 +* 2', 'x.exists(1, true)', "'\\q'", '99999999999999999999'];
    for (const e of bad) assert.equal(validationProblems(telemetry({ accessLogging: [{ filter: { expression: e } }] })).length, 1, e);
  });
});

describe('Telemetry: what Weft applies, and the warnings for the rest', () => {
  const warnings = (spec: Record<string, unknown>) => warningsOf(checkResource(telemetry(spec, 'r', 'default'), 'x')).map(formatProblem);
  test('tracing is applied; what of it is not (formatter tags, turning off propagation, a second provider) is warned naming the field', () => {
    assert.deepEqual(warnings({ tracing: [{ randomSamplingPercentage: 1, providers: [{ name: 'otel' }], customTags: { a: { literal: { value: 'x' } } } }] }), []);
    assert.deepEqual(warnings({ tracing: [{ providers: [{ name: 'a' }, { name: 'b' }], disableContextPropagation: true, customTags: { f: { formatter: { value: '%REQ(:PATH)%' } } } }] }), [
      'Telemetry default/r: spec.tracing[0].providers: accepted, only the first provider is applied (as in Istio: one provider per mode)',
      'Telemetry default/r: spec.tracing[0].disableContextPropagation: accepted, not applied yet: the sidecars propagate the trace context (traceparent, b3)',
      'Telemetry default/r: spec.tracing[0].customTags.f.formatter: accepted, not applied yet: the tag is not written (literal, environment and header tags are)',
    ]);
  });
  test('targetRefs: a sidecar never takes such a Telemetry, and is told so', () => {
    assert.deepEqual(warnings({ targetRefs: [{ kind: 'Service', group: '', name: 'a' }] }), [
      'Telemetry default/r: spec.targetRefs: accepted, not applied: a Telemetry with a targetRef applies to Gateways, waypoints and services, never to sidecars (as in Istio); Weft has neither, so it applies to no workload',
    ]);
  });
});

describe('which Telemetries apply to a workload (Istio precedence: root, namespace, workload)', () => {
  let created = 0;
  const t = (name: string, namespace: string, spec: Record<string, unknown> = {}): Telemetry => ({ ...(checkResource(telemetry(spec, name, namespace), name) as Telemetry), created: ++created });
  const names = (list: ReturnType<typeof applicableTelemetries>) => list.map((a) => `${a.level}:${a.telemetry.metadata.namespace}/${a.telemetry.metadata.name}`);
  const mesh = t('mesh', 'istio-system');
  const ns = t('ns', 'shop');
  const later = t('later', 'shop');
  const reviews = t('reviews', 'shop', { selector: { matchLabels: { app: 'reviews' } } });
  const inRoot = t('root-selected', 'istio-system', { selector: { matchLabels: { app: 'reviews' } } });
  const refs = t('refs', 'shop', { targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }] });
  const other = t('other', 'other', { selector: { matchLabels: { app: 'reviews' } } });
  const all = [reviews, later, ns, mesh, inRoot, refs, other];

  test('root, then the oldest namespace-wide one of its namespace, then those whose selector matches', () => {
    assert.deepEqual(names(applicableTelemetries(all, { namespace: 'shop', labels: { app: 'reviews', version: 'v1' } })), ['root:istio-system/mesh', 'namespace:shop/ns', 'workload:shop/reviews']);
  });
  test('a selector that does not match, another namespace\'s, a root namespace selector and targetRefs apply to no one else', () => {
    assert.deepEqual(names(applicableTelemetries(all, { namespace: 'shop', labels: { app: 'ratings' } })), ['root:istio-system/mesh', 'namespace:shop/ns']);
    assert.deepEqual(names(applicableTelemetries(all, { namespace: 'web', labels: { app: 'reviews' } })), ['root:istio-system/mesh']);
  });
  test('in the root namespace: its namespace-wide one once, and its own selected ones', () => {
    assert.deepEqual(names(applicableTelemetries(all, { namespace: 'istio-system', labels: { app: 'reviews' } })), ['root:istio-system/mesh', 'workload:istio-system/root-selected']);
  });
  test('none at all: nothing applies', () => {
    assert.deepEqual(applicableTelemetries(undefined, { namespace: 'shop', labels: {} }), []);
  });
});

describe('weft analyze for Telemetry (Istio\'s codes)', () => {
  const report = (objects: object[], workloads?: { namespace: string; labels: Record<string, string>; name?: string }[]) =>
    analyze(objects.map((o, i) => checkResource(o, `object ${i}`)) as Resource[], workloads ? { services: new Map(), workloads } : undefined)
      .filter((m) => m.code.startsWith('IST'))
      .map((m) => `${m.level} ${m.code} ${m.resource} ${m.path}: ${m.message}`);
  const meshConfig = (mesh: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' }, data: { mesh } });

  test('IST0157: an access log entry without providers, with no default provider, is ignored', () => {
    const tel = telemetry({ accessLogging: [{ filter: { expression: 'true' } }, { disabled: true }, { providers: [{ name: 'envoy' }] }] }, 'r', 'default');
    assert.deepEqual(report([tel]), ['Warning IST0157 Telemetry default/r spec.accessLogging[0].providers: The Telemetry r in namespace "default" with empty providers will be ignored.']);
    assert.deepEqual(report([tel, meshConfig('defaultProviders:\n  accessLogging: [envoy]\n')]), []);
  });
  test('IST0160: two Telemetries without a selector in one namespace', () => {
    const lines = report([telemetry({}, 'b', 'shop'), telemetry({}, 'a', 'shop'), telemetry({ selector: { matchLabels: { app: 'x' } } }, 'c', 'shop'), telemetry({}, 'd', 'web')]);
    assert.deepEqual(lines, [
      'Error IST0160 Telemetry shop/b spec: The Telemetries [a b] in namespace "shop" have no workload selector, which can lead to undefined behavior.',
      'Error IST0160 Telemetry shop/a spec: The Telemetries [a b] in namespace "shop" have no workload selector, which can lead to undefined behavior.',
    ]);
  });
  test('live: IST0101 for a selector that selects no workload, IST0159 for a workload two select', () => {
    const workloads = [{ namespace: 'shop', labels: { app: 'reviews', version: 'v1' }, name: 'shop/reviews-v1' }];
    const lines = report([telemetry({ selector: { matchLabels: { app: 'reviews' } } }, 'a', 'shop'), telemetry({ selector: { matchLabels: { version: 'v1' } } }, 'b', 'shop'), telemetry({ selector: { matchLabels: { app: 'cart' } } }, 'c', 'shop')], workloads);
    assert.deepEqual(lines, [
      'Error IST0101 Telemetry shop/c spec.selector: Referenced selector not found: "app=cart"',
      'Error IST0159 Telemetry shop/a spec.selector: The Telemetries [a b] in namespace "shop" select the same workload pod "reviews-v1", which can lead to undefined behavior.',
      'Error IST0159 Telemetry shop/b spec.selector: The Telemetries [a b] in namespace "shop" select the same workload pod "reviews-v1", which can lead to undefined behavior.',
    ]);
  });
});
