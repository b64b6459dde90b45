// DestinationRule traffic policies: translated as Istio does (the rule's policy, the subset's over
// it, port-level settings over both), loaded by the sidecar, and outlier detection's decisions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClusterConfig, Endpoint } from '../../src/proxy/xds-client/convert.ts';
import { OutlierDetector } from '../../src/proxy/upstream/outlier.ts';
import { meshOf, sidecarSnapshot, workload } from '../snapshot.ts';

const workloads = [
  workload('reviews-v1', { service: 'reviews', port: 41000, labels: { version: 'v1' } }),
  workload('reviews-v2', { service: 'reviews', port: 42000, labels: { version: 'v2' } }),
  workload('client', { port: 43000 }),
];
const C = (subset: string) => `outbound|80|${subset}|reviews.default.svc.cluster.local`;
const clustersFor = (spec: object) =>
  sidecarSnapshot(meshOf([{ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews' }, spec }], workloads), workloads[2]).clusters;

test('loadBalancer, connectionPool and outlierDetection reach the clusters; a subset and a port override the rule', () => {
  const clusters = clustersFor({
    host: 'reviews',
    trafficPolicy: {
      loadBalancer: { simple: 'RANDOM' },
      connectionPool: { tcp: { maxConnections: 7, connectTimeout: '250ms' }, http: { http1MaxPendingRequests: 3 } },
      outlierDetection: { consecutive5xxErrors: 3, interval: '1s', baseEjectionTime: '2s', maxEjectionPercent: 50 },
    },
    subsets: [
      { name: 'v1', labels: { version: 'v1' }, trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } } },
      { name: 'v2', labels: { version: 'v2' }, trafficPolicy: { portLevelSettings: [{ port: { number: 80 }, connectionPool: { tcp: { maxConnections: 1 } } }] } },
    ],
  });
  const all = clusters.get(C(''))!;
  assert.deepEqual([all.lb, all.connectTimeoutMs, all.limits], ['random', 250, { maxConnections: 7, maxPending: 3 }]);
  assert.deepEqual(all.outlier, { consecutive5xx: 3, consecutiveGateway: 0, intervalMs: 1000, baseEjectionMs: 2000, maxEjectionPercent: 50 });
  assert.equal(all.panicPercent, 0, "Istio's minHealthPercent default: no panic mode");
  assert.equal(clusters.get(C('v1'))!.lb, 'least_request', "the subset's loadBalancer replaces the rule's");
  assert.deepEqual(clusters.get(C('v1'))!.limits, { maxConnections: 7, maxPending: 3 }, "and the rule's connectionPool stays");
  assert.deepEqual(clusters.get(C('v2'))!.limits, { maxConnections: 1 }, "the port's connectionPool replaces the rule's");
});

const HPO = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

test('connectionPool, every field: the Envoy cluster Istio builds, and what the sidecar makes of it', async () => {
  const { translate } = await import('../../src/control/translate/translate.ts');
  const spec = {
    host: 'reviews',
    trafficPolicy: {
      connectionPool: {
        tcp: { maxConnections: 7, connectTimeout: '250ms', tcpKeepalive: { time: '60s' }, maxConnectionDuration: '1h', idleTimeout: '10m' },
        http: { http1MaxPendingRequests: 3, http2MaxRequests: 20, maxRequestsPerConnection: 5, maxRetries: 2, idleTimeout: '30s', h2UpgradePolicy: 'UPGRADE', maxConcurrentStreams: 50, http2KeepAlive: { interval: '10s', timeout: '2s' } },
      },
    },
  };
  const mesh = meshOf([{ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews' }, spec }], workloads);
  const xds = translate(mesh, workloads[2]).clusters[C('')] as Record<string, unknown>;
  assert.deepEqual(
    { circuit_breakers: xds.circuit_breakers, upstream_connection_options: xds.upstream_connection_options, typed_extension_protocol_options: xds.typed_extension_protocol_options, connect_timeout: xds.connect_timeout },
    {
      circuit_breakers: { thresholds: [{ max_connections: { value: 7 }, max_pending_requests: { value: 3 }, max_requests: { value: 20 }, max_retries: { value: 2 } }] },
      upstream_connection_options: { tcp_keepalive: { keepalive_time: { value: 60 } } },
      typed_extension_protocol_options: {
        [HPO]: {
          '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
          // http.idleTimeout wins over tcp.idleTimeout, as in Istio.
          common_http_protocol_options: { idle_timeout: { seconds: 30 }, max_requests_per_connection: { value: 5 }, max_connection_duration: { seconds: 3600 } },
          // UPGRADE on an HTTP/1.1 port: HTTP/2, with the rule's stream limit and keepalive.
          explicit_http_config: { http2_protocol_options: { max_concurrent_streams: { value: 50 }, connection_keepalive: { interval: { seconds: 10 }, timeout: { seconds: 2 } } } },
        },
      },
      connect_timeout: { seconds: 0, nanos: 250_000_000 },
    },
  );
  const c = sidecarSnapshot(mesh, workloads[2]).clusters.get(C(''))!;
  assert.deepEqual(c.limits, { maxConnections: 7, maxPending: 3, maxRequests: 20, maxRetries: 2 });
  assert.equal(c.protocol, 'http2');
  assert.deepEqual(c.connection, {
    idleTimeoutMs: 30_000,
    maxRequestsPerConnection: 5,
    maxConnectionDurationMs: 3_600_000,
    maxConcurrentStreams: 50,
    h2Keepalive: { intervalMs: 10_000, timeoutMs: 2000, jitterPercent: 15 },
    tcpKeepalive: { timeS: 60 },
  });
});

test('connectionPool: tcp.idleTimeout is the idle timeout of HTTP connections where http.idleTimeout is not set; "0s" turns it off', () => {
  const conn = (pool: object) => clustersFor({ host: 'reviews', trafficPolicy: { connectionPool: pool } }).get(C(''))!;
  assert.deepEqual(conn({ tcp: { idleTimeout: '10m' } }).connection, { idleTimeoutMs: 600_000 });
  assert.deepEqual(conn({ tcp: { idleTimeout: '0s' } }).connection, { idleTimeoutMs: 0 });
  assert.equal(conn({ tcp: { idleTimeout: '10m' } }).protocol, 'http1', 'no upgrade asked: HTTP/1.1 with the options');
  assert.deepEqual(conn({ tcp: { tcpKeepalive: {} } }).connection, { tcpKeepalive: {} }, "SO_KEEPALIVE with the OS's own timing");
  assert.deepEqual(conn({ http: { maxRetries: 0, http2MaxRequests: 0 } }).limits, {}, 'zero says nothing, as in Istio');
});

test('h2UpgradePolicy and useClientProtocol: which protocol each port\'s cluster speaks, as Istio decides', () => {
  const ports = [
    { name: 'http', port: 80, inboundPort: 48000, appPort: 48001 },
    { name: 'grpc', port: 50051, inboundPort: 48002, appPort: 48003 },
    { name: 'web', port: 8080, inboundPort: 48004, appPort: 48005 }, // undeclared protocol: detected
  ];
  const w = [workload('multi', { service: 'multi', port: 48000, ports }), workload('client', { port: 43000 })];
  const protocols = (http: object | undefined) => {
    const cfg = sidecarSnapshot(meshOf(http ? [{ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'multi' }, spec: { host: 'multi', trafficPolicy: { connectionPool: { http } } } }] : [], w), w[1]);
    return [80, 50051, 8080].map((port) => cfg.clusters.get(`outbound|${port}||multi.default.svc.cluster.local`)!.protocol);
  };
  // A port of undeclared protocol takes the client's protocol upstream, as Istio's sniffed ports (review: it was HTTP/1.1, so gRPC there failed).
  assert.deepEqual(protocols(undefined), ['http1', 'http2', 'downstream'], 'by port protocol alone');
  assert.deepEqual(protocols({ h2UpgradePolicy: 'UPGRADE' }), ['http2', 'http2', 'downstream'], 'UPGRADE: HTTP ports; a detected port keeps the client\'s protocol, as Istio');
  assert.deepEqual(protocols({ h2UpgradePolicy: 'DO_NOT_UPGRADE' }), ['http1', 'http2', 'downstream'], 'DO_NOT_UPGRADE never downgrades an HTTP/2 port');
  assert.deepEqual(protocols({ h2UpgradePolicy: 'DEFAULT' }), ['http1', 'http2', 'downstream'], "DEFAULT: the mesh's policy, DO_NOT_UPGRADE");
  assert.deepEqual(protocols({ useClientProtocol: true }), ['downstream', 'downstream', 'downstream'], "useClientProtocol: the client's protocol, even on an HTTP/2 port");
});

test('connectionPool of a subset and of a port replace the rule\'s, whole', () => {
  const clusters = clustersFor({
    host: 'reviews',
    trafficPolicy: { connectionPool: { http: { http2MaxRequests: 9, maxRequestsPerConnection: 2 } } },
    subsets: [
      { name: 'v1', labels: { version: 'v1' }, trafficPolicy: { connectionPool: { http: { maxRetries: 4 } } } },
      { name: 'v2', labels: { version: 'v2' } },
    ],
  });
  assert.deepEqual([clusters.get(C(''))!.limits, clusters.get(C(''))!.connection], [{ maxRequests: 9 }, { maxRequestsPerConnection: 2 }]);
  assert.deepEqual([clusters.get(C('v1'))!.limits, clusters.get(C('v1'))!.connection], [{ maxRetries: 4 }, undefined]);
  assert.deepEqual([clusters.get(C('v2'))!.limits, clusters.get(C('v2'))!.connection], [{ maxRequests: 9 }, { maxRequestsPerConnection: 2 }]);
});

test('no traffic policy: round robin, 10 s connect timeout, no outlier detection', () => {
  const c = clustersFor({ host: 'reviews' }).get(C(''))!;
  assert.deepEqual([c.lb, c.connectTimeoutMs, c.outlier, c.limits], ['round_robin', 10_000, undefined, {}]);
});

const cluster = (over: Partial<ClusterConfig> = {}): ClusterConfig => ({
  name: 'c',
  type: 'EDS',
  edsName: 'c',
  connectTimeoutMs: 1000,
  protocol: 'http1',
  limits: {},
  lb: 'round_robin',
  panicPercent: 0,
  outlier: { consecutive5xx: 3, consecutiveGateway: 0, intervalMs: 1000, baseEjectionMs: 2000, maxEjectionPercent: 50 },
  ...over,
});
const eps: Endpoint[] = [1, 2, 3, 4].map((i) => ({ address: '10.0.0.1', port: 8000 + i, healthy: true }));

test('outlier detection: N consecutive 5xx eject an endpoint for the base time, longer each time; a success resets the run', () => {
  const c = cluster();
  const od = new OutlierDetector();
  od.report(c, eps[0], 503, 0, eps);
  od.report(c, eps[0], 503, 1, eps);
  od.report(c, eps[0], 200, 2, eps);
  od.report(c, eps[0], 503, 3, eps);
  od.report(c, eps[0], 'local_error', 4, eps);
  assert.equal(od.available(c, eps, 5).length, 4, 'two in a row after a success: not yet');
  od.report(c, eps[0], 500, 6, eps);
  assert.deepEqual(od.available(c, eps, 7).map((e) => e.port), [8002, 8003, 8004]);
  assert.equal(od.available(c, eps, 6 + 2000).length, 4, 'back after base_ejection_time');
  for (let i = 0; i < 3; i++) od.report(c, eps[0], 503, 3000 + i, eps);
  assert.equal(od.available(c, eps, 3002 + 3999).length, 3, 'the second ejection lasts twice as long');
  assert.equal(od.available(c, eps, 3002 + 4000).length, 4);
});

test('outlier detection: at most max_ejection_percent of a cluster (at least one endpoint), and panic mode below the threshold', () => {
  const c = cluster({ outlier: { consecutive5xx: 1, consecutiveGateway: 0, intervalMs: 1000, baseEjectionMs: 10_000, maxEjectionPercent: 50 } });
  const od = new OutlierDetector();
  for (const e of eps) od.report(c, e, 503, 0, eps);
  assert.equal(od.available(c, eps, 1).length, 2, 'half of four at most');
  const panicky = { ...c, panicPercent: 75 };
  assert.equal(od.available(panicky, eps, 1).length, 4, 'below 75% left: ejections ignored');
  const single = cluster({ outlier: { consecutive5xx: 1, consecutiveGateway: 0, intervalMs: 1000, baseEjectionMs: 10_000, maxEjectionPercent: 10 } });
  const od1 = new OutlierDetector();
  od1.report(single, eps[0], 503, 0, [eps[0]]);
  assert.equal(od1.available(single, [eps[0]], 1).length, 0, 'one endpoint is ejected even at 10%');
});

test('endpoint choice: round robin cycles, least request takes the less busy of two, a retry avoids endpoints tried', async () => {
  const { InFlight, pickEndpoint } = await import('../../src/proxy/upstream/balance.ts');
  const rr = new Map<string, number>();
  const inflight = new InFlight();
  const rrPicks = [0, 1, 2, 3, 4].map(() => pickEndpoint(cluster(), 'c', eps, rr, inflight, undefined, Math.random).port);
  assert.deepEqual(rrPicks, [8001, 8002, 8003, 8004, 8001]);
  for (let i = 0; i < 5; i++) inflight.add(eps[0], 1);
  const seq = [0, 0.3]; // the two random choices: eps[0] (busy) and eps[1]
  let k = 0;
  const lr = pickEndpoint(cluster({ lb: 'least_request' }), 'c', eps, rr, inflight, undefined, () => seq[k++ % 2]);
  assert.equal(lr.port, 8002);
  const tried = new Set([eps[1]]);
  for (let i = 0; i < 20; i++) assert.notEqual(pickEndpoint(cluster({ lb: 'random' }), 'c', eps, rr, inflight, tried, Math.random).port, 8002);
});

test('consistentHash: one header value always reaches one endpoint, and only about 1/N of keys move when an endpoint leaves', async (t) => {
  const { meshOf: mesh, request: req } = await import('../snapshot.ts');
  const { decide } = await import('../../src/proxy/http/forward.ts');
  const { hashKeyOf } = await import('../../src/proxy/http/hash-key.ts');
  const { pickEndpoint, InFlight } = await import('../../src/proxy/upstream/balance.ts');
  for (const lb of [{ ringHash: { minimumRingSize: 1024 } }, { maglev: { tableSize: 65537 } }]) {
    const ws = [0, 1, 2, 3].map((i) => workload(`r${i}`, { service: 'reviews', port: 41000 + i * 10 }));
    const clientW = workload('client', { port: 45000 });
    const dr = { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews' }, spec: { host: 'reviews', trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user', ...lb } } } } };
    const where = (cfg: any, user: string) => {
      const d = decide(cfg, 'outbound', req('reviews', '/', ['x-user', user]), 0.5);
      const key = hashKeyOf(d.route.hashPolicy!, req('reviews', '/', ['x-user', user]).head)!.key;
      return pickEndpoint(d.cluster, d.clusterName, d.healthy, new Map(), new InFlight(), undefined, Math.random, key).port;
    };
    const all = sidecarSnapshot(mesh([dr], [...ws, clientW]), clientW);
    const c = all.clusters.get('outbound|80||reviews.default.svc.cluster.local')!;
    assert.equal(c.lb, 'maglev' in lb ? 'maglev' : 'ring_hash');
    const users = Array.from({ length: 1000 }, (_, i) => `user-${i}`);
    const before = users.map((u) => where(all, u));
    assert.deepEqual(users.slice(0, 20).map((u) => where(all, u)), before.slice(0, 20), 'the same key, the same endpoint');
    assert.ok(new Set(before).size === 4, 'keys spread over every endpoint');
    const three = sidecarSnapshot(mesh([dr], [...ws.slice(1), clientW]), clientW); // r0 leaves
    const after = users.map((u) => where(three, u));
    const moved = users.filter((_, i) => before[i] !== after[i]).length;
    const owned = before.filter((p) => p === 41000).length;
    t.diagnostic(`${Object.keys(lb)[0]}: the endpoint that left had ${owned} of 1000 keys; ${moved} moved (1/N = 250)`);
    assert.ok(users.every((_, i) => before[i] !== 41000 || after[i] !== 41000), 'every key of the endpoint that left moved');
    assert.ok(owned < 400, `${owned} of 1000 keys on one of 4 endpoints`);
    // As in Envoy, the other endpoints' share of the ring grows, so a few more keys move than the
    // departed endpoint had; about 1/N in all.
    assert.ok(moved <= 400, `${moved} of 1000 keys moved when one of 4 endpoints left`);
  }
});

