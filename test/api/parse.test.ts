import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkResource, ConfigError, parseConfig, SUPPORTED_KINDS } from '../../src/api/index.ts';

const CANARY = `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: my-backend-service}
spec:
  hosts: [my-backend-service]
  http:
  - route:
    - destination: {host: my-backend-service, subset: v1}
      weight: 90
    - destination: {host: my-backend-service, subset: v2}
      weight: 10
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: my-backend-service}
spec:
  host: my-backend-service
  subsets:
  - name: v1
    labels: {app: my-backend-service, version: v1}
  - name: v2
    labels: {app: my-backend-service, version: v2}
`;

const GOOD_VS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: good}
spec:
  hosts: [good]
  http:
  - route:
    - destination: {host: good}
`;

function parseError(text: string, source = 'x.yaml'): ConfigError {
  try {
    parseConfig(text, source);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected parseConfig to throw');
}

describe('parseConfig', () => {
  test('accepts the canary example and normalises it', () => {
    const resources = parseConfig(CANARY, 'examples/canary/mesh.yaml');
    assert.deepEqual(resources, [
      {
        apiVersion: 'networking.istio.io/v1beta1',
        kind: 'VirtualService',
        metadata: { name: 'my-backend-service', namespace: 'default' },
        spec: {
          hosts: ['my-backend-service'],
          http: [
            {
              route: [
                { destination: { host: 'my-backend-service', subset: 'v1' }, weight: 90 },
                { destination: { host: 'my-backend-service', subset: 'v2' }, weight: 10 },
              ],
            },
          ],
        },
      },
      {
        apiVersion: 'networking.istio.io/v1beta1',
        kind: 'DestinationRule',
        metadata: { name: 'my-backend-service', namespace: 'default' },
        spec: {
          host: 'my-backend-service',
          subsets: [
            { name: 'v1', labels: { app: 'my-backend-service', version: 'v1' } },
            { name: 'v2', labels: { app: 'my-backend-service', version: 'v2' } },
          ],
        },
      },
    ]);
  });

  test('reduces metadata to name, namespace, labels and annotations', () => {
    const [r] = parseConfig(
      `apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: reviews
  namespace: shop
  uid: 0faa11c9
  resourceVersion: "376042269"
  labels: {team: a}
  annotations: {note: hello}
spec: {host: reviews}
status: {}
`,
      'x.yaml',
    );
    assert.deepEqual(r?.metadata, { name: 'reviews', namespace: 'shop', labels: { team: 'a' }, annotations: { note: 'hello' } });
    assert.equal(r?.apiVersion, 'networking.istio.io/v1alpha3');
  });

  test('skips empty documents and expands a List', () => {
    const list = `---
# only a comment
---
apiVersion: v1
kind: List
items:
- apiVersion: networking.istio.io/v1
  kind: DestinationRule
  metadata: {name: a}
  spec: {host: a}
- apiVersion: networking.istio.io/v1
  kind: DestinationRule
  metadata: {name: b}
  spec: {host: b}
