// VirtualService delegation through real sidecars: a root VirtualService in namespace default
// hands /reviews to a delegate in namespace shop, whose short names mean shop's services. Changing
// the delegate (through the admin API, then the store) moves traffic; a delegate no longer exported
// to the root's namespace leaves the root route out, and `weft analyze` says so.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Agent, request } from 'undici';
import { checkResource } from '../../src/api/index.ts';
import { type ControlPlane, startControlPlane } from '../../src/control/control-plane.ts';
import { freePort } from '../../src/util/net.ts';
import { tmpDir, waitFor, weft } from '../helpers.ts';
import { type SidecarProc, listen, spawnSidecar, stopMesh } from '../proxy/mesh.ts';

let cp: ControlPlane;
const apps: http.Server[] = [];
const sidecars: SidecarProc[] = [];
let outbound = 0;
const agent = new Agent({ connections: 8 });

const REVIEWS = 'reviews.default.svc.cluster.local';
const vs = (name: string, namespace: string, spec: object) => ({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace }, spec });
const root = vs('reviews', 'default', {
  hosts: ['reviews'],
  http: [
    { name: 'reviews', match: [{ uri: { prefix: '/reviews' } }], delegate: { name: 'reviews-routes', namespace: 'shop' }, headers: { response: { set: { 'x-root': 'reviews' } } } },
    { name: 'rest', route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
  ],
});
/** The delegate: /reviews/v2 to subset v2 of reviews.default, the rest of /reviews to `rest` ("reviews" there is shop's). */
const delegate = (rest: object, exportTo = ['default']) =>
  vs('reviews-routes', 'shop', {
    exportTo,
    http: [
      { name: 'v2', match: [{ uri: { prefix: '/reviews/v2' } }], route: [{ destination: { host: REVIEWS, subset: 'v2' } }] },
      { name: 'rest', route: [{ destination: rest }] },
    ],
  });

before(async () => {
  cp = await startControlPlane({ dataDir: tmpDir('delegation'), adminPort: 0, xdsPort: 0, heartbeatMs: 2000 });
  cp.store.apply(
    [
      { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews' }, spec: { host: 'reviews', subsets: ['v1', 'v2'].map((v) => ({ name: v, labels: { version: v } })) } },
      root,
      delegate({ host: 'reviews' }),
    ].map((r) => checkResource(r, 'test')),
  );
  const serve = async (body: string, args: string[]) => {
    const app = http.createServer((_req, res) => res.end(body));
    apps.push(app);
    const appPort = await listen(app);
    sidecars.push(await spawnSidecar(cp, [...args, '--inbound-port', String(await freePort()), '--app-port', String(appPort)]));
  };
  for (const v of ['v1', 'v2']) await serve(v, ['--workload', `reviews-${v}`, '--service', 'reviews', '--label', `version=${v}`]);
  await serve('shop', ['--workload', 'reviews-shop', '--namespace', 'shop', '--service', 'reviews']);
  outbound = await freePort();
  sidecars.push(await spawnSidecar(cp, ['--workload', 'client', '--outbound-port', String(outbound)]));
});

after(async () => {
  await agent.close();
  await stopMesh(sidecars, apps, cp);
});

/** What the client's app gets for a path of http://reviews: the body, and the root route's response header. */
async function get(path: string): Promise<string> {
  const r = await request(`http://127.0.0.1:${outbound}${path}`, { headers: { host: 'reviews' }, dispatcher: agent });
  const body = await r.body.text();
  return r.statusCode === 200 ? `${body}${r.headers['x-root'] ? ' (x-root)' : ''}` : `${r.statusCode} ${r.headers['x-weft-error'] ?? ''}`;
}

/** Waits until every path gets what `want` says, and says what they got if they never do. */
async function expect(what: string, want: Record<string, string>): Promise<void> {
  let got: Record<string, string> = {};
  await waitFor(what, async () => {
    got = Object.fromEntries(await Promise.all(Object.keys(want).map(async (p) => [p, await get(p)] as const)));
    return JSON.stringify(got) === JSON.stringify(want);
  }, 15_000).catch((e) => assert.fail(`${(e as Error).message}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`));
}

test('a root route takes its delegate\'s routes: /reviews/v2 to subset v2, the rest of /reviews to shop\'s reviews (a short name in the delegate), the root\'s response header on both', async () => {
  await expect('the merged routes in the client sidecar', { '/reviews/v2/1': 'v2 (x-root)', '/reviews/1': 'shop (x-root)', '/other': 'v1' });
});

test('changing the delegate through the admin API moves the root\'s traffic; the root is untouched', async () => {
  const r = await request(`${cp.adminUrl}/api/v1/apply`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${cp.adminToken}` }, body: JSON.stringify([delegate({ host: REVIEWS, subset: 'v2' })]) });
  assert.equal(r.statusCode, 200, await r.body.text());
  await expect('the rest of /reviews on subset v2', { '/reviews/v2/1': 'v2 (x-root)', '/reviews/1': 'v2 (x-root)', '/other': 'v1' });
});

test('a delegate no longer exported to the root\'s namespace: the root route is left out (its requests go to the next route), and weft analyze says why', async () => {
  cp.store.apply([checkResource(delegate({ host: REVIEWS, subset: 'v2' }, ['.']), 'test')]);
  await expect('/reviews on the root\'s next route', { '/reviews/v2/1': 'v1', '/reviews/1': 'v1', '/other': 'v1' });
  const a = await weft(['analyze', '--admin', cp.adminUrl]);
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stdout, /Warning \[WEFT0003\] \(VirtualService default\/reviews\) spec\.http\[0\]\.delegate: VirtualService shop\/reviews-routes is not exported to namespace default/);
  // Exported again: back on the delegate's routes.
  cp.store.apply([checkResource(delegate({ host: 'reviews' }, ['*']), 'test')]);
  await expect('the delegate\'s routes again', { '/reviews/v2/1': 'v2 (x-root)', '/reviews/1': 'shop (x-root)', '/other': 'v1' });
});
