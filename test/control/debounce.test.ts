// The push debouncer, on mocked timers: a burst becomes one push; in a storm of changes (a
// thousand proxies connecting, each registration a change), slow pushes are spaced by their cost,
// so that they cannot take the whole control plane; after a quiet spell a change is prompt.
import { mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { Debouncer } from '../../src/control/ads/debounce.ts';

test('in a storm a push that took D is followed no sooner than 4 D after it, and ever later as the storm goes on, until it has been quiet 1 s; after a quiet spell a change is pushed after the quiet time', () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    let clock = 0; // the debouncer's clock: the mocked timers' time, plus the time pushes took
    const advance = (ms: number) => {
      for (let i = 0; i < ms; i++) {
        clock += 1;
        mock.timers.tick(1);
      }
    };
    let took = 200;
    const runs: { start: number; end: number }[] = [];
    const d = new Debouncer(50, 300, () => {
      const start = clock;
      clock += took; // a push to many proxies
      runs.push({ start, end: clock });
    }, () => clock);

    // A storm: a change every 10 ms for 6 s.
    for (let t = 0; t < 6000; t += 10) {
      d.trigger();
      advance(10);
    }
    assert.equal(runs[0].start, 300, 'the first push at maxMs, as before');
    // The rest: four times the 200 ms a push took, and at least 300 ms doubled per push of the storm, up to 5 s.
    const gaps = runs.slice(1).map((r, i) => r.start - runs[i].end);
    assert.ok(gaps.length >= 4, `${runs.length} pushes`);
    assert.deepEqual(gaps, [800, 800, 1200, 2400, 4800, 5000].slice(0, gaps.length));
    // Pushes took at most a fifth of the storm's time (unpaced, some 40%: one 300 ms after each).
    const busy = runs.length * took;
    assert.ok(busy <= clock / 5 + took, `${runs.length} pushes of ${took} ms in ${clock} ms`);
    // The storm stops in the middle of a 5 s rest: its last push comes once it has been quiet 1 s.
    const lastChange = clock - 10;
    const pushed = runs.length;
    advance(3000);
    assert.equal(runs.length, pushed + 1, 'the storm\'s last push');
    assert.equal(runs[pushed].start, lastChange + 1000);
    // That push ended the storm: a single change half a second later (a config change) is prompt.
    const single = clock + 500;
    advance(500);
    d.trigger();
    advance(100);
    assert.equal(runs[pushed + 1]?.start, single + 50, 'a single change after the storm, pushed after the quiet time');

    // A storm that goes on in bursts: 100 ms of changes every 300 ms, each burst short of maxMs
    // (which alone would make every push a quiet one). It goes on as one storm, for its bursts
    // come while pushes rest.
    advance(10_000);
    runs.length = 0;
    for (let t = 0; t < 20_000; t += 10) {
      if (t < 1000 || t % 300 < 100) d.trigger();
      advance(10);
    }
    const burstGaps = runs.slice(1).map((r, i) => r.start - runs[i].end);
    assert.deepEqual(burstGaps, [800, 800, 1200, 2400, 4800, 5000], `${runs.length} pushes: ${burstGaps.join(', ')} ms apart`);
    // It stops just as a push starts a 5 s rest: a single change 1.5 s later is prompt all the same.
    const last = runs.length;
    for (let i = 0; i < 10_000 && runs.length === last; i++) advance(1);
    assert.equal(runs.length, last + 1, "the storm's last push");
    advance(1500);
    const lone = clock;
    d.trigger();
    advance(100);
    assert.equal(runs[last + 1]?.start, lone + 50, 'a change after the storm went quiet, pushed after the quiet time');

    // The storm is over; a quiet spell, then one change: pushed after the quiet time.
    advance(10_000);
    runs.length = 0;
    took = 100;
    const t0 = clock;
    d.trigger();
    advance(200);
    assert.deepEqual(runs.map((r) => r.start), [t0 + 50]);
    // Another just after that (slow) push: no rest, for that push ended no storm.
    const t1 = clock;
    d.trigger();
    advance(200);
    assert.deepEqual(runs.map((r) => r.start), [t0 + 50, t1 + 50]);
  } finally {
    mock.timers.reset();
  }
});
