// The xDS port's own certificate: renewed at half its life (here a 3 s life), new connections get
// the new one, and what the port demands of clients (TLS 1.3, a bounded handshake) stays as it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { CertificateAuthority } from '../../src/control/ca/ca.ts';
import { controlPlaneTls } from '../../src/control/ca/tls.ts';
import { SqliteStore } from '../../src/control/store/sqlite.ts';
import { tmpDir } from '../helpers.ts';

/** The serial of the certificate the port shows, or the error of a handshake at this TLS version. */
function handshake(port: number, version: tls.SecureVersion): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, minVersion: version, maxVersion: version, ALPNProtocols: ['h2'] }, () => {
      resolve(`${s.getProtocol()} ${s.getPeerCertificate().serialNumber}`);
      s.destroy();
    });
    s.on('error', (e) => resolve(`error: ${e.message}`));
  });
}

test('renewed at half life: new connections see the new certificate, and TLS 1.2 is refused before and after', async (t) => {
  const store = new SqliteStore(path.join(tmpDir('cp-tls'), 'weft.db'));
  const ca = await CertificateAuthority.open({ store, kek: Buffer.alloc(32, 7), workloadTtlMs: 3000 });
  const cpTls = await controlPlaneTls(ca);
  const server = new grpc.Server();
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', cpTls.credentials, (e, p) => (e ? reject(e) : resolve(p))));
  try {
    const first = await handshake(port, 'TLSv1.3');
    assert.match(first, /^TLSv1\.3 [0-9A-F]+$/);
    assert.match(await handshake(port, 'TLSv1.2'), /^error:/);
    await new Promise<void>((resolve) => cpTls.onRenewed(() => resolve()));
    const second = await handshake(port, 'TLSv1.3');
    t.diagnostic(`before: ${first}; after renewal: ${second}`);
    assert.notEqual(second, first, 'a new certificate');
    assert.match(await handshake(port, 'TLSv1.2'), /^error:/, 'still TLS 1.3 only after the renewal');
  } finally {
    cpTls.stop();
    server.forceShutdown();
    store.close();
  }
});

test('a client that connects and never says anything is dropped after the handshake timeout, not held for good', async () => {
  const store = new SqliteStore(path.join(tmpDir('cp-tls2'), 'weft.db'));
  const ca = await CertificateAuthority.open({ store, kek: Buffer.alloc(32, 8) });
  const cpTls = await controlPlaneTls(ca);
  const server = new grpc.Server();
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', cpTls.credentials, (e, p) => (e ? reject(e) : resolve(p))));
  try {
    const silent = net.connect(port, '127.0.0.1');
    const t0 = Date.now();
    await new Promise<void>((resolve) => silent.on('close', () => resolve()));
    const held = Date.now() - t0;
    assert.ok(held < 60_000, `held ${held} ms (Node's default would be 120 s; the port's is 10 s)`);
  } finally {
    cpTls.stop();
    server.forceShutdown();
    store.close();
  }
});
