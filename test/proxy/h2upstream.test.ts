// HTTP/2 upstreams that misbehave, through real sidecar processes: a refused connection (retried
// on another endpoint), GOAWAY with streams in flight, streams reset before and after the response
// head, a session that dies mid-response, an upstream that never answers, the pool's stream and
// queue limits, and 20 MB each way through two sidecars with memory bounded.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.ts';
import { translate } from '../../src/control/translate/translate.ts';
import { freePort } from '../../src/util/net.ts';
import { tmpDir, waitFor } from '../helpers.ts';
import { H2_OPTIONS, h2req } from './h2util.ts';
import { type SidecarProc, generateWith, memoryOf, spawnSidecar, stopProc } from './mesh.ts';

const { NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } = http2.constants;
const H2 = /h2-/;

async function listenH2(s: http2.Http2Server): Promise<number> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return (s.address() as AddressInfo).port;
}

describe('HTTP/2 upstreams that fail (real sidecar processes)', () => {
  let cp: ControlPlane;
  let outbound: number;
  let client: SidecarProc;
  let appSidecar: SidecarProc;
  let session: http2.ClientHttp2Session;
  const servers: http2.Http2Server[] = [];
  let goawayPort = 0;
  let limitPort = 0;
  const goaway = { sessions: 0, sent: false, firstSession: [] as number[] };
  const held: http2.ServerHttp2Stream[] = [];
  let release = false;

  const register = (service: string, ports: number[]) =>
    ports.forEach((port, i) =>
      cp.registry.register({ proxyId: `${service}-${i}`, name: `${service}-${i}`, namespace: 'default', service, servicePort: 80, labels: {}, address: '127.0.0.1', inboundPort: port, appPort: port, healthy: true }),
    );

  const poolOf = async (port: number) => {
    const r = await fetch(`${client.admin}/stats`);
    const s = (await r.json()) as { pools: { endpoint: string; idle: number; busy: number; connecting: number; pending: number; streams?: number }[] };
    return s.pools.find((p) => p.endpoint === `127.0.0.1:${port}`);
  };

  before(async () => {
    const hcm = generateWith({ stream_idle_timeout: { seconds: 2 } })!;
    cp = await startControlPlane({
      dataDir: tmpDir('cp'),
      adminPort: 0,
      xdsPort: 0,
      heartbeatMs: 1000,
      generate: (mesh, proxy) => {
        const r = hcm(mesh, proxy) as ReturnType<typeof translate>;
        const clusters: Record<string, object> = {};
        for (const [name, c] of Object.entries(r.clusters)) clusters[name] = H2.test(name) || (name.startsWith('inbound|') && proxy.service !== undefined && H2.test(proxy.service)) ? { ...c, typed_extension_protocol_options: H2_OPTIONS } : c;
        return { ...r, clusters };
      },
    });

    // A healthy app, and a port nothing listens on.
    const ok = http2.createServer();
    ok.on('stream', (s) => {
      s.respond({ ':status': 200 });
      s.end('ok');
    });
    servers.push(ok);
    const okPort = await listenH2(ok);
    const deadPort = await freePort();
    register('h2-half', [deadPort, okPort]);
    register('h2-dead', [deadPort]);

    // GOAWAY: the first session gets four streams, then a GOAWAY whose last-stream-id is the second.
    const ga = http2.createServer();
    ga.on('session', () => goaway.sessions++);
    ga.on('stream', (s, h) => {
      s.on('error', () => {});
      const answer = () => {
        if (s.destroyed) return;
        s.respond({ ':status': 200, 'x-session': String(goaway.sessions) });
        s.end(`stream ${s.id}`);
      };
      if (h[':path'] !== '/goaway' || goaway.sent) return answer();
      goaway.firstSession.push(s.id!);
      const waiting = (s.session as any).__waiting ?? ((s.session as any).__waiting = []);
      waiting.push(answer);
      if (waiting.length === 4) {
        goaway.sent = true;
        s.session!.goaway(NGHTTP2_NO_ERROR, goaway.firstSession[1]);
        waiting[0]();
        waiting[1]();
      }
    });
    servers.push(ga);
    goawayPort = await listenH2(ga);
    register('h2-goaway', [goawayPort]);

    // Resets, a dying session, silence.
    const bad = http2.createServer();
    bad.on('stream', (s, h) => {
      s.on('error', () => {});
      const p = h[':path'];
      if (p === '/rst-before') return s.close(NGHTTP2_INTERNAL_ERROR);
      if (p === '/never') return;
      s.respond({ ':status': 200 });
      s.write(Buffer.alloc(1000, 'a'));
      // (stream.close() would flush and end the stream first: destroy() resets it as it is.)
      if (p === '/rst-after') s.write('', () => s.destroy(new Error('reset after the head')));
      else if (p === '/die') s.write('', () => s.session?.socket.destroy());
      else s.end();
    });
    servers.push(bad);
    register('h2-bad', [await listenH2(bad)]);

    // Limits: the server takes 2 streams per connection and holds them until released.
    const lim = http2.createServer({ settings: { maxConcurrentStreams: 2 } });
    lim.on('stream', (s, h) => {
      s.on('error', () => {});
      if (!release && String(h[':path']).startsWith('/hold')) return void held.push(s);
      s.respond({ ':status': 200 });
      s.end('free');
    });
    servers.push(lim);
    limitPort = await listenH2(lim);
    register('h2-limit', [limitPort]);

    // An echo app behind its own sidecar, for 20 MB each way.
    const echo = http2.createServer();
    echo.on('stream', (s) => {
      s.on('error', () => {});
      s.respond({ ':status': 200 });
      s.pipe(s);
    });
    servers.push(echo);
    const echoPort = await listenH2(echo);
    const inbound = await freePort();
    appSidecar = await spawnSidecar(cp, ['--workload', 'h2-echo-1', '--service', 'h2-echo', '--inbound-port', String(inbound), '--app-port', String(echoPort)]);

    outbound = await freePort();
    client = await spawnSidecar(cp, ['--workload', 'client', '--outbound-port', String(outbound)], { WEFT_UPSTREAM_MAX_CONNECTIONS: '2', WEFT_UPSTREAM_MAX_PENDING: '3' });
    session = http2.connect(`http://127.0.0.1:${outbound}`);
    session.on('error', () => {});
    await waitFor('routes to the h2- services', async () => {
      for (const host of ['h2-half', 'h2-goaway', 'h2-bad', 'h2-limit', 'h2-echo']) {
        const r = await h2req(session, { ':authority': host, ':path': '/ready' });
        if (r.headers['x-weft-error'] === 'no_route' || r.headers['x-weft-error'] === 'no_config' || r.headers['x-weft-error'] === 'no_cluster') return false;
      }
      return true;
    }, 20_000);
  });

  after(async () => {
    session?.destroy();
    await Promise.all([stopProc(client?.proc), stopProc(appSidecar?.proc)]);
    for (const s of servers) s.close();
    await cp?.close();
  });

  test('connect refused: 503 connect_refused with one endpoint; retried on the other endpoint when there are two', async () => {
    const dead = await h2req(session, { ':authority': 'h2-dead' });
    assert.equal(dead.status, 503);
    assert.equal(dead.headers['x-weft-error'], 'connect_refused');
    assert.match(dead.body.toString(), /connection refused by 127\.0\.0\.1:\d+ in cluster outbound\|80\|\|h2-dead/);
    const rs = await Promise.all(Array.from({ length: 6 }, () => h2req(session, { ':authority': 'h2-half' })));
    assert.deepEqual(rs.map((r) => r.status), Array(6).fill(200), rs.map((r) => r.body.toString()).join('\n'));
  });

  test('GOAWAY with streams in flight: those above last-stream-id are sent again on a new session, and new requests use it', async () => {
    const rs = await Promise.all(Array.from({ length: 4 }, () => h2req(session, { ':authority': 'h2-goaway', ':path': '/goaway' })));
    assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200], rs.map((r) => r.reset ?? r.body.toString()).join('\n'));
    assert.equal(goaway.sent, true);
    const sessions = rs.map((r) => r.headers['x-session']);
    assert.equal(sessions.filter((s) => s === '1').length, 2, `answered on sessions ${sessions}`);
    const next = await h2req(session, { ':authority': 'h2-goaway', ':path': '/after' });
    assert.equal(next.status, 200);
    assert.equal(next.headers['x-session'], '2');
    await waitFor('the drained session to close', async () => (await poolOf(goawayPort))?.streams === 0 && (await poolOf(goawayPort))!.busy === 0);
  });

  test('a stream reset before the response head: 502 upstream_reset naming the HTTP/2 error code', async () => {
    const r = await h2req(session, { ':authority': 'h2-bad', ':path': '/rst-before' });
    assert.equal(r.status, 502);
    assert.equal(r.headers['x-weft-error'], 'upstream_reset');
    assert.match(r.body.toString(), /reset the stream before answering \(HTTP\/2 error code 2\)/);
  });

  test('a stream reset after the response head, and a session that dies mid-response: the client sees a reset; the pool recovers', async () => {
    for (const p of ['/rst-after', '/die']) {
      const r = await h2req(session, { ':authority': 'h2-bad', ':path': p });
      assert.equal(r.status, 200, p);
      assert.ok(r.reset, `${p}: the client must not see a complete response (got ${r.body.length} bytes)`);
      const next = await h2req(session, { ':authority': 'h2-bad', ':path': '/fine' });
      assert.equal(next.status, 200, `after ${p}`);
      assert.equal(next.body.length, 1000);
    }
  });

  test('an upstream that never answers: 408 stream_idle_timeout, and the stream is closed upstream', async () => {
    const t0 = performance.now();
    const r = await h2req(session, { ':authority': 'h2-bad', ':path': '/never' });
    const ms = performance.now() - t0;
    console.log(`# HTTP/2 upstream that never answers: 408 after ${ms.toFixed(0)} ms (stream idle timeout 2 s)`);
    assert.equal(r.status, 408);
    assert.equal(r.headers['x-weft-error'], 'stream_idle_timeout');
    assert.ok(ms < 15_000);
  });

  test('pool limits: the server allows 2 streams per connection, the sidecar 2 connections and 3 waiting; the next is 503 overflow naming the limits', async () => {
    // Four fill both connections (the second opens once the first is full); three wait; the eighth overflows.
    const rs = Array.from({ length: 4 }, (_, i) => h2req(session, { ':authority': 'h2-limit', ':path': `/hold/${i}` }));
    await waitFor('4 held streams', async () => held.length === 4);
    for (let i = 4; i < 7; i++) rs.push(h2req(session, { ':authority': 'h2-limit', ':path': `/hold/${i}` }));
    await waitFor('3 requests waiting', async () => (await poolOf(limitPort))?.pending === 3);
    const st = await poolOf(limitPort);
    console.log(`# h2-limit pool while full: ${JSON.stringify(st)}`);
    assert.deepEqual({ busy: st?.busy, streams: st?.streams, pending: st?.pending }, { busy: 2, streams: 4, pending: 3 });
    const over = await h2req(session, { ':authority': 'h2-limit', ':path': '/hold/7' });
    assert.equal(over.status, 503, over.body.toString());
    assert.equal(over.headers['x-weft-error'], 'overflow');
    assert.match(over.body.toString(), /2 connections open to the cluster's endpoints, 2 of them HTTP\/2 to this one with 4 streams \(at most 2 each\) and 3 requests waiting \(the limits are max_connections 2 and max_pending_requests 3\)/);
    release = true;
    for (const s of held.splice(0)) {
      s.respond({ ':status': 200 });
      s.end('held');
    }
    const all = await Promise.all(rs);
    assert.deepEqual(all.map((r) => r.status), Array(7).fill(200));
    await waitFor('the pool to be quiet', async () => {
      const p = await poolOf(limitPort);
      return p?.streams === 0 && p.pending === 0;
    });
  });

  test('20 MB each way through two sidecars: bytes intact, memory bounded', async () => {
    const size = 20 * 1024 * 1024;
    const before = [memoryOf(client.pid).rssAnonMB, memoryOf(appSidecar.pid).rssAnonMB];
    const peak = [...before];
    const sample = setInterval(() => {
      peak[0] = Math.max(peak[0], memoryOf(client.pid).rssAnonMB);
      peak[1] = Math.max(peak[1], memoryOf(appSidecar.pid).rssAnonMB);
    }, 50);
    const t0 = performance.now();
    try {
      const sent = crypto.createHash('sha256');
      const got = crypto.createHash('sha256');
      let received = 0;
      await new Promise<void>((resolve, reject) => {
        const s = session.request({ ':method': 'POST', ':path': '/echo', ':authority': 'h2-echo' });
        s.on('response', (h) => (h[':status'] === 200 ? undefined : reject(new Error(`status ${h[':status']}`))));
        s.on('data', (d: Buffer) => {
          received += d.length;
          got.update(d);
        });
        s.on('end', () => resolve());
        s.on('error', reject);
        const chunk = crypto.randomBytes(64 * 1024);
        let written = 0;
        const pump = () => {
          while (written < size) {
            written += chunk.length;
            sent.update(chunk);
            if (!s.write(chunk)) return void s.once('drain', pump);
          }
          s.end();
        };
        pump();
      });
      const secs = (performance.now() - t0) / 1000;
      console.log(
        `# 20 MB each way through two HTTP/2 sidecars in ${secs.toFixed(2)} s; private memory growth at peak: client sidecar ${(peak[0] - before[0]).toFixed(1)} MB, app sidecar ${(peak[1] - before[1]).toFixed(1)} MB`,
      );
      assert.equal(received, size);
      assert.equal(got.digest('hex'), sent.digest('hex'));
      assert.ok(peak[0] - before[0] < 64 && peak[1] - before[1] < 64, `memory grew by ${peak[0] - before[0]} / ${peak[1] - before[1]} MB`);
    } finally {
      clearInterval(sample);
    }
  });
});