---
`;
    assert.deepEqual(
      parseConfig(list, 'x.yaml').map((r) => r.metadata.name),
      ['a', 'b'],
    );
    assert.deepEqual(parseConfig('', 'empty.yaml'), []);
  });

  test('reads "x:" before "," or "]" in a flow list as kubectl does: one string, not a key', () => {
    const se = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: a}
spec:
  hosts: [db.example.com]
  addresses: [2001:db8::, 10.0.0.1, fe80::]
  exportTo: [shop: x, {other:}]
`;
    // A ": " still makes a key, and a flow mapping stays a mapping.
    const err = parseError(se);
    assert.deepEqual(err.fields.map((f) => `${f.path}: ${f.message}`), ['spec.exportTo[0]: must be a string, not an object', 'spec.exportTo[1]: must be a string, not an object']);
    const r = parseConfig(se.replace(/ {2}exportTo.*\n/, ''), 'x.yaml')[0];
    assert.deepEqual((r?.spec as { addresses: unknown }).addresses, ['2001:db8::', '10.0.0.1', 'fe80::']);
  });

  test('reads JSON', () => {
    const json = JSON.stringify({
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'a' },
      spec: { host: 'a' },
    });
    assert.equal(parseConfig(json, 'x.json')[0]?.kind, 'DestinationRule');
  });

  test('reports YAML syntax errors with line and column', () => {
    const err = parseError('apiVersion: networking.istio.io/v1\nkind: VirtualService\nspec: [a, b\nfoo: 1\n', 'examples/x.yaml');
    assert.equal(
      err.message,
      'examples/x.yaml: YAML syntax error at line 4, column 1: Flow sequence in block collection must be sufficiently indented and end with a ]',
    );
    assert.equal(err.resource, undefined);
  });

  test('reports duplicate keys as YAML errors', () => {
    const err = parseError('kind: VirtualService\nkind: DestinationRule\n');
    assert.equal(err.message, 'x.yaml: YAML syntax error at line 2, column 1: Map keys must be unique');
  });

  test('rejects a kind it does not read', () => {
    const err = parseError(`${GOOD_VS}---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec: {}
`);
    assert.equal(
      err.message,
      'x.yaml document 2: kind Gateway (networking.istio.io/v1) is not supported; Weft reads VirtualService, DestinationRule, ServiceEntry, WorkloadEntry and Sidecar (networking.istio.io/v1, v1beta1, v1alpha3); PeerAuthentication, AuthorizationPolicy and RequestAuthentication (security.istio.io/v1, v1beta1); LocalRateLimit (ratelimit.weft.io/v1alpha1); HTTPRoute and ReferenceGrant (gateway.networking.k8s.io/v1, v1beta1); GRPCRoute (gateway.networking.k8s.io/v1); Telemetry (telemetry.istio.io/v1, v1alpha1); ConfigMap (v1)',
    );
  });

  test('rejects an unsupported API version of a known kind', () => {
    const err = parseError(GOOD_VS.replace('networking.istio.io/v1', 'networking.istio.io/v2'));
    assert.equal(
      err.message,
      'x.yaml document 1: kind VirtualService (networking.istio.io/v2) is not supported; Weft reads VirtualService, DestinationRule, ServiceEntry, WorkloadEntry and Sidecar (networking.istio.io/v1, v1beta1, v1alpha3); PeerAuthentication, AuthorizationPolicy and RequestAuthentication (security.istio.io/v1, v1beta1); LocalRateLimit (ratelimit.weft.io/v1alpha1); HTTPRoute and ReferenceGrant (gateway.networking.k8s.io/v1, v1beta1); GRPCRoute (gateway.networking.k8s.io/v1); Telemetry (telemetry.istio.io/v1, v1alpha1); ConfigMap (v1)',
    );
  });

  test('rejects a document without apiVersion or kind', () => {
    const err = parseError(`${GOOD_VS}---\nmetadata: {name: x}\n`);
    assert.equal(err.message, 'x.yaml document 2: apiVersion: required\nx.yaml document 2: kind: required');
    assert.deepEqual(err.fields.map((f) => f.path), ['apiVersion', 'kind']);
  });

  test('rejects a document that is not a mapping', () => {
    const err = parseError('- a\n- b\n');
    assert.equal(err.message, 'x.yaml document 1: must be a mapping with apiVersion, kind, metadata and spec, not a list');
  });

  test('rejects a missing name', () => {
    const err = parseError(GOOD_VS.replace('metadata: {name: good}', 'metadata: {namespace: shop}'));
    assert.equal(err.message, 'x.yaml document 1: VirtualService: metadata.name: required');
    assert.equal(err.resource, undefined);
  });

  test('rejects an invalid name and namespace', () => {
    const err = parseError(GOOD_VS.replace('metadata: {name: good}', 'metadata: {name: Good_One, namespace: a.b}'));
    assert.equal(
      err.message,
      [
        'x.yaml document 1: VirtualService: metadata.name: must be a DNS-1123 subdomain: lower-case letters, digits, "-" and ".", starting and ending with a letter or digit, at most 253 characters',
        'x.yaml document 1: VirtualService: metadata.namespace: must be a DNS-1123 label: at most 63 lower-case letters, digits or "-", starting and ending with a letter or digit',
      ].join('\n'),
    );
  });

  test('rejects invalid labels, naming the resource', () => {
    const err = parseError(GOOD_VS.replace('metadata: {name: good}', 'metadata: {name: good, labels: {app: "a b"}}'));
    assert.equal(
      err.message,
      'VirtualService default/good: metadata.labels[app]: invalid label value "a b": must be empty or at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit',
    );
  });

  test('rejects unknown top-level fields', () => {
    const err = parseError(`${GOOD_VS}extra: 1\n`);
    assert.equal(err.message, 'VirtualService default/good: extra: unknown field');
  });

  test('is all or nothing: one bad document fails the whole file', () => {
    const bad = GOOD_VS.replace('name: good', 'name: bad').replace('- destination: {host: good}', '- destination: {host: good}\n      weight: 150');
    const err = parseError(`${GOOD_VS}---\n${bad}---\n${CANARY}`);
    assert.equal(err.message, 'VirtualService default/bad: spec.http[0].route[0].weight: must be between 0 and 100');
    assert.equal(err.resource, 'VirtualService default/bad');
    assert.deepEqual(err.fields, [
      { resource: 'VirtualService default/bad', path: 'spec.http[0].route[0].weight', message: 'must be between 0 and 100' },
    ]);
  });

  test('lists every problem in every document, one per line', () => {
    const text = [
      GOOD_VS.replace('hosts: [good]', 'hosts: [good, good]'),
      'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: dr}\nspec: {}\n',
    ].join('---\n');
    const err = parseError(text);
    assert.equal(
      err.message,
      ['VirtualService default/good: spec.hosts[1]: duplicate host: "good" overlaps "good"', 'DestinationRule default/dr: spec.host: required'].join('\n'),
    );
    assert.equal(err.resource, undefined);
    assert.equal(err.fields.length, 2);
  });

  test('rejects the same resource twice', () => {
    const err = parseError(`${GOOD_VS}---\n${GOOD_VS}`);
    assert.equal(err.message, 'VirtualService default/good: defined more than once (x.yaml document 1 and x.yaml document 2)');
  });
});

