// PURE: Envoy's jwt_authn filter config (envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication)
// -> what the sidecar's JWT layer (http/jwt.ts) runs. A field the layer cannot honour is a NACK
// naming it. What is honoured:
//   - providers: issuer, audiences, local_jwks (inline), remote_jwks (http_uri uri and timeout,
//     cache_duration; the sidecar fetches the URI itself, not through http_uri.cluster), forward,
//     from_headers (value_prefix), from_params, from_cookies, forward_payload_header (and its
//     padding), payload_in_metadata, normalize_payload_in_metadata, claim_to_headers,
//     clock_skew_seconds; jwt_cache_config and clear_route_cache change nothing a request sees
//     here (no token cache; routes are chosen after the filter) and are accepted;
//   - rules: a prefix or path match, and a requirement tree of provider_name, allow_missing,
//     allow_missing_or_failed, requires_any and requires_all; a rule without requires verifies
//     nothing;
//   - bypass_cors_preflight.
import { fail, duration } from './convert-util.ts';

export type JwtLocation = { kind: 'header'; name: string; prefix: string } | { kind: 'param'; name: string } | { kind: 'cookie'; name: string };

/** A provider's key set: inline (parsed once, here), or fetched from a URI (http/jwks.ts). */
export type JwksSource = { kind: 'local'; jwks: { keys: object[] } } | { kind: 'remote'; uri: string; timeoutMs: number; cacheMs: number };

export interface JwtProvider {
  name: string;
  /** '' accepts any issuer (Envoy: an empty issuer is not checked). */
  issuer: string;
  audiences: string[];
  jwks: JwksSource;
  forward: boolean;
  /** Where its tokens are found; Envoy's defaults (Authorization: Bearer, access_token) when none is configured. */
  locations: JwtLocation[];
  payloadHeader?: string;
  padPayloadHeader: boolean;
  payloadInMetadata?: string;
  spaceDelimitedClaims: string[];
  claimToHeaders: { header: string; claim: string }[];
  clockSkewS: number;
}

export type JwtRequirement =
  | { kind: 'provider'; name: string }
  | { kind: 'allow_missing' }
  | { kind: 'allow_missing_or_failed' }
  | { kind: 'any'; of: JwtRequirement[] }
  | { kind: 'all'; of: JwtRequirement[] };

export interface JwtRule {
  match: { prefix: string } | { path: string };
  /** undefined: the rule verifies nothing (Envoy's rule without requires). */
  requires?: JwtRequirement;
}

export interface JwtAuthnConfig {
  providers: ReadonlyMap<string, JwtProvider>;
  rules: JwtRule[];
  bypassCorsPreflight: boolean;
  /** Every header a provider writes (forward_payload_header, claim_to_headers): a client's own copies are removed. */
  outputHeaders: ReadonlySet<string>;
}

/** Envoy's default clock skew for exp and nbf, in seconds. */
export const DEFAULT_CLOCK_SKEW_S = 60;
/** Envoy's default for how long a fetched key set is kept (RemoteJwks.cache_duration): 10 min. */
export const DEFAULT_JWKS_CACHE_MS = 600_000;
/** Envoy's default locations when a provider names none. */
export const DEFAULT_LOCATIONS: readonly JwtLocation[] = Object.freeze([
  { kind: 'header', name: 'authorization', prefix: 'Bearer ' },
  { kind: 'param', name: 'access_token' },
]);

const FILTER_FIELDS = new Set(['@type', 'providers', 'rules', 'bypass_cors_preflight']);
const PROVIDER_FIELDS = new Set([
  'issuer',
  'audiences',
  'local_jwks',
  'remote_jwks',
  'forward',
  'from_headers',
  'from_params',
  'from_cookies',
  'forward_payload_header',
  'pad_forward_payload_header',
  'payload_in_metadata',
  'normalize_payload_in_metadata',
  'claim_to_headers',
  'clock_skew_seconds',
  'jwt_cache_config',
  'clear_route_cache',
]);

/** The filter's typed_config at `where` (e.g. "listener inbound|80: http_filters[0].typed_config"). */
export function jwtAuthnConfig(where: string, tc: any): JwtAuthnConfig {
  for (const k of Object.keys(tc)) if (!FILTER_FIELDS.has(k) && isGiven(tc[k])) fail(`${where}.${k}`, 'not supported by the sidecar (providers, rules and bypass_cors_preflight are)');
  const providers = new Map<string, JwtProvider>();
  for (const [name, p] of Object.entries(tc.providers ?? {})) providers.set(name, provider(`${where}.providers["${name}"]`, name, p));
  const rules = (tc.rules ?? []).map((r: any, i: number) => rule(`${where}.rules[${i}]`, r, providers));
  const outputHeaders = new Set<string>();
  for (const p of providers.values()) {
    if (p.payloadHeader) outputHeaders.add(p.payloadHeader);
    for (const c of p.claimToHeaders) outputHeaders.add(c.header);
  }
  return { providers, rules, bypassCorsPreflight: tc.bypass_cors_preflight === true, outputHeaders };
}

/** Protobuf's defaults say nothing: false, 0, "", [] and {} are as if unset. */
function isGiven(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  return true;
}

