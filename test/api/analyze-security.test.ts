// `weft analyze` for AuthorizationPolicy, PeerAuthentication and RequestAuthentication
// (src/api/analyze-security.ts), code by code: each case the resources (and, for what needs them,
// the running mesh's workloads) and the lines it must report, "<level> <code> <resource> <path>: <message>".
// The CLI's own test (test/cli/cli.test.ts) runs them through `weft analyze`, on files and live.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { analyze, checkResource, type Resource } from '../../src/api/index.ts';
import type { AuthorizationPolicy } from '../../src/api/types.ts';
import { authzFilters } from '../../src/control/translate/authz.ts';
import { authorizationPolicy, peerAuthentication, requestAuthentication, type Spec } from './helpers.ts';

type Obj = Record<string, unknown>;
type Workload = { namespace: string; labels: Record<string, string> };

const SECURITY_CODES = ['IST0101', 'IST0127', 'IST0133'];

/** What `analyze` says of these objects with one of Istio's security codes; with `workloads`, as of a running mesh that has them. */
function report(objects: Obj[], workloads?: Workload[]): string[] {
  const resources: Resource[] = objects.map((o, i) => checkResource(o, `object ${i}`));
  return analyze(resources, workloads ? { services: new Map(), workloads } : undefined)
    .filter((m) => SECURITY_CODES.includes(m.code))
    .map((m) => `${m.level} ${m.code} ${m.resource} ${m.path}: ${m.message}`);
}

type Case = [string, Obj[], string[]] | [string, Obj[], string[], Workload[]];

function table(cases: readonly Case[]): void {
  for (const [name, objects, lines, workloads] of cases) test(name, () => assert.deepEqual(report(objects, workloads), lines));
}

const ALLOW_ALL = { rules: [{}] };
const JWT = { jwtRules: [{ issuer: 'https://issuer.example', jwksUri: 'https://issuer.example/jwks' }] };

// ---- IST0133 SchemaWarning ----

describe('IST0133 SchemaWarning: a workload selector without labels (Istio: validateWorkloadSelector)', () => {
  const WARN = 'Schema validation warning: workload selector specified without labels';
  table([
    ['a PeerAuthentication with selector {} (Istio\'s own valid "partial-selector")', [peerAuthentication({ selector: {} })], [`Warning IST0133 PeerAuthentication default/r spec.selector: ${WARN}`]],
    ['an AuthorizationPolicy with empty matchLabels', [authorizationPolicy({ selector: { matchLabels: {} }, ...ALLOW_ALL })], [`Warning IST0133 AuthorizationPolicy default/r spec.selector: ${WARN}`]],
    ['a RequestAuthentication with selector {}', [requestAuthentication({ selector: {}, ...JWT })], [`Warning IST0133 RequestAuthentication default/r spec.selector: ${WARN}`]],
    ['with labels, or without a selector: nothing', [peerAuthentication({ selector: { matchLabels: { app: 'a' } } }), authorizationPolicy(ALLOW_ALL), requestAuthentication(JWT)], []],
  ]);
});

