// Make before break under load, through real sidecars: adding subset v3 and shifting half the
// traffic to it, then removing subset v1, while requests flow at 200 per second. Not one may fail.
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

const config = (subsets: string[], split: Record<string, number>) =>
  [
    { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews' }, spec: { host: 'reviews', subsets: subsets.map((s) => ({ name: s, labels: { version: s } })) } },
    { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews' }, spec: { hosts: ['reviews'], http: [{ route: Object.entries(split).map(([s, w]) => ({ destination: { host: 'reviews', subset: s }, weight: w })) }] } },
  ].map((r) => checkResource(r, 'test'));

before(async () => {
  cp = await startControlPlane({ dataDir: tmpDir('shift'), adminPort: 0, xdsPort: 0, heartbeatMs: 2000 });
  cp.store.apply(config(['v1', 'v2'], { v1: 100 }));
  for (const v of ['v1', 'v2', 'v3']) {
    const app = http.createServer((_req, res) => res.end(v));
    apps.push(app);
    const appPort = await listen(app);
    const inbound = await freePort();
    sidecars.push(await spawnSidecar(cp, ['--workload', `reviews-${v}`, '--service', 'reviews', '--label', `version=${v}`, '--inbound-port', String(inbound), '--app-port', String(appPort)]));
  }
  outbound = await freePort();
  sidecars.push(await spawnSidecar(cp, ['--workload', 'client', '--outbound-port', String(outbound)]));
});

after(async () => {
  await stopMesh(sidecars, apps, cp);
});

test('adding subset v3 and shifting 50% to it, then removing v1, under 200 requests per second: 0 failed requests', async (t) => {
  const agent = new Agent({ connections: 32 });
  const seen: string[] = [];
  const failures: string[] = [];
  const inflight = new Set<Promise<void>>();
  const one = async () => {
    try {
      const r = await request(`http://127.0.0.1:${outbound}/`, { headers: { host: 'reviews' }, dispatcher: agent });
      const body = await r.body.text();
      if (r.statusCode === 200) seen.push(body);
      else failures.push(`${r.statusCode} ${r.headers['x-weft-error'] ?? ''} ${body.trim()}`);
    } catch (e) {
      failures.push(String(e));
    }
  };
  // Wait for v1 to answer before the load starts.
  await waitFor('the client to reach v1', async () => {
    const r = await request(`http://127.0.0.1:${outbound}/`, { headers: { host: 'reviews' }, dispatcher: agent }).catch(() => undefined);
    return r !== undefined && r.statusCode === 200 && (await r.body.text()) === 'v1';
  }, 15_000);
  const timer = setInterval(() => {
    const p = one().finally(() => inflight.delete(p));
    inflight.add(p);
  }, 5); // 200 per second
  try {
    await waitFor('100 answers', async () => seen.length >= 100, 20_000);
    cp.store.apply(config(['v1', 'v2', 'v3'], { v1: 50, v3: 50 }));
    await waitFor('v3 to take traffic', async () => seen.filter((v) => v === 'v3').length >= 100, 30_000);
    const mark = seen.length;
    cp.store.apply(config(['v2', 'v3'], { v3: 100 }));
    await waitFor('v1 to take no more traffic', async () => seen.length - mark >= 200 && seen.slice(-100).every((v) => v === 'v3'), 30_000);
  } finally {
    clearInterval(timer);
    await Promise.all(inflight);
    await agent.close();
  }
  const count = (v: string) => seen.filter((x) => x === v).length;
  t.diagnostic(`${seen.length} answered (v1 ${count('v1')}, v3 ${count('v3')}, v2 ${count('v2')}), ${failures.length} failed${failures.length ? `: ${failures.slice(0, 5).join(' | ')}` : ''}`);
  assert.deepEqual(failures, []);
  assert.equal(count('v2'), 0, 'no route sent traffic to v2');
});
