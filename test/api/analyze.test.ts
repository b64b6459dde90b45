// `weft analyze`'s checks of resources together (src/api/analyze.ts), code by code, each case the
// resources and the lines it must report: "<level> <code> <resource> <path>: <message>". The CLI's
// own test (test/cli/cli.test.ts) covers the command, IST0101 for an http route's subset, IST0109
// and WEFT0001.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { analyze, checkResource, inspect, type Resource } from '../../src/api/index.ts';
import { destinationRule, grpcRoute, httpRoute, referenceGrant, serviceEntry, sidecar, virtualService, type Spec } from './helpers.ts';

type Obj = Record<string, unknown>;

/** The object in namespace `ns`. */
const inNs = (obj: Obj, ns: string): Obj => ({ ...obj, metadata: { ...(obj.metadata as Obj), namespace: ns } });

/** What `analyze` says of these objects with one of `codes`, a line a message. */
function report(objects: Obj[], codes: readonly string[]): string[] {
  const resources: Resource[] = objects.map((o, i) => checkResource(o, `object ${i}`));
  return analyze(resources)
    .filter((m) => codes.includes(m.code))
    .map((m) => `${m.level} ${m.code} ${m.resource} ${m.path}: ${m.message}`);
}

type Case = [string, Obj[], string[]];

function table(codes: readonly string[], cases: readonly Case[]): void {
  for (const [name, objects, lines] of cases) test(name, () => assert.deepEqual(report(objects, codes), lines));
}

// ---- IST0101 ----

describe('IST0101 ReferencedResourceNotFound: a subset no DestinationRule defines, wherever a VirtualService names one', () => {
  const dr = (host: string, ...subsets: string[]) => destinationRule({ host, subsets: subsets.map((name) => ({ name, labels: { version: name } })) }, `dr-${host.split('.')[0]}`);
  const dest = (host: string, subset?: string) => ({ host, ...(subset ? { subset } : {}) });
  table(['IST0101'], [
    [
      'a tcp route',
      [virtualService({ hosts: ['db'], tcp: [{ route: [{ destination: dest('db', 'v2') }] }] }), dr('db', 'v1')],
      ['Error IST0101 VirtualService default/r spec.tcp[0].route[0].destination.subset: Referenced host+subset in destinationrule not found: "db.default.svc.cluster.local+v2" (its traffic gets 503)'],
    ],
    [
      'a tls route',
      [virtualService({ hosts: ['db'], tls: [{ match: [{ sniHosts: ['db'] }], route: [{ destination: dest('db', 'v2') }] }] }), dr('db', 'v1')],
      ['Error IST0101 VirtualService default/r spec.tls[0].route[0].destination.subset: Referenced host+subset in destinationrule not found: "db.default.svc.cluster.local+v2" (its traffic gets 503)'],
    ],
    [
      'a mirror (Istio says "mirror+subset")',
      [virtualService({ hosts: ['reviews'], http: [{ route: [{ destination: dest('reviews') }], mirror: dest('shadow', 'v1') }] })],
      ['Error IST0101 VirtualService default/r spec.http[0].mirror.subset: Referenced mirror+subset in destinationrule not found: "shadow.default.svc.cluster.local+v1" (no copies of requests reach it)'],
    ],
    [
      'mirrors',
      [virtualService({ hosts: ['reviews'], http: [{ route: [{ destination: dest('reviews') }], mirrors: [{ destination: dest('shadow', 'v1') }, { destination: dest('shadow', 'v3') }] }] }), dr('shadow', 'v1', 'v2')],
      ['Error IST0101 VirtualService default/r spec.http[0].mirrors[1].destination.subset: Referenced mirror+subset in destinationrule not found: "shadow.default.svc.cluster.local+v3" (no copies of requests reach it)'],
    ],
    [
      'a ServiceEntry host: its subsets come from DestinationRules too',
      [
        serviceEntry({ hosts: ['api.example.com'], ports: [{ number: 443, name: 'https', protocol: 'TLS' }], resolution: 'DNS' }),
        virtualService({ hosts: ['api.example.com'], tcp: [{ route: [{ destination: dest('api.example.com', 'eu') }] }] }),
        dr('api.example.com', 'us'),
      ],
      ['Error IST0101 VirtualService default/r spec.tcp[0].route[0].destination.subset: Referenced host+subset in destinationrule not found: "api.example.com+eu" (its traffic gets 503)'],
    ],
    [
      'found: a DestinationRule in the host\'s namespace, by short name there, for a full name here',
      [inNs(virtualService({ hosts: ['reviews.b.svc.cluster.local'], http: [{ route: [{ destination: dest('reviews.b.svc.cluster.local', 'v1') }] }] }), 'a'), inNs(dr('reviews', 'v1'), 'b')],
      [],
    ],
    ['found: a tcp route and mirrors', [virtualService({ hosts: ['db'], tcp: [{ route: [{ destination: dest('db', 'v1') }] }], http: [{ route: [{ destination: dest('db') }], mirrors: [{ destination: dest('db', 'v1') }] }] }), dr('db', 'v1')], []],
    // Offline, a host may be a Kubernetes Service Weft cannot see: an unknown host is no error.
    ['hosts no resource defines, without a subset', [virtualService({ hosts: ['reviews'], http: [{ route: [{ destination: dest('nowhere') }], mirror: dest('shadow') }], tcp: [{ route: [{ destination: dest('db') }] }] })], []],
  ]);
});

