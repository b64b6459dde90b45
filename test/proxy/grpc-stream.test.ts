// The sidecar's own gRPC stream (src/proxy/xds-client/grpc-stream.ts), against a real node:http2
// server that frames its messages awkwardly: a prefix split across writes, several messages in one
// write, a 3 MB message in 1 KiB pieces, and one over the 4 MB limit.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { once } from 'node:events';
import { test } from 'node:test';
import { GrpcChannel, STATUS, type GrpcError } from '../../src/proxy/xds-client/grpc-stream.ts';

function frame(body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

async function serve(respond: (s: http2.ServerHttp2Stream) => void): Promise<{ target: string; close(): void }> {
  const server = http2.createServer();
  server.on('stream', (s) => {
    s.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
    respond(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as import('node:net').AddressInfo).port;
  return { target: `127.0.0.1:${port}`, close: () => server.close() };
}

const ident = (b: Buffer) => b;

test('messages split across writes, joined in one write, and 3 MB in 1 KiB pieces all arrive whole', async () => {
  const big = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = i % 251;
  const srv = await serve((s) => {
    const a = frame(Buffer.from('first'));
    s.write(a.subarray(0, 2)); // a prefix in two pieces
    s.write(a.subarray(2));
    s.write(Buffer.concat([frame(Buffer.from('second')), frame(Buffer.from('third'))]));
    const b = frame(big);
    for (let at = 0; at < b.length; at += 1024) s.write(b.subarray(at, at + 1024));
    s.end();
  });
  const ch = new GrpcChannel(srv.target, { keepaliveTimeMs: 60_000, keepaliveTimeoutMs: 10_000 });
  try {
    const call = ch.bidiStream<Buffer, Buffer>('/test.Test/Stream', ident, ident);
    const got: Buffer[] = [];
    call.on('data', (m: Buffer) => got.push(Buffer.from(m)));
    call.on('error', (e) => assert.fail(e));
    await once(call, 'end');
    assert.deepEqual(got.slice(0, 3).map(String), ['first', 'second', 'third']);
    assert.equal(got.length, 4);
    assert.ok(got[3].equals(big), 'the 3 MB message arrived changed');
  } finally {
    ch.close();
    srv.close();
  }
});

test('a message over the 4 MB limit ends the call with RESOURCE_EXHAUSTED, naming the size', async () => {
  const srv = await serve((s) => {
    const head = Buffer.alloc(5);
    head.writeUInt32BE(5 * 1024 * 1024, 1);
    s.write(head);
    s.write(Buffer.alloc(1024));
  });
  const ch = new GrpcChannel(srv.target, { keepaliveTimeMs: 60_000, keepaliveTimeoutMs: 10_000 });
  try {
    const call = ch.bidiStream<Buffer, Buffer>('/test.Test/Stream', ident, ident);
    const [err] = (await once(call, 'error')) as [GrpcError];
    assert.equal(err.code, STATUS.RESOURCE_EXHAUSTED);
    assert.match(err.details, /5242880 vs\. 4194304/);
  } finally {
    ch.close();
    srv.close();
  }
});
