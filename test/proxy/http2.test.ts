// HTTP/2 through the sidecar: h2c with prior knowledge downstream, HTTP/2 upstream where the
// cluster declares it, and the two mixed with HTTP/1.1 either way. Real sidecar processes, a real
// control plane (in process), real clients (node:http2, undici, h2load), loopback only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import type { ControlPlane } from '../../src/control/control-plane.ts';
import { freePort } from '../../src/util/net.ts';
import { checkResource } from '../../src/api/index.ts';
import { assertShare, waitFor } from '../helpers.ts';
import { type SidecarProc, controlPlaneWithH2, startSidecarProc } from './h2util.ts';

interface Seen {
  version: string;
  headers: http.IncomingHttpHeaders;
}

async function listen(s: http.Server | http2.Http2Server): Promise<number> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return (s.address() as AddressInfo).port;
}

/** One HTTP/2 request on `session`: status, headers, body and trailers. */
function h2get(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string) {
  return new Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string; trailers: http2.IncomingHttpHeaders }>((resolve, reject) => {
    const s = session.request({ ':method': body === undefined ? 'GET' : 'POST', ...headers }, { endStream: body === undefined });
    let status = 0;
    let h: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    let b = '';
    s.on('response', (x) => {
      h = x;
      status = Number(x[':status']);
    });
    s.on('trailers', (t) => (trailers = t));
    s.on('data', (d) => (b += d));
    s.on('end', () => resolve({ status, headers: h, body: b, trailers }));
    s.on('error', reject);
    if (body !== undefined) s.end(body);
  });
}

function h2load(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('h2load', args, { timeout: 40_000 }, (err, stdout, stderr) => (err ? reject(new Error(`h2load failed: ${err.message}\n${stdout}\n${stderr}`)) : resolve(stdout)));
  });
}