// ---- IST0110, IST0111 ----

describe('IST0110 ConflictingSidecarWorkloadSelectors, IST0111 MultipleSidecarsWithoutWorkloadSelectors', () => {
  const sc = (name: string, workloadSelector?: Spec) => sidecar({ ...(workloadSelector ? { workloadSelector } : {}), egress: [{ hosts: ['./*'] }] }, name);
  const NONE = 'have no workload selector, which can lead to undefined behavior.';
  table(['IST0110', 'IST0111'], [
    [
      'two Sidecars without selector in one namespace: on each',
      [sc('b'), sc('a')],
      [
        `Error IST0111 Sidecar default/b spec.workloadSelector: The Sidecars [a b] in namespace "default" ${NONE}`,
        `Error IST0111 Sidecar default/a spec.workloadSelector: The Sidecars [a b] in namespace "default" ${NONE}`,
      ],
    ],
    [
      'three',
      [inNs(sc('c'), 'shop'), inNs(sc('a'), 'shop'), inNs(sc('b'), 'shop')],
      ['c', 'a', 'b'].map((n) => `Error IST0111 Sidecar shop/${n} spec.workloadSelector: The Sidecars [a b c] in namespace "shop" ${NONE}`),
    ],
    ['one without selector in each of two namespaces', [sc('a'), inNs(sc('b'), 'shop')], []],
    ['one without selector, one with', [sc('a'), sc('b', { labels: { app: 'reviews' } })], []],
    [
      'two with equal selectors (keys in any order): on each',
      [sc('a', { labels: { app: 'reviews', version: 'v1' } }), sc('b', { labels: { version: 'v1', app: 'reviews' } }), sc('c', { labels: { app: 'reviews' } })],
      ['a', 'b'].map((n) => `Error IST0110 Sidecar default/${n} spec.workloadSelector: The Sidecars [a b] in namespace "default" select the same workload pods (those with labels app=reviews,version=v1), which can lead to undefined behavior.`),
    ],
    // Offline there are no pods: selectors that merely overlap may select none in common.
    ['selectors that differ (one a subset of the other)', [sc('a', { labels: { app: 'reviews' } }), sc('b', { labels: { app: 'reviews', version: 'v1' } })], []],
    ['equal selectors in two namespaces', [sc('a', { labels: { app: 'reviews' } }), inNs(sc('b', { labels: { app: 'reviews' } }), 'shop')], []],
    [
      'two empty selectors: both select every pod (not "no workload selector")',
      [sc('a', {}), sc('b', { labels: {} })],
      ['a', 'b'].map((n) => `Error IST0110 Sidecar default/${n} spec.workloadSelector: The Sidecars [a b] in namespace "default" select the same workload pods (every pod of the namespace), which can lead to undefined behavior.`),
    ],
  ]);
});

