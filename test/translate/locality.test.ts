// Locality load balancing, as Istio applies it (translate/locality.ts) and Envoy carries it out
// (proxy/upstream/priority.ts): which priority and weight each locality's endpoints get for a
// proxy at a given locality, and where the sidecar then sends requests as endpoints fail. No
// sockets: simulation through the sidecar's own conversion and endpoint choice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Workload } from '../../src/control/model/model.ts';
import { translate } from '../../src/control/translate/translate.ts';
import { PushCache } from '../../src/control/push/cache.ts';
import { decide } from '../../src/proxy/http/forward.ts';
import type { Downstream, RequestHead } from '../../src/proxy/http/types.ts';
import { InFlight, chooseEndpoint } from '../../src/proxy/upstream/balance.ts';
import { priorityLoad } from '../../src/proxy/upstream/priority.ts';
import type { Endpoint } from '../../src/proxy/xds-client/convert.ts';
import { meshOf, sidecarSnapshot, workload } from '../snapshot.ts';

const CLUSTER = 'outbound|80||reviews.default.svc.cluster.local';

/** A reviews workload at a locality (by Kubernetes' topology labels), its inbound port `port`. */
const at = (name: string, region: string, zone: string, port: number, labels: Record<string, string> = {}): Workload =>
  workload(name, { service: 'reviews', port, labels: { app: 'reviews', 'topology.kubernetes.io/region': region, 'topology.kubernetes.io/zone': zone, ...labels } });
const client = (labels: Record<string, string>): Workload => workload('client', { port: 40000, service: undefined, labels });
const WEST1 = { 'topology.kubernetes.io/region': 'us-west', 'topology.kubernetes.io/zone': 'zone1' };

const backends = [at('r-west1', 'us-west', 'zone1', 41000), at('r-west2', 'us-west', 'zone2', 42000), at('r-east1', 'us-east', 'zone1', 43000), at('r-eu1', 'eu-west', 'zone1', 44000)];

