// Golden signals and tap through real sidecar processes and the real CLI: an in-process control
// plane scraping every 300 ms; httpbin (namespace foo, service account httpbin) answers 500 on
// /fail and 200 otherwise; plain (foo, app plain) is the same app behind a PeerAuthentication
// DISABLE; sleep (foo) calls both through its sidecar. What `weft stat`, `weft top` and `weft tap`
// print must agree with the requests sent.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import readline from 'node:readline';
import { request } from 'undici';
import { AuthzMesh, call } from '../fixtures/authz-mesh.ts';
import { CLI, ROOT, waitFor, weft } from '../helpers.ts';
import { stopProc } from '../proxy/mesh.ts';

const mesh = new AuthzMesh();
let sleep = 0;
let env: NodeJS.ProcessEnv;
let cpStarted = 0;
let plainApp = 0;
const SLEEP_ID = 'spiffe://cluster.local/ns/foo/sa/sleep';
const HTTPBIN_ID = 'spiffe://cluster.local/ns/foo/sa/httpbin';
const SERVICE = 'httpbin.foo.svc.cluster.local';

before(async () => {
  cpStarted = Date.now();
  await mesh.start('signals', undefined, { scrapeIntervalMs: 300 });
  env = { WEFT_ADMIN: mesh.cp.adminUrl, WEFT_ADMIN_TOKEN: mesh.cp.adminToken, WEFT_HOME: '/nonexistent' };
  // /fail answers 500 after 20 ms; everything else 200 at once.
  const app = (name: string) => mesh.httpApp(name, (req, res) => {
    res.statusCode = req.url === '/fail' ? 500 : 200;
    setTimeout(() => res.end(`${name} ${req.url}`), req.url === '/fail' ? 20 : 0);
  });
  await mesh.workload({ name: 'httpbin-v1', namespace: 'foo', sa: 'httpbin', service: 'httpbin', labels: { app: 'httpbin' }, ports: [['http', 8000, await app('httpbin')]] });
  plainApp = await app('plain');
  await mesh.workload({ name: 'plain', namespace: 'foo', sa: 'plain', service: 'plain', labels: { app: 'plain' }, ports: [['http', 8000, plainApp]] });
  sleep = (await mesh.workload({ name: 'sleep', namespace: 'foo', sa: 'sleep', outbound: true })).outbound;
  for (const v of ['v1', 'v2']) await mesh.workload({ name: `reviews-${v}`, namespace: 'foo', sa: 'reviews', service: 'reviews', labels: { app: 'reviews', version: v }, ports: [['http', 9080, await app(`reviews-${v}`)]] });
  await mesh.apply([{ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'plain', namespace: 'foo' }, spec: { selector: { matchLabels: { app: 'plain' } }, mtls: { mode: 'DISABLE' } } }]);
  // Every sidecar scraped once: what they count from here on is seen.
  await waitFor('every sidecar scraped', async () => {
    const t = (await admin('/api/v1/signals/targets')).targets as { ok: boolean; error: string | null }[];
    return t.length === 5 && t.every((x) => x.ok) ? true : undefined;
  }, 20_000);
});
after(() => mesh.close());

async function admin(path: string): Promise<any> {
  const r = await request(`${mesh.cp.adminUrl}${path}`);
  return r.body.json();
}

