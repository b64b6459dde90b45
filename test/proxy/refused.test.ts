// What the HTTP/1 codec tells telemetry of a request it refuses before routing (http/refused.ts):
// the request line and headers where the head was read whole, nothing of the request where it was
// not (as Envoy's codec), the connection's ends either way; and a request already on the request
// path that breaks its body is reported once, by its exchange, not again as a refusal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { Sweeper, serveHttp1 } from '../../src/proxy/http1/server.ts';
import type { Refusal } from '../../src/proxy/http/refused.ts';
import type { Downstream } from '../../src/proxy/http/types.ts';
import { raw } from './mesh.ts';

/** A refusal, with its connection's ends read as it was delivered (as telemetry reads them: the socket closes after). */
type Seen = Refusal & { remote: string; local: string; principal: string | undefined };

async function server(onRequest: (ds: Downstream) => void = () => {}, headersTimeoutMs = 10_000): Promise<{ port: number; refused: Seen[]; requests: Downstream[]; close(): void }> {
  const refused: Seen[] = [];
  const requests: Downstream[] = [];
  const sweeper = new Sweeper();
  const s = net.createServer((sock) => {
    sock.on('error', () => {});
    serveHttp1(sock, {
      onRequest: (ds) => {
        requests.push(ds);
        onRequest(ds);
      },
      onConnect: () => {},
      onRejected: (r) => refused.push({ ...r, remote: r.ds.remoteAddress(), local: r.ds.hostPorts!().local, principal: r.ds.sourcePrincipal!() }),
      onBug: (e) => {
        throw e;
      },
      path: { normalize: false, mergeSlashes: false },
      headersTimeoutMs,
      idleTimeoutMs: 10_000,
      sweeper,
    } as Parameters<typeof serveHttp1>[1]);
  });
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return { port: (s.address() as net.AddressInfo).port, refused, requests, close: () => s.close() };
}

test('a head that never parsed: refused with nothing of the request, but its connection; answered 400', async () => {
  const srv = await server();
  try {
    const r = await raw(srv.port, 'GET /x HTTP/1.1\r\nno colon here\r\n\r\n');
    assert.match(r.data, /^HTTP\/1\.1 400 /);
    assert.equal(srv.refused.length, 1);
    const { status, code, ds, remote, local, principal } = srv.refused[0]!;
    assert.deepEqual([status, code, ds.head.method, ds.head.path, ds.head.authority, ds.head.headers], [400, 'bad_request', '', '', '', []]);
    assert.equal(remote, '127.0.0.1');
    assert.equal(local, `127.0.0.1:${srv.port}`);
    assert.equal(principal, undefined, 'plain text: no peer identity');
  } finally {
    srv.close();
  }
});

test('a whole head refused (a Host that is no host): its request line, query and headers go with it', async () => {
  const srv = await server();
  try {
    const r = await raw(srv.port, 'POST /p/q?a=1 HTTP/1.0\r\nHost: a b\r\nUser-Agent: t/1\r\n\r\n');
    assert.match(r.data, /^HTTP\/1\.1 400 /);
    const { head } = srv.refused[0]!.ds;
    assert.deepEqual([head.method, head.path, head.query, head.authority, head.protocol], ['POST', '/p/q', 'a=1', 'a b', 'HTTP/1.0']);
    assert.deepEqual(head.headers, ['user-agent', 't/1']);
    assert.equal(srv.requests.length, 0, 'it never reached the request path');
  } finally {
    srv.close();
  }
});

test('a request on the path whose chunked body breaks: reported by its exchange only, never as a refusal too', async () => {
  const srv = await server((ds) => ds.readBody({ data: () => true, end: () => {} }));
  try {
    const r = await raw(srv.port, 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
    assert.match(r.data, /^HTTP\/1\.1 400 /, 'the client hears why');
    assert.equal(srv.requests.length, 1);
    assert.deepEqual(srv.refused, []);
  } finally {
    srv.close();
  }
});

test("a head that did not arrive within the listener's request_headers_timeout: refused 408, its duration the timeout, nothing of the request", async () => {
  const srv = await server(undefined, 300);
  try {
    const r = await raw(srv.port, 'GET /slow HTTP/1.1\r\nHost: a\r\n');
    assert.match(r.data, /^HTTP\/1\.1 408 /);
    assert.equal(srv.refused.length, 1);
    const { status, code, durationMs, ds } = srv.refused[0]!;
    assert.deepEqual([status, code, durationMs, ds.head.method, ds.head.path], [408, 'request_headers_timeout', 300, '', '']);
  } finally {
    srv.close();
  }
});
