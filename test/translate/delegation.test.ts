// Simulation tests for VirtualService delegation (src/api/delegation.ts): a root route's requests
// take its delegate's routes, with their matches narrowed by the root's and what they leave unset
// taken from the root. Translate, load as the sidecar does (a NACK fails the test), and ask where
// a request goes and what is done to it. No sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Workload } from '../../src/control/model/model.ts';
import { PushCache } from '../../src/control/push/cache.ts';
import { PROXYLESS_ROUTE, translate } from '../../src/control/translate/translate.ts';
import { meshOf, request, routeOf, sidecarSnapshot, simulate, workload } from '../snapshot.ts';

const vs = (name: string, spec: object, namespace = 'default') => ({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace }, spec });
const subsets = (host: string, namespace = 'default') => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name: host, namespace },
  spec: { host, subsets: ['v1', 'v2'].map((v) => ({ name: v, labels: { version: v } })) },
});
const to = (host: string, subset?: string) => ({ destination: { host, ...(subset ? { subset } : {}) } });
const C = (host: string, subset = '', namespace = 'default') => `outbound|80|${subset}|${host}.${namespace}.svc.cluster.local`;

const workloads: Workload[] = [
  workload('reviews-v1', { service: 'reviews', port: 41000, labels: { version: 'v1' } }),
  workload('reviews-v2', { service: 'reviews', port: 41100, labels: { version: 'v2' } }),
  workload('ratings', { service: 'ratings', port: 41200 }),
  workload('reviews-shop', { namespace: 'shop', service: 'reviews', port: 41300, labels: { version: 'v1' } }),
  workload('client', { port: 41400 }),
];
const client = workloads[4];
const cfgOf = (...config: object[]) => sidecarSnapshot(meshOf([subsets('reviews'), subsets('reviews', 'shop'), ...config], workloads), client);
/** The outbound routes (Envoy JSON) of reviews.default. */
const reviewsRoutes = (x: { routes: Record<string, object> }) => (x.routes.outbound as any).virtual_hosts.find((v: { name: string }) => v.name === 'reviews.default.svc.cluster.local:80').routes as Record<string, any>[];
/** The outbound route (Envoy JSON) that a route name names, for what the simulation does not show. */
const routeJson = (config: object[], name: string) => {
  const table = translate(meshOf([subsets('reviews'), ...config], workloads), client).routes.outbound as { virtual_hosts: { routes: { name: string }[] }[] };
  return table.virtual_hosts.flatMap((vh) => vh.routes).find((r) => r.name === name) as Record<string, any> | undefined;
};

// The root: /reviews to the delegate, the rest to ratings.
const root = (delegate: object, extra: object = {}) =>
  vs('root', { hosts: ['reviews'], http: [{ name: 'reviews', match: [{ uri: { prefix: '/reviews' } }], delegate, ...extra }, { name: 'rest', route: [to('ratings')] }] });
const versions = vs('versions', {
  http: [
    { name: 'v1', match: [{ uri: { prefix: '/reviews/v1' } }], route: [to('reviews', 'v1')] },
    { name: 'v2', match: [{ uri: { exact: '/reviews/v2' } }, { uri: { prefix: '/reviews/two' } }], route: [to('reviews', 'v2')] },
    // Not within /reviews: left out, as Istio leaves it out.
    { name: 'ratings', match: [{ uri: { prefix: '/ratings' } }], route: [to('reviews', 'v2')] },
    // No match: the root route's.
    { name: 'default', route: [to('reviews')] },
  ],
});

