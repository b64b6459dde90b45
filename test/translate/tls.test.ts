// Simulation tests for VirtualService tls routes: translate, load as the sidecar does (a NACK
// fails the test: every resource goes through the wire encoding and the sidecar's conversion),
// then ask where a CONNECT to host:443 goes when its tunnel carries a ClientHello for a given
// server name. No sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Workload } from '../../src/control/model/model.ts';
import { connectWithSni, meshOf, sidecarSnapshot, workload } from '../snapshot.ts';

const vs = (name: string, spec: object, namespace = 'default') => ({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace }, spec });
const dr = (host: string, subsets: string[]) => ({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: host, namespace: 'default' }, spec: { host, subsets: subsets.map((s) => ({ name: s, labels: { version: s } })) } });
const SECURE = 'secure.default.svc.cluster.local';
const C = (subset = '', host = SECURE, port = 443) => `outbound|${port}|${subset}|${host}`;

/** secure: two versions on one TLS port 443 (and a TCP port 5432), and clients. */
const secure = (v: string, inbound: number, portName = 'tls'): Workload =>
  workload(`secure-${v}`, { service: 'secure', port: inbound, labels: { version: v }, ports: [{ name: portName, port: 443, inboundPort: inbound, appPort: inbound + 1 }, { name: 'tcp-db', port: 5432, inboundPort: inbound + 2, appPort: inbound + 3 }] });
const ws = [secure('a', 51000), secure('b', 52000), workload('client', { port: 53000 }), workload('canary', { port: 54000, labels: { app: 'canary' } })];
const client = ws[2]!;
const canary = ws[3]!;

const SNI_VS = vs('secure', {
  hosts: ['secure', 'a.secure.example', 'b.secure.example', '*.wild.example'],
  tls: [
    { match: [{ port: 443, sniHosts: ['a.secure.example'] }], route: [{ destination: { host: 'secure', subset: 'a' } }] },
    { match: [{ sniHosts: ['b.secure.example', '*.wild.example'] }], route: [{ destination: { host: 'secure', subset: 'b' } }] },
  ],
});

test('a CONNECT to secure:443: SNI a goes to subset a, SNI b to subset b, any other name (or none) to the service as without the VirtualService', () => {
  const cfg = sidecarSnapshot(meshOf([dr('secure', ['a', 'b']), SNI_VS], ws), client);
  assert.deepEqual(connectWithSni(cfg, 'secure:443', 'a.secure.example'), { cluster: C('a'), endpoints: ['127.0.0.1:51000'], chain: 'default/secure.tls[0].match[0]' });
  assert.deepEqual(connectWithSni(cfg, 'secure:443', 'b.secure.example'), { cluster: C('b'), endpoints: ['127.0.0.1:52000'], chain: 'default/secure.tls[1].match[0]' });
  assert.deepEqual(connectWithSni(cfg, 'secure.default.svc.cluster.local:443', 'x.y.wild.example'), { cluster: C('b'), endpoints: ['127.0.0.1:52000'], chain: 'default/secure.tls[1].match[0]' }, 'a wildcard SNI host, by any name of the service');
  const rest = { cluster: C(), endpoints: ['127.0.0.1:51000', '127.0.0.1:52000'], chain: 'PassthroughFilterChain' };
  assert.deepEqual(connectWithSni(cfg, 'secure:443', 'c.secure.example'), rest, 'no match: the service\'s own cluster, all its endpoints');
  assert.deepEqual(connectWithSni(cfg, 'secure:443', undefined), rest, 'no server name (or not TLS): the same');
  // Without the VirtualService: a plain TCP tunnel to the service, nothing looked into.
  assert.deepEqual(connectWithSni(sidecarSnapshot(meshOf([dr('secure', ['a', 'b'])], ws), client), 'secure:443', 'a.secure.example'), { cluster: C(), endpoints: ['127.0.0.1:51000', '127.0.0.1:52000'] });
});