// ---- IST0130, IST0131 ----

describe('IST0130 VirtualServiceUnreachableRule, IST0131 VirtualServiceIneffectiveMatch', () => {
  const to = (host = 'reviews') => [{ destination: { host } }];
  const rule = (match?: Spec[], name?: string): Spec => ({ ...(name ? { name } : {}), ...(match ? { match } : {}), route: to() });
  const vs = (...http: Spec[]) => virtualService({ hosts: ['reviews'], http });
  const tcp = (...routes: Spec[]) => virtualService({ hosts: ['db'], tcp: routes.map((r) => ({ ...r, route: to('db') })) });
  const uri = (kind: string, value: string, extra: Spec = {}): Spec => ({ uri: { [kind]: value }, ...extra });
  const R = 'VirtualService default/r';
  table(['IST0130', 'IST0131'], [
    ['specific rules, then one without matches last: all used', [vs(rule([uri('exact', '/a')]), rule([uri('prefix', '/b')]), rule())], []],
    ['two rules without matches', [vs(rule(), rule())], [`Warning IST0130 ${R} spec.http[1]: VirtualService rule #1 not used (only the last rule can have no matches).`]],
    [
      'rules with matches after one without: each reported',
      [vs(rule(), rule([uri('exact', '/a'), uri('exact', '/b')]), rule([uri('prefix', '/c')], 'named'))],
      [`Warning IST0130 ${R} spec.http[1]: VirtualService rule #1 not used (route without matches defined before).`, `Warning IST0130 ${R} spec.http[2]: VirtualService rule "named" not used (route without matches defined before).`],
    ],
    [
      'a match equal to an earlier one (its name aside, keys in any order), and a rule whose matches all are',
      [vs(rule([{ name: 'a', ...uri('exact', '/a'), headers: { x: { exact: '1' }, y: { exact: '2' } } }], 'first'), rule([{ headers: { y: { exact: '2' }, x: { exact: '1' } }, name: 'again', ...uri('exact', '/a') }]))],
      [
        `Info IST0131 ${R} spec.http[1].match[0]: VirtualService rule #1 match "again" is not used (duplicate/overlapping match in rule "first").`,
        `Warning IST0130 ${R} spec.http[1]: VirtualService rule #1 not used (all matches used by prior rules).`,
      ],
    ],
    [
      'one match of two a duplicate: the rule is still used',
      [vs(rule([uri('exact', '/a')]), rule([uri('exact', '/b'), uri('exact', '/a')]))],
      [`Info IST0131 ${R} spec.http[1].match[1]: VirtualService rule #1 match #1 is not used (duplicate/overlapping match in rule #0).`],
    ],
    ['what says nothing is as if unset (port 0, ignoreUriCase false, empty maps)', [vs(rule([uri('exact', '/a')]), rule([uri('exact', '/a', { port: 0, ignoreUriCase: false, headers: {} })]), rule())], [
      `Info IST0131 ${R} spec.http[1].match[0]: VirtualService rule #1 match #0 is not used (duplicate/overlapping match in rule #0).`,
      `Warning IST0130 ${R} spec.http[1]: VirtualService rule #1 not used (all matches used by prior rules).`,
    ]],
    [
      'a prefix covered by an earlier prefix, the rest alike',
      [vs(rule([uri('prefix', '/api', { method: { exact: 'GET' } })]), rule([uri('prefix', '/api/v2', { method: { exact: 'GET' } })]))],
      [`Info IST0131 ${R} spec.http[1].match[0]: VirtualService rule #1 match #0 of prefix /api/v2 is not used (duplicate/overlapping match in rule #0 of prefix /api on #0).`],
    ],
    [
      'a longer prefix first, then a shorter one: both used',
      [vs(rule([uri('prefix', '/api/v2')]), rule([uri('prefix', '/api')]))],
      [],
    ],
    // Istio's own check says these are unused; each matches requests the earlier one does not.
    ['a prefix after a shorter one that asks more (a header)', [vs(rule([uri('prefix', '/api', { headers: { x: { exact: '1' } } })]), rule([uri('prefix', '/api/v2')]))], []],
    ['a prefix without method after a shorter one for GET only', [vs(rule([uri('prefix', '/api', { method: { exact: 'GET' } })]), rule([uri('prefix', '/api/v2')]))], []],
    ['a prefix after an exact path', [vs(rule([uri('exact', '/api')]), rule([uri('prefix', '/api')]))], []],
    [
      'a match with no condition (a name, ignoreUriCase, statPrefix) matches every request: the rules after it are not used',
      [
        vs(rule([uri('exact', '/a')]), rule([{ name: 'all', ignoreUriCase: true, statPrefix: 's' }]), rule([uri('exact', '/b')]), rule()),
        virtualService({ hosts: ['ratings'], http: [rule([uri('exact', '/a'), {}]), rule()] }, 'ratings'),
      ],
      [
        `Warning IST0130 ${R} spec.http[2]: VirtualService rule #2 not used (route matching every request defined before).`,
        `Warning IST0130 ${R} spec.http[3]: VirtualService rule #3 not used (route matching every request defined before).`,
        'Warning IST0130 VirtualService default/ratings spec.http[1]: VirtualService rule #1 not used (route matching every request defined before).',
      ],
    ],
    ['ignoreUriCase with a uri is a condition', [vs(rule([uri('prefix', '/a', { ignoreUriCase: true })]), rule())], []],
    [
      'tcp routes: unnamed, the same rules',
      [tcp({}, { match: [{ port: 5432 }] }), virtualService({ hosts: ['cache'], tcp: [{ match: [{ port: 6379 }], route: to('cache') }, { match: [{ port: 6379 }], route: to('cache') }, { route: to('cache') }] }, 'cache')],
      [
        `Warning IST0130 ${R} spec.tcp[1]: VirtualService rule #1 not used (route without matches defined before).`,
        'Info IST0131 VirtualService default/cache spec.tcp[1].match[0]: VirtualService rule #1 match #0 is not used (duplicate/overlapping match in rule #0).',
        'Warning IST0130 VirtualService default/cache spec.tcp[1]: VirtualService rule #1 not used (all matches used by prior rules).',
      ],
    ],
    ['tcp: a match on a port, then one without: used', [tcp({ match: [{ port: 5432 }] }, {})], []],
    [
      'tls routes: a match on the same SNI hosts again is never used (Istio keeps the first chain)',
      [virtualService({ hosts: ['db'], tls: [{ match: [{ sniHosts: ['db'] }], route: to('db') }, { match: [{ sniHosts: ['db'] }, { sniHosts: ['db'], port: 443 }], route: to('db') }] })],
      [`Info IST0131 ${R} spec.tls[1].match[0]: VirtualService rule #1 match #0 is not used (duplicate/overlapping match in rule #0).`],
    ],
  ]);
});