test('a root route takes its delegate\'s routes, in their order, each within the root route\'s match', () => {
  const cfg = cfgOf(root({ name: 'versions' }), versions);
  assert.equal(routeOf(cfg, request('reviews', '/reviews/v1/x')), C('reviews', 'v1'));
  assert.equal(routeOf(cfg, request('reviews', '/reviews/v2')), C('reviews', 'v2'));
  assert.equal(routeOf(cfg, request('reviews', '/reviews/two')), C('reviews', 'v2'));
  assert.equal(routeOf(cfg, request('reviews', '/reviews/v2/x')), C('reviews'), 'an exact match takes only its path; the delegate\'s last route takes the rest of /reviews');
  assert.equal(routeOf(cfg, request('reviews', '/ratings')), C('ratings'), 'the conflicting delegate route is left out: /ratings goes to the root\'s next route');
  assert.equal(routeOf(cfg, request('reviews', '/other')), C('ratings'));
  // The names Istio gives them: root-delegate.
  const names = reviewsRoutes(translate(meshOf([subsets('reviews'), root({ name: 'versions' }), versions], workloads), client)).map((r) => r.name);
  assert.deepEqual(names, ['reviews-v1', 'reviews-v2', 'reviews-v2', 'reviews-default', 'rest']);
});

test('without the delegation the same requests go elsewhere (the test can fail): a delegate alone makes no routes', () => {
  const cfg = cfgOf(versions);
  assert.equal(routeOf(cfg, request('reviews', '/reviews/v1')), C('reviews'), 'no VirtualService for reviews: its default route');
  assert.equal(routeOf(cfg, request('reviews', '/reviews/v2')), C('reviews'));
});

test('a delegate that does not exist, has hosts, or is not exported to the root\'s namespace: the root route is left out, its other routes stay', () => {
  for (const config of [
    [root({ name: 'nothing' }), versions],
    [root({ name: 'versions', namespace: 'shop' }), versions],
    [root({ name: 'other' }), vs('other', { hosts: ['other'], http: [{ route: [to('reviews', 'v1')] }] })],
    [root({ name: 'versions', namespace: 'shop' }), vs('versions', { exportTo: ['.'], http: [{ route: [to('reviews', 'v1')] }] }, 'shop')],
  ]) {
    const cfg = cfgOf(...config);
    assert.equal(routeOf(cfg, request('reviews', '/reviews/v1')), C('ratings'), JSON.stringify(config[0]));
  }
});

test('a delegate in another namespace: exported to the root\'s, its short names resolve in its own namespace', () => {
  const shopRoutes = (exportTo?: string[]) => vs('versions', { ...(exportTo ? { exportTo } : {}), http: [{ match: [{ uri: { prefix: '/reviews/v1' } }], route: [to('reviews', 'v1')] }, { route: [to('reviews.default.svc.cluster.local', 'v2')] }] }, 'shop');
  for (const exportTo of [undefined, ['*'], ['default'], ['default', 'shop']]) {
    const cfg = cfgOf(root({ name: 'versions', namespace: 'shop' }), shopRoutes(exportTo));
    assert.equal(routeOf(cfg, request('reviews', '/reviews/v1')), C('reviews', 'v1', 'shop'), `"reviews" in the delegate is reviews.shop (exportTo ${exportTo})`);
    assert.equal(routeOf(cfg, request('reviews', '/reviews/x')), C('reviews', 'v2'), 'a full name is taken as written');
  }
});

test('matches merge: the delegate\'s conditions with the root\'s headers, methods and ports; each root match it fits', () => {
  const r = vs('root', {
    hosts: ['reviews'],
    http: [
      { match: [{ uri: { prefix: '/a' }, headers: { 'x-team': { exact: 'blue' } } }, { uri: { prefix: '/b' } }], delegate: { name: 'd' } },
      { route: [to('ratings')] },
    ],
  });
  const d = vs('d', {
    http: [
      { match: [{ headers: { 'x-canary': { exact: '1' } } }], route: [to('reviews', 'v2')] },
      // A header the root matches otherwise conflicts with that root match only: it merges with /b.
      { match: [{ headers: { 'x-team': { exact: 'red' } } }], route: [to('reviews', 'v1')] },
    ],
  });
  const cfg = cfgOf(r, d);
  assert.equal(routeOf(cfg, request('reviews', '/a', ['x-team', 'blue', 'x-canary', '1'])), C('reviews', 'v2'));
  assert.equal(routeOf(cfg, request('reviews', '/a', ['x-canary', '1'])), C('ratings'), 'the root match\'s header is still required');
  assert.equal(routeOf(cfg, request('reviews', '/b', ['x-canary', '1'])), C('reviews', 'v2'));
  assert.equal(routeOf(cfg, request('reviews', '/b', ['x-team', 'red'])), C('reviews', 'v1'));
  assert.equal(routeOf(cfg, request('reviews', '/a', ['x-team', 'red'])), C('ratings'), 'not merged with the /a match (its x-team is blue)');
});