const dr = (trafficPolicy: object) => ({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews', namespace: 'default' }, spec: { host: 'reviews', trafficPolicy } });
const OUTLIER = { outlierDetection: { consecutive5xxErrors: 1, interval: '1s', baseEjectionTime: '30s' } };

/** Each locality group of the proxy's EDS for reviews: "region/zone p<priority> w<weight>: ports". */
function groups(config: object[], proxy: Workload, workloads = backends): string[] {
  const x = translate(meshOf(config, [...workloads, proxy]), proxy);
  const cla = x.endpoints[CLUSTER] as any;
  return cla.endpoints.map((g: any) => `${[g.locality.region, g.locality.zone].filter(Boolean).join('/') || '-'} p${g.priority ?? 0} w${g.load_balancing_weight.value}: ${g.lb_endpoints.map((e: any) => e.endpoint.address.socket_address.port_value).join(',')}`);
}

test('locality failover: with outlier detection, the proxy\'s zone first, then its region, then the rest (Istio\'s default, mesh-wide enabled)', () => {
  assert.deepEqual(groups([dr(OUTLIER)], client(WEST1)), ['eu-west/zone1 p2 w1: 44000', 'us-east/zone1 p2 w1: 43000', 'us-west/zone1 p0 w1: 41000', 'us-west/zone2 p1 w1: 42000']);
  const cluster = translate(meshOf([dr(OUTLIER)], [...backends, client(WEST1)]), client(WEST1)).clusters[CLUSTER] as any;
  assert.deepEqual(cluster.common_lb_config.locality_weighted_lb_config, {});
});

test('locality failover: a failover rule sends the region\'s traffic to its target region before any other', () => {
  const failover = dr({ ...OUTLIER, loadBalancer: { localityLbSetting: { enabled: true, failover: [{ from: 'us-west', to: 'eu-west' }] } } });
  assert.deepEqual(groups([failover], client(WEST1)), ['eu-west/zone1 p2 w1: 44000', 'us-east/zone1 p3 w1: 43000', 'us-west/zone1 p0 w1: 41000', 'us-west/zone2 p1 w1: 42000']);
});

test('locality failover: none without outlier detection (Envoy would never see an endpoint fail), nor with enabled: false', () => {
  for (const policy of [{ connectionPool: { tcp: { maxConnections: 10 } } }, { ...OUTLIER, loadBalancer: { localityLbSetting: { enabled: false } } }]) {
    assert.deepEqual(groups([dr(policy)], client(WEST1)), ['eu-west/zone1 p0 w1: 44000', 'us-east/zone1 p0 w1: 43000', 'us-west/zone1 p0 w1: 41000', 'us-west/zone2 p0 w1: 42000']);
    const cluster = translate(meshOf([dr(policy)], [...backends, client(WEST1)]), client(WEST1)).clusters[CLUSTER] as any;
    assert.equal(cluster.common_lb_config?.locality_weighted_lb_config, undefined);
  }
});

test('locality distribute: the rule whose from matches the proxy weights localities; those it does not name get nothing', () => {
  const weighted = dr({ loadBalancer: { localityLbSetting: { distribute: [{ from: 'us-east/*', to: { 'us-east/*': 100 } }, { from: 'us-west/zone1/*', to: { 'us-west/zone1/*': 80, 'us-west/zone2/*': 20 } }] } } });
  assert.deepEqual(groups([weighted], client(WEST1)), ['us-west/zone1 p0 w80: 41000', 'us-west/zone2 p0 w20: 42000']);
  const east = client({ 'topology.kubernetes.io/region': 'us-east', 'topology.kubernetes.io/zone': 'zone9' });
  assert.deepEqual(groups([weighted], east), ['us-east/zone1 p0 w100: 43000']);
  // A proxy no rule's `from` matches gets every locality, by its endpoints.
  const eu = client({ 'istio-locality': 'eu-west.zone1' });
  assert.deepEqual(groups([weighted], eu), ['eu-west/zone1 p0 w1: 44000', 'us-east/zone1 p0 w1: 43000', 'us-west/zone1 p0 w1: 41000', 'us-west/zone2 p0 w1: 42000']);
});

test('locality failoverPriority: endpoints sharing the listed labels with the proxy come first', () => {
  const byNetwork = dr({ ...OUTLIER, loadBalancer: { localityLbSetting: { failoverPriority: ['topology.istio.io/network', 'tier'] } } });
  const ws = [at('a', 'r', 'z', 41000, { 'topology.istio.io/network': 'n1', tier: 'gold' }), at('b', 'r', 'z', 42000, { 'topology.istio.io/network': 'n1' }), at('c', 'r', 'z', 43000, { 'topology.istio.io/network': 'n2', tier: 'gold' })];
  const proxy = client({ 'topology.istio.io/network': 'n1', tier: 'gold' });
  assert.deepEqual(groups([byNetwork], proxy, ws), ['r/z p0 w1: 41000', 'r/z p1 w1: 42000', 'r/z p2 w1: 43000']);
});

test('locality: a WorkloadEntry\'s locality field places it; a proxy at no locality sees every endpoint at one priority but those with none', () => {
  const se = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: 'db', namespace: 'default' },
    spec: { hosts: ['db.example.com'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'STATIC', endpoints: [{ address: '127.0.0.2', locality: 'us-west/zone1' }, { address: '127.0.0.3', locality: 'us-east/zone1' }] },
  };
  const rule = { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'db', namespace: 'default' }, spec: { host: 'db.example.com', trafficPolicy: OUTLIER } };
  const proxy = client(WEST1);
  const cla = translate(meshOf([se, rule], [proxy]), proxy).endpoints['outbound|80||db.example.com'] as any;
  assert.deepEqual(cla.endpoints.map((g: any) => [g.locality.region, g.priority ?? 0]), [['us-east', 1], ['us-west', 0]]);
});

test('locality: the push step translates per locality only where endpoints have one, and shares the rest', () => {
  const cache = new PushCache();
  const mesh = meshOf([dr(OUTLIER)], [...backends, client(WEST1)]);
  const west = cache.resources(mesh, client(WEST1));
  const east = cache.resources(mesh, workload('client-east', { port: 40100, labels: { 'topology.kubernetes.io/region': 'us-east', 'topology.kubernetes.io/zone': 'zone1' } }));
  const west2 = cache.resources(mesh, workload('client-west-2', { port: 40200, labels: { ...WEST1 } }));
  assert.equal(cache.translations.scoped, 2, 'one translation per locality');
  assert.notDeepEqual(west.endpoints[CLUSTER], east.endpoints[CLUSTER]);
  assert.equal(west.endpoints[CLUSTER], west2.endpoints[CLUSTER], 'the same object for the same locality');
  const plain = new PushCache();
  const flat = meshOf([dr(OUTLIER)], [workload('r', { service: 'reviews', port: 41000 }), client({})]);
  plain.resources(flat, client({}));
  plain.resources(flat, workload('other', { port: 40300, labels: { ...WEST1 } }));
  assert.equal(plain.translations.scoped, 1, 'no endpoint has a locality: the proxies share one scope');
});