// ---- WEFT0003 ----

describe('WEFT0003: a delegation that makes fewer routes than it names (Istio leaves the route out and only logs it)', () => {
  const to = (host: string) => [{ destination: { host } }];
  const root = (delegate: Obj, extra: Obj = {}) => virtualService({ hosts: ['reviews'], http: [{ match: [{ uri: { prefix: '/reviews' } }], delegate, ...extra }, { route: to('reviews') }] }, 'root');
  const delegate = (spec: Spec, name = 'routes') => virtualService({ http: [{ route: to('reviews') }], ...spec }, name);
  const LEFT_OUT = 'this route is left out, as in Istio (its requests go to the routes after it)';
  table(['WEFT0003'], [
    ['a delegate in the root\'s namespace, its namespace unset', [root({ name: 'routes' }), delegate({})], []],
    ['a delegate in another namespace, exported to the root\'s', [root({ name: 'routes', namespace: 'shop' }), inNs(delegate({ exportTo: ['default'] }), 'shop')], []],
    ['a delegate that does not exist', [root({ name: 'nothing' })], [`Warning WEFT0003 VirtualService default/root spec.http[0].delegate: VirtualService default/nothing does not exist: ${LEFT_OUT}`]],
    [
      'a delegate of that name in another namespace is not it (the namespace defaults to the root\'s)',
      [root({ name: 'routes' }), inNs(delegate({}), 'shop')],
      [
        `Warning WEFT0003 VirtualService default/root spec.http[0].delegate: VirtualService default/routes does not exist: ${LEFT_OUT}`,
        'Warning WEFT0003 VirtualService shop/routes spec.hosts: no hosts, and no VirtualService delegates to it: it makes no routes',
      ],
    ],
    [
      'a "delegate" with hosts is none',
      [root({ name: 'other' }), virtualService({ hosts: ['other'], http: [{ route: to('other') }] }, 'other')],
      [`Warning WEFT0003 VirtualService default/root spec.http[0].delegate: VirtualService default/other has hosts, so it is not a delegate (a delegate VirtualService has none): ${LEFT_OUT}`],
    ],
    [
      'a delegate not exported to the root\'s namespace',
      [root({ name: 'routes', namespace: 'shop' }), inNs(delegate({ exportTo: ['.'] }), 'shop')],
      [`Warning WEFT0003 VirtualService default/root spec.http[0].delegate: VirtualService shop/routes is not exported to namespace default (its exportTo: .): ${LEFT_OUT}`],
    ],
    [
      'a delegate route whose match is not within the root route\'s',
      [root({ name: 'routes' }), delegate({ http: [{ match: [{ uri: { prefix: '/reviews/v1' } }], route: to('reviews') }, { match: [{ uri: { prefix: '/ratings' } }], route: to('ratings') }] })],
      ['Warning WEFT0003 VirtualService default/root spec.http[0].delegate: http[1] of VirtualService default/routes is left out, as in Istio: one of its matches narrows none of this route\'s matches'],
    ],
    ['a delegate no root names', [delegate({})], ['Warning WEFT0003 VirtualService default/routes spec.hosts: no hosts, and no VirtualService delegates to it: it makes no routes']],
  ]);
});

