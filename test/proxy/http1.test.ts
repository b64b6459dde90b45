// HTTP/1.1 through two real sidecars (client outbound -> server inbound -> app), correct under
// every input: each case here is a failure a user met on the old request path (issue "the data
// plane core"), or a rule of HTTP/1.1 a proxy must keep.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { Client, request } from 'undici';
import { checkResource } from '../../src/api/index.ts';
import { waitFor } from '../helpers.ts';
import { type Mesh, busyUpstreams, raw, startMesh } from './mesh.ts';

function appHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = req.url ?? '/';
  if (url.startsWith('/early')) {
    // Answers without reading the body, as apps do with 401 and 413.
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not here');
    return;
  }
  if (url.startsWith('/trailers')) {
    res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
    res.write('part one,');
    res.addTrailers({ 'x-checksum': 'abc123' });
    res.end('part two');
    return;
  }
  if (url.startsWith('/nocontent')) {
    res.writeHead(204);
    res.end();
    return;
  }
  if (url.startsWith('/close')) {
    res.writeHead(200, { connection: 'close', 'content-type': 'text/plain' });
    res.end('bye');
    return;
  }
  let n = 0;
  req.on('data', (d: Buffer) => (n += d.length));
  req.on('end', () => {
    const body = JSON.stringify({ method: req.method, url, host: req.headers.host, bytes: n, headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}

describe('HTTP/1.1 through two sidecars', () => {
  let m: Mesh;
  before(async () => {
    m = await startMesh(appHandler);
    m.app.on('upgrade', (req, socket: net.Socket, head) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n');
      if (head.length) socket.write(head);
      socket.pipe(socket);
    });
  });
  after(async () => {
    await m?.close();
  });

  const get = async (path: string, headers: Record<string, string> = {}) => {
    const r = await request(`http://127.0.0.1:${m.outbound}${path}`, { headers: { host: 'app', ...headers } });
    return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
  };

  test('an early answer to a 1 MB POST does not hang the next request on the same client connection', async () => {
    const big = Buffer.alloc(1024 * 1024, 'x');
    for (const [what, port] of [
      ["the client's outbound sidecar", m.outbound],
      ["the server's inbound sidecar", m.inbound],
    ] as const) {
      const client = new Client(`http://127.0.0.1:${port}`, { pipelining: 1 });
      try {
        const times: number[] = [];
        for (let i = 0; i < 20; i++) {
          const post = await client.request({ path: '/early', method: 'POST', headers: { host: 'app' }, body: big });
          assert.equal(post.statusCode, 404, `${what}: round ${i}`);
          await post.body.dump();
          const t0 = performance.now();
          const r = await client.request({ path: '/echo', method: 'GET', headers: { host: 'app' }, headersTimeout: 10_000 });
          assert.equal(r.statusCode, 200, `${what}: the GET after the early answer, round ${i}`);
          await r.body.dump();
          times.push(performance.now() - t0);
        }
        console.log(`# ${what}: 20 of 20 GETs after an early 404 answered; slowest ${Math.max(...times).toFixed(1)} ms`);
      } finally {
        await client.close();
      }
    }
    await waitFor('no upstream connection left busy', async () => (await busyUpstreams(m.client.admin)) === 0 && (await busyUpstreams(m.server.admin)) === 0);
  });

  test('headers up to 60 KiB pass; larger ones get 431 naming the size and the limit', async () => {
    const ok = await get('/echo', { 'x-big': 'a'.repeat(20 * 1024) });
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.body).headers['x-big'].length, 20 * 1024);
    const r = await raw(m.outbound, `GET /echo HTTP/1.1\r\nHost: app\r\nx-big: ${'a'.repeat(70 * 1024)}\r\n\r\n`);
    assert.match(r.data, /^HTTP\/1\.1 431 /);
    assert.match(r.data, /request headers too large \(\d+ KiB so far; the limit is 60 KiB\)/);
    const many = Array.from({ length: 120 }, (_, i) => `x-h${i}: v\r\n`).join('');
    const r2 = await raw(m.outbound, `GET /echo HTTP/1.1\r\nHost: app\r\n${many}\r\n`);
    assert.match(r2.data, /^HTTP\/1\.1 431 /);
    assert.match(r2.data, /more than 100 header fields/);
  });

  test('origin-form and absolute-form requests are routed and forwarded on one canonical path', async () => {
    const cases: [string, string][] = [
      ['/public/../admin', '/admin'],
      ['/a/./b/../c', '/a/c'],
      ['/a/%2e%2e/b', '/b'],
      ['/%7Euser/x', '/~user/x'],
      ['/keep%2fslash', '/keep%2Fslash'],
      ['/q/../r?x=../y', '/r?x=../y'],
    ];
    for (const [sent, want] of cases) {
      const origin = await raw(m.outbound, `GET ${sent} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n`);
      assert.equal(JSON.parse(origin.data.slice(origin.data.indexOf('\r\n\r\n') + 4)).url, want, `origin-form ${sent}`);
      const absolute = await raw(m.outbound, `GET http://app${sent} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n`);
      assert.equal(JSON.parse(absolute.data.slice(absolute.data.indexOf('\r\n\r\n') + 4)).url, want, `absolute-form ${sent}`);
    }
    const bad = await raw(m.outbound, 'GET /a%zz HTTP/1.1\r\nHost: app\r\n\r\n');
    assert.match(bad.data, /^HTTP\/1\.1 400 /);
  });

  test('a request line without a version, a duplicate Host and a bad Host are refused with 400', async () => {
    const v09 = await raw(m.outbound, 'GET /echo\r\n\r\n');
    assert.match(v09.data, /^HTTP\/1\.1 400 /);
    assert.match(v09.data, /no HTTP\/1\.x version/);
    const dup = await raw(m.outbound, 'GET /echo HTTP/1.1\r\nHost: app\r\nHost: other\r\n\r\n');
    assert.match(dup.data, /^HTTP\/1\.1 400 /);
    assert.match(dup.data, /more than one Host header/);
    const badHost = await raw(m.inbound, 'GET /echo HTTP/1.1\r\nHost: [::1\r\n\r\n');
    assert.match(badHost.data, /^HTTP\/1\.1 400 /);
    assert.match(badHost.data, /Host "\[::1" is not a valid host/);
  });

  test('a valid pipelined request keeps its response when a malformed one follows it', async () => {
    const r = await raw(m.outbound, 'GET /echo HTTP/1.1\r\nHost: app\r\n\r\nGET /echo HTTP/1.1\r\nHost: app\r\nBad Header: x\r\n\r\n');
    const first = r.data.indexOf('HTTP/1.1 200 ');
    const second = r.data.indexOf('HTTP/1.1 400 ');
    assert.ok(first === 0 && second > first, r.data.slice(0, 500));
    assert.ok(r.closed);
  });

  test('Expect: 100-continue, 300 times (more than a pool holds), never poisons a pool', async () => {
    for (const port of [m.outbound, m.inbound]) {
      for (let i = 0; i < 300; i++) {
        const answer = await new Promise<string>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1', () => s.write('POST /echo HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n'));
          let got = '';
          s.on('data', (d) => {
            got += d;
            if (got.startsWith('HTTP/1.1 100 Continue\r\n\r\n') && got.length === 25) s.write('hello');
          });
          s.on('close', () => resolve(got));
          s.on('error', reject);
        });
        assert.match(answer, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /, `round ${i}`);
        assert.match(answer, /"bytes":5/);
      }
    }
    assert.equal((await get('/echo')).status, 200);
    await waitFor('no upstream connection left busy', async () => (await busyUpstreams(m.client.admin)) === 0 && (await busyUpstreams(m.server.admin)) === 0);
  });

  test('300 malformed Host values at an inbound port leave its pool serving', async () => {
    for (let i = 0; i < 300; i++) {
      const r = await raw(m.inbound, 'GET / HTTP/1.1\r\nHost: [::1\r\n\r\n');
      assert.match(r.data, /^HTTP\/1\.1 400 /);
    }
    assert.equal((await get('/echo')).status, 200);
  });

  test('HEAD, 204, trailers and Connection: close from either side', async () => {
    const head = await request(`http://127.0.0.1:${m.outbound}/echo`, { method: 'HEAD', headers: { host: 'app' } });
    assert.equal(head.statusCode, 200);
    assert.ok(Number(head.headers['content-length']) > 0);
    assert.equal(await head.body.text(), '');
    const nc = await get('/nocontent');
    assert.equal(nc.status, 204);
    const tr = await request(`http://127.0.0.1:${m.outbound}/trailers`, { headers: { host: 'app' } });
    assert.equal(await tr.body.text(), 'part one,part two');
    assert.equal(tr.trailers['x-checksum'], 'abc123');
    const downClose = await raw(m.outbound, 'GET /echo HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n');
    assert.match(downClose.data, /connection: close/);
    assert.ok(downClose.closed);
    for (let i = 0; i < 5; i++) assert.equal((await get('/close')).status, 200);
  });

  test('2,000 pipelined requests on one connection, then a close: every later request is served', async () => {
    const burst = 'GET /echo HTTP/1.1\r\nHost: app\r\n\r\n'.repeat(2000);
    await new Promise<void>((resolve) => {
      const s = net.connect(m.outbound, '127.0.0.1', () => s.end(burst));
      s.on('close', () => resolve());
      s.on('error', () => {});
      s.resume();
    });
    const ok = await Promise.all(Array.from({ length: 20 }, () => get('/echo').then((r) => r.status)));
    assert.deepEqual(ok, Array(20).fill(200));
    await waitFor('no upstream connection left busy', async () => (await busyUpstreams(m.client.admin)) === 0);
  });

  test('an Upgrade (WebSocket-style) passes through both sidecars and carries bytes both ways', async () => {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: m.outbound, path: '/ws', headers: { host: 'app', connection: 'upgrade', upgrade: 'echo' } });
      req.on('upgrade', (res, s) => {
        assert.equal(res.statusCode, 101);
        resolve(s);
      });
      req.on('response', (res) => reject(new Error(`expected 101, got ${res.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
    const payload = Buffer.alloc(256 * 1024, 7);
    const echoed = await new Promise<number>((resolve) => {
      let n = 0;
      socket.on('data', (d: Buffer) => {
        n += d.length;
        if (n >= payload.length) resolve(n);
      });
      socket.write(payload);
    });
    assert.equal(echoed, payload.length);
    socket.destroy();
  });

  test('curl, a real client: keep-alive reuse, a body of 2 MB with Expect, and absolute-form via -x', async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const p: ChildProcess = spawn('curl', ['-sS', ...args]);
        let out = '';
        let err = '';
        p.stdout!.on('data', (d) => (out += d));
        p.stderr!.on('data', (d) => (err += d));
        p.on('close', (code) => resolve({ code, out, err }));
      });
    const file = `/tmp/weft-curl-body-${process.pid}`;
    await import('node:fs').then((fs) => fs.writeFileSync(file, Buffer.alloc(2 * 1024 * 1024, 'y')));
    const up = await run(['-x', `http://127.0.0.1:${m.outbound}`, '--data-binary', `@${file}`, 'http://app/echo']);
    assert.equal(up.code, 0, up.err);
    assert.equal(JSON.parse(up.out).bytes, 2 * 1024 * 1024);
    const two = await run(['-v', '-x', `http://127.0.0.1:${m.outbound}`, 'http://app/echo', 'http://app/echo']);
    assert.equal(two.code, 0, two.err);
    assert.match(two.err, /Re-using existing connection/);
  });
});

