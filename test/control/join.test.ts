// Join tokens: one workload identity each, good once and for a short time; the store keeps only
// their hashes; the admin API makes them only for a caller with the admin token.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JoinError, JoinTokens } from '../../src/control/ca/join.ts';
import { SqliteStore } from '../../src/control/store/sqlite.ts';
import { tmpDir, weft } from '../helpers.ts';

const id = { workload: 'reviews-v1', namespace: 'default', serviceAccount: 'reviews' };

test('a join token proves its identity once; a second use, an expired token and a made-up one are refused', () => {
  const store = new SqliteStore(':memory:');
  let now = 1_000_000;
  const tokens = new JoinTokens(store, () => now);
  const { token, expiresAt } = tokens.create(id, 60_000);
  assert.equal(expiresAt.getTime(), now + 60_000);
  assert.deepEqual(tokens.redeem(token), id);
  assert.throws(() => tokens.redeem(token), (e: Error) => e instanceof JoinError && /unknown or was used already/.test(e.message));
  const late = tokens.create(id, 1000);
  now += 1000;
  assert.throws(() => tokens.redeem(late.token), /expired/);
  assert.throws(() => tokens.redeem(`${token.slice(0, -4)}AAAA`), /unknown or was used/);
  assert.throws(() => tokens.redeem('not a token'), /not a Weft join token/);
  assert.throws(() => tokens.create({ ...id, namespace: 'Bad/ns' }), /not a Kubernetes name/);
  assert.throws(() => tokens.create(id, 48 * 3600_000), /from 1 ms to 24 h/);
  // The store holds no token, only hashes: nothing in it redeems.
  const fresh = tokens.create(id);
  const raw = JSON.stringify((store as any).db.prepare('SELECT name, value FROM secrets').all());
  assert.ok(!raw.includes(fresh.token.split('.')[1]), 'no token in the store');
  assert.equal(store.revision(), 0);
  store.close();
});

test('of two redemptions of one token at once, one wins (the store takes it atomically)', () => {
  const dir = tmpDir('join');
  const a = new SqliteStore(`${dir}/weft.db`);
  const b = new SqliteStore(`${dir}/weft.db`);
  const { token } = new JoinTokens(a).create(id);
  const results = [new JoinTokens(a), new JoinTokens(b)].map((t) => {
    try {
      return t.redeem(token).workload;
    } catch (e) {
      return (e as Error).name;
    }
  });
  assert.deepEqual(results.sort(), ['JoinError', 'reviews-v1']);
  a.close();
  b.close();
});

test('weft token create: the CLI asks the control plane (with the admin token) and prints the token; without the admin token, nothing', async () => {
  const { startControlPlane } = await import('../../src/control/control-plane.ts');
  const cp = await startControlPlane({ dataDir: tmpDir('join-cli'), adminPort: 0, xdsPort: 0 });
  try {
    const r = await weft(['token', 'create', '--workload', 'reviews-v1', '--service-account', 'reviews', '--ttl', '5m', '--admin', cp.adminUrl], { WEFT_ADMIN_TOKEN: cp.adminToken });
    assert.equal(r.code, 0, r.stderr);
    const token = r.stdout.trim();
    assert.match(token, /^weft-join\.[A-Za-z0-9_-]{43}$/);
    assert.match(r.stderr, /default\/reviews-v1 \(service account reviews\), good once until/);
    assert.deepEqual(cp.joinTokens.redeem(token), { workload: 'reviews-v1', namespace: 'default', serviceAccount: 'reviews' });
    const denied = await weft(['token', 'create', '--workload', 'x', '--admin', cp.adminUrl], { WEFT_ADMIN_TOKEN: 'wrong', WEFT_HOME: tmpDir('nohome') });
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /needs the admin token/);
  } finally {
    await cp.close();
  }
});

test('tokens that expired unused are swept when a new one is made, so the store does not keep them for good', () => {
  const store = new SqliteStore(':memory:');
  let now = 0;
  const tokens = new JoinTokens(store, () => now);
  for (let i = 0; i < 5; i++) tokens.create(id, 1000);
  const kept = tokens.create(id, 60_000);
  now = 2000;
  tokens.create(id, 60_000);
  assert.equal(store.secretsWithPrefix('join/').length, 2, 'the five expired ones are gone; the two live ones stay');
  assert.deepEqual(tokens.redeem(kept.token), id);
  store.close();
});
