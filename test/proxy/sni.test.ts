// A tls_inspector listener with real sockets, in process: Envoy-shaped xDS (chains by server_names,
// a default chain, weighted tcp_proxy clusters) loaded through the sidecar's own conversion, then
// connections with real ClientHellos and hostile first flights. The upstreams record what they got:
// the ClientHello must reach them unchanged.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { EMPTY_CONFIG, type RuntimeConfig, nextConfig } from '../../src/proxy/config.ts';
import { ConnectionBudget, type ListenerHandlers, createListener } from '../../src/proxy/listeners/listener.ts';
import { serveInternal } from '../../src/proxy/listeners/internal.ts';
import { connectTarget } from '../../src/proxy/http/forward.ts';
import type { TcpContext } from '../../src/proxy/tcp/tcp.ts';
import { Telemetry } from '../../src/proxy/telemetry/events.ts';
import { convertCluster } from '../../src/proxy/xds-client/convert.ts';
import { TYPE } from '../../src/xds/types.ts';
import { clientHello } from '../fixtures/tls.ts';

/** An upstream that greets with its name and keeps every byte it gets. */
interface Upstream {
  name: string;
  server: net.Server;
  port: number;
  got: Buffer[];
}

async function upstream(name: string): Promise<Upstream> {
  const u: Upstream = { name, server: net.createServer(), port: 0, got: [] };
  u.server.on('connection', (c) => {
    const i = u.got.push(Buffer.alloc(0)) - 1;
    c.on('error', () => {});
    c.write(`${name}\n`);
    c.on('data', (d) => (u.got[i] = Buffer.concat([u.got[i]!, d])));
  });
  await new Promise<void>((r) => u.server.listen(0, '127.0.0.1', () => r()));
  u.port = (u.server.address() as AddressInfo).port;
  return u;
}

const tcp = (cluster: string) => ({ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TYPE.tcpProxy, stat_prefix: cluster, cluster } });
const tlsInspector = { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': TYPE.tlsInspector } };
const staticCluster = (name: string, port: number) => ({ name, type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] } });

let ups: Record<string, Upstream>;
const logs: string[] = [];
let cfg: RuntimeConfig;
const servers: net.Server[] = [];
const ports: Record<string, number> = {};

function ctx(): TcpContext {
  return { config: () => cfg, telemetry: new Telemetry(), balance: { rr: new Map() }, log: (m) => logs.push(m) };
}

/** A bound tls_inspector listener as the sidecar serves it, from a Listener resource. */
async function serve(name: string): Promise<number> {
  const l = cfg.listeners.get(name)!;
  const handlers = { tcp: ctx(), log: (m: string) => logs.push(m) } as unknown as ListenerHandlers;
  const s = createListener(handlers, () => ({ name, path: l.path, headersTimeoutMs: l.requestHeadersTimeoutMs, idleTimeoutMs: l.idleTimeoutMs, kind: l.kind, tcp: l.tcp, sni: l.sni }), new ConnectionBudget(100));
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return (s.address() as AddressInfo).port;
}

before(async () => {
  ups = { a: await upstream('A'), b: await upstream('B'), rest: await upstream('REST') };
  const listener = (name: string, extra: object) => ({
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    listener_filters: [tlsInspector],
    filter_chains: [
      { name: 'a', filter_chain_match: { server_names: ['a.example.com'] }, filters: [tcp('A')] },
      { name: 'b', filter_chain_match: { server_names: ['*.b.example.com'] }, filters: [tcp('B')] },
    ],
    ...extra,
  });
  cfg = nextConfig(EMPTY_CONFIG, TYPE.cluster, [staticCluster('A', ups.a!.port), staticCluster('B', ups.b!.port), staticCluster('REST', ups.rest!.port)], '1');
  cfg = nextConfig(cfg, TYPE.listener, [
    listener('with-default', { default_filter_chain: { filters: [tcp('REST')] }, listener_filters_timeout: '0.3s' }),
    listener('without-default', { listener_filters_timeout: '0.3s' }),
    listener('continue', { default_filter_chain: { filters: [tcp('REST')] }, listener_filters_timeout: '0.3s', continue_on_listener_filters_timeout: true }),
  ], '1');
  for (const n of ['with-default', 'without-default', 'continue']) ports[n] = await serve(n);
});

after(() => {
  for (const s of servers) s.close();
  for (const u of Object.values(ups)) u.server.close();
});

