// Make before break in the sidecar's config: a route that names a new cluster waits for that
// cluster's endpoints, and a removed cluster stays while a route names it. The updates come in
// the order an ADS push sends them (CDS, EDS, LDS, RDS), with EDS for a new cluster last, as it
// arrives after the sidecar subscribes to it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MeshSnapshot, Workload } from '../../src/control/model/model.ts';
import { translate } from '../../src/control/translate/translate.ts';
import { EMPTY_CONFIG, type RuntimeConfig, missing, nextConfig, settle } from '../../src/proxy/config.ts';
import { TYPE } from '../../src/xds/types.ts';
import { meshOf, request, routeOf, workload } from '../snapshot.ts';

const workloads: Workload[] = [
  workload('reviews-v1', { service: 'reviews', port: 41000, labels: { version: 'v1' } }),
  workload('reviews-v3', { service: 'reviews', port: 43000, labels: { version: 'v3' } }),
  workload('client', { port: 45000 }),
];
const client = workloads[2];
const C = (subset: string) => `outbound|80|${subset}|reviews.default.svc.cluster.local`;
const config = (subsets: string[], split: Record<string, number>) => [
  { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews' }, spec: { host: 'reviews', subsets: subsets.map((s) => ({ name: s, labels: { version: s } })) } },
  { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews' }, spec: { hosts: ['reviews'], http: [{ route: Object.entries(split).map(([s, w]) => ({ destination: { host: 'reviews', subset: s }, weight: w })) }] } },
];

/** One push as the sidecar sees it: CDS, then EDS for the clusters it already had, LDS, RDS; EDS for new clusters comes last. */
function push(cur: RuntimeConfig, mesh: MeshSnapshot, v: string, opts: { stopBefore?: 'newEds' } = {}): RuntimeConfig {
  const x = translate(mesh, client);
  const had = new Set(cur.endpoints.keys());
  let cfg = nextConfig(cur, TYPE.cluster, Object.values(x.clusters) as any[], v);
  const eds = Object.values(x.endpoints) as any[];
  cfg = nextConfig(cfg, TYPE.endpoint, eds.filter((e) => had.has(e.cluster_name)), v);
  cfg = nextConfig(cfg, TYPE.listener, Object.values(x.listeners) as any[], v);
  cfg = nextConfig(cfg, TYPE.route, Object.values(x.routes) as any[], v);
  if (opts.stopBefore === 'newEds') return cfg;
  return nextConfig(cfg, TYPE.endpoint, eds.filter((e) => !had.has(e.cluster_name)), v);
}

test('a new subset gets traffic only once its endpoints are there; until then the old routes serve', () => {
  const start = push(EMPTY_CONFIG, meshOf(config(['v1'], { v1: 100 }), workloads), '1');
  assert.deepEqual(missing(start), []);
  assert.equal(routeOf(start, request('reviews'), 0.9), C('v1'));

  const mid = push(start, meshOf(config(['v1', 'v3'], { v1: 50, v3: 50 }), workloads), '2', { stopBefore: 'newEds' });
  // The 50/50 routes wait for v3's endpoints: every request still reaches v1, none gets a 503.
  for (const r of [0.1, 0.9]) assert.equal(routeOf(mid, request('reviews'), r), C('v1'));
  assert.deepEqual([...mid.pendingRoutes.keys()].filter((n) => n === 'outbound'), ['outbound']);

  const done = push(start, meshOf(config(['v1', 'v3'], { v1: 50, v3: 50 }), workloads), '2');
  assert.equal(routeOf(done, request('reviews'), 0.1), C('v1'));
  assert.equal(routeOf(done, request('reviews'), 0.9), C('v3'));
  assert.equal(done.pendingRoutes.size, 0);
});

test('a removed subset keeps its cluster and endpoints until no route names it', () => {
  const both = push(EMPTY_CONFIG, meshOf(config(['v1', 'v3'], { v1: 50, v3: 50 }), workloads), '1');
  const x = translate(meshOf(config(['v3'], { v3: 100 }), workloads), client);
  // CDS first: v1 is gone from it, but the routes still send half the traffic there.
  const afterCds = nextConfig(both, TYPE.cluster, Object.values(x.clusters) as any[], '2');
  assert.equal(routeOf(afterCds, request('reviews'), 0.1), C('v1'));
  assert.ok(afterCds.endpoints.has(C('v1')), 'its endpoints stay too');
  // Then RDS: no route names v1 any more, so it goes.
  const afterRds = nextConfig(afterCds, TYPE.route, Object.values(x.routes) as any[], '2');
  assert.equal(routeOf(afterRds, request('reviews'), 0.1), C('v3'));
  assert.equal(afterRds.clusters.has(C('v1')), false);
  assert.equal(afterRds.endpoints.has(C('v1')), false);
});

test('a route table that waits for endpoints that never come serves after the warming timeout (forced)', () => {
  const start = push(EMPTY_CONFIG, meshOf(config(['v1'], { v1: 100 }), workloads), '1');
  const mid = push(start, meshOf(config(['v1', 'v3'], { v3: 100 }), workloads), '2', { stopBefore: 'newEds' });
  assert.equal(routeOf(mid, request('reviews')), C('v1'));
  const forced = settle(mid, true);
  assert.equal(routeOf(forced, request('reviews')), '503 no_healthy_endpoint');
});

test('at start, a sidecar is not ready while its routes wait for endpoints, and says which', () => {
  const x = translate(meshOf(config(['v1'], { v1: 100 }), workloads), client);
  let cfg = nextConfig(EMPTY_CONFIG, TYPE.cluster, Object.values(x.clusters) as any[], '1');
  cfg = nextConfig(cfg, TYPE.listener, Object.values(x.listeners) as any[], '1');
  cfg = nextConfig(cfg, TYPE.route, Object.values(x.routes) as any[], '1');
  assert.match(missing(cfg).join('; '), /route configuration outbound waits for the endpoints of .*outbound\|80\|v1\|reviews/);
  cfg = nextConfig(cfg, TYPE.endpoint, Object.values(x.endpoints) as any[], '1');
  assert.deepEqual(missing(cfg), []);
});
