// The issue's "Must show", end to end: `weft up examples/canary` as a real process tree (control
// plane, two hello versions and a client, each app and sidecar its own process), driven the way
// a user would: `weft exec`, `weft apply`, `weft get`, curl, kill.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'undici';
import { CLI, ROOT, type Up, alive, assertShare, lineMatching, loadThrough, sleep, startUp, tmpDir, waitFor, weft } from '../helpers.ts';

const V1 = 'Hello from MyBackendService! version=v1';
const V2 = 'Hello from MyBackendService! version=v2';
const URL_HELLO = 'http://my-backend-service/hello';
const V2_CLUSTER = 'outbound|80|v2|my-backend-service.default.svc.cluster.local';

async function json(url: string, init?: Parameters<typeof request>[1]): Promise<any> {
  const r = await request(url, init);
  return { status: r.statusCode, body: await r.body.json() };
}

/** The weights the sidecar at `admin` holds for my-backend-service, e.g. {v1: 90, v2: 10}. */
async function sidecarWeights(admin: string): Promise<Record<string, number> | undefined> {
  const dump = (await json(`${admin}/config_dump`)).body;
  const vh = dump.routes?.[0]?.virtual_hosts?.find((v: any) => v.name === 'my-backend-service.default.svc.cluster.local:80');
  const wc = vh?.routes?.[0]?.route?.weighted_clusters?.clusters;
  if (!wc) return undefined;
  return Object.fromEntries(wc.map((c: any) => [c.name.split('|')[2], c.weight?.value ?? c.weight]));
}

/**
 * Sends requests through the client's sidecar until one lands on subset v2 (10% of them): with v2
 * unavailable, that one must be the sidecar's own 503 naming the v2 cluster; all others are v1's.
 */
async function expectV2Unavailable(outbound: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const r = await request(`http://${outbound}/hello`, { headers: { host: 'my-backend-service' } });
    const body = await r.body.text();
    if (r.statusCode !== 503) {
      assert.equal(body.trim(), V1);
      continue;
    }
    assert.equal(r.headers['x-weft-error'], 'no_healthy_endpoint');
    assert.ok(body.includes(`no healthy endpoint in cluster ${V2_CLUSTER}`), body);
    return;
  }
  assert.fail('200 requests and none was routed to subset v2');
}

async function storedWeights(env: NodeJS.ProcessEnv): Promise<{ weights: number[]; text: string }> {
  const r = await weft(['get', 'vs', 'my-backend-service', '-o', 'json'], env);
  assert.equal(r.code, 0, r.stderr);
  const vs = JSON.parse(r.stdout);
  return { weights: vs.spec.http[0].route.map((d: any) => d.weight), text: r.stdout };
}