/** Sends `pieces` (one write each, a tick apart), then waits for the connection to end either way: what came back, and whether it was closed without a greeting. */
function exchange(port: number, pieces: Buffer[]): Promise<{ greeting: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', noDelay: true });
    let got = '';
    s.on('data', (d) => {
      got += d;
      if (got.includes('\n')) {
        s.destroy();
        resolve({ greeting: got.split('\n')[0]!, closed: false });
      }
    });
    s.on('error', () => {});
    s.on('close', () => resolve({ greeting: got, closed: true }));
    s.on('connect', async () => {
      for (const p of pieces) {
        s.write(p);
        await new Promise((r) => setImmediate(r));
      }
    });
  });
}

/** The bytes the upstream's latest connection got, once it has `n`. */
async function lastGot(u: Upstream, n: number): Promise<Buffer> {
  for (let i = 0; i < 200; i++) {
    const b = u.got.at(-1);
    if (b && b.length >= n) return b;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`${u.name} got ${u.got.at(-1)?.length ?? 0} bytes, not ${n}`);
}

test('a ClientHello goes to the chain its server name picks, unchanged, with what follows it', async () => {
  const hello = await clientHello({ servername: 'a.example.com' });
  const after = Buffer.from('then the rest of the handshake');
  assert.deepEqual(await exchange(ports['with-default']!, [hello, after]), { greeting: 'A', closed: false });
  assert.ok((await lastGot(ups.a!, hello.length + after.length)).equals(Buffer.concat([hello, after])), 'the upstream got every byte, unchanged');
  assert.equal((await exchange(ports['with-default']!, [await clientHello({ servername: 'x.b.example.com' })])).greeting, 'B', 'a wildcard');
  assert.equal((await exchange(ports['with-default']!, [await clientHello({ servername: 'c.example.com' })])).greeting, 'REST', 'no name matches: the default chain');
  assert.equal((await exchange(ports['with-default']!, [await clientHello({})])).greeting, 'REST', 'no server name at all: the default chain');
});

test('a ClientHello cut into 1-byte writes is put together; so is one split over TLS records', async () => {
  const hello = await clientHello({ servername: 'a.example.com' });
  const bytes = [...hello].map((b) => Buffer.from([b]));
  assert.equal((await exchange(ports['with-default']!, bytes)).greeting, 'A');
  assert.ok((await lastGot(ups.a!, hello.length)).equals(hello));
  // The same handshake message in two records.
  const hs = hello.subarray(5);
  const rec = (b: Buffer) => Buffer.concat([Buffer.from([22, 3, 1, b.length >> 8, b.length & 0xff]), b]);
  const split = Buffer.concat([rec(hs.subarray(0, 40)), rec(hs.subarray(40))]);
  assert.equal((await exchange(ports['with-default']!, [split])).greeting, 'A');
});

test('hostile first flights: garbage goes to the default chain as "no server name"; too large, too slow or cut short is closed with a reason', async () => {
  const garbage = Buffer.from('GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n');
  assert.equal((await exchange(ports['with-default']!, [garbage])).greeting, 'REST');
  assert.ok((await lastGot(ups.rest!, garbage.length)).equals(garbage), 'forwarded unchanged');

  const before = ups.a!.got.length + ups.b!.got.length + ups.rest!.got.length;
  const huge = Buffer.from([22, 3, 1, 0, 4, 1, 0x01, 0x00, 0x00]); // a ClientHello that says it is 64 KiB long
  assert.deepEqual(await exchange(ports['with-default']!, [huge]), { greeting: '', closed: true });
  assert.ok(logs.some((l) => /closed: its ClientHello is over 64 KiB/.test(l)), logs.join('\n'));

  const hello = await clientHello({ servername: 'a.example.com' });
  const t0 = performance.now();
  assert.deepEqual(await exchange(ports['with-default']!, [hello.subarray(0, 20)]), { greeting: '', closed: true }, 'half a hello, then silence');
  assert.ok(performance.now() - t0 >= 250, 'closed at the listener_filters_timeout, not before');
  assert.ok(logs.some((l) => /no complete ClientHello within 300 ms \(listener_filters_timeout\)/.test(l)), logs.join('\n'));

  assert.deepEqual(await exchange(ports['without-default']!, [await clientHello({ servername: 'nobody.example.org' })]), { greeting: '', closed: true });
  assert.ok(logs.some((l) => /no filter chain matches server name "nobody\.example\.org", and the listener has no default chain/.test(l)), logs.join('\n'));
  assert.equal(ups.a!.got.length + ups.b!.got.length + ups.rest!.got.length, before, 'no upstream connection for any of them');

  // Half a hello, then the client's FIN.
  await new Promise<void>((resolve) => {
    const s = net.connect(ports['with-default']!, '127.0.0.1', () => s.end(hello.subarray(0, 30)));
    s.on('error', () => {});
    s.resume();
    s.on('close', () => resolve());
  });
  assert.ok(logs.some((l) => /ended the connection before its ClientHello was complete/.test(l)), logs.join('\n'));
});