test('what a delegate route leaves unset comes from the root route: timeout, retries, headers, rewrite, fault, corsPolicy, mirror; what it sets stays its own', () => {
  const r = root(
    { name: 'd' },
    {
      timeout: '3s',
      retries: { attempts: 5, retryOn: '5xx' },
      headers: { request: { set: { 'x-root': 'yes' } } },
      rewrite: { uri: '/rewritten' },
      corsPolicy: { allowOrigins: [{ exact: 'https://shop.example' }] },
      mirror: { host: 'ratings' },
      mirrorPercentage: { value: 50 },
    },
  );
  const d = vs('d', {
    http: [
      { name: 'own', match: [{ uri: { prefix: '/reviews/own' } }], timeout: '1s', headers: { request: { set: { 'x-own': 'yes' } } }, route: [to('reviews', 'v1')] },
      { name: 'inherits', route: [to('reviews', 'v2')] },
    ],
  });
  const inherits = routeJson([r, d], 'reviews-inherits')!;
  assert.deepEqual(inherits.route.timeout, { seconds: 3 });
  assert.equal(inherits.route.retry_policy.num_retries.value, 5);
  assert.equal(inherits.route.prefix_rewrite, '/rewritten');
  assert.deepEqual(inherits.route.request_mirror_policies.map((m: { cluster: string }) => m.cluster), [C('ratings')]);
  assert.ok(inherits.typed_per_filter_config['envoy.filters.http.cors']);
  const own = routeJson([r, d], 'reviews-own')!;
  assert.deepEqual(own.route.timeout, { seconds: 1 });
  // Headers are one field: the delegate's replace the root's.
  const s = simulate(cfgOf(r, d), request('reviews', '/reviews/own/x'));
  assert.equal(s.kind, 'forward');
  const h = (s as any).head.headers as string[];
  assert.ok(h.includes('x-own') && !h.includes('x-root'), String(h));
  const t = simulate(cfgOf(r, d), request('reviews', '/reviews/x'));
  assert.ok(((t as any).head.headers as string[]).includes('x-root'));
  assert.equal((t as any).head.path, '/rewritten/x');
});

test('a root route\'s fault and directResponse: the delegate\'s routes that set none take them; the fault comes before the direct response, as in Envoy', () => {
  const r = root({ name: 'd' }, { fault: { abort: { httpStatus: 418, percentage: { value: 50 } } }, directResponse: { status: 503, body: { string: 'closed' } } });
  const d = vs('d', { http: [{ match: [{ uri: { prefix: '/reviews/open' } }], directResponse: { status: 200, body: { string: 'open' } } }, { route: [to('reviews', 'v1')] }] });
  const cfg = cfgOf(r, d);
  const aborted = simulate(cfg, request('reviews', '/reviews/open'), { cluster: 0.5, delay: 0.5, abort: 0.1 });
  assert.deepEqual([aborted.kind, (aborted as any).status], ['error', 418]);
  const open = simulate(cfg, request('reviews', '/reviews/open'), { cluster: 0.5, delay: 0.5, abort: 0.9 });
  assert.deepEqual([open.kind, (open as any).status, (open as any).body], ['local', 200, 'open']);
  const closed = simulate(cfg, request('reviews', '/reviews/x'), { cluster: 0.5, delay: 0.5, abort: 0.9 });
  assert.deepEqual([closed.kind, (closed as any).status, (closed as any).body], ['local', 503, 'closed'], 'a route to v1 with the root\'s directResponse answers directly, as in Istio');
});

