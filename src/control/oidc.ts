// OpenID discovery of the key sets of RequestAuthentication rules that name an issuer and neither
// jwks nor jwksUri, as istiod's JWKS resolver does: the issuer's discovery document
// (<issuer>/.well-known/openid-configuration) says where its keys are (jwks_uri). Translate is
// pure, so the control plane resolves here and puts what it found on the snapshot
// (MeshSnapshot.discoveredJwksUris); a resolution that changes something asks for a push.
//
// Nothing here blocks a push: an issuer not resolved yet (or whose document cannot be had) is
// served with a key set that verifies no token (translate/jwt.ts), so its tokens are refused
// (401) rather than let through, as istiod's fake JWKS does; requests without a token still pass
// to AuthorizationPolicy. A failed fetch is tried again after RETRY_MS, a resolved one refreshed
// every REFRESH_MS (istiod's default refresh interval, 20 minutes).
import { getJson } from '../util/http-json.ts';
import { checkJwksUri } from '../api/requestauthentication.ts';

export const REFRESH_MS = 20 * 60_000;
const RETRY_MS = 10_000;
const TIMEOUT_MS = 5_000;

export type FetchJson = (uri: string, timeoutMs: number) => Promise<unknown>;

interface Entry {
  jwksUri?: string;
  error?: string;
  timer?: NodeJS.Timeout;
  fetching: boolean;
}

export interface OidcDiscoveryOptions {
  /** A resolution changed what some issuer's jwks_uri is (or whether it has one): push. */
  onChange: () => void;
  log?: (msg: string) => void;
  fetchJson?: FetchJson;
  refreshMs?: number;
  retryMs?: number;
}

/** The discovery document's URL for an issuer, as istiod makes it. */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
}

/** Why an issuer cannot be discovered, or undefined when it can: an http(s) URL with a host and no query or fragment. */
export function discoverable(issuer: string): string | undefined {
  let u: URL;
  try {
    u = new URL(issuer);
  } catch {
    return `issuer "${issuer}" is not a URL, so it has no OpenID discovery document; give jwksUri or jwks`;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return `issuer "${issuer}" is not an http(s) URL, so it has no OpenID discovery document; give jwksUri or jwks`;
  if (u.search || u.hash || issuer.includes('#') || issuer.includes('?')) return `issuer "${issuer}" has a query or fragment, which OpenID Discovery does not allow; give jwksUri or jwks`;
  return undefined;
}

export class OidcDiscovery {
  private readonly issuers = new Map<string, Entry>();
  private readonly o: Required<Omit<OidcDiscoveryOptions, 'log'>> & Pick<OidcDiscoveryOptions, 'log'>;
  private closed = false;
  /** Bumped on every change of a resolution: part of the snapshot's identity. */
  version = 0;

  constructor(o: OidcDiscoveryOptions) {
    this.o = { fetchJson: getJson, refreshMs: REFRESH_MS, retryMs: RETRY_MS, ...o };
  }

  /**
   * Each issuer's jwks_uri, as far as known now; those not known yet are being fetched. Issuers no
   * longer asked for are forgotten (and their refreshes stopped).
   */
  resolve(issuers: Iterable<string>): Map<string, string> {
    const wanted = new Set(issuers);
    for (const [issuer, e] of this.issuers) {
      if (wanted.has(issuer)) continue;
      if (e.timer) clearTimeout(e.timer);
      this.issuers.delete(issuer);
    }
    const out = new Map<string, string>();
    for (const issuer of wanted) {
      let e = this.issuers.get(issuer);
      if (!e) {
        this.issuers.set(issuer, (e = { fetching: false }));
        this.fetch(issuer, e);
      }
      if (e.jwksUri !== undefined) out.set(issuer, e.jwksUri);
    }
    return out;
  }

  /** Why an issuer has no jwks_uri yet, if a fetch failed: for logs and `weft analyze`. */
  errorOf(issuer: string): string | undefined {
    return this.issuers.get(issuer)?.error;
  }

  close(): void {
    this.closed = true;
    for (const e of this.issuers.values()) if (e.timer) clearTimeout(e.timer);
    this.issuers.clear();
  }

  private fetch(issuer: string, e: Entry): void {
    if (e.fetching || this.closed) return;
    e.fetching = true;
    const url = discoveryUrl(issuer);
    // OpenID Discovery's issuer is an https URL with no query or fragment: anything else is not
    // fetched (the author of a RequestAuthentication does not get to have the control plane GET
    // any URL of their choosing).
    const bad = discoverable(issuer);
    (bad ? Promise.reject(new Error(bad)) : this.o.fetchJson(url, TIMEOUT_MS))
      .then((doc) => {
        const uri = (doc as { jwks_uri?: unknown } | null)?.jwks_uri;
        if (typeof uri !== 'string') throw new Error(`${url} has no jwks_uri`);
        const why = checkJwksUri(uri);
        if (why) throw new Error(`${url} names a jwks_uri Weft cannot fetch: ${why}`);
        return uri;
      })
      .then(
        (uri) => this.settle(issuer, e, uri, undefined),
        (err: Error) => this.settle(issuer, e, undefined, err.message),
      );
  }

  private settle(issuer: string, e: Entry, uri: string | undefined, error: string | undefined): void {
    e.fetching = false;
    if (this.closed || this.issuers.get(issuer) !== e) return;
    // A failed refresh keeps the jwks_uri it had (the document is down, not the key set).
    const next = uri ?? e.jwksUri;
    if (error && error !== e.error) this.o.log?.(`OpenID discovery for issuer ${issuer} failed: ${error}; ${next ? `keeping ${next}` : 'its tokens are refused (401) until it works'}; trying again in ${this.o.retryMs / 1000} s`);
    if (!error && e.error) this.o.log?.(`OpenID discovery for issuer ${issuer} works again: keys at ${next}`);
    e.error = error;
    const changed = next !== e.jwksUri;
    e.jwksUri = next;
    e.timer = setTimeout(() => this.fetch(issuer, e), error ? this.o.retryMs : this.o.refreshMs);
    e.timer.unref();
    if (changed) {
      this.version++;
      this.o.onChange();
    }
  }
}
