// Simulation tests for ServiceEntry, WorkloadEntry and Sidecar: translate a mesh, load it as the
// sidecar does (a NACK fails the test), and ask where a request goes, to which endpoints, or what
// it is answered. No sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Workload } from '../../src/control/model/model.ts';
import { PushCache } from '../../src/control/push/cache.ts';
import { connectTarget, decide } from '../../src/proxy/http/forward.ts';
import { meshOf, request, routeOf, sidecarSnapshot, simulate, workload } from '../snapshot.ts';

const res = (kind: string, name: string, namespace: string, spec: object) => ({ apiVersion: 'networking.istio.io/v1', kind, metadata: { name, namespace }, spec });
const se = (name: string, namespace: string, spec: object) => res('ServiceEntry', name, namespace, spec);
const we = (name: string, namespace: string, spec: object) => res('WorkloadEntry', name, namespace, spec);
const sidecar = (name: string, namespace: string, spec: object) => res('Sidecar', name, namespace, spec);
const vs = (name: string, namespace: string, spec: object) => res('VirtualService', name, namespace, spec);
const dr = (name: string, namespace: string, spec: object) => res('DestinationRule', name, namespace, spec);
const C = (host: string, subset = '', port = 80) => `outbound|${port}|${subset}|${host}`;

const client = workload('client', { port: 43000, labels: { app: 'client' } });

/** Where a request goes, and the endpoints (address:port) it may reach there. */
function reach(cfg: ReturnType<typeof sidecarSnapshot>, authority: string, path = '/'): { cluster: string; endpoints: string[]; type: string } {
  const d = decide(cfg, 'outbound', request(authority, path), 0.5);
  return { cluster: d.clusterName, endpoints: d.healthy.map((e) => `${e.address}:${e.port}`).sort(), type: d.cluster.type };
}

test('ServiceEntry STATIC: its host (and its address) reaches its endpoints, on their own ports, targetPort, or the service port', () => {
  const mesh = meshOf(
    [
      se('api', 'default', {
        hosts: ['api.example.com'],
        addresses: ['240.0.0.10'],
        ports: [
          { number: 80, name: 'http', protocol: 'HTTP' },
          { number: 8080, name: 'http-alt', protocol: 'HTTP', targetPort: 9090 },
        ],
        resolution: 'STATIC',
        endpoints: [{ address: '127.0.0.2', ports: { http: 51000 } }, { address: '127.0.0.3' }],
      }),
    ],
    [client],
  );
  const cfg = sidecarSnapshot(mesh, client);
  assert.deepEqual(reach(cfg, 'api.example.com'), { cluster: C('api.example.com'), endpoints: ['127.0.0.2:51000', '127.0.0.3:80'], type: 'EDS' });
  assert.deepEqual(reach(cfg, 'api.example.com:8080').endpoints, ['127.0.0.2:9090', '127.0.0.3:9090']);
  assert.equal(reach(cfg, '240.0.0.10').cluster, C('api.example.com'));
  assert.equal(reach(cfg, '240.0.0.10:8080').cluster, C('api.example.com', '', 8080));
});

test('ServiceEntry DNS: the endpoints are names the sidecar resolves (STRICT_DNS); with no endpoints, the host itself; DNS_ROUND_ROBIN is LOGICAL_DNS', () => {
  const mesh = meshOf(
    [
      se('dns', 'default', { hosts: ['db.example.com'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'DNS', endpoints: [{ address: 'db-1.internal' }, { address: 'db-2.internal', ports: { http: 8081 } }] }),
      se('self', 'default', { hosts: ['localhost.example'], ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: 8000 }], resolution: 'DNS' }),
      se('rr', 'default', { hosts: ['rr.example.com'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'DNS_ROUND_ROBIN' }),
    ],
    [client],
  );
  const cfg = sidecarSnapshot(mesh, client);
  assert.deepEqual(reach(cfg, 'db.example.com'), { cluster: C('db.example.com'), endpoints: ['db-1.internal:80', 'db-2.internal:8081'], type: 'STRICT_DNS' });
  assert.deepEqual(reach(cfg, 'localhost.example').endpoints, ['localhost.example:8000']);
  assert.deepEqual(reach(cfg, 'rr.example.com'), { cluster: C('rr.example.com'), endpoints: ['rr.example.com:80'], type: 'LOGICAL_DNS' });
});