test('a delegate route\'s mirrors and its root\'s mirror both apply, as in Istio', () => {
  const r = root({ name: 'd' }, { mirror: { host: 'ratings' } });
  const d = vs('d', { http: [{ mirrors: [{ destination: { host: 'reviews', subset: 'v2' } }], route: [to('reviews', 'v1')] }] });
  const route = routeJson([r, d], 'reviews')!;
  assert.deepEqual(route.route.request_mirror_policies.map((m: { cluster: string }) => m.cluster), [C('ratings'), C('reviews', 'v2')]);
});

test('sourceLabels in a delegate\'s match apply per proxy, and put the label in the proxy\'s scope', () => {
  const r = root({ name: 'd' });
  const d = vs('d', { http: [{ match: [{ sourceLabels: { app: 'canary' } }], route: [to('reviews', 'v2')] }, { route: [to('reviews', 'v1')] }] });
  const canary = workload('canary', { port: 41500, labels: { app: 'canary' } });
  const mesh = meshOf([subsets('reviews'), r, d], [...workloads, canary]);
  assert.equal(routeOf(sidecarSnapshot(mesh, canary), request('reviews', '/reviews')), C('reviews', 'v2'));
  assert.equal(routeOf(sidecarSnapshot(mesh, client), request('reviews', '/reviews')), C('reviews', 'v1'));
});

test('proxyless gRPC clients get the merged routes too', () => {
  const x = translate(meshOf([subsets('reviews'), root({ name: 'versions' }), versions], workloads), client);
  const vh = (x.routes[PROXYLESS_ROUTE] as any).virtual_hosts.find((v: { name: string }) => v.name === 'reviews.default.svc.cluster.local:80');
  assert.deepEqual(vh.routes.map((r: any) => [r.name, r.route.cluster]), [
    ['reviews-v1', C('reviews', 'v1')],
    ['reviews-v2', C('reviews', 'v2')],
    ['reviews-v2', C('reviews', 'v2')],
    ['reviews-default', C('reviews')],
    ['rest', C('ratings')],
  ]);
});

test('unnamed routes are named after where they came from', () => {
  const r = vs('root', { hosts: ['reviews'], http: [{ match: [{ uri: { prefix: '/reviews' } }], delegate: { name: 'd' } }] });
  const d = vs('d', { http: [{ match: [{ uri: { prefix: '/reviews/v1' } }], route: [to('reviews', 'v1')] }, { route: [to('reviews')] }] });
  assert.ok(routeJson([r, d], 'default/root.http[0]/default/d.http[0]'));
  assert.ok(routeJson([r, d], 'default/root.http[0]/default/d.http[1]'));
});

test('a new snapshot with the delegate changed changes the root\'s routes (the push step caches per snapshot)', () => {
  const cache = new PushCache();
  const before = meshOf([subsets('reviews'), root({ name: 'd' }), vs('d', { http: [{ route: [to('reviews', 'v1')] }] })], workloads);
  const after = meshOf([subsets('reviews'), root({ name: 'd' }), vs('d', { http: [{ route: [to('reviews', 'v2')] }] })], workloads);
  const cluster = (mesh: typeof before) => reviewsRoutes(cache.resources(mesh, client))[0].route.cluster;
  assert.equal(cluster(before), C('reviews', 'v1'));
  assert.equal(cluster(after), C('reviews', 'v2'));
});

test('the push step tells apart proxies that a delegate\'s sourceLabels tell apart', () => {
  const d = vs('d', { http: [{ match: [{ sourceLabels: { app: 'canary' } }], route: [to('reviews', 'v2')] }, { route: [to('reviews', 'v1')] }] });
  const canary = workload('canary', { port: 41500, labels: { app: 'canary' } });
  const other = workload('other', { port: 41600, labels: { app: 'other' } });
  const mesh = meshOf([subsets('reviews'), root({ name: 'd' }), d], [...workloads, canary, other]);
  const cache = new PushCache();
  const cluster = (w: Workload) => reviewsRoutes(cache.resources(mesh, w))[0].route.cluster;
  assert.deepEqual([cluster(canary), cluster(other), cluster(client)], [C('reviews', 'v2'), C('reviews', 'v1'), C('reviews', 'v1')]);
  assert.equal(cache.translations.scoped, 3, 'app=canary, app=other, no app: the key app is in the scope');
});