describe('IST0133 SchemaWarning: a DENY rule that denies every TCP connection (its HTTP-only fields cannot match there)', () => {
  const R = 'AuthorizationPolicy default/r';
  const WARN = 'Schema validation warning: configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port';
  const deny = (...rules: Spec[]) => authorizationPolicy({ action: 'DENY', rules });
  const op = (operation: Spec) => ({ to: [{ operation }] });
  const src = (...sources: Spec[]) => ({ from: sources.map((source) => ({ source })) });
  const HTTP_ONLY: [string, Spec][] = [
    ['methods', op({ methods: ['POST'] })],
    ['paths and hosts', op({ paths: ['/admin'], notHosts: ['a.example'] })],
    ['requestPrincipals', src({ requestPrincipals: ['*'] })],
    ['notRequestPrincipals with methods', { ...src({ notRequestPrincipals: ['*'] }), ...op({ methods: ['GET'] }) }],
    ['one of two sources HTTP-only', src({ principals: ['cluster.local/ns/a/sa/b'] }, { requestPrincipals: ['*'] })],
    // Istio's own test looks at from and to only, and misses these.
    ['a request header condition alone', { when: [{ key: 'request.headers[x-debug]', values: ['1'] }] }],
    ['a JWT claim condition with paths', { ...op({ paths: ['/a'] }), when: [{ key: 'request.auth.claims[group]', values: ['x'] }] }],
  ];
  const KEPT: [string, Spec][] = [
    ['ports with methods', op({ ports: ['8080'], methods: ['POST'] })],
    // Istio warns here: on TCP the rule keeps its principals, it does not deny everyone.
    ['principals with methods', { ...src({ principals: ['cluster.local/ns/a/sa/b'] }), ...op({ methods: ['POST'] }) }],
    ['a source.ip condition with paths', { ...op({ paths: ['/a'] }), when: [{ key: 'source.ip', values: ['10.0.0.0/8'] }] }],
    ['an empty rule: it denies everything on purpose, HTTP too', {}],
    ['namespaces alone', src({ namespaces: ['a'] })],
  ];
  table([
    ...HTTP_ONLY.map(([name, rule]): Case => [`warned: ${name}`, [deny(rule)], [`Warning IST0133 ${R} spec.rules[0]: ${WARN}`]]),
    ...KEPT.map(([name, rule]): Case => [`not warned: ${name}`, [deny(rule)], []]),
    ['each rule on its own path', [deny(op({ ports: ['1'] }), op({ methods: ['GET'] }))], [`Warning IST0133 ${R} spec.rules[1]: ${WARN}`]],
    ['ALLOW and AUDIT: on TCP such a rule is dropped (ALLOW allows less) or only logs (AUDIT)', [authorizationPolicy({ rules: [op({ methods: ['GET'] })] }, 'a'), authorizationPolicy({ action: 'AUDIT', rules: [op({ methods: ['GET'] })] }, 'b')], []],
  ]);

  test('warned exactly where the TCP filter the control plane builds matches every connection', () => {
    const everything = (p: Obj) =>
      (p.permissions as Obj[]).some((x) => JSON.stringify(x) === '{"and_rules":{"rules":[{"any":true}]}}') && (p.principals as Obj[]).some((x) => JSON.stringify(x) === '{"and_ids":{"ids":[{"any":true}]}}');
    for (const [name, rule] of [...HTTP_ONLY, ...KEPT]) {
      const ap = checkResource(deny(rule), 'x') as AuthorizationPolicy;
      const [filter] = authzFilters([ap], { namespace: 'default', labels: {} }, { trustDomain: 'cluster.local' }).tcp;
      const built = Object.values(((filter!.typed_config.rules as Obj).policies as Record<string, Obj>) ?? {});
      const httpOnly = Object.keys(rule).length > 0 && built.some(everything);
      assert.equal(report([deny(rule)]).length === 1, httpOnly, name);
    }
  });
});

