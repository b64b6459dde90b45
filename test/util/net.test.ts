// Ports for processes started together (weft up, the bench): never the same one twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PortAllocator } from '../../src/util/net.ts';

test('a PortAllocator hands out each port at most once, even to 200 callers at once', async () => {
  const a = new PortAllocator();
  const ports = await Promise.all(Array.from({ length: 200 }, () => a.next()));
  assert.equal(new Set(ports).size, 200);
  for (const p of ports) assert.ok(p > 0 && p < 65536);
});