test('priority load: Envoy\'s overprovisioning factor keeps a priority whole down to 72% healthy, then spills the rest to the next', () => {
  assert.deepEqual(priorityLoad([100, 100]), [100, 0]);
  assert.deepEqual(priorityLoad([70, 100]), [70, 30]); // half of 2 endpoints healthy: 1.4 * 50%
  assert.deepEqual(priorityLoad([0, 100, 100]), [0, 100, 0]);
  assert.deepEqual(priorityLoad([0, 0]), [0, 0]);
  assert.deepEqual(priorityLoad([28, 28]), [50, 50]); // normalized: the total health is under 100
});

/** The request path's own choice for `n` requests, rand going evenly over [0, 1): the port each got, counted. */
function spread(cfg: ReturnType<typeof sidecarSnapshot>, n: number, ejected: number[] = [], excluded?: Set<number>): Record<number, number> {
  const req = { head: { method: 'GET', authority: 'reviews', path: '/', query: '', headers: [], hasBody: false, protocol: 'HTTP/1.1' } as RequestHead } as Downstream;
  const d = decide(cfg, 'outbound', req, 0.5);
  const available = ejected.length ? d.healthy.filter((e: Endpoint) => !ejected.includes(e.port)) : d.healthy;
  const out: Record<number, number> = {};
  const rr = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const ep = chooseEndpoint(d.cluster, d.clusterName, d, available, rr, new InFlight(), undefined, () => (i + 0.5) / n, undefined, excluded);
    if (ep) out[ep.port] = (out[ep.port] ?? 0) + 1;
  }
  return out;
}

test('simulation: failover sends everything to the proxy\'s zone while it is healthy, and to the next nearest as its endpoints are ejected', () => {
  const ws = [...backends, at('r-west1b', 'us-west', 'zone1', 45000)];
  const cfg = sidecarSnapshot(meshOf([dr(OUTLIER)], [...ws, client(WEST1)]), client(WEST1));
  assert.deepEqual(spread(cfg, 1000), { 41000: 500, 45000: 500 });
  // One of zone1's two endpoints ejected: zone1 is 1.4 x 50% = 70% healthy; 30% spills to zone2.
  assert.deepEqual(spread(cfg, 1000, [41000]), { 45000: 700, 42000: 300 });
  // Both ejected: zone2 takes it all; then the other regions, evenly (one priority, weighted by endpoints).
  assert.deepEqual(spread(cfg, 1000, [41000, 45000]), { 42000: 1000 });
  assert.deepEqual(spread(cfg, 1000, [41000, 45000, 42000]), { 43000: 500, 44000: 500 });
});

test('simulation: retryRemoteLocalities (previous_priorities) leaves the priorities tried out of the retry\'s choice', () => {
  const cfg = sidecarSnapshot(meshOf([dr(OUTLIER)], [...backends, client(WEST1)]), client(WEST1));
  assert.deepEqual(spread(cfg, 100, [], new Set([0])), { 42000: 100 });
  assert.deepEqual(spread(cfg, 100, [], new Set([0, 1])), { 43000: 50, 44000: 50 });
  // Every priority tried: the original load again.
  assert.deepEqual(spread(cfg, 100, [], new Set([0, 1, 2])), { 41000: 100 });
});

test('simulation: distribute splits by locality weight (80/20) whatever the endpoints per locality', () => {
  const ws = [...backends, at('r-west2b', 'us-west', 'zone2', 45000), at('r-west2c', 'us-west', 'zone2', 46000)];
  const weighted = dr({ loadBalancer: { localityLbSetting: { distribute: [{ from: 'us-west/zone1/*', to: { 'us-west/zone1/*': 80, 'us-west/zone2/*': 20 } }] } } });
  const cfg = sidecarSnapshot(meshOf([weighted], [...ws, client(WEST1)]), client(WEST1));
  const got = spread(cfg, 1000);
  assert.equal(got[41000], 800);
  assert.equal((got[42000] ?? 0) + (got[45000] ?? 0) + (got[46000] ?? 0), 200);
  assert.equal(got[43000], undefined);
});