describe('parseConfig: the Gateway API\'s mesh routes', () => {
  const ROUTES = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews, namespace: shop}
spec:
  parentRefs:
  - {group: "", kind: Service, name: reviews, port: 9080}
  rules:
  - matches:
    - path: {value: /v2}
    backendRefs:
    - {name: reviews-v2, port: 9080}
    timeouts: null
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata: {name: reviews}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: users}
spec:
  parentRefs: [{group: "", kind: Service, name: users, port: 50051}]
  rules:
  - matches: [{method: {service: com.example.User, method: Login}}]
    backendRefs: [{name: users-v1, port: 50051}]
`;

  test('reads HTTPRoute (v1, v1beta1) and GRPCRoute (v1): spec kept as written, nulls pruned, no defaults added', () => {
    const [http, beta, grpc] = parseConfig(ROUTES, 'routes.yaml');
    assert.deepEqual(http, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'reviews', namespace: 'shop' },
      spec: {
        parentRefs: [{ group: '', kind: 'Service', name: 'reviews', port: 9080 }],
        rules: [{ matches: [{ path: { value: '/v2' } }], backendRefs: [{ name: 'reviews-v2', port: 9080 }] }],
      },
    });
    assert.equal(beta?.apiVersion, 'gateway.networking.k8s.io/v1beta1');
    assert.deepEqual(beta?.spec, { parentRefs: [{ group: '', kind: 'Service', name: 'reviews' }] });
    assert.equal(grpc?.kind, 'GRPCRoute');
  });

  test('rejects what the Gateway API rejects and what Weft cannot apply, naming the route and field', () => {
    const bad = ROUTES.replace('path: {value: /v2}', 'path: {value: v2}').replace('{name: reviews-v2, port: 9080}', '{name: reviews-v2, port: 9080, namespace: other}');
    assert.equal(
      parseError(bad, 'routes.yaml').message,
      'HTTPRoute shop/reviews: spec.rules[0].matches[0].path.value: must be an absolute path, starting with "/"',
    );
    const refused = ROUTES.replace('{name: reviews-v2, port: 9080}', '{group: multicluster.x-k8s.io, kind: ServiceImport, name: reviews-v2, namespace: other}');
    assert.equal(
      parseError(refused, 'routes.yaml').message,
      'HTTPRoute shop/reviews: spec.rules[0].backendRefs[0].kind: a backend of kind ServiceImport (group multicluster.x-k8s.io) is not supported; its traffic would have nowhere to go',
    );
  });

  test('reads ReferenceGrant (v1, v1beta1), and a backend in another namespace (a ReferenceGrant there decides whether it gets traffic)', () => {
    const text = `${ROUTES.replace('{name: reviews-v2, port: 9080}', '{name: reviews-v2, port: 9080, namespace: store}')}---
apiVersion: gateway.networking.k8s.io/v1
kind: ReferenceGrant
metadata: {name: from-shop, namespace: store}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: shop}]
  to: [{group: "", kind: Service, name: reviews-v2}]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: all}
