// PURE: Istio's AuthorizationPolicy -> the Envoy filters of one sidecar's inbound side, exactly as
// Istio's pilot/pkg/security/authz/builder builds them (and model.ListAuthorizationPolicies picks
// the policies). translate.ts forProxy puts them on a sidecar's inbound listeners; the sidecar
// enforces them (proxy/authz/, http/authz.ts, http/ext-authz.ts, tcp/authz.ts). What it does:
//   - selection: policies of the root namespace (istio-system) and of the proxy's namespace whose
//     selector is a subset of the proxy's labels (no selector: all); a policy with targetRef(s)
//     names gateways, waypoints or services, never a sidecar, and is left out;
//   - order of filters: CUSTOM (an RBAC filter that only marks requests, then ext_authz, per
//     provider), then AUDIT, DENY and ALLOW, one RBAC filter each: a request must pass every one,
//     so DENY wins over ALLOW whatever the order of the policies;
//   - one Envoy policy per rule, named ns[<ns>]-policy[<name>]-rule[<i>]; a policy without rules
//     gets one that never matches (an ALLOW policy without rules denies everything);
//   - "istio.io/dry-run": "true" puts a policy's rules in shadow_rules: evaluated and counted
//     (stat prefix istio_dry_run_allow_ / _deny_), never enforced;
//   - CUSTOM: the provider (meshConfig.extensionProviders) decides; a bad or unknown provider, or
//     policies naming more than one provider, deny what the CUSTOM policies would have sent to it.
// Output is Weft's proto JSON (snake_case, default values left out), as the rest of translate/.
import type { AuthorizationPolicy } from '../../api/types.ts';
import { ROOT_NAMESPACE } from '../model/model.ts';
import { authorizationPolicyApplies } from '../../api/policy-select.ts';
import { MATCH_NEVER, rulePolicy, type RbacAction } from './authz-rule.ts';
import { enabledFor, resolveProviders, type BuiltExtAuthz, type ExtensionProvider, type MeshService } from './authz-extauthz.ts';
import type { Obj } from './authz-match.ts';

export type { ExtensionProvider, MeshService } from './authz-extauthz.ts';

/** An HTTP filter of the inbound HCM, or a network filter of a TCP chain: { name, typed_config }. */
export interface AuthzFilter {
  name: string;
  typed_config: Obj;
}

/** The proxy the policies are for. */
export interface AuthzProxy {
  namespace: string;
  labels: Readonly<Record<string, string>>;
}

/** The mesh settings the filters depend on. */
export interface AuthzMesh {
  /** The mesh's trust domain (the CA's): "cluster.local" unless set. */
  trustDomain: string;
  /** Earlier trust domains still honoured: a principal of any of them matches as one of this one. */
  trustDomainAliases?: readonly string[];
  /** meshConfig.extensionProviders: where CUSTOM policies send requests. */
  extensionProviders?: readonly ExtensionProvider[];
  /** The mesh's services, for providers to name ("namespace/hostname" or a unique hostname). */
  services?: readonly MeshService[];
  /** Istio's root namespace, whose policies apply mesh-wide. */
  rootNamespace?: string;
}

const DRY_RUN = 'istio.io/dry-run';

const HTTP = {
  rbac: 'envoy.filters.http.rbac',
  rbacType: 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
  extAuthz: 'envoy.filters.http.ext_authz',
} as const;
const TCP = {
  rbac: 'envoy.filters.network.rbac',
  rbacType: 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC',
  extAuthz: 'envoy.filters.network.ext_authz',
} as const;
type Chain = typeof HTTP | typeof TCP;

// ---- which policies apply ----

/**
 * The policies that apply to a proxy: the root namespace's first, then its own namespace's; in each,
 * oldest first, then by name (Istio's order, which decides nothing but the order of the output).
 */
export function policiesFor(all: readonly AuthorizationPolicy[], proxy: AuthzProxy, rootNamespace = ROOT_NAMESPACE): AuthorizationPolicy[] {
  const namespaces = [...new Set([rootNamespace, proxy.namespace])];
  return namespaces.flatMap((ns) =>
    all
      .filter((p) => p.metadata.namespace === ns && authorizationPolicyApplies(p, proxy, rootNamespace))
      .sort((a, b) => (a.created ?? Infinity) - (b.created ?? Infinity) || (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0)),
  );
}

// ---- the filters ----