test('continue_on_listener_filters_timeout: a hello that never completes goes to the default chain with what it sent', async () => {
  const hello = await clientHello({ servername: 'a.example.com' });
  assert.equal((await exchange(ports.continue!, [hello.subarray(0, 20)])).greeting, 'REST');
  assert.ok((await lastGot(ups.rest!, 20)).equals(hello.subarray(0, 20)));
});

test('an internal listener: a CONNECT route to a cluster whose endpoint names it hands the tunnel over', async () => {
  const internalCluster = { name: 'to-sni', type: 'STATIC', load_assignment: { cluster_name: 'to-sni', endpoints: [{ lb_endpoints: [{ endpoint: { address: { envoy_internal_address: { server_listener_name: 'sni-internal' } } } }] }] } };
  assert.equal(convertCluster(internalCluster).internalListener, 'sni-internal');
  assert.throws(() => convertCluster({ ...internalCluster, type: 'EDS' }), /a cluster whose endpoint is an internal listener must be STATIC/);
  assert.throws(() => convertCluster({ ...internalCluster, load_assignment: { endpoints: [{ lb_endpoints: [internalCluster.load_assignment.endpoints[0]!.lb_endpoints[0], internalCluster.load_assignment.endpoints[0]!.lb_endpoints[0]] }] } }), /exactly one endpoint/);
  let c = nextConfig(cfg, TYPE.cluster, [staticCluster('A', ups.a!.port), staticCluster('B', ups.b!.port), staticCluster('REST', ups.rest!.port), internalCluster], '2');
  const route = { name: 'outbound', virtual_hosts: [{ name: 'secure', domains: ['secure:443'], routes: [{ match: { connect_matcher: {} }, route: { cluster: 'to-sni', upgrade_configs: [{ upgrade_type: 'CONNECT' }] } }] }] };
  const hcm = { name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': TYPE.hcm, stat_prefix: 'o', rds: { route_config_name: 'outbound' }, http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': TYPE.router } }] } };
  const outbound = { name: 'outbound', address: { socket_address: { address: '127.0.0.1', port_value: 1 } }, filter_chains: [{ filters: [hcm] }] };
  c = nextConfig(c, TYPE.route, [route], '2');
  // Without the internal listener: the CONNECT gets 503 naming it.
  c = nextConfig(c, TYPE.listener, [outbound], '2');
  const missing = connectTarget(c, 'outbound', 'secure:443', 0.5);
  assert.ok(typeof missing === 'object' && missing.kind === 'error' && /leads to internal listener sni-internal, which the sidecar does not have/.test(missing.error.message));
  c = nextConfig(c, TYPE.listener, [outbound, { name: 'sni-internal', internal_listener: {}, listener_filters: [tlsInspector], filter_chains: [{ filter_chain_match: { server_names: ['a.example.com'] }, filters: [tcp('A')] }], default_filter_chain: { filters: [tcp('REST')] } }], '3');
  assert.deepEqual(connectTarget(c, 'outbound', 'secure:443', 0.5), { kind: 'internal', cluster: 'to-sni', listener: 'sni-internal' });
  // The tunnel's far end, as the CONNECT handler hands it over (its 200 already sent).
  const pair = net.createServer();
  await new Promise<void>((r) => pair.listen(0, '127.0.0.1', () => r()));
  const accepted = new Promise<net.Socket>((r) => pair.once('connection', r));
  const client = net.connect((pair.address() as AddressInfo).port, '127.0.0.1');
  const far = await accepted;
  const hello = await clientHello({ servername: 'a.example.com' });
  serveInternal({ ...ctx(), config: () => c }, c, 'sni-internal', far, hello, 'secure:443');
  const greeting = await new Promise<string>((r) => client.once('data', (d) => r(String(d))));
  assert.equal(greeting, 'A\n');
  assert.ok((await lastGot(ups.a!, hello.length)).equals(hello), 'the bytes that came with the CONNECT went first');
  client.destroy();
  pair.close();
});