describe('HTTP/2 through the sidecar (real sidecar processes)', () => {
  let cp: ControlPlane;
  let outbound: number;
  const sidecars: SidecarProc[] = [];
  const servers: (http.Server | http2.Http2Server)[] = [];
  const seen: Seen[] = [];
  const hits = { v1: 0, v2: 0 };

  before(async () => {
    cp = await controlPlaneWithH2(/h2app|split/);
    // The HTTP/2 app, behind its own sidecar: echoes what it saw and answers with a trailer.
    const app = http2.createServer((req, res) => {
      seen.push({ version: req.httpVersion, headers: req.headers });
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        res.setHeader('x-app', 'h2app');
        res.addTrailers({ 'x-checksum': `len=${body.length}` });
        res.end(`h2app ${req.method} ${req.url} ${body}`);
      });
    });
    servers.push(app);
    const appPort = await listen(app);
    const inbound = await freePort();
    sidecars.push(await startSidecarProc(cp, ['--workload', 'h2app-1', '--service', 'h2app', '--inbound-port', String(inbound), '--app-port', String(appPort)]));
    // An HTTP/1.1 app, registered directly: an HTTP/2 client reaches it over HTTP/1.1.
    const plain = http.createServer((req, res) => {
      seen.push({ version: req.httpVersion, headers: req.headers });
      res.end(`plain ${req.url}`);
    });
    servers.push(plain);
    const plainPort = await listen(plain);
    cp.registry.register({ proxyId: 'plain-1', name: 'plain-1', namespace: 'default', service: 'plain', servicePort: 80, labels: {}, address: '127.0.0.1', inboundPort: plainPort, appPort: plainPort, healthy: true });
    // Two HTTP/2 versions of one service, split 80/20.
    for (const v of ['v1', 'v2'] as const) {
      const s = http2.createServer((_req, res) => {
        hits[v]++;
        res.end(v);
      });
      servers.push(s);
      const port = await listen(s);
      cp.registry.register({ proxyId: `split-${v}`, name: `split-${v}`, namespace: 'default', service: 'split', servicePort: 80, labels: { version: v }, address: '127.0.0.1', inboundPort: port, appPort: port, healthy: true });
    }
    cp.store.apply([
      checkResource({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'split' }, spec: { host: 'split', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] } }, 'test'),
      checkResource({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'split' }, spec: { hosts: ['split'], http: [{ route: [{ destination: { host: 'split', subset: 'v1' }, weight: 80 }, { destination: { host: 'split', subset: 'v2' }, weight: 20 }] }] } }, 'test'),
    ]);
    outbound = await freePort();
    sidecars.push(await startSidecarProc(cp, ['--workload', 'client', '--outbound-port', String(outbound)]));
  });
  after(async () => {
    await Promise.all(sidecars.map((s) => s.stop()));
    for (const s of servers) s.close();
    await cp?.close();
  });

  test('h2c prior knowledge through two sidecars to an HTTP/2 app: body, headers and trailers', async () => {
    const session = http2.connect(`http://127.0.0.1:${outbound}`);
    try {
      const r = await waitFor('the h2app route', async () => {
        const x = await h2get(session, { ':path': '/hi?x=1', ':authority': 'h2app', 'x-req': 'yes' }, 'abc');
        return x.status === 200 && x;
      });
      assert.equal(r.body, 'h2app POST /hi?x=1 abc');
      assert.equal(r.headers['x-app'], 'h2app');
      assert.equal(r.trailers['x-checksum'], 'len=3');
      const s = seen.at(-1)!;
      assert.equal(s.version, '2.0');
      assert.equal(s.headers['x-req'], 'yes');
    } finally {
      session.close();
    }
  });

  test('HTTP/2 client to an HTTP/1.1 app, and HTTP/1.1 client to an HTTP/2 app', async () => {
    const session = http2.connect(`http://127.0.0.1:${outbound}`);
    try {
      const r = await h2get(session, { ':path': '/p', ':authority': 'plain', te: 'trailers', cookie: ['a=1', 'b=2'] as unknown as string });
      assert.equal(r.status, 200, r.body);
      assert.equal(r.body, 'plain /p');
      const s = seen.at(-1)!;
      assert.equal(s.version, '1.1');
      assert.equal(s.headers.te, undefined);
      assert.equal(s.headers.cookie, 'a=1; b=2');
    } finally {
      session.close();
    }
    const r = await request(`http://127.0.0.1:${outbound}/from-h1`, { headers: { host: 'h2app' } });
    assert.equal(r.statusCode, 200);
    assert.equal(await r.body.text(), 'h2app GET /from-h1 ');
    assert.equal(seen.at(-1)!.version, '2.0');
  });

  test('a connection preface that arrives in pieces is still HTTP/2', async () => {
    // The client's first write is cut in two: 5 bytes, then the rest once those are on the wire.
    const sock = net.connect(outbound, '127.0.0.1');
    let first = true;
    const wrapped = new Duplex({
      write(chunk: Buffer, _enc, cb) {
        if (sock.destroyed) return cb();
        if (!first) return sock.write(chunk, cb);
        first = false;
        sock.write(chunk.subarray(0, 5), () => sock.write(chunk.subarray(5), cb));
      },
      read() {
        sock.resume();
      },
      final(cb) {
        sock.end(cb);
      },
    });
    sock.on('data', (d) => {
      if (!wrapped.push(d)) sock.pause();
    });
    sock.on('end', () => wrapped.push(null));
    sock.on('error', (e) => wrapped.destroy(e));
    const session = http2.connect(`http://127.0.0.1:${outbound}`, { createConnection: () => wrapped as unknown as net.Socket });
    try {
      const r = await h2get(session, { ':path': '/split', ':authority': 'h2app' });
      assert.equal(r.status, 200);
      assert.equal(r.body, 'h2app GET /split ');
    } finally {
      await new Promise<void>((resolve) => session.close(() => resolve()));
      sock.destroy();
    }
  });

  test('an HTTP/2 request for a host the mesh does not know passes through; nothing there: 503 naming it', async () => {
    const closed = await freePort();
    const session = http2.connect(`http://127.0.0.1:${outbound}`);
    try {
      const r = await h2get(session, { ':path': '/', ':authority': `127.0.0.1:${closed}` });
      assert.equal(r.status, 503);
      assert.equal(r.headers['x-weft-error'], 'connect_refused');
      assert.match(r.body, new RegExp(`127\\.0\\.0\\.1:${closed} in cluster PassthroughCluster`));
    } finally {
      session.close();
    }
  });

  test('h2load through two sidecars', async (t) => {
    const out = await h2load(['-n', '3000', '-c', '2', '-m', '10', '-H', ':authority: h2app', `http://127.0.0.1:${outbound}/load`]);
    const done = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(out);
    assert.ok(done, out);
    assert.equal(Number(done[4]), 3000, out);
    assert.match(out, /status codes: 3000 2xx/, out);
    const rps = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1];
    const lat = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)/.exec(out);
    t.diagnostic(`h2load -n 3000 -c 2 -m 10 through two sidecars: ${rps} req/s; request time min ${lat?.[1]} max ${lat?.[2]} mean ${lat?.[3]} sd ${lat?.[4]}`);
  });

  test('an 80/20 split over 2,000 requests on one HTTP/2 connection is a fair draw at 80% (within five binomial deviations)', async (t) => {
    await waitFor('the split route', async () => {
      const session = http2.connect(`http://127.0.0.1:${outbound}`);
      try {
        return (await h2get(session, { ':path': '/', ':authority': 'split' })).status === 200;
      } finally {
        session.close();
      }
    });
    hits.v1 = 0;
    hits.v2 = 0;
    const out = await h2load(['-n', '2000', '-c', '1', '-m', '10', '-H', ':authority: split', `http://127.0.0.1:${outbound}/`]);
    assert.match(out, /status codes: 2000 2xx/, out);
    assert.equal(hits.v1 + hits.v2, 2000);
    const pct = (hits.v1 / 2000) * 100;
    t.diagnostic(`80/20 split over 2000 requests on one connection: v1 ${pct.toFixed(1)}%, v2 ${(100 - pct).toFixed(1)}%`);
    assertShare(hits.v1, 2000, 0.8, 'requests to v1');
  });
});
