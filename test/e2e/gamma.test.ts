// The Gateway API's mesh routes through real sidecar processes: an HTTPRoute whose parent is the
// Service `echo` splits its traffic over the Services echo-v1 and echo-v2 by weight, sends a
// header match to v2 with a rewritten path and an added header, and a route deleted gives the
// Service back its own endpoints.
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
let outbound = 0;
const sidecars: SidecarProc[] = [];
const apps: http.Server[] = [];

before(async () => {
  cp = await startControlPlane({ dataDir: tmpDir('gamma'), adminPort: 0, xdsPort: 0, heartbeatMs: 2000 });
  for (const name of ['echo', 'echo-v1', 'echo-v2']) {
    const app = http.createServer((req, res) => res.end(`${name} ${req.url} ${req.headers['x-route'] ?? '-'}`));
    apps.push(app);
    const appPort = await listen(app);
    sidecars.push(await spawnSidecar(cp, ['--workload', name, '--service', name, '--inbound-port', String(await freePort()), '--app-port', String(appPort)]));
  }
  outbound = await freePort();
  sidecars.push(await spawnSidecar(cp, ['--workload', 'client', '--outbound-port', String(outbound)]));
});

after(async () => {
  await stopMesh(sidecars, apps, cp);
});

const agent = new Agent({ connections: 8 });
async function get(path: string, headers: Record<string, string> = {}) {
  const r = await request(`http://127.0.0.1:${outbound}${path}`, { headers: { host: 'echo', ...headers }, dispatcher: agent });
  return { status: r.statusCode, body: await r.body.text() };
}

const route = checkResource(
  {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'echo' },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 80 }],
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: '/beta' }, headers: [{ name: 'x-beta', value: 'yes' }] }],
          filters: [
            { type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/v2' } } },
            { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-route', value: 'beta' }] } },
          ],
          backendRefs: [{ name: 'echo-v2', port: 80 }],
        },
        { backendRefs: [{ name: 'echo-v1', port: 80, weight: 1 }, { name: 'echo-v2', port: 80, weight: 1 }] },
      ],
    },
  },
  'test',
);

test('an HTTPRoute on a Service: a header match with a rewrite and a header, and a 50/50 split of the rest', async (t) => {
  cp.store.apply([route]);
  const beta = await waitFor('the route to apply', async () => {
    const x = await get('/beta/items?q=1', { 'x-beta': 'yes' });
    return x.body.startsWith('echo-v2 /v2/items') && x;
  });
  assert.equal(beta.body, 'echo-v2 /v2/items?q=1 beta');
  const counts: Record<string, number> = {};
  for (let i = 0; i < 400; i++) {
    const r = await get('/x');
    assert.equal(r.status, 200);
    const who = r.body.split(' ')[0];
    counts[who] = (counts[who] ?? 0) + 1;
  }
  t.diagnostic(`400 requests: ${JSON.stringify(counts)}`);
  assert.equal(counts.echo ?? 0, 0, 'the parent Service itself gets nothing while the route splits its traffic');
  // 50/50 over 400 requests: far outside 120-280 would be a broken split, not chance.
  assert.ok(counts['echo-v1'] > 120 && counts['echo-v2'] > 120, JSON.stringify(counts));
});

test('the route deleted: the Service gets its traffic again', async () => {
  cp.store.delete({ kind: 'HTTPRoute', namespace: 'default', name: 'echo' });
  await waitFor('the Service back', async () => (await get('/x')).body.startsWith('echo /x'));
});

test('an HTTPRoute CORS filter: the client sidecar answers an allowed origin\'s preflight itself, and marks its requests', async () => {
  cp.store.apply([
    checkResource(
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name: 'echo' },
        spec: {
          parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 80 }],
          rules: [{ filters: [{ type: 'CORS', cors: { allowOrigins: ['https://*.shop.example'], allowMethods: ['GET', 'PUT'], maxAge: 60 } }], backendRefs: [{ name: 'echo-v1', port: 80 }] }],
        },
      },
      'test',
    ),
  ]);
  const preflight = async () => {
    const r = await request(`http://127.0.0.1:${outbound}/cart`, {
      method: 'OPTIONS',
      headers: { host: 'echo', origin: 'https://eu.shop.example', 'access-control-request-method': 'PUT' },
      dispatcher: agent,
    });
    const body = await r.body.text();
    return { status: r.statusCode, headers: r.headers, body };
  };
  const p = await waitFor('the CORS filter in the client sidecar', async () => {
    const x = await preflight();
    return x.headers['access-control-allow-origin'] !== undefined && x;
  });
  assert.equal(p.headers['access-control-allow-origin'], 'https://eu.shop.example');
  assert.equal(p.headers['access-control-allow-methods'], 'GET,PUT');
  assert.equal(p.headers['access-control-max-age'], '60');
  assert.ok(!p.body.startsWith('echo'), 'the preflight never reached the app');
  const r = await request(`http://127.0.0.1:${outbound}/cart`, { headers: { host: 'echo', origin: 'https://eu.shop.example' }, dispatcher: agent });
  assert.equal((await r.body.text()).split(' ')[0], 'echo-v1');
  assert.equal(r.headers['access-control-allow-origin'], 'https://eu.shop.example');
});
