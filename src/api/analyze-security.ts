// `weft analyze` for the security kinds (AuthorizationPolicy, PeerAuthentication,
// RequestAuthentication), with the codes and texts of Istio's analyzers
// (../shared/conformance/istio/analyzer-messages.yaml). Pure: resources in, messages out.
//
// From the resources alone, what Istio's schema analyzer reports as warnings (IST0133
// SchemaWarning: its validation's warnings, pkg/config/validation/validation.go):
//   - a `selector` without labels (validateWorkloadSelector): it selects every workload, as no
//     selector does, which is rarely what was meant;
//   - a DENY rule that, on a TCP port, denies every connection: its HTTP-only fields (hosts,
//     methods, paths, request principals, request headers, JWT claims) cannot be matched there,
//     and a DENY rule drops them (it denies more, never less), so a rule with only such fields
//     matches everything. Istio warns by a rougher test (a rule with `from` and no `to` whose
//     sources set none of principals, namespaces, service accounts or IP blocks, or a rule with `to`
//     whose operations set no ports); Weft's says it exactly where the rule keeps no condition on a
//     TCP chain (control/translate/authz-rule.ts): every `when` key, some source and some
//     operation HTTP-only. Where Istio's test warns of a rule that keeps a condition (principals
//     with methods) Weft does not, and where Istio's misses one (a `when` on request headers
//     alone) Weft does not miss it;
//   - a RequestAuthentication's inline `jwks` with a private key (warnPrivateJwksKeys): only public
//     keys are used, and a private one does not belong in config.
// With the running mesh (its workloads: namespace and labels), Istio's AuthorizationPoliciesAnalyzer:
//   - IST0127 NoMatchingWorkloadsFound: a policy that applies to no workload. Istio checks
//     AuthorizationPolicies; Weft also PeerAuthentications and RequestAuthentications, by the rules
//     its control plane selects them with (policy-select.ts, peer-auth.ts): of its namespace, a
//     selector's labels (none: every workload); of the root namespace, without a selector, the
//     mesh's (never reported, as in Istio); with one, an AuthorizationPolicy the mesh's workloads
//     with those labels, a RequestAuthentication its own namespace's, a PeerAuthentication none. A policy with targetRef(s) applies to no sidecar at
//     all, which WEFT0001 already says;
//   - IST0101 ReferencedResourceNotFound, "namespace": a source `namespaces` or `notNamespaces`
//     value (exact, "prefix*", "*suffix") that no namespace of the mesh matches: a namespace of
//     the mesh is one a workload runs in. Weft's own, with the same message: the namespace of a
//     principal ("<trust domain>/ns/<namespace>/sa/<account>") and of a service account
//     ("<namespace>/<account>").

import type { AuthorizationPolicy, AuthorizationRule, PeerAuthentication, RequestAuthentication, Resource } from './types.ts';
import { describeKey } from './types.ts';
import type { AnalysisMessage } from './analyze.ts';
import { ROOT_NAMESPACE } from './rules.ts';
import { type PolicyTarget, authorizationPolicyApplies, requestAuthenticationApplies } from './policy-select.ts';
import { peerAuthenticationApplies } from './peer-auth.ts';

/** A workload of the running mesh, as policies select it: its namespace and labels. */
export type MeshWorkload = PolicyTarget;

type Policy = Resource<{ selector?: { matchLabels?: Record<string, string> }; targetRef?: unknown; targetRefs?: unknown[] }>;

const SECURITY_KINDS = ['AuthorizationPolicy', 'PeerAuthentication', 'RequestAuthentication'];
const nameOf = (r: Resource) => describeKey({ kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name });

export function securityMessages(resources: readonly Resource[], workloads?: readonly MeshWorkload[]): AnalysisMessage[] {
  const policies = resources.filter((r) => SECURITY_KINDS.includes(r.kind)) as Policy[];
  const aps = policies.filter((p) => p.kind === 'AuthorizationPolicy') as AuthorizationPolicy[];
  return [
    ...policies.flatMap(selectorWithoutLabels),
    ...aps.flatMap(denyAllTcp),
    ...policies.filter((p) => p.kind === 'RequestAuthentication').flatMap((ra) => privateJwksKeys(ra as RequestAuthentication)),
    ...(workloads ? [...policies.flatMap((p) => noMatchingWorkloads(p, workloads)), ...aps.flatMap((ap) => namespacesNotFound(ap, workloads))] : []),
  ];
}