// ---- WEFT0004 ----

describe('WEFT0004: valid in Istio, refused by weft apply (not IST0106, which is for what Istio rejects)', () => {
  /** What analyze says of objects valid in Istio (Weft may refuse them). */
  const refusals = (objects: Obj[]) =>
    analyze(objects.map((o) => inspect(o, 'x', true).resource!))
      .filter((m) => m.code === 'WEFT0004')
      .map((m) => `${m.level} ${m.code} ${m.resource} ${m.path}: ${m.message}`);
  test('a RequestAuthentication with presence REQUIRED: the field named; a CUSTOM AuthorizationPolicy, which weft apply now takes, is not one', () => {
    const custom = { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'ext' }, spec: { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{}] } };
    const required = { apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name: 'jwt' }, spec: { jwtRules: [{ issuer: 'i', jwksUri: 'https://i/jwks', presence: 'REQUIRED' }] } };
    const lines = refusals([custom, required]);
    assert.deepEqual(lines.map((l) => l.slice(0, l.indexOf(': '))), ['Error WEFT0004 RequestAuthentication default/jwt spec.jwtRules[0].presence']);
    assert.match(lines[0]!, /: valid in Istio, refused by weft apply: REQUIRED is not supported yet: /);
  });
  test('nothing for what weft apply takes', () => {
    assert.deepEqual(refusals([destinationRule({ host: 'reviews', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } })]), []);
  });
});