test('ServiceEntry NONE (the default): the request goes where its authority says, for each host of a wildcard too', () => {
  const mesh = meshOf([se('ext', 'default', { hosts: ['*.example.org'], ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }] })], [client]);
  const cfg = sidecarSnapshot(mesh, client);
  assert.deepEqual(reach(cfg, 'a.example.org:8080'), { cluster: C('*.example.org', '', 8080), endpoints: ['a.example.org:8080'], type: 'ORIGINAL_DST' });
  assert.deepEqual(reach(cfg, 'b.example.org:8080').endpoints, ['b.example.org:8080']);
});

test('ServiceEntry workloadSelector: WorkloadEntries and workloads of its namespace whose labels match; subsets select among them', () => {
  const vm = workload('vm-app', { namespace: 'default', port: 45000, labels: { app: 'legacy', version: 'v2' }, ports: [{ name: 'http', port: 80, inboundPort: 45000, appPort: 45001 }] });
  const mesh = meshOf(
    [
      se('legacy', 'default', { hosts: ['legacy.example.com'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'STATIC', workloadSelector: { labels: { app: 'legacy' } } }),
      we('vm-1', 'default', { address: '127.0.0.5', labels: { app: 'legacy', version: 'v1' }, ports: { http: 52000 } }),
      we('vm-other-ns', 'other', { address: '127.0.0.6', labels: { app: 'legacy', version: 'v1' } }),
      we('vm-other-app', 'default', { address: '127.0.0.7', labels: { app: 'else' } }),
      dr('legacy', 'default', { host: 'legacy.example.com', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] }),
      vs('legacy', 'default', { hosts: ['legacy.example.com'], http: [{ match: [{ headers: { x: { exact: 'v2' } } }], route: [{ destination: { host: 'legacy.example.com', subset: 'v2' } }] }, { route: [{ destination: { host: 'legacy.example.com', subset: 'v1' } }] }] }),
    ],
    [client, vm],
  );
  const cfg = sidecarSnapshot(mesh, client);
  assert.deepEqual(reach(cfg, 'legacy.example.com'), { cluster: C('legacy.example.com', 'v1'), endpoints: ['127.0.0.5:52000'], type: 'EDS' });
  const v2 = decide(cfg, 'outbound', request('legacy.example.com', '/', ['x', 'v2']), 0.5);
  assert.equal(v2.clusterName, C('legacy.example.com', 'v2'));
  assert.deepEqual(v2.healthy.map((e) => `${e.address}:${e.port}`), ['127.0.0.1:45000']);
});