const schemaWarning = (r: Resource, path: string, warning: string): AnalysisMessage => ({ code: 'IST0133', level: 'Warning', resource: nameOf(r), path, message: `Schema validation warning: ${warning}` });

// ---- IST0133: a selector without labels ----

function selectorWithoutLabels(p: Policy): AnalysisMessage[] {
  const selector = p.spec.selector;
  if (!selector || Object.keys(selector.matchLabels ?? {}).length > 0) return [];
  return [schemaWarning(p, 'spec.selector', 'workload selector specified without labels')];
}

// ---- IST0133: a DENY rule that denies every TCP connection ----

const HTTP_ONLY_SOURCE = ['requestPrincipals', 'notRequestPrincipals'];
const HTTP_ONLY_OPERATION = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'];
const isHttpOnlyKey = (k: string) => k.startsWith('request.headers') || k.startsWith('request.auth.');

/** The fields an object sets (a list counts when it has values, as protobuf reads an empty one). */
const setFields = (o: object | undefined): string[] => Object.entries(o ?? {}).filter(([, v]) => (Array.isArray(v) ? v.length > 0 : v !== undefined && v !== null)).map(([k]) => k);

/** Whether the rule, on a TCP chain, keeps no condition at all, and had an HTTP-only one to drop. */
function matchesAllTcp(rule: AuthorizationRule): boolean {
  const sources = (rule.from ?? []).map((f) => setFields(f.source));
  const operations = (rule.to ?? []).map((t) => setFields(t.operation));
  const keys = (rule.when ?? []).map((w) => w.key);
  const httpOnly = [...sources.flat(), ...operations.flat()].some((k) => HTTP_ONLY_SOURCE.includes(k) || HTTP_ONLY_OPERATION.includes(k)) || keys.some(isHttpOnlyKey);
  if (!httpOnly || !keys.every(isHttpOnlyKey)) return false;
  const anySource = sources.length === 0 || sources.some((s) => s.every((k) => HTTP_ONLY_SOURCE.includes(k)));
  const anyOperation = operations.length === 0 || operations.some((o) => o.every((k) => HTTP_ONLY_OPERATION.includes(k)));
  return anySource && anyOperation;
}

const DENY_ALL_TCP =
  'configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port';

function denyAllTcp(ap: AuthorizationPolicy): AnalysisMessage[] {
  if (ap.spec.action !== 'DENY') return [];
  return (ap.spec.rules ?? []).flatMap((rule, i) => (matchesAllTcp(rule) ? [schemaWarning(ap, `spec.rules[${i}]`, DENY_ALL_TCP)] : []));
}

// ---- IST0133: private key material in an inline jwks ----

/** jwk.Parse's private kinds: RSA, EC and OKP keys with their private part "d", and symmetric ("oct") keys. */
const isPrivateKey = (k: unknown): boolean => {
  const key = k !== null && typeof k === 'object' ? (k as Record<string, unknown>) : {};
  return key.kty === 'oct' || (['RSA', 'EC', 'OKP'].includes(String(key.kty)) && key.d !== undefined);
};

function privateJwksKeys(ra: RequestAuthentication): AnalysisMessage[] {
  return (ra.spec.jwtRules ?? []).flatMap((rule, i) => {
    if (!rule.jwks) return [];
    // Validation parsed it already: a key set {"keys": [...]}, or one key.
    const set = JSON.parse(rule.jwks) as Record<string, unknown>;
    const keys: unknown[] = Array.isArray(set.keys) ? set.keys : [set];
    return keys.flatMap((k, j) => (isPrivateKey(k) ? [schemaWarning(ra, `spec.jwtRules[${i}].jwks`, `jwks key at index ${j} contains private key material; only public keys are used for verification`)] : []));
  });
}

// ---- IST0127 NoMatchingWorkloadsFound ----