/** The filters of a proxy's inbound side: for HTTP (in its HCM, before the router) and for TCP chains. */
export function authzFilters(all: readonly AuthorizationPolicy[], proxy: AuthzProxy, mesh: AuthzMesh): { http: AuthzFilter[]; tcp: AuthzFilter[] } {
  const policies = policiesFor(all, proxy, mesh.rootNamespace);
  return { http: buildFilters(policies, mesh, HTTP), tcp: buildFilters(policies, mesh, TCP) };
}

/** The HTTP filters of already-selected policies (Istio's CUSTOM builder's, then the local one's). */
export function buildHTTP(policies: readonly AuthorizationPolicy[], mesh: AuthzMesh): AuthzFilter[] {
  return buildFilters(policies, mesh, HTTP);
}

/** The network filters of already-selected policies, for a TCP chain: HTTP-only fields cannot match there. */
export function buildTCP(policies: readonly AuthorizationPolicy[], mesh: AuthzMesh): AuthzFilter[] {
  return buildFilters(policies, mesh, TCP);
}

function buildFilters(policies: readonly AuthorizationPolicy[], mesh: AuthzMesh, chain: Chain): AuthzFilter[] {
  const bundle = [mesh.trustDomain, ...(mesh.trustDomainAliases ?? [])];
  const of = (action: string) => policies.filter((p) => (p.spec.action ?? 'ALLOW') === action);
  const custom = of('CUSTOM');
  const out = custom.length ? customFilters(custom, bundle, mesh, chain) : [];
  for (const [action, rbac] of [['AUDIT', 'LOG'], ['DENY', 'DENY'], ['ALLOW', 'ALLOW']] as const) {
    const built = build(of(action), rbac, bundle, chain === TCP);
    if (built) out.push(rbacFilter(chain, built.rules, built.shadow));
  }
  return out;
}

/** An RBAC config (envoy.config.rbac.v3.RBAC): ALLOW is the default action, and an empty map is left out. */
interface Rbac {
  action: RbacAction;
  policies: Record<string, Obj>;
}

const rbacJson = (r: Rbac): Obj => ({ ...(r.action !== 'ALLOW' ? { action: r.action } : {}), ...(Object.keys(r.policies).length ? { policies: r.policies } : {}) });

/** Go's strconv.ParseBool; anything else is false (Istio logs it). */
const isDryRun = (p: AuthorizationPolicy): boolean => ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(p.metadata.annotations?.[DRY_RUN] ?? '');

const ruleName = (p: AuthorizationPolicy, i: number, provider?: string): string =>
  `${provider !== undefined ? `istio-ext-authz-${provider ? `${provider}-` : ''}` : ''}ns[${p.metadata.namespace}]-policy[${p.metadata.name}]-rule[${i}]`;

/** Each rule of a policy into `into`, by its name; rules Istio skips are left out. */
function addPolicy(into: Rbac, p: AuthorizationPolicy, bundle: readonly string[], tcp: boolean, provider?: string): void {
  const rules = p.spec.rules ?? [];
  rules.forEach((rule, i) => {
    if (!rule) return;
    const built = rulePolicy(rule, p.metadata.namespace, bundle, tcp, into.action);
    if (built) into.policies[ruleName(p, i, provider)] = built;
  });
  if (!rules.length) into.policies[ruleName(p, 0, provider)] = MATCH_NEVER;
}

/** The enforced and the dry-run rules of an action's policies; undefined when it has none. */
function build(policies: readonly AuthorizationPolicy[], action: RbacAction, bundle: readonly string[], tcp: boolean): { rules?: Rbac; shadow?: Rbac } | undefined {
  if (!policies.length) return undefined;
  const rules: Rbac = { action, policies: {} };
  const shadow: Rbac = { action, policies: {} };
  for (const p of policies) addPolicy(isDryRun(p) ? shadow : rules, p, bundle, tcp);
  // An enforced set exists (even empty: then it matches nothing) when one policy is not dry-run.
  return { ...(policies.some((p) => !isDryRun(p)) ? { rules } : {}), ...(policies.some(isDryRun) ? { shadow } : {}) };
}

/**
 * The stat prefix of shadow rules. Istio reads the action of a missing shadow set as ALLOW (the
 * proto default), so a filter without dry-run policies still says istio_dry_run_allow_.
 */
