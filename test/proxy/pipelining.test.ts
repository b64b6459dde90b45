// HTTP/1.1 framing edge cases through two sidecars: responses whose length is implied by the
// request (HEAD), interim responses (103), and bodies delimited by the upstream closing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { request } from 'undici';
import { freePort } from '../../src/util/net.ts';
import { waitFor } from '../helpers.ts';
import { type Mesh, type SidecarProc, busyUpstreams, listen, raw, spawnSidecar, startMesh, stopProc } from './mesh.ts';

/** Sends bytes on one connection and resolves once `done(data)` says the answer is complete. */
function exchange(port: number, bytes: string, done: (data: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    let data = '';
    s.on('data', (d) => {
      data += d.toString('latin1');
      if (done(data)) {
        s.destroy();
        resolve(data);
      }
    });
    s.on('error', reject);
    s.on('close', () => reject(new Error(`closed before the answer was complete: ${JSON.stringify(data)}`)));
  });
}

describe('HTTP/1.1 pipelining and framing through two sidecars', () => {
  let m: Mesh;
  let closer: SidecarProc;
  let upstream: net.Server;
  const upSockets: net.Socket[] = [];
  before(async () => {
    m = await startMesh((req, res) => {
      if (req.url === '/hints') {
        res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '11' });
        res.end('after hints');
        return;
      }
      const body = `body of ${req.url}`;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    // An upstream that answers HTTP/1.0 style: no length, the body ends when it closes.
    upstream = net.createServer((s) => {
      upSockets.push(s);
      s.on('error', () => {});
      s.once('data', () => s.end('HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the close'));
    });
    const upPort = await listen(upstream);
    closer = await spawnSidecar(m.cp, ['--workload', 'closer-1', '--service', 'closer', '--inbound-port', String(await freePort()), '--app-port', String(upPort)]);
    await waitFor('the client sidecar to route to closer', async () => {
      const r = await request(`http://127.0.0.1:${m.outbound}/`, { headers: { host: 'closer' } }).catch(() => undefined);
      return r !== undefined && r.statusCode === 200 && (await r.body.text()) === 'until the close';
    });
  });
  after(async () => {
    await stopProc(closer?.proc);
    for (const s of upSockets) s.destroy();
    upstream?.close();
    await m?.close();
  });

  test("a HEAD then a GET on one connection: the HEAD's Content-Length has no body, and the GET's response is not eaten", async () => {
    for (const port of [m.outbound, m.inbound]) {
      const data = await exchange(port, 'HEAD /first HTTP/1.1\r\nHost: app\r\n\r\nGET /second HTTP/1.1\r\nHost: app\r\n\r\n', (d) => d.includes('body of /second'));
      const second = data.indexOf('HTTP/1.1 200', 1);
      assert.ok(data.startsWith('HTTP/1.1 200 ') && second > 0, data);
      const head = data.slice(0, second);
      assert.match(head, /content-length: 14\r\n/i, 'the HEAD answer keeps the length a GET of /first would have');
      assert.ok(head.endsWith('\r\n\r\n'), `nothing after the HEAD answer's head: ${JSON.stringify(head)}`);
      assert.match(data.slice(second), /content-length: 15\r\n(?:[^\r]*\r\n)*\r\nbody of \/second$/i);
    }
    await waitFor('no upstream connection left busy', async () => (await busyUpstreams(m.client.admin)) === 0 && (await busyUpstreams(m.server.admin)) === 0);
  });

  test('103 Early Hints from the upstream, then 200: the final response and the next one on the connection are intact', async () => {
    const data = await exchange(m.outbound, 'GET /hints HTTP/1.1\r\nHost: app\r\n\r\nGET /next HTTP/1.1\r\nHost: app\r\n\r\n', (d) => d.includes('body of /next'));
    const finals = data.match(/HTTP\/1\.1 200 /g) ?? [];
    assert.equal(finals.length, 2, data);
    assert.match(data, /\r\n\r\nafter hintsHTTP\/1\.1 200 /, 'the 200 after the hints carries its own body, and the next answer follows it');
    assert.ok(!/HTTP\/1\.1 103[\s\S]*HTTP\/1\.1 103/.test(data), data);
    const r = await request(`http://127.0.0.1:${m.outbound}/hints`, { headers: { host: 'app' } });
    assert.equal(r.statusCode, 200);
    assert.equal(await r.body.text(), 'after hints');
    await waitFor('no upstream connection left busy', async () => (await busyUpstreams(m.client.admin)) === 0 && (await busyUpstreams(m.server.admin)) === 0);
  });

  test('a body delimited by the upstream closing reaches an HTTP/1.1 client chunked, on a connection that stays usable', async () => {
    const data = await exchange(m.outbound, 'GET /a HTTP/1.1\r\nHost: closer\r\n\r\nGET /b HTTP/1.1\r\nHost: closer\r\n\r\n', (d) => (d.match(/0\r\n\r\n/g) ?? []).length === 2);
    const answers = data.split(/(?=HTTP\/1\.1 )/);
    assert.equal(answers.length, 2, data);
    for (const a of answers) {
      assert.match(a, /^HTTP\/1\.1 200 /);
      assert.match(a, /transfer-encoding: chunked\r\n/i);
      assert.doesNotMatch(a, /connection: close/i);
      assert.match(a, /\r\n\r\nf\r\nuntil the close\r\n0\r\n\r\n$/);
    }
  });

  test('a body delimited by the upstream closing reaches an HTTP/1.0 client delimited by the close', async () => {
    const r = await raw(m.outbound, 'GET /c HTTP/1.0\r\nHost: closer\r\n\r\n');
    assert.ok(r.closed);
    assert.match(r.data, /^HTTP\/1\.1 200 /);
    assert.doesNotMatch(r.data, /transfer-encoding/i);
    assert.doesNotMatch(r.data, /content-length/i);
    assert.match(r.data, /connection: close\r\n/i);
    assert.ok(r.data.endsWith('\r\n\r\nuntil the close'), JSON.stringify(r.data));
    await waitFor('no upstream connection left busy', async () => (await busyUpstreams(m.client.admin)) === 0 && (await busyUpstreams(closer.admin)) === 0);
  });
});
