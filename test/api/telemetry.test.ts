// Istio's Telemetry (src/api/telemetry.ts, telemetry-select.ts, analyze-telemetry.ts): what
// validation refuses (Istio's CRD and webhook rules), which Telemetries apply to a workload, and
// what `weft analyze` says of them. Istio's own fixtures run in conformance.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { analyze, checkResource, formatProblem, warningsOf, type Resource } from '../../src/api/index.ts';
import type { Telemetry } from '../../src/api/types.ts';
import { applicableTelemetries } from '../../src/api/telemetry-select.ts';
import { telemetryProviderWarnings } from '../../src/api/telemetry-support.ts';
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
    ['a filter without an expression (Istio parses "", which is no CEL)', { accessLogging: [{ filter: {} }] }, ['spec.accessLogging[0].filter.expression: must be a valid CEL expression: expected an expression at 0 (end of expression)']],
    ['has() of no field', { accessLogging: [{ filter: { expression: 'has(request)' } }] }, ['spec.accessLogging[0].filter.expression: must be a valid CEL expression: invalid argument to has() macro']],
    ['a mode not in the enum', { accessLogging: [{ match: { mode: 'BOTH' } }] }, ['spec.accessLogging[0].match.mode: must be one of CLIENT_AND_SERVER, CLIENT, SERVER (got "BOTH")']],
    ['both metric and customMetric', { metrics: [{ overrides: [{ match: { metric: 'REQUEST_COUNT', customMetric: 'x' } }] }] }, ['spec.metrics[0].overrides[0].match: only one of metric, customMetric may be set (got metric, customMetric)']],
    ['a reporting interval under 1ms', { metrics: [{ reportingInterval: '500us' }] }, ['spec.metrics[0].reportingInterval: must be a valid duration greater than 1ms']],
    ['a sampling percentage over 100', { tracing: [{ randomSamplingPercentage: 101 }] }, ['spec.tracing[0].randomSamplingPercentage: must be between 0 and 100']],
    ['selector and targetRef both', { selector: { matchLabels: { app: 'a' } }, targetRef: { kind: 'Service', group: '', name: 'a' } }, ['spec: only one of selector, targetRef and targetRefs may be set (got selector, targetRef)']],
    ['an empty custom tag name', { tracing: [{ customTags: { '': { literal: { value: 'x' } } } }] }, ['spec.tracing[0].customTags[]: tag name may not be empty']],
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
      `a.if == a.for() && --1 == 1 && !!true && a ? b : c ? d : e && -9223372036854775808 < 0 && """triple "quoted""" != '''x''' && "\\u00e9\\101\\x41" == "éAA" && !has(.a.b)`,
    ];
    for (const e of ok) assert.deepEqual(validationProblems(telemetry({ accessLogging: [{ filter: { expression: e } }] })), [], e);
    const bad = ['a &&', '(a', "'a' 'b'", 'if', 'a.true', 'while(1)', '1 +* 2', 'x.exists(1, true)', "'\\q'", '99999999999999999999', '9223372036854775808', "r'\\''", 'a = b', 'a & b', '1.', '', '!-1', 'a ? b ? c : d : e'];
    for (const e of bad) assert.equal(validationProblems(telemetry({ accessLogging: [{ filter: { expression: e } }] })).length, 1, e);
  });
});