test("a host Weft's workloads serve stays theirs when a ServiceEntry names it too", () => {
  const reviews = workload('reviews', { service: 'reviews', port: 41000 });
  const mesh = meshOf([se('shadow', 'default', { hosts: ['reviews.default.svc.cluster.local'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'STATIC', endpoints: [{ address: '127.0.0.9' }] })], [client, reviews]);
  assert.deepEqual(reach(sidecarSnapshot(mesh, client), 'reviews').endpoints, ['127.0.0.1:41000']);
});

test('ServiceEntry exportTo ".": its namespace reaches its endpoints; another namespace passes the host through, and is not sent its cluster, even through a VirtualService it sees (review)', () => {
  const other = workload('other-client', { namespace: 'other', port: 44000 });
  const mesh = meshOf(
    [
      se('api', 'default', { hosts: ['api.example.com'], exportTo: ['.'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'STATIC', endpoints: [{ address: '127.0.0.2' }] }),
      vs('front', 'pub', { hosts: ['front.example.com'], http: [{ route: [{ destination: { host: 'api.example.com' } }] }] }),
    ],
    [client, other],
  );
  assert.equal(routeOf(sidecarSnapshot(mesh, client), request('api.example.com')), C('api.example.com'));
  const cfg = sidecarSnapshot(mesh, other);
  assert.deepEqual(reach(cfg, 'api.example.com'), { cluster: 'PassthroughCluster', endpoints: ['api.example.com:80'], type: 'ORIGINAL_DST' });
  assert.equal(cfg.clusters.has(C('api.example.com')), false);
  assert.equal(routeOf(cfg, request('front.example.com')), '503 no_cluster');
});

test('review: DNS entries that would make a LOGICAL_DNS cluster of 0 or 2 endpoints, endpoints: [], a port named "constructor", an IPv6 address: no NACK, and Istio\'s meaning', () => {
  const mesh = meshOf(
    [
      se('rr-none', 'default', { hosts: ['rr0.example.com'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'DNS_ROUND_ROBIN', workloadSelector: { labels: { app: 'nothing' } } }),
      se('rr-two', 'default', { hosts: ['rr2.example.com'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'DNS_ROUND_ROBIN', workloadSelector: { labels: { app: 'two' } } }),
      we('two-a', 'default', { address: 'a.internal', labels: { app: 'two' } }),
      we('two-b', 'default', { address: 'b.internal', labels: { app: 'two' } }),
      se('empty', 'default', { hosts: ['empty.example.com'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'DNS', endpoints: [] }),
      se('proto', 'default', { hosts: ['proto.example.com'], ports: [{ number: 80, name: 'constructor', protocol: 'HTTP' }], resolution: 'STATIC', endpoints: [{ address: '127.0.0.8', ports: {} }] }),
      se('v6', 'default', { hosts: ['v6.example.com'], addresses: ['2001:db8::10'], ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }], resolution: 'STATIC', endpoints: [{ address: '::1' }] }),
    ],
    [client],
  );
  const cfg = sidecarSnapshot(mesh, client); // a NACK throws
  assert.equal(routeOf(cfg, request('rr0.example.com')), '503 no_cluster');
  assert.deepEqual(reach(cfg, 'rr2.example.com').endpoints, ['a.internal:80']);
  assert.deepEqual(reach(cfg, 'empty.example.com').endpoints, ['empty.example.com:80']);
  assert.deepEqual(reach(cfg, 'proto.example.com').endpoints, ['127.0.0.8:80']);
  assert.equal(reach(cfg, '[2001:db8::10]:8080').cluster, C('v6.example.com', '', 8080));
});

test('ServiceEntry NONE with a targetPort: connections go to that port, whatever the request named (upstream_port_override)', () => {
  const mesh = meshOf([se('ext', 'default', { hosts: ['legacy.example.org'], ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: 8081 }] })], [client]);
  assert.deepEqual(reach(sidecarSnapshot(mesh, client), 'legacy.example.org').endpoints, ['legacy.example.org:8081']);
});

test('proxyless gRPC clients get no route to a cluster type they reject (STRICT_DNS, ORIGINAL_DST), and no catch-all (review: such routes were dropped, and their calls fell to broader ones)', () => {
  const mesh = meshOf(
    [
      se('dns', 'default', { hosts: ['dns.example.com'], ports: [{ number: 80, name: 'grpc', protocol: 'GRPC' }], resolution: 'DNS', endpoints: [{ address: 'x.internal' }] }),
      se('none', 'default', { hosts: ['none.example.com'], ports: [{ number: 80, name: 'grpc', protocol: 'GRPC' }] }),
      se('static', 'default', { hosts: ['static.example.com'], ports: [{ number: 80, name: 'grpc', protocol: 'GRPC' }], resolution: 'STATIC', endpoints: [{ address: '127.0.0.3' }] }),
    ],
    [client],
  );
  const table = new PushCache().resources(mesh, client).routes['outbound-proxyless'] as { virtual_hosts: { name: string; routes: { route: { cluster?: string } }[] }[] };
  // Their routes keep their matches but name no cluster that exists: calls fail, rather than fall to a broader route.
  assert.deepEqual(
    table.virtual_hosts.map((v) => [v.name, v.routes[0].route.cluster]),
    [['dns.example.com:80', 'unsupported-by-proxyless-grpc'], ['none.example.com:80', 'unsupported-by-proxyless-grpc'], ['static.example.com:80', 'outbound|80||static.example.com']],
  );
});

// ---- Sidecar ----

const ns = (name: string, namespace: string, port: number, labels: Record<string, string> = {}) => workload(name, { namespace, service: name.split('-')[0], port, labels });
const meshWorkloads: Workload[] = [ns('reviews-a', 'a', 41000), ns('ratings-b', 'b', 42000), ns('client-a', 'a', 43000, { app: 'client' }), ns('batch-a', 'a', 46000, { app: 'batch' })];
const named = (n: string) => meshWorkloads.find((w) => w.name === n)!;

test('Sidecar egress "~ns/host" leaves a host out that other hosts take; a workloadSelector with no labels selects every workload of its namespace (review)', () => {
  const mesh = meshOf([sidecar('default', 'a', { workloadSelector: { labels: {} }, egress: [{ hosts: ['*/*', '~b/ratings.b.svc.cluster.local'] }], outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } })], meshWorkloads);
  const cfg = sidecarSnapshot(mesh, named('client-a'));
  assert.equal(routeOf(cfg, request('ratings.b')), 'local 502');
  assert.equal(routeOf(cfg, request('reviews')), C('reviews.a.svc.cluster.local'));
  assert.equal(cfg.clusters.has(C('ratings.b.svc.cluster.local')), false);
});

