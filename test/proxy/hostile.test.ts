// One client must never take a sidecar down for everyone. Each case is bounded in count and time,
// asserts that the answer names the limit, that no upstream connection is left busy, and that the
// next client is served. Real sidecar processes, loopback only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { request } from 'undici';
import { fdLimit } from '../../src/proxy/limits.ts';
import { waitFor } from '../helpers.ts';
import { type Mesh, busyUpstreams, memoryOf, raw, startMesh } from './mesh.ts';

const SHORT = {
  request_headers_timeout: { nanos: 500_000_000 },
  stream_idle_timeout: { seconds: 1 },
};

function app(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.url === '/never') return; // an upstream that never answers
  req.resume();
  req.on('end', () => res.end('ok'));
}

describe('hostile clients and upstreams', () => {
  let m: Mesh;
  before(async () => {
    m = await startMesh(app, { hcm: SHORT, clientEnv: { WEFT_MAX_CONNECTIONS: '300' } });
  });
  after(async () => {
    await m?.close();
  });

  const ok = async () => {
    const r = await request(`http://127.0.0.1:${m.outbound}/`, { headers: { host: 'app' }, headersTimeout: 10_000 });
    await r.body.dump();
    return r.statusCode;
  };

  test('slowloris: a head that trickles in is answered 408 and closed at the headers timeout', async () => {
    const t0 = performance.now();
    const answer = await new Promise<{ data: string; ms: number }>((resolve) => {
      const s = net.connect(m.outbound, '127.0.0.1');
      let data = '';
      const head = 'GET / HTTP/1.1\r\nHost: app\r\nX-Slow: ' + 'a'.repeat(200);
      let i = 0;
      const tick = setInterval(() => {
        if (i < head.length && !s.destroyed) s.write(head[i++]);
      }, 50);
      s.on('data', (d) => (data += d));
      s.on('error', () => {});
      s.on('close', () => {
        clearInterval(tick);
        resolve({ data, ms: performance.now() - t0 });
      });
    });
    console.log(`# slowloris connection closed after ${answer.ms.toFixed(0)} ms (headers timeout 500 ms)`);
    assert.match(answer.data, /^HTTP\/1\.1 408 /);
    assert.match(answer.data, /did not arrive within 500 ms/);
    assert.ok(answer.ms < 5000);
    assert.equal(await ok(), 200);
  });

  test('an upstream that never answers: 408 at the stream idle timeout, naming the endpoint', async () => {
    const t0 = performance.now();
    const r = await request(`http://127.0.0.1:${m.outbound}/never`, { headers: { host: 'app' }, headersTimeout: 20_000 });
    const body = await r.body.text();
    const ms = performance.now() - t0;
    console.log(`# answered after ${ms.toFixed(0)} ms (stream idle timeout 1 s): ${body.trim()}`);
    assert.equal(r.statusCode, 408);
    assert.equal(r.headers['x-weft-error'], 'stream_idle_timeout');
    // Either sidecar may be the first to give up: each names the upstream it was waiting for.
    assert.match(body, /while waiting for upstream 127\.0\.0\.1:\d+ in cluster (outbound\|80\|\|app\.default\.svc\.cluster\.local|inbound\|80\|\|)/);
    assert.ok(ms < 10_000);
    await waitFor('no upstream connection left busy', async () => (await busyUpstreams(m.client.admin)) === 0 && (await busyUpstreams(m.server.admin)) === 0);
  });

  test('a body that stops midway: 408 naming the client, and the upstream connection is not left busy', async () => {
    const r = await raw(m.outbound, 'POST / HTTP/1.1\r\nHost: app\r\nContent-Length: 1000\r\n\r\n' + 'x'.repeat(100), 15_000);
    assert.match(r.data, /^HTTP\/1\.1 408 /);
    assert.match(r.data, /waiting for the rest of the request body from the client/);
    assert.ok(r.closed);
    await waitFor('no upstream connection left busy', async () => (await busyUpstreams(m.client.admin)) === 0 && (await busyUpstreams(m.server.admin)) === 0);
    assert.equal(await ok(), 200);
  });

  test('clients that pipeline thousands of requests and never read: memory stays bounded, the next client is served', async () => {
    const before = memoryOf(m.client.pid);
    const conns: net.Socket[] = [];
    const burst = Buffer.from('GET / HTTP/1.1\r\nHost: app\r\n\r\n'.repeat(2000));
    for (let i = 0; i < 50; i++) {
      const s = net.connect(m.outbound, '127.0.0.1');
      s.on('error', () => {});
      s.on('connect', () => {
        s.pause(); // never reads
        s.write(burst);
      });
      conns.push(s);
    }
    // While they sit there, others are served.
    const served: number[] = [];
    for (let i = 0; i < 20; i++) served.push(await ok());
    assert.deepEqual(served, Array(20).fill(200));
    const during = memoryOf(m.client.pid);
    console.log(`# client sidecar private memory ${before.rssAnonMB.toFixed(1)} MB before, ${during.rssAnonMB.toFixed(1)} MB with 50 connections x 2,000 unread pipelined requests (RSS ${during.rssMB.toFixed(1)} MB)`);
    assert.ok(during.rssAnonMB - before.rssAnonMB < 100, `private memory grew by ${(during.rssAnonMB - before.rssAnonMB).toFixed(1)} MB`);
    for (const s of conns) s.destroy();
    await waitFor('no upstream connection left busy', async () => (await busyUpstreams(m.client.admin)) === 0);
    assert.equal(await ok(), 200);
  });

  test('past the connection limit, new connections are refused at once; the admin endpoint and established traffic are unaffected', async () => {
    // A client with a connection already open, before the flood.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = () =>
      new Promise<number>((resolve, reject) => {
        const q = http.get({ host: '127.0.0.1', port: m.outbound, path: '/', headers: { host: 'app' }, agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        q.on('error', reject);
      });
    assert.equal(await get(), 200);
    const want = Math.min(10_000, fdLimit() - 2000);
    const sockets: net.Socket[] = [];
    await new Promise<void>((resolve) => {
      let settled = 0;
      for (let i = 0; i < want; i++) {
        const s = net.connect(m.outbound, '127.0.0.1');
        s.on('error', () => {});
        s.resume(); // so that a close by the sidecar is seen
        s.once('connect', () => {
          if (++settled === want) resolve();
        });
        sockets.push(s);
      }
    });
    try {
      // Nearly all of them refused (a few may still sit in the kernel's accept queue).
      await waitFor('the sidecar to refuse the flood', async () => (await m.stats(m.client.admin)).connections.refused >= 0.9 * (want - 300), 30_000);
      const stats = await waitFor('the admin endpoint to answer', async () => {
        const r = await request(`${m.client.admin}/stats`, { headersTimeout: 5000 });
        return (await r.body.json()) as any;
      });
      console.log(`# ${want} idle connections: ${stats.connections.active} held (limit ${stats.connections.limit}), ${stats.connections.refused} refused`);
      assert.equal(stats.connections.limit, 300);
      assert.ok(stats.connections.active <= 300);
      assert.ok(stats.connections.refused >= 0.9 * (want - 300), JSON.stringify(stats.connections));
      assert.equal(await get(), 200, 'the connection opened before the flood still works');
    } finally {
      for (const s of sockets) s.destroy();
      agent.destroy();
    }
    await waitFor('the flood to be gone', async () => ((await m.stats(m.client.admin)).connections.active as number) < 10);
    assert.equal(await ok(), 200);
  });

});
