// The JWT layer: Envoy's jwt_authn filter (RequestAuthentication), first on an HCM that has it.
// One concern: is every token the request carries good, by the rule its path matches? Then:
//   - the request goes on, with the outputs of each token verified: forward_payload_header (the
//     payload segment, base64url), claim_to_headers, the token's header removed unless `forward`,
//     and the dynamic metadata the next layers read (istio-authn.ts);
//   - or it is refused, through errors.ts, with Envoy's status and body ("Jwt is expired", ...):
//     401 with `www-authenticate: Bearer realm="<url>", error="invalid_token"`, 403 for
//     "Audiences in Jwt are not allowed", as Envoy's filter answers.
// Envoy's semantics, step by step (extractor.cc, authenticator.cc, verifier.cc):
//   - the first rule whose match takes the path decides; none, or one without requires: nothing to do;
//   - a CORS preflight passes untouched (bypass_cors_preflight);
//   - headers a provider writes (forward_payload_header, claim_to_headers) are removed from the
//     request first, so that a client cannot send them itself;
//   - provider_name: the tokens at that provider's locations; none is "Jwt is missing"; each must
//     verify with that provider; allow_missing: the tokens at any provider's location, each verified
//     by the provider of its issuer whose locations hold it ("Jwt issuer is not configured" if none);
//     none passes; allow_missing_or_failed: always passes (its good tokens still give outputs);
//     requires_any: passes if one passes, else fails with the most telling error (one that is not
//     a missing token or an unknown issuer, else an unknown issuer); allow_missing beside other
//     requirements forgives only a missing token, allow_missing_or_failed any failure (Envoy's
//     AnyVerifierImpl); requires_all: fails with the first failure;
//   - a token: three base64url JSON parts, its issuer, then exp and nbf (clock skew, 60 s by
//     default), then audiences, then the key set (a failed fetch: "Jwks remote fetch is failed"),
//     then the signature (jose's jwtVerify).
// Nothing here blocks: a request with no token is decided at once, one with tokens waits only for
// WebCrypto and, when its key set is missing or stale, for that one fetch (jwks.ts).
import type * as Jose from 'jose';
import { ProxyError } from '../errors.ts';
import type { JwtAuthnConfig, JwtLocation, JwtProvider, JwtRequirement } from '../xds-client/convert-jwt.ts';
import type { HeaderList, RequestHead } from './types.ts';
import { type JwksCache, loadJose } from './jwks.ts';
import { type DynamicMetadata, ISTIO_AUTHN_METADATA, JWT_AUTHN_METADATA, istioAuthn, normalizePayload } from './istio-authn.ts';

/** Envoy's jwt_verify_lib status strings: the bodies of its 401s and 403s. */
export const JWT_STATUS = {
  missing: 'Jwt is missing',
  notYetValid: 'Jwt not yet valid',
  expired: 'Jwt is expired',
  badFormat: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
  headerBadBase64: 'Jwt header is an invalid Base64url encoded',
  headerBadJson: 'Jwt header is an invalid JSON',
  headerBadAlg: 'Jwt header [alg] field is required and must be a string',
  algNotImplemented: 'Jwt header [alg] is not supported',
  payloadBadBase64: 'Jwt payload is an invalid Base64url encoded',
  payloadBadJson: 'Jwt payload is an invalid JSON',
  issNotString: 'Jwt payload [iss] field is not a string',
  expNotInteger: 'Jwt payload [exp] field is not an integer',
  nbfNotInteger: 'Jwt payload [nbf] field is not an integer',
  audNotString: 'Jwt payload [aud] field is not a string or string list',
  unknownIssuer: 'Jwt issuer is not configured',
  audienceNotAllowed: 'Audiences in Jwt are not allowed',
  verificationFails: 'Jwt verification fails',
  kidAlgMismatch: "Jwks doesn't have key to match kid or alg from Jwt",
  jwksFetchFail: 'Jwks remote fetch is failed',
} as const;

type Status = 'ok' | (typeof JWT_STATUS)[keyof typeof JWT_STATUS];

/** Envoy caps the URL in the realm at this many bytes of path (MaximumUriLength). */
const MAX_REALM_PATH = 256;

export interface JwtContext {
  jwks: JwksCache;
  /** Seconds since the epoch (a clock for tests). */
  nowS?: () => number;
}

