// PURE: the one canonical path that routing, policy and the upstream all see, whichever form the
// request target came in (origin-form "/a/b", or absolute-form "http://host/a/b" through
// HTTP_PROXY). Envoy's normalize_path (RFC 3986 section 6: percent-encoded unreserved characters
// decoded, other escapes upper-cased, dot segments removed) and merge_slashes, as Istio's
// pathNormalization BASE and MERGE_SLASHES define them. Encoded slashes (%2F) are kept as they are.

export interface PathOptions {
  normalize: boolean;
  mergeSlashes: boolean;
}

const HEX = '0123456789ABCDEF';

function isUnreserved(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e;
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** Percent-escapes: unreserved ones decoded, the rest upper-cased. Undefined if an escape is malformed. */
function normalizeEscapes(p: string): string | undefined {
  if (p.indexOf('%') < 0) return p;
  let out = '';
  for (let i = 0; i < p.length; i++) {
    const ch = p.charCodeAt(i);
    if (ch !== 0x25) {
      out += p[i];
      continue;
    }
    const hi = hexVal(p.charCodeAt(i + 1));
    const lo = hexVal(p.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return undefined;
    const v = hi * 16 + lo;
    out += isUnreserved(v) ? String.fromCharCode(v) : `%${HEX[hi]}${HEX[lo]}`;
    i += 2;
  }
  return out;
}

/** RFC 3986 5.2.4, for an absolute path. */
function removeDotSegments(p: string): string {
  if (p.indexOf('.') < 0) return p;
  const segs = p.split('/');
  const out: string[] = [];
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i];
    const last = i === segs.length - 1;
    if (s === '.') {
      if (last) out.push('');
    } else if (s === '..') {
      out.pop();
      if (last) out.push('');
    } else out.push(s);
  }
  return '/' + out.join('/');
}

/**
 * The canonical form of a path (no query string), or undefined when it cannot be normalised (a
 * malformed escape): the request is then refused with 400, as Envoy does.
 */
export function canonicalPath(path: string, opts: PathOptions): string | undefined {
  let p = path;
  if (opts.normalize) {
    // Istio's BASE normalization: an encoded NUL is refused (400), a backslash is a slash (so
    // "/admin\\x" and "/x\\..\\admin" are the paths a DENY on "/admin/*" is written for).
    if (/%00/.test(p)) return undefined;
    if (p.indexOf('\\') >= 0) p = p.replace(/\\/g, '/');
    const e = normalizeEscapes(p);
    if (e === undefined) return undefined;
    p = removeDotSegments(e);
  }
  if (opts.mergeSlashes && p.indexOf('//') >= 0) p = p.replace(/\/{2,}/g, '/');
  return p;
}

/** A request target split into authority (absolute-form only), path and query. */
export interface Target {
  authority?: string;
  path: string;
  query: string;
}

/**
 * Splits a request target: origin-form ("/p?q") or absolute-form ("http://host:port/p?q").
 * Returns a string naming the problem when the target is neither.
 */
export function splitTarget(raw: string): Target | string {
  let authority: string | undefined;
  let rest = raw;
  if (raw[0] !== '/') {
    const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)(.*)$/.exec(raw);
    if (!m) return `request target "${raw.slice(0, 200)}" is neither a path nor an absolute URL`;
    if (m[1].toLowerCase() !== 'http') return `${m[1].toLowerCase()}:// URLs are not supported by the outbound proxy; use http:// and let the mesh add TLS`;
    authority = m[2];
    rest = m[3] || '/';
    if (rest[0] !== '/') rest = '/' + rest;
  }
  const hash = rest.indexOf('#');
  if (hash >= 0) rest = rest.slice(0, hash);
  const q = rest.indexOf('?');
  return q < 0 ? { authority, path: rest, query: '' } : { authority, path: rest.slice(0, q), query: rest.slice(q + 1) };
}

// reg-name / IPv4 (RFC 3986 host, permissive on characters Envoy accepts), or an IPv6 literal;
// then an optional port.
const AUTHORITY = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::(\d{1,5}))?$/;

/** Whether a Host value or URL authority is well formed ("svc", "svc:8080", "[::1]:80"). */
export function validAuthority(a: string): boolean {
  const m = AUTHORITY.exec(a);
  if (!m) return false;
  return m[1] === undefined || Number(m[1]) <= 65535;
}
