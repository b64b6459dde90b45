// A DestinationRule's connectionPool on real sockets: the request path in process (forward(), on
// the sidecar's own conversion of the translated config), towards real upstream servers on
// loopback that count what they see. Circuit breakers hold across the cluster's endpoints, as
// Envoy's; connections are closed after their share of requests, their idle time or their age;
// HTTP/2 connections are pinged; retries past max_retries are not made.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { RuntimeConfig } from '../../src/proxy/config.ts';
import { ActiveExchanges, forward } from '../../src/proxy/http/forward.ts';
import type { Downstream, HeaderList } from '../../src/proxy/http/types.ts';
import { Telemetry } from '../../src/proxy/telemetry/events.ts';
import { Pools } from '../../src/proxy/upstream/pools.ts';
import { meshOf, sidecarSnapshot, workload } from '../snapshot.ts';
import { listen, waitFor } from '../helpers.ts';

const CLUSTER = 'outbound|80||pool.default.svc.cluster.local';
const closers: (() => void)[] = [];
after(() => {
  for (const c of closers.splice(0)) c();
});

/** The client sidecar's config: service "pool" served at `ports` on loopback, with the DestinationRule's traffic policy (and retries, if given). */
function configFor(ports: number[], trafficPolicy: object, retries?: object): RuntimeConfig {
  const ws = ports.map((port, i) => workload(`pool-${i}`, { service: 'pool', port }));
  const client = workload('client', { port: 43000 });
  const config: object[] = [{ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'pool' }, spec: { host: 'pool', trafficPolicy } }];
  if (retries) config.push({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'pool' }, spec: { hosts: ['pool'], http: [{ retries, route: [{ destination: { host: 'pool' } }] }] } });
  return sidecarSnapshot(meshOf(config, [...ws, client]), client);
}

function contextFor(cfg: RuntimeConfig) {
  const pools = new Pools();
  closers.push(() => void pools.close());
  return { config: () => cfg, pools, telemetry: new Telemetry(), rr: new Map<string, number>(), active: new ActiveExchanges() };
}

interface Answer {
  status: number;
  headers: HeaderList;
  body: string;
}

/** One request through the request path, as a downstream codec would hand it in. */
function send(ctx: ReturnType<typeof contextFor>, path = '/', protocol = 'HTTP/1.1'): Promise<Answer> {
  return new Promise((resolve) => {
    let status = 0;
    let headers: HeaderList = [];
    const chunks: Buffer[] = [];
    const ds: Downstream & { responseStarted: boolean } = {
      head: { method: 'GET', authority: 'pool', path, query: '', headers: [], hasBody: false, protocol },
      responseStarted: false,
      remoteAddress: () => '127.0.0.1',
      readBody: (sink) => sink.end([]),
      resumeBody: () => {},
      respond: (s, h) => {
        status = s;
        headers = h;
        ds.responseStarted = true;
      },
      write: (b) => (chunks.push(Buffer.from(b)), true),
      onDrain: () => {},
      end: () => resolve({ status, headers, body: Buffer.concat(chunks).toString() }),
      reset: () => resolve({ status: -1, headers, body: '' }),
      onAbort: () => {},
      upgradeTo: () => undefined,
    };
    forward(ctx, 'outbound', ds);
  });
}

const header = (a: Answer, name: string) => {
  const i = a.headers.indexOf(name);
  return i >= 0 ? a.headers[i + 1] : undefined;
};

/** An HTTP/1.1 server on a free loopback port, closed (connections too) when the tests end. */
async function serve(handler: http.RequestListener): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer(handler);
  const port = await listen(server);
  closers.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return { server, port };
}

/** An HTTP/1.1 upstream that counts connections and holds requests to /hold until released. */
async function upstream(name: string) {
  const held: http.ServerResponse[] = [];
  const sockets = new Set<net.Socket>();
  let connections = 0;
  let requests = 0;
  const closed: number[] = [];
  const { server, port } = await serve((req, res) => {
    requests++;
    if (req.url?.startsWith('/hold')) held.push(res);
    else res.end(name);
  });
  // Node's default (5 s, announced as Keep-Alive: timeout=5) would close idle connections itself.
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s: net.Socket) => {
    connections++;
    sockets.add(s);
    s.on('close', () => {
      sockets.delete(s);
      closed.push(performance.now());
    });
  });
  return {
    port,
    held,
    sockets,
    closed,
    get connections() {
      return connections;
    },
    get requests() {
      return requests;
    },
    release: () => {
      for (const r of held.splice(0)) r.end(name);
    },
  };
}

