// The server side of mTLS against clients that do not play along, in one process on real sockets:
// a ClientHello cut short, a handshake that stops after the ClientHello, a hello with an ALPN no
// chain takes. Each is closed within the listener's listener_filters_timeout and counted; nothing
// throws, and the listener serves the next client.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { type ControlPlane, startControlPlane } from '../../src/control/control-plane.ts';
import { MtlsTerminator } from '../../src/proxy/tls/inbound.ts';
import { TlsStats } from '../../src/proxy/tls/stats.ts';
import { convertListener } from '../../src/proxy/xds-client/convert.ts';
import { TYPE } from '../../src/xds/types.ts';
import { workloadCert } from '../fixtures/mesh-creds.ts';
import { clientHello } from '../fixtures/tls.ts';
import { mtlsInbound, spiffe } from '../fixtures/mtls.ts';
import { tmpDir } from '../helpers.ts';

const TIMEOUT_MS = 300;
let cp: ControlPlane;
let server: net.Server;
let port = 0;
const stats = new TlsStats();
let served = 0;

before(async () => {
  cp = await startControlPlane({ dataDir: tmpDir('mtls-hostile'), adminPort: 0, xdsPort: 0 });
  const c = await workloadCert(cp, { serviceAccount: 'server' });
  const secrets = { current: () => ({ ...c, rootsPem: cp.trustBundle, spiffeId: spiffe('default', 'server') }) };
  const tcp = { name: 'tcp', typed_config: { '@type': TYPE.tcpProxy, stat_prefix: 's', cluster: 'c' } };
  const l = mtlsInbound({ name: 'L', address: { socket_address: { address: '127.0.0.1', port_value: 1 } }, filter_chains: [{ filters: [tcp] }] }, 'STRICT');
  const mtls = convertListener({ ...l, listener_filters_timeout: { nanos: TIMEOUT_MS * 1e6 } }).mtls!;
  const term = new MtlsTerminator();
  server = net.createServer((s) => {
    s.on('error', () => {});
    term.accept(s, { listener: 'L', mtls, secrets, stats, log: () => {}, plaintext: (p) => p.destroy(), passthrough: (p) => p.destroy(), secure: (t) => (served++, t.end('ok')) });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  server?.close();
  await cp?.close();
});

/** Writes `bytes` and waits for the close: how long it took, and whether anything came back. */
function closedAfter(bytes: Buffer): Promise<{ ms: number; data: number }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let data = 0;
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    s.on('data', (d) => (data += d.length));
    s.on('error', () => {});
    s.on('close', () => resolve({ ms: performance.now() - t0, data }));
  });
}

test('a ClientHello cut short is closed at listener_filters_timeout', async () => {
  const hello = await clientHello({ ALPNProtocols: ['istio'] });
  const r = await closedAfter(hello.subarray(0, 20));
  assert.ok(r.ms >= TIMEOUT_MS - 20 && r.ms < TIMEOUT_MS + 1000, `${r.ms} ms`);
  assert.equal(r.data, 0);
  assert.equal(stats.failures.get('listener_filters_timeout'), 1);
});

test('a handshake that stops after the ClientHello is closed at the handshake bound', async () => {
  const hello = await clientHello({ ALPNProtocols: ['istio-peer-exchange', 'istio'] });
  const r = await closedAfter(hello);
  assert.ok(r.ms >= TIMEOUT_MS - 20 && r.ms < TIMEOUT_MS + 1000, `${r.ms} ms`);
  assert.ok(r.data > 0, 'the server answered the hello');
  assert.equal(stats.failures.get('handshake_timeout'), 1, JSON.stringify(stats.json()));
});

test('a ClientHello whose ALPN no chain takes is closed at once; hellos too large, and records of garbage, are closed', async () => {
  const r = await closedAfter(await clientHello({ ALPNProtocols: ['h2'] }));
  assert.ok(r.ms < TIMEOUT_MS, `${r.ms} ms`);
  assert.equal(stats.failures.get('no_filter_chain'), 1);
  const huge = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0xff, 0xff, 0xff]), Buffer.alloc(100)]);
  assert.equal((await closedAfter(huge)).data, 0);
  const garbage = Buffer.concat([Buffer.from([0x16, 0x03, 0x03, 0x00, 0x10]), Buffer.alloc(16, 0xee)]);
  assert.equal((await closedAfter(garbage)).data, 0);
  assert.equal(served, 0);
});
