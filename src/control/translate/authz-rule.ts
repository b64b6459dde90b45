// PURE: one rule of an AuthorizationPolicy -> one Envoy RBAC policy (permissions: what is asked;
// principals: who asks), as Istio's pilot/pkg/security/authz/model does it:
//   - each `to` operation is one permission, each `from` source one principal (none: one that
//     matches anything); the rule's `when` conditions join every one of them, on the side their key
//     belongs to (destination.*, connection.sni and experimental.* are permissions; the rest
//     principals);
//   - within a permission or principal, its fields are ANDed, in Istio's order; a field's values are
//     ORed, its not-values ORed under a NOT;
//   - for a TCP filter chain, HTTP-only fields (hosts, methods, paths, request principals, headers,
//     JWT claims) cannot be matched. An ALLOW rule that has one is dropped (it allows less); a DENY
//     or AUDIT rule keeps its other fields (it denies or audits more), never the reverse.
import type { AuthorizationCondition, AuthorizationRule } from '../../api/types.ts';
import { cidrRange, headerMatcher, isPathTemplate, jwtClaim, jwtClaims, metadataValue, orValues, prefix, quoteMeta, regex, stringMatcher, stringOrValues, stringValue, uriTemplate, type Obj } from './authz-match.ts';
import { expandTrustDomainAliases, replaceTrustDomainAliases, type TrustBundle } from './authz-trust.ts';

/** Envoy's RBAC actions: AUDIT is LOG. */
export type RbacAction = 'ALLOW' | 'DENY' | 'LOG';

/** Why a value or a rule could not be generated (Istio's errors; they never reach the user). */
class Unmatchable {
  readonly reason: string;
  constructor(reason: string) {
    this.reason = reason;
  }
}
type Out = Obj | undefined | Unmatchable;
const httpOnly = (key: string) => new Unmatchable(`"${key}" is HTTP only`);

