// The key sets the JWT layer (jwt.ts) verifies against: an inline one made once per config, or one
// fetched from its URI (RemoteJwks) and kept for its cache_duration (Envoy's default, 10 min), then
// fetched again when a request next needs it. Nothing blocks: a request waits only for the fetch of
// a key set that is missing or stale, every request that needs it waits on the one fetch, and the
// fetch gives up after the provider's timeout. A failed fetch is not kept: the next request tries
// again, and requests with tokens meanwhile fail as Envoy's do ("Jwks remote fetch is failed").
//
// jose is loaded on first use only: it reads node:crypto's webcrypto, which a sidecar without
// RequestAuthentication should not pay for (see the note on builtins in src/proxy/sidecar.ts).
import type * as Jose from 'jose';
import type { JwksSource } from '../xds-client/convert-jwt.ts';
import { getJson } from '../../util/http-json.ts';

/** What jose's jwtVerify takes: the key for a token's header, from a key set. */
export type KeySet = ReturnType<typeof Jose.createLocalJWKSet>;

let jose: Promise<typeof Jose> | undefined;
export function loadJose(): Promise<typeof Jose> {
  return (jose ??= import('jose'));
}


/** GETs `uri` and parses the body as JSON; rejects on a non-200 answer, a timeout, or bad JSON. */
export type FetchJson = (uri: string, timeoutMs: number) => Promise<unknown>;

interface Entry {
  keys?: KeySet;
  /** When `keys` were fetched (performance.now()). */
  at: number;
  /** The fetch under way, which requests that need this key set wait on. */
  pending?: Promise<KeySet | undefined>;
}

export class JwksCache {
  private readonly remote = new Map<string, Entry>();
  private readonly local = new WeakMap<object, KeySet>();
  private readonly fetchJson: FetchJson;
  private readonly now: () => number;
  /** Why the last fetch of each URI failed, for logs and /config_dump. */
  readonly lastError = new Map<string, string>();

  /** Told when fetching a URI starts failing (once, not on every failed retry), and when it works again. */
  private readonly onChange: ((uri: string, error: string | undefined) => void) | undefined;

  constructor(fetchJson: FetchJson = getJson, now: () => number = () => performance.now(), onChange?: (uri: string, error: string | undefined) => void) {
    this.fetchJson = fetchJson;
    this.now = now;
    this.onChange = onChange;
  }

  /** The key set of a provider; undefined when a remote one could not be fetched. */
  async keys(src: JwksSource): Promise<KeySet | undefined> {
    const { createLocalJWKSet } = await loadJose();
    if (src.kind === 'local') {
      let k = this.local.get(src.jwks);
      if (!k) this.local.set(src.jwks, (k = createLocalJWKSet(src.jwks as Jose.JSONWebKeySet)));
      return k;
    }
    let e = this.remote.get(src.uri);
    if (e?.keys && this.now() - e.at < src.cacheMs) return e.keys;
    if (!e) this.remote.set(src.uri, (e = { at: 0 }));
    const entry = e;
    entry.pending ??= this.fetchJson(src.uri, src.timeoutMs)
      .then((doc) => {
        const keys = createLocalJWKSet(asKeySet(doc));
        entry.keys = keys;
        entry.at = this.now();
        if (this.lastError.delete(src.uri)) this.onChange?.(src.uri, undefined);
        return keys;
      })
      .catch((err: Error) => {
        // As Envoy: a failed fetch leaves no key set (a stale one is not used past its duration).
        entry.keys = undefined;
        if (!this.lastError.has(src.uri)) this.onChange?.(src.uri, err.message);
        this.lastError.set(src.uri, err.message);
        return undefined;
      })
      .finally(() => (entry.pending = undefined));
    return entry.pending;
  }
}

function asKeySet(doc: unknown): Jose.JSONWebKeySet {
  const o = doc as { keys?: unknown } | null;
  if (o === null || typeof o !== 'object' || !Array.isArray(o.keys)) throw new Error('the document is no JSON Web Key Set ({"keys": [...]})');
  return o as Jose.JSONWebKeySet;
}