/** The layer's answer: the request goes on (with its metadata, possibly empty), or is refused. */
export type JwtOutcome = { ok: true; metadata: DynamicMetadata } | { ok: false; error: ProxyError };

const PASS: JwtOutcome = Object.freeze({ ok: true, metadata: Object.freeze({}) as DynamicMetadata });

/**
 * Authenticates `head` by `cfg`, rewriting its headers on success (outputs, the token removed).
 * Synchronous (a plain value) when nothing needs verifying, which is every request without a token.
 */
export function authenticate(cfg: JwtAuthnConfig, head: RequestHead, ctx: JwtContext): JwtOutcome | Promise<JwtOutcome> {
  const rule = cfg.rules.find((r) => ('prefix' in r.match ? head.path.startsWith(r.match.prefix) : head.path === r.match.path));
  if (!rule?.requires) return PASS;
  if (cfg.bypassCorsPreflight && isCorsPreflight(head)) return PASS;
  head.headers = sanitize(head.headers, cfg);
  const req = new Verification(cfg, head, ctx);
  const found = req.anyToken();
  // No token anywhere: each requirement is decided without verifying anything.
  if (!found) return outcome(evaluateMissing(rule.requires), req, head);
  return req.evaluate(rule.requires).then((s) => outcome(s, req, head));
}

function outcome(s: Status, req: Verification, head: RequestHead): JwtOutcome {
  if (s === 'ok') {
    head.headers = req.applyOutputs(head.headers);
    return req.metadata ? { ok: true, metadata: req.metadata } : PASS;
  }
  return { ok: false, error: rejection(s, head) };
}

/** Envoy's local reply for a failed verification. */
export function rejection(s: Exclude<Status, 'ok'>, head: RequestHead): ProxyError {
  const target = head.query ? `${head.path}?${head.query}` : head.path;
  const realm = `http://${head.authority}${target.slice(0, MAX_REALM_PATH)}`;
  const auth = `Bearer realm="${realm}"${s === JWT_STATUS.missing ? '' : ', error="invalid_token"'}`;
  return new ProxyError('jwt_authn_denied', s, undefined, { httpStatus: s === JWT_STATUS.audienceNotAllowed ? 403 : 401, headers: ['www-authenticate', auth] });
}

function isCorsPreflight(h: RequestHead): boolean {
  return h.method === 'OPTIONS' && !!header(h.headers, 'origin') && !!header(h.headers, 'access-control-request-method');
}

/** The first value of a header (names are lower case). */
function header(h: HeaderList, name: string): string | undefined {
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
  return undefined;
}

/** Every value of a header, joined with "," (Envoy's getAllOfHeaderAsString). */
function allOf(h: HeaderList, name: string): string | undefined {
  let v: string | undefined;
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) v = v === undefined ? h[i + 1] : `${v},${h[i + 1]}`;
  return v;
}

function without(h: HeaderList, names: ReadonlySet<string>): HeaderList {
  // The common case, nothing to remove, allocates nothing.
  let any = false;
  for (let i = 0; i < h.length && !any; i += 2) any = names.has(h[i]!);
  if (!any) return h;
  const out: HeaderList = [];
  for (let i = 0; i < h.length; i += 2) if (!names.has(h[i]!)) out.push(h[i]!, h[i + 1]!);
  return out;
}

/** The headers providers write, removed from what the client sent (Envoy's sanitizeHeaders). */
function sanitize(h: HeaderList, cfg: JwtAuthnConfig): HeaderList {
  return cfg.outputHeaders.size ? without(h, cfg.outputHeaders) : h;
}

/** A requirement where no location holds a token: only allow_missing (and what contains it) passes. */
function evaluateMissing(q: JwtRequirement): Status {
  switch (q.kind) {
    case 'provider':
      return JWT_STATUS.missing;
    case 'allow_missing':
    case 'allow_missing_or_failed':
      return 'ok';
    case 'any': {
      const g = anyGroup(q.of);
      return anyOutcome(g.children.map(evaluateMissing), g);
    }
    case 'all':
      return q.of.map(evaluateMissing).find((s) => s !== 'ok') ?? 'ok';
  }
}

/**
 * Envoy's requires_any (verifier.cc, AnyVerifierImpl): allow_missing and allow_missing_or_failed
 * among its requirements are no verifiers of their own but say how the others' failure ends (alone,
 * they are its one verifier).
 */