test('max_connections holds across the cluster: 2 endpoints, maxConnections 2, one waiting; the fourth request is a 503 naming the limits and the cluster', async () => {
  const a = await upstream('a');
  const b = await upstream('b');
  const ctx = contextFor(configFor([a.port, b.port], { connectionPool: { tcp: { maxConnections: 2 }, http: { http1MaxPendingRequests: 1 } } }));
  // Round robin: a, b, a, b. Two connections, one per endpoint: the third request waits for a's.
  const answers = [send(ctx, '/hold/1'), send(ctx, '/hold/2'), send(ctx, '/hold/3')];
  await waitFor('a request held at each endpoint', async () => a.held.length === 1 && b.held.length === 1);
  const over = await send(ctx, '/hold/4');
  assert.equal(over.status, 503);
  assert.equal(header(over, 'x-weft-error'), 'overflow');
  assert.match(over.body, new RegExp(`too many requests to cluster ${CLUSTER.replace(/\|/g, '\\|')}: 2 connections open to the cluster's endpoints \\(1 to this one\\) and 1 request waiting \\(the limits are max_connections 2 and max_pending_requests 1\\)`));
  assert.equal(a.connections + b.connections, 2, 'one connection per endpoint, two in all (per endpoint the limit would have allowed four)');
  a.release();
  b.release();
  await waitFor('the waiting request on a\'s connection', async () => (a.release(), a.requests === 2));
  assert.deepEqual((await Promise.all(answers)).map((r) => r.status), [200, 200, 200]);
  assert.equal(a.connections + b.connections, 2, 'the waiting request took the connection that freed up');
});

test('past max_connections an endpoint with no connection still gets one (Envoy): 3 endpoints, maxConnections 1, three connections', async () => {
  const ups = [await upstream('a'), await upstream('b'), await upstream('c')];
  const ctx = contextFor(configFor(ups.map((u) => u.port), { connectionPool: { tcp: { maxConnections: 1 } } }));
  const answers = [1, 2, 3, 4, 5, 6].map((i) => send(ctx, `/hold/${i}`));
  await waitFor('one request held at each endpoint', async () => ups.every((u) => u.held.length === 1));
  assert.deepEqual(ups.map((u) => u.connections), [1, 1, 1], 'one connection each, not two: the other three requests wait');
  await waitFor('every request answered', async () => {
    for (const u of ups) u.release();
    return ups.reduce((n, u) => n + u.requests, 0) === 6;
  });
  for (const u of ups) u.release();
  assert.deepEqual((await Promise.all(answers)).map((r) => r.status), Array(6).fill(200));
  assert.deepEqual(ups.map((u) => u.connections), [1, 1, 1]);
});

test('http2MaxRequests (max_requests): three under way, the fourth is a 503 naming the limit', async () => {
  const a = await upstream('a');
  const ctx = contextFor(configFor([a.port], { connectionPool: { http: { http2MaxRequests: 3 } } }));
  const answers = [1, 2, 3].map((i) => send(ctx, `/hold/${i}`));
  await waitFor('three requests held', async () => a.held.length === 3);
  const over = await send(ctx, '/hold/4');
  assert.equal(over.status, 503);
  assert.equal(header(over, 'x-weft-error'), 'overflow');
  assert.match(over.body, /: 3 requests under way \(the limit is max_requests 3\)/);
  assert.match(over.body, /cluster outbound\|80\|\|pool\.default\.svc\.cluster\.local/);
  a.release();
  assert.deepEqual((await Promise.all(answers)).map((r) => r.status), [200, 200, 200]);
  assert.equal((await send(ctx, '/')).status, 200, 'the slots are free again');
});

test('maxRequestsPerConnection: 6 requests over HTTP/1.1 with a limit of 2 take 3 connections, each closed after its second', async () => {
  const a = await upstream('a');
  const ctx = contextFor(configFor([a.port], { connectionPool: { http: { maxRequestsPerConnection: 2 } } }));
  for (let i = 0; i < 6; i++) assert.equal((await send(ctx)).status, 200);
  assert.equal(a.connections, 3);
  await waitFor('the third connection closed too', async () => a.sockets.size === 0);
});

test('idleTimeout: an idle upstream connection is closed after http.idleTimeout (tcp.idleTimeout where that is not set)', async () => {
  for (const connectionPool of [{ http: { idleTimeout: '300ms' } }, { tcp: { idleTimeout: '300ms' } }]) {
    const a = await upstream('a');
    const ctx = contextFor(configFor([a.port], { connectionPool }));
    const t0 = performance.now();
    assert.equal((await send(ctx)).status, 200);
    await waitFor('the upstream sees its connection closed', async () => a.closed.length === 1, 10_000);
    const ms = a.closed[0] - t0;
    assert.ok(ms >= 250 && ms < 4000, `closed after ${ms.toFixed(0)} ms`);
  }
});