test('Sidecar egress "./*": a proxy sees its namespace only; another namespace\'s service passes through (ALLOW_ANY), and its clusters are not sent', () => {
  const mesh = meshOf([sidecar('default', 'a', { egress: [{ hosts: ['./*'] }] })], meshWorkloads);
  const cfg = sidecarSnapshot(mesh, named('client-a'));
  assert.equal(routeOf(cfg, request('reviews')), C('reviews.a.svc.cluster.local'));
  assert.deepEqual(reach(cfg, 'ratings.b'), { cluster: 'PassthroughCluster', endpoints: ['ratings.b:80'], type: 'ORIGINAL_DST' });
  const outbound = [...cfg.clusters.keys()].filter((c) => c.startsWith('outbound'));
  assert.ok(outbound.includes(C('reviews.a.svc.cluster.local')), outbound.join());
  assert.deepEqual(outbound.filter((c) => c.endsWith('.b.svc.cluster.local')), [], 'no cluster of namespace b is sent');
  // A proxy of namespace b has no Sidecar: it sees everything.
  assert.equal(routeOf(sidecarSnapshot(mesh, named('ratings-b')), request('reviews.a')), C('reviews.a.svc.cluster.local'));
});

test('Sidecar REGISTRY_ONLY: a host the proxy does not know gets 502 saying why, CONNECT too; known hosts still route', () => {
  const mesh = meshOf([sidecar('default', 'a', { egress: [{ hosts: ['./*', 'b/ratings.b.svc.cluster.local'] }], outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } })], meshWorkloads);
  const cfg = sidecarSnapshot(mesh, named('client-a'));
  const r = simulate(cfg, request('api.github.com'));
  assert.equal(r.kind, 'local');
  assert.equal(r.kind === 'local' && r.status, 502);
  assert.match(r.kind === 'local' ? r.body : '', /not a service of the mesh.*REGISTRY_ONLY/);
  assert.match(r.kind === 'local' ? r.body : '', /Sidecar a\/default/);
  const t = connectTarget(cfg, 'outbound', 'api.github.com:443', 0.5);
  assert.equal(typeof t === 'object' && t.kind === 'reply' && t.status, 502);
  assert.equal(routeOf(cfg, request('ratings.b')), C('ratings.b.svc.cluster.local'));
  assert.equal(routeOf(cfg, request('reviews')), C('reviews.a.svc.cluster.local'));
});

