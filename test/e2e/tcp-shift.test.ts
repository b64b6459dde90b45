// VirtualService tcp routes through real sidecars: TCP connections to a service split between its
// subsets by the route's weights (Istio's TCP traffic shifting task).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { checkResource } from '../../src/api/index.ts';
import { type ControlPlane, startControlPlane } from '../../src/control/control-plane.ts';
import { freePort } from '../../src/util/net.ts';
import { tmpDir, waitFor } from '../helpers.ts';
import { type SidecarProc, spawnSidecar, stopProc } from '../proxy/mesh.ts';

let cp: ControlPlane;
const servers: net.Server[] = [];
const sidecars: SidecarProc[] = [];
let outbound = 0;

/** A server-first TCP service: it greets with its version and closes. */
async function greeter(version: string): Promise<number> {
  const s = net.createServer((c) => {
    c.on('error', () => {});
    c.end(`${version}\n`);
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return (s.address() as AddressInfo).port;
}

/** CONNECT db:5432 through the client sidecar; resolves with what the service greeted with. */
function greetingThrough(proxyPort: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(proxyPort, '127.0.0.1', () => s.write('CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n'));
    let buf = '';
    s.setEncoding('latin1');
    s.on('data', (d) => (buf += d));
    s.on('error', reject);
    s.on('close', () => {
      const body = buf.split('\r\n\r\n')[1];
      if (!buf.startsWith('HTTP/1.1 200') || !body) reject(new Error(`no greeting: ${JSON.stringify(buf)}`));
      else resolve(body.trim());
    });
  });
}

const config = (split: Record<string, number>) =>
  [
    { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'db' }, spec: { host: 'db', subsets: ['v1', 'v2'].map((v) => ({ name: v, labels: { version: v } })) } },
    { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'db' }, spec: { hosts: ['db'], tcp: [{ match: [{ port: 5432 }], route: Object.entries(split).map(([v, w]) => ({ destination: { host: 'db', subset: v }, weight: w })) }] } },
  ].map((r) => checkResource(r, 'test'));

before(async () => {
  cp = await startControlPlane({ dataDir: tmpDir('tcp-shift'), adminPort: 0, xdsPort: 0, heartbeatMs: 2000 });
  cp.store.apply(config({ v1: 100 }));
  for (const v of ['v1', 'v2']) {
    const app = await greeter(v);
    sidecars.push(await spawnSidecar(cp, ['--workload', `db-${v}`, '--service', 'db', '--label', `version=${v}`, '--port', `tcp-db:5432:${await freePort()}:${app}`]));
  }
  outbound = await freePort();
  sidecars.push(await spawnSidecar(cp, ['--workload', 'client', '--outbound-port', String(outbound)]));
});

after(async () => {
  await Promise.all(sidecars.map((s) => stopProc(s.proc)));
  for (const s of servers) s.close();
  await cp?.close();
});

test('tcp routes shift TCP connections between subsets by weight: 100/0, then 50/50', async (t) => {
  await waitFor('v1 greets through the mesh', async () => (await greetingThrough(outbound).catch(() => '')) === 'v1', 15_000);
  for (let i = 0; i < 10; i++) assert.equal(await greetingThrough(outbound), 'v1');
  cp.store.apply(config({ v1: 50, v2: 50 }));
  await waitFor('v2 takes connections', async () => (await greetingThrough(outbound)) === 'v2', 15_000);
  const n = 200;
  const got = await Promise.all(Array.from({ length: n }, () => greetingThrough(outbound)));
  const v2 = got.filter((g) => g === 'v2').length;
  t.diagnostic(`${v2} of ${n} connections to v2 (50/50)`);
  assert.ok(got.every((g) => g === 'v1' || g === 'v2'));
  assert.ok(v2 > n * 0.35 && v2 < n * 0.65, `${v2} of ${n}`);
});
