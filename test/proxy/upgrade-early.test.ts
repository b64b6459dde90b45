// Found by review: bytes a client sends after an upgrade request's head and before the 101 belong
// to the tunnel. Over TLS they may come in a TLS record of their own, which a read hands over
// even after the connection paused reading; they must reach the tunnel all the same, in order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { Sweeper, serveHttp1 } from '../../src/proxy/http1/server.ts';
import type { Downstream } from '../../src/proxy/http/types.ts';
import { selfSigned } from '../fixtures/tls.ts';

// (Plain text lost them too when they arrived after the request was dispatched.)
for (const mode of ['plain text', 'TLS'] as const) {
  test(`${mode}: bytes sent after an upgrade head, before the 101, reach the tunnel ahead of later ones`, async () => {
    const creds = selfSigned(['localhost']);
    assert.ok(creds, 'openssl makes the test certificate');
    let tunnel!: Promise<string>;
    let gotRequest!: () => void;
    const requested = new Promise<void>((r) => (gotRequest = r));
    /** The 101, and the tunnel's bytes from there on: what the upgrade hands over, then what follows. */
    const answer = (d: Downstream) => {
      const r = d.upgradeTo(101, [])!;
      tunnel = new Promise<string>((resolve) => {
        let got = r.head.toString('latin1');
        r.socket.on('data', (b: Buffer) => {
          got += b.toString('latin1');
          if (got.includes('LATE')) resolve(got);
        });
        r.socket.resume();
      });
    };
    let accepted: net.Socket | undefined;
    const serve = (s: net.Socket) => {
      accepted = s;
      s.on('error', () => {});
      // As listener.ts's sniff: the first bytes, then the codec.
      s.once('data', (first: Buffer) => {
        s.pause();
        serveHttp1(
          s,
          {
            // The 101 waits until the client's early bytes have arrived (below).
            onRequest: (ds) => {
              pending = ds;
              gotRequest();
            },
            onConnect: () => {},
            onRejected: () => {},
            onBug: (e) => {
              throw e;
            },
            path: { normalize: false, mergeSlashes: false },
            headersTimeoutMs: 10_000,
            idleTimeoutMs: 10_000,
            sweeper: new Sweeper(),
          } as Parameters<typeof serveHttp1>[1],
          first,
        );
      });
    };
    let pending: Downstream | undefined;
    const server = mode === 'TLS' ? tls.createServer({ key: creds.key, cert: creds.cert }) : net.createServer();
    server.on(mode === 'TLS' ? 'secureConnection' : 'connection', serve);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    const c = mode === 'TLS' ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }) : net.connect(port, '127.0.0.1');
    try {
      await once(c, mode === 'TLS' ? 'secureConnect' : 'connect');
      c.write('GET / HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n');
      await requested;
      // Early bytes in a write (a TLS record) of their own; once the server has read them, the 101.
      const head = accepted!.bytesRead;
      c.write('EARLY');
      while (accepted!.bytesRead < head + 5) await new Promise((r) => setImmediate(r));
      answer(pending!);
      let resp = '';
      c.on('data', (d) => {
        resp += d;
        if (resp.includes('\r\n\r\n') && !resp.includes('sent')) {
          resp += 'sent';
          c.write('LATE');
        }
      });
      assert.equal(await tunnel, 'EARLYLATE');
    } finally {
      c.destroy();
      server.close();
    }
  });
}