test('the retry policy of retryRemoteLocalities is Envoy\'s previous_priorities, every 2 tries, and the sidecar takes it', () => {
  const vs = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'reviews', namespace: 'default' },
    spec: { hosts: ['reviews'], http: [{ retries: { attempts: 3, retryOn: '5xx', retryRemoteLocalities: true }, route: [{ destination: { host: 'reviews' } }] }] },
  };
  const proxy = client(WEST1);
  const mesh = meshOf([vs, dr(OUTLIER)], [...backends, proxy]);
  const routes = translate(mesh, proxy).routes.outbound as any;
  const route = routes.virtual_hosts.find((v: any) => v.domains.includes('reviews')).routes[0];
  assert.deepEqual(route.route.retry_policy.retry_priority, { name: 'envoy.retry_priorities.previous_priorities', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig', update_frequency: 2 } });
  const cfg = sidecarSnapshot(mesh, proxy);
  const req = { head: { method: 'GET', authority: 'reviews', path: '/', query: '', headers: [], hasBody: false, protocol: 'HTTP/1.1' } as RequestHead } as Downstream;
  assert.equal(decide(cfg, 'outbound', req, 0.5).route.retry?.priorityUpdateFrequency, 2);
});

test('review: total panic as Envoy: when every priority is under the panic threshold, load goes by each priority\'s endpoints, all of them', () => {
  const ws = [
    at('w1a', 'us-west', 'zone1', 41000), at('w1b', 'us-west', 'zone1', 41100),
    at('w2a', 'us-west', 'zone2', 42000), at('w2b', 'us-west', 'zone2', 42100),
    at('e1', 'us-east', 'z', 43000), at('e2', 'us-east', 'z', 43100), at('e3', 'us-east', 'z', 43200), at('e4', 'us-east', 'z', 43300),
  ];
  const rule = dr({ outlierDetection: { consecutive5xxErrors: 1, minHealthPercent: 50 } });
  const cfg = sidecarSnapshot(meshOf([rule], [...ws, client(WEST1)]), client(WEST1));
  const got = spread(cfg, 1000, [41000, 41100, 42000, 42100, 43000, 43100, 43200]);
  const by = (ports: number[]) => ports.reduce((n, p) => n + (got[p] ?? 0), 0);
  // Weft's old rule sent all to us-east's one endpoint left; Envoy splits 2:2:4 over every endpoint.
  assert.deepEqual([by([41000, 41100]), by([42000, 42100]), by([43000, 43100, 43200, 43300])], [250, 250, 500]);
});

test('review: one priority panics as Envoy does, only when even 1.4 times what is left is short of the whole', async () => {
  const { OutlierDetector } = await import('../../src/proxy/upstream/outlier.ts');
  const eps: Endpoint[] = [1, 2, 3, 4].map((i) => ({ address: '10.0.0.1', port: 8000 + i, healthy: true }));
  const c = { name: 'c', type: 'EDS' as const, edsName: 'c', connectTimeoutMs: 1000, protocol: 'http1' as const, limits: {}, lb: 'round_robin' as const, panicPercent: 80, outlier: { consecutive5xx: 1, consecutiveGateway: 0, intervalMs: 1000, baseEjectionMs: 30_000, maxEjectionPercent: 100 } };
  const od = new OutlierDetector();
  od.report(c, eps[0], 503, 0, eps);
  assert.equal(od.available(c, eps, 1).length, 3, '75% left, 105% with the factor: no panic (it was, under 80%)');
  od.report(c, eps[1], 503, 0, eps);
  assert.equal(od.available(c, eps, 1).length, 4, '50% left: panic, every endpoint');
});

test('review: failoverPriority compares the topology labels a locality gives (Istio\'s AugmentLabels), for endpoints and for the proxy', () => {
  const se = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: 'db', namespace: 'default' },
    spec: { hosts: ['db.example.com'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'STATIC', endpoints: [{ address: '127.0.0.2', locality: 'us-west/zone1' }, { address: '127.0.0.3', locality: 'us-west/zone2' }] },
  };
  const rule = { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'db', namespace: 'default' }, spec: { host: 'db.example.com', trafficPolicy: { ...OUTLIER, loadBalancer: { localityLbSetting: { failoverPriority: ['topology.kubernetes.io/region', 'topology.kubernetes.io/zone'] } } } } };
  for (const labels of [WEST1, { 'istio-locality': 'us-west.zone1' }]) {
    const proxy = client(labels);
    const cla = translate(meshOf([se, rule], [proxy]), proxy).endpoints['outbound|80||db.example.com'] as any;
    assert.deepEqual(cla.endpoints.map((g: any) => [g.locality.zone, g.priority ?? 0]), [['zone1', 0], ['zone2', 1]], JSON.stringify(labels));
  }
});
