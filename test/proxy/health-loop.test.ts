// A blocked event loop marks the endpoint unhealthy past its limit, and WEFT_LOOP_BLOCKED_MS moves
// that limit (for a sidecar run under a profiler or valgrind): health.ts's check, in process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHealth, type Health } from '../../src/proxy/health.ts';
import { loopBlockedLimitMs } from '../../src/proxy/limits.ts';

/** Blocks this thread, as a long synchronous task in the sidecar would. */
const block = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

const health = (loopBlockedMs: number, changes: { healthy: boolean; why: string }[], onChange = () => {}) =>
  startHealth({
    inboundPort: () => undefined,
    listeners: () => [],
    pools: () => [],
    probeIntervalMs: 50,
    loopBlockedMs,
    onChange: (healthy, why) => {
      changes.push({ healthy, why });
      onChange();
    },
  });

test('WEFT_LOOP_BLOCKED_MS sets the limit; unset or not a whole number above 0, it is 1000 ms', () => {
  assert.equal(loopBlockedLimitMs({}), 1000);
  assert.equal(loopBlockedLimitMs({ WEFT_LOOP_BLOCKED_MS: '600000' }), 600_000);
  for (const bad of ['0', '-5', '1.5', 'abc', '']) assert.equal(loopBlockedLimitMs({ WEFT_LOOP_BLOCKED_MS: bad }), 1000, bad);
});

test('a loop blocked past the limit marks the endpoint unhealthy, naming how long, and healthy again after; a higher limit does not', { timeout: 20_000 }, async () => {
  const strict: { healthy: boolean; why: string }[] = [];
  const lenient: { healthy: boolean; why: string }[] = [];
  let recovered!: () => void;
  const back = new Promise<void>((r) => (recovered = r));
  let a: Health | undefined;
  let b: Health | undefined;
  // The checks' timers are unref'd, as in the sidecar; this one keeps the test's process waiting for them.
  const keep = setInterval(() => {}, 1000);
  try {
    a = await health(100, strict, () => strict.length === 2 && recovered());
    b = await health(60_000, lenient);
    assert.equal(a.healthy, true);
    // The delay monitor samples every 200 ms, so a block of 700 ms shows as at least 500 ms.
    block(700);
    await back;
    assert.equal(strict[0]!.healthy, false);
    assert.match(strict[0]!.why, /the event loop was blocked for \d+ ms/);
    assert.ok(Number(/blocked for (\d+) ms/.exec(strict[0]!.why)![1]) >= 100, strict[0]!.why);
    assert.deepEqual(strict[1], { healthy: true, why: 'it can forward to its app again' });
    // Both checks ran on the same interval after the block; the one with the higher limit saw it and kept quiet.
    assert.deepEqual(lenient, []);
    assert.equal(b.healthy, true);
    assert.deepEqual(b.problems(), []);
  } finally {
    a?.stop();
    b?.stop();
    clearInterval(keep);
  }
});
