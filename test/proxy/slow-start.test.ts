// Slow start (Istio's warmup, Envoy's slow_start_config): an endpoint added to a cluster gets a
// share that grows over the window; the cluster's first endpoints and those past the window get
// their full share.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SlowStart, pickWeighted } from '../../src/proxy/upstream/slow-start.ts';
import type { ClusterConfig, Endpoint } from '../../src/proxy/xds-client/convert.ts';
import { convertCluster } from '../../src/proxy/xds-client/convert.ts';
import { translate } from '../../src/control/translate/translate.ts';
import { meshOf, workload } from '../snapshot.ts';

const ep = (port: number): Endpoint => ({ address: '127.0.0.1', port, healthy: true });
const cluster = (slowStart?: ClusterConfig['slowStart']): ClusterConfig => ({ name: 'c', type: 'EDS', edsName: 'c', connectTimeoutMs: 1000, protocol: 'http1', limits: {}, lb: 'round_robin', panicPercent: 50, ...(slowStart ? { slowStart } : {}) });

test('slow start: the first endpoints are not warming; one added later starts at min_weight_percent and grows with time_factor^(1/aggression)', () => {
  const ss = new SlowStart();
  const c = cluster({ windowMs: 10_000, aggression: 1, minWeightPercent: 10 });
  const a = ep(1);
  const first = [a];
  assert.equal(ss.weights(c, 'c', first, 0), undefined, 'the initial endpoints take their full share');
  const b = ep(2);
  const second = [ep(1), b];
  const at0 = ss.weights(c, 'c', second, 1_000)!;
  assert.equal(at0(second[0]), 1, 'an endpoint that was there before (a new object, the same address) is not warming');
  assert.equal(at0(b), 0.1, 'at first: min_weight_percent');
  assert.equal(ss.weights(c, 'c', second, 6_000)!(b), 0.5, 'half way through the window: half');
  assert.equal(ss.weights(c, 'c', second, 11_001), undefined, 'past the window: no weights, the cluster policy again');
  const square = new SlowStart();
  square.weights(cluster({ windowMs: 10_000, aggression: 2, minWeightPercent: 0 }), 'c', first, 0);
  const w = square.weights(cluster({ windowMs: 10_000, aggression: 2, minWeightPercent: 0 }), 'c', second, 0)!;
  assert.ok(Math.abs(w(b) - 0.0001 ** 0.5) < 1e-9, 'aggression 2: the square root of time_factor (an age of at least 1 ms, as Envoy)');
  // A short window (500 ms, which Istio allows): the new endpoint still starts low, never above its full weight.
  const quick = new SlowStart();
  const fast = cluster({ windowMs: 500, aggression: 1, minWeightPercent: 10 });
  quick.weights(fast, 'c', first, 0);
  assert.equal(quick.weights(fast, 'c', second, 0)!(b), 0.1, 'review: with a 1 s floor on the age it was 2, double the old endpoints\' weight');
  assert.equal(quick.weights(fast, 'c', second, 250)!(b), 0.5);
  assert.equal(new SlowStart().weights(cluster(), 'c', second, 0), undefined, 'no slow start configured');
});

test('slow start: weighted choice follows the weights, and a retry avoids the endpoints tried', () => {
  const eps = [ep(1), ep(2)];
  const counts = [0, 0];
  for (let i = 0; i < 1000; i++) counts[pickWeighted(eps, (e) => (e.port === 2 ? 0.25 : 1), undefined, () => (i + 0.5) / 1000).port - 1]++;
  assert.deepEqual(counts, [800, 200]);
  assert.equal(pickWeighted(eps, () => 1, new Set([eps[0]]), () => 0).port, 2);
});

test('warmup in a DestinationRule is Envoy\'s slow_start_config on ROUND_ROBIN and LEAST_REQUEST clusters, and the sidecar takes it', () => {
  const cl = (lb: object) => {
    const dr = { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'r', namespace: 'default' }, spec: { host: 'reviews', trafficPolicy: { loadBalancer: lb } } };
    const client = workload('client', { port: 40000 });
    return translate(meshOf([dr], [workload('r1', { service: 'reviews', port: 41000 }), client]), client).clusters['outbound|80||reviews.default.svc.cluster.local'] as any;
  };
  const rr = cl({ warmup: { duration: '30s', minimumPercent: 20, aggression: 1.5 } });
  assert.deepEqual(rr.round_robin_lb_config, { slow_start_config: { slow_start_window: { seconds: 30 }, aggression: { default_value: 1.5, runtime_key: 'upstream.slow_start.aggression' }, min_weight_percent: { value: 20 } } });
  assert.deepEqual(convertCluster(rr).slowStart, { windowMs: 30_000, aggression: 1.5, minWeightPercent: 20 });
  const lr = cl({ simple: 'LEAST_REQUEST', warmupDurationSecs: '10s' });
  assert.deepEqual(convertCluster(lr).slowStart, { windowMs: 10_000, aggression: 1, minWeightPercent: 10 });
  assert.equal(cl({ consistentHash: { httpHeaderName: 'x' }, warmup: { duration: '10s' } }).round_robin_lb_config, undefined);
});

test('review: per-cluster state goes with the cluster (slow start, and round-robin counters of its priorities and localities)', async () => {
  const { pruneRoundRobin } = await import('../../src/proxy/upstream/choose.ts');
  const { TIER } = await import('../../src/proxy/upstream/priority.ts');
  const rr = new Map([['outbound|80||a', 1], [`outbound|80||a${TIER}p0`, 2], ['outbound|80||b', 3], [`outbound|80||b${TIER}p1l0`, 4]]);
  pruneRoundRobin(rr, new Map([['outbound|80||a', {}]]));
  assert.deepEqual([...rr.keys()], ['outbound|80||a', `outbound|80||a${TIER}p0`]);
  const ss = new SlowStart();
  const c = cluster({ windowMs: 10_000, aggression: 1, minWeightPercent: 10 });
  ss.weights(c, 'gone', [ep(1)], 0);
  ss.retain(new Map());
  // Forgotten: its next list is its first again, so nothing in it is warming.
  assert.equal(ss.weights(c, 'gone', [ep(1), ep(2)], 1), undefined);
});
