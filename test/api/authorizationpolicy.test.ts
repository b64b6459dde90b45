// AuthorizationPolicy: Istio's schema, CEL and webhook rules, each error on its field; what
// `weft apply` refuses (CUSTOM) and warns of (targetRef) in a valid one (api/support.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkResource, warningsOf } from '../../src/api/index.ts';
import { assertAccepted, rejection, validationProblems, type Spec } from './helpers.ts';

const policy = (spec: Spec, apiVersion = 'security.istio.io/v1', annotations?: Record<string, string>): Record<string, unknown> => ({
  apiVersion,
  kind: 'AuthorizationPolicy',
  metadata: { name: 'p', namespace: 'foo', ...(annotations ? { annotations } : {}) },
  spec,
});
/** The fields the problems of `spec` are on, sorted. */
const paths = (spec: Spec, annotations?: Record<string, string>) =>
  validationProblems(policy(spec, undefined, annotations))
    .map((p) => p.slice(0, p.indexOf(': ')))
    .sort();

describe('AuthorizationPolicy: accepted as Istio accepts it', () => {
  test('v1 and v1beta1; every action; rules of every kind; wildcards and path templates', () => {
    for (const v of ['security.istio.io/v1', 'security.istio.io/v1beta1']) assertAccepted(policy({}, v));
    assertAccepted(policy({ action: 'DENY', rules: [{}] }));
    assertAccepted(policy({ action: 'AUDIT', rules: [{ to: [{ operation: { ports: ['8080'] } }] }] }));
    assertAccepted(policy({ action: 'CUSTOM', provider: { name: 'ext' }, rules: [{ to: [{ operation: { paths: ['/admin/*'] } }], when: [{ key: 'request.headers[x-a]', values: ['1'] }] }] }));
    assertAccepted(
      policy({
        selector: { matchLabels: { app: 'httpbin' } },
        rules: [
          {
            from: [{ source: { serviceAccounts: ['sa', 'ns/sa'], ipBlocks: ['10.0.0.0/8', '::1'], trustDomains: ['td-*', '*'] } }],
            to: [{ operation: { paths: ['/a/{*}/b', '/x/{**}', '*.png'], methods: ['GET'], notPorts: ['0', '65535'] } }],
            when: [
              { key: 'request.auth.claims[groups][admin]', values: ['x'] },
              { key: 'source.serviceAccount', values: ['ns/sa'] },
              { key: 'destination.port', notValues: ['80'] },
              { key: 'experimental.envoy.filters.a.b[c]', values: ['[v]'] },
            ],
          },
        ],
      }),
    );
    assertAccepted(policy({ targetRefs: [{ kind: 'Service', name: 's' }, { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'g' }] }));
  });
});