test('tls routes apply to TLS and HTTPS ports only; on them tcp routes do not (as in Istio)', () => {
  const both = vs('secure', {
    hosts: ['secure'],
    tls: [{ match: [{ sniHosts: ['secure'] }], route: [{ destination: { host: 'secure', subset: 'a' } }] }],
    tcp: [{ route: [{ destination: { host: 'secure', subset: 'b' } }] }],
  });
  const cfg = sidecarSnapshot(meshOf([dr('secure', ['a', 'b']), both], ws), client);
  assert.deepEqual(connectWithSni(cfg, 'secure:443', 'secure'), { cluster: C('a'), endpoints: ['127.0.0.1:51000'], chain: 'default/secure.tls[0].match[0]' });
  assert.equal((connectWithSni(cfg, 'secure:443', 'other') as { cluster: string }).cluster, C(), 'the tcp route does not take what the tls route leaves');
  assert.deepEqual(connectWithSni(cfg, 'secure:5432', 'secure'), { cluster: C('b', SECURE, 5432), endpoints: ['127.0.0.1:52002'] }, 'a TCP port: the tcp route, no SNI routing');
  // An https port is a TLS port too.
  const https = [secure('a', 51000, 'https-web'), secure('b', 52000, 'https-web'), client];
  assert.equal((connectWithSni(sidecarSnapshot(meshOf([dr('secure', ['a', 'b']), both], https), client), 'secure:443', 'secure') as { cluster: string }).cluster, C('a'));
});

test('weights split connections of one SNI host; a match\'s port, sourceLabels and gateways say which proxies and ports it is for', () => {
  const config = [
    dr('secure', ['a', 'b']),
    vs('secure', {
      hosts: ['secure'],
      tls: [
        { match: [{ sniHosts: ['secure'], sourceLabels: { app: 'canary' } }], route: [{ destination: { host: 'secure', subset: 'b' } }] },
        { match: [{ sniHosts: ['secure'], port: 8443 }], route: [{ destination: { host: 'secure', subset: 'b' } }] },
        { match: [{ sniHosts: ['secure'], gateways: ['istio-system/egress'] }], route: [{ destination: { host: 'secure', subset: 'b' } }] },
        { match: [{ sniHosts: ['secure'] }], route: [{ destination: { host: 'secure', subset: 'a' }, weight: 75 }, { destination: { host: 'secure', subset: 'b' }, weight: 25 }] },
      ],
    }),
  ];
  const mesh = meshOf(config, ws);
  const cfg = sidecarSnapshot(mesh, client);
  assert.equal((connectWithSni(cfg, 'secure:443', 'secure', 0.1) as { cluster: string }).cluster, C('a'));
  assert.equal((connectWithSni(cfg, 'secure:443', 'secure', 0.9) as { cluster: string }).cluster, C('b'));
  assert.equal((connectWithSni(cfg, 'secure:443', 'secure', 0.9) as { chain: string }).chain, 'default/secure.tls[3].match[0]', 'the port, sourceLabels and gateway matches are not for this proxy and port');
  assert.deepEqual(connectWithSni(sidecarSnapshot(mesh, canary), 'secure:443', 'secure', 0.1), { cluster: C('b'), endpoints: ['127.0.0.1:52000'], chain: 'default/secure.tls[0].match[0]' }, 'the canary\'s own match');
});

test('every VirtualService whose hosts overlap the service applies, oldest first; a name an earlier chain has stays with it', () => {
  const exact = vs('exact', { hosts: [SECURE], tls: [{ match: [{ sniHosts: [SECURE] }], route: [{ destination: { host: 'secure', subset: 'a' } }] }] });
  const wild = vs('wild', { hosts: ['*.default.svc.cluster.local'], tls: [{ match: [{ sniHosts: [SECURE, 'x.default.svc.cluster.local'] }], route: [{ destination: { host: 'secure', subset: 'b' } }] }] });
  const pick = (order: object[], name: string) => {
    const mesh = meshOf([dr('secure', ['a', 'b']), ...order], ws);
    mesh.virtualServices.forEach((v, i) => ((v as { created?: number }).created = i + 1)); // oldest first, as listed
    return (connectWithSni(sidecarSnapshot(mesh, client), 'secure:443', name) as { cluster: string }).cluster;
  };
  assert.equal(pick([exact, wild], SECURE), C('a'), 'the older VirtualService keeps the name');
  assert.equal(pick([exact, wild], 'x.default.svc.cluster.local'), C('b'), 'the wildcard VirtualService applies beside the exact one');
  assert.equal(pick([wild, exact], SECURE), C('b'), 'older first, whichever is exact');
});

