// PURE: how Istio matches each attribute of an AuthorizationPolicy in Envoy RBAC
// (pilot/pkg/security/authz/model/generator.go): one generator per key, on the permission side
// (what is asked: destination, SNI, host, method, path, Envoy metadata) or the principal side (who
// asks: addresses, identities, request principals, headers, JWT claims). A generator matches one
// value at a time (`one`, ORed by the caller) or all of a key's values at once (`all`, where Istio
// builds one matcher for the list). HTTP-only keys cannot be matched on a TCP chain.
import { cidrRange, headerMatcher, isPathTemplate, jwtClaim, jwtClaims, metadataValue, orValues, prefix, quoteMeta, regex, stringMatcher, stringOrValues, stringValue, uriTemplate, type Obj } from './authz-match.ts';

/** Why a value or a rule could not be generated (Istio's errors; they never reach the user). */
export class Unmatchable {
  readonly reason: string;
  constructor(reason: string) {
    this.reason = reason;
  }
}
export type Out = Obj | undefined | Unmatchable;
const httpOnly = (key: string) => new Unmatchable(`"${key}" is HTTP only`);

/** A generator matches a key's values one at a time, or (`all`) all of them in one matcher. */
export type Generator =
  | { side: 'permission' | 'principal'; one: (key: string, value: string, tcp: boolean) => Out }
  | { side: 'permission' | 'principal'; all: (key: string, values: readonly string[], tcp: boolean) => Out };

/**
 * The peer's identity, as its certificate proves it (the URI SAN, spiffe://...). Istio matches a
 * filter-state principal instead only where ztunnel carries the identity (ambient); sidecars
 * terminate mTLS themselves.
 */
const authenticated = (m: Obj): Obj => ({ authenticated: { principal_name: m } });
const cidr = (wrap: string) => (_k: string, v: string): Out => {
  const range = cidrRange(v);
  return range ? { [wrap]: range } : new Unmatchable(`invalid address ${v}`);
};

// ---- permissions ----

const destIP: Generator = { side: 'permission', one: cidr('destination_ip') };
export const destPort: Generator = {
  side: 'permission',
  one: (_k, v) => (/^[0-9]+$/.test(v) && Number(v) <= 65535 ? { destination_port: Number(v) } : new Unmatchable(`invalid port ${v}`)),
};
const connSNI: Generator = { side: 'permission', one: (_k, v) => ({ requested_server_name: stringMatcher(v) }) };
export const host: Generator = { side: 'permission', one: (k, v, tcp) => (tcp ? httpOnly(k) : { header: headerMatcher(':authority', v, true) }) };
export const method: Generator = { side: 'permission', one: (k, v, tcp) => (tcp ? httpOnly(k) : { header: headerMatcher(':method', v) }) };
export const path: Generator = {
  side: 'permission',
  one: (k, v, tcp) => (tcp ? httpOnly(k) : isPathTemplate(v) ? { uri_template: uriTemplate(v) } : { url_path: { path: stringMatcher(v) } }),
};

/** "experimental.envoy.filters.a.b[c]": filter envoy.filters.a.b's dynamic metadata at key c; "[v]" a list holding v. */
const envoyFilter: Generator = {
  side: 'permission',
  all: (k, values) => {
    const parts = k.replace(/^experimental\./, '').replace(/\]$/, '').split('[');
    if (parts.length < 2) return new Unmatchable(`invalid key ${k}`);
    const [filter, ...rest] = parts;
    const matchers = values.map((v) => {
      const m = stringValue(stringMatcher(v.replace(/^[[\]]+|[[\]]+$/g, '')));
      return v.startsWith('[') && v.endsWith(']') ? { list_match: { one_of: m } } : m;
    });
    // Go's SplitN(…, "[", 2): everything after the first "[" is the key.
    return { metadata: metadataValue(filter, rest.join('['), orValues(matchers)) };
  },
};

// ---- principals ----

export const srcIP: Generator = { side: 'principal', one: cidr('direct_remote_ip') };
export const remoteIP: Generator = { side: 'principal', one: cidr('remote_ip') };
export const srcNamespace: Generator = {
  side: 'principal',
  one: (_k, v) => authenticated(regex(`.*/ns/${v.split('*').map(quoteMeta).join('.*')}/.*`)),
};
/** "sa" (of the policy's namespace) or "ns/sa", anywhere in a SPIFFE id's path, as a whole segment. */
export const srcServiceAccount = (policyNamespace: string): Generator => ({
  side: 'principal',
  one: (_k, v) => {
    const slash = v.indexOf('/');
    const [ns, sa] = slash < 0 ? [policyNamespace, v] : [v.slice(0, slash), v.slice(slash + 1)];
    return authenticated(regex(`spiffe://.+/ns/${quoteMeta(ns)}/(.+/|)sa/${quoteMeta(sa)}(/.+)?`));
  },
});
export const srcTrustDomain: Generator = {
  side: 'principal',
  one: (_k, v) => {
    if (v === '*') return authenticated(prefix('spiffe://'));
    if (!v.includes('*')) return authenticated(prefix(`spiffe://${v}/`));
    const star = v.indexOf('*');
    return authenticated(regex(`spiffe://${quoteMeta(v.slice(0, star))}[^/]*${quoteMeta(v.slice(star + 1))}/.*`));
  },
};
export const srcPrincipal: Generator = { side: 'principal', one: (_k, v) => authenticated(stringMatcher(v, 'spiffe://')) };
const header: Generator = {
  side: 'principal',
  one: (k, v, tcp) => {
    if (tcp) return httpOnly(k);
    const name = inBrackets(k.slice('request.headers'.length));
    return name === undefined ? new Unmatchable(`invalid key ${k}`) : { header: headerMatcher(name, v) };
  },
};

