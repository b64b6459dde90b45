// PURE: the Envoy matchers an AuthorizationPolicy's values become, as Istio's
// pilot/pkg/security/authz/matcher and model helpers write them. Output is Weft's proto JSON
// (snake_case field names; default values left out, as a decoded message has them), e.g.
// { safe_regex: { regex: '.+' } }.
//
// The wildcard rule is everywhere the same, with one exception per matcher noted below:
//   "*" any value (present), "prefix*" a prefix, "*suffix" a suffix, anything else exact.
// "*" is never an empty prefix or suffix: Envoy refuses those.

export type Obj = Record<string, unknown>;

// ---- string matchers (envoy.type.matcher.v3.StringMatcher) ----

export const exact = (v: string, ignoreCase = false): Obj => ({ exact: v, ...(ignoreCase ? { ignore_case: true } : {}) });
export const prefix = (v: string, ignoreCase = false): Obj => ({ prefix: v, ...(ignoreCase ? { ignore_case: true } : {}) });
export const suffix = (v: string, ignoreCase = false): Obj => ({ suffix: v, ...(ignoreCase ? { ignore_case: true } : {}) });
export const regex = (re: string): Obj => ({ safe_regex: { regex: re } });

/** Go's regexp.QuoteMeta: RE2 syntax, as Envoy's safe_regex reads it. */
export function quoteMeta(s: string): string {
  return s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

/**
 * StringMatcherWithPrefix: `value` with `pre` before it ("spiffe://" for principals). "*" is any
 * non-empty value (".+", the prefix dropped); "*suffix" with a prefix needs a regex, as Envoy has
 * no "prefix and suffix" matcher.
 */
export function stringMatcher(value: string, pre = ''): Obj {
  if (value === '*') return regex('.+');
  if (value.startsWith('*')) return pre === '' ? suffix(value.slice(1)) : regex(`${pre}.*${quoteMeta(value.slice(1))}`);
  if (value.endsWith('*')) return prefix(pre + value.slice(0, -1));
  return exact(pre + value);
}

// ---- header matchers (envoy.config.route.v3.HeaderMatcher) ----

/** A header's value: "*" is presence, not ".+" (an empty header value is still present). Hosts ignore case. */
export function headerMatcher(name: string, value: string, ignoreCase = false): Obj {
  if (value === '*') return { name, present_match: true };
  if (value.startsWith('*')) return { name, string_match: suffix(value.slice(1), ignoreCase) };
  if (value.endsWith('*')) return { name, string_match: prefix(value.slice(0, -1), ignoreCase) };
  return { name, string_match: exact(value, ignoreCase) };
}

// ---- value and metadata matchers ----

export const stringValue = (m: Obj): Obj => ({ string_match: m });

/** OrMatcher: one matcher stands alone. */
export function orValues(matchers: Obj[]): Obj {
  return matchers.length === 1 ? matchers[0] : { or_match: { value_matchers: matchers } };
}

/** StringOrMatcher: any of the values, by the wildcard rule. */
export function stringOrValues(values: readonly string[]): Obj {
  return orValues(values.map((v) => stringValue(stringMatcher(v))));
}

const pathOf = (keys: readonly string[]): Obj[] => keys.map((key) => ({ key }));

/** MetadataValueMatcher: `filter`'s dynamic metadata at one key. */
export function metadataValue(filter: string, key: string, value: Obj): Obj {
  return { filter, path: pathOf([key]), value };
}

/**
 * MetadataListValueMatcher: the value at `keys` is a list holding a match, or (extended, as JWT
 * claims are since Istio 1.22) is itself a match: a claim may be a string or a list of strings.
 */
export function metadataList(filter: string, keys: readonly string[], value: Obj, orScalar: boolean): Obj {
  const list = { list_match: { one_of: value } };
  return { filter, path: pathOf(keys), value: orScalar ? { or_match: { value_matchers: [list, value] } } : list };
}

// ---- JWT claims (the jwt_authn filter's payload) ----

const JWT_FILTER = 'envoy.filters.http.jwt_authn';
const JWT_PAYLOAD = 'payload';

/** One claim, matched as a string. */
export function jwtClaim(claim: string, m: Obj): Obj {
  return { filter: JWT_FILTER, path: pathOf([JWT_PAYLOAD, claim]), value: stringValue(m) };
}

/** A (nested) claim that may be a string or a list of strings. */
export function jwtClaims(claims: readonly string[], value: Obj): Obj {
  return metadataList(JWT_FILTER, [JWT_PAYLOAD, ...claims], value, true);
}

// ---- addresses ----

/**
 * AddrStrToCidrRange: "10.1.2.3" is a /32 (a /128 for IPv6), "10.0.0.0/8" as written (Go's netip
 * does not mask it: 10.1.2.3/8 stays 10.1.2.3). IPv6 is written as Go's netip prints it
 * (canonical, an IPv4-mapped address dotted, a bare address without its zone). prefix_len is a
 * UInt32Value. Undefined for what Go cannot parse (validation has refused most of it; the caller
 * skips the value, as Istio does).
 */
export function cidrRange(addr: string): Obj | undefined {
  const slash = addr.indexOf('/');
  let ip = slash < 0 ? addr : addr.slice(0, slash);
  if (ip.includes('%')) {
    if (slash >= 0) return undefined; // a prefix cannot have a zone
    ip = ip.slice(0, ip.indexOf('%'));
  }
  const net = process.getBuiltinModule('node:net');
  const family = net.isIP(ip);
  if (family !== 4 && family !== 6) return undefined;
  const max = family === 4 ? 32 : 128;
  const bits = slash < 0 ? String(max) : addr.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bits) || Number(bits) > max) return undefined;
  return { address_prefix: family === 4 ? ip : canonicalIPv6(ip), prefix_len: { value: Number(bits) } };
}

/** RFC 5952 text (the URL parser's), with IPv4-mapped addresses dotted as Go writes them. */
function canonicalIPv6(ip: string): string {
  const text = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(text);
  if (!mapped) return text;
  const [hi, lo] = [parseInt(mapped[1], 16), parseInt(mapped[2], 16)];
  return `::ffff:${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

// ---- paths ----

const MATCH_ONE = '{*}';
const MATCH_ANY = '{**}';
const URI_TEMPLATE = 'type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig';

export const isPathTemplate = (path: string): boolean => path.includes(MATCH_ONE) || path.includes(MATCH_ANY);

/** A path template ("/a/{*}/b", "/{**}/x") as Envoy's uri_template extension: {*} -> *, {**} -> **. */
export function uriTemplate(path: string): Obj {
  const template = path.replaceAll(MATCH_ANY, '**').replaceAll(MATCH_ONE, '*');
  return { name: 'uri-template', typed_config: { '@type': URI_TEMPLATE, path_template: template } };
}
