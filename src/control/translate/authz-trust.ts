// PURE: trust domains in AuthorizationPolicy principals, as Istio's pilot/pkg/security/trustdomain
// rewrites them. A mesh whose trust domain changed ("old-td" -> "new-td") keeps the old one as an
// alias: a policy naming "old-td/ns/foo/sa/bar" (or "cluster.local/...", which always means "this
// mesh") must then match workloads of every trust domain of the bundle.

/** The mesh's trust domain first, then its aliases (Istio's trustdomain.NewBundle). */
export type TrustBundle = readonly string[];

/** The trust domain Istio writes for "this mesh" in policies, whatever the mesh's own is. */
const CLUSTER_LOCAL = 'cluster.local';

/**
 * ReplaceTrustDomainAliases: each principal "<td>/ns/<ns>/sa/<sa>" whose trust domain is one of
 * the bundle's (or cluster.local) becomes one principal per trust domain of the bundle. Principals
 * of other forms ("*", "sa/bar", "*\/ns/foo/sa/bar") or of a foreign trust domain stay as they are.
 */
export function replaceTrustDomainAliases(bundle: TrustBundle, principals: readonly string[]): string[] {
  const out: string[] = [];
  for (const principal of principals) {
    const parts = principal.split('/');
    // Not a SPIFFE identity of five parts, or "*" as its trust domain: the trust domain is not checked.
    if (parts.length !== 5 || parts[0] === '*') {
      out.push(principal);
      continue;
    }
    const td = parts[0];
    if (!matchesAny(td, bundle) && td !== CLUSTER_LOCAL) {
      out.push(principal);
      continue;
    }
    const rewritten: string[] = [];
    for (const alias of bundle) {
      // "*-td/ns/..." already matches an alias it suffix-matches: keep it as written for that one.
      const p = suffixMatch(alias, td) ? principal : [alias, ...parts.slice(1)].join('/');
      if (!rewritten.includes(p)) rewritten.push(p);
    }
    out.push(...rewritten);
  }
  return out;
}

/** ExpandTrustDomainAliases: a trustDomains value that is one of the bundle's stands for all of them. */
export function expandTrustDomainAliases(bundle: TrustBundle, values: readonly string[]): string[] {
  const out: string[] = [];
  for (const v of values) {
    for (const td of bundle.includes(v) ? bundle : [v]) if (!out.includes(td)) out.push(td);
  }
  return out;
}

/** trustdomain's stringMatch: exact, "*", or a prefix or suffix wildcard on either side. */
function matchesAny(a: string, list: readonly string[]): boolean {
  return list.some((s) => a === s || s === '*' || prefixMatch(a, s) || prefixMatch(s, a) || suffixMatch(a, s) || suffixMatch(s, a));
}

function prefixMatch(a: string, pattern: string): boolean {
  return pattern.endsWith('*') && a.startsWith(pattern.slice(0, -1));
}

function suffixMatch(a: string, pattern: string): boolean {
  return pattern.startsWith('*') && a.endsWith(pattern.slice(1));
}
