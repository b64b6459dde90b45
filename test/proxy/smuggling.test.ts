// Request smuggling through two real sidecars (client outbound -> server inbound -> app). Every
// pattern below is one where two HTTP/1.1 parsers have disagreed, somewhere, on where a message
// ends. llhttp decides every boundary in the sidecar, strictly: each pattern is refused before it
// is routed (400 naming what is wrong, or a close), nothing of it reaches the app, no upstream
// connection is left busy, and the next client is served. The response direction too: an upstream
// that frames its answer ambiguously gets a 502, and its connection is not reused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import net from 'node:net';
import { request } from 'undici';
import { waitFor } from '../helpers.ts';
import { type Mesh, type SidecarProc, busyUpstreams, listen, raw, spawnSidecar, startMesh, stopProc } from './mesh.ts';
import { freePort } from '../../src/util/net.ts';

interface Pattern {
  name: string;
  /** The raw request; "SMUGGLED" in it marks a request the app must never see. */
  bytes: string;
  /** What the 400 must say (the parser's error code or the sidecar's words). */
  says: RegExp;
}

const H = 'Host: app\r\n';
const SMUGGLED = 'GET /SMUGGLED HTTP/1.1\r\nHost: app\r\n\r\n';

// Patterns refused at the request head: the app sees nothing at all, not even a request line.
const HEAD_PATTERNS: Pattern[] = [
  { name: 'Content-Length and Transfer-Encoding together (CL.TE / TE.CL)', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`, says: /HPE_UNEXPECTED_CONTENT_LENGTH|HPE_INVALID_TRANSFER_ENCODING/ },
  { name: 'Transfer-Encoding before Content-Length', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\n${SMUGGLED}`, says: /HPE_INVALID_CONTENT_LENGTH|HPE_UNEXPECTED_CONTENT_LENGTH|HPE_INVALID_TRANSFER_ENCODING/ },
  { name: 'duplicate Content-Length, same value', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello`, says: /HPE_UNEXPECTED_CONTENT_LENGTH/ },
  { name: 'duplicate Content-Length, different values', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 40\r\n\r\nhello${SMUGGLED}`, says: /HPE_UNEXPECTED_CONTENT_LENGTH/ },
  { name: 'Content-Length as a list', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 5, 40\r\n\r\nhello${SMUGGLED}`, says: /HPE_INVALID_CONTENT_LENGTH|HPE_UNEXPECTED_CONTENT_LENGTH/ },
  { name: 'Content-Length with a sign', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello`, says: /HPE_INVALID_CONTENT_LENGTH/ },
  { name: 'Transfer-Encoding: gzip (chunked not last)', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\n0\r\n\r\n${SMUGGLED}`, says: /HPE_INVALID_TRANSFER_ENCODING/ },
  { name: 'Transfer-Encoding: chunked, identity', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${SMUGGLED}`, says: /HPE_INVALID_TRANSFER_ENCODING/ },
  { name: 'Transfer-Encoding: xchunked', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${SMUGGLED}`, says: /HPE_INVALID_TRANSFER_ENCODING/ },
  { name: 'two Transfer-Encoding fields, chunked first', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n${SMUGGLED}`, says: /HPE_INVALID_TRANSFER_ENCODING/ },
  { name: 'obsolete line folding of Transfer-Encoding', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding:\r\n chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\n${SMUGGLED}`, says: /HPE_/ },
  { name: 'obsolete line folding of another field', bytes: `GET / HTTP/1.1\r\n${H}X-Folded: a\r\n b\r\n\r\n`, says: /HPE_/ },
  { name: 'whitespace before the colon', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\n${SMUGGLED}`, says: /HPE_INVALID_HEADER_TOKEN/ },
  { name: 'NUL in a header value', bytes: `GET / HTTP/1.1\r\n${H}X-Nul: a\0b\r\n\r\n`, says: /HPE_INVALID_HEADER_TOKEN/ },
  { name: 'bare CR in a header value', bytes: `GET / HTTP/1.1\r\n${H}X-Cr: a\rb\r\n\r\n`, says: /HPE_/ },
  { name: 'bare LF ending a header line', bytes: `GET / HTTP/1.1\r\n${H}X-Lf: a\nX-Other: b\r\n\r\n`, says: /HPE_/ },
  { name: 'bare LF hiding Transfer-Encoding', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 6\r\nX: a\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`, says: /HPE_/ },
  { name: 'request line with a tab', bytes: `GET\t/ HTTP/1.1\r\n${H}\r\n`, says: /HPE_/ },
  { name: 'request line with a space in the target', bytes: `GET /a b HTTP/1.1\r\n${H}\r\n`, says: /HPE_/ },
  { name: 'request line with trailing space', bytes: `GET / HTTP/1.1 \r\n${H}\r\n`, says: /HPE_/ },
  { name: 'absolute-form with userinfo', bytes: `GET http://evil@app/ HTTP/1.1\r\n${H}\r\n`, says: /Host "evil@app" is not a valid host/ },
  { name: 'absolute-form with a non-http scheme', bytes: `GET https://app/ HTTP/1.1\r\n${H}\r\n`, says: /https:\/\/ URLs are not supported/ },
  { name: 'absolute-form with a made-up scheme', bytes: `GET gopher://app/ HTTP/1.1\r\n${H}\r\n`, says: /gopher:\/\/ URLs are not supported/ },
];

// Patterns in a chunked body: the head is fine, so it may already be on its way upstream when the
// body breaks; the exchange is then cut on every hop, so the app never sees a complete request,
// nor the one smuggled after it.
const BODY_PATTERNS: Pattern[] = [
  { name: 'non-hex chunk size', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n${SMUGGLED}`, says: /HPE_INVALID_CHUNK_SIZE/ },
  { name: 'negative chunk size', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n${SMUGGLED}`, says: /HPE_INVALID_CHUNK_SIZE/ },
  { name: 'chunk size with a 0x prefix', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n${SMUGGLED}`, says: /HPE_/ },
  { name: 'chunk size overflowing 64 bits', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1${'0'.repeat(16)}\r\nhello\r\n0\r\n\r\n${SMUGGLED}`, says: /HPE_INVALID_CHUNK_SIZE/ },
  { name: 'huge chunk size that wraps to 5 in 64 bits', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1000000000000000${'0'.repeat(0)}5\r\nhello\r\n0\r\n\r\n${SMUGGLED}`, says: /HPE_INVALID_CHUNK_SIZE/ },
  { name: 'chunk size with a space before CRLF', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n${SMUGGLED}`, says: /HPE_/ },
  { name: 'chunk extension with a NUL', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5;a\0b\r\nhello\r\n0\r\n\r\n${SMUGGLED}`, says: /HPE_/ },
  { name: 'chunk extension with a bare LF', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n${SMUGGLED}`, says: /HPE_/ },
  { name: 'chunk extension with a quote left open', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5;a="b\r\nhello\r\n0\r\n\r\n${SMUGGLED}`, says: /HPE_/ },
  { name: 'chunk data longer than its size', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n${SMUGGLED}`, says: /HPE_/ },
  { name: 'chunk with a bare LF after its data', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n${SMUGGLED}`, says: /HPE_/ },
];

describe('request smuggling through two sidecars', () => {
  let m: Mesh;
  const seen: { heads: string[]; complete: string[] } = { heads: [], complete: [] };
  const bodyBytes: string[] = [];
  before(async () => {
    m = await startMesh((req, res) => {
      seen.heads.push(`${req.method} ${req.url}`);
      req.on('data', (d: Buffer) => bodyBytes.push(d.toString('latin1')));
      req.on('end', () => {
        seen.complete.push(`${req.method} ${req.url}`);
        res.end('ok');
      });
    });
  });
  after(async () => {
    await m?.close();
  });

  const good = async () => {
    const r = await request(`http://127.0.0.1:${m.outbound}/good`, { headers: { host: 'app' } });
    return { status: r.statusCode, body: await r.body.text() };
  };

  for (const [port, where] of [
    ['outbound', "the client's outbound sidecar"],
    ['inbound', "the server's inbound sidecar"],
  ] as const) {
    for (const p of HEAD_PATTERNS) {
      test(`${p.name}, at ${where}: 400, nothing reaches the app`, async () => {
        seen.heads.length = 0;
        seen.complete.length = 0;
        const r = await raw(m[port], p.bytes);
        assert.ok(r.closed, 'the connection is closed');
        if (r.data) {
          assert.match(r.data, /^HTTP\/1\.1 400 /);
          assert.match(r.data, p.says);
        }
        assert.deepEqual(await good(), { status: 200, body: 'ok' });
        assert.deepEqual(seen.heads, ['GET /good'], 'only the good request reached the app');
        await waitFor('no upstream connection left busy', async () => (await busyUpstreams(m.client.admin)) === 0 && (await busyUpstreams(m.server.admin)) === 0);
      });
    }
    for (const p of BODY_PATTERNS) {
      test(`${p.name}, at ${where}: 400, no complete request reaches the app`, async () => {
        seen.heads.length = 0;
        seen.complete.length = 0;
        const r = await raw(m[port], p.bytes);
        assert.ok(r.closed, 'the connection is closed');
        if (r.data) {
          assert.match(r.data, /^HTTP\/1\.1 400 /);
          assert.match(r.data, p.says);
        }
        await waitFor('no upstream connection left busy', async () => (await busyUpstreams(m.client.admin)) === 0 && (await busyUpstreams(m.server.admin)) === 0);
        assert.deepEqual(await good(), { status: 200, body: 'ok' });
        assert.deepEqual(seen.complete, ['GET /good'], 'only the good request reached the app whole');
        assert.ok(!seen.heads.some((h) => h.includes('SMUGGLED')), 'the smuggled request never reached the app');
      });
    }
  }

  test('runs of spaces around the target (llhttp tolerates them) reach the app as one canonical request line', async () => {
    seen.heads.length = 0;
    const r = await raw(m.outbound, `GET   /spaced  HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    assert.match(r.data, /^HTTP\/1\.1 200 /);
    assert.deepEqual(seen.heads, ['GET /spaced']);
  });

  test('a huge but valid chunk size carries a smuggled request as body bytes, never as a request', async () => {
    seen.heads.length = 0;
    seen.complete.length = 0;
    bodyBytes.length = 0;
    const s = net.connect(m.outbound, '127.0.0.1', () => s.write(`POST /huge HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nffffffffff\r\n${SMUGGLED}`));
    s.on('error', () => {});
    await waitFor('the smuggled bytes to reach the app as the body of POST /huge', async () => bodyBytes.join('').includes('GET /SMUGGLED'));
    s.destroy();
    await waitFor('no upstream connection left busy', async () => (await busyUpstreams(m.client.admin)) === 0 && (await busyUpstreams(m.server.admin)) === 0);
    assert.deepEqual(await good(), { status: 200, body: 'ok' });
    assert.deepEqual(seen.heads, ['POST /huge', 'GET /good']);
    assert.deepEqual(seen.complete, ['GET /good']);
  });
});

// Answers with a malformed response for /bad/<name>, a good one otherwise; every connection is kept
// open by the server, so one that closes was closed by the sidecar.
const BAD_RESPONSES: { name: string; bytes: string; says: RegExp }[] = [
  { name: 'cl-te', bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', says: /HPE_\w+/ },
  { name: 'dup-cl', bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello', says: /HPE_UNEXPECTED_CONTENT_LENGTH/ },
  { name: 'dup-cl-same', bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello', says: /HPE_UNEXPECTED_CONTENT_LENGTH/ },
  { name: 'bad-cl', bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello', says: /HPE_INVALID_CONTENT_LENGTH/ },
  { name: 'space-colon', bytes: 'HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello', says: /HPE_INVALID_HEADER_TOKEN/ },
  { name: 'bad-status', bytes: 'HTTP/1.1 2x0 OK\r\nContent-Length: 5\r\n\r\nhello', says: /HPE_INVALID_STATUS/ },
];

describe('malformed responses from an upstream, through two sidecars', () => {
  let m: Mesh;
  let bad: SidecarProc;
  let upstream: net.Server;
  const conns: { socket: net.Socket; closed: boolean; served: string[] }[] = [];
  let sendRest: (() => void) | undefined;
  before(async () => {
    m = await startMesh((_req, res) => res.end('ok'));
    upstream = net.createServer((socket) => {
      const c = { socket, closed: false, served: [] as string[] };
      conns.push(c);
      let buf = '';
      socket.on('data', (d) => {
        buf += d.toString('latin1');
        let i;
        while ((i = buf.indexOf('\r\n\r\n')) >= 0) {
          const line = buf.slice(0, buf.indexOf('\r\n'));
          buf = buf.slice(i + 4);
          const path = line.split(' ')[1] ?? '';
          c.served.push(path);
          const p = BAD_RESPONSES.find((b) => path === `/bad/${b.name}`);
          if (p) socket.write(p.bytes);
          else if (path === '/bad-chunk') socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n');
          else if (path === '/bad-chunk-later') {
            // The head and a good chunk now; the bad chunk when the test says the head has arrived.
            socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
            sendRest = () => socket.write('zz\r\nworld\r\n0\r\n\r\n');
          }
          else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood');
        }
      });
      socket.on('error', () => {});
      socket.on('close', () => (c.closed = true));
    });
    const upPort = await listen(upstream);
    bad = await spawnSidecar(m.cp, ['--workload', 'bad-1', '--service', 'bad', '--inbound-port', String(await freePort()), '--app-port', String(upPort)]);
    await waitFor('the client sidecar to route to bad', async () => {
      const r = await request(`http://127.0.0.1:${m.outbound}/`, { headers: { host: 'bad' } }).catch(() => undefined);
      if (!r) return false;
      const body = await r.body.text();
      return r.statusCode === 200 && body === 'good';
    });
  });
  after(async () => {
    await stopProc(bad?.proc);
    for (const c of conns) c.socket.destroy();
    upstream?.close();
    await m?.close();
  });

  for (const p of BAD_RESPONSES) {
    test(`${p.name}: the client gets a 502 naming the problem, and the upstream connection is not reused`, async () => {
      const r = await request(`http://127.0.0.1:${m.outbound}/bad/${p.name}`, { headers: { host: 'bad' } });
      const body = await r.body.text();
      assert.equal(r.statusCode, 502, body);
      assert.equal(r.headers['x-weft-error'], 'upstream_reset');
      assert.match(body, /malformed HTTP response/);
      assert.match(body, p.says);
      const c = conns.find((x) => x.served.includes(`/bad/${p.name}`))!;
      await waitFor('the sidecar to close the upstream connection that answered badly', async () => c.closed);
      const next = await request(`http://127.0.0.1:${m.outbound}/after`, { headers: { host: 'bad' } });
      assert.equal(await next.body.text(), 'good');
      assert.equal(c.served.at(-1), `/bad/${p.name}`, 'no request was sent on that connection after the bad answer');
      await waitFor('no upstream connection left busy', async () => (await busyUpstreams(m.client.admin)) === 0 && (await busyUpstreams(bad.admin)) === 0);
    });
  }

  test('a bad chunk in the same read as the head: the client gets a 502 naming the problem, and the connection is not reused', async () => {
    // Nothing of the answer had left the sidecar yet, so it can still answer with its own error.
    const r = await request(`http://127.0.0.1:${m.outbound}/bad-chunk`, { headers: { host: 'bad' } });
    const body = await r.body.text();
    assert.equal(r.statusCode, 502);
    assert.match(body, /malformed HTTP response \(HPE_INVALID_CHUNK_SIZE/);
    const c = conns.find((x) => x.served.includes('/bad-chunk'))!;
    await waitFor('the sidecar to close the upstream connection that answered badly', async () => c.closed);
    const next = await request(`http://127.0.0.1:${m.outbound}/after`, { headers: { host: 'bad' } });
    assert.equal(await next.body.text(), 'good');
  });

  test('a bad chunk after the head went out: the client sees the response cut short, and the connection is not reused', async () => {
    // The status line and headers were already relayed when the bad chunk arrived: too late for a
    // 502, so the response is cut (no last chunk) and the client knows it is incomplete.
    const r = await request(`http://127.0.0.1:${m.outbound}/bad-chunk-later`, { headers: { host: 'bad' } });
    assert.equal(r.statusCode, 200);
    sendRest!();
    await assert.rejects(r.body.text());
    const c = conns.find((x) => x.served.includes('/bad-chunk-later'))!;
    await waitFor('the sidecar to close the upstream connection that answered badly', async () => c.closed);
    const next = await request(`http://127.0.0.1:${m.outbound}/after`, { headers: { host: 'bad' } });
    assert.equal(await next.body.text(), 'good');
    await waitFor('no upstream connection left busy', async () => (await busyUpstreams(m.client.admin)) === 0 && (await busyUpstreams(bad.admin)) === 0);
  });
});
