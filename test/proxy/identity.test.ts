// Who a sidecar is, as the control plane sees it: real `weft proxy` processes against a real
// control plane (in process), on loopback.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'undici';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.ts';
import { parseNodeId } from '../../src/xds/node-meta.ts';
import { freePort } from '../../src/util/net.ts';
import { CLI, lineMatching, sleep, tmpDir, waitFor } from '../helpers.ts';

interface Proc {
  proc: ChildProcess;
  admin: string;
  node: string;
}

/** `weft proxy ARGS`, resolved once it prints WEFT_READY. */
async function proxy(xds: string, args: string[]): Promise<Proc> {
  const proc = spawn(process.execPath, [CLI, 'proxy', '--xds', xds, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = JSON.parse((await lineMatching(proc, /^WEFT_READY /)).slice('WEFT_READY '.length));
  return { proc, admin: ready.admin, node: ready.node };
}

function stop(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.once('exit', () => resolve());
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
    const streamsBefore = cp.ads.counters().streams;
    const [a, b] = await Promise.all([
      proxy(cp.xdsAddress, [...identity, '--outbound-port', String(await freePort())]),
      proxy(cp.xdsAddress, [...identity, '--outbound-port', String(await freePort())]),
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
    assert.equal(cp.ads.counters().streams - streamsBefore, 2, 'one stream per sidecar, no reconnects');
    for (const p of [a, b]) assert.equal((await dump(p.admin)).xds.reconnects, 0);
  });
});
