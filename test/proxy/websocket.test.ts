// A real WebSocket through two sidecars: Node's own WebSocket client (undici's), sent through the
// client's outbound sidecar with a ProxyAgent, to a minimal RFC 6455 echo server behind the
// server's inbound sidecar. Messages and close codes arrive intact; both sidecars count the 101.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import type http from 'node:http';
import type net from 'node:net';
import { ProxyAgent } from 'undici';
import { waitFor } from '../helpers.ts';
import { type Mesh, startMesh } from './mesh.ts';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** One frame, unmasked (a server's frames are never masked). */
function frame(opcode: number, payload: Buffer): Buffer {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x80 | opcode, n]) : n < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  if (n >= 126 && n < 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 126;
    head.writeUInt16BE(n, 2);
  } else if (n >= 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  return Buffer.concat([head, payload]);
}

/** The echo server: the handshake, then every data frame back with its opcode; close echoes the code. */
function echoUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
  const key = req.headers['sec-websocket-key'];
  if (req.headers.upgrade?.toLowerCase() !== 'websocket' || typeof key !== 'string') {
    socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    return;
  }
  const accept = crypto.createHash('sha1').update(key + GUID).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  let buf: Buffer = head;
  let message: Buffer[] = [];
  let messageOp = 0;
  const onData = (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    for (;;) {
      if (buf.length < 2) return;
      const fin = (buf[0] & 0x80) !== 0;
      const op = buf[0] & 0x0f;
      const masked = (buf[1] & 0x80) !== 0;
      let len = buf[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      if (!masked) {
        socket.destroy(); // RFC 6455 5.1: a client's frames are masked
        return;
      }
      if (buf.length < at + 4 + len) return;
      const mask = buf.subarray(at, at + 4);
      const payload = Buffer.from(buf.subarray(at + 4, at + 4 + len));
      for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
      buf = buf.subarray(at + 4 + len);
      if (op === 0x8) {
        socket.end(frame(0x8, payload)); // close: echo the code and reason, then end
        return;
      }
      if (op === 0x9) {
        socket.write(frame(0xa, payload));
        continue;
      }
      if (op === 0xa) continue;
      if (op !== 0) messageOp = op;
      message.push(payload);
      if (fin) {
        socket.write(frame(messageOp, Buffer.concat(message)));
        message = [];
      }
    }
  };
  socket.on('data', onData);
  socket.on('error', () => {});
  if (head.length) {
    buf = Buffer.alloc(0);
    onData(head);
  }
}

describe('WebSocket through two sidecars (Node WebSocket client via ProxyAgent, RFC 6455 echo server)', () => {
  let m: Mesh;
  let agent: ProxyAgent;
  before(async () => {
    m = await startMesh((_req, res) => res.end('not a websocket'));
    m.app.on('upgrade', echoUpgrade);
    agent = new ProxyAgent(`http://127.0.0.1:${m.outbound}`);
  });
  after(async () => {
    await agent?.close();
    await m?.close();
  });

  /** Opens a WebSocket to the app through the client's sidecar; resolves once open. */
  const open = async (): Promise<{ ws: WebSocket; next: () => Promise<MessageEvent>; closed: Promise<CloseEvent> }> => {
    const ws = new WebSocket('ws://app/chat', { dispatcher: agent } as unknown as string[]);
    ws.binaryType = 'arraybuffer';
    const queue: MessageEvent[] = [];
    const waiters: ((e: MessageEvent) => void)[] = [];
    ws.addEventListener('message', (e) => {
      const w = waiters.shift();
      if (w) w(e);
      else queue.push(e);
    });
    const closed = new Promise<CloseEvent>((resolve) => ws.addEventListener('close', (e) => resolve(e)));
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve());
      ws.addEventListener('error', (e) => reject(new Error(`WebSocket failed to open: ${(e as ErrorEvent).message ?? e.type}`)));
    });
    const next = () => new Promise<MessageEvent>((resolve) => (queue.length ? resolve(queue.shift()!) : waiters.push(resolve)));
    return { ws, next, closed };
  };

  test('text and binary messages, and a 1 MB message, come back intact', async () => {
    const { ws, next, closed } = await open();
    ws.send('hello, wörld ✓');
    assert.equal((await next()).data, 'hello, wörld ✓');
    const bin = new Uint8Array(300).map((_, i) => (i * 7) & 0xff);
    ws.send(bin);
    assert.deepEqual(new Uint8Array((await next()).data as ArrayBuffer), bin);
    const big = crypto.randomBytes(1024 * 1024);
    ws.send(big);
    const back = Buffer.from((await next()).data as ArrayBuffer);
    assert.equal(back.length, big.length);
    assert.ok(back.equals(big), 'the 1 MB message came back byte for byte');
    const bigText = 'x'.repeat(70_000) + 'end';
    ws.send(bigText);
    assert.equal((await next()).data, bigText);
    ws.close(1000, 'done');
    const c = await closed;
    assert.equal(c.code, 1000);
    assert.equal(c.reason, 'done');
    assert.equal(c.wasClean, true);
  });

  test('an application close code and reason come back intact', async () => {
    const { ws, closed } = await open();
    ws.close(4321, 'going away for tests');
    const c = await closed;
    assert.equal(c.code, 4321);
    assert.equal(c.reason, 'going away for tests');
  });

  test("both sidecars' /stats count the upgrade (101) under the cluster", async () => {
    const rows = async (admin: string) => ((await m.stats(admin)).requests as { cluster: string; code: number; count: number }[]).filter((r) => r.code === 101);
    const client = await waitFor('the client sidecar to count 101s', async () => {
      const r = await rows(m.client.admin);
      return r.length > 0 && r;
    });
    assert.deepEqual(
      client.map((r) => [r.cluster, r.count]),
      [['outbound|80||app.default.svc.cluster.local', 2]],
    );
    const server = await rows(m.server.admin);
    assert.equal(server.length, 1);
    assert.match(server[0].cluster, /^inbound\|80\|/);
    assert.equal(server[0].count, 2);
  });
});