function provider(where: string, name: string, p: any): JwtProvider {
  for (const k of Object.keys(p)) if (!PROVIDER_FIELDS.has(k) && isGiven(p[k])) fail(`${where}.${k}`, 'not supported by the sidecar');
  const locations: JwtLocation[] = [
    ...(p.from_headers ?? []).map((h: any, i: number): JwtLocation => {
      if (!h.name) fail(`${where}.from_headers[${i}].name`, 'required');
      return { kind: 'header', name: String(h.name).toLowerCase(), prefix: h.value_prefix ?? '' };
    }),
    ...(p.from_params ?? []).map((n: string): JwtLocation => ({ kind: 'param', name: n })),
    ...(p.from_cookies ?? []).map((n: string): JwtLocation => ({ kind: 'cookie', name: n })),
  ];
  const claimToHeaders = (p.claim_to_headers ?? []).map((c: any, i: number) => {
    if (!c.header_name || !c.claim_name) fail(`${where}.claim_to_headers[${i}]`, 'header_name and claim_name are required');
    return { header: String(c.header_name).toLowerCase(), claim: String(c.claim_name) };
  });
  return {
    name,
    issuer: p.issuer ?? '',
    audiences: p.audiences ?? [],
    jwks: jwksSource(where, p),
    forward: p.forward === true,
    locations: locations.length ? locations : [...DEFAULT_LOCATIONS],
    ...(p.forward_payload_header ? { payloadHeader: String(p.forward_payload_header).toLowerCase() } : {}),
    padPayloadHeader: p.pad_forward_payload_header === true,
    ...(p.payload_in_metadata ? { payloadInMetadata: p.payload_in_metadata } : {}),
    spaceDelimitedClaims: p.normalize_payload_in_metadata?.space_delimited_claims ?? [],
    claimToHeaders,
    clockSkewS: Number(p.clock_skew_seconds ?? 0) || DEFAULT_CLOCK_SKEW_S,
  };
}

function jwksSource(where: string, p: any): JwksSource {
  if (p.local_jwks && p.remote_jwks) fail(where, 'only one of local_jwks and remote_jwks');
  if (p.local_jwks) {
    const w = `${where}.local_jwks`;
    const ds = p.local_jwks;
    let text: string;
    if (ds.inline_string !== undefined) text = ds.inline_string;
    else if (ds.inline_bytes !== undefined) text = Buffer.from(ds.inline_bytes, typeof ds.inline_bytes === 'string' ? 'base64' : undefined).toString('utf8');
    else fail(w, 'only inline_string and inline_bytes are supported (the sidecar reads no key files)');
    return { kind: 'local', jwks: parseJwks(w, text) };
  }
  if (p.remote_jwks) {
    const w = `${where}.remote_jwks`;
    const r = p.remote_jwks;
    for (const k of Object.keys(r)) if (!['http_uri', 'cache_duration'].includes(k) && isGiven(r[k])) fail(`${w}.${k}`, 'not supported by the sidecar (http_uri and cache_duration are)');
    const uri = r.http_uri?.uri;
    if (!uri) fail(`${w}.http_uri.uri`, 'required');
    let u: URL;
    try {
      u = new URL(uri);
    } catch {
      fail(`${w}.http_uri.uri`, `"${uri}" is not a URL`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') fail(`${w}.http_uri.uri`, 'must be http:// or https://');
    const timeoutMs = duration(`${w}.http_uri.timeout`, r.http_uri.timeout);
    if (timeoutMs <= 0) fail(`${w}.http_uri.timeout`, 'required, and more than 0');
    const cacheMs = r.cache_duration == null ? DEFAULT_JWKS_CACHE_MS : duration(`${w}.cache_duration`, r.cache_duration);
    return { kind: 'remote', uri, timeoutMs, cacheMs: cacheMs || DEFAULT_JWKS_CACHE_MS };
  }
  fail(where, 'needs local_jwks or remote_jwks');
}

/** A JSON Web Key Set, or one key (as Envoy and Istio take it), as a key set. */
export function parseJwks(where: string, text: string): { keys: object[] } {
  let v: any;
  try {
    v = JSON.parse(text);
  } catch {
    fail(where, 'Jwks is an invalid JSON');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(where, 'Jwks is an invalid JSON');
  if (!('keys' in v)) return { keys: [v] };
  if (!Array.isArray(v.keys)) fail(where, '[keys] in Jwks is not an array');
  return { keys: v.keys };
}

function rule(where: string, r: any, providers: ReadonlyMap<string, JwtProvider>): JwtRule {
  const m = r.match ?? {};
  for (const k of Object.keys(m)) if (!['prefix', 'path'].includes(k) && isGiven(m[k])) fail(`${where}.match.${k}`, 'not supported by the sidecar (prefix and path are)');
  const match = m.path !== undefined ? { path: String(m.path) } : m.prefix !== undefined ? { prefix: String(m.prefix) } : fail(`${where}.match`, 'needs prefix or path');
  if (r.requirement_name) fail(`${where}.requirement_name`, 'not supported by the sidecar (requires is)');
  return { match, ...(r.requires ? { requires: requirement(`${where}.requires`, r.requires, providers) } : {}) };
}

function requirement(where: string, q: any, providers: ReadonlyMap<string, JwtProvider>): JwtRequirement {
  if (q.provider_name !== undefined) {
    if (!providers.has(q.provider_name)) fail(`${where}.provider_name`, `no provider "${q.provider_name}"`);
    return { kind: 'provider', name: q.provider_name };
  }
  if (q.allow_missing !== undefined) return { kind: 'allow_missing' };
  if (q.allow_missing_or_failed !== undefined) return { kind: 'allow_missing_or_failed' };
  for (const [key, kind] of [['requires_any', 'any'], ['requires_all', 'all']] as const) {
    if (q[key] === undefined) continue;
    const list: any[] = q[key].requirements ?? [];
    if (list.length < 2) fail(`${where}.${key}.requirements`, 'needs at least two requirements');
    return { kind, of: list.map((x, i) => requirement(`${where}.${key}.requirements[${i}]`, x, providers)) };
  }
  if (q.provider_and_audiences !== undefined) fail(`${where}.provider_and_audiences`, 'not supported by the sidecar');
  fail(where, 'needs provider_name, allow_missing, allow_missing_or_failed, requires_any or requires_all');
}
