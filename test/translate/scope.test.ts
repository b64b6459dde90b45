// Simulation tests for what a proxy's scope changes (namespaces, exportTo, sourceLabels,
// sourceNamespace, match gateways) and for matches that must never widen: translate, load as the
// sidecar does (a NACK fails the test), and ask where a request goes. No sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Workload } from '../../src/control/model/model.ts';
import { PushCache } from '../../src/control/push/cache.ts';
import { meshOf, request, routeOf, sidecarSnapshot, workload } from '../snapshot.ts';

const vs = (name: string, namespace: string, spec: object) => ({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace }, spec });
const dr = (name: string, namespace: string, spec: object) => ({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name, namespace }, spec });
const C = (host: string, subset = '', port = 80) => `outbound|${port}|${subset}|${host}`;
const REVIEWS_A = 'reviews.a.svc.cluster.local';
const REVIEWS_B = 'reviews.b.svc.cluster.local';

// Two namespaces, each with a service called reviews, and a client in each.
const twoNamespaces: Workload[] = [
  workload('reviews-a', { namespace: 'a', service: 'reviews', port: 41000, labels: { version: 'v1' } }),
  workload('reviews-b', { namespace: 'b', service: 'reviews', port: 42000, labels: { version: 'v1' } }),
  workload('client-a', { namespace: 'a', port: 43000, labels: { app: 'client' } }),
  workload('client-b', { namespace: 'b', port: 44000, labels: { app: 'client' } }),
];
const byName = (ws: Workload[], n: string) => ws.find((w) => w.name === n)!;

test('two namespaces with a service of the same name: each short name reaches its own namespace, and no sidecar NACKs', () => {
  const mesh = meshOf([], twoNamespaces);
  const a = sidecarSnapshot(mesh, byName(twoNamespaces, 'client-a'));
  const b = sidecarSnapshot(mesh, byName(twoNamespaces, 'client-b'));
  assert.equal(routeOf(a, request('reviews')), C(REVIEWS_A));
  assert.equal(routeOf(b, request('reviews')), C(REVIEWS_B));
  assert.equal(routeOf(b, request('reviews.a')), C(REVIEWS_A));
  assert.equal(routeOf(a, request('reviews.b.svc.cluster.local:80')), C(REVIEWS_B));
});

test('two namespaces, each with its own VirtualService for reviews: each applies from its namespace and by full name', () => {
  const config = ['a', 'b'].flatMap((ns) => [
    dr('reviews', ns, { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }] }),
    vs('reviews', ns, { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] }),
  ]);
  const mesh = meshOf(config, twoNamespaces);
  const a = sidecarSnapshot(mesh, byName(twoNamespaces, 'client-a'));
  const b = sidecarSnapshot(mesh, byName(twoNamespaces, 'client-b'));
  assert.equal(routeOf(a, request('reviews')), C(REVIEWS_A, 'v1'));
  assert.equal(routeOf(b, request('reviews')), C(REVIEWS_B, 'v1'));
  assert.equal(routeOf(a, request('reviews.b')), C(REVIEWS_B, 'v1'));
});

test('a VirtualService host "reviews.a" written in namespace b does not break anyone\'s routes', () => {
  const config = [vs('reviews', 'b', { hosts: ['reviews.a'], http: [{ route: [{ destination: { host: 'reviews.b.svc.cluster.local' } }] }] })];
  const mesh = meshOf(config, twoNamespaces);
  for (const client of ['client-a', 'client-b']) {
    const cfg = sidecarSnapshot(mesh, byName(twoNamespaces, client)); // throws on a NACK
    // "reviews.a" is the service's own name; Istio matches hosts literally, so the VirtualService
    // (host "reviews.a", not a service's name) does not take it over.
    assert.equal(routeOf(cfg, request('reviews.a')), C(REVIEWS_A));
  }
});

test('exportTo ".": a VirtualService applies in its own namespace only', () => {
  const config = [
    dr('reviews', 'a', { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }] }),
    vs('reviews', 'a', { hosts: ['reviews'], exportTo: ['.'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] }),
  ];
  const mesh = meshOf(config, twoNamespaces);
  assert.equal(routeOf(sidecarSnapshot(mesh, byName(twoNamespaces, 'client-a')), request('reviews')), C(REVIEWS_A, 'v1'));
  assert.equal(routeOf(sidecarSnapshot(mesh, byName(twoNamespaces, 'client-b')), request('reviews.a')), C(REVIEWS_A));
});

