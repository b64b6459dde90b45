// Endpoint weights (a WorkloadEntry's or ServiceEntry endpoint's `weight`, Envoy's lb_endpoint
// load_balancing_weight): what translate sends, and the shares the sidecar's load balancers give.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Workload } from '../../src/control/model/model.ts';
import { translate } from '../../src/control/translate/translate.ts';
import { decide } from '../../src/proxy/http/forward.ts';
import type { Downstream, RequestHead } from '../../src/proxy/http/types.ts';
import { InFlight, chooseEndpoint } from '../../src/proxy/upstream/balance.ts';
import { Maglev, Ring, hash32 } from '../../src/proxy/upstream/hash.ts';
import type { Endpoint } from '../../src/proxy/xds-client/convert.ts';
import { meshOf, sidecarSnapshot, workload } from '../snapshot.ts';

const entry = (lb?: object) => [
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: 'db', namespace: 'default' },
    spec: { hosts: ['db.example.com'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'STATIC', endpoints: [{ address: '127.0.0.2', weight: 3 }, { address: '127.0.0.3' }] },
  },
  ...(lb ? [{ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'db', namespace: 'default' }, spec: { host: 'db.example.com', trafficPolicy: { loadBalancer: lb } } }] : []),
];
const client: Workload = workload('client', { port: 40000 });
const CLUSTER = 'outbound|80||db.example.com';

test('endpoint weights go out as each lb_endpoint\'s load_balancing_weight, and the locality\'s weight is their sum', () => {
  const cla = translate(meshOf(entry(), [client]), client).endpoints[CLUSTER] as any;
  assert.deepEqual(cla.endpoints[0].lb_endpoints.map((e: any) => e.load_balancing_weight?.value), [3, undefined]);
  assert.equal(cla.endpoints[0].load_balancing_weight.value, 4);
});

/** Where `n` requests go, rand going evenly over [0, 1): address -> count. */
function spread(lb: object | undefined, n: number): Record<string, number> {
  const cfg = sidecarSnapshot(meshOf(entry(lb), [client]), client);
  const req = { head: { method: 'GET', authority: 'db.example.com', path: '/', query: '', headers: [], hasBody: false, protocol: 'HTTP/1.1' } as RequestHead } as Downstream;
  const d = decide(cfg, 'outbound', req, 0.5);
  const out: Record<string, number> = {};
  const rr = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const ep = chooseEndpoint(d.cluster, d.clusterName, d, d.healthy, rr, new InFlight(), undefined, () => (i + 0.5) / n)!;
    out[ep.address] = (out[ep.address] ?? 0) + 1;
  }
  return out;
}

test('simulation: round robin and least request give a weight-3 endpoint three times the other\'s share; random ignores weights, as Envoy\'s', () => {
  assert.deepEqual(spread(undefined, 1000), { '127.0.0.2': 750, '127.0.0.3': 250 });
  assert.deepEqual(spread({ simple: 'LEAST_REQUEST' }, 1000), { '127.0.0.2': 750, '127.0.0.3': 250 });
  assert.deepEqual(spread({ simple: 'RANDOM' }, 1000), { '127.0.0.2': 500, '127.0.0.3': 500 });
});

test('ring hash and Maglev give a weighted endpoint its share of keys', () => {
  const eps: Endpoint[] = [{ address: '10.0.0.1', port: 80, healthy: true, weight: 3 }, { address: '10.0.0.2', port: 80, healthy: true }];
  for (const table of [new Ring(eps, 1024), new Maglev(eps, 65537)]) {
    let heavy = 0;
    for (let k = 0; k < 10_000; k++) if (table.pick(hash32(`key-${k}`)) === eps[0]) heavy++;
    assert.ok(heavy > 7000 && heavy < 8000, `${table.constructor.name}: ${heavy} of 10,000 keys to the endpoint weighted 3`);
  }
});

test('review: a ring gives a heavy endpoint its share even among many light ones (Envoy scales the ring to the lightest)', () => {
  const eps: Endpoint[] = Array.from({ length: 1000 }, (_, i) => ({ address: `10.0.${i >> 8}.${i & 255}`, port: 80, healthy: true }));
  const heavy: Endpoint = { address: '10.9.9.9', port: 80, healthy: true, weight: 10 };
  const ring = new Ring([...eps, heavy], 1024);
  const points = (ring as any).owners as Endpoint[];
  const count = (e: Endpoint) => points.filter((x) => x === e).length;
  assert.equal(count(heavy), 10 * count(eps[0]), `${count(heavy)} points against ${count(eps[0])}`);
});

test('review: weights whose sum would not fit a uint32 are scaled down, keeping their proportions, and the sidecar takes them (it NACKed every EDS)', () => {
  const se = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: 'big', namespace: 'default' },
    spec: { hosts: ['big.example.com'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'STATIC', endpoints: [{ address: '127.0.0.2', weight: 4294967295 }, { address: '127.0.0.3', weight: 1431655765 }] },
  };
  const mesh = meshOf([se], [client]);
  const cla = translate(mesh, client).endpoints['outbound|80||big.example.com'] as any;
  const ws = cla.endpoints[0].lb_endpoints.map((e: any) => e.load_balancing_weight?.value ?? 1);
  assert.ok(ws[0] + ws[1] <= 2 ** 32 - 1, String(ws));
  assert.ok(Math.abs(ws[0] / ws[1] - 3) < 0.001, String(ws));
  assert.equal(cla.endpoints[0].load_balancing_weight.value, ws[0] + ws[1]);
  const cfg = sidecarSnapshot(mesh, client);
  assert.equal(cfg.endpoints.get('outbound|80||big.example.com')?.length, 2);
});