test("the mesh config's outboundTrafficPolicy REGISTRY_ONLY: the default of proxies whose Sidecar does not say (502 naming the mesh config); a Sidecar's own ALLOW_ANY wins", () => {
  const registryOnly = { meshConfig: { outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' as const } } };
  // No Sidecar at all.
  const bare = sidecarSnapshot({ ...meshOf([], meshWorkloads), ...registryOnly }, named('client-a'));
  const r = simulate(bare, request('api.github.com'));
  assert.equal(r.kind === 'local' && r.status, 502);
  assert.match(r.kind === 'local' ? r.body : '', /outbound traffic policy of the mesh config is REGISTRY_ONLY/);
  assert.equal(routeOf(bare, request('reviews')), C('reviews.a.svc.cluster.local'), 'known hosts still route');
  const t = connectTarget(bare, 'outbound', 'api.github.com:443', 0.5);
  assert.equal(typeof t === 'object' && t.kind === 'reply' && t.status, 502);
  // A Sidecar with egress hosts but no outboundTrafficPolicy takes the mesh's; one that says ALLOW_ANY keeps it.
  const quiet = sidecarSnapshot({ ...meshOf([sidecar('default', 'a', { egress: [{ hosts: ['*/*'] }] })], meshWorkloads), ...registryOnly }, named('client-a'));
  assert.equal(simulate(quiet, request('api.github.com')).kind, 'local');
  const open = sidecarSnapshot({ ...meshOf([sidecar('default', 'a', { egress: [{ hosts: ['*/*'] }], outboundTrafficPolicy: { mode: 'ALLOW_ANY' } })], meshWorkloads), ...registryOnly }, named('client-a'));
  assert.equal(routeOf(open, request('api.github.com')), 'PassthroughCluster');
  // Without the mesh config: Istio's default, ALLOW_ANY.
  assert.equal(routeOf(sidecarSnapshot(meshOf([], meshWorkloads), named('client-a')), request('api.github.com')), 'PassthroughCluster');
});

test('which Sidecar applies: one whose workloadSelector selects the proxy, else its namespace\'s default, else the root namespace\'s, where "." is the proxy\'s namespace', () => {
  const config = [
    sidecar('default', 'istio-system', { egress: [{ hosts: ['./*'] }], outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } }),
    sidecar('batch', 'a', { workloadSelector: { labels: { app: 'batch' } }, egress: [{ hosts: ['*/*'] }] }),
  ];
  const mesh = meshOf(config, meshWorkloads);
  // client-a: the mesh default; its namespace (a) only, and unknown hosts blocked.
  const client = sidecarSnapshot(mesh, named('client-a'));
  assert.equal(routeOf(client, request('reviews')), C('reviews.a.svc.cluster.local'));
  const blocked = simulate(client, request('ratings.b'));
  assert.equal(blocked.kind === 'local' && blocked.status, 502);
  // ratings-b: the mesh default too, where "." is b.
  assert.equal(routeOf(sidecarSnapshot(mesh, named('ratings-b')), request('ratings')), C('ratings.b.svc.cluster.local'));
  // batch-a: its own Sidecar sees every namespace, and lets unknown hosts through.
  const batch = sidecarSnapshot(mesh, named('batch-a'));
  assert.equal(routeOf(batch, request('ratings.b')), C('ratings.b.svc.cluster.local'));
  assert.equal(routeOf(batch, request('example.com')), 'PassthroughCluster');
});

test('a VirtualService the Sidecar lets a proxy see, routing to a service it does not: 503 no_cluster, as in Istio', () => {
  const config = [
    sidecar('default', 'a', { egress: [{ hosts: ['./*'] }] }),
    vs('reviews', 'a', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'ratings.b.svc.cluster.local' } }] }] }),
  ];
  const cfg = sidecarSnapshot(meshOf(config, meshWorkloads), named('client-a'));
  assert.equal(routeOf(cfg, request('reviews')), '503 no_cluster');
});

test('push: proxies with different Sidecars are different scopes; the same Sidecar shares one translation', () => {
  const mesh = meshOf([sidecar('batch', 'a', { workloadSelector: { labels: { app: 'batch' } }, egress: [{ hosts: ['./*'] }] })], meshWorkloads);
  const cache = new PushCache();
  const batch = cache.resources(mesh, named('batch-a'));
  const batch2 = cache.resources(mesh, { ...named('batch-a'), proxyId: 'batch-2', name: 'batch-2' });
  const client = cache.resources(mesh, named('client-a'));
  assert.equal(cache.translations.scoped, 2);
  assert.equal(batch.routes, batch2.routes);
  assert.notEqual(batch.routes, client.routes);
  assert.ok(!(C('ratings.b.svc.cluster.local') in batch.clusters));
  assert.ok(C('ratings.b.svc.cluster.local') in client.clusters);
});

