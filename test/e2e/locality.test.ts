// Locality load balancing through real sidecars: a client in us-west/zone1 sends everything to
// the reviews endpoint in its own zone; when that endpoint fails and outlier detection ejects it,
// traffic fails over to the same region's other zone, not to the other region; retries with
// retryRemoteLocalities go to another locality at once. Localities come from the workloads'
// Kubernetes topology labels, as Istio reads them.
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
const ZONES = { 'west-1': ['us-west', 'zone1'], 'west-2': ['us-west', 'zone2'], 'east-1': ['us-east', 'zone1'] } as const;
type Zone = keyof typeof ZONES;
const hits: Record<Zone, number> = { 'west-1': 0, 'west-2': 0, 'east-1': 0 };
const failing = new Set<Zone>();

const topology = (zone: Zone) => ['--label', `topology.kubernetes.io/region=${ZONES[zone][0]}`, '--label', `topology.kubernetes.io/zone=${ZONES[zone][1]}`];
const res = (kind: string, spec: object) => checkResource({ apiVersion: 'networking.istio.io/v1', kind, metadata: { name: 'reviews' }, spec }, 'test');

before(async () => {
  cp = await startControlPlane({ dataDir: tmpDir('locality'), adminPort: 0, xdsPort: 0, heartbeatMs: 2000 });
  cp.store.apply([
    res('VirtualService', { hosts: ['reviews'], http: [{ retries: { attempts: 0 }, route: [{ destination: { host: 'reviews' } }] }] }),
    res('DestinationRule', { host: 'reviews', trafficPolicy: { outlierDetection: { consecutive5xxErrors: 2, interval: '1s', baseEjectionTime: '60s', maxEjectionPercent: 100 } } }),
  ]);
  for (const zone of Object.keys(ZONES) as Zone[]) {
    const app = http.createServer((_req, res) => {
      hits[zone]++;
      res.statusCode = failing.has(zone) ? 503 : 200;
      res.end(zone);
    });
    apps.push(app);
    const appPort = await listen(app);
    sidecars.push(await spawnSidecar(cp, ['--workload', `reviews-${zone}`, '--service', 'reviews', ...topology(zone), '--inbound-port', String(await freePort()), '--app-port', String(appPort)]));
  }
  outbound = await freePort();
  sidecars.push(await spawnSidecar(cp, ['--workload', 'client', ...topology('west-1'), '--outbound-port', String(outbound)]));
});

after(async () => {
  await stopMesh(sidecars, apps, cp);
});

const agent = new Agent({ connections: 8 });
const get = async () => {
  const r = await request(`http://127.0.0.1:${outbound}/`, { headers: { host: 'reviews' }, dispatcher: agent });
  return { status: r.statusCode, body: await r.body.text() };
};
const count = async (n: number) => {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const r = await get();
    out[r.body] = (out[r.body] ?? 0) + 1;
  }
  return out;
};

test('locality failover: the client\'s own zone takes all its traffic, then the same region\'s other zone when it fails, never the other region first', async (t) => {
  // All three endpoints in the client's config: until then some requests may go nowhere else anyway.
  await waitFor('the client reaches reviews', async () => (await get()).status === 200, 15_000);
  const local = await count(100);
  t.diagnostic(`healthy: ${JSON.stringify(local)}`);
  assert.deepEqual(local, { 'west-1': 100 });

  failing.add('west-1');
  // Two 503s in a row eject it (consecutive5xxErrors: 2); from then on zone2 answers.
  await waitFor('west-1 ejected: 10 answers in a row from elsewhere', async () => {
    for (let i = 0; i < 10; i++) if ((await get()).body === 'west-1') return false;
    return true;
  }, 15_000);
  const eastBefore = hits['east-1'];
  const after = await count(100);
  t.diagnostic(`west-1 ejected: ${JSON.stringify(after)}`);
  assert.deepEqual(after, { 'west-2': 100 });
  assert.equal(hits['east-1'], eastBefore, 'the other region got nothing while the region had a healthy zone');
});

test('retryRemoteLocalities: every second try leaves out the localities tried, so requests that fail in the whole region are answered from the other', async (t) => {
  failing.clear();
  // A subset of every endpoint: a cluster of its own, with no ejections from the test before, and
  // outlier detection that ejects nothing (so that only a retry that leaves the region's
  // priorities can reach us-east). The route marks its responses, to know the client has it.
  cp.store.apply([
    res('DestinationRule', { host: 'reviews', subsets: [{ name: 'all' }], trafficPolicy: { outlierDetection: { consecutive5xxErrors: 1000, interval: '1s', baseEjectionTime: '1s' } } }),
    res('VirtualService', {
      hosts: ['reviews'],
      http: [{ retries: { attempts: 4, retryOn: '5xx', retryRemoteLocalities: true }, headers: { response: { set: { 'x-route': 'remote-localities' } } }, route: [{ destination: { host: 'reviews', subset: 'all' } }] }],
    }),
  ]);
  await waitFor('the client has the new route', async () => {
    const r = await request(`http://127.0.0.1:${outbound}/`, { headers: { host: 'reviews' }, dispatcher: agent });
    await r.body.text();
    return r.headers['x-route'] === 'remote-localities';
  }, 15_000);
  failing.add('west-1');
  failing.add('west-2');
  // 15 requests, 4 retries each (zone1 twice, zone2 twice, then us-east): within the cluster's
  // retry budget (10 a second over 10 s).
  const got = await count(15);
  t.diagnostic(`both us-west zones failing, retries with retryRemoteLocalities: ${JSON.stringify(got)}`);
  assert.deepEqual(got, { 'east-1': 15 });
});