function anyGroup(of: readonly JwtRequirement[]): { children: JwtRequirement[]; allowMissing: boolean; allowFailed: boolean } {
  const allowMissing = of.some((x) => x.kind === 'allow_missing');
  const allowFailed = of.some((x) => x.kind === 'allow_missing_or_failed');
  const children: JwtRequirement[] = of.filter((x) => x.kind !== 'allow_missing' && x.kind !== 'allow_missing_or_failed');
  if (!children.length) children.push({ kind: allowFailed ? 'allow_missing_or_failed' : 'allow_missing' });
  return { children, allowMissing, allowFailed };
}

/**
 * requires_any's outcome once no child passed: the last error that is neither a missing token nor
 * an unknown issuer, else an unknown issuer, else a missing token; allow_missing_or_failed makes
 * any failure pass, allow_missing a missing token.
 */
function anyOutcome(statuses: readonly Status[], g: { allowMissing: boolean; allowFailed: boolean }): Status {
  if (statuses.includes('ok')) return 'ok';
  let final: Status = JWT_STATUS.missing;
  for (const s of statuses) if ((s !== JWT_STATUS.missing && s !== JWT_STATUS.unknownIssuer) || final === JWT_STATUS.missing) final = s;
  if (g.allowFailed || (g.allowMissing && final === JWT_STATUS.missing)) return 'ok';
  return final;
}

/** A token as found: where, and its raw text. */
interface Found {
  location: JwtLocation;
  raw: string;
}

/** A token's decoded parts, or why it cannot be read. */
interface Parsed {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  /** The payload's base64url segment, as the token carries it (forward_payload_header). */
  payloadSegment: string;
}

/** One request's verification: tokens found, results per provider and token (each verified once). */
class Verification {
  private readonly cfg: JwtAuthnConfig;
  private readonly head: RequestHead;
  private readonly ctx: JwtContext;
  private readonly results = new Map<string, Promise<Status>>();
  private query: URLSearchParams | undefined;
  private cookies: Map<string, string> | undefined;
  /** The providers whose tokens verified, with each token's location and parts: the outputs to apply. */
  private readonly verified: { p: JwtProvider; found: Found; parsed: Parsed }[] = [];
  metadata: DynamicMetadata | undefined;

  constructor(cfg: JwtAuthnConfig, head: RequestHead, ctx: JwtContext) {
    this.cfg = cfg;
    this.head = head;
    this.ctx = ctx;
  }

  anyToken(): boolean {
    for (const p of this.cfg.providers.values()) if (this.tokensAt(p.locations).length) return true;
    return false;
  }

  /** The tokens at these locations, in order, each once. */
  tokensAt(locations: readonly JwtLocation[]): Found[] {
    const out: Found[] = [];
    for (const l of locations) {
      const raw = this.extract(l);
      if (raw !== undefined && !out.some((f) => f.raw === raw && sameLocation(f.location, l))) out.push({ location: l, raw });
    }
    return out;
  }

  private extract(l: JwtLocation): string | undefined {
    if (l.kind === 'header') {
      const v = allOf(this.head.headers, l.name);
      if (v === undefined || !l.prefix) return v;
      // Envoy (extractor.cc): the prefix anywhere in the value, then the first run of base64url
      // characters and dots after it; the whole value if there is none.
      const at = v.indexOf(l.prefix);
      if (at < 0) return undefined;
      return /[A-Za-z0-9_.-]+/.exec(v.slice(at + l.prefix.length))?.[0] ?? v;
    }
    if (l.kind === 'param') {
      this.query ??= new URLSearchParams(this.head.query);
      return this.query.get(l.name) || undefined;
    }
    this.cookies ??= parseCookies(this.head.headers);
    return this.cookies.get(l.name) || undefined;
  }

