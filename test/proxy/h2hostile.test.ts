// Hostile HTTP/2 clients against a real sidecar: streams whose responses are never read, a header
// block past the 60 KiB limit, rapid reset (CVE-2023-44487), a body that stops midway. Each is
// bounded, reports its figures, and checks that the next client is served. Also: a response of
// unknown length with no trailers ends with its last DATA frame.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { request } from 'undici';
import { waitFor } from '../helpers.ts';
import { type Mesh, busyUpstreams, memoryOf, startMesh } from './mesh.ts';
import { F, RawH2, T, request as h2request, rst } from './h2raw.ts';
import { h2req } from './h2util.ts';

let hits = 0;
function app(req: http.IncomingMessage, res: http.ServerResponse): void {
  hits++;
  if (req.url === '/big') return void res.end(Buffer.alloc(1024 * 1024, 'b'));
  if (req.url === '/chunked') {
    res.write('part one, ');
    setImmediate(() => res.end('part two'));
    return;
  }
  req.resume();
  req.on('end', () => res.end('ok'));
}

const get = (path: string): [string, string][] => [
  [':method', 'GET'],
  [':scheme', 'http'],
  [':path', path],
  [':authority', 'app'],
];

describe('hostile HTTP/2 clients', () => {
  let m: Mesh;
  before(async () => {
    m = await startMesh(app, { hcm: { stream_idle_timeout: { seconds: 1 } } });
  });
  after(async () => {
    await m?.close();
  });

  const ok = async () => {
    const r = await request(`http://127.0.0.1:${m.outbound}/`, { headers: { host: 'app' }, headersTimeout: 10_000 });
    await r.body.dump();
    return r.statusCode;
  };

  // node:http2 decides at respond() whether trailers may follow; with room for them and none sent,
  // or when end() comes after the last write has been flushed, it ends with an empty DATA frame.
  test('a response of unknown length and no trailers ends with its last DATA frame', { todo: 'node:http2 sends an empty END_STREAM DATA frame' }, async () => {
    const c = new RawH2(m.outbound);
    try {
      await c.write(h2request(1, get('/chunked'), true));
      await c.until((fs) => fs.some((f) => f.stream === 1 && f.flags & F.END_STREAM));
      const mine = c.frames.filter((f) => f.stream === 1);
      const last = mine.at(-1)!;
      const body = Buffer.concat(mine.filter((f) => f.type === T.DATA).map((f) => f.payload)).toString();
      assert.equal(body, 'part one, part two');
      assert.equal(last.type, T.DATA, `frames on the stream: ${mine.map((f) => `${f.type}/${f.flags}/${f.payload.length}`).join(' ')}`);
      assert.ok(last.payload.length > 0, `the stream ended with an empty DATA frame: ${mine.map((f) => `${f.type}/${f.flags}/${f.payload.length}`).join(' ')}`);
    } finally {
      c.destroy();
    }
  });

  test('an unknown-length answer through the HTTP/2 downstream arrives whole', async () => {
    const session = http2.connect(`http://127.0.0.1:${m.outbound}`);
    try {
      const r = await h2req(session, { ':authority': 'app', ':path': '/chunked', te: 'trailers' });
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'part one, part two');
    } finally {
      session.close();
    }
  });

  test('streams whose responses are never read: memory stays bounded, others are served, nothing left busy', async () => {
    const before = memoryOf(m.client.pid);
    const conns: RawH2[] = [];
    for (let i = 0; i < 4; i++) {
      const c = new RawH2(m.outbound, { read: false });
      const reqs: Buffer[] = [];
      for (let s = 0; s < 50; s++) reqs.push(h2request(2 * s + 1, get('/big'), true));
      c.socket.write(Buffer.concat(reqs));
      conns.push(c);
    }
    await waitFor('the app to get the requests', async () => hits >= 150, 20_000);
    const served: number[] = [];
    for (let i = 0; i < 10; i++) served.push(await ok());
    assert.deepEqual(served, Array(10).fill(200));
    const during = memoryOf(m.client.pid);
    console.log(`# client sidecar private memory ${before.rssAnonMB.toFixed(1)} MB before, ${during.rssAnonMB.toFixed(1)} MB with 4 connections x 50 unread 1 MB responses (200 MB if buffered)`);
    assert.ok(during.rssAnonMB - before.rssAnonMB < 100, `private memory grew by ${(during.rssAnonMB - before.rssAnonMB).toFixed(1)} MB`);
    for (const c of conns) c.destroy();
    await waitFor('no upstream connection left busy', async () => (await busyUpstreams(m.client.admin)) === 0, 20_000);
    assert.equal(await ok(), 200);
  });

  test('a header block past 60 KiB: refused naming the limit, the connection and the sidecar carry on', async () => {
    const c = new RawH2(m.outbound);
    try {
      const fields = get('/');
      // Ten 7 KiB fields (one field past 64 KiB is an HPACK error to nghttp2: GOAWAY COMPRESSION_ERROR).
      for (let i = 0; i < 10; i++) fields.push([`x-big-${i}`, 'h'.repeat(7 * 1024)]);
      await c.write(h2request(1, fields, true));
      await c.until((fs) => fs.some((f) => (f.stream === 1 && (f.type === T.RST_STREAM || f.flags & F.END_STREAM)) || f.type === T.GOAWAY));
      const mine = c.frames.filter((f) => f.stream === 1 || f.type === T.GOAWAY);
      console.log(`# 70 KiB header block: ${mine.map((f) => `type ${f.type} flags ${f.flags} ${f.type === T.GOAWAY || f.type === T.RST_STREAM ? `code ${f.payload.readUInt32BE(f.type === T.GOAWAY ? 4 : 0)}` : `${f.payload.length} bytes`}`).join("; ")}`);
      const body = Buffer.concat(mine.filter((f) => f.type === T.DATA).map((f) => f.payload)).toString();
      const reset = mine.find((f) => f.type === T.RST_STREAM);
      assert.ok(reset || /the limit is 60 KiB/.test(body), `neither a reset nor an answer naming the limit: ${body}`);
      assert.ok(mine.some((f) => f.type === T.HEADERS), 'an answer (431), not only a reset');
      // The same connection still serves a normal request.
      await c.write(h2request(3, get('/'), true));
      await c.until((fs) => fs.some((f) => f.stream === 3 && f.flags & F.END_STREAM));
      assert.ok(c.frames.some((f) => f.stream === 3 && f.type === T.HEADERS));
    } finally {
      c.destroy();
    }
    assert.equal(await ok(), 200);
  });

  test('rapid reset: 20,000 streams opened and reset at once cost bounded work; the sidecar stays responsive', async () => {
    const hitsBefore = hits;
    const c = new RawH2(m.outbound);
    const t0 = performance.now();
    const n = 20_000;
    for (let b = 0; b < n; b += 1000) {
      const batch: Buffer[] = [];
      for (let i = b; i < b + 1000; i++) batch.push(h2request(2 * i + 1, get('/'), true), rst(2 * i + 1));
      if (c.closed) break;
      await c.write(Buffer.concat(batch));
    }
    // A request in the middle of it all is still answered quickly.
    const t1 = performance.now();
    assert.equal(await ok(), 200);
    const okMs = performance.now() - t1;
    await c.until((fs) => fs.some((f) => f.type === T.GOAWAY) || c.closed).catch(() => {});
    const goaway = c.frames.find((f) => f.type === T.GOAWAY);
    const reached = hits - hitsBefore - 1;
    console.log(
      `# rapid reset: ${n} HEADERS+RST_STREAM pairs sent in ${(performance.now() - t0).toFixed(0)} ms; ${reached} reached the app; ${goaway ? `GOAWAY code ${goaway.payload.readUInt32BE(4)}` : 'no GOAWAY'}; a request meanwhile took ${okMs.toFixed(0)} ms`,
    );
    c.destroy();
    assert.ok(okMs < 5000);
    assert.ok(reached < n / 2, `${reached} of ${n} reset streams reached the app`);
    await waitFor('no upstream connection left busy', async () => (await busyUpstreams(m.client.admin)) === 0, 20_000);
    assert.equal(await ok(), 200);
  });

  test('a body that stops midway: 408 naming the client at the stream idle timeout', async () => {
    const session = http2.connect(`http://127.0.0.1:${m.outbound}`);
    try {
      const t0 = performance.now();
      const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const s = session.request({ ':method': 'POST', ':path': '/', ':authority': 'app', 'content-length': '1000' });
        let status = 0;
        let body = '';
        s.on('response', (h) => (status = Number(h[':status'])));
        s.on('data', (d) => (body += d));
        s.on('close', () => resolve({ status, body }));
        s.on('error', reject);
        s.write(Buffer.alloc(100, 'x'));
      });
      const ms = performance.now() - t0;
      console.log(`# HTTP/2 body that stops midway: ${r.status} after ${ms.toFixed(0)} ms (stream idle timeout 1 s)`);
      assert.equal(r.status, 408);
      assert.match(r.body, /waiting for the rest of the request body from the client/);
      assert.ok(ms < 10_000);
    } finally {
      session.destroy();
    }
    await waitFor('no upstream connection left busy', async () => (await busyUpstreams(m.client.admin)) === 0 && (await busyUpstreams(m.server.admin)) === 0);
  });
});
