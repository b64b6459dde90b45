// DestinationRule traffic policies through real sidecars: outlier detection ejects a failing
// endpoint and brings it back, a connection-pool overflow is a 503 naming the limit, connection
// limits hold across a cluster's endpoints, h2UpgradePolicy sends HTTP/2 between sidecars, and
// loadBalancer LEAST_REQUEST sends new requests away from a busy endpoint.
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
const hits = { good: 0, bad: 0 };
let badFails = true;
const held: http.ServerResponse[] = [];

const dr = (trafficPolicy: object) => checkResource({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'svc' }, spec: { host: 'svc', trafficPolicy } }, 'test');
const vs = checkResource({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'svc' }, spec: { hosts: ['svc'], http: [{ retries: { attempts: 0 }, route: [{ destination: { host: 'svc' } }] }] } }, 'test');

const poolRule = checkResource(
  { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'pool' }, spec: { host: 'pool', trafficPolicy: { connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } } } } },
  'test',
);
/** Two endpoints, two connections in all (Envoy's limits are per cluster), one request waiting. */
const duoRule = (http: object = {}) =>
  checkResource({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'duo' }, spec: { host: 'duo', trafficPolicy: { connectionPool: { tcp: { maxConnections: 2 }, http: { http1MaxPendingRequests: 1, ...http } } } } }, 'test');
const duoHeld: http.ServerResponse[] = [];
let client: SidecarProc;

before(async () => {
  cp = await startControlPlane({ dataDir: tmpDir('policy'), adminPort: 0, xdsPort: 0, heartbeatMs: 2000 });
  // The pool service's limits are in place before any connection to it exists (a limit bounds new
  // connections; ones already open stay in use, as in Envoy).
  cp.store.apply([vs, poolRule, duoRule()]);
  const poolApp = http.createServer((req, res) => (req.url === '/hold' ? void held.push(res) : res.end('pool')));
  apps.push(poolApp);
  const poolAppPort = await listen(poolApp);
  sidecars.push(await spawnSidecar(cp, ['--workload', 'pool-1', '--service', 'pool', '--inbound-port', String(await freePort()), '--app-port', String(poolAppPort)]));
  for (const which of ['good', 'bad'] as const) {
    const app = http.createServer((req, res) => {
      hits[which]++;
      res.statusCode = which === 'bad' && badFails ? 503 : 200;
      res.end(which);
    });
    apps.push(app);
    const appPort = await listen(app);
    sidecars.push(await spawnSidecar(cp, ['--workload', `svc-${which}`, '--service', 'svc', '--inbound-port', String(await freePort()), '--app-port', String(appPort)]));
  }
  for (const i of [1, 2]) {
    const app = http.createServer((req, res) => (req.url === '/hold' ? void duoHeld.push(res) : res.end(`duo-${i}`)));
    apps.push(app);
    const appPort = await listen(app);
    sidecars.push(await spawnSidecar(cp, ['--workload', `duo-${i}`, '--service', 'duo', '--inbound-port', String(await freePort()), '--app-port', String(appPort)]));
  }
  outbound = await freePort();
  client = await spawnSidecar(cp, ['--workload', 'client', '--outbound-port', String(outbound)]);
  sidecars.push(client);
});

after(async () => {
  for (const r of [...held, ...duoHeld]) r.end();
  await stopMesh(sidecars, apps, cp);
});

const agent = new Agent({ connections: 16 });
const get = async (path = '/', host = 'svc') => {
  const r = await request(`http://127.0.0.1:${outbound}${path}`, { headers: { host }, dispatcher: agent });
  return { status: r.statusCode, body: await r.body.text(), error: r.headers['x-weft-error'] as string | undefined };
};

test('outlier detection ejects an endpoint after consecutive 5xx, and sends it traffic again after baseEjectionTime', async (t) => {
  cp.store.apply([dr({ outlierDetection: { consecutive5xxErrors: 3, interval: '1s', baseEjectionTime: '2s', maxEjectionPercent: 50 } })]);
  // Both endpoints are in the client's config once each has answered.
  await waitFor('both endpoints reached', async () => {
    await get();
    return hits.good > 0 && hits.bad > 0;
  }, 15_000);
  await waitFor('the bad endpoint ejected: 20 answers in a row from the good one', async () => {
    for (let i = 0; i < 20; i++) if ((await get()).body !== 'good') return false;
    return true;
  }, 15_000);
  const ejectedAt = performance.now();
  const before = hits.bad;
  for (let i = 0; i < 50; i++) assert.equal((await get()).body, 'good');
  assert.equal(hits.bad, before, 'no request reached the ejected endpoint');
  badFails = false; // it recovers; after the ejection time it gets traffic again
  await waitFor('traffic to the recovered endpoint again', async () => (await get()).body === 'bad', 15_000);
  const back = performance.now() - ejectedAt;
  t.diagnostic(`ejected, then back after ${back.toFixed(0)} ms (baseEjectionTime 2 s)`);
  assert.ok(back >= 1000, `back after ${back} ms`);
});

test('a connection-pool overflow is a 503 that names the limit and the cluster', async () => {
  await waitFor('the pool service in the client sidecar', async () => (await get('/', 'pool')).body === 'pool');
  // One connection busy with a held request, one request waiting: the rest overflow at once.
  const pending = Array.from({ length: 4 }, () => get('/hold', 'pool'));
  const overflow = await Promise.race(pending.map((p) => p.then((r) => (r.error === 'overflow' ? r : new Promise<never>(() => {})))));
  assert.equal(overflow.status, 503);
  assert.match(overflow.body, /cluster outbound\|80\|\|pool\.default\.svc\.cluster\.local: .*the limits are max_connections 1 and max_pending_requests 1/);
  // Release each held request as it arrives (the waiting one comes after the first), until all are answered.
  let settled = 0;
  for (const p of pending) void p.finally(() => settled++);
  await waitFor('every request answered', async () => {
    while (held.length) held.shift()!.end('held');
    return settled === pending.length;
  });
  const results = await Promise.all(pending);
  const statuses = results.map((r) => r.status).sort();
  assert.ok(statuses.filter((x) => x === 200).length >= 1 && statuses.filter((x) => x === 503).length >= 1, String(statuses));
});