describe('AuthorizationPolicy: rejected, naming the field', () => {
  test('the shape: action enum, unknown fields, limits', () => {
    assert.deepEqual(paths({ action: 'LOG' }), ['spec.action']);
    assert.deepEqual(paths({ rules: [{ from: [{ source: { users: ['x'], principals: ['p'] } }] }] }), ['spec.rules[0].from[0].source.users']);
    assert.deepEqual(paths({ rules: [{ from: [{ source: { serviceAccounts: Array.from({ length: 17 }, (_, i) => `sa${i}`) } }] }] }), ['spec.rules[0].from[0].source.serviceAccounts']);
    assert.deepEqual(paths({ rules: [{ when: [{ values: ['x'] }] }] }), ['spec.rules[0].when[0].key']);
  });

  test('istio.io/dry-run: a boolean, on ALLOW and DENY policies only', () => {
    assert.deepEqual(paths({}, { 'istio.io/dry-run': 'true' }), []);
    assert.deepEqual(paths({ action: 'DENY', rules: [{}] }, { 'istio.io/dry-run': 'False' }), []);
    assert.deepEqual(paths({}, { 'istio.io/dry-run': 'foo' }), ['metadata.annotations[istio.io/dry-run]']);
    assert.deepEqual(paths({ action: 'AUDIT', rules: [{}] }, { 'istio.io/dry-run': 'true' }), ['metadata.annotations[istio.io/dry-run]']);
    assert.deepEqual(paths({ action: 'CUSTOM', provider: { name: 'x' }, rules: [{}] }, { 'istio.io/dry-run': 'true' }), ['metadata.annotations[istio.io/dry-run]']);
  });

  test('one way to pick workloads; targetRefs Istio allows', () => {
    assert.deepEqual(paths({ selector: { matchLabels: { a: 'b' } }, targetRefs: [{ kind: 'Service', name: 's' }] }), ['spec']);
    assert.deepEqual(paths({ targetRef: { kind: 'Service', name: 's', namespace: 'other' } }), ['spec.targetRef.namespace']);
    assert.deepEqual(paths({ targetRefs: [{ kind: 'Deployment', group: 'apps', name: 'd' }] }), ['spec.targetRefs[0]']);
    assert.deepEqual(paths({ selector: { matchLabels: { app: 'a*' } } }), ['spec.selector.matchLabels[app]']);
  });

  test('actions: CUSTOM needs rules and a provider, and cannot match on identities; provider only with CUSTOM; DENY needs rules', () => {
    assert.deepEqual(paths({ action: 'CUSTOM', provider: { name: 'x' } }), ['spec.rules']);
    assert.deepEqual(paths({ action: 'CUSTOM', rules: [{}] }), ['spec.provider.name']);
    assert.deepEqual(paths({ action: 'DENY', rules: [] }), ['spec.rules']);
    assert.deepEqual(paths({ provider: { name: 'x' }, rules: [{}] }), ['spec.provider']);
    assert.deepEqual(
      paths({ action: 'CUSTOM', provider: { name: 'x' }, rules: [{ from: [{ source: { principals: ['a'], ipBlocks: ['1.2.3.4'] } }], when: [{ key: 'request.auth.claims[iss]', values: ['i'] }] }] }),
      ['spec.rules[0].from[0].source.principals', 'spec.rules[0].when[0].key'],
    );
  });

  test('sources: not empty, serviceAccounts alone, addresses, service accounts and trust domains well-formed', () => {
    assert.deepEqual(paths({ rules: [{ from: [] }] }), ['spec.rules[0].from']);
    assert.deepEqual(paths({ rules: [{ from: [{}] }] }), ['spec.rules[0].from[0].source']);
    assert.deepEqual(paths({ rules: [{ from: [{ source: {} }] }] }), ['spec.rules[0].from[0].source']);
    assert.deepEqual(paths({ rules: [{ from: [{ source: { notServiceAccounts: ['a'], namespaces: ['b'] } }] }] }), ['spec.rules[0].from[0].source']);
    assert.deepEqual(
      paths({ rules: [{ from: [{ source: { ipBlocks: ['1.2.3.4/33', 'x'], serviceAccounts: ['a/b/c', 'a*', '/sa'], trustDomains: ['a*b', 'td/x'], principals: [''] } }] }] }),
      [
        // principals beside serviceAccounts (the CEL rule on the source)
        'spec.rules[0].from[0].source',
        'spec.rules[0].from[0].source.ipBlocks[0]',
        'spec.rules[0].from[0].source.ipBlocks[1]',
        'spec.rules[0].from[0].source.principals[0]',
        'spec.rules[0].from[0].source.serviceAccounts[0]',
        'spec.rules[0].from[0].source.serviceAccounts[1]',
        'spec.rules[0].from[0].source.serviceAccounts[2]',
        'spec.rules[0].from[0].source.trustDomains[0]',
        'spec.rules[0].from[0].source.trustDomains[1]',
      ],
    );
  });

  test('operations: not empty, ports numbers, path templates Envoy can match', () => {
    assert.deepEqual(paths({ rules: [{ to: [] }] }), ['spec.rules[0].to']);
    assert.deepEqual(paths({ rules: [{ to: [{ operation: {} }] }] }), ['spec.rules[0].to[0].operation']);
    assert.deepEqual(
      paths({ rules: [{ to: [{ operation: { ports: ['http', '70000'], paths: ['/{**}/a/{*}', '/a{b}', '/{*}/a b'], notMethods: [''] } }] }] }),
      [
        'spec.rules[0].to[0].operation.notMethods[0]',
        'spec.rules[0].to[0].operation.paths[0]',
        'spec.rules[0].to[0].operation.paths[1]',
        'spec.rules[0].to[0].operation.paths[2]',
        'spec.rules[0].to[0].operation.ports[0]',
        'spec.rules[0].to[0].operation.ports[1]',
      ],
    );
  });

  test('conditions: known keys, key[name] forms, values checked by key', () => {
    const when = (...w: Spec[]) => paths({ rules: [{ when: w }] });
    assert.deepEqual(when({ key: 'source.user', values: ['x'] }), ['spec.rules[0].when[0].key']);
    assert.deepEqual(when({ key: 'destination.namespace', values: ['x'] }), ['spec.rules[0].when[0].key']);
    assert.deepEqual(when({ key: 'request.headers', values: ['x'] }), ['spec.rules[0].when[0].key']);
    assert.deepEqual(when({ key: 'request.headers[x]' }), ['spec.rules[0].when[0]']);
    assert.deepEqual(when({ key: 'source.serviceAccount', values: Array.from({ length: 17 }, (_, i) => `sa${i}`) }), ['spec.rules[0].when[0].values']);
    assert.deepEqual(when({ key: 'source.ip', values: ['1.2.3.999'] }, { key: 'destination.port', notValues: ['-1'] }, { key: 'source.trustDomain', values: ['a*b*'] }), [
      'spec.rules[0].when[0].values[0]',
      'spec.rules[0].when[1].notValues[0]',
      'spec.rules[0].when[2].values[0]',
    ]);
  });
});

