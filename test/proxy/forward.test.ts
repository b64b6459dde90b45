// The request path's layer above the codecs (src/proxy/http/forward.ts), in process, on the
// sidecar's own config conversion: what it tells telemetry when the sidecar answers for the
// upstream (against a real closed port on loopback), and its list of exchanges in progress.
import { test } from 'node:test';
import http from 'node:http';
import dc from 'node:diagnostics_channel';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import assert from 'node:assert/strict';
import type { MeshSnapshot, Workload } from '../../src/control/model/model.ts';
import type { RuntimeConfig } from '../../src/proxy/config.ts';
import { ActiveExchanges, forward } from '../../src/proxy/http/forward.ts';
import type { Downstream, HeaderList, RequestHead } from '../../src/proxy/http/types.ts';
import { type RequestEvent, Telemetry } from '../../src/proxy/telemetry/events.ts';
import { Pools } from '../../src/proxy/upstream/pools.ts';
import { freePort } from '../../src/util/net.ts';
import { meshOf, sidecarSnapshot, workload } from '../snapshot.ts';

function sidecarConfig(workloads: Workload[], proxy: Workload): RuntimeConfig {
  return sidecarSnapshot({ revision: 1, virtualServices: [], destinationRules: [], workloads } as unknown as MeshSnapshot, proxy);
}

/** A client that only records the answer it gets. */
function downstream(head: RequestHead): Downstream & { answer: Promise<{ status: number; headers: HeaderList }> } {
  let done!: (a: { status: number; headers: HeaderList }) => void;
  const answer = new Promise<{ status: number; headers: HeaderList }>((r) => (done = r));
  let status = 0;
  let headers: HeaderList = [];
  return {
    head,
    answer,
    responseStarted: false,
    readBody: (sink) => sink.end([]),
    resumeBody: () => {},
    respond: (s, h, _length, end) => {
      status = s;
      headers = h;
      if (end) done({ status, headers }); // a head-only answer (a redirect, an empty direct response)
    },
    write: () => true,
    onDrain: () => {},
    end: () => done({ status, headers }),
    reset: () => done({ status: -1, headers }),
    onAbort: () => {},
    upgradeTo: () => undefined,
    remoteAddress: () => '127.0.0.1',
  };
}

/** The request path's context for `cfg`, with the request events it publishes recorded. */
function recording(cfg: RuntimeConfig): { ctx: Parameters<typeof forward>[0]; events: RequestEvent[]; pools: Pools } {
  const telemetry = new Telemetry();
  const events: RequestEvent[] = [];
  telemetry.request.subscribe((e) => events.push(e));
  const pools = new Pools();
  return { ctx: { config: () => cfg, pools, telemetry, rr: new Map<string, number>(), active: new ActiveExchanges() }, events, pools };
}

test('an exchange that fails to connect publishes its cluster, endpoint, status, reason and duration', async () => {
  const port = await freePort();
  const server: Workload = { proxyId: 'r-id', name: 'reviews-v1', namespace: 'default', service: 'reviews', servicePort: 80, labels: { version: 'v1' }, address: '127.0.0.1', inboundPort: port, appPort: port + 1, healthy: true };
  const client: Workload = { proxyId: 'c-id', name: 'client', namespace: 'default', servicePort: 80, labels: {}, address: '127.0.0.1', outboundPort: 40000, healthy: true };
  const cfg = sidecarConfig([server, client], client);
  const { ctx, events, pools } = recording(cfg);
  try {
    const ds = downstream({ method: 'GET', authority: 'reviews', path: '/', query: '', headers: [], hasBody: false, protocol: 'HTTP/1.1' });
    forward(ctx, 'outbound', ds);
    const a = await ds.answer;
    assert.equal(a.status, 503);
    assert.equal(events.length, 1);
    const e = events[0];
    assert.equal(e.cluster, 'outbound|80||reviews.default.svc.cluster.local');
    assert.equal(e.status, 503);
    assert.equal(e.reason, 'connect_refused');
    assert.equal(e.endpoint, `127.0.0.1:${port}`);
    assert.equal(typeof e.durationMs, 'number');
    assert.ok(e.durationMs! >= 0, `durationMs ${e.durationMs}`);
  } finally {
    await pools.close();
  }
});