test('review: ejections are capped at 300 s and the multiplier comes down while healthy; a hash skips ejected endpoints without rebuilding its table', async () => {
  const c = cluster({ outlier: { consecutive5xx: 1, consecutiveGateway: 0, intervalMs: 1000, baseEjectionMs: 30_000, maxEjectionPercent: 100 } });
  const od = new OutlierDetector();
  let t = 0;
  for (let i = 0; i < 20; i++) {
    od.report(c, eps[0], 503, t, eps);
    t += 1; // fails again as soon as it is back
    while (od.available(c, eps, t).length < 4) t += 1000;
  }
  assert.ok(t < 20 * 300_000 + 20_000, 'no ejection longer than 300 s');
  // Healthy for a long while: the next ejection is short again.
  t += 3_600_000;
  od.report(c, eps[0], 200, t, eps);
  od.report(c, eps[0], 503, t, eps);
  assert.equal(od.available(c, eps, t + 30_000).length, 4, 'back after one base ejection time');
  // Consistent hashing with an ejected endpoint: the other keys stay where they were.
  const { pickEndpoint, InFlight } = await import('../../src/proxy/upstream/balance.ts');
  const { hash32 } = await import('../../src/proxy/upstream/hash.ts');
  const ring = cluster({ lb: 'maglev', hashTableSize: 65537 });
  const keys = Array.from({ length: 200 }, (_, i) => hash32(`k${i}`));
  const before = keys.map((k) => pickEndpoint(ring, 'c', eps, new Map(), new InFlight(), undefined, Math.random, k, eps));
  const left = eps.slice(1);
  const after = keys.map((k) => pickEndpoint(ring, 'c', left, new Map(), new InFlight(), undefined, Math.random, k, eps));
  assert.ok(after.every((e) => e !== eps[0]));
  assert.ok(keys.every((_, i) => before[i] === eps[0] || after[i] === before[i]), 'only the ejected endpoint\'s keys moved');
});

