// DestinationRule warmup through real sidecars: a reviews endpoint that joins a running service
// gets a small share of the client's requests at first (slow start), and its full share once the
// warmup window has passed; without warmup it would get half at once (round robin).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Agent, request } from 'undici';
import { checkResource } from '../../src/api/index.ts';
import { type ControlPlane, startControlPlane } from '../../src/control/control-plane.ts';
import { freePort } from '../../src/util/net.ts';
import { tmpDir, waitFor } from '../helpers.ts';
import { type SidecarProc, listen, spawnSidecar, stopMesh } from '../proxy/mesh.ts';

let cp: ControlPlane;
const apps: http.Server[] = [];
const sidecars: SidecarProc[] = [];
let outbound = 0;
const WINDOW_S = 8;

async function backend(name: string): Promise<void> {
  const app = http.createServer((_req, res) => res.end(name));
  apps.push(app);
  const appPort = await listen(app);
  sidecars.push(await spawnSidecar(cp, ['--workload', `reviews-${name}`, '--service', 'reviews', '--inbound-port', String(await freePort()), '--app-port', String(appPort)]));
}

before(async () => {
  cp = await startControlPlane({ dataDir: tmpDir('warmup'), adminPort: 0, xdsPort: 0, heartbeatMs: 2000 });
  cp.store.apply([checkResource({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews' }, spec: { host: 'reviews', trafficPolicy: { loadBalancer: { warmup: { duration: `${WINDOW_S}s`, minimumPercent: 10 } } } } }, 'test')]);
  await backend('old');
  outbound = await freePort();
  sidecars.push(await spawnSidecar(cp, ['--workload', 'client', '--outbound-port', String(outbound)]));
});

after(async () => {
  await stopMesh(sidecars, apps, cp);
});

const agent = new Agent({ connections: 4 });
const get = async () => {
  const r = await request(`http://127.0.0.1:${outbound}/`, { headers: { host: 'reviews' }, dispatcher: agent });
  return r.body.text();
};
const share = async (n: number) => {
  let fresh = 0;
  for (let i = 0; i < n; i++) if ((await get()) === 'new') fresh++;
  return fresh / n;
};

test('warmup: an endpoint that joins gets a small share at first, growing to its full share over the window', async (t) => {
  await waitFor('the client reaches reviews', async () => (await get()) === 'old', 15_000);
  await backend('new');
  const joined = performance.now();
  await waitFor('a first answer from the new endpoint', async () => (await get()) === 'new', 15_000);
  // Its weight grows from 10% by an eighth a second: well under half while these are sent.
  const early = await share(60);
  const took = (performance.now() - joined) / 1000;
  t.diagnostic(`share of the new endpoint in 60 requests, ${took.toFixed(1)} s after it joined: ${(early * 100).toFixed(0)}% (round robin would give 50%)`);
  assert.ok(early < 0.35, `early share ${early}`);
  // Slow start is a matter of time: requests keep flowing until the window is over.
  await waitFor('the warmup window over', async () => (await get()) !== undefined && performance.now() - joined > WINDOW_S * 1000, (WINDOW_S + 20) * 1000);
  const late = await share(100);
  t.diagnostic(`share in 100 requests after the window: ${(late * 100).toFixed(0)}%`);
  assert.ok(late >= 0.35 && late <= 0.65, `late share ${late}`);
});