describe('IST0133 SchemaWarning: private key material in an inline jwks (Istio: warnPrivateJwksKeys)', () => {
  const rsaPublic = { kty: 'RSA', n: 'x', e: 'AQAB' };
  const jwks = (v: unknown) => requestAuthentication({ jwtRules: [{ issuer: 'https://issuer.example', jwks: JSON.stringify(v) }] });
  const warn = (i: number) => `Warning IST0133 RequestAuthentication default/r spec.jwtRules[0].jwks: Schema validation warning: jwks key at index ${i} contains private key material; only public keys are used for verification`;
  table([
    ['an RSA private key (with "d") in a set, at its index', [jwks({ keys: [rsaPublic, { ...rsaPublic, d: 'y' }] })], [warn(1)]],
    ['a symmetric key, on its own', [jwks({ kty: 'oct', k: 'c2VjcmV0' })], [warn(0)]],
    ['EC and OKP private keys', [jwks({ keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', d: 'z' }, { kty: 'OKP', crv: 'Ed25519', x: 'x', d: 'z' }] })], [warn(0), warn(1)]],
    ['public keys only: nothing', [jwks({ keys: [rsaPublic, { kty: 'EC', crv: 'P-256', x: 'x', y: 'y' }] })], []],
  ]);
});

// ---- IST0127 NoMatchingWorkloadsFound (with the running mesh) ----

describe('IST0127 NoMatchingWorkloadsFound: a policy that applies to no workload of the running mesh', () => {
  const NONE = 'No matching workloads for this resource with the following labels:';
  const mesh: Workload[] = [
    { namespace: 'default', labels: { app: 'reviews', version: 'v1' } },
    { namespace: 'shop', labels: { app: 'cart' } },
  ];
  const sel = (labels: Record<string, string>) => ({ selector: { matchLabels: labels } });
  table([
    [
      'an AuthorizationPolicy whose labels no workload of its namespace has (sorted, as Kubernetes prints a selector)',
      [authorizationPolicy({ ...sel({ version: 'v2', app: 'reviews' }), ...ALLOW_ALL })],
      [`Warning IST0127 AuthorizationPolicy default/r spec.selector: ${NONE} app=reviews,version=v2`],
      mesh,
    ],
    ['a workload with those labels in another namespace is not selected', [authorizationPolicy({ ...sel({ app: 'cart' }), ...ALLOW_ALL })], [`Warning IST0127 AuthorizationPolicy default/r spec.selector: ${NONE} app=cart`], mesh],
    ['selected: a subset of a workload\'s labels', [authorizationPolicy({ ...sel({ app: 'reviews' }), ...ALLOW_ALL }), peerAuthentication({ ...sel({ version: 'v1' }), mtls: { mode: 'STRICT' } }), requestAuthentication({ ...sel({ app: 'reviews' }), ...JWT })], [], mesh],
    ['in the root namespace, an AuthorizationPolicy\'s selector takes the mesh\'s workloads', [authorizationPolicy({ ...sel({ app: 'cart' }), ...ALLOW_ALL }, 'r', 'istio-system')], [], mesh],
    [
      'a namespace-wide policy in a namespace no workload runs in (Istio prints no labels)',
      [authorizationPolicy(ALLOW_ALL, 'r', 'empty'), peerAuthentication({ mtls: { mode: 'STRICT' } }, 'r', 'empty'), requestAuthentication(JWT, 'r', 'empty')],
      ['AuthorizationPolicy', 'PeerAuthentication', 'RequestAuthentication'].map((k) => `Warning IST0127 ${k} empty/r metadata.namespace: ${NONE} `),
      mesh,
    ],
    ['mesh-wide policies (root namespace, no selector): never', [authorizationPolicy(ALLOW_ALL, 'r', 'istio-system'), peerAuthentication({ mtls: { mode: 'STRICT' } }, 'r', 'istio-system')], [], []],
    [
      'a PeerAuthentication with a selector in the root namespace applies to no workload at all',
      [peerAuthentication({ ...sel({ app: 'cart' }), mtls: { mode: 'STRICT' } }, 'r', 'istio-system')],
      [`Warning IST0127 PeerAuthentication istio-system/r spec.selector: ${NONE} app=cart (a PeerAuthentication with a selector in the root namespace istio-system applies to no workload)`],
      mesh,
    ],
    ['a RequestAuthentication with a selector in the root namespace takes that namespace\'s workloads only', [requestAuthentication({ ...sel({ app: 'cart' }), ...JWT }, 'r', 'istio-system')], [`Warning IST0127 RequestAuthentication istio-system/r spec.selector: ${NONE} app=cart`], mesh],
    ['a selector without labels selects every workload of the namespace', [peerAuthentication({ selector: {} }, 'r', 'shop')], [`Warning IST0133 PeerAuthentication shop/r spec.selector: Schema validation warning: workload selector specified without labels`], mesh],
    ['a policy with targetRef(s) is for no sidecar (WEFT0001 says so): not this', [authorizationPolicy({ targetRef: { kind: 'Service', name: 'x' }, ...ALLOW_ALL })], [], mesh],
    ['offline (no running mesh): never', [authorizationPolicy({ ...sel({ app: 'nothing' }), ...ALLOW_ALL })], []],
  ]);
});

// ---- IST0101 ReferencedResourceNotFound: namespaces ----

describe('IST0101 ReferencedResourceNotFound: a source namespace no workload of the running mesh runs in', () => {
  const mesh: Workload[] = [
    { namespace: 'default', labels: {} },
    { namespace: 'prod-eu', labels: {} },
  ];
  const from = (...sources: Spec[]) => authorizationPolicy({ rules: [{ from: sources.map((source) => ({ source })) }] });
  const R = 'Error IST0101 AuthorizationPolicy default/r';
  const notFound = (ns: string) => `Referenced namespace not found: "${ns}" (no workload of the mesh runs in it)`;
  table([
    [
      'namespaces and notNamespaces, each on its own index',
      [from({ namespaces: ['default', 'test'] }, { notNamespaces: ['qa', 'prod-eu'] })],
      [`${R} spec.rules[0].from[0].source.namespaces[1]: ${notFound('test')}`, `${R} spec.rules[0].from[1].source.notNamespaces[0]: ${notFound('qa')}`],
      mesh,
    ],
    ['found: "*", "prod-*", "*-eu", a name in another case (Istio compares names without case)', [from({ namespaces: ['*', 'prod-*', '*-eu', 'Default'] })], [], mesh],
    ['not found: a prefix or suffix nothing has', [from({ namespaces: ['dev-*', '*-us'] })], [`${R} spec.rules[0].from[0].source.namespaces[0]: ${notFound('dev-*')}`, `${R} spec.rules[0].from[0].source.namespaces[1]: ${notFound('*-us')}`], mesh],
    // Weft's own, with Istio's message: the namespace a principal or a service account names.
    [
      'a principal\'s and a service account\'s namespace',
      [from({ principals: ['cluster.local/ns/ghost/sa/app', 'cluster.local/ns/default/sa/*', '*/ns/gone/sa/x', 'cluster.local/ns/any*', '*'] }, { serviceAccounts: ['ghost/app', 'app', 'default/app'] })],
      [`${R} spec.rules[0].from[0].source.principals[0]: ${notFound('ghost')}`, `${R} spec.rules[0].from[0].source.principals[2]: ${notFound('gone')}`, `${R} spec.rules[0].from[1].source.serviceAccounts[0]: ${notFound('ghost')}`],
      mesh,
    ],
    ['offline (no running mesh): never', [from({ namespaces: ['test'] })], []],
  ]);
});