/** Whether the policy applies to the workload, as the control plane selects it. */
function appliesTo(p: Policy, w: MeshWorkload): boolean {
  if (p.kind === 'AuthorizationPolicy') return authorizationPolicyApplies(p as AuthorizationPolicy, w);
  if (p.kind === 'RequestAuthentication') return requestAuthenticationApplies(p as RequestAuthentication, w);
  return peerAuthenticationApplies(p as PeerAuthentication, w);
}

/** Kubernetes' labels.Set String(): "a=1,b=2", keys sorted. */
const selectorString = (labels: Readonly<Record<string, string>>) =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');

function noMatchingWorkloads(p: Policy, workloads: readonly MeshWorkload[]): AnalysisMessage[] {
  if (p.spec.targetRef || p.spec.targetRefs?.length) return [];
  const labels = p.spec.selector?.matchLabels ?? {};
  if (p.metadata.namespace === ROOT_NAMESPACE && !p.spec.selector) return [];
  if (workloads.some((w) => appliesTo(p, w))) return [];
  const rootSelector = p.kind === 'PeerAuthentication' && p.metadata.namespace === ROOT_NAMESPACE && Object.keys(labels).length > 0;
  const why = rootSelector ? ` (a PeerAuthentication with a selector in the root namespace ${ROOT_NAMESPACE} applies to no workload)` : '';
  // Istio prints the selector only when there is one (a namespace-wide policy: "").
  return [{ code: 'IST0127', level: 'Warning', resource: nameOf(p), path: p.spec.selector ? 'spec.selector' : 'metadata.namespace', message: `No matching workloads for this resource with the following labels: ${p.spec.selector ? selectorString(labels) : ''}${why}` }];
}

// ---- IST0101 ReferencedResourceNotFound: a namespace no workload runs in ----

/** Istio's namespaceMatch: "*", "*suffix", "prefix*", or the name (case aside). */
function namespaceMatch(ns: string, exp: string): boolean {
  if (exp === '*') return true;
  if (exp.startsWith('*')) return ns.endsWith(exp.slice(1));
  if (exp.endsWith('*')) return ns.startsWith(exp.slice(0, -1));
  return ns.toLowerCase() === exp.toLowerCase();
}

// "<trust domain>/ns/<namespace>/sa/<account>": the namespace, where it has no wildcard (a
// wildcard trust domain, "*" then "/ns/x/sa/y", still names x).
const PRINCIPAL_NAMESPACE = /\/ns\/([^/*]+)\/sa\/[^/]*$/;

/** The namespace a value names, by field: the value itself, a principal's "/ns/<namespace>/sa/", a service account's "<namespace>/". */
const NAMESPACE_OF: Readonly<Record<string, (v: string) => string | undefined>> = {
  namespaces: (v) => v,
  notNamespaces: (v) => v,
  principals: (v) => PRINCIPAL_NAMESPACE.exec(v)?.[1],
  notPrincipals: (v) => PRINCIPAL_NAMESPACE.exec(v)?.[1],
  serviceAccounts: (v) => (v.includes('/') ? v.split('/')[0] : undefined),
  notServiceAccounts: (v) => (v.includes('/') ? v.split('/')[0] : undefined),
};

function namespacesNotFound(ap: AuthorizationPolicy, workloads: readonly MeshWorkload[]): AnalysisMessage[] {
  const namespaces = [...new Set(workloads.map((w) => w.namespace))];
  const out: AnalysisMessage[] = [];
  (ap.spec.rules ?? []).forEach((rule, i) => {
    (rule.from ?? []).forEach((from, j) => {
      for (const [field, namespaceOf] of Object.entries(NAMESPACE_OF)) {
        const values = (from.source as Record<string, string[] | undefined> | undefined)?.[field] ?? [];
        values.forEach((v, k) => {
          const ns = namespaceOf(v);
          if (ns === undefined || namespaces.some((n) => namespaceMatch(n, ns))) return;
          out.push({
            code: 'IST0101',
            level: 'Error',
            resource: nameOf(ap),
            path: `spec.rules[${i}].from[${j}].source.${field}[${k}]`,
            message: `Referenced namespace not found: "${ns}" (no workload of the mesh runs in it)`,
          });
        });
      }
    });
  });
  return out;
}
