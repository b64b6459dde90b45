// The embedded, durable ConfigStore: SQLite through Node's built-in node:sqlite.
//
// Why node:sqlite and not better-sqlite3: Weft runs on Node 24, and better-sqlite3 is a native
// addon that node-gyp builds against the headers of the machine's own Node (20 here), which
// Node 24 then refuses to load (ABI mismatch). node:sqlite is the same SQLite engine, compiled
// into the Node binary, with a synchronous API of the same shape and nothing to build.
import { DatabaseSync } from 'node:sqlite';
import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Resource, ResourceKey } from '../../api/types.ts';
import type { ApplyResult, ConfigStore, StoreEvent, StoredResource } from './store.ts';

interface Row {
  kind: string;
  namespace: string;
  name: string;
  api_version: string;
  body: string;
  revision: number;
  /** Absent in rows written before creation was recorded: their revision stands in. */
  created: number | null;
  created_at: string | null;
}

export class SqliteStore implements ConfigStore {
  private readonly db: DatabaseSync;
  private readonly watchers = new Set<(e: StoreEvent) => void>();

  constructor(file: string) {
    if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
    this.db = new DatabaseSync(file);
    this.db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = FULL;
      CREATE TABLE IF NOT EXISTS resources (
        kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
        api_version TEXT NOT NULL, body TEXT NOT NULL, revision INTEGER NOT NULL,
        PRIMARY KEY (kind, namespace, name));
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);
      INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0);
    `);
    this.addCreation();
  }

  /**
   * When each resource was created: added to stores made before it was recorded, in one
   * transaction (another process may open the same store), their rows dated by their revision
   * (the best knowledge there is), so that a later change keeps that.
   */
  private addCreation(): void {
    const has = () => (this.db.prepare(`PRAGMA table_info(resources)`).all() as { name: string }[]).some((c) => c.name === 'created_at');
    if (has()) return;
    this.db.exec('BEGIN IMMEDIATE');
    try {
      if (!has()) {
        this.db.exec(`ALTER TABLE resources ADD COLUMN created INTEGER; ALTER TABLE resources ADD COLUMN created_at TEXT;`);
        this.db.prepare(`UPDATE resources SET created = revision WHERE created IS NULL`).run();
      }
      this.db.exec('COMMIT');
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    }
  }

  getSecret(name: string): string | undefined {
    const row = this.db.prepare(`SELECT value FROM secrets WHERE name = ?`).get(name) as { value: string } | undefined;
    return row?.value;
  }

  putSecretIfAbsent(name: string, value: string): string {
    this.db.prepare(`INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)`).run(name, value);
    return this.getSecret(name)!;
  }

  putSecret(name: string, value: string): void {
    this.db.prepare(`INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`).run(name, value);
  }

  secretsWithPrefix(prefix: string): { name: string; value: string }[] {
    // substr, not LIKE: a prefix may hold % or _.
    return this.db.prepare(`SELECT name, value FROM secrets WHERE substr(name, 1, ?) = ?`).all(prefix.length, prefix) as { name: string; value: string }[];
  }

  takeSecret(name: string): string | undefined {
    const row = this.db.prepare(`DELETE FROM secrets WHERE name = ? RETURNING value`).get(name) as { value: string } | undefined;
    return row?.value;
  }

  revision(): number {
    const row = this.db.prepare(`SELECT value FROM meta WHERE key = 'revision'`).get() as { value: number };
    return row.value;
  }

  apply(resources: readonly Resource[]): ApplyResult[] {
    const results: ApplyResult[] = [];
    let rev = this.revision();
    const startRev = rev;
    this.db.exec('BEGIN IMMEDIATE');
    try {
      // A change keeps the creation revision and time (ON CONFLICT leaves those columns be).
      const upsert = this.db.prepare(
        `INSERT INTO resources (kind, namespace, name, api_version, body, revision, created, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (kind, namespace, name) DO UPDATE SET api_version = excluded.api_version,
           body = excluded.body, revision = excluded.revision`,
      );
      const now = new Date().toISOString();
      for (const r of resources) {
        const key = { kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name };
        const old = this.row(key);
        const { creationTimestamp: _t, ...metadata } = r.metadata;
        const body = JSON.stringify({ metadata, spec: r.spec });
        if (old && old.api_version === r.apiVersion && isDeepStrictEqual(JSON.parse(old.body), JSON.parse(body))) {
          results.push({ key, action: 'unchanged', revision: old.revision });
          continue;
        }
        rev += 1;
        upsert.run(key.kind, key.namespace, key.name, r.apiVersion, body, rev, rev, now);
        results.push({ key, action: old ? 'configured' : 'created', revision: rev });
      }
      if (rev !== startRev) this.db.prepare(`UPDATE meta SET value = ? WHERE key = 'revision'`).run(rev);
      this.db.exec('COMMIT');
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    }
    if (rev !== startRev) this.emit(rev);
    return results;
  }

  delete(key: ResourceKey): number | undefined {
    this.db.exec('BEGIN IMMEDIATE');
    let rev: number;
    try {
      const res = this.db.prepare(`DELETE FROM resources WHERE kind = ? AND namespace = ? AND name = ?`).run(key.kind, key.namespace, key.name);
      if (Number(res.changes) === 0) {
        this.db.exec('ROLLBACK');
        return undefined;
      }
      rev = this.revision() + 1;
      this.db.prepare(`UPDATE meta SET value = ? WHERE key = 'revision'`).run(rev);
      this.db.exec('COMMIT');
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    }
    this.emit(rev);
    return rev;
  }

  get(key: ResourceKey): StoredResource | undefined {
    const row = this.row(key);
    return row && toResource(row);
  }

  private row(key: ResourceKey): Row | undefined {
    return this.db.prepare(`SELECT * FROM resources WHERE kind = ? AND namespace = ? AND name = ?`).get(key.kind, key.namespace, key.name) as Row | undefined;
  }

  list(kind?: string, namespace?: string): StoredResource[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM resources WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR namespace = ?2)
         ORDER BY kind, namespace, name`,
      )
      .all(kind ?? null, namespace ?? null) as unknown as Row[];
    return rows.map(toResource);
  }

  watch(fn: (e: StoreEvent) => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  close(): void {
    this.db.close();
  }

  private emit(revision: number): void {
    for (const w of this.watchers) w({ revision });
  }
}

function toResource(row: Row): StoredResource {
  const body = JSON.parse(row.body) as { metadata: Resource['metadata']; spec: unknown };
  const metadata = row.created_at ? { ...body.metadata, creationTimestamp: row.created_at } : body.metadata;
  return { apiVersion: row.api_version, kind: row.kind, metadata, spec: body.spec, revision: row.revision, created: row.created ?? row.revision };
}
