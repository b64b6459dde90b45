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
import type { Obj } from './authz-match.ts';
import { Unmatchable, conditionGenerator, destPort, host, method, path, remoteIP, requestPrincipals, srcIP, srcNamespace, srcPrincipal, srcServiceAccount, srcTrustDomain, type Generator } from './authz-generators.ts';
import { expandTrustDomainAliases, replaceTrustDomainAliases, type TrustBundle } from './authz-trust.ts';

/** Envoy's RBAC actions: AUDIT is LOG. */
export type RbacAction = 'ALLOW' | 'DENY' | 'LOG';

// ---- the model ----

/** One field of a permission or principal: its key, values and not-values, and how to match them. */
interface Field {
  readonly key: string;
  values: string[];
  notValues: string[];
  readonly gen: Generator;
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