describe('weft up examples/canary (real processes)', () => {
  let up: Up;
  let restartedControl: ChildProcess | undefined;
  const files = tmpDir('cfg');

  before(async () => {
    up = await startUp('examples/canary', ['--heartbeat', '1s']);
  });
  after(async () => {
    if (restartedControl && restartedControl.exitCode === null) restartedControl.kill('SIGKILL');
    if (up && up.proc.exitCode === null) await up.stop();
    fs.rmSync(files, { recursive: true, force: true });
  });

  test('prints what runs where and how to send traffic', async () => {
    const out = await waitFor('the summary', async () => up.output().includes('Ctrl-C stops everything') && up.output());
    assert.match(out, /hello-v1\s+my-backend-service\s+127\.0\.0\.1:\d+/);
    assert.match(out, /client\s+-/);
    assert.match(out, /bin\/weft exec client -- curl -s http:\/\/my-backend-service\/\n/);
  });

  test('curl through `weft exec client` reaches the backend', async () => {
    const r = await weft(['exec', 'client', '--', 'curl', '-s', '-i', URL_HELLO], up.env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^HTTP\/1\.1 200 OK/);
    assert.match(r.stdout, /Hello from MyBackendService! version=v[12]/);
  });

  test('2,000 requests through the client sidecar split 90/10 (a fair draw, within five binomial deviations), every one a 200', async (t) => {
    const res = await loadThrough(up.env, 'client', { url: URL_HELLO, n: 2000, concurrency: 16 });
    assert.equal(res.total, 2000);
    assert.deepEqual(res.errors, []);
    assert.equal(res.status['200'], 2000);
    const v2share = (res.bodies[V2] ?? 0) / 2000;
    assert.equal((res.bodies[V1] ?? 0) + (res.bodies[V2] ?? 0), 2000);
    t.diagnostic(`v2 share: ${(v2share * 100).toFixed(1)}% of 2,000`);
    assertShare(res.bodies[V2] ?? 0, 2000, 0.1, 'requests answered by v2');
  });

  test('the sidecar says why it cannot forward: a name no service has passes through (ALLOW_ANY), and DNS knows no such host', async () => {
    const client = up.state.workloads.find((w) => w.name === 'client')!;
    const r = await request(`http://${client.outbound}/x`, { headers: { host: 'no-such-service.invalid' } });
    const body = await r.body.text();
    assert.equal(r.statusCode, 503);
    assert.equal(r.headers['x-weft-error'], 'connect_failed');
    assert.match(body, /could not connect to no-such-service\.invalid:80 in cluster PassthroughCluster \(no service of the mesh has that name.*ALLOW_ANY\): DNS has no address for that name/);
  });

  test('bad config is rejected, naming the resource and field, and the running config is untouched', async (t) => {
    const before = await storedWeights(up.env);
    const admin = up.state.admin;
    const revBefore = (await json(`${admin}/version`)).body.revision;
    const cases: [string, string, RegExp][] = [
      [
        'invalid-weight.yaml',
        fs.readFileSync(path.join(ROOT, 'examples/canary/split-50-50.yaml'), 'utf8').replace('weight: 50\n', 'weight: 150\n'),
        /VirtualService default\/my-backend-service: spec\.http\[0\]\.route\[0\]\.weight: .*0 and 100/,
      ],
      ['malformed.yaml', 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x\nspec: [\n', /malformed\.yaml: YAML syntax error at line \d+, column \d+/],
      ['unknown-kind.yaml', 'apiVersion: networking.istio.io/v1\nkind: Frobnicator\nmetadata: {name: x}\nspec: {}\n', /kind Frobnicator .*not supported/],
      ['no-name.yaml', 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {}\nspec: {hosts: [a]}\n', /VirtualService: metadata\.name: required/],
    ];
    for (const [name, text, want] of cases) {
      await t.test(name, async () => {
        const f = path.join(files, name);
        fs.writeFileSync(f, text);
        const r = await weft(['apply', '-f', f], up.env);
        assert.equal(r.code, 1, `exit code; stdout=${r.stdout}`);
        assert.match(r.stderr, want);
        assert.equal(r.stdout, '');
      });
    }
    await t.test('the control plane rejects the same invalid resource sent straight to its API (HTTP 400)', async () => {
      const bad = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'my-backend-service' }, spec: { hosts: ['my-backend-service'], http: [{ route: [{ destination: { host: 'my-backend-service', subset: 'v1' }, weight: -5 }] }] } };
      const token = fs.readFileSync(path.join(up.home, 'data', 'admin.token'), 'utf8').trim();
      const r = await json(`${admin}/api/v1/apply`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify([bad]) });
      assert.equal(r.status, 400);
      assert.match(r.body.error, /VirtualService default\/my-backend-service: spec\.http\[0\]\.route\[0\]\.weight/);
    });
    await t.test('the admin API refuses a change without the admin token (401), and says where the CLI finds it; reads need none', async () => {
      const good = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'intruder' }, spec: { hosts: ['my-backend-service'], http: [{ route: [{ destination: { host: 'my-backend-service', subset: 'v2' } }] }] } };
      for (const authorization of [undefined, 'Bearer wrong', 'Basic x']) {
        const r = await json(`${admin}/api/v1/apply`, { method: 'POST', headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) }, body: JSON.stringify([good]) });
        assert.equal(r.status, 401, String(authorization));
        assert.match(r.body.error, /needs the admin token .*admin\.token/);
      }
      const del = await json(`${admin}/api/v1/resources/VirtualService/default/my-backend-service`, { method: 'DELETE' });
      assert.equal(del.status, 401);
      const list = await json(`${admin}/api/v1/resources/VirtualService`, {});
      assert.equal(list.status, 200);
      assert.ok(!JSON.stringify(list.body).includes('intruder'));
      const mode = fs.statSync(path.join(up.home, 'data', 'admin.token')).mode & 0o777;
      assert.equal(mode, 0o600, 'the token file is its owner\'s alone');
    });
    await t.test('a file with one bad document among good ones applies nothing', async () => {
      const f = path.join(files, 'mixed.yaml');
      const good = fs.readFileSync(path.join(ROOT, 'examples/canary/split-50-50.yaml'), 'utf8');
      fs.writeFileSync(f, `${good}---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: other}\nspec: {subsets: [{name: v1}]}\n`);
      const r = await weft(['apply', '-f', f], up.env);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /DestinationRule default\/other: spec\.host/);
    });
    const afterW = await storedWeights(up.env);
    assert.deepEqual(afterW.weights, before.weights);
    assert.equal((await json(`${admin}/version`)).body.revision, revBefore);
    const client = up.state.workloads.find((w) => w.name === 'client')!;
    assert.deepEqual(await sidecarWeights(client.admin!), { v1: 90, v2: 10 });
  });

  test('a live 50/50 apply reaches every sidecar within 1 s, and no request fails during the change', async (t) => {
    const load = loadThrough(up.env, 'client', { url: URL_HELLO, rate: 200, durationMs: 5000, concurrency: 16 });
    await sleep(1500);
    const r = await weft(['apply', '-f', 'examples/canary/split-50-50.yaml'], up.env);
    const applied = Date.now();
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /VirtualService default\/my-backend-service configured/);
    const lags: Record<string, number> = {};
    await Promise.all(
      up.state.workloads.map(async (w) => {
        await waitFor(`${w.name}'s sidecar to hold the 50/50 split`, async () => {
          const ws = await sidecarWeights(w.admin!);
          return ws?.v1 === 50 && ws?.v2 === 50;
        }, 3000, 10);
        lags[w.name] = Date.now() - applied;
      }),
    );
    t.diagnostic(`new split held by each sidecar after the apply returned: ${Object.entries(lags).map(([n, ms]) => `${n} ${ms} ms`).join(', ')}`);
    for (const [name, ms] of Object.entries(lags)) assert.ok(ms <= 1000, `${name}'s sidecar took ${ms} ms to get the new split`);
    // weft get proxies shows the revision weft apply printed, for every sidecar, as current.
    const revision = /\(revision (\d+)\)/.exec(r.stdout)![1];
    const table = await waitFor('weft get proxies to show every sidecar current', async () => {
      const g = await weft(['get', 'proxies'], up.env);
      const rows = g.stdout.trim().split('\n').slice(1);
      return rows.length === 3 && rows.every((row) => new RegExp(`\\s${revision}\\s+current\\s+-$`).test(row)) && g.stdout;
    }, 5000);
    assert.match(table, /^WORKLOAD\s+SERVICE ACCOUNT\s+SERVICE\s+REVISION\s+STATUS\s+NACK\n/);
    // Each sidecar's identity is its certificate's: the mesh file gives no serviceAccount, so "default".
    assert.match(table, /\ndefault\/hello-v1\s+default\s+my-backend-service\s/);
    const res = await load;
    assert.deepEqual(res.errors, [], 'no request may fail during the change');
    assert.ok(res.total >= 800, `expected ~1000 requests at 200/s for 5 s, got ${res.total}`);
    const late = res.samples.filter((s) => s.t > applied + 1000);
    const v2 = late.filter((s) => s.body === V2).length / late.length;
    assert.ok(late.length >= 300, `only ${late.length} requests after the change`);
    t.diagnostic(`${res.total} requests at 200/s, ${res.errors.length} failed; after the change v2 got ${(v2 * 100).toFixed(1)}% of ${late.length}`);
    assert.ok(v2 > 0.35 && v2 < 0.65, `after the change v2 got ${(v2 * 100).toFixed(1)}%, want about 50%`);
    // Back to the example's 90/10 for the tests that follow.
    const back = await weft(['apply', '-f', 'examples/canary/istio.yaml'], up.env);
    assert.equal(back.code, 0, back.stderr);
    const client = up.state.workloads.find((w) => w.name === 'client')!;
    await waitFor('90/10 again', async () => (await sidecarWeights(client.admin!))?.v1 === 90);
  });

  test('control plane killed: traffic goes on with the last config; restarted: sidecars reconnect and config is still there', async (t) => {
    process.kill(up.state.controlPid, 'SIGKILL');
    await waitFor('the control plane to die', async () => !alive(up.state.controlPid));
    const during = await loadThrough(up.env, 'client', { url: URL_HELLO, n: 300, concurrency: 8 });
    assert.deepEqual(during.errors, []);
    assert.equal(during.status['200'], 300);
    assert.ok((during.bodies[V2] ?? 0) > 0, 'both versions still serve');

    restartedControl = spawn(process.execPath, [CLI, 'control', ...up.state.controlArgs], { env: { ...process.env, ...up.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    await lineMatching(restartedControl, /^WEFT_READY /);
    const restarted = Date.now();
    // Five types each: the roots (SDS), CDS, EDS, LDS, RDS.
    const proxies = await waitFor('all three sidecars to reconnect and ACK', async () => {
      const ps = (await json(`${up.state.admin}/api/v1/proxies`)).body.proxies;
      return ps.length === 3 && ps.every((p: any) => p.types.length === 5 && p.types.every((t: any) => t.acked && t.acked === t.sent)) && ps;
    }, 15_000, 100);
    t.diagnostic(`${during.total} requests while the control plane was down, all 200; all sidecars reconnected and ACKed ${Date.now() - restarted} ms after the restart`);
    assert.deepEqual(proxies.map((p: any) => p.workload.name).sort(), ['client', 'hello-v1', 'hello-v2']);
    assert.deepEqual((await storedWeights(up.env)).weights, [90, 10]);
    const afterRestart = await loadThrough(up.env, 'client', { url: URL_HELLO, n: 200, concurrency: 8 });
    assert.deepEqual(afterRestart.errors, []);
  });

  test('an app that dies behind a live sidecar becomes an unhealthy endpoint, and clients stop choosing it', async (t) => {
    const v2 = up.state.workloads.find((w) => w.name === 'hello-v2')!;
    const client = up.state.workloads.find((w) => w.name === 'client')!;
    process.kill(v2.appPid!, 'SIGKILL');
    const t0 = Date.now();
    await waitFor('hello-v2 to be marked unhealthy', async () => {
      const ws = (await json(`${up.state.admin}/api/v1/endpoints`)).body.workloads as any[];
      return ws.find((w) => w.name === 'hello-v2')?.healthy === false;
    }, 5000, 50);
    const detectMs = Date.now() - t0;
    t.diagnostic(`dead app detected in ${detectMs} ms`);
    assert.ok(detectMs < 5000, `took ${detectMs} ms`);
    await waitFor('the client sidecar to see hello-v2 unhealthy', async () => {
      const dump = (await json(`${client.admin}/config_dump`)).body;
      const cla = dump.endpoints.find((e: any) => e.cluster_name === V2_CLUSTER);
      return cla?.endpoints?.[0]?.lb_endpoints?.[0]?.health_status === 'UNHEALTHY';
    }, 3000);
    // 90/10 still sends some requests to v2, which now has no healthy endpoint: the sidecar says so.
    await expectV2Unavailable(client.outbound!);
  });

  test('endpoints follow processes: a killed sidecar leaves at once, a frozen one when its heartbeats stop', async () => {
    const admin = up.state.admin;
    const endpoints = async () => ((await json(`${admin}/api/v1/endpoints`)).body.workloads as any[]).map((w) => w.name).sort();
    assert.deepEqual(await endpoints(), ['client', 'hello-v1', 'hello-v2']);
    const v2 = up.state.workloads.find((w) => w.name === 'hello-v2')!;
    process.kill(v2.sidecarPid!, 'SIGKILL');
    await waitFor('hello-v2 to leave the registry', async () => !(await endpoints()).includes('hello-v2'), 3000);
    // With v2 gone, the 10% routed to subset v2 get the sidecar's own 503, naming the cluster.
    const client = up.state.workloads.find((w) => w.name === 'client')!;
    await waitFor('the client sidecar to drop the v2 endpoint', async () => {
      const dump = (await json(`${client.admin}/config_dump`)).body;
      const cla = dump.endpoints.find((e: any) => e.cluster_name === V2_CLUSTER);
      return cla && !(cla.endpoints?.length);
    }, 3000);
    await expectV2Unavailable(client.outbound!);

    const v1 = up.state.workloads.find((w) => w.name === 'hello-v1')!;
    process.kill(v1.sidecarPid!, 'SIGSTOP');
    try {
      const t0 = Date.now();
      await waitFor('frozen hello-v1 to leave the registry', async () => !(await endpoints()).includes('hello-v1'), 10_000, 100);
      assert.ok(Date.now() - t0 >= 500, 'a frozen sidecar is dropped by missed heartbeats, not at once');
    } finally {
      process.kill(v1.sidecarPid!, 'SIGCONT');
    }
    await waitFor('hello-v1 to come back after it thaws', async () => (await endpoints()).includes('hello-v1'), 15_000, 100);
  });

  test('Ctrl-C stops everything, with no process left behind', async () => {
    const pids = [up.proc.pid!, ...up.state.workloads.flatMap((w) => [w.sidecarPid, w.appPid]).filter((p): p is number => !!p)];
    const code = await up.stop();
    assert.equal(code, 0, up.output().slice(-2000));
    await waitFor('every process to exit', async () => pids.every((p) => !alive(p)), 5000);
    assert.ok(!fs.existsSync(path.join(up.home, 'up.json')), 'up.json is removed');
  });
});