test('REGISTRY_ONLY: a server name no tls route matches is closed (Istio\'s BlackHoleCluster), matched ones still route', () => {
  const registryOnly = { apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: 'default', namespace: 'default' }, spec: { outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } } };
  const cfg = sidecarSnapshot(meshOf([dr('secure', ['a', 'b']), SNI_VS, registryOnly], ws), client);
  assert.equal((connectWithSni(cfg, 'secure:443', 'a.secure.example') as { cluster: string }).cluster, C('a'));
  assert.equal(connectWithSni(cfg, 'secure:443', 'c.secure.example'), 'closed');
  assert.equal(connectWithSni(cfg, 'secure:443', undefined), 'closed');
});

test('a ServiceEntry TLS port (resolution NONE): SNI routes to a mesh service, the rest goes where the client asked', () => {
  const se = { apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'wiki', namespace: 'default' }, spec: { hosts: ['*.wikipedia.org'], ports: [{ number: 443, name: 'tls', protocol: 'TLS' }], resolution: 'NONE' } };
  const route = vs('wiki', { hosts: ['*.wikipedia.org'], tls: [{ match: [{ sniHosts: ['en.wikipedia.org'] }], route: [{ destination: { host: 'secure', subset: 'a' } }] }] });
  const cfg = sidecarSnapshot(meshOf([dr('secure', ['a', 'b']), se, route], ws), client);
  assert.deepEqual(connectWithSni(cfg, 'en.wikipedia.org:443', 'en.wikipedia.org'), { cluster: C('a'), endpoints: ['127.0.0.1:51000'], chain: 'default/wiki.tls[0].match[0]' });
  assert.deepEqual(connectWithSni(cfg, 'de.wikipedia.org:443', 'de.wikipedia.org'), { cluster: 'outbound|443||*.wikipedia.org', endpoints: ['de.wikipedia.org:443'], chain: 'PassthroughFilterChain' }, 'the CONNECT target is the original destination');
});

test('review: a TLS port keeps the DestinationRule\'s tunnel limits and useSourceIp, with tls routes (their internal listener\'s tcp_proxy) and without (the CONNECT route), as a TCP port does', async () => {
  const { meshOf, sidecarSnapshot, workload } = await import('../snapshot.ts');
  const { connectTarget } = await import('../../src/proxy/http/forward.ts');
  const client = workload('client', { port: 40000 });
  const db = workload('db', { service: 'db', port: 44000, labels: { version: 'v1' }, ports: [{ name: 'tls-db', port: 5432, inboundPort: 44000, appPort: 44001 }] });
  const rule = { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'db', namespace: 'default' }, spec: { host: 'db', subsets: [{ name: 'v1', labels: { version: 'v1' } }], trafficPolicy: { connectionPool: { tcp: { idleTimeout: '90s', maxConnectionDuration: '1h' } }, loadBalancer: { consistentHash: { useSourceIp: true } } } } };
  const plain = connectTarget(sidecarSnapshot(meshOf([rule], [db, client]), client), 'outbound', 'db:5432', 0.5) as any;
  assert.deepEqual(plain.tunnel, { idleTimeoutMs: 90_000, maxDurationMs: 3_600_000 });
  assert.equal(plain.hashSource, true);
  const vs = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'db', namespace: 'default' }, spec: { hosts: ['db'], tls: [{ match: [{ port: 5432, sniHosts: ['db'] }], route: [{ destination: { host: 'db', subset: 'v1' } }] }] } };
  const cfg = sidecarSnapshot(meshOf([rule, vs], [db, client]), client);
  const sni = [...cfg.listeners.values()].find((l) => l.internal && l.kind === 'sni')!;
  const chains = [...sni.sni!.exact.values(), ...sni.sni!.wildcard.values(), ...(sni.sni!.fallback ? [sni.sni!.fallback] : [])];
  assert.equal(chains.length, 2);
  for (const chain of chains) {
    assert.equal(chain.tcp.idleTimeoutMs, 90_000, chain.name);
    assert.equal(chain.tcp.maxDurationMs, 3_600_000, chain.name);
    assert.equal(chain.tcp.hashSource, true, chain.name);
  }
});
