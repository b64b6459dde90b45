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