async function stat(view: string, window = '15m'): Promise<any> {
  const r = await weft(['stat', view, '-o', 'json', '--window', window], env);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** The item named `name` of `weft stat VIEW -o json`, once it has counted `n` requests. */
async function itemOnce(view: string, name: string, n: number): Promise<any> {
  return waitFor(`${name} to count ${n} requests in weft stat ${view}`, async () => {
    const it = (await stat(view)).items.find((i: any) => i.name === name);
    if (it && it.requests > n) throw new Error(`${name} counted ${it.requests} requests, more than the ${n} sent`);
    return it?.requests === n ? it : undefined;
  }, 20_000, 200);
}

/** A sidecar's /stats, found by its workload name through the control plane's targets. */
async function sidecarStats(workload: string): Promise<any> {
  const t = (await admin('/api/v1/signals/targets')).targets.find((x: any) => x.workload === `foo/${workload}`);
  return (await request(t.url.replace('/stats/prometheus', '/stats'))).body.json();
}

/** Whether the sidecars report the duration histogram (Istio's istio_request_duration_milliseconds). */
async function histograms(): Promise<boolean> {
  const t = (await admin('/api/v1/signals/targets')).targets as { url: string }[];
  const text = await (await request(t[0]!.url)).body.text();
  return text.includes('istio_request_duration_milliseconds_bucket');
}

test('300 requests, 30 of them 500 after 20 ms: weft stat (workloads, services, edges) counts 300 with an error ratio of 0.1, mTLS share 1 and p95 at 10 ms or more; weft top --once agrees', async () => {
  const t0 = Date.now();
  for (let i = 0; i < 300; i++) {
    const a = await call(sleep, 'httpbin.foo:8000', i % 10 === 0 ? '/fail' : '/ok');
    assert.equal(a.status, i % 10 === 0 ? 500 : 200, a.body);
  }
  const sending = (Date.now() - t0) / 1000;
  const w = await itemOnce('workloads', 'foo/httpbin-v1', 300);
  assert.equal(w.errors, 30);
  assert.equal(w.errorRatio, 0.1);
  assert.deepEqual(w.mtls, { requests: 300, share: 1 });
  // The rate is the requests over the time the window covers: since the control plane started.
  const { window } = await stat('workloads');
  assert.ok(window.covered <= (Date.now() - cpStarted) / 1000 + 1 && window.covered >= sending, JSON.stringify(window));
  assert.ok(Math.abs(w.rps - 300 / window.covered) < 300 / window.covered / 2, `rps ${w.rps}, covered ${window.covered}`);
  // From istio_request_duration_milliseconds: the slowest 10% took 20 ms or more.
  assert.ok(await histograms(), 'the sidecars report the duration histogram');
  assert.ok(w.latencyMs.p50 > 0 && w.latencyMs.p50 <= w.latencyMs.p95 && w.latencyMs.p95 <= w.latencyMs.p99, JSON.stringify(w.latencyMs));
  assert.ok(w.latencyMs.p95 >= 10, `p95 ${w.latencyMs.p95}: 10% of the requests took 20 ms`);

  // The RED series: one point per scrape round, whose requests add up to the 300.
  const series = (await admin('/api/v1/signals/series?by=workload&name=foo/httpbin-v1')).items;
  assert.deepEqual(series.map((i: any) => i.name), ['foo/httpbin-v1']);
  assert.equal(series[0].points.reduce((n: number, p: any) => n + p.requests, 0), 300);
  assert.ok(series[0].points.every((p: any) => (p.requests === 0) === (p.errorRatio === null && p.latencyMs === null)), 'a round without requests has no ratio and no latency');

  const s = await itemOnce('services', SERVICE, 300);
  assert.equal(s.errorRatio, 0.1);
  const e = await itemOnce('edges', `foo/sleep -> ${SERVICE} (foo/httpbin-v1)`, 300);
  assert.deepEqual([e.source, e.destination, e.errors], [{ namespace: 'foo', workload: 'sleep' }, { service: SERVICE, namespace: 'foo', workload: 'httpbin-v1' }, 30]);
  assert.equal(e.mtls.requests, 0, 'edges are what the source reported: no mTLS share there');

  const top = await weft(['top', '--once', '--window', '15m'], env);
  assert.equal(top.code, 0, top.stderr);
  const row = top.stdout.split('\n').find((l) => l.startsWith('foo/httpbin-v1 '));
  assert.ok(row, top.stdout);
  const cells = row.trim().split(/\s+/);
  assert.deepEqual([cells[1], cells[3], cells[7]], ['300', '10.0%', '100.0%'], row);
  const table = await weft(['stat', 'edges', '--window', '15m'], env);
  assert.match(table.stdout, /^SOURCE\s+DESTINATION\s+REQUESTS\s+RPS\s+ERRORS\s+P50\s+P95\s+P99\s+MTLS$/m);
  assert.match(table.stdout, new RegExp(`^foo/sleep\\s+${SERVICE.replace(/\./g, '\\.')} \\(foo/httpbin-v1\\)\\s+300\\s`, 'm'));
});

test('mTLS share: 1 for the workload served over mutual TLS, 0 for the one whose PeerAuthentication says DISABLE', async () => {
  for (let i = 0; i < 20; i++) assert.equal((await call(sleep, 'plain.foo:8000', '/x')).status, 200);
  const p = await itemOnce('workloads', 'foo/plain', 20);
  assert.deepEqual(p.mtls, { requests: 20, share: 0 });
  const h = (await stat('workloads')).items.find((i: any) => i.name === 'foo/httpbin-v1');
  assert.equal(h.mtls.share, 1);
  // Over plain text the server cannot tell who called: the edge seen from the destination is from unknown.
  const bySource = await admin('/api/v1/signals?by=edge&reporter=destination&window=15m');
  assert.ok(bySource.items.some((i: any) => i.name === `unknown/unknown -> plain.foo.svc.cluster.local (foo/plain)` && i.requests === 20), JSON.stringify(bySource.items.map((i: any) => i.name)));
});

test("a VirtualService's observed split beside its weights: 80/20 over two subsets, 200 requests", async () => {
  await mesh.apply([
    { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews', namespace: 'foo' }, spec: { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] } },
    { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews', namespace: 'foo' }, spec: { hosts: ['reviews'], http: [{ name: 'split', route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 80 }, { destination: { host: 'reviews', subset: 'v2' }, weight: 20 }] }] } },
  ]);
  for (let i = 0; i < 200; i++) assert.equal((await call(sleep, 'reviews.foo:9080', '/r')).status, 200);
  const route = await waitFor('the split to count 200 requests', async () => {
    const vs = (await admin('/api/v1/signals/splits?window=15m')).items.find((i: any) => i.virtualService === 'foo/reviews');
    return vs?.routes[0]?.requests === 200 ? vs.routes[0] : undefined;
  }, 20_000, 200);
  const REVIEWS = 'reviews.foo.svc.cluster.local';
  assert.equal(route.route, 'split');
  assert.deepEqual(route.destinations.map((d: any) => [d.host, d.subset, d.weight, d.workloads]), [[REVIEWS, 'v1', 80, ['foo/reviews-v1']], [REVIEWS, 'v2', 20, ['foo/reviews-v2']]]);
  const [v1, v2] = route.destinations;
  assert.equal(v1.requests + v2.requests, 200);
  // 200 draws at 80%: 160 +- 5.7 (one standard deviation); these bounds are over five of them away.
  assert.ok(v1.observedShare > 0.6 && v1.observedShare < 0.95, `v1 got ${v1.observedShare}`);
});

test("a sidecar restarted: its new process's counters count from zero, and the workload's count goes on (n + 10 + 10, never more)", async () => {
  const count = async () => (await stat('workloads')).items.find((i: any) => i.name === 'foo/plain')?.requests ?? 0;
  const n0 = await count();
  for (let i = 0; i < 10; i++) assert.equal((await call(sleep, 'plain.foo:8000', '/before')).status, 200);
  await itemOnce('workloads', 'foo/plain', n0 + 10);
  const old = mesh.sidecars.findIndex((p) => p.stderr().includes('[plain sidecar]'));
  assert.ok(old >= 0);
  const [gone] = mesh.sidecars.splice(old, 1);
  await stopProc(gone!.proc);
  await mesh.workload({ name: 'plain', namespace: 'foo', sa: 'plain', service: 'plain', labels: { app: 'plain' }, ports: [['http', 8000, plainApp]] });
  await mesh.synced();
  // Sent at once, before or after the new sidecar's first scrape: counted either way, as its
  // process started after the control plane's.
  for (let i = 0; i < 10; i++) assert.equal((await call(sleep, 'plain.foo:8000', '/after')).status, 200);
  await itemOnce('workloads', 'foo/plain', n0 + 20);
});

test("weft tap shows requests as they happen, with both principals; without the admin token the control plane refuses tap, and the sidecar's own /tap refuses anyone without its token", async () => {
  const refused = await request(`${mesh.cp.adminUrl}/api/v1/tap/foo/httpbin-v1`);
  assert.equal(refused.statusCode, 401);
  assert.match((await refused.body.json() as { error: string }).error, /needs the admin token/);

  // The sidecar's /tap asks for a token only the control plane learned (over xDS): a local process
  // that can reach the admin port cannot tap it, nor find the token in /config_dump or the registry.
  const t = (await admin('/api/v1/signals/targets')).targets.find((x: any) => x.workload === 'foo/httpbin-v1');
  const direct = await request(t.url.replace('/stats/prometheus', '/tap'));
  assert.equal(direct.statusCode, 401);
  await direct.body.dump();
  const dump = await (await request(t.url.replace('/stats/prometheus', '/config_dump'))).body.json() as any;
  assert.equal(dump.node.metadata.TAP_TOKEN, '(redacted)');
  assert.ok(!JSON.stringify(await admin('/api/v1/endpoints')).includes('TAP_TOKEN') && !JSON.stringify(await admin('/api/v1/proxies')).includes('TAP_TOKEN'));

  const proc = spawn(process.execPath, [CLI, 'tap', 'httpbin-v1', '-n', 'foo'], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let err = '';
    proc.stderr!.on('data', (d) => (err += d));
    await waitFor('the tap to listen', async () => err.includes('tapping sidecar~'), 15_000);
    const lines: string[] = [];
    readline.createInterface({ input: proc.stdout! }).on('line', (l) => lines.push(l));
    for (let i = 1; i <= 3; i++) assert.equal((await call(sleep, 'httpbin.foo:8000', `/tapped-${i}`)).status, 200);
    await waitFor('3 tap lines', async () => lines.filter((l) => l.includes('/tapped-')).length === 3, 15_000);
    for (let i = 1; i <= 3; i++) {
      const l = lines.find((x) => x.includes(`/tapped-${i} `))!;
      assert.match(l, new RegExp(`^\\S+Z inbound +GET httpbin\\.foo:8000/tapped-${i} 200 [\\d.]+ms ${SLEEP_ID} -> ${HTTPBIN_ID}$`), l);
    }
    // Only requests of this workload: a request to plain is not shown.
    await call(sleep, 'plain.foo:8000', '/not-tapped');
    await call(sleep, 'httpbin.foo:8000', '/tapped-last');
    await waitFor('the last line', async () => lines.some((l) => l.includes('/tapped-last')), 15_000);
    assert.ok(!lines.some((l) => l.includes('/not-tapped')));
    assert.equal((await sidecarStats('httpbin-v1')).tap.listeners, 1);
  } finally {
    await stopProc(proc);
  }
  assert.equal(proc.exitCode, 0, 'Ctrl-C ends weft tap cleanly');
  // The control plane let go of the sidecar's tap, and the sidecar of its subscription.
  await waitFor("the sidecar's tap to have no listener", async () => (await sidecarStats('httpbin-v1')).tap.listeners === 0);
});

test('tap of a workload that is not connected names the ones that are', async () => {
  const r = await weft(['tap', 'nope', '-n', 'foo'], env);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no sidecar of workload foo\/nope is connected \(connected: foo\/httpbin-v1, foo\/plain, foo\/reviews-v1, foo\/reviews-v2, foo\/sleep\)/);
});

test('--help of stat, top and tap says what they show', async () => {
  for (const c of ['stat', 'top', 'tap']) {
    const r = await weft([c, '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, new RegExp(`^Usage: weft ${c} `));
  }
});
