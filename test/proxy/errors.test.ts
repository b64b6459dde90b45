// The sidecar's own answers when it cannot forward: status, the x-weft-error code, and a body in
// plain words naming the cluster. Real sidecar process, real control plane (in process), loopback.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'undici';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.ts';
import { freePort } from '../../src/util/net.ts';
import { CLI, lineMatching, tmpDir, waitFor } from '../helpers.ts';
import { spawnProxy } from './mesh.ts';
import { checkResource } from '../../src/api/index.ts';

describe('sidecar errors and balancing (real sidecar process)', () => {
  let cp: ControlPlane;
  let client: ChildProcess;
  let outbound: number;
  let sidecarAdmin: string;
  const backends: http.Server[] = [];

  before(async () => {
    cp = await startControlPlane({ dataDir: tmpDir('cp'), adminPort: 0, xdsPort: 0, heartbeatMs: 1000 });
    for (const name of ['one', 'two']) {
      const s = http.createServer((_q, r) => r.end(name));
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
      backends.push(s);
      const port = (s.address() as AddressInfo).port;
      cp.registry.register({ proxyId: `rr-${name}`, name: `rr-${name}`, namespace: 'default', service: 'rr', servicePort: 80, labels: {}, address: '127.0.0.1', inboundPort: port, appPort: port, healthy: true });
    }
    // A service whose only endpoint refuses connections.
    const dead = await freePort();
    cp.registry.register({ proxyId: 'dead-1', name: 'dead-1', namespace: 'default', service: 'dead', servicePort: 80, labels: {}, address: '127.0.0.1', inboundPort: dead, appPort: dead, healthy: true });
    outbound = await freePort();
    client = spawnProxy(cp, ['--workload', 'client', '--outbound-port', String(outbound)]);
    const ready = await lineMatching(client, /^WEFT_READY /);
    sidecarAdmin = JSON.parse(ready.slice('WEFT_READY '.length)).admin;
  });
  after(async () => {
    client?.kill('SIGTERM');
    for (const s of backends) s.close();
    await cp?.close();
  });

  const get = async (host: string, path = '/') => {
    const r = await request(`http://127.0.0.1:${outbound}${path}`, { headers: { host } });
    return { status: r.statusCode, error: r.headers['x-weft-error'], body: await r.body.text() };
  };

  test('round robin across the endpoints of a cluster', async () => {
    const got = [];
    for (let i = 0; i < 6; i++) got.push((await get('rr')).body);
    assert.deepEqual(got.filter((b) => b === 'one').length, 3, got.join(','));
    assert.deepEqual(got.filter((b) => b === 'two').length, 3, got.join(','));
  });

  test('absolute-form requests (what HTTP_PROXY clients send) route by the URL host', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: outbound, path: 'http://rr.default.svc.cluster.local/x', headers: { host: 'rr.default.svc.cluster.local' } }, (res) => {
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () => resolve(b));
      });
      req.on('error', reject);
      req.end();
    });
    assert.ok(body === 'one' || body === 'two', body);
  });

  test('503 naming the cluster and endpoint when the connection is refused', async () => {
    const r = await get('dead');
    assert.equal(r.status, 503);
    assert.equal(r.error, 'connect_refused');
    assert.match(r.body, /connection refused by 127\.0\.0\.1:\d+ in cluster outbound\|80\|\|dead\.default\.svc\.cluster\.local/);
  });

  test('a host the mesh does not know passes through (ALLOW_ANY, as Istio); a refused connection is a 503 naming where and the PassthroughCluster', async () => {
    const closed = await freePort();
    const r = await get(`127.0.0.1:${closed}`);
    assert.equal(r.status, 503);
    assert.equal(r.error, 'connect_refused');
    assert.match(r.body, new RegExp(`connection refused by 127\\.0\\.0\\.1:${closed} in cluster PassthroughCluster`));
  });

  test("a request whose authority is the sidecar's own listener is refused, not looped", async () => {
    const r = await get(`127.0.0.1:${outbound}`);
    assert.equal(r.status, 400);
    assert.match(r.body, /this sidecar's own listener outbound: it would loop/);
    // Other names for it (review: 127.1 once looped until the sidecar ran out of sockets) come
    // back once, carrying the sidecar's own Via entry, and are refused there.
    for (const name of ['127.1', '[::ffff:127.0.0.1]', '2130706433']) {
      const x = await get(`${name}:${outbound}`);
      assert.equal(x.status, 400, `${name}: ${x.body}`);
      assert.match(x.body, /request loop|would loop/, name);
    }
  });

  test('503 naming the cluster when it has no endpoint left', async () => {
    cp.registry.unregister('dead-1');
    // Gone entirely, the name is no service: it passes through (ALLOW_ANY) to a host DNS does not know.
    await waitFor('the dead service to disappear', async () => (await get('dead')).error === 'connect_failed');
    // Re-add it with no healthy endpoint instead.
    cp.registry.register({ proxyId: 'dead-2', name: 'dead-2', namespace: 'default', service: 'dead', servicePort: 80, labels: {}, address: '127.0.0.1', inboundPort: 1, appPort: 1, healthy: false });
    const r = await waitFor('a no-healthy-endpoint answer', async () => {
      const x = await get('dead');
      return x.error === 'no_healthy_endpoint' && x;
    });
    assert.equal(r.status, 503);
    assert.match(r.body, /no healthy endpoint in cluster outbound\|80\|\|dead\.default\.svc\.cluster\.local/);
  });

  test("504 when the VirtualService's timeout passes before the upstream answers", async () => {
    const slow = http.createServer((_q, r) => setTimeout(() => r.end('late'), 1500));
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', () => r()));
    backends.push(slow);
    const port = (slow.address() as AddressInfo).port;
    cp.registry.register({ proxyId: 'slow-1', name: 'slow-1', namespace: 'default', service: 'slow', servicePort: 80, labels: {}, address: '127.0.0.1', inboundPort: port, appPort: port, healthy: true });
    cp.store.apply([
      checkResource({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'slow' }, spec: { hosts: ['slow'], http: [{ timeout: '200ms', route: [{ destination: { host: 'slow' } }] }] } }, 'test'),
    ]);
    const r = await waitFor('the timeout route', async () => {
      const x = await get('slow');
      return x.status === 504 && x;
    }, 8000, 100);
    assert.equal(r.error, 'upstream_timeout');
    assert.match(r.body, /upstream 127\.0\.0\.1:\d+ in cluster outbound\|80\|\|slow\.default\.svc\.cluster\.local did not complete the response within the route timeout of 200 ms/);
  });

  test('a malformed request gets 400 naming what the parser rejected', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const s = net.connect(outbound, '127.0.0.1', () => s.write('GET /x HTTP/1.1\r\nHost: rr\r\nBad Header Name: y\r\n\r\n'));
      let got = '';
      s.on('data', (d) => (got += d));
      s.on('end', () => resolve(got));
      s.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(answer, /x-weft-error: bad_request/);
    assert.match(answer, /weft: malformed HTTP request \(HPE_INVALID_HEADER_TOKEN\)/);
  });

  test('the sidecar counts requests by cluster and status code', async () => {
    const rows = ((await (await request(`${sidecarAdmin}/stats`)).body.json()) as any).requests as { cluster: string; code: number; reason?: string; count: number }[];
    const find = (cluster: string, code: number, reason?: string) => rows.find((r) => r.cluster === cluster && r.code === code && r.reason === reason);
    assert.ok((find('outbound|80||rr.default.svc.cluster.local', 200)?.count ?? 0) >= 7, JSON.stringify(rows));
    assert.ok((find('outbound|80||dead.default.svc.cluster.local', 503, 'connect_refused')?.count ?? 0) >= 1);
    assert.ok(find('outbound|80||dead.default.svc.cluster.local', 503, 'no_healthy_endpoint'));
    assert.ok((find('PassthroughCluster', 503, 'connect_refused')?.count ?? 0) >= 1, JSON.stringify(rows));
    const prom = await (await request(`${sidecarAdmin}/stats/prometheus`)).body.text();
    assert.match(prom, /weft_requests_total\{cluster="outbound\|80\|\|rr\.default\.svc\.cluster\.local",code="200"\} \d+/);
  });
});