  async evaluate(q: JwtRequirement): Promise<Status> {
    switch (q.kind) {
      case 'provider': {
        const p = this.cfg.providers.get(q.name)!;
        const tokens = this.tokensAt(p.locations);
        if (!tokens.length) return JWT_STATUS.missing;
        for (const t of tokens) {
          const s = await this.verify(p, t);
          if (s !== 'ok') return s;
        }
        return 'ok';
      }
      case 'allow_missing':
      case 'allow_missing_or_failed': {
        const s = await this.verifyAll();
        return q.kind === 'allow_missing_or_failed' ? 'ok' : s;
      }
      case 'any': {
        const g = anyGroup(q.of);
        const statuses: Status[] = [];
        for (const x of g.children) {
          const s = await this.evaluate(x);
          if (s === 'ok') return 'ok';
          statuses.push(s);
        }
        return anyOutcome(statuses, g);
      }
      case 'all': {
        for (const x of q.of) {
          const s = await this.evaluate(x);
          if (s !== 'ok') return s;
        }
        return 'ok';
      }
    }
  }

  /** allow_missing: every token at any provider's location, each by the provider of its issuer that reads that location. */
  private async verifyAll(): Promise<Status> {
    const all = this.tokensAt([...this.cfg.providers.values()].flatMap((p) => p.locations));
    for (const t of all) {
      const parsed = parse(t.raw);
      if (typeof parsed === 'string') return parsed;
      const iss = parsed.payload.iss;
      const p = [...this.cfg.providers.values()].find((x) => (x.issuer === '' || x.issuer === iss) && x.locations.some((l) => sameLocation(l, t.location)));
      if (!p) return JWT_STATUS.unknownIssuer;
      const s = await this.verify(p, t);
      if (s !== 'ok') return s;
    }
    return 'ok';
  }

  /** One token by one provider, once per request. */
  private verify(p: JwtProvider, t: Found): Promise<Status> {
    const key = `${p.name}\0${t.raw}`;
    let r = this.results.get(key);
    if (!r) this.results.set(key, (r = this.verifyOnce(p, t)));
    return r;
  }

  private async verifyOnce(p: JwtProvider, t: Found): Promise<Status> {
    const parsed = parse(t.raw);
    if (typeof parsed === 'string') return parsed;
    const { payload } = parsed;
    if (p.issuer !== '' && payload.iss !== p.issuer) return JWT_STATUS.unknownIssuer;
    const now = Math.floor(this.ctx.nowS?.() ?? Date.now() / 1000);
    if (typeof payload.nbf === 'number' && now + p.clockSkewS < payload.nbf) return JWT_STATUS.notYetValid;
    if (typeof payload.exp === 'number' && payload.exp !== 0 && now > payload.exp + p.clockSkewS) return JWT_STATUS.expired;
    if (p.audiences.length && !audienceAllowed(p.audiences, payload.aud)) return JWT_STATUS.audienceNotAllowed;
    const keys = await this.ctx.jwks.keys(p.jwks);
    if (!keys) return JWT_STATUS.jwksFetchFail;
    const s = await signature(t.raw, keys, now, p.clockSkewS);
    if (s === 'ok') this.verified.push({ p, found: t, parsed });
    return s;
  }

  /** The verified tokens' outputs, in the order they verified; metadata as a side effect. */
  applyOutputs(h: HeaderList): HeaderList {
    if (!this.verified.length) return h;
    const remove = new Set<string>();
    const add: HeaderList = [];
    for (const { p, found, parsed } of this.verified) {
      if (p.payloadInMetadata) {
        const payload = normalizePayload(parsed.payload, p.spaceDelimitedClaims);
        const md = (this.metadata ??= {});
        (md[JWT_AUTHN_METADATA] ??= {})[p.payloadInMetadata] = payload;
        md[ISTIO_AUTHN_METADATA] = istioAuthn(payload);
      }
      if (p.payloadHeader) set(add, remove, p.payloadHeader, p.padPayloadHeader ? pad(parsed.payloadSegment) : parsed.payloadSegment);
      for (const c of p.claimToHeaders) {
        // As Envoy: a claim the token lacks, or an empty one, adds nothing.
        const v = claimHeaderValue(claimAt(parsed.payload, c.claim));
        if (v) set(add, remove, c.header, v);
      }
      // Envoy removes a header token (not a query parameter's or a cookie's) unless `forward`.
      if (!p.forward && found.location.kind === 'header') remove.add(found.location.name);
    }
    return [...without(h, remove), ...add];
  }
}

function set(add: HeaderList, remove: Set<string>, name: string, value: string): void {
  remove.add(name);
  for (let i = 0; i < add.length; i += 2) {
    if (add[i] === name) {
      add[i + 1] = value;
      return;
    }
  }
  add.push(name, value);
}

