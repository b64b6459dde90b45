// ConfigStore: where config lives. The embedded SQLite store is the default; etcd and
// Kubernetes backends implement the same interface.
import type { Resource, ResourceKey } from '../../api/types.ts';

export interface StoredResource extends Resource {
  /** The store revision of the write that last changed this resource. */
  revision: number;
  /** The store revision of the write that created it (kept by later changes). */
  created: number;
}

export type ApplyAction = 'created' | 'configured' | 'unchanged';

export interface ApplyResult {
  key: ResourceKey;
  action: ApplyAction;
  revision: number;
}

export interface StoreEvent {
  revision: number;
}

export interface ConfigStore {
  /** Writes all resources in one transaction: all land, or none. Each change bumps the revision once. */
  apply(resources: readonly Resource[]): ApplyResult[];
  /** Deletes one resource; returns the new revision, or undefined if it did not exist. */
  delete(key: ResourceKey): number | undefined;
  get(key: ResourceKey): StoredResource | undefined;
  list(kind?: string, namespace?: string): StoredResource[];
  /** The revision of the last write (0 for an empty store). */
  revision(): number;
  /**
   * A control-plane secret by name (the CA's root, its key encrypted), or undefined. Secrets are
   * no resources: never listed, watched, counted in the revision or shown.
   */
  getSecret(name: string): string | undefined;
  /**
   * Stores a secret unless one of that name exists, atomically; returns what is stored then (the
   * existing value if there was one), so that control planes sharing a store agree on one.
   */
  putSecretIfAbsent(name: string, value: string): string;
  /** Stores a secret, replacing any of that name (the CA's roots, as a rotation moves on). */
  putSecret(name: string, value: string): void;
  /** Removes a secret and returns it, atomically: of two that take one name at once, one gets it. */
  takeSecret(name: string): string | undefined;
  /** The secrets whose names start with `prefix` (for sweeping expired ones). */
  secretsWithPrefix(prefix: string): { name: string; value: string }[];
  /** Called after every committed write. Returns an unsubscribe function. */
  watch(fn: (e: StoreEvent) => void): () => void;
  close(): void;
}