test('Sidecar egress listeners with ports: a port\'s listener decides what is seen on that port, the listener without a port the rest, as Istio\'s per-port listeners', () => {
  const multi = workload('ratings-b2', {
    namespace: 'b',
    service: 'ratings',
    port: 47000,
    ports: [
      { name: 'http', port: 80, inboundPort: 47000, appPort: 47001 },
      { name: 'http-admin', port: 9090, inboundPort: 47002, appPort: 47003 },
    ],
  });
  const ws = [...meshWorkloads.filter((w) => w.name !== 'ratings-b'), multi];
  const mesh = meshOf([sidecar('default', 'a', { egress: [{ port: { number: 9090 }, hosts: ['b/*'] }, { hosts: ['./*'] }], outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } })], ws);
  const cfg = sidecarSnapshot(mesh, named('client-a'));
  assert.equal(routeOf(cfg, request('ratings.b:9090')), 'outbound|9090||ratings.b.svc.cluster.local', 'port 9090: its listener takes namespace b');
  assert.equal(routeOf(cfg, request('ratings.b')), 'local 502', 'port 80: the listener without a port takes only namespace a');
  assert.equal(routeOf(cfg, request('reviews')), C('reviews.a.svc.cluster.local'));
  // As in Istio, whose scope holds services by host, the service's clusters are all sent; the routes decide.
  // Only port listeners: services on other ports are not seen at all.
  const only = sidecarSnapshot(meshOf([sidecar('default', 'a', { egress: [{ port: { number: 9090 }, hosts: ['*/*'] }], outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } })], ws), named('client-a'));
  assert.equal(routeOf(only, request('reviews')), 'local 502');
  assert.equal(routeOf(only, request('ratings.b:9090')), 'outbound|9090||ratings.b.svc.cluster.local');
});

test('Sidecar inboundConnectionPool: the limits of the selected workloads\' inbound clusters (to their apps), as a DestinationRule\'s connectionPool', () => {
  const pool = { tcp: { maxConnections: 2 }, http: { http2MaxRequests: 5, maxRequestsPerConnection: 3 } };
  const mesh = meshOf([sidecar('default', 'a', { workloadSelector: { labels: { app: 'client' } }, inboundConnectionPool: pool })], meshWorkloads);
  const cfg = sidecarSnapshot(mesh, named('client-a'));
  const inbound = cfg.clusters.get('inbound|80||')!;
  assert.deepEqual(inbound.limits, { maxConnections: 2, maxRequests: 5 });
  assert.equal(inbound.connection?.maxRequestsPerConnection, 3);
  // Another workload of the namespace, not selected: Envoy's defaults.
  assert.deepEqual(sidecarSnapshot(mesh, named('batch-a')).clusters.get('inbound|80||')!.limits, {});
});

test('review: h2UpgradePolicy in inboundConnectionPool leaves the app its own protocol (Istio upgrades outbound clusters only); a resolution NONE entry\'s gRPC port speaks HTTP/2', () => {
  const mesh = meshOf([sidecar('default', 'a', { workloadSelector: { labels: { app: 'client' } }, inboundConnectionPool: { http: { h2UpgradePolicy: 'UPGRADE', maxRequestsPerConnection: 2 } } })], meshWorkloads);
  const inbound = sidecarSnapshot(mesh, named('client-a')).clusters.get('inbound|80||')!;
  assert.equal(inbound.protocol, 'http1');
  assert.equal(inbound.connection?.maxRequestsPerConnection, 2);
  const grpc = se('g', 'default', { hosts: ['g.example.com'], addresses: ['240.0.0.9'], ports: [{ number: 50051, name: 'grpc', protocol: 'GRPC' }], resolution: 'NONE' });
  assert.equal(sidecarSnapshot(meshOf([grpc], [client]), client).clusters.get('outbound|50051||g.example.com')!.protocol, 'http2');
});
