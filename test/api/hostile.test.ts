// Bad input to the config reader: it is refused with a plain message naming where, quickly, and
// never takes the control plane down (a stack overflow, seconds of parsing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../../src/api/index.ts';

const head = 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\n';

test('YAML nested a million levels deep is refused at once, naming the line and column (it cost the parser seconds, then overflowed its stack)', () => {
  const text = `${head}spec: {hosts: [a], http: ${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}}\n`;
  const t0 = performance.now();
  assert.throws(() => parseConfig(text, 'deep.yaml'), (e: unknown) => e instanceof ConfigError && /deep\.yaml: YAML nested deeper than 64 levels at line 4, column \d+/.test(e.message));
  const ms = performance.now() - t0;
  // Linear in the input; the parser took over 4 s for this before (a generous bound).
  assert.ok(ms < 2000, `${ms.toFixed(0)} ms`);
});

test('brackets inside quoted strings do not count as nesting (a regex may have many)', () => {
  const regex = `^/${'[a-z]'.repeat(100)}$`;
  const [r] = parseConfig(`${head}spec: {hosts: [a], http: [{match: [{uri: {regex: "${regex}"}}], route: [{destination: {host: a}}]}]}\n`, 'q.yaml');
  assert.equal((r.spec as any).http[0].match[0].uri.regex, regex);
});

test('JSON nested a million levels deep is refused, naming the field', () => {
  const text = `{"apiVersion":"networking.istio.io/v1","kind":"VirtualService","metadata":{"name":"x"},"spec":{"hosts":["a"],"http":${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}}}`;
  assert.throws(() => parseConfig(text, 'deep.json'), (e: unknown) => e instanceof ConfigError && /spec\.http\[0\]: must be an object/.test(e.message));
});

test('a VirtualService with 5,000 routes is read in well under a second; weights that do not add up to 100 are relative (as Istio now reads them); a sub-millisecond or negative duration is refused by field', () => {
  const http = Array.from({ length: 5000 }, (_, i) => ({ match: [{ uri: { prefix: `/p${i}` } }], route: [{ destination: { host: 'a' } }] }));
  const t0 = performance.now();
  const [r] = parseConfig(JSON.stringify({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'big' }, spec: { hosts: ['a'], http } }), 'big.json');
  assert.equal((r.spec as any).http.length, 5000);
  assert.ok(performance.now() - t0 < 5000);
  const bad = (spec: object) => () => parseConfig(JSON.stringify({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'bad' }, spec: { hosts: ['a'], ...spec } }), 'bad.json');
  assert.doesNotThrow(bad({ http: [{ route: [{ destination: { host: 'a' }, weight: 30 }, { destination: { host: 'b' }, weight: 30 }] }] }));
  assert.throws(bad({ http: [{ route: [{ destination: { host: 'a' }, weight: 130 }] }] }), /spec\.http\[0\]\.route\[0\]\.weight/);
  assert.throws(bad({ http: [{ timeout: '0.0001s', route: [{ destination: { host: 'a' } }] }] }), /spec\.http\[0\]\.timeout/);
  assert.throws(bad({ http: [{ timeout: '-1s', route: [{ destination: { host: 'a' } }] }] }), /spec\.http\[0\]\.timeout/);
});