spec:
  from: [{group: gateway.networking.k8s.io, kind: GRPCRoute, namespace: shop}]
  to: [{group: "", kind: Service, name: null}]
`;
    const [http, , , grant, beta] = parseConfig(text, 'routes.yaml');
    assert.deepEqual(http?.spec, {
      parentRefs: [{ group: '', kind: 'Service', name: 'reviews', port: 9080 }],
      rules: [{ matches: [{ path: { value: '/v2' } }], backendRefs: [{ name: 'reviews-v2', port: 9080, namespace: 'store' }] }],
    });
    assert.deepEqual(grant, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'ReferenceGrant',
      metadata: { name: 'from-shop', namespace: 'store' },
      spec: { from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'shop' }], to: [{ group: '', kind: 'Service', name: 'reviews-v2' }] },
    });
    assert.equal(beta?.apiVersion, 'gateway.networking.k8s.io/v1beta1');
    assert.deepEqual(beta?.spec, { from: [{ group: 'gateway.networking.k8s.io', kind: 'GRPCRoute', namespace: 'shop' }], to: [{ group: '', kind: 'Service' }] });
  });
});

describe('checkResource', () => {
  test('names the object with `where` when it cannot name the resource', () => {
    assert.throws(() => checkResource({ kind: 'VirtualService' }, 'request item 0'), {
      name: 'ConfigError',
      message: 'request item 0: apiVersion: required',
    });
    assert.throws(() => checkResource('text', 'request item 3'), {
      message: 'request item 3: must be a mapping with apiVersion, kind, metadata and spec, not string',
    });
  });

  test('returns a copy with null fields pruned, leaving the input alone', () => {
    const input = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'a' },
      spec: { host: 'a', trafficPolicy: null, subsets: [{ name: 'v1', labels: { version: 'v1' } }] },
    };
    const r = checkResource(input, 'request item 0');
    assert.deepEqual(r.spec, { host: 'a', subsets: [{ name: 'v1', labels: { version: 'v1' } }] });
    assert.equal(input.spec.trafficPolicy, null);
    assert.notEqual(r.spec, input.spec);
  });

  test('requires a spec', () => {
    assert.throws(
      () => checkResource({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'a' } }, 'x'),
      { message: 'DestinationRule default/a: spec: required' },
    );
  });
});

describe('SUPPORTED_KINDS', () => {
  test('describes five Istio kinds in networking.istio.io, PeerAuthentication, AuthorizationPolicy and RequestAuthentication in security.istio.io, Weft\'s own LocalRateLimit, the Gateway API\'s HTTPRoute, GRPCRoute and ReferenceGrant, Istio\'s Telemetry, and Istio\'s mesh config ConfigMap (core v1)', () => {
    assert.deepEqual(
      SUPPORTED_KINDS.map((k) => [k.kind, k.group, [...k.versions]]),
      [
        ['VirtualService', 'networking.istio.io', ['v1', 'v1beta1', 'v1alpha3']],
        ['DestinationRule', 'networking.istio.io', ['v1', 'v1beta1', 'v1alpha3']],
        ['ServiceEntry', 'networking.istio.io', ['v1', 'v1beta1', 'v1alpha3']],
        ['WorkloadEntry', 'networking.istio.io', ['v1', 'v1beta1', 'v1alpha3']],
        ['Sidecar', 'networking.istio.io', ['v1', 'v1beta1', 'v1alpha3']],
        ['PeerAuthentication', 'security.istio.io', ['v1', 'v1beta1']],
        ['AuthorizationPolicy', 'security.istio.io', ['v1', 'v1beta1']],
        ['RequestAuthentication', 'security.istio.io', ['v1', 'v1beta1']],
        ['LocalRateLimit', 'ratelimit.weft.io', ['v1alpha1']],
        ['HTTPRoute', 'gateway.networking.k8s.io', ['v1', 'v1beta1']],
        ['GRPCRoute', 'gateway.networking.k8s.io', ['v1']],
        ['ReferenceGrant', 'gateway.networking.k8s.io', ['v1', 'v1beta1']],
        ['Telemetry', 'telemetry.istio.io', ['v1', 'v1alpha1']],
        ['ConfigMap', '', ['v1']],
      ],
    );
    assert.ok(Object.isFrozen(SUPPORTED_KINDS) && SUPPORTED_KINDS.every((k) => Object.isFrozen(k) && Object.isFrozen(k.versions)));
  });
});