/** The client sidecar's pools to a cluster, from its /stats. */
const poolsOf = async (cluster: string) => {
  const r = await request(`${client.admin}/stats`);
  const stats = (await r.body.json()) as { pools: { cluster?: string; busy: number; idle: number; connecting: number; pending: number; streams?: number }[] };
  return stats.pools.filter((p) => p.cluster === cluster);
};

test("connection limits hold across the cluster's endpoints: two endpoints, maxConnections 2, one waiting, the next is a 503; then h2UpgradePolicy UPGRADE makes the sidecars talk HTTP/2", async () => {
  const DUO = 'outbound|80||duo.default.svc.cluster.local';
  await waitFor('both duo endpoints reached', async () => {
    const seen = new Set(await Promise.all([get('/', 'duo'), get('/', 'duo')].map((p) => p.then((r) => r.body))));
    return seen.has('duo-1') && seen.has('duo-2');
  }, 15_000);
  // The two connections those made are idle now: two held requests take them, one per endpoint.
  const pending = [get('/hold', 'duo'), get('/hold', 'duo')];
  await waitFor('a request held at each endpoint', async () => duoHeld.length === 2);
  pending.push(get('/hold', 'duo'));
  await waitFor('the third request waiting in the client sidecar', async () => (await poolsOf(DUO)).reduce((n, p) => n + p.pending, 0) === 1);
  const over = await get('/hold', 'duo');
  assert.equal(over.status, 503);
  assert.equal(over.error, 'overflow');
  assert.match(over.body, /too many requests to cluster outbound\|80\|\|duo\.default\.svc\.cluster\.local: 2 connections open to the cluster's endpoints .*the limits are max_connections 2 and max_pending_requests 1/);
  const pools = await poolsOf(DUO);
  assert.equal(pools.reduce((n, p) => n + p.busy + p.idle + p.connecting, 0), 2, `two connections in all: ${JSON.stringify(pools)}`);
  let settled = 0;
  for (const p of pending) void p.finally(() => settled++);
  await waitFor('every held request answered', async () => {
    while (duoHeld.length) duoHeld.shift()!.end('held');
    return settled === pending.length;
  });
  assert.deepEqual((await Promise.all(pending)).map((r) => r.status), [200, 200, 200]);

  cp.store.apply([duoRule({ h2UpgradePolicy: 'UPGRADE' })]);
  await waitFor('an HTTP/2 pool to duo in the client sidecar', async () => {
    assert.match((await get('/', 'duo')).body, /^duo-[12]$/);
    return (await poolsOf(DUO)).some((p) => p.streams !== undefined);
  }, 15_000);
});

test('consistentHash on a header: each user sticks to one endpoint, and users spread over both', async () => {
  badFails = false;
  cp.store.apply([dr({ loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } })]);
  const as = async (user: string) => {
    const r = await request(`http://127.0.0.1:${outbound}/`, { headers: { host: 'svc', 'x-user': user }, dispatcher: agent });
    return r.body.text();
  };
  await waitFor('the ring in the client sidecar: one user, ten answers from one endpoint', async () => {
    const got = await Promise.all(Array.from({ length: 10 }, () => as('ada')));
    return new Set(got).size === 1;
  }, 15_000);
  const seen = new Map<string, Set<string>>();
  for (let u = 0; u < 20; u++) {
    const user = `user-${u}`;
    seen.set(user, new Set(await Promise.all(Array.from({ length: 5 }, () => as(user)))));
  }
  assert.ok([...seen.values()].every((s) => s.size === 1), 'every user always reached the same endpoint');
  assert.deepEqual(new Set([...seen.values()].flatMap((s) => [...s])), new Set(['good', 'bad']), 'users spread over both endpoints');
});

test('consistentHash useSourceIp: every request of one client goes to one endpoint (its app is its source), as in Istio', async (t) => {
  badFails = false;
  cp.store.apply([dr({ loadBalancer: { consistentHash: { useSourceIp: true } } })]);
  // Under round robin, 10 requests in a row reach both endpoints; hashed on the source, one.
  await waitFor('the source-IP ring in the client sidecar: 10 answers from one endpoint', async () => {
    const got = await Promise.all(Array.from({ length: 10 }, () => get()));
    return new Set(got.map((r) => r.body)).size === 1;
  }, 15_000);
  const got = new Set((await Promise.all(Array.from({ length: 40 }, () => get()))).map((r) => r.body));
  t.diagnostic(`40 requests reached: ${[...got].join(', ')}`);
  assert.equal(got.size, 1);
});

test('consistentHash httpCookie with attributes: the cookie the sidecar sets carries them', async () => {
  cp.store.apply([dr({ loadBalancer: { consistentHash: { httpCookie: { name: 'sticky', ttl: '60s', attributes: [{ name: 'SameSite', value: 'Strict' }, { name: 'Secure' }] } } } })]);
  await waitFor('a Set-Cookie with the attributes', async () => {
    const r = await request(`http://127.0.0.1:${outbound}/`, { headers: { host: 'svc' }, dispatcher: agent });
    await r.body.text();
    const c = String(r.headers['set-cookie'] ?? '');
    return /^sticky="[0-9a-f]+"; Max-Age=60; SameSite=Strict; Secure; HttpOnly$/.test(c);
  }, 15_000);
});
