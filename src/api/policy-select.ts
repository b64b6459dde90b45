// PURE: which workloads' sidecars a security policy applies to, as Istio's sidecars take them; the
// control plane builds their filters by these (control/translate/authz.ts, translate/jwt.ts) and
// `weft analyze` checks a policy against the running mesh's workloads by them too
// (analyze-security.ts). PeerAuthentication's rule is beside its composition (peer-auth.ts).
// A policy with targetRef(s) is for gateways, waypoints and services: never a sidecar's.
import type { AuthorizationPolicy, RequestAuthentication } from './types.ts';
import { ROOT_NAMESPACE, labelsMatch } from './rules.ts';

/** What a policy is matched against: a workload's namespace and labels. */
export interface PolicyTarget {
  namespace: string;
  labels: Readonly<Record<string, string>>;
}

const targetsRefs = (p: { spec: { targetRef?: unknown; targetRefs?: readonly unknown[] } }) => Boolean(p.spec.targetRef || p.spec.targetRefs?.length);

/**
 * Istio's ListAuthorizationPolicies: policies of the root namespace and of the workload's whose
 * selector's labels are among the workload's (no selector: every workload; in the root namespace,
 * the mesh's).
 */
export function authorizationPolicyApplies(p: AuthorizationPolicy, w: PolicyTarget, rootNamespace: string = ROOT_NAMESPACE): boolean {
  const ns = p.metadata.namespace;
  return (ns === rootNamespace || ns === w.namespace) && !targetsRefs(p) && labelsMatch(p.spec.selector?.matchLabels, w.labels);
}

/**
 * A RequestAuthentication: of the workload's namespace, by its selector (none, or one without
 * labels: every workload); of the root namespace, without a selector, every workload of the mesh.
 */
export function requestAuthenticationApplies(ra: RequestAuthentication, w: PolicyTarget, rootNamespace: string = ROOT_NAMESPACE): boolean {
  if (targetsRefs(ra)) return false;
  const selector = ra.spec.selector?.matchLabels;
  const selects = Object.keys(selector ?? {}).length > 0;
  if (ra.metadata.namespace === w.namespace) return !selects || labelsMatch(selector, w.labels);
  return ra.metadata.namespace === rootNamespace && !selects;
}
