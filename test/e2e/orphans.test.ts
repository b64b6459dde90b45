// If `weft up` itself is killed outright (no chance to clean up), the sidecars and control plane it
// started notice within a couple of seconds and stop on their own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alive, startUp, waitFor } from '../helpers.ts';

test('a SIGKILLed weft up leaves no sidecar or control plane behind', async (t) => {
  const up = await startUp('examples/canary');
  const apps = up.state.workloads.map((w) => w.appPid).filter((p): p is number => !!p);
  const ours = [up.state.controlPid, ...up.state.workloads.map((w) => w.sidecarPid!)];
  try {
    process.kill(up.proc.pid!, 'SIGKILL');
    const t0 = Date.now();
    await waitFor('the sidecars and control plane to stop', async () => ours.every((p) => !alive(p)), 10_000, 100);
    t.diagnostic(`all stopped ${Date.now() - t0} ms after weft up was killed`);
  } finally {
    // The apps are the user's programs; weft cannot make them watch their parent. Clean up here.
    for (const p of [...apps, ...ours]) if (alive(p)) process.kill(p, 'SIGKILL');
  }
  assert.ok(ours.every((p) => !alive(p)));
});