test('a fault comes before a direct response or redirect, as Envoy\'s fault filter comes before the router (a route has both by delegation)', async () => {
  const vs = (name: string, spec: object) => ({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name }, spec });
  const client = workload('client', { port: 41000 });
  const mesh = meshOf(
    [
      vs('root', { hosts: ['reviews'], http: [{ delegate: { name: 'd' }, fault: { abort: { httpStatus: 418 } } }] }),
      vs('d', { http: [{ match: [{ uri: { prefix: '/moved' } }], redirect: { uri: '/new' } }, { directResponse: { status: 200 } }] }),
    ],
    [workload('reviews', { service: 'reviews', port: 41100 }), client],
  );
  const cfg = sidecarSnapshot(mesh, client);
  const ctx = { config: () => cfg, pools: new Pools(), telemetry: new Telemetry(), rr: new Map<string, number>(), active: new ActiveExchanges() };
  for (const path of ['/', '/moved']) {
    const ds = downstream({ method: 'GET', authority: 'reviews', path, query: '', headers: [], hasBody: false, protocol: 'HTTP/1.1' });
    forward(ctx, 'outbound', ds);
    assert.equal((await ds.answer).status, 418, path);
  }
});

test('the list of exchanges in progress: add, delete in any order, and delete while iterating', () => {
  const list = new ActiveExchanges();
  const xs = [0, 1, 2, 3, 4].map((i) => ({ i }) as unknown as Parameters<ActiveExchanges['add']>[0]);
  for (const x of xs) list.add(x);
  assert.equal(list.size, 5);
  list.delete(xs[2]);
  list.delete(xs[2]); // twice: no effect
  list.delete(xs[4]); // the first
  list.delete(xs[0]); // the last
  assert.equal(list.size, 2);
  const seen: number[] = [];
  for (const x of list) {
    seen.push((x as unknown as { i: number }).i);
    list.delete(x); // the sweep ends exchanges as it goes
  }
  assert.deepEqual(seen, [3, 1]);
  assert.equal(list.size, 0);
  assert.deepEqual([...list], []);
});

test("an exchange tells telemetry its upstream connection's local address as Envoy writes it (an IPv6 one in brackets, so that UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT finds its port), and its events have one shape, answered or not", async () => {
  const app = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => app.listen(0, '::1', resolve));
  const port = (app.address() as AddressInfo).port;
  const plain = { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'plain' }, spec: { host: 'reviews', trafficPolicy: { tls: { mode: 'DISABLE' } } } };
  const client = workload('client', { port: 41000 });
  const cfg = sidecarSnapshot(meshOf([plain], [workload('reviews', { service: 'reviews', port, address: '::1' }), client]), client);
  const { ctx, events, pools } = recording(cfg);
  // The upstream connections the sidecar opens (node's own channel for each client socket made).
  const sockets: net.Socket[] = [];
  const made = (m: unknown) => sockets.push((m as { socket: net.Socket }).socket);
  dc.subscribe('net.client.socket', made);
  try {
    for (let i = 0; i < 2; i++) {
      const ds = downstream({ method: 'GET', authority: 'reviews', path: '/', query: '', headers: [], hasBody: false, protocol: 'HTTP/1.1' });
      forward(ctx, 'outbound', ds);
      assert.equal((await ds.answer).status, 200);
    }
    assert.equal(events.length, 2);
    // Both requests went over the one pooled connection: the same address, from the same client port.
    for (const e of events) assert.match(e.upstreamLocal ?? '', /^\[::1\]:\d+$/, JSON.stringify(e));
    assert.equal(events[0]!.upstreamLocal, events[1]!.upstreamLocal);
    // Kept with the pool's connection, not as a property added to node's socket: a socket of one
    // more shape made node's stream code (Socket._write) megamorphic for every socket's writes.
    assert.equal(sockets.length, 1);
    assert.deepEqual(Object.getOwnPropertySymbols(sockets[0]!).map(String).filter((s) => s.includes('weft')), []);
    // The app gone: the sidecar answers itself, and that event has the same fields in the same
    // order as an answered one (one shape, so that subscribers' reads stay monomorphic).
    app.closeAllConnections();
    await new Promise((resolve) => app.close(resolve));
    const ds = downstream({ method: 'GET', authority: 'reviews', path: '/', query: '', headers: [], hasBody: false, protocol: 'HTTP/1.1' });
    forward(ctx, 'outbound', ds);
    assert.equal((await ds.answer).status, 503);
    assert.ok(events[2]?.reason, `the sidecar's own answer: ${JSON.stringify(events[2])}`);
    assert.deepEqual(Object.keys(events[2]!), Object.keys(events[0]!));
  } finally {
    dc.unsubscribe('net.client.socket', made);
    await pools.close();
    if (app.listening) app.close();
  }
});