test('weft apply takes every action: ALLOW, DENY and AUDIT (RBAC) and CUSTOM (its extension provider decides)', () => {
  for (const action of [undefined, 'ALLOW', 'DENY', 'AUDIT']) checkResource(policy({ ...(action ? { action } : {}), rules: [{}] }), 'request item 0');
  checkResource(policy({}), 'request item 0'); // allow-nothing
  const custom = checkResource(policy({ action: 'CUSTOM', provider: { name: 'opa' }, rules: [{}] }), 'request item 0');
  assert.equal((custom.spec as { action: string }).action, 'CUSTOM');
  // Without its provider it is still refused, naming the field.
  assert.deepEqual(rejection(policy({ action: 'CUSTOM', rules: [{}] })).fields.map((f) => f.path), ['spec.provider.name']);
  // An invalid one hears what is wrong with it first.
  assert.deepEqual(rejection(policy({ action: 'LOG' })).fields.map((f) => f.path), ['spec.action']);
});

test('a targetRef (or targetRefs) is accepted with a warning naming it: the policy applies to gateways and waypoints, never to a sidecar (as in Istio)', () => {
  const ref = { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'g' };
  for (const [spec, path] of [[{ targetRef: ref }, 'spec.targetRef'], [{ targetRefs: [ref] }, 'spec.targetRefs']] as const) {
    const warnings = warningsOf(checkResource(policy({ ...spec, rules: [{}] }), 'request item 0'));
    assert.deepEqual(warnings.map((w) => `${w.resource}: ${w.path}`), [`AuthorizationPolicy foo/p: ${path}`]);
    assert.match(warnings[0]!.message, /^accepted, not applied: a policy with a targetRef applies to Gateways and waypoints, never to sidecars \(as in Istio\); Weft has neither, so it applies to no workload$/);
  }
  assert.deepEqual(warningsOf(checkResource(policy({ selector: { matchLabels: { app: 'a' } }, rules: [{}] }), 'request item 0')), []);
});
