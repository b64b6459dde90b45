// The shared read buffer (src/proxy/net/read-buffer.ts): on the Node Weft ships with, accepted
// sockets read into it (the fast path the benchmark figures assume); a socket handed over as a
// stream afterwards gets every byte, in order, through 'data' and pipe(), with backpressure.
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { test } from 'node:test';
import { READ_BUFFER, canReadInto, readAsStream, readInto } from '../../src/proxy/net/read-buffer.ts';

async function pair(): Promise<{ client: net.Socket; accepted: net.Socket; close(): void }> {
  const server = net.createServer({ pauseOnConnect: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const client = net.connect(port, '127.0.0.1');
  const [accepted] = (await once(server, 'connection')) as [net.Socket];
  await once(client, 'connect');
  return {
    client,
    accepted,
    close: () => {
      client.destroy();
      accepted.destroy();
      server.close();
    },
  };
}

test('on this Node, an accepted socket reads into the shared buffer, not into a Buffer per read', async () => {
  assert.ok(canReadInto, 'net.Socket no longer has the kBuffer/kBufferCb fields that onread uses: the sidecar falls back to data events (slower); see read-buffer.ts');
  const p = await pair();
  try {
    const got: string[] = [];
    let sawBuffer: Buffer | undefined;
    const done = new Promise<void>((resolve) => {
      assert.ok(
        readInto(p.accepted, (n, buf) => {
          sawBuffer = buf;
          got.push(buf.toString('latin1', 0, n));
          if (got.join('').length === 11) resolve();
          return true;
        }),
      );
    });
    p.accepted.on('data', () => assert.fail('no data event: reads go to the callback'));
    p.accepted.resume();
    p.client.write('hello ');
    p.client.write('world');
    await done;
    assert.equal(got.join(''), 'hello world');
    assert.equal(sawBuffer, READ_BUFFER);
  } finally {
    p.close();
  }
});

test('a socket switched back to a stream delivers every later byte through pipe, in order, with end', async () => {
  const p = await pair();
  try {
    const first = new Promise<string>((resolve) => readInto(p.accepted, (n, buf) => (resolve(buf.toString('latin1', 0, n)), true)));
    p.accepted.resume();
    p.client.write('head');
    assert.equal(await first, 'head');
    readAsStream(p.accepted);
    // 4 MB through pipe() into a sink that reads slowly: pushes past the high-water mark pause the
    // reads, and the bytes still arrive whole and in order after the shared buffer was reused.
    const total = 4 * 1024 * 1024;
    const payload = Buffer.alloc(total);
    for (let i = 0; i < total; i++) payload[i] = (i * 7 + (i >> 12)) & 0xff;
    const chunks: Buffer[] = [];
    const { Writable } = await import('node:stream');
    const sink = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        setImmediate(cb);
      },
    });
    p.accepted.pipe(sink);
    p.client.end(payload);
    await once(sink, 'finish');
    const all = Buffer.concat(chunks);
    assert.equal(all.length, total);
    assert.ok(all.equals(payload), 'bytes arrived changed or out of order');
  } finally {
    p.close();
  }
});

test('TLS sockets, accepted and connected, read decrypted bytes into the shared buffer too: 4 MB each way, whole and in order, then the end', async () => {
  const { selfSigned } = await import('../fixtures/tls.ts');
  const tls = await import('node:tls');
  const creds = selfSigned(['localhost']);
  assert.ok(creds, 'openssl makes the test certificate');
  const server = tls.createServer({ key: creds.key, cert: creds.cert });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const total = 4 * 1024 * 1024;
  const payload = Buffer.alloc(total);
  for (let i = 0; i < total; i++) payload[i] = (i * 13 + (i >> 10)) & 0xff;
  /** Reads `s` through readInto until it ends: what arrived, copied out of the shared buffer read by read. */
  const drain = (s: net.Socket) =>
    new Promise<{ data: Buffer; reads: number }>((resolve, reject) => {
      const chunks: Buffer[] = [];
      assert.ok(
        readInto(s, (n, buf) => {
          assert.equal(buf, READ_BUFFER);
          chunks.push(Buffer.from(buf.subarray(0, n)));
          return true;
        }),
        'readInto takes a TLS socket',
      );
      s.on('data', () => reject(new Error('a data event: reads should go to the callback')));
      s.on('end', () => resolve({ data: Buffer.concat(chunks), reads: chunks.length }));
      s.on('error', reject);
    });
  try {
    const accepted = new Promise<{ data: Buffer; reads: number }>((resolve) => server.once('secureConnection', (s: net.Socket) => {
      const got = drain(s);
      s.end(payload);
      resolve(got);
    }));
    const client = tls.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false });
    const clientGot = drain(client);
    await once(client, 'secureConnect');
    client.end(payload);
    const [b, c] = await Promise.all([accepted, clientGot]);
    for (const [who, r] of [['server', b], ['client', c]] as const) {
      assert.equal(r.data.length, total, `${who}: bytes`);
      assert.ok(r.data.equals(payload), `${who}: bytes arrived changed or out of order`);
      assert.ok(r.reads > 1, `${who}: several reads (TLS records of at most 16 KB)`);
    }
    client.destroy();
  } finally {
    server.close();
  }
});
