// Flushes held back until the end of a socket read (src/proxy/net/read-end.ts): a response head
// waits there for the body bytes of the same read, and must leave even when another flush fails.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { flushAtReadEnd, readEnded, readStarted } from '../../src/proxy/net/read-end.ts';

test('inside a read, flushes wait for its end (the outermost one), in order', () => {
  const order: string[] = [];
  readStarted();
  flushAtReadEnd({ flush: () => order.push('a') });
  readStarted(); // a read handled inside another (nested): the outer end flushes
  flushAtReadEnd({ flush: () => order.push('b') });
  readEnded();
  assert.deepEqual(order, []);
  readEnded();
  assert.deepEqual(order, ['a', 'b']);
});

test('a flush that throws does not keep the others from running, and its error reaches the reader', () => {
  const order: string[] = [];
  readStarted();
  flushAtReadEnd({
    flush: () => {
      throw new Error('boom');
    },
  });
  flushAtReadEnd({ flush: () => order.push('after') });
  assert.throws(() => readEnded(), /boom/);
  assert.deepEqual(order, ['after']);
  // Nothing is left queued for the next read.
  readStarted();
  readEnded();
  assert.deepEqual(order, ['after']);
});

test('outside a read, a flush waits for the end of the tick', async () => {
  let flushed = false;
  flushAtReadEnd({ flush: () => (flushed = true) });
  assert.equal(flushed, false);
  await new Promise<void>((r) => process.nextTick(r));
  assert.equal(flushed, true);
});
