// A real `weft proxy` process against an ADS server whose config generator the test controls
// (a test xDS server, the way grpc-js tests its xds client): the sidecar must NACK what it cannot
// apply, with a reason naming the resource, and keep serving its last good config.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'undici';
import type { AdsServer } from '../../src/control/ads/server.ts';
import { type ControlPlane, startControlPlane } from '../../src/control/control-plane.ts';
import type { MeshSnapshot, Workload } from '../../src/control/model/model.ts';
import { type XdsResources, translate } from '../../src/control/translate/translate.ts';
import { freePort } from '../../src/util/net.ts';
import { lineMatching, tmpDir, waitFor } from '../helpers.ts';
import { spawnProxy } from './mesh.ts';

describe('sidecar NACKs what it cannot apply and keeps serving (test xDS server with a hand-made bad update)', () => {
  let backend: http.Server;
  let sidecar: ChildProcess;
  let ads: AdsServer;
  let cp: ControlPlane | undefined;
  let outbound: number;
  let sidecarAdmin: string;
  let breakIt: ((r: XdsResources) => void) | undefined;

  before(async () => {
    backend = http.createServer((_req, res) => res.end('backend says hi\n'));
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
    const backendPort = (backend.address() as AddressInfo).port;
    // The backend, as a registered workload of service "backend" (no sidecar of its own).
    const generate = (m: MeshSnapshot, p: Workload): XdsResources => {
      const r = translate(m, p);
      breakIt?.(r);
      return r;
    };
    cp = await startControlPlane({ dataDir: tmpDir('cp'), adminPort: 0, xdsPort: 0, generate });
    ads = cp.ads;
    cp.registry.register({ proxyId: 'backend-1', name: 'backend-1', namespace: 'default', service: 'backend', servicePort: 80, labels: {}, address: '127.0.0.1', inboundPort: backendPort, appPort: backendPort, healthy: true });
    outbound = await freePort();
    sidecar = spawnProxy(cp, ['--workload', 'tester', '--outbound-port', String(outbound)]);
    const ready = await lineMatching(sidecar, /^WEFT_READY /);
    sidecarAdmin = JSON.parse(ready.slice('WEFT_READY '.length)).admin;
  });
  after(async () => {
    sidecar?.kill('SIGTERM');
    await cp?.close();
    backend?.close();
  });

  const get = async () => {
    const r = await request(`http://127.0.0.1:${outbound}/`, { headers: { host: 'backend' } });
    return { status: r.statusCode, body: await r.body.text() };
  };
  const status = (type: string) => ads.proxies().find((p) => p.workload.name === 'tester')?.types.find((t) => t.type === type);

  test('traffic flows on the first, good config', async () => {
    assert.deepEqual(await get(), { status: 200, body: 'backend says hi\n' });
  });

  test('a route with an invalid regex is NACKed with the route named, and the old routes keep serving', async () => {
    const goodRds = status('RDS')!.acked;
    breakIt = (r) => {
      const rc = r.routes.outbound as any;
      rc.virtual_hosts[0].routes.unshift({ name: 'broken', match: { safe_regex: { regex: '(unclosed' } }, route: { cluster: 'x' } });
    };
    ads.requestPush();
    const nack = await waitFor('an RDS NACK', async () => status('RDS')?.nack);
    assert.match(nack.reason, /route configuration outbound: virtual_hosts\[0\].*routes\[0\]\.match\.safe_regex\.regex: invalid RE2 regex "\(unclosed"/);
    assert.equal(status('RDS')!.acked, goodRds, 'the ACKed version stays the last good one');
    assert.deepEqual(await get(), { status: 200, body: 'backend says hi\n' });
    const dump = await (await request(`${sidecarAdmin}/config_dump`)).body.json() as any;
    assert.match(dump.xds.types.RDS.lastNack, /invalid RE2 regex/);
  });

  test('a listener with a filter the sidecar does not have is NACKed, and the listener keeps serving', async () => {
    breakIt = (r) => {
      const l = r.listeners.outbound as any;
      l.filter_chains[0].filters[0] = { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration' } };
    };
    ads.requestPush();
    const nack = await waitFor('an LDS NACK', async () => status('LDS')?.nack);
    assert.match(nack.reason, /listener outbound: filter_chains\[0\]\.filters: a chain must hold exactly one HttpConnectionManager or tcp_proxy filter/);
    assert.deepEqual(await get(), { status: 200, body: 'backend says hi\n' });
  });

  test('a good update after NACKs is ACKed and applied', async () => {
    breakIt = undefined;
    ads.requestPush();
    await waitFor('NACKs to clear', async () => !status('RDS')?.nack && !status('LDS')?.nack && status('RDS')?.acked === status('RDS')?.sent);
    assert.deepEqual(await get(), { status: 200, body: 'backend says hi\n' });
  });

  test('with the control plane gone, the sidecar keeps serving its last config', async () => {
    await cp!.close();
    cp = undefined;
    await waitFor('the sidecar to notice', async () => {
      const dump = (await (await request(`${sidecarAdmin}/config_dump`)).body.json()) as any;
      return dump.xds.connected === false;
    });
    assert.deepEqual(await get(), { status: 200, body: 'backend says hi\n' });
    const ready = await request(`${sidecarAdmin}/ready`);
    assert.equal(ready.statusCode, 200, await ready.body.text());
  });
});
