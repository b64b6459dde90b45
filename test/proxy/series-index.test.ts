// The metrics' series index (telemetry/series-index.ts): a series is found by its label values as a
// Map finds them (SameValueZero), whether or not it is the one found last.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type KeyValue, SeriesIndex } from '../../src/proxy/telemetry/series-index.ts';
import { seededRandom } from '../fixtures/seeded.ts';

test('a series is found by equal keys, repeated or interleaved, equal strings made anew, NaN, -0 and objects; different keys never find it', () => {
  const random = seededRandom(0x5e71e5);
  const meta = [{ app: 'a' }, { app: 'a' }];
  const VALUES: KeyValue[][] = [
    ['spiffe://cluster.local/ns/default/sa/a', 'spiffe://cluster.local/ns/default/sa/b', ''],
    [true, false],
    [200, 503, Number.NaN, 0, -0],
    [meta[0]!, meta[1]!, ''],
    ['-', 'UF,URX'],
  ];
  // The reference: one key string per tuple, as SameValueZero tells values apart.
  const name = (keys: readonly KeyValue[]) => keys.map((k) => (typeof k === 'object' ? `o${meta.indexOf(k as { app: string })}` : typeof k === 'number' ? `n${Object.is(k, -0) ? 0 : k}` : `${typeof k}:${String(k)}`)).join('|');
  const index = new SeriesIndex<{ key: string }>();
  const ref = new Map<string, { key: string }>();
  const keys: KeyValue[] = [];
  let hits = 0;
  for (let i = 0; i < 5000; i++) {
    // Mostly the tuple before (the index's last hit), now and then another; strings made anew half the time.
    if (i === 0 || random() < 0.3) for (let j = 0; j < VALUES.length; j++) keys[j] = VALUES[j]![Math.floor(random() * VALUES[j]!.length)]!;
    else if (random() < 0.5) keys[0] = [...(keys[0] as string)].join('');
    const k = name(keys);
    const found = index.find(keys);
    assert.equal(found, ref.get(k), `find ${k}`);
    const s = index.get(keys, () => ({ key: k }));
    if (found) hits++;
    else ref.set(k, s);
    assert.equal(s.key, k, `get ${k}`);
    assert.equal(s, ref.get(k));
  }
  assert.equal(index.all.length, ref.size);
  assert.ok(hits > 4000 && ref.size > 40, `${hits} hits, ${ref.size} series`);
});