test('review: a consistent-hash route retries on the same endpoint (no previous_hosts), and a Maglev table of 1 loads', async () => {
  const { matchRoute } = await import('../../src/proxy/http/forward.ts');
  const { meshOf: mesh, request: req } = await import('../snapshot.ts');
  const spec = (maglev: object) => ({ host: 'reviews', trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user', maglev } } } });
  const cfg = sidecarSnapshot(mesh([{ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews' }, spec: spec({ tableSize: 65537 }) }], workloads), workloads[2]);
  assert.equal(matchRoute(cfg, 'outbound', req('reviews').head).retry!.otherHosts, false);
  const one = sidecarSnapshot(mesh([{ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews' }, spec: spec({ tableSize: 1 }) }], workloads), workloads[2]);
  assert.equal(one.clusters.get(C(''))!.hashTableSize, 1);
});

test('outlierDetection splitExternalLocalOriginErrors: connection failures count on their own (consecutiveLocalOriginFailures), no longer as 5xx; answers reset them', async () => {
  const { translate } = await import('../../src/control/translate/translate.ts');
  const { convertCluster } = await import('../../src/proxy/xds-client/convert.ts');
  const { meshOf, workload } = await import('../snapshot.ts');
  const dr = { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'r', namespace: 'default' }, spec: { host: 'reviews', trafficPolicy: { outlierDetection: { consecutive5xxErrors: 2, splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 3 } } } };
  const client = workload('client', { port: 40000 });
  const raw = translate(meshOf([dr], [workload('r1', { service: 'reviews', port: 41000 }), client]), client).clusters['outbound|80||reviews.default.svc.cluster.local'] as any;
  assert.equal(raw.outlier_detection.split_external_local_origin_errors, true);
  assert.deepEqual(raw.outlier_detection.consecutive_local_origin_failure, { value: 3 });
  const c = { ...cluster(), outlier: convertCluster(raw).outlier };
  assert.deepEqual(c.outlier, { consecutive5xx: 2, consecutiveGateway: 0, intervalMs: 10_000, baseEjectionMs: 30_000, maxEjectionPercent: 10, splitLocalOrigin: true, consecutiveLocalOrigin: 3 });
  const few = eps.slice(0, 1); // one endpoint: maxEjectionPercent still lets one go
  const od = new OutlierDetector();
  od.report(c, few[0], 'local_error', 0, few);
  od.report(c, few[0], 'local_error', 0, few);
  assert.equal(od.available(c, few, 1).length, 1, 'two connection failures: not 5xx, and short of 3 local-origin failures');
  od.report(c, few[0], 200, 0, few); // an answer: the connection works, the run starts again
  for (let i = 0; i < 2; i++) od.report(c, few[0], 'local_error', 0, few);
  assert.equal(od.available(c, few, 1).length, 1);
  od.report(c, few[0], 'local_error', 0, few);
  assert.equal(od.available(c, few, 1).length, 0, 'three in a row: ejected');
  // Without the split, the same two connection failures are two 5xx: ejected.
  const { splitLocalOrigin: _s, consecutiveLocalOrigin: _l, ...unsplit } = c.outlier!;
  const plain = { ...c, outlier: unsplit };
  const od2 = new OutlierDetector();
  od2.report(plain, few[0], 'local_error', 0, few);
  od2.report(plain, few[0], 'local_error', 0, few);
  assert.equal(od2.available(plain, few, 1).length, 0);
});

test('loadBalancer PASSTHROUGH makes the cluster Istio\'s ORIGINAL_DST (for the rule, or a subset only), and a request goes where it names', async () => {
  const { meshOf, sidecarSnapshot, workload } = await import('../snapshot.ts');
  const { decide } = await import('../../src/proxy/http/forward.ts');
  const dr = { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'r', namespace: 'default' }, spec: { host: 'reviews', subsets: [{ name: 'direct', labels: {}, trafficPolicy: { loadBalancer: { simple: 'PASSTHROUGH' } } }, { name: 'v1', labels: {} }] } };
  const vs = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'r', namespace: 'default' }, spec: { hosts: ['reviews'], http: [{ match: [{ headers: { direct: { exact: '1' } } }], route: [{ destination: { host: 'reviews', subset: 'direct' } }] }, { route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] } };
  const client = workload('client', { port: 40000 });
  const cfg = sidecarSnapshot(meshOf([dr, vs], [workload('r1', { service: 'reviews', port: 41000 }), client]), client);
  const ask = (headers: string[]) => decide(cfg, 'outbound', { head: { method: 'GET', authority: 'reviews:80', path: '/', query: '', headers, hasBody: false, protocol: 'HTTP/1.1' } } as any, 0.5);
  const direct = ask(['direct', '1']);
  assert.equal(direct.cluster.type, 'ORIGINAL_DST');
  assert.deepEqual(direct.healthy.map((e) => `${e.address}:${e.port}`), ['reviews:80'], 'where the request names');
  const balanced = ask([]);
  assert.equal(balanced.cluster.type, 'EDS');
  assert.deepEqual(balanced.healthy.map((e) => e.port), [41000]);
});

test("connectionPool.tcp idleTimeout and maxConnectionDuration limit TCP tunnels, from the rule's top-level policy as Istio's tcp_proxy (the first destination's rule for a split)", async () => {
  const { connectTarget } = await import('../../src/proxy/http/forward.ts');
  const db = (name: string, port: number) => workload(name, { service: name, port, ports: [{ name: 'tcp-db', port: 5432, inboundPort: port, appPort: port + 1 }] });
  const ws = [db('db', 44000), db('db2', 44100), workloads[2]];
  const rule = (host: string, tcp: object, subsets: object[] = []) => ({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: host }, spec: { host, trafficPolicy: { connectionPool: { tcp } }, subsets } });
  const tunnelOf = (config: object[], authority: string) => {
    const t = connectTarget(sidecarSnapshot(meshOf(config, ws), workloads[2]), 'outbound', authority, 0.5);
    return typeof t === 'object' && (t.kind === 'tcp' || t.kind === 'detect') ? (t.tunnel ?? {}) : t;
  };
  assert.deepEqual(tunnelOf([rule('db', { idleTimeout: '90s', maxConnectionDuration: '1h' })], 'db:5432'), { idleTimeoutMs: 90_000, maxDurationMs: 3_600_000 });
  assert.deepEqual(tunnelOf([rule('db', { idleTimeout: '0s' })], 'db:5432'), { idleTimeoutMs: 0 }, '"0s": no idle timeout');
  assert.deepEqual(tunnelOf([], 'db:5432'), {}, "no rule: the listener's idle timeout (1 h, Istio's default)");
  const split = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'db' }, spec: { hosts: ['db'], tcp: [{ route: [{ destination: { host: 'db2' }, weight: 50 }, { destination: { host: 'db' }, weight: 50 }] }] } };
  assert.deepEqual(tunnelOf([split, rule('db', { idleTimeout: '1s' }), rule('db2', { idleTimeout: '2s' })], 'db:5432'), { idleTimeoutMs: 2000 }, "the first destination's rule");
  const subsetOnly = { ...rule('db', { maxConnections: 3 }), spec: { host: 'db', subsets: [{ name: 'a', labels: {}, trafficPolicy: { connectionPool: { tcp: { idleTimeout: '5s' } } } }] } };
  assert.deepEqual(tunnelOf([subsetOnly], 'db:5432'), {}, "a subset's tcp settings do not reach the tunnel (Istio reads the rule's top level)");
});