test('exportTo naming a namespace, and "~": visible there only, and nowhere', () => {
  const config = [
    dr('reviews', 'a', { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }] }),
    vs('to-b', 'a', { hosts: ['reviews'], exportTo: ['b'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] }),
  ];
  const mesh = meshOf(config, twoNamespaces);
  assert.equal(routeOf(sidecarSnapshot(mesh, byName(twoNamespaces, 'client-a')), request('reviews')), C(REVIEWS_A));
  assert.equal(routeOf(sidecarSnapshot(mesh, byName(twoNamespaces, 'client-b')), request('reviews.a')), C(REVIEWS_A, 'v1'));
  const hidden = meshOf([config[0], { ...config[1], spec: { ...config[1].spec, exportTo: ['~'] } }], twoNamespaces);
  for (const c of ['client-a', 'client-b']) assert.equal(routeOf(sidecarSnapshot(hidden, byName(twoNamespaces, c)), request('reviews.a')), C(REVIEWS_A));
});

// One namespace: reviews v1 and v2, and a client.
const reviews: Workload[] = [
  workload('reviews-v1', { service: 'reviews', port: 41000, labels: { app: 'reviews', version: 'v1' } }),
  workload('reviews-v2', { service: 'reviews', port: 42000, labels: { app: 'reviews', version: 'v2' } }),
  workload('productpage', { port: 43000, labels: { app: 'productpage' } }),
  workload('ratings', { namespace: 'other', port: 44000, labels: { app: 'ratings' } }),
];
const REVIEWS = 'reviews.default.svc.cluster.local';
const subsets = dr('reviews', 'default', { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] });
const routed = (match: object[]) =>
  vs('reviews', 'default', { hosts: ['reviews'], http: [{ match, route: [{ destination: { host: 'reviews', subset: 'v2' } }] }, { route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] });
const from = (config: object[], who: string) => sidecarSnapshot(meshOf(config, reviews), byName(reviews, who));

test('a uri suffix match matches only paths ending with it (it used to match every path)', () => {
  const cfg = from([subsets, routed([{ uri: { suffix: '.png' } }])], 'productpage');
  assert.equal(routeOf(cfg, request('reviews', '/img/logo.png')), C(REVIEWS, 'v2'));
  assert.equal(routeOf(cfg, request('reviews', '/img/logo.png?size=2')), C(REVIEWS, 'v2'));
  assert.equal(routeOf(cfg, request('reviews', '/img/logo.jpg')), C(REVIEWS, 'v1'));
  assert.equal(routeOf(cfg, request('reviews', '/xpng')), C(REVIEWS, 'v1'), 'the dot is literal');
  const ci = from([subsets, routed([{ uri: { suffix: '.PNG' }, ignoreUriCase: true }])], 'productpage');
  assert.equal(routeOf(ci, request('reviews', '/a.png')), C(REVIEWS, 'v2'));
});

test('header, authority and query suffix matches test the suffix, not presence (a header suffix used to mean "present")', () => {
  const cfg = from([subsets, routed([{ headers: { referer: { suffix: '.example.com' } } }])], 'productpage');
  assert.equal(routeOf(cfg, request('reviews', '/', ['referer', 'shop.example.com'])), C(REVIEWS, 'v2'));
  assert.equal(routeOf(cfg, request('reviews', '/', ['referer', 'shop.example.org'])), C(REVIEWS, 'v1'));
  assert.equal(routeOf(cfg, request('reviews', '/')), C(REVIEWS, 'v1'));
  const q = from([subsets, routed([{ queryParams: { token: { suffix: '-dev' } } }])], 'productpage');
  assert.equal(routeOf(q, request('reviews', '/?token=abc-dev')), C(REVIEWS, 'v2'));
  assert.equal(routeOf(q, request('reviews', '/?token=abc-prod')), C(REVIEWS, 'v1'));
  const without = from([subsets, routed([{ withoutHeaders: { 'end-user': { suffix: 'son' } } }])], 'productpage');
  assert.equal(routeOf(without, request('reviews', '/', ['end-user', 'jason'])), C(REVIEWS, 'v1'));
  assert.equal(routeOf(without, request('reviews', '/', ['end-user', 'ada'])), C(REVIEWS, 'v2'));
});

test('a route to a subset no DestinationRule defines answers 503, not every endpoint of the service', () => {
  const config = [subsets, vs('reviews', 'default', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v3' } }] }] })];
  assert.equal(routeOf(from(config, 'productpage'), request('reviews')), '503 no_cluster');
  // With no DestinationRule at all, too.
  assert.equal(routeOf(from([config[1]], 'productpage'), request('reviews')), '503 no_cluster');
});

test('a VirtualService for a wildcard host applies to the services it matches; an exact host wins over it', () => {
  const wild = vs('all', 'default', { hosts: ['*.default.svc.cluster.local'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v2' } }] }] });
  assert.equal(routeOf(from([subsets, wild], 'productpage'), request('reviews')), C(REVIEWS, 'v2'));
  const exact = vs('reviews', 'default', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] });
  assert.equal(routeOf(from([subsets, wild, exact], 'productpage'), request('reviews')), C(REVIEWS, 'v1'));
  const narrower = vs('narrow', 'default', { hosts: ['*.svc.cluster.local'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] });
  assert.equal(routeOf(from([subsets, narrower, wild], 'productpage'), request('reviews')), C(REVIEWS, 'v2'), 'the most specific wildcard wins');
});

test('sourceLabels: a match applies only to proxies with those labels; others fall through to the next route', () => {
  const config = [subsets, routed([{ sourceLabels: { app: 'productpage' } }])];
  assert.equal(routeOf(from(config, 'productpage'), request('reviews')), C(REVIEWS, 'v2'));
  assert.equal(routeOf(from(config, 'reviews-v1'), request('reviews')), C(REVIEWS, 'v1'));
});

test('sourceNamespace: a match applies only to proxies in that namespace', () => {
  const config = [subsets, routed([{ sourceNamespace: 'other' }])];
  assert.equal(routeOf(from(config, 'ratings'), request('reviews.default')), C(REVIEWS, 'v2'));
  assert.equal(routeOf(from(config, 'productpage'), request('reviews')), C(REVIEWS, 'v1'));
});

test('a match bound to a gateway does not apply to sidecars, and never turns its route into a catch-all', () => {
  const config = [subsets, routed([{ gateways: ['my-gateway'], uri: { prefix: '/' } }])];
  assert.equal(routeOf(from(config, 'productpage'), request('reviews')), C(REVIEWS, 'v1'));
  const withMesh = [subsets, routed([{ gateways: ['my-gateway', 'mesh'] }])];
  assert.equal(routeOf(from(withMesh, 'productpage'), request('reviews')), C(REVIEWS, 'v2'));
});

test('the push cache translates routes once per scope, not once per proxy', () => {
  const ws: Workload[] = [];
  for (let ns = 0; ns < 3; ns++) {
    ws.push(workload(`svc-${ns}`, { namespace: `ns${ns}`, service: 'svc', port: 30000 + ns * 10 }));
    for (let i = 0; i < 5; i++) ws.push(workload(`client-${ns}-${i}`, { namespace: `ns${ns}`, port: 31000 + ns * 100 + i * 5, labels: { app: 'client', pod: String(i) } }));
  }
  const config = [vs('svc', 'ns0', { hosts: ['svc'], http: [{ match: [{ sourceLabels: { app: 'client' } }], route: [{ destination: { host: 'svc' } }] }] })];
  const mesh = meshOf(config, ws);
  const cache = new PushCache();
  const out = ws.map((w) => cache.resources(mesh, w));
  assert.deepEqual(cache.translations, { shared: 1, scoped: 6 }, '3 namespaces x (app=client or not)');
  const clients = out.filter((_, i) => ws[i].name.startsWith('client-0-'));
  assert.ok(clients.every((r) => r.routes === clients[0].routes), 'proxies of one scope share the very same route objects');
});

test('tcp routes: a CONNECT tunnel to a TCP service splits by the route\'s weights; a match on another port does not apply', async () => {
  const { connectTarget } = await import('../../src/proxy/http/forward.ts');
  const db = (v: string, port: number): Workload => workload(`db-${v}`, { service: 'db', port, labels: { version: v }, ports: [{ name: 'tcp-db', port: 5432, inboundPort: port, appPort: port + 1 }] });
  const ws = [db('v1', 46000), db('v2', 47000), workload('app', { port: 48000 })];
  const config = [
    dr('db', 'default', { host: 'db', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] }),
    vs('db', 'default', {
      hosts: ['db'],
      tcp: [
        { match: [{ port: 9999 }], route: [{ destination: { host: 'db', subset: 'v2' } }] },
        { match: [{ port: 5432 }], route: [{ destination: { host: 'db', subset: 'v1' }, weight: 80 }, { destination: { host: 'db', subset: 'v2' }, weight: 20 }] },
      ],
    }),
  ];
  const cfg = sidecarSnapshot(meshOf(config, ws), ws[2]);
  const DB = (s: string) => `outbound|5432|${s}|db.default.svc.cluster.local`;
  assert.deepEqual(connectTarget(cfg, 'outbound', 'db:5432', 0.1), { kind: 'tcp', cluster: DB('v1') });
  assert.deepEqual(connectTarget(cfg, 'outbound', 'db:5432', 0.9), { kind: 'tcp', cluster: DB('v2') });
  // Without the VirtualService: the service's default cluster.
  assert.deepEqual(connectTarget(sidecarSnapshot(meshOf([config[0]], ws), ws[2]), 'outbound', 'db:5432', 0.9), { kind: 'tcp', cluster: DB('') });
});

test('sourceLabels on a tcp route match the proxies that have them (review: tcp matches were never in the scope)', async () => {
  const { connectTarget } = await import('../../src/proxy/http/forward.ts');
  const db = (v: string, port: number): Workload => workload(`db-${v}`, { service: 'db', port, labels: { version: v }, ports: [{ name: 'tcp-db', port: 5432, inboundPort: port, appPort: port + 1 }] });
  const ws = [db('v1', 46100), db('v2', 47100), workload('canary', { port: 48100, labels: { app: 'canary' } }), workload('stable', { port: 48200, labels: { app: 'stable' } })];
  const config = [
    dr('db', 'default', { host: 'db', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] }),
    vs('db', 'default', { hosts: ['db'], tcp: [{ match: [{ sourceLabels: { app: 'canary' } }], route: [{ destination: { host: 'db', subset: 'v2' } }] }, { route: [{ destination: { host: 'db', subset: 'v1' } }] }] }),
  ];
  const mesh = meshOf(config, ws);
  assert.deepEqual(connectTarget(sidecarSnapshot(mesh, ws[2]), 'outbound', 'db:5432', 0.5), { kind: 'tcp', cluster: 'outbound|5432|v2|db.default.svc.cluster.local' });
  assert.deepEqual(connectTarget(sidecarSnapshot(mesh, ws[3]), 'outbound', 'db:5432', 0.5), { kind: 'tcp', cluster: 'outbound|5432|v1|db.default.svc.cluster.local' });
});

test('precedence is creation order, as Istio\'s: the older of two VirtualServices for one host applies, whatever their names; DestinationRules for one host merge, the older policy first, new subset names added', () => {
  const ws = [workload('reviews-1', { service: 'reviews', port: 41000, labels: { version: 'v1' } }), workload('reviews-2', { service: 'reviews', port: 42000, labels: { version: 'v2' } }), workload('client', { port: 43000 })];
  const mesh = meshOf(
    [
      vs('zzz-older', 'default', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v2' } }] }] }),
      vs('aaa-newer', 'default', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] }),
      dr('zzz-older', 'default', { host: 'reviews', trafficPolicy: { loadBalancer: { simple: 'RANDOM' } }, subsets: [{ name: 'v2', labels: { version: 'v2' } }] }),
      dr('aaa-newer', 'default', { host: 'reviews', trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } }, subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v1' } }] }),
    ],
    ws,
  );
  // As the store gives them: created in the order applied.
  mesh.virtualServices.forEach((r, i) => Object.assign(r, { created: i + 1 }));
  mesh.destinationRules.forEach((r, i) => Object.assign(r, { created: i + 10 }));
  const cfg = sidecarSnapshot(mesh, ws[2]);
  assert.equal(routeOf(cfg, request('reviews')), C('reviews.default.svc.cluster.local', 'v2'));
  assert.equal(cfg.clusters.get(C('reviews.default.svc.cluster.local', 'v2'))?.lb, 'random', "the older rule's policy");
  assert.ok(cfg.clusters.has(C('reviews.default.svc.cluster.local', 'v1')), "the newer rule's new subset is added");
  const v2 = cfg.endpoints.get(C('reviews.default.svc.cluster.local', 'v2'))!;
  assert.deepEqual(v2.map((e) => e.port), [42000], "the older rule's subset v2 stays (version v2)");
});

test("a DestinationRule applies on Istio's lookup path: the client's namespace, then the service's, then the root namespace; exported to the client; exact host before a wildcard (one elsewhere does not apply)", () => {
  const ws = [
    workload('reviews-1', { namespace: 'a', service: 'reviews', port: 41000, labels: { version: 'v1' } }),
    workload('client-a', { namespace: 'a', port: 43000 }),
    workload('client-b', { namespace: 'b', port: 44000 }),
    workload('client-c', { namespace: 'c', port: 45000 }),
    workload('client-d', { namespace: 'd', port: 46000 }),
  ];
  const lb = (simple: string) => ({ loadBalancer: { simple } });
  const mesh = meshOf(
    [
      dr('owner', 'a', { host: 'reviews', trafficPolicy: lb('RANDOM'), subsets: [{ name: 'v1', labels: { version: 'v1' } }] }),
      dr('client-side', 'b', { host: 'reviews.a.svc.cluster.local', trafficPolicy: lb('LEAST_REQUEST') }),
      dr('elsewhere', 'x', { host: 'reviews.a.svc.cluster.local', trafficPolicy: lb('ROUND_ROBIN') }),
      dr('only-c', 'c', { host: 'reviews.a.svc.cluster.local', exportTo: ['d'], trafficPolicy: lb('LEAST_REQUEST') }),
      dr('wild', 'istio-system', { host: '*.a.svc.cluster.local', trafficPolicy: lb('LEAST_REQUEST') }),
    ],
    ws,
  );
  const lbOf = (w: Workload, subset = '') => sidecarSnapshot(mesh, w).clusters.get(C(REVIEWS_A, subset))?.lb;
  assert.equal(lbOf(ws[1]), 'random', "the service's namespace");
  assert.equal(lbOf(ws[2]), 'least_request', "the client's own namespace first");
  assert.equal(lbOf(ws[3]), 'random', 'a rule of its namespace not exported to it does not apply');
  assert.equal(lbOf(ws[4]), 'random', "a rule in another client's namespace does not apply");
  // b's own rule has no subsets: for b, subset v1 is not defined (a route to it gets 503).
  assert.equal(sidecarSnapshot(mesh, ws[2]).clusters.has(C(REVIEWS_A, 'v1')), false);
  assert.equal(lbOf(ws[1], 'v1'), 'random');
  // With the owner's rule exported to its namespace only, others fall through to the root namespace's wildcard rule.
  const private_ = meshOf([dr('owner', 'a', { host: 'reviews', exportTo: ['.'], trafficPolicy: lb('RANDOM') }), dr('wild', 'istio-system', { host: '*.a.svc.cluster.local', trafficPolicy: lb('LEAST_REQUEST') })], ws);
  assert.equal(sidecarSnapshot(private_, ws[1]).clusters.get(C(REVIEWS_A))?.lb, 'random');
  assert.equal(sidecarSnapshot(private_, ws[3]).clusters.get(C(REVIEWS_A))?.lb, 'least_request');
  // The push step: the default view is shared; only scopes that see a rule otherwise get their own clusters.
  const cache = new PushCache();
  const a = cache.resources(mesh, ws[1]);
  const d = cache.resources(mesh, ws[4]);
  const b = cache.resources(mesh, ws[2]);
  assert.equal(a.clusters[C(REVIEWS_A)], d.clusters[C(REVIEWS_A)]);
  assert.notEqual(a.clusters[C(REVIEWS_A)], b.clusters[C(REVIEWS_A)]);
});

test('review: DestinationRules of one namespace merge only when exported alike (a private rule neither hides a public one nor leaks into it); a wildcard rule a client sees otherwise covers hosts only routes name', () => {
  const R = 'reviews.b.svc.cluster.local';
  const ws = [workload('reviews-b', { namespace: 'b', service: 'reviews', port: 41000, labels: { version: 'v2' } }), workload('client-a', { namespace: 'a', port: 43000 })];
  const route = vs('r', 'a', { hosts: [R], http: [{ route: [{ destination: { host: R, subset: 'v2' } }] }] });
  const olderPrivate = meshOf([dr('a-private', 'b', { host: 'reviews', exportTo: ['.'], subsets: [{ name: 'v1', labels: { version: 'v1' } }] }), dr('b-public', 'b', { host: 'reviews', subsets: [{ name: 'v2', labels: { version: 'v2' } }] }), route], ws);
  assert.equal(routeOf(sidecarSnapshot(olderPrivate, ws[1]), request(R)), C(R, 'v2'));
  const newerPrivate = meshOf([dr('a-public', 'b', { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }] }), dr('b-private', 'b', { host: 'reviews', exportTo: ['.'], subsets: [{ name: 'v2', labels: { version: 'v2' } }] }), route], ws);
  assert.equal(sidecarSnapshot(newerPrivate, ws[1]).clusters.has(C(R, 'v2')), false);
  // A host no workload serves, only routed to, under a wildcard rule of the client's own namespace.
  const GHOST = 'ghost.b.svc.cluster.local';
  const ghost = meshOf(
    [
      dr('all-b', 'a', { host: '*.b.svc.cluster.local', exportTo: ['.'], subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] }),
      vs('ghost', 'b', { hosts: [GHOST], http: [{ match: [{ uri: { prefix: '/two' } }], route: [{ destination: { host: GHOST, subset: 'v2' } }] }, { route: [{ destination: { host: GHOST, subset: 'v1' } }] }] }),
    ],
    ws,
  );
  const cfg = sidecarSnapshot(ghost, ws[1]);
  assert.ok(cfg.clusters.has(C(GHOST, 'v2')) && cfg.clusters.has(C(GHOST, 'v1')), [...cfg.clusters.keys()].join());
});