const ANY = regex('.+');

/**
 * "iss/sub" of a JWT: the issuer may itself hold "/" (a URL), so the subject is after the last one.
 * A wildcard at the start applies to the issuer, at the end to the subject.
 */
function requestPrincipal(value: string): Obj {
  const idx = value.lastIndexOf('/');
  const found = idx >= 0;
  const [iss, sub] = found ? [value.slice(0, idx), value.slice(idx + 1)] : [value, ''];
  let mIss: Obj;
  let mSub: Obj;
  if (value === '*') [mIss, mSub] = [ANY, ANY];
  else if (value.startsWith('*')) {
    if (found) [mIss, mSub] = [iss === '*' ? ANY : { suffix: iss.slice(1) }, { exact: sub }];
    else [mIss, mSub] = [ANY, { suffix: value.slice(1) }];
  } else if (value.endsWith('*')) {
    if (found) [mIss, mSub] = [{ exact: iss }, sub === '*' ? ANY : { prefix: sub.slice(0, -1) }];
    else [mIss, mSub] = [{ prefix: value.slice(0, -1) }, ANY];
  } else [mIss, mSub] = [{ exact: iss }, { exact: sub }];
  return { and_ids: { ids: [{ metadata: jwtClaim('iss', mIss) }, { metadata: jwtClaim('sub', mSub) }] } };
}

export const requestPrincipals: Generator = {
  side: 'principal',
  all: (k, values, tcp) => {
    if (tcp) return httpOnly(k);
    const or = values.map(requestPrincipal);
    return or.length === 1 ? or[0] : or.length ? { or_ids: { ids: or } } : undefined;
  },
};
const claim = (claims: (k: string) => string[] | undefined): Generator => ({
  side: 'principal',
  all: (k, values, tcp) => {
    if (tcp) return httpOnly(k);
    const path = claims(k);
    return path ? { metadata: jwtClaims(path, stringOrValues(values)) } : new Unmatchable(`invalid key ${k}`);
  },
});
const audiences = claim(() => ['aud']);
const presenter = claim(() => ['azp']);
const claims = claim((k) => inNestedBrackets(k.slice('request.auth.claims'.length)));

/** "[name]" -> "name" (extractNameInBrackets). */
function inBrackets(s: string): string | undefined {
  return s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : undefined;
}

/** "[a][b]" -> ["a", "b"]; anything else read as one "[name]" (extractNameInNestedBrackets). */
function inNestedBrackets(s: string): string[] | undefined {
  const out: string[] = [];
  for (let begin = 0; begin < s.length; ) {
    const end = s[begin] === '[' ? s.indexOf(']', begin + 1) : -1;
    const open = s.indexOf('[', begin + 1);
    if (end < 0 || (open >= 0 && open < end)) {
      const one = inBrackets(s);
      return one === undefined ? undefined : [one];
    }
    out.push(s.slice(begin + 1, end));
    begin = end + 1;
  }
  return out;
}

/** The generator of a `when` key; undefined for a key Istio does not know (the rule is skipped). */
export function conditionGenerator(key: string, policyNamespace: string): Generator | undefined {
  if (key === 'destination.ip') return destIP;
  if (key === 'destination.port') return destPort;
  if (key === 'connection.sni') return connSNI;
  if (key.startsWith('experimental.envoy.filters.')) return envoyFilter;
  if (key === 'source.ip') return srcIP;
  if (key === 'remote.ip') return remoteIP;
  if (key === 'source.namespace') return srcNamespace;
  if (key === 'source.trustDomain') return srcTrustDomain;
  if (key === 'source.serviceAccount') return srcServiceAccount(policyNamespace);
  if (key === 'source.principal') return srcPrincipal;
  if (key === 'request.auth.principal') return requestPrincipals;
  if (key === 'request.auth.audiences') return audiences;
  if (key === 'request.auth.presenter') return presenter;
  if (key.startsWith('request.headers')) return header;
  if (key.startsWith('request.auth.claims')) return claims;
  return undefined;
}
