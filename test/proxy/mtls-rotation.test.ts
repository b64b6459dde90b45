// The TLS layer in one process, on real sockets: a renewed workload certificate applies to the
// connections made after it, on both sides, while connections already open keep theirs; each side
// knows the other's SPIFFE id; a server that is not the one asked for fails as a connect failure
// whose message says why.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { type ControlPlane, startControlPlane } from '../../src/control/control-plane.ts';
import { MtlsTerminator } from '../../src/proxy/tls/inbound.ts';
import { TlsStats } from '../../src/proxy/tls/stats.ts';
import { TLS_HANDSHAKE, connectTls } from '../../src/proxy/tls/upstream.ts';
import { peerPrincipal, peerWorkload } from '../../src/proxy/tls/peer.ts';
import { convertCluster, convertListener, transportFor } from '../../src/proxy/xds-client/convert.ts';
import { TYPE } from '../../src/xds/types.ts';
import { workloadCert } from '../fixtures/mesh-creds.ts';
import { mtlsInbound, spiffe, transportSocketMatches } from '../fixtures/mtls.ts';
import { tmpDir } from '../helpers.ts';

let cp: ControlPlane;
before(async () => {
  cp = await startControlPlane({ dataDir: tmpDir('mtls-rotation'), adminPort: 0, xdsPort: 0 });
});
after(() => cp?.close());

/** Secrets whose current certificate the test swaps, as a renewal does. */
class Swappable {
  cert!: { keyPem: string; certPem: string; rootsPem: string; spiffeId: string };
  current() {
    return this.cert;
  }
  async issue(sa: string, workload?: string): Promise<void> {
    const c = await workloadCert(cp, { serviceAccount: sa, ...(workload ? { workload } : {}) });
    this.cert = { ...c, rootsPem: cp.trustBundle, spiffeId: spiffe('default', sa) };
  }
}

const tcp = { name: 'tcp', typed_config: { '@type': TYPE.tcpProxy, stat_prefix: 's', cluster: 'c' } };