test('review: a VirtualService naming a host keeps wildcard ones off it, even where it builds no route for this proxy (the service keeps its default route)', () => {
  const ws = [workload('reviews', { service: 'reviews', port: 41000 }), workload('client', { port: 43000 })];
  const mesh = meshOf(
    [
      vs('reviews', 'default', { hosts: ['reviews'], http: [{ match: [{ sourceLabels: { app: 'canary' } }], route: [{ destination: { host: 'reviews' } }] }] }),
      vs('all', 'default', { hosts: ['*.default.svc.cluster.local'], http: [{ fault: { abort: { httpStatus: 418, percentage: { value: 100 } } }, route: [{ destination: { host: 'reviews' } }] }] }),
    ],
    ws,
  );
  assert.equal(routeOf(sidecarSnapshot(mesh, ws[1]), request('reviews')), C('reviews.default.svc.cluster.local'));
});

test('a DestinationRule with a workloadSelector applies to the workloads of its namespace it selects, before the namespace\'s other rules; to no one else', () => {
  const ws = [
    workload('reviews-1', { namespace: 'a', service: 'reviews', port: 41000 }),
    workload('canary-client', { namespace: 'a', port: 43000, labels: { app: 'canary' } }),
    workload('plain-client', { namespace: 'a', port: 44000, labels: { app: 'plain' } }),
    workload('other-ns', { namespace: 'b', port: 45000, labels: { app: 'canary' } }),
  ];
  const mesh = meshOf(
    [
      dr('everyone', 'a', { host: 'reviews', trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } }),
      dr('canary-only', 'a', { host: 'reviews', workloadSelector: { matchLabels: { app: 'canary' } }, trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } } }),
    ],
    ws,
  );
  const lbOf = (w: Workload) => sidecarSnapshot(mesh, w).clusters.get(C(REVIEWS_A))?.lb;
  assert.equal(lbOf(ws[1]), 'least_request');
  assert.equal(lbOf(ws[2]), 'random');
  assert.equal(lbOf(ws[3]), 'random');
  const cache = new PushCache();
  assert.notEqual(cache.resources(mesh, ws[1]).clusters[C(REVIEWS_A)], cache.resources(mesh, ws[2]).clusters[C(REVIEWS_A)]);
});
