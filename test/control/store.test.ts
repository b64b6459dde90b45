// The embedded store on a real SQLite file: revisions, idempotent applies, durability across a
// reopen (a control plane restart), deletes, and watch events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { SqliteStore } from '../../src/control/store/sqlite.ts';
import type { Resource } from '../../src/api/types.ts';
import { tmpDir } from '../helpers.ts';

const vs = (name: string, weight: number): Resource => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name, namespace: 'default' },
  spec: { hosts: [name], http: [{ route: [{ destination: { host: name }, weight }] }] },
});

test('every change gets a revision; an identical apply is "unchanged" and costs none', () => {
  const dir = tmpDir('store');
  const s = new SqliteStore(path.join(dir, 'weft.db'));
  const events: number[] = [];
  s.watch((e) => events.push(e.revision));
  assert.equal(s.revision(), 0);
  const r1 = s.apply([vs('a', 100), vs('b', 100)]);
  assert.deepEqual(r1.map((r) => [r.key.name, r.action, r.revision]), [['a', 'created', 1], ['b', 'created', 2]]);
  const r2 = s.apply([vs('a', 100)]);
  assert.deepEqual(r2.map((r) => [r.action, r.revision]), [['unchanged', 1]]);
  const r3 = s.apply([vs('a', 50)]);
  assert.deepEqual(r3.map((r) => [r.action, r.revision]), [['configured', 3]]);
  assert.equal(s.revision(), 3);
  assert.deepEqual(events, [2, 3], 'one event per committed write, none for a no-op');
  s.close();
  fs.rmSync(dir, { recursive: true });
});

test('config survives a reopen, as after a control plane restart', () => {
  const dir = tmpDir('store');
  const file = path.join(dir, 'weft.db');
  const s1 = new SqliteStore(file);
  s1.apply([vs('a', 90)]);
  s1.close();
  const s2 = new SqliteStore(file);
  assert.equal(s2.revision(), 1);
  const got = s2.get({ kind: 'VirtualService', namespace: 'default', name: 'a' });
  assert.deepEqual(got?.spec, vs('a', 90).spec);
  assert.equal(got?.apiVersion, 'networking.istio.io/v1');
  s2.close();
  fs.rmSync(dir, { recursive: true });
});

test('delete bumps the revision; deleting what is not there says so', () => {
  const dir = tmpDir('store');
  const s = new SqliteStore(path.join(dir, 'weft.db'));
  s.apply([vs('a', 100)]);
  assert.equal(s.delete({ kind: 'VirtualService', namespace: 'default', name: 'a' }), 2);
  assert.equal(s.delete({ kind: 'VirtualService', namespace: 'default', name: 'a' }), undefined);
  assert.deepEqual(s.list('VirtualService'), []);
  s.close();
  fs.rmSync(dir, { recursive: true });
});

test('a resource keeps its creation revision and time across changes; a store from before they were kept gets them from its revision', async () => {
  const dir = tmpDir('store');
  const file = path.join(dir, 'weft.db');
  const s = new SqliteStore(file);
  s.apply([vs('b', 100), vs('a', 100)]);
  const before = s.get({ kind: 'VirtualService', namespace: 'default', name: 'b' })!;
  assert.equal(before.created, 1);
  assert.match(before.metadata.creationTimestamp ?? '', /^\d{4}-\d\d-\d\dT/);
  // Reapplied as `weft get -o yaml` prints it (with creationTimestamp): unchanged.
  assert.equal(s.apply([{ ...vs('b', 100), metadata: before.metadata }])[0].action, 'unchanged');
  s.apply([vs('b', 50)]);
  const after = s.get({ kind: 'VirtualService', namespace: 'default', name: 'b' })!;
  assert.deepEqual([after.revision, after.created, after.metadata.creationTimestamp], [3, 1, before.metadata.creationTimestamp]);
  assert.equal(s.get({ kind: 'VirtualService', namespace: 'default', name: 'a' })!.created, 2);
  s.close();
  // A store written before the columns existed.
  const { DatabaseSync } = await import('node:sqlite');
  const oldFile = path.join(dir, 'old.db');
  const db = new DatabaseSync(oldFile);
  db.exec(`CREATE TABLE resources (kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, api_version TEXT NOT NULL, body TEXT NOT NULL, revision INTEGER NOT NULL, PRIMARY KEY (kind, namespace, name));
    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL); INSERT INTO meta VALUES ('revision', 7);`);
  db.prepare(`INSERT INTO resources VALUES ('VirtualService', 'default', 'x', 'networking.istio.io/v1', ?, 7)`).run(JSON.stringify({ metadata: { name: 'x', namespace: 'default' }, spec: vs('x', 100).spec }));
  db.close();
  const s2 = new SqliteStore(oldFile);
  assert.equal(s2.get({ kind: 'VirtualService', namespace: 'default', name: 'x' })!.created, 7);
  // A change of a migrated resource keeps its creation (review: it became the newest on each change).
  s2.apply([vs('x', 50)]);
  assert.deepEqual([s2.get({ kind: 'VirtualService', namespace: 'default', name: 'x' })!.revision, s2.get({ kind: 'VirtualService', namespace: 'default', name: 'x' })!.created], [8, 7]);
  s2.close();
  new SqliteStore(oldFile).close(); // opened again: nothing to migrate
  fs.rmSync(dir, { recursive: true });
});