describe('Telemetry: what Weft applies, and the warnings for the rest', () => {
  const warnings = (spec: Record<string, unknown>) => warningsOf(checkResource(telemetry(spec, 'r', 'default'), 'x')).map(formatProblem);
  test('tracing is applied; what of it is not (formatter tags, a second provider) is warned naming the field', () => {
    assert.deepEqual(warnings({ tracing: [{ randomSamplingPercentage: 1, providers: [{ name: 'otel' }], customTags: { a: { literal: { value: 'x' } } }, useRequestIdForTraceSampling: false, disableContextPropagation: true }] }), []);
    assert.deepEqual(warnings({ tracing: [{ providers: [{ name: 'a' }, { name: 'b' }], disableContextPropagation: true, customTags: { f: { formatter: { value: '%REQ(:PATH)%' } } } }] }), [
      'Telemetry default/r: spec.tracing[0].providers: accepted, only the first provider is applied (as in Istio: one provider per mode)',
      'Telemetry default/r: spec.tracing[0].customTags.f.formatter: accepted, not applied yet: the tag is not written (literal, environment and header tags are)',
    ]);
  });
  test('metrics are applied: no warning for providers, match, disabled or tagOverrides; reportingInterval, a custom metric Weft has not, and an expression the sidecars cannot evaluate are named', () => {
    assert.deepEqual(
      warnings({
        metrics: [
          {
            providers: [{ name: 'prometheus' }],
            overrides: [
              { match: { metric: 'REQUEST_COUNT', mode: 'SERVER' }, disabled: true },
              { match: { metric: 'ALL_METRICS' }, disabled: false, tagOverrides: { request_protocol: { operation: 'REMOVE' }, user: { operation: 'UPSERT', value: "request.headers['x-user']" } } },
              { match: { customMetric: 'requests_total', mode: 'CLIENT' }, tagOverrides: { host: { value: 'request.host' } } },
            ],
          },
        ],
      }),
      [],
    );
    assert.deepEqual(warnings({ metrics: [{ reportingInterval: '5s', overrides: [{ match: { customMetric: 'my_metric' } }] }] }), [
      "Telemetry default/r: spec.metrics[0].reportingInterval: accepted, not applied: it has no meaning for Prometheus, which the sidecars export to: a scrape reads the counters as they are, an open connection's bytes counted up to the scrape itself",
      'Telemetry default/r: spec.metrics[0].overrides[0].match.customMetric: accepted, not applied: Weft\'s sidecars report Istio\'s standard metrics only (requests_total, request_duration_milliseconds, request_bytes, response_bytes, tcp_connections_opened_total, tcp_connections_closed_total, tcp_sent_bytes_total, tcp_received_bytes_total, request_messages_total, response_messages_total); there is no "my_metric" to change',
    ]);
    const bad = warnings({ metrics: [{ overrides: [{ tagOverrides: { response_code: { value: 'response.code +' } } }] }] });
    assert.equal(bad.length, 1);
    assert.match(bad[0]!, /^Telemetry default\/r: spec\.metrics\[0\]\.overrides\[0\]\.tagOverrides\.response_code\.value: not a CEL expression \(.+\): as Envoy's stats filter does, a standard label is then left out and any other is not added$/);
    const w = warnings({ metrics: [{ overrides: [{ tagOverrides: { peer: { value: 'node.id' } } }] }] });
    assert.equal(w.length, 1);
    assert.match(w[0]!, /^Telemetry default\/r: spec\.metrics\[0\]\.overrides\[0\]\.tagOverrides\.peer\.value: accepted, not applied: Weft's sidecars cannot evaluate it \(unknown attribute node\.id .*\); the label is left as it is$/);
  });
  test('with the mesh config: a metrics provider that is not a Prometheus one, or that the mesh does not have, is named', () => {
    const t = checkResource(telemetry({ metrics: [{ providers: [{ name: 'prometheus' }, { name: 'stackdriver' }, { name: 'nope' }, { name: 'prom2' }] }] }, 'r', 'default'), 'x') as Telemetry;
    assert.deepEqual(telemetryProviderWarnings(t, { extensionProviders: [{ name: 'prom2', prometheus: {} }] }), [
      'Telemetry default/r: spec.metrics[0].providers[1]: provider "stackdriver" is a stackdriver provider: Weft\'s sidecars export metrics to Prometheus only (/stats/prometheus), so it gets none; where the providers in scope name no prometheus provider, the workloads report no Istio metrics (as in Istio, where only a prometheus provider makes the stats filter)',
      'Telemetry default/r: spec.metrics[0].providers[2]: provider "nope" is not among the mesh config\'s extensionProviders (nor Istio\'s built-in prometheus, stackdriver): it reports nothing, as in Istio; where the providers in scope name no prometheus provider, the workloads report no Istio metrics',
    ]);
  });
  test('accessLogging is applied: no warning, but for a filter the sidecars cannot evaluate (every exchange is then logged)', () => {
    assert.deepEqual(warnings({ accessLogging: [{ providers: [{ name: 'envoy' }], disabled: false, match: { mode: 'CLIENT' }, filter: { expression: "response.code >= 400 && request.headers['x'] == 'y'" } }] }), []);
    assert.deepEqual(warnings({ accessLogging: [{ filter: { expression: 'response.code >= 400' } }] }), [
      'Telemetry default/r: spec.accessLogging[0].filter: accepted, not applied: a filter applies to the providers its own entry names, and this entry names none (the providers it inherits keep their own filter, as in Istio); name the providers beside it',
    ]);
    assert.deepEqual(warnings({ accessLogging: [{ providers: [{ name: 'envoy' }], filter: { expression: 'response.flags != 0' } }] }), [
      "Telemetry default/r: spec.accessLogging[0].filter.expression: accepted, not applied: Weft's sidecars cannot evaluate it (unknown attribute response.flags (supported: request.path, request.url_path, request.host, request.method, request.headers, request.referer, request.useragent, request.id, request.protocol, request.query, request.size, request.duration, response.code, response.code_details, response.headers, response.size, source.address, source.port, destination.address, destination.port, connection.mtls, connection.requested_server_name, connection.uri_san_peer_certificate, connection.uri_san_local_certificate, upstream.address, upstream.port, upstream.uri_san_peer_certificate, xds.cluster_name, xds.route_name)); these providers log every exchange",
    ]);
  });
  test('with the mesh config (weft apply against a control plane): providers the mesh does not have, or that log nothing, are named', () => {
    const t = checkResource(telemetry({ accessLogging: [{ providers: [{ name: 'ENVOY' }, { name: 'otel' }, { name: 'prometheus' }, { name: 'files' }] }] }, 'r', 'default'), 'x') as Telemetry;
    assert.deepEqual(telemetryProviderWarnings(t, { extensionProviders: [{ name: 'files', envoyFileAccessLog: { path: '/tmp/a.log' } }] }), [
      'Telemetry default/r: spec.accessLogging[0].providers[1]: provider "otel" is not among the mesh config\'s extensionProviders (nor Istio\'s built-in envoy, prometheus, stackdriver): it logs nothing, as in Istio',
      'Telemetry default/r: spec.accessLogging[0].providers[2]: provider "prometheus" is a prometheus provider: Weft\'s sidecars write access logs to files only (envoyFileAccessLog), so it logs nothing',
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
  test('two that select one workload (IST0159) both apply, the older first, as in Istio 1.21 and later', () => {
    const byVersion = t('by-version', 'shop', { selector: { matchLabels: { version: 'v1' } } });
    assert.deepEqual(names(applicableTelemetries([...all, byVersion], { namespace: 'shop', labels: { app: 'reviews', version: 'v1' } })), ['root:istio-system/mesh', 'namespace:shop/ns', 'workload:shop/reviews', 'workload:shop/by-version']);
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
  test("IST0133: Istio's webhook warnings, more than one tracing entry or tracing provider", () => {
    assert.deepEqual(report([telemetry({ tracing: [{ providers: [{ name: 'a' }, { name: 'b' }] }, {}] }, 'r', 'default')]), [
      'Warning IST0133 Telemetry default/r spec.tracing: Schema validation warning: multiple tracing is not currently supported',
      'Warning IST0133 Telemetry default/r spec.tracing[0].providers: Schema validation warning: multiple providers is not currently supported',
    ]);
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

test('weft apply names a Telemetry tracing provider that reports no spans: not in the mesh config, or not an opentelemetry provider', () => {
  const t = checkResource({ apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { name: 't', namespace: 'foo' }, spec: { tracing: [{ providers: [{ name: 'OTEL' }] }, { providers: [{ name: 'zip' }] }, { providers: [{ name: 'gone' }] }] } }, 't') as Telemetry;
  assert.deepEqual(telemetryProviderWarnings(t, { extensionProviders: [{ name: 'otel', opentelemetry: { service: 'o.example', port: 4318, http: {} } }, { name: 'zip', zipkin: { service: 'z.example', port: 9411 } }] }), [
    'Telemetry foo/t: spec.tracing[1].providers[0]: provider "zip" is a zipkin provider: Weft\'s sidecars report spans to opentelemetry providers only, so the workloads it applies to report none',
    'Telemetry foo/t: spec.tracing[2].providers[0]: provider "gone" is not among the mesh config\'s extensionProviders: the workloads it applies to report no spans, as in Istio',
  ]);
});

test('a filter nested past 250 levels by repeated operators, member or index chains, or operator chains is refused at apply, never a stack overflow later (review defect)', () => {
  const deep = ['!'.repeat(5000) + 'true', `request.headers${'.a'.repeat(5000)} == "x"`, `request.path${'[0]'.repeat(3000)} == "x"`, Array(3000).fill('true').join(' && '), '-'.repeat(4000) + '1 == 1'];
  for (const expression of deep) {
    const r = telemetry({ accessLogging: [{ providers: [{ name: 'envoy' }], filter: { expression } }] }, 'deep');
    const problems = validationProblems(r);
    assert.equal(problems.length, 1, expression.slice(0, 40));
    assert.match(problems[0]!, /filter\.expression: must be a valid CEL expression: expression nested too deep/);
    assert.doesNotThrow(() => warningsOf(r as unknown as Resource));
  }
  // At the limit's safe side a chain still parses (Istio's docs' filters are a few levels deep).
  const r = telemetry({ accessLogging: [{ providers: [{ name: 'envoy' }], filter: { expression: Array(100).fill('response.code == 1').join(' || ') } }] }, 'ok');
  assert.deepEqual(validationProblems(r), []);
});
