// ServiceEntry, WorkloadEntry and Sidecar through a real sidecar process: local servers outside
// the mesh stand in for external services. A STATIC entry reaches its endpoints with the
// VirtualService's policy applied; a DNS entry resolves its endpoint's name; a WorkloadEntry
// selected by an entry is one of its endpoints; a host the mesh does not know passes through
// (ALLOW_ANY, Istio's default) to where the app asked, as an HTTP_PROXY client sends it; and a
// Sidecar with REGISTRY_ONLY blocks exactly those hosts, with 502 saying why.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { Agent, ProxyAgent, request } from 'undici';
import { checkResource } from '../../src/api/index.ts';
import { type ControlPlane, startControlPlane } from '../../src/control/control-plane.ts';
import { freePort } from '../../src/util/net.ts';
import { tmpDir, waitFor } from '../helpers.ts';
import { type SidecarProc, listen, spawnSidecar, stopMesh } from '../proxy/mesh.ts';

let cp: ControlPlane;
let outbound = 0;
const sidecars: SidecarProc[] = [];
const servers: http.Server[] = [];
/** Local servers outside the mesh: each answers its name and the header x-seen it got. */
const port: Record<'a' | 'b' | 'c' | 'd', number> = { a: 0, b: 0, c: 0, d: 0 };

const res = (kind: string, name: string, spec: object) => checkResource({ apiVersion: 'networking.istio.io/v1', kind, metadata: { name }, spec }, 'test');

before(async () => {
  cp = await startControlPlane({ dataDir: tmpDir('serviceentry'), adminPort: 0, xdsPort: 0, heartbeatMs: 2000 });
  for (const name of Object.keys(port) as (keyof typeof port)[]) {
    const s = http.createServer((req, r) => r.end(`${name} ${req.headers['x-seen'] ?? '-'} ${req.url}`));
    servers.push(s);
    port[name] = await listen(s);
  }
  outbound = await freePort();
  sidecars.push(await spawnSidecar(cp, ['--workload', 'client', '--outbound-port', String(outbound)]));
});

after(async () => {
  await stopMesh(sidecars, servers, cp);
});

const agent = new Agent({ connections: 4 });
async function get(host: string, path = '/') {
  const r = await request(`http://127.0.0.1:${outbound}${path}`, { headers: { host }, dispatcher: agent });
  return { status: r.statusCode, body: await r.body.text(), error: r.headers['x-weft-error'] as string | undefined };
}

