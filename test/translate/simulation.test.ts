// Simulation tests, as Istio's pilot has them: translate a config, load it as the sidecar does
// (every resource through the same conversion and snapshot code, so a NACK fails the test), and
// ask which route, cluster and endpoints a given request gets. No sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkResource } from '../../src/api/index.ts';
import type { MeshSnapshot, Workload } from '../../src/control/model/model.ts';
import type { RuntimeConfig } from '../../src/proxy/config.ts';
import { ProxyError } from '../../src/proxy/errors.ts';
import { decide } from '../../src/proxy/http/forward.ts';
import type { Downstream, RequestHead } from '../../src/proxy/http/types.ts';
import { sidecarSnapshot } from '../snapshot.ts';

const w = (name: string, labels: Record<string, string>, port: number, extra: Partial<Workload> = {}): Workload => ({
  proxyId: `${name}-id`,
  name,
  namespace: 'default',
  service: 'reviews',
  servicePort: 80,
  labels,
  address: '127.0.0.1',
  inboundPort: port,
  appPort: port + 1,
  healthy: true,
  ...extra,
});
const client: Workload = { proxyId: 'client-id', name: 'client', namespace: 'default', servicePort: 80, labels: {}, address: '127.0.0.1', outboundPort: 40000, healthy: true };

const CONFIG = [
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'reviews', namespace: 'default' },
    spec: {
      hosts: ['reviews'],
      http: [
        { name: 'jason', match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: 'reviews', subset: 'v3' } }] },
        { name: 'split', route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 90 }, { destination: { host: 'reviews', subset: 'v2' }, weight: 10 }] },
      ],
    },
  },
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'reviews', namespace: 'default' },
    spec: { host: 'reviews', subsets: ['v1', 'v2', 'v3'].map((v) => ({ name: v, labels: { version: v } })) },
  },
];

/** The sidecar's snapshot after the control plane's full config for `proxy`, type by type. */
function sidecarConfig(workloads: Workload[], proxy: Workload): RuntimeConfig {
  const resources = CONFIG.map((r, i) => checkResource(r, `config[${i}]`));
  const mesh: MeshSnapshot = {
    revision: 1,
    virtualServices: resources.filter((r: any) => r.kind === 'VirtualService') as any,
    destinationRules: resources.filter((r: any) => r.kind === 'DestinationRule') as any,
    workloads,
  };
  return sidecarSnapshot(mesh, proxy);
}

/** A request as the HTTP/1.1 codec would hand it to the request path; only the head matters here. */
function request(authority: string, path = '/', headers: string[] = []): Downstream {
  const head: RequestHead = { method: 'GET', authority, path, query: '', headers, hasBody: false, protocol: 'HTTP/1.1' };
  return { head } as Downstream;
}

const workloads = [w('reviews-v1', { version: 'v1' }, 41000), w('reviews-v2', { version: 'v2' }, 42000), w('reviews-v3', { version: 'v3' }, 43000), client];
const cfg = sidecarConfig(workloads, client);

const cases: { name: string; req: Downstream; rand: number; cluster?: string; endpoints?: number[]; error?: string }[] = [
  { name: 'the 90% side of the split', req: request('reviews'), rand: 0.05, cluster: 'outbound|80|v1|reviews.default.svc.cluster.local', endpoints: [41000] },
  { name: 'the 10% side of the split', req: request('reviews'), rand: 0.95, cluster: 'outbound|80|v2|reviews.default.svc.cluster.local', endpoints: [42000] },
  { name: 'every name of the service reaches it', req: request('reviews.default.svc.cluster.local:80'), rand: 0.05, cluster: 'outbound|80|v1|reviews.default.svc.cluster.local' },
  { name: 'a header match wins before the split', req: request('reviews', '/', ['end-user', 'jason']), rand: 0.05, cluster: 'outbound|80|v3|reviews.default.svc.cluster.local', endpoints: [43000] },
  { name: 'another header value takes the split', req: request('reviews', '/', ['end-user', 'ada']), rand: 0.05, cluster: 'outbound|80|v1|reviews.default.svc.cluster.local' },
  { name: 'an unknown host passes through to where it names (ALLOW_ANY, as Istio)', req: request('ratings:9080'), rand: 0.5, cluster: 'PassthroughCluster', endpoints: [9080] },
];