test('a renewed certificate applies to new connections on both sides; open ones keep theirs; each side knows the other', async () => {
  const serverSecrets = new Swappable();
  const clientSecrets = new Swappable();
  await serverSecrets.issue('server-a');
  await clientSecrets.issue('client-a');
  const mtls = convertListener(mtlsInbound({ name: 'L', address: { socket_address: { address: '127.0.0.1', port_value: 1 } }, filter_chains: [{ filters: [tcp] }] }, 'STRICT')).mtls!;
  const term = new MtlsTerminator();
  const stats = new TlsStats();
  const seen: string[] = [];
  let open = 0;
  const server = net.createServer((s) => {
    // The sidecar's connection budget counts accepted sockets until they close: TLS must not keep them.
    open++;
    s.once('close', () => open--);
    term.accept(s, {
      listener: 'L',
      mtls,
      secrets: serverSecrets,
      stats,
      log: () => {},
      plaintext: (p) => p.destroy(),
      passthrough: (p) => p.destroy(),
      // Echo who the client is, then keep the connection open.
      secure: (t) => {
        seen.push(peerPrincipal(t)!);
        t.write(`${peerPrincipal(t)}\n`);
      },
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  const cluster = convertCluster({ name: 'outbound|80||s', type: 'STATIC', connect_timeout: { seconds: 1 }, load_assignment: { cluster_name: 'x' }, transport_socket_matches: transportSocketMatches([spiffe('default', 'server-a'), spiffe('default', 'server-b')], 'outbound_.80_._.s') });
  const tls = transportFor(cluster, { socketMatch: { tlsMode: 'istio' } })!;
  const dial = () =>
    new Promise<{ socket: TLSSocket; said: string }>((resolve, reject) => {
      const s = connectTls('127.0.0.1', port, { tls, secrets: clientSecrets }, 'tcp');
      s.once('error', reject);
      s.once('data', (d) => resolve({ socket: s, said: String(d).trim() }));
      // TLS 1.3: the server judges the client's certificate after the client's handshake is done,
      // so a refusal may come as a close after secureConnect.
      s.once('close', () => reject(new Error('closed')));
    });
  try {
    const first = await dial();
    assert.equal(first.said, spiffe('default', 'client-a'));
    assert.equal(peerPrincipal(first.socket), spiffe('default', 'server-a'));
    await serverSecrets.issue('server-b');
    await clientSecrets.issue('client-b');
    const second = await dial();
    assert.equal(second.said, spiffe('default', 'client-b'));
    assert.equal(peerPrincipal(second.socket), spiffe('default', 'server-b'));
    assert.ok(!first.socket.destroyed && first.socket.writable, 'the first connection is still open');
    assert.equal(stats.handshakes, 2);
    // A server outside match_subject_alt_names: the handshake fails, saying why.
    await serverSecrets.issue('server-c');
    const err = await dial().then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    assert.equal(err?.code, TLS_HANDSHAKE);
    assert.match(err!.message, /^upstream TLS: certificate for spiffe:\/\/cluster\.local\/ns\/default\/sa\/server-c is not one of spiffe:\/\/cluster\.local\/ns\/default\/sa\/server-a, spiffe:\/\/cluster\.local\/ns\/default\/sa\/server-b$/);
    // A client whose certificate is from another CA: refused, and counted.
    const other = await startControlPlane({ dataDir: tmpDir('mtls-rotation-other'), adminPort: 0, xdsPort: 0 });
    try {
      await serverSecrets.issue('server-a');
      const foreign = await workloadCert(other, { serviceAccount: 'client-a' });
      clientSecrets.cert = { ...foreign, rootsPem: cp.trustBundle, spiffeId: spiffe('default', 'client-a') };
      const before = JSON.stringify(stats.json());
      const refused = await dial().then(
        (d) => `answered: ${d.said}`,
        (e: NodeJS.ErrnoException) => e.message,
      );
      assert.match(refused, /^(upstream TLS: |closed)/);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(stats.failures.get('untrusted_client_certificate'), 1, `${before} -> ${JSON.stringify(stats.json())}`);
    } finally {
      await other.close();
    }
    first.socket.destroy();
    second.socket.destroy();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(open, 0, 'every accepted socket closed');
  } finally {
    server.close();
  }
});

test("a resumed TLS session still knows the server: its SPIFFE id and workload, which node:tls gives no certificate for", async () => {
  const serverSecrets = new Swappable();
  const clientSecrets = new Swappable();
  await serverSecrets.issue('server-a', 'server-a-v1');
  await clientSecrets.issue('client-a');
  const mtls = convertListener(mtlsInbound({ name: 'L', address: { socket_address: { address: '127.0.0.1', port_value: 1 } }, filter_chains: [{ filters: [tcp] }] }, 'STRICT')).mtls!;
  const term = new MtlsTerminator();
  const server = net.createServer((s) => {
    term.accept(s, { listener: 'L', mtls, secrets: serverSecrets, stats: new TlsStats(), log: () => {}, plaintext: (p) => p.destroy(), passthrough: (p) => p.destroy(), secure: (t) => t.end('hello\n') });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  const cluster = convertCluster({ name: 'outbound|80||s', type: 'STATIC', connect_timeout: { seconds: 1 }, load_assignment: { cluster_name: 'x' }, transport_socket_matches: transportSocketMatches([spiffe('default', 'server-a')], 'outbound_.80_._.s') });
  const tls = transportFor(cluster, { socketMatch: { tlsMode: 'istio' } })!;
  // Each connection read to its end, so that the session ticket (TLS 1.3: after the handshake) has
  // come; who the server is, read once verified, as the request path reads it.
  const dial = () =>
    new Promise<{ reused: boolean; principal: string | undefined; workload: string | undefined }>((resolve, reject) => {
      const s = connectTls('127.0.0.1', port, { tls, secrets: clientSecrets }, 'tcp');
      s.once('error', reject);
      let seen: { reused: boolean; principal: string | undefined; workload: string | undefined };
      s.once('secureConnect', () => (seen = { reused: s.isSessionReused(), principal: peerPrincipal(s), workload: peerWorkload(s) }));
      s.resume();
      s.once('end', () => {
        s.destroy();
        resolve(seen);
      });
    });
  try {
    const dials = [];
    for (let i = 0; i < 4; i++) dials.push(await dial());
    assert.equal(dials[0]!.reused, false);
    assert.ok(dials.slice(1).some((d) => d.reused), 'later connections resume the session');
    const workload = 'server-a-v1';
    for (const d of dials) assert.deepEqual(d, { reused: d.reused, principal: spiffe('default', 'server-a'), workload });
  } finally {
    server.close();
  }
});
