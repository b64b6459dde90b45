// PURE: the proto JSON of Envoy's RBAC filters -> a compiled, frozen matcher.
//   envoy.extensions.filters.http.rbac.v3.RBAC        (HTTP filter; and RBACPerRoute)
//   envoy.extensions.filters.network.rbac.v3.RBAC     (network filter: no HTTP fields allowed)
// each holding config.rbac.v3.RBAC `rules` (enforced) and `shadow_rules` (evaluated, reported,
// never enforced: Istio's dry-run and its CUSTOM action's ext_authz trigger). Anything this cannot
// evaluate exactly as Envoy does (CEL conditions, matcher trees, extensions, filter state, audit
// loggers) throws a ConvertError naming the field, for the caller to NACK.
import { duration } from '../xds-client/convert-util.ts';
import { fail, fields, list, str, bool } from './fields.ts';
import { type Match, compilePermission, compilePrincipal, some } from './matchers.ts';

export const RBAC_HTTP_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
export const RBAC_HTTP_PER_ROUTE_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute';
export const RBAC_NETWORK_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';

export type RbacAction = 'ALLOW' | 'DENY' | 'LOG';

export interface CompiledPolicy {
  readonly name: string;
  /** Some permission and some principal match. */
  readonly matches: Match;
}

/** What one engine decides: Envoy's handleAction and its effective policy id. */
export interface RbacOutcome {
  readonly allowed: boolean;
  /** The first policy (in name order) that matched, if any. */
  readonly policy?: string;
  /** LOG action only: whether the request is to be access-logged (envoy.common access_log_hint). */
  readonly log?: boolean;
}

export interface CompiledRbac {
  readonly action: RbacAction;
  /** In Envoy's order: by name, bytewise (a std::map), so the reported policy is the same. */
  readonly policies: readonly CompiledPolicy[];
  /** outcomes[i]: policy i matched first; outcomes[policies.length]: none did. Built once, shared. */
  readonly outcomes: readonly RbacOutcome[];
}

export interface CompiledRbacFilter {
  readonly kind: 'http' | 'network';
  /** Enforced rules; undefined: nothing is enforced (Envoy builds no engine and lets all through). */
  readonly rules: CompiledRbac | undefined;
  /** Shadow rules; undefined: no shadow evaluation. */
  readonly shadowRules: CompiledRbac | undefined;
  /** Prefix of the enforced stats and of the enforced_* dynamic metadata keys (HTTP). */
  readonly rulesStatPrefix: string;
  /** Prefix of the shadow stats and of the shadow_* dynamic metadata keys (istio_dry_run_allow_, istio_ext_authz_). */
  readonly shadowRulesStatPrefix: string;
  /** Network filter: the stats prefix (required there); '' for HTTP. */
  readonly statPrefix: string;
  readonly trackPerRuleStats: boolean;
  /** Network filter: decide once on the first bytes (default) or on every read. */
  readonly enforcementType: 'ONE_TIME_ON_FIRST_BYTE' | 'CONTINUOUS';
  /** Network filter: how long to hold a denied connection before closing it (ms; 0: at once). */
  readonly delayDenyMs: number;
}

const ACTIONS: readonly RbacAction[] = ['ALLOW', 'DENY', 'LOG'];