for (const c of cases) {
  test(`simulation: ${c.name}`, () => {
    if (c.error) {
      assert.throws(() => decide(cfg, 'outbound', c.req, c.rand), (e: unknown) => e instanceof ProxyError && e.code === c.error);
      return;
    }
    const d = decide(cfg, 'outbound', c.req, c.rand);
    assert.equal(d.clusterName, c.cluster);
    if (c.endpoints) assert.deepEqual(d.healthy.map((e) => e.port), c.endpoints);
  });
}

test('simulation: a subset whose only workload is unhealthy answers 503 no_healthy_endpoint, naming the cluster', () => {
  const sick = sidecarConfig([w('reviews-v1', { version: 'v1' }, 41000), w('reviews-v2', { version: 'v2' }, 42000, { healthy: false }), client], client);
  assert.throws(
    () => decide(sick, 'outbound', request('reviews'), 0.95),
    (e: unknown) => e instanceof ProxyError && e.code === 'no_healthy_endpoint' && e.status === 503 && /outbound\|80\|v2\|reviews/.test(e.message),
  );
});

test("simulation: the server sidecar's inbound listener sends everything to its app", () => {
  const v1 = workloads[0];
  const server = sidecarConfig(workloads, v1);
  const d = decide(server, `inbound|${v1.inboundPort}`, request('anything', '/x'), 0.5);
  assert.equal(d.clusterName, 'inbound|80||');
  assert.deepEqual(d.healthy.map((e) => `${e.address}:${e.port}`), [`127.0.0.1:${v1.appPort}`]);
});

test("simulation: each side of a split gets its subset's connection pool: limits across the subset, its protocol for the client's request", async () => {
  const { meshOf } = await import('../snapshot.ts');
  const { upstreamProtocolFor } = await import('../../src/proxy/upstream/pools.ts');
  const rule = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'reviews', namespace: 'default' },
    spec: {
      host: 'reviews',
      trafficPolicy: { connectionPool: { tcp: { maxConnections: 4 }, http: { h2UpgradePolicy: 'UPGRADE' } } },
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' }, trafficPolicy: { connectionPool: { http: { useClientProtocol: true, http2MaxRequests: 8, maxRetries: 1 } } } },
      ],
    },
  };
  const split = { ...CONFIG[0], spec: { hosts: ['reviews'], http: [CONFIG[0].spec.http![1]] } };
  const sim = sidecarSnapshot(meshOf([split, rule], workloads), client);
  const h2 = (authority: string): Downstream => ({ head: { ...request(authority).head, protocol: 'HTTP/2' } }) as Downstream;
  const v1 = decide(sim, 'outbound', request('reviews'), 0.05);
  assert.deepEqual([v1.clusterName, v1.cluster.limits, upstreamProtocolFor(v1.cluster, request('reviews').head)], ['outbound|80|v1|reviews.default.svc.cluster.local', { maxConnections: 4 }, 'http2']);
  const v2 = decide(sim, 'outbound', h2('reviews'), 0.95);
  assert.deepEqual([v2.clusterName, v2.cluster.limits], ['outbound|80|v2|reviews.default.svc.cluster.local', { maxRequests: 8, maxRetries: 1 }], "the subset's connectionPool replaces the rule's whole");
  assert.deepEqual([upstreamProtocolFor(v2.cluster, h2('reviews').head), upstreamProtocolFor(v2.cluster, request('reviews').head)], ['http2', 'http1'], "the client's protocol, either way");
});
