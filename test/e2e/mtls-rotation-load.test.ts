// Certificates rotating under load, through real sidecars with automatic mTLS between them: both
// sidecars' workload certificates live 6 s and are renewed every 3 s, while a client sends 200
// requests per second for 30 s through them (ten rotations on each side, the rotations a 2-minute
// run at Istio's scale of 10 s would see, in a quarter of the time; `npm run bench` has no such
// phase: this is a correctness check, not a figure). Every request must succeed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { type ControlPlane, startControlPlane } from '../../src/control/control-plane.ts';
import { freePort } from '../../src/util/net.ts';
import { tmpDir, waitFor } from '../helpers.ts';
import { type SidecarProc, spawnSidecar, stopProc } from '../proxy/mesh.ts';

let cp: ControlPlane;
let app: http.Server;
const sidecars: SidecarProc[] = [];
let outbound = 0;
const logs: string[] = [];

before(async () => {
  cp = await startControlPlane({ dataDir: tmpDir('rotation-load'), adminPort: 0, xdsPort: 0, log: (m) => logs.push(m) });
  app = http.createServer((_q, r) => r.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
  const appPort = (app.address() as AddressInfo).port;
  sidecars.push(await spawnSidecar(cp, ['--workload', 'api-1', '--service', 'api', '--inbound-port', String(await freePort()), '--app-port', String(appPort), '--cert-ttl', '6s'], {}, 'api'));
  outbound = await freePort();
  sidecars.push(await spawnSidecar(cp, ['--workload', 'client', '--outbound-port', String(outbound), '--cert-ttl', '6s'], {}, 'client'));
});
after(async () => {
  await Promise.all(sidecars.map((s) => stopProc(s.proc)));
  app?.closeAllConnections();
  app?.close();
  await cp?.close();
});

test('200 requests per second for 30 s while both sidecars renew their certificates every 3 s: every request succeeds, over mTLS', async (t) => {
  const dispatcher = new Agent({ connections: 32 });
  const get = async () => {
    const r = await request(`http://127.0.0.1:${outbound}/`, { headers: { host: 'api' }, dispatcher });
    const body = await r.body.text();
    return r.statusCode === 200 && body === 'ok' ? 'ok' : `${r.statusCode} ${body.slice(0, 200)}`;
  };
  await waitFor('the first request through the mesh', async () => (await get().catch(() => '')) === 'ok', 15_000);
  const renewals = () => logs.filter((l) => l.includes('on its current certificate')).length;
  const renewed0 = renewals();
  const outcomes = new Map<string, number>();
  const count = (k: string): void => {
    outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
  };
  const RATE = 200;
  const SECONDS = 30;
  const t0 = Date.now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < RATE * SECONDS; i++) {
    // Paced: request i leaves at its slot (no sleep-based synchronisation: this is the load's own clock).
    const due = t0 + (i * 1000) / RATE;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    inFlight.push(get().then(count, (e: Error) => count(`error ${e.message}`)));
  }
  await Promise.all(inFlight);
  await dispatcher.close();
  const renewed = renewals() - renewed0;
  const api = (await (await request(`${sidecars[0].admin}/stats`)).body.json()) as { tls: { downstream: { handshakes: number } }; sources: Record<string, number> };
  t.diagnostic(`outcomes ${JSON.stringify(Object.fromEntries(outcomes))}; ${renewed} renewals in ${((Date.now() - t0) / 1000).toFixed(1)} s; api's sidecar: ${api.tls.downstream.handshakes} mTLS handshakes, ${api.sources['spiffe://cluster.local/ns/default/sa/client'] ?? 0} requests from the client's identity`);
  assert.deepEqual(Object.fromEntries(outcomes), { ok: RATE * SECONDS }, 'every request succeeds');
  assert.ok(renewed >= 10, `both sidecars renewed, about every 3 s each: ${renewed}`);
  assert.ok((api.sources['spiffe://cluster.local/ns/default/sa/client'] ?? 0) >= RATE * SECONDS, 'every request arrived over mTLS from the client');
});