test('ServiceEntry STATIC: its host reaches its endpoint, with the VirtualService for that host applied', async () => {
  cp.store.apply([
    res('ServiceEntry', 'api', { hosts: ['api.external.test'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'STATIC', endpoints: [{ address: '127.0.0.1', ports: { http: port.a } }] }),
    res('VirtualService', 'api', { hosts: ['api.external.test'], http: [{ headers: { request: { set: { 'x-seen': 'vs' } } }, route: [{ destination: { host: 'api.external.test' } }] }] }),
  ]);
  const r = await waitFor('the entry to route', async () => {
    const x = await get('api.external.test', '/v1');
    return x.status === 200 && x;
  });
  assert.equal(r.body, 'a vs /v1');
});

test("ServiceEntry DNS: the endpoint's name is resolved by the sidecar (localhost, through the system resolver)", async () => {
  cp.store.apply([res('ServiceEntry', 'dns', { hosts: ['dns.external.test'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'DNS', endpoints: [{ address: 'localhost', ports: { http: port.b } }] })]);
  const r = await waitFor('the DNS entry to route', async () => {
    const x = await get('dns.external.test');
    return x.status === 200 && x;
  });
  assert.equal(r.body, 'b - /');
});

test('ServiceEntry workloadSelector: a WorkloadEntry with its labels is an endpoint', async () => {
  cp.store.apply([
    res('ServiceEntry', 'vm', { hosts: ['vm.external.test'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'STATIC', workloadSelector: { labels: { app: 'vm' } } }),
    res('WorkloadEntry', 'vm-1', { address: '127.0.0.1', labels: { app: 'vm' }, ports: { http: port.d } }),
  ]);
  const r = await waitFor('the WorkloadEntry to be an endpoint', async () => {
    const x = await get('vm.external.test');
    return x.status === 200 && x;
  });
  assert.equal(r.body, 'd - /');
});

test('ALLOW_ANY (the default): an app using the sidecar as its HTTP proxy reaches a server the mesh does not know', async () => {
  // What an app run under `weft run` does: HTTP_PROXY points at the sidecar, and requests carry absolute URIs.
  const viaProxy = new ProxyAgent(`http://127.0.0.1:${outbound}`);
  try {
    const r = await request(`http://127.0.0.1:${port.c}/outside`, { dispatcher: viaProxy });
    assert.equal(r.statusCode, 200);
    assert.equal(await r.body.text(), 'c - /outside');
  } finally {
    await viaProxy.close();
  }
});

test('Sidecar REGISTRY_ONLY: unknown hosts get 502 saying why (CONNECT too); ServiceEntry hosts still work', async () => {
  cp.store.apply([res('Sidecar', 'default', { outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } })]);
  const blocked = await waitFor('the policy to apply', async () => {
    const x = await get(`127.0.0.1:${port.c}`);
    return x.status === 502 && x;
  });
  assert.match(blocked.body, /not a service of the mesh.*outbound traffic policy of Sidecar default\/default is REGISTRY_ONLY/);
  const connect = await new Promise<string>((resolve, reject) => {
    const s = net.connect(outbound, '127.0.0.1', () => s.write(`CONNECT 127.0.0.1:${port.c} HTTP/1.1\r\nHost: 127.0.0.1:${port.c}\r\n\r\n`));
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('close', () => resolve(got));
    s.on('error', reject);
  });
  assert.match(connect, /^HTTP\/1\.1 502 /);
  assert.equal((await get('api.external.test')).body, 'a vs /');
  cp.store.delete({ kind: 'Sidecar', namespace: 'default', name: 'default' });
  await waitFor('passthrough again', async () => (await get(`127.0.0.1:${port.c}`)).status === 200);
});

test('ServiceEntry endpoint weights: endpoints weighted 3 and 1 share the requests 3 to 1', async (t) => {
  cp.store.apply([
    res('ServiceEntry', 'weighted', {
      hosts: ['weighted.external.test'],
      ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
      resolution: 'STATIC',
      endpoints: [{ address: '127.0.0.1', ports: { http: port.c }, weight: 3 }, { address: '127.0.0.1', ports: { http: port.d }, weight: 1 }],
    }),
  ]);
  await waitFor('the weighted entry to route', async () => (await get('weighted.external.test')).status === 200);
  const counts = { c: 0, d: 0 };
  for (let i = 0; i < 400; i++) counts[(await get('weighted.external.test')).body[0] as 'c' | 'd']++;
  t.diagnostic(`400 requests: ${counts.c} to the endpoint weighted 3, ${counts.d} to the one weighted 1`);
  // 300 expected; equal shares would give 200.
  assert.ok(counts.c >= 250 && counts.c <= 350, JSON.stringify(counts));
});

test('DestinationRule loadBalancer PASSTHROUGH: a request goes where it names (the original destination), not to the entry\'s endpoints', async () => {
  // The client calls the entry by its address (as an app calls a VIP), which is server c's on
  // its port; the entry's endpoint is server d.
  const host = `127.0.0.1:${port.c}`;
  cp.store.apply([
    res('ServiceEntry', 'local', { hosts: ['passthrough.external.test'], addresses: ['127.0.0.1'], ports: [{ number: port.c, name: 'http', protocol: 'HTTP' }], resolution: 'STATIC', endpoints: [{ address: '127.0.0.1', ports: { http: port.d } }] }),
  ]);
  await waitFor('the entry balances over its endpoint', async () => (await get(host)).body.startsWith('d '));
  cp.store.apply([res('DestinationRule', 'local', { host: 'passthrough.external.test', trafficPolicy: { loadBalancer: { simple: 'PASSTHROUGH' } } })]);
  const r = await waitFor('PASSTHROUGH: to where the request names', async () => {
    const x = await get(host);
    return x.body.startsWith('c ') && x;
  });
  assert.equal(r.status, 200);
  for (let i = 0; i < 10; i++) assert.ok((await get(host)).body.startsWith('c '));
});
