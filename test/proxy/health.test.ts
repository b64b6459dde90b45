// App health travels on the sidecar's one xDS stream: a real `weft proxy` process whose app stops
// answering and comes back, against a real control plane (in process), on loopback.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'undici';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.ts';
import { freePort } from '../../src/util/net.ts';
import { CLI, lineMatching, tmpDir, waitFor } from '../helpers.ts';
import { spawnProxy } from './mesh.ts';

const CLUSTER = 'outbound|80||hb.default.svc.cluster.local';

describe('app health without replacing the xDS stream (real sidecar process)', () => {
  let cp: ControlPlane;
  let sidecar: ChildProcess | undefined;
  let app: http.Server | undefined;
  let appPort: number;

  const listen = async () => {
    app = http.createServer((_q, r) => r.end('hb\n'));
    await new Promise<void>((resolve, reject) => {
      app!.once('error', reject);
      app!.listen(appPort, '127.0.0.1', () => resolve());
    });
  };

  before(async () => {
    cp = await startControlPlane({ dataDir: tmpDir('cp'), adminPort: 0, xdsPort: 0 });
    app = http.createServer((_q, r) => r.end('hb\n'));
    await new Promise<void>((r) => app!.listen(0, '127.0.0.1', () => r()));
    appPort = (app.address() as AddressInfo).port;
  });
  after(async () => {
    if (sidecar && sidecar.exitCode === null && sidecar.signalCode === null) {
      await new Promise<void>((resolve) => {
        sidecar!.once('exit', () => resolve());
        sidecar!.kill('SIGTERM');
      });
    }
    app?.close();
    app?.closeAllConnections();
    await cp?.close();
  });

  test('an app that stops answering makes the endpoint UNHEALTHY, and HEALTHY again when it returns, on one stream throughout', async (t) => {
    const streams0 = cp.ads.stats().streams;
    const args = ['--workload', 'hb', '--service', 'hb', '--inbound-port', String(await freePort()), '--app-port', String(appPort), '--outbound-port', String(await freePort())];
    sidecar = spawnProxy(cp, [...args]);
    const ready = JSON.parse((await lineMatching(sidecar, /^WEFT_READY /)).slice('WEFT_READY '.length));
    const dump = async () => (await (await request(`${ready.admin}/config_dump`)).body.json()) as any;
    const registered = () => cp.registry.list().find((w) => w.proxyId === ready.node);
    // The sidecar's own view of its service's endpoint, as the push delivers it.
    const endpointHealth = async () => (await dump()).endpoints.find((e: any) => e.cluster_name === CLUSTER)?.endpoints?.[0]?.lb_endpoints?.[0]?.health_status;
    await waitFor('the sidecar registered, healthy', async () => registered()?.healthy === true);
    const connectedAt = cp.ads.proxies().find((p) => p.id === ready.node)!.connectedAt;

    const t0 = Date.now();
    app!.close();
    app!.closeAllConnections();
    await waitFor('the endpoint to be unhealthy in the registry', async () => registered()?.healthy === false, 10_000, 50);
    t.diagnostic(`app down noticed and registered in ${Date.now() - t0} ms`);
    await waitFor('the push to bring UNHEALTHY to the sidecar', async () => (await endpointHealth()) === 'UNHEALTHY', 10_000, 50);

    const t1 = Date.now();
    await listen();
    await waitFor('the endpoint to be healthy again', async () => registered()?.healthy === true, 10_000, 50);
    t.diagnostic(`app back noticed and registered in ${Date.now() - t1} ms`);
    await waitFor('the push to bring HEALTHY to the sidecar', async () => (await endpointHealth()) !== 'UNHEALTHY', 10_000, 50);

    // One stream throughout: the control plane accepted one, and the sidecar never reconnected.
    assert.equal(cp.ads.stats().streams - streams0, 1, 'the control plane saw one stream');
    assert.equal(cp.ads.proxies().find((p) => p.id === ready.node)!.connectedAt, connectedAt);
    const x = (await dump()).xds;
    assert.equal(x.reconnects, 0);
    assert.equal(x.connected, true);
    assert.equal(x.lastError, undefined);
    const types = cp.ads.proxies().find((p) => p.id === ready.node)!.types;
    assert.ok(types.every((ty) => !ty.nack && ty.acked === ty.sent), JSON.stringify(types));
  });
});