function sameLocation(a: JwtLocation, b: JwtLocation): boolean {
  return a.kind === b.kind && a.name === b.name && (a.kind !== 'header' || a.prefix === (b as typeof a).prefix);
}

function parseCookies(h: HeaderList): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] !== 'cookie') continue;
    for (const part of h[i + 1]!.split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      const name = part.slice(0, eq).trim();
      if (!out.has(name)) out.set(name, part.slice(eq + 1).trim());
    }
  }
  return out;
}

/** A token's parts, checked as jwt_verify_lib's Jwt::parseFromString does; or the status saying why not. */
function parse(raw: string): Parsed | Exclude<Status, 'ok'> {
  const parts = raw.split('.');
  if (parts.length !== 3) return JWT_STATUS.badFormat;
  const header = json(parts[0]!);
  if (header === undefined) return JWT_STATUS.headerBadBase64;
  if (header === null) return JWT_STATUS.headerBadJson;
  if (typeof header.alg !== 'string') return JWT_STATUS.headerBadAlg;
  const payload = json(parts[1]!);
  if (payload === undefined) return JWT_STATUS.payloadBadBase64;
  if (payload === null) return JWT_STATUS.payloadBadJson;
  if (payload.iss !== undefined && typeof payload.iss !== 'string') return JWT_STATUS.issNotString;
  for (const [k, why] of [['exp', JWT_STATUS.expNotInteger], ['nbf', JWT_STATUS.nbfNotInteger]] as const) {
    if (payload[k] !== undefined && !Number.isInteger(payload[k])) return why;
  }
  const aud = payload.aud;
  if (aud !== undefined && typeof aud !== 'string' && !(Array.isArray(aud) && aud.every((a) => typeof a === 'string'))) return JWT_STATUS.audNotString;
  return { header, payload, payloadSegment: parts[1]! };
}

/** base64url JSON object: undefined when not base64url, null when not a JSON object. */
function json(segment: string): Record<string, unknown> | null | undefined {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(segment)) return undefined;
  try {
    const v = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

/**
 * Envoy's audience check (JwtAudienceChecker): any audience of the token among the allowed ones,
 * both compared without an http:// or https:// scheme and a trailing slash.
 */
function audienceAllowed(allowed: readonly string[], aud: unknown): boolean {
  const norm = (a: string) => a.replace(/^https?:\/\//, '').replace(/\/$/, '');
  const want = new Set(allowed.map(norm));
  const have = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  return have.some((a) => typeof a === 'string' && want.has(norm(a)));
}

/**
 * The signature, by jose against the key set. Time was checked above by Envoy's rules; jose's own
 * check is given one more second of tolerance than the skew, so that it never refuses a token
 * those rules accept (they differ only at the boundary second).
 */
async function signature(raw: string, keys: Parameters<typeof Jose.jwtVerify>[1], nowS: number, skewS: number): Promise<Status> {
  const jose = await loadJose();
  try {
    await jose.jwtVerify(raw, keys as Jose.JWTVerifyGetKey, { currentDate: new Date(nowS * 1000), clockTolerance: skewS + 1 });
    return 'ok';
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_JWKS_NO_MATCHING_KEY') return JWT_STATUS.kidAlgMismatch;
    if (code === 'ERR_JOSE_NOT_SUPPORTED' || code === 'ERR_JOSE_ALG_NOT_ALLOWED') return JWT_STATUS.algNotImplemented;
    if (code === 'ERR_JWT_EXPIRED') return JWT_STATUS.expired;
    return JWT_STATUS.verificationFails;
  }
}

/** A claim by name; "a.b" reads nested claims, as Envoy's claim_to_headers does. */
function claimAt(payload: Record<string, unknown>, name: string): unknown {
  if (name in payload) return payload[name];
  let v: unknown = payload;
  for (const part of name.split('.')) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/** Envoy's header value for a claim: strings as they are, numbers and booleans as text, lists and objects as base64 of their JSON. */
function claimHeaderValue(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (v !== null && typeof v === 'object') return Buffer.from(JSON.stringify(v)).toString('base64');
  return undefined;
}

function pad(segment: string): string {
  return segment + '='.repeat((4 - (segment.length % 4)) % 4);
}