function action(where: string, v: unknown): RbacAction {
  if (v === undefined) return 'ALLOW';
  if (typeof v === 'number' && ACTIONS[v]) return ACTIONS[v];
  if (typeof v === 'string' && (ACTIONS as readonly string[]).includes(v)) return v as RbacAction;
  fail(where, `unknown action ${JSON.stringify(v)} (ALLOW, DENY or LOG)`);
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** config.rbac.v3.RBAC. `network`: refuse HTTP-only rules. */
export function compileRbac(where: string, rbac: unknown, network: boolean): CompiledRbac {
  const f = fields(where, rbac, ['action', 'policies', 'audit_logging_options']);
  if (f.audit_logging_options !== undefined) fail(`${where}.audit_logging_options`, 'audit loggers are not supported');
  const policiesMap = f.policies ?? {};
  if (typeof policiesMap !== 'object' || Array.isArray(policiesMap)) fail(`${where}.policies`, 'expected a map of name to policy');
  const o = { network };
  const policies: CompiledPolicy[] = Object.keys(policiesMap)
    .sort(byteOrder)
    .map((name) => {
      const pw = `${where}.policies[${JSON.stringify(name)}]`;
      const p = fields(pw, policiesMap[name], ['permissions', 'principals', 'condition', 'checked_condition']);
      if (p.condition !== undefined) fail(`${pw}.condition`, 'CEL conditions are not supported');
      if (p.checked_condition !== undefined) fail(`${pw}.checked_condition`, 'CEL conditions are not supported');
      const perms = list(`${pw}.permissions`, p.permissions).map((x, i) => compilePermission(`${pw}.permissions[${i}]`, x, o));
      const ids = list(`${pw}.principals`, p.principals).map((x, i) => compilePrincipal(`${pw}.principals[${i}]`, x, o));
      if (perms.length === 0) fail(`${pw}.permissions`, 'at least one permission is required');
      if (ids.length === 0) fail(`${pw}.principals`, 'at least one principal is required');
      return Object.freeze({ name, matches: policyMatch(perms, ids) });
    });
  const act = action(`${where}.action`, f.action);
  // ALLOW: allowed iff a policy matched; DENY: denied iff one did; LOG: always allowed, logged iff one did.
  const outcome = (policy: string | undefined): RbacOutcome => {
    const matched = policy !== undefined;
    const allowed = act === 'LOG' ? true : matched === (act === 'ALLOW');
    return Object.freeze({ allowed, ...(matched ? { policy } : {}), ...(act === 'LOG' ? { log: matched } : {}) });
  };
  const outcomes = Object.freeze([...policies.map((p) => outcome(p.name)), outcome(undefined)]);
  return Object.freeze({ action: act, policies: Object.freeze(policies), outcomes });
}

/** Envoy's PolicyMatcher: an OR of permissions and an OR of principals, both required. */
function policyMatch(perms: Match[], ids: Match[]): Match {
  const p = some(perms);
  const i = some(ids);
  return (s) => p(s) && i(s);
}

function checkType(where: string, f: Record<string, any>, type: string): void {
  if (f['@type'] !== undefined && f['@type'] !== type) fail(`${where}.@type`, `expected ${type}, got ${f['@type']}`);
}

function noMatcherTrees(where: string, f: Record<string, any>): void {
  if (f.matcher !== undefined) fail(`${where}.matcher`, 'RBAC matcher trees are not supported (use rules)');
  if (f.shadow_matcher !== undefined) fail(`${where}.shadow_matcher`, 'RBAC matcher trees are not supported (use shadow_rules)');
}

/** The HTTP filter's typed_config (envoy.extensions.filters.http.rbac.v3.RBAC). */
export function compileHttpRbac(where: string, cfg: unknown): CompiledRbacFilter {
  const f = fields(where, cfg, ['@type', 'rules', 'rules_stat_prefix', 'matcher', 'shadow_rules', 'shadow_matcher', 'shadow_rules_stat_prefix', 'track_per_rule_stats']);
  checkType(where, f, RBAC_HTTP_TYPE);
  noMatcherTrees(where, f);
  return Object.freeze({
    kind: 'http',
    rules: f.rules === undefined ? undefined : compileRbac(`${where}.rules`, f.rules, false),
    shadowRules: f.shadow_rules === undefined ? undefined : compileRbac(`${where}.shadow_rules`, f.shadow_rules, false),
    rulesStatPrefix: f.rules_stat_prefix === undefined ? '' : str(`${where}.rules_stat_prefix`, f.rules_stat_prefix),
    shadowRulesStatPrefix: f.shadow_rules_stat_prefix === undefined ? '' : str(`${where}.shadow_rules_stat_prefix`, f.shadow_rules_stat_prefix),
    statPrefix: '',
    trackPerRuleStats: bool(`${where}.track_per_rule_stats`, f.track_per_rule_stats),
    enforcementType: 'ONE_TIME_ON_FIRST_BYTE',
    delayDenyMs: 0,
  });
}

/**
 * typed_per_filter_config for the HTTP RBAC filter (RBACPerRoute): it replaces the listener's
 * config on that route; one without `rbac` has no rules, so the route is not checked at all.
 */
export function compileHttpRbacPerRoute(where: string, cfg: unknown): CompiledRbacFilter {
  const f = fields(where, cfg, ['@type', 'rbac']);
  checkType(where, f, RBAC_HTTP_PER_ROUTE_TYPE);
  return compileHttpRbac(`${where}.rbac`, f.rbac ?? {});
}

/** The network filter's typed_config (envoy.extensions.filters.network.rbac.v3.RBAC). */
export function compileNetworkRbac(where: string, cfg: unknown): CompiledRbacFilter {
  const f = fields(where, cfg, ['@type', 'rules', 'matcher', 'shadow_rules', 'shadow_matcher', 'shadow_rules_stat_prefix', 'stat_prefix', 'enforcement_type', 'delay_deny']);
  checkType(where, f, RBAC_NETWORK_TYPE);
  noMatcherTrees(where, f);
  const statPrefix = f.stat_prefix === undefined ? '' : str(`${where}.stat_prefix`, f.stat_prefix);
  if (statPrefix === '') fail(`${where}.stat_prefix`, 'required');
  const et = f.enforcement_type ?? 'ONE_TIME_ON_FIRST_BYTE';
  const enforcementType = et === 0 || et === 'ONE_TIME_ON_FIRST_BYTE' ? 'ONE_TIME_ON_FIRST_BYTE' : et === 1 || et === 'CONTINUOUS' ? 'CONTINUOUS' : fail(`${where}.enforcement_type`, `unknown enforcement type ${JSON.stringify(et)}`);
  return Object.freeze({
    kind: 'network',
    rules: f.rules === undefined ? undefined : compileRbac(`${where}.rules`, f.rules, true),
    shadowRules: f.shadow_rules === undefined ? undefined : compileRbac(`${where}.shadow_rules`, f.shadow_rules, true),
    rulesStatPrefix: '',
    shadowRulesStatPrefix: f.shadow_rules_stat_prefix === undefined ? '' : str(`${where}.shadow_rules_stat_prefix`, f.shadow_rules_stat_prefix),
    statPrefix,
    trackPerRuleStats: false,
    enforcementType,
    delayDenyMs: duration(`${where}.delay_deny`, f.delay_deny),
  });
}

/** Either filter, by the typed_config's '@type'. */
export function compileRbacTypedConfig(where: string, cfg: unknown): CompiledRbacFilter {
  const t = (cfg as Record<string, unknown> | null)?.['@type'];
  if (t === RBAC_HTTP_TYPE) return compileHttpRbac(where, cfg);
  if (t === RBAC_NETWORK_TYPE) return compileNetworkRbac(where, cfg);
  fail(`${where}.@type`, `not an RBAC filter: ${JSON.stringify(t)}`);
}