function shadowPrefix(shadow: Rbac | undefined): Obj {
  const action = shadow?.action ?? 'ALLOW';
  if (action === 'ALLOW') return { shadow_rules_stat_prefix: 'istio_dry_run_allow_' };
  if (action === 'DENY') return { shadow_rules_stat_prefix: 'istio_dry_run_deny_' };
  return {};
}

function rbacFilter(chain: Chain, rules: Rbac | undefined, shadow: Rbac | undefined): AuthzFilter {
  return {
    name: chain.rbac,
    typed_config: {
      '@type': chain.rbacType,
      ...(rules ? { rules: rbacJson(rules) } : {}),
      ...(chain === TCP ? { stat_prefix: 'tcp.' } : {}),
      ...(shadow ? { shadow_rules: rbacJson(shadow) } : {}),
      ...shadowPrefix(shadow),
    },
  };
}

// ---- CUSTOM ----

/**
 * CUSTOM policies: per provider, an RBAC filter whose shadow rules only mark the requests the
 * policies match (dynamic metadata, keyed by the rule names, which carry the provider), then the
 * provider's ext_authz filter, enabled by that mark. Dry-run policies go in the RBAC filter's rules
 * (Istio's own limitation: they too call the provider).
 */
function customFilters(policies: readonly AuthorizationPolicy[], bundle: readonly string[], mesh: AuthzMesh, chain: Chain): AuthzFilter[] {
  const enforced = new Map<string, Rbac>();
  const dryRun = new Map<string, Rbac>();
  for (const p of policies) {
    const provider = p.spec.provider?.name ?? '';
    if (!enforced.has(provider)) {
      enforced.set(provider, { action: 'DENY', policies: {} });
      dryRun.set(provider, { action: 'DENY', policies: {} });
    }
    addPolicy((isDryRun(p) ? dryRun : enforced).get(provider)!, p, bundle, chain === TCP, provider);
  }
  const providers = [...enforced.keys()].sort();
  const tcp = chain === TCP ? { stat_prefix: 'tcp.' } : {};
  const denyAll = (provider: string): AuthzFilter => ({ name: chain.rbac, typed_config: { '@type': chain.rbacType, rules: rbacJson(badCustom(enforced.get(provider)!)), ...tcp } });
  // One provider per workload: Istio's PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS is off by default.
  if (providers.length > 1) return providers.map(denyAll);

  const resolved = resolveProviders(mesh.extensionProviders ?? [], mesh.services ?? []);
  const out: AuthzFilter[] = [];
  for (const provider of providers) {
    const ext: BuiltExtAuthz = resolved.get(provider) ?? { error: `no extension provider named "${provider}"` };
    if ('error' in ext) {
      out.push(denyAll(provider));
      continue;
    }
    const extConfig = chain === TCP ? ext.tcp : ext.http;
    if (!extConfig) continue; // an HTTP provider cannot check TCP connections: the CUSTOM policy does not apply there
    const marks = dryRun.get(provider)!;
    out.push(
      {
        name: chain.rbac,
        typed_config: {
          '@type': chain.rbacType,
          ...(Object.keys(marks.policies).length ? { rules: rbacJson(marks) } : {}),
          shadow_rules: rbacJson(enforced.get(provider)!),
          ...tcp,
          shadow_rules_stat_prefix: 'istio_ext_authz_',
        },
      },
      { name: chain.extAuthz, typed_config: { ...extConfig, filter_enabled_metadata: enabledFor(chain.rbac, provider) } },
    );
  }
  return out;
}

/** Why a CUSTOM policy's provider cannot be used (then the policy denies what it matches), or undefined. */
export function customProviderProblem(p: AuthorizationPolicy, providers: readonly ExtensionProvider[], services: readonly MeshService[]): string | undefined {
  const name = p.spec.provider?.name ?? '';
  const found = resolveProviders(providers, services).get(name);
  if (!found) return `no extension provider named "${name}" in meshConfig.extensionProviders (envoyExtAuthzHttp or envoyExtAuthzGrpc)`;
  return 'error' in found ? found.error : undefined;
}

/** What a CUSTOM policy that cannot be delegated becomes: a DENY of what it would have sent. */
function badCustom(rules: Rbac): Rbac {
  return { action: 'DENY', policies: Object.fromEntries(Object.entries(rules.policies).map(([k, v]) => [`${k}-deny-due-to-bad-CUSTOM-action`, v])) };
}