/** A generator matches a key's values one at a time, or (`all`) all of them in one matcher. */
type Generator =
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
const destPort: Generator = {
  side: 'permission',
  one: (_k, v) => (/^[0-9]+$/.test(v) && Number(v) <= 65535 ? { destination_port: Number(v) } : new Unmatchable(`invalid port ${v}`)),
};
const connSNI: Generator = { side: 'permission', one: (_k, v) => ({ requested_server_name: stringMatcher(v) }) };
const host: Generator = { side: 'permission', one: (k, v, tcp) => (tcp ? httpOnly(k) : { header: headerMatcher(':authority', v, true) }) };
const method: Generator = { side: 'permission', one: (k, v, tcp) => (tcp ? httpOnly(k) : { header: headerMatcher(':method', v) }) };
const path: Generator = {
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

const srcIP: Generator = { side: 'principal', one: cidr('direct_remote_ip') };
const remoteIP: Generator = { side: 'principal', one: cidr('remote_ip') };
const srcNamespace: Generator = {
  side: 'principal',
  one: (_k, v) => authenticated(regex(`.*/ns/${v.split('*').map(quoteMeta).join('.*')}/.*`)),
};
/** "sa" (of the policy's namespace) or "ns/sa", anywhere in a SPIFFE id's path, as a whole segment. */
const srcServiceAccount = (policyNamespace: string): Generator => ({
  side: 'principal',
  one: (_k, v) => {
    const slash = v.indexOf('/');
    const [ns, sa] = slash < 0 ? [policyNamespace, v] : [v.slice(0, slash), v.slice(slash + 1)];
    return authenticated(regex(`spiffe://.+/ns/${quoteMeta(ns)}/(.+/|)sa/${quoteMeta(sa)}(/.+)?`));
  },
});
const srcTrustDomain: Generator = {
  side: 'principal',
  one: (_k, v) => {
    if (v === '*') return authenticated(prefix('spiffe://'));
    if (!v.includes('*')) return authenticated(prefix(`spiffe://${v}/`));
    const star = v.indexOf('*');
    return authenticated(regex(`spiffe://${quoteMeta(v.slice(0, star))}[^/]*${quoteMeta(v.slice(star + 1))}/.*`));
  },
};
const srcPrincipal: Generator = { side: 'principal', one: (_k, v) => authenticated(stringMatcher(v, 'spiffe://')) };
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

const requestPrincipals: Generator = {
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

// ---- the model ----

/** One field of a permission or principal: its key, values and not-values, and how to match them. */
interface Field {
  readonly key: string;
  values: string[];
  notValues: string[];
  readonly gen: Generator;
}

/** The generator of a `when` key; undefined for a key Istio does not know (the rule is skipped). */
function conditionGenerator(key: string, policyNamespace: string): Generator | undefined {
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

const field = (gen: Generator, key: string, values?: readonly string[], notValues?: readonly string[]): Field[] =>
  values?.length || notValues?.length ? [{ key, values: [...(values ?? [])], notValues: [...(notValues ?? [])], gen }] : [];

/**
 * The fields of a rule: one list per permission, one per principal. Fields from `when` are the
 * same objects in every list (as Istio shares them), so a trust-domain rewrite of a `when`
 * source.principal is applied once per `from` source: Istio repeats it, and so does Weft.
 */
function model(rule: AuthorizationRule, policyNamespace: string): { permissions: Field[][]; principals: Field[][] } | Unmatchable {
  const basePermission: Field[] = [];
  const basePrincipal: Field[] = [];
  for (const w of rule.when ?? ([] as AuthorizationCondition[])) {
    const gen = conditionGenerator(w.key, policyNamespace);
    if (!gen) return new Unmatchable(`unknown attribute ${w.key}`);
    (gen.side === 'permission' ? basePermission : basePrincipal).push(...field(gen, w.key, w.values, w.notValues));
  }
  const principals = (rule.from ?? []).map(({ source: s }) => {
    if (!s) return [...basePrincipal];
    // Istio inserts each at the front: the last one inserted comes first.
    return [
      ...field(srcPrincipal, 'source.principal', s.principals, s.notPrincipals),
      ...field(requestPrincipals, 'request.auth.principal', s.requestPrincipals, s.notRequestPrincipals),
      ...field(srcServiceAccount(policyNamespace), 'source.serviceAccount', s.serviceAccounts, s.notServiceAccounts),
      ...field(srcTrustDomain, 'source.trustDomain', s.trustDomains, s.notTrustDomains),
      ...field(srcNamespace, 'source.namespace', s.namespaces, s.notNamespaces),
      ...field(remoteIP, 'remote.ip', s.remoteIpBlocks, s.notRemoteIpBlocks),
      ...field(srcIP, 'source.ip', s.ipBlocks, s.notIpBlocks),
      ...basePrincipal,
    ];
  });
  const permissions = (rule.to ?? []).map(({ operation: o }) => {
    if (!o) return [...basePermission];
    return [
      ...field(host, ':authority', o.hosts, o.notHosts),
      ...field(method, ':method', o.methods, o.notMethods),
      ...field(path, 'path-matcher', o.paths, o.notPaths),
      ...field(destPort, 'destination.port', o.ports, o.notPorts),
      ...basePermission,
    ];
  });
  return { permissions: permissions.length ? permissions : [basePermission], principals: principals.length ? principals : [basePrincipal] };
}

/** MigrateTrustDomain: principals and trust domains of the rule, across the mesh's trust domain aliases. */
function migrateTrustDomain(principals: Field[][], bundle: TrustBundle): void {
  for (const list of principals) {
    for (const f of list) {
      const rewrite = f.key === 'source.principal' ? replaceTrustDomainAliases : f.key === 'source.trustDomain' ? expandTrustDomainAliases : undefined;
      if (!rewrite) continue;
      if (f.values.length) f.values = rewrite(bundle, f.values);
      if (f.notValues.length) f.notValues = rewrite(bundle, f.notValues);
    }
  }
}

/** The matchers of one field: values ORed, not-values ORed and negated. Unmatchable fails an ALLOW rule. */
function matchersOf(f: Field, tcp: boolean, action: RbacAction): Obj[] | Unmatchable {
  const [or, not, one] = f.gen.side === 'permission' ? ['or_rules', 'not_rule', 'rules'] : ['or_ids', 'not_id', 'ids'];
  const out: Obj[] = [];
  for (const [values, negate] of [[f.values, false], [f.notValues, true]] as const) {
    if (!values.length) continue;
    let m: Obj | undefined;
    if ('all' in f.gen) {
      const r = f.gen.all(f.key, values, tcp);
      if (r instanceof Unmatchable) {
        // ALLOW: drop the whole rule (it allows less). DENY, AUDIT: drop this field (they match more).
        if (action === 'ALLOW') return r;
      } else m = r;
    } else {
      const each: Obj[] = [];
      for (const v of values) {
        const r = f.gen.one(f.key, v, tcp);
        if (r instanceof Unmatchable) {
          if (action === 'ALLOW') return r;
        } else if (r) each.push(r);
      }
      if (each.length) m = { [or]: { [one]: each } };
    }
    if (m) out.push(negate ? { [not]: m } : m);
  }
  return out;
}

/** A permission or principal: its fields ANDed, or anything when it has none. */
function combine(fields: Field[], tcp: boolean, action: RbacAction, side: 'permission' | 'principal'): Obj | Unmatchable {
  const and: Obj[] = [];
  for (const f of fields) {
    const m = matchersOf(f, tcp, action);
    if (m instanceof Unmatchable) return m;
    and.push(...m);
  }
  if (!and.length) and.push({ any: true });
  return side === 'permission' ? { and_rules: { rules: and } } : { and_ids: { ids: and } };
}

/**
 * The Envoy RBAC policy of one rule, or undefined where Istio skips the rule: an unknown `when`
 * key, or (ALLOW only) a value it cannot match, such as an HTTP-only field on a TCP chain.
 */
export function rulePolicy(rule: AuthorizationRule, policyNamespace: string, bundle: TrustBundle, tcp: boolean, action: RbacAction): Obj | undefined {
  const m = model(rule, policyNamespace);
  if (m instanceof Unmatchable) return undefined;
  migrateTrustDomain(m.principals, bundle);
  const permissions = m.permissions.map((fields) => combine(fields, tcp, action, 'permission'));
  const principals = m.principals.map((fields) => combine(fields, tcp, action, 'principal'));
  if ([...permissions, ...principals].some((x) => x instanceof Unmatchable)) return undefined;
  return { permissions, principals };
}

/** The policy of a policy without rules: it matches nothing (an ALLOW policy of this kind denies all). */
export const MATCH_NEVER: Obj = Object.freeze({ permissions: [{ not_rule: { any: true } }], principals: [{ not_id: { any: true } }] });