test('maxConnectionDuration: a connection older than it takes no new request; the next one gets a new connection', async () => {
  const a = await upstream('a');
  const ctx = contextFor(configFor([a.port], { connectionPool: { tcp: { maxConnectionDuration: '300ms' } } }));
  const t0 = performance.now();
  assert.equal((await send(ctx)).status, 200);
  await waitFor('the first connection closed at its age', async () => a.closed.length === 1);
  assert.ok(a.closed[0] - t0 < 4000, `closed after ${(a.closed[0] - t0).toFixed(0)} ms`);
  assert.equal((await send(ctx)).status, 200);
  assert.equal(a.connections, 2);
});

test('maxRetries (max_retries): while one retry is under way in the cluster, another request that fails is not retried; its 503 stands', async () => {
  let n = 0;
  const held: http.ServerResponse[] = [];
  const { port } = await serve((_req, res) => {
    n++;
    // In order: /a fails, /a's retry is held, /b fails.
    if (n !== 2) {
      res.statusCode = 503;
      res.end('first try fails');
    } else held.push(res);
  });
  const ctx = contextFor(configFor([port], { connectionPool: { http: { maxRetries: 1 } } }, { attempts: 3, retryOn: '5xx' }));
  const first = send(ctx, '/a');
  await waitFor("the first request's retry held upstream", async () => held.length === 1);
  const second = await send(ctx, '/b');
  assert.equal(second.status, 503);
  assert.equal(second.body, 'first try fails', "the upstream's own answer: no retry was made, and nothing was made up");
  assert.equal(n, 3, 'the upstream saw three requests: /a, its retry, /b');
  held[0].end('retried');
  assert.deepEqual(await first.then((r) => [r.status, r.body]), [200, 'retried']);
});

test('HTTP/2: maxRequestsPerConnection, idleTimeout and http2KeepAlive PINGs on upgraded connections', async () => {
  const sessions: http2.ServerHttp2Session[] = [];
  let pings = 0;
  const server = http2.createServer();
  server.on('session', (s) => {
    sessions.push(s);
    s.on('ping', () => pings++);
  });
  server.on('stream', (s) => {
    s.respond({ ':status': 200 });
    s.end('h2');
  });
  const port = await listen(server);
  closers.push(() => {
    for (const s of sessions) s.destroy();
    server.close();
  });
  const ctx = contextFor(
    configFor([port], { connectionPool: { http: { h2UpgradePolicy: 'UPGRADE', maxRequestsPerConnection: 2, idleTimeout: '1s', http2KeepAlive: { interval: '100ms', timeout: '1s' } } } }),
  );
  for (let i = 0; i < 3; i++) {
    const r = await send(ctx);
    assert.deepEqual([r.status, r.body], [200, 'h2']);
  }
  assert.equal(sessions.length, 2, 'two HTTP/2 connections for three requests');
  await waitFor('the first connection closed after its second stream', async () => sessions[0].closed || sessions[0].destroyed);
  await waitFor('PINGs on the open connection', async () => pings >= 2);
  await waitFor('the second connection closed too, idle for 1 s', async () => sessions[1].closed || sessions[1].destroyed, 10_000);
});

test('http2KeepAlive: a connection whose PING goes unanswered is closed', async () => {
  // A server that speaks just enough HTTP/2 (its SETTINGS, and an ack of the client's), then never answers a PING.
  let closedAt = 0;
  let readyAt = 0;
  const server = net.createServer((s) => {
    s.on('data', (d: Buffer) => {
      if (!readyAt) {
        readyAt = performance.now();
        const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
        const ack = Buffer.from([0, 0, 0, 4, 1, 0, 0, 0, 0]);
        s.write(Buffer.concat([settings, ack]));
      }
      void d;
    });
    s.on('close', () => (closedAt = performance.now()));
    s.on('error', () => {});
  });
  const port = await listen(server);
  closers.push(() => server.close());
  const ctx = contextFor(configFor([port], { connectionPool: { http: { h2UpgradePolicy: 'UPGRADE', http2KeepAlive: { interval: '200ms', timeout: '300ms' } } } }));
  const answer = send(ctx, '/never');
  await waitFor('the connection closed by the sidecar', async () => closedAt > 0, 10_000);
  const ms = closedAt - readyAt;
  assert.ok(ms >= 400, `closed ${ms.toFixed(0)} ms after it was ready (interval 200 ms + timeout 300 ms)`);
  assert.equal((await answer).status, 502, 'the stream on it failed');
});