describe('HTTP/1.1 route timeout', () => {
  let m: Mesh;
  let stuck: ChildProcess | undefined;
  before(async () => {
    m = await startMesh(appHandler);
  });
  after(async () => {
    stuck?.kill('SIGKILL');
    await m?.close();
  });

  test('a route timeout bounds a request whose upstream never accepts the connection', async () => {
    // A listening socket whose accept queue is full: connects to it hang in SYN-SENT.
    stuck = spawn('python3', ['-c', 'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(600)'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise<number>((resolve) => stuck!.stdout!.once('data', (d) => resolve(Number(String(d).trim()))));
    const fill: net.Socket[] = [];
    for (let i = 0; i < 4; i++) fill.push(net.connect(port, '127.0.0.1').on('error', () => {}));
    m.cp.registry.register({ proxyId: 'full-1', name: 'full-1', namespace: 'default', service: 'full', servicePort: 80, labels: {}, address: '127.0.0.1', inboundPort: port, appPort: port, healthy: true });
    m.cp.store.apply([checkResource({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'full' }, spec: { hosts: ['full'], http: [{ timeout: '300ms', route: [{ destination: { host: 'full' } }] }] } }, 'test')]);
    const r = await waitFor('a 504 from the timeout', async () => {
      const t0 = performance.now();
      const x = await request(`http://127.0.0.1:${m.outbound}/`, { headers: { host: 'full' } });
      const body = await x.body.text();
      return x.statusCode === 504 && { ms: performance.now() - t0, body, code: x.headers['x-weft-error'] };
    });
    console.log(`# 504 after ${r.ms.toFixed(0)} ms with a 300 ms route timeout`);
    assert.equal(r.code, 'upstream_timeout');
    assert.ok(r.ms < 3000, `the 504 took ${r.ms} ms`);
    for (const s of fill) s.destroy();
  });
});
