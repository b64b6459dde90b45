// Who a sidecar is, as the control plane sees it: real `weft proxy` processes against a real
// control plane (in process), on loopback.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { request } from 'undici';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.ts';
import { parseNodeId } from '../../src/xds/node-meta.ts';
import { freePort } from '../../src/util/net.ts';
import { TYPE } from '../../src/xds/protos.ts';
import { lineMatching, sleep, tmpDir, waitFor } from '../helpers.ts';
import { controlPlaneCredentials } from '../fixtures/mesh-creds.ts';
import { spawnProxy } from './mesh.ts';
import { RawStream } from '../fixtures/raw-ads.ts';

interface Proc {
  proc: ChildProcess;
  admin: string;
  node: string;
  stderr: () => string;
}

/** `weft proxy ARGS`, resolved once it prints WEFT_READY. */
async function proxy(cp: ControlPlane, args: string[]): Promise<Proc> {
  const proc = spawnProxy(cp, args, 'pipe');
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  const ready = JSON.parse((await lineMatching(proc, /^WEFT_READY /)).slice('WEFT_READY '.length));
  return { proc, admin: ready.admin, node: ready.node, stderr: () => stderr };
}

function stop(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.once('exit', () => resolve());
    p.kill('SIGCONT'); // in case a test froze it
    p.kill('SIGTERM');
  });
}

const dump = async (admin: string) => (await (await request(`${admin}/config_dump`)).body.json()) as any;

describe('node identity (real sidecar processes)', () => {
  let cp: ControlPlane;
  const procs: Proc[] = [];

  before(async () => {
    cp = await startControlPlane({ dataDir: tmpDir('cp'), adminPort: 0, xdsPort: 0 });
  });
  after(async () => {
    await Promise.all(procs.map((p) => stop(p.proc)));
    await cp?.close();
  });

  test('two sidecars started with the same identity flags get distinct node ids and both stay connected', async (t) => {
    const identity = ['--workload', 'twin', '--namespace', 'default', '--address', '127.0.0.1'];
    const streamsBefore = cp.ads.stats().streams;
    const [a, b] = await Promise.all([
      proxy(cp, [...identity, '--outbound-port', String(await freePort())]),
      proxy(cp, [...identity, '--outbound-port', String(await freePort())]),
    ]);
    procs.push(a, b);
    t.diagnostic(`node ids: ${a.node}, ${b.node}`);
    assert.notEqual(a.node, b.node);
    for (const id of [a.node, b.node]) {
      const p = parseNodeId(id);
      assert.ok(p, `${id} parses as sidecar~ADDRESS~POD.NAMESPACE~DOMAIN`);
      assert.equal(p.address, '127.0.0.1');
      assert.equal(p.namespace, 'default');
      assert.match(p.pod, /^twin-\d+-[0-9a-f]+$/);
    }
    const twins = await waitFor('both twins to be connected', async () => {
      const ps = cp.ads.proxies().filter((p) => p.workload.name === 'twin');
      return ps.length === 2 && ps;
    });
    assert.deepEqual(twins.map((p) => p.id).sort(), [a.node, b.node].sort());
    // Neither knocks the other off: no stream is replaced, no sidecar reconnects.
    await sleep(1000);
    assert.equal(cp.ads.stats().streams - streamsBefore, 2, 'one stream per sidecar, no reconnects');
    for (const p of [a, b]) assert.equal((await dump(p.admin)).xds.reconnects, 0);
  });
});

describe('a node id whose old stream died unnoticed (real sidecar process, heartbeat 2 s)', () => {
  let cp: ControlPlane;
  let sc: Proc | undefined;
  const logs: string[] = [];

  before(async () => {
    cp = await startControlPlane({ dataDir: tmpDir('cp'), adminPort: 0, xdsPort: 0, heartbeatMs: 2000, log: (m) => logs.push(m) });
  });
  after(async () => {
    await stop(sc?.proc);
    await cp?.close();
  });

  test('a newcomer is refused while the old stream looks alive, let in once the heartbeat drops it, and the refused sidecar says why and retries', async (t) => {
    sc = await proxy(cp, ['--workload', 'blip', '--outbound-port', String(await freePort())]);
    const node = (await dump(sc.admin)).node;
    assert.equal(node.id, sc.node);
    // The newcomer proves the same workload identity: only its node id is in question here.
    const grpcClient = new grpc.Client(cp.xdsAddress, await controlPlaneCredentials(cp, { workload: 'blip' }));
    await new Promise<void>((resolve, reject) => grpcClient.waitForReady(Date.now() + 10_000, (e) => (e ? reject(e) : resolve())));
    // The sidecar freezes: its stream is dead, but the control plane notices only when a
    // heartbeat goes unanswered, 2 to 4 s from now.
    sc.proc.kill('SIGSTOP');
    let holder: RawStream | undefined;
    try {
      // The same node id from elsewhere, as the sidecar reconnecting after a network blip would.
      const attempt = async (): Promise<RawStream | grpc.StatusObject> => {
        const s = new RawStream(grpcClient);
        s.send({ type_url: TYPE.cluster, node, resource_names: [] });
        return waitFor('an answer or a refusal', async () => s.status ?? ((await s.next(100).catch(() => undefined)) && s));
      };
      const t0 = Date.now();
      const refused = await attempt();
      assert.ok(!(refused instanceof RawStream), 'refused while the old stream looks alive');
      assert.equal(refused.code, grpc.status.ALREADY_EXISTS);
      assert.ok(refused.details.includes(`node id ${sc.node} is already connected from 127.0.0.1:`), refused.details);
      // Retried with backoff, as the sidecar does, it gets in once the heartbeat drops the old stream.
      holder = await waitFor('the newcomer to be let in', async () => {
        const r = await attempt();
        if (r instanceof RawStream) return r;
        await sleep(200);
        return undefined;
      }, 15_000, 0);
      t.diagnostic(`let in ${Date.now() - t0} ms after the first refusal (heartbeat 2 s: the old stream is dropped within about 4 s)`);
      assert.ok(logs.some((l) => l.includes(`refused a second stream for node ${sc!.node}`) && l.includes('ALREADY_EXISTS')), logs.join('\n'));

      // The sidecar thaws. Its connection is gone, it reconnects, and is refused now: it says so
      // once, shows it in /config_dump, and keeps retrying with backoff.
      sc.proc.kill('SIGCONT');
      await waitFor('the sidecar to be refused a few times', async () => {
        const x = (await dump(sc!.admin)).xds;
        return /ALREADY_EXISTS/.test(x.lastError ?? '') && x.reconnects >= 3 && x;
      }, 15_000, 50);
      const lastError = (await dump(sc.admin)).xds.lastError;
      assert.match(lastError, /refused this sidecar's stream \(ALREADY_EXISTS\): node id \S+ is already connected from 127\.0\.0\.1:\d+/);
      const told = sc.stderr().split('\n').filter((l) => l.includes('ALREADY_EXISTS'));
      assert.equal(told.length, 1, `said once, not on every retry:\n${sc.stderr()}`);

      // The id is free again: the sidecar gets back in on its own.
      holder.call.end();
      holder = undefined;
      await waitFor('the sidecar to be back', async () => (await dump(sc!.admin)).xds.connected && cp.ads.proxies().some((p) => p.id === sc!.node), 15_000, 50);
    } finally {
      holder?.call.end();
      grpcClient.close();
    }
  });
});