test('tcpKeepalive: the upstream socket has SO_KEEPALIVE with the rule\'s time before probes', async (t) => {
  const a = await upstream('a');
  const ctx = contextFor(configFor([a.port], { connectionPool: { tcp: { tcpKeepalive: { time: '42s' } } } }));
  assert.equal((await send(ctx)).status, 200);
  const [s] = [...a.sockets];
  // The sidecar's end of the connection, as the kernel shows it: a keepalive timer of about 42 s.
  const out = execFileSync('ss', ['-tnoH', 'state', 'established', `( sport = :${s.remotePort} )`], { encoding: 'utf8' });
  t.diagnostic(out.trim());
  assert.match(out, /timer:\(keepalive,(4[0-2]|39)sec/);
});

/** One endpoint that speaks HTTP/1.1 and HTTP/2: each connection goes to one of two servers by its first bytes. */
async function bothProtocols(): Promise<{ port: number; seen: string[] }> {
  const seen: string[] = [];
  const h1 = http.createServer((req, res) => (seen.push(req.httpVersion), res.end('1')));
  const h2 = http2.createServer((req, res) => (seen.push(req.httpVersion), res.end('2')));
  const h2sessions: http2.ServerHttp2Session[] = [];
  h2.on('session', (x) => h2sessions.push(x));
  for (const x of [h1, h2]) await listen(x);
  const server = net.createServer((s) => {
    s.once('data', (d: Buffer) => {
      const to = net.connect(((d.subarray(0, 3).toString() === 'PRI' ? h2 : h1).address() as net.AddressInfo).port, '127.0.0.1');
      to.write(d);
      s.pipe(to).pipe(s);
      s.on('error', () => to.destroy());
      to.on('error', () => s.destroy());
    });
  });
  const port = await listen(server);
  closers.push(() => {
    h1.closeAllConnections();
    h1.close();
    for (const x of h2sessions) x.destroy();
    h2.close();
    server.close();
  });
  return { port, seen };
}

test('useClientProtocol: an HTTP/2 request goes upstream over HTTP/2, an HTTP/1.1 one over HTTP/1.1', async () => {
  const { port, seen } = await bothProtocols();
  const ctx = contextFor(configFor([port], { connectionPool: { http: { useClientProtocol: true } } }));
  assert.equal((await send(ctx, '/', 'HTTP/2')).body, '2');
  assert.equal((await send(ctx, '/', 'HTTP/1.1')).body, '1');
  assert.deepEqual(seen, ['2.0', '1.1']);
});

test('a port of undeclared protocol takes the client\'s protocol upstream, as Istio\'s sniffed ports (review: it was HTTP/1.1 always, so h2c and gRPC there failed)', async () => {
  const { port, seen } = await bothProtocols();
  const pool = workload('pool-0', { service: 'pool', port, ports: [{ name: 'web', port: 80, inboundPort: port, appPort: port + 1 }] });
  const client = workload('client', { port: 43000 });
  const ctx = contextFor(sidecarSnapshot(meshOf([], [pool, client]), client));
  assert.equal((await send(ctx, '/', 'HTTP/2')).body, '2');
  assert.equal((await send(ctx, '/', 'HTTP/1.1')).body, '1');
  assert.deepEqual(seen, ['2.0', '1.1']);
});

test('retryBudget (Envoy\'s retry_budget): retries under way at most percent% of the requests, never fewer than minRetryConcurrency; it replaces Weft\'s own budget', async (t) => {
  let seen = 0;
  const tried = new Set<string>();
  const held: http.ServerResponse[] = [];
  const { port } = await serve((req, res) => {
    seen++;
    // Each path's first try fails; its retries are held, so that they stay under way.
    if (tried.has(req.url!)) return void held.push(res);
    tried.add(req.url!);
    res.statusCode = 503;
    res.end('fails');
  });
  // 50% of what is under way, at least 1: with one request under way, one retry; not two.
  const ctx = contextFor(configFor([port], { retryBudget: { percent: 50, minRetryConcurrency: 1 } }, { attempts: 3, retryOn: '5xx' }));
  const translated = ctx.config().clusters.get(CLUSTER)!;
  assert.deepEqual(translated.limits.retryBudget, { percent: 50, minConcurrency: 1 });
  const first = send(ctx, '/a');
  await waitFor("the first request's retry held upstream", async () => held.length === 1);
  // Requests under way now: /a's retry (1). 50% of 1 is 0, the floor 1: no second retry.
  const second = await send(ctx, '/b');
  t.diagnostic(`upstream saw ${seen}; the second got ${second.status}`);
  assert.equal(second.status, 503, 'the budget had no room for a second retry: the upstream\'s 503 stands');
  held[0].end('retried');
  assert.equal((await first).status, 200);
});
