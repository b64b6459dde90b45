// PURE: evaluating a compiled RBAC filter for one request or connection, as Envoy's RBAC filters
// do: the shadow rules first (reported only), then the enforced rules. Each engine tries its
// policies in name order and stops at the first that matches; that policy's name is the
// "effective policy id" (Istio's "ns[foo]-policy[name]-rule[0]") that Weft logs and reports.
import type { CompiledRbac, CompiledRbacFilter, RbacOutcome } from './rbac-config.ts';
import { Scratch } from './matchers.ts';
import type { RbacRequest } from './request.ts';

export interface ShadowResult {
  readonly effect: 'allowed' | 'denied';
  /** The shadow policy that matched first, if any. */
  readonly policy?: string;
}

export interface RbacDecision {
  /** Whether the request may go on; true when the filter has no enforced rules. */
  readonly allowed: boolean;
  /** The enforced policy that matched first (for ALLOW: the one that let it in; DENY: kept it out). */
  readonly matchedPolicy?: string;
  /** LOG action only: whether the request is to be logged (Envoy's access_log_hint). */
  readonly log?: boolean;
  /** Present when the filter has shadow rules. */
  readonly shadow?: ShadowResult;
}

// Evaluation is synchronous, so one scratch serves every call; matchers read the request through it.
const scratch = new Scratch();

const NO_RULES: RbacDecision = Object.freeze({ allowed: true });

function run(r: CompiledRbac, s: Scratch): RbacOutcome {
  const ps = r.policies;
  for (let i = 0; i < ps.length; i++) if (ps[i].matches(s)) return r.outcomes[i];
  return r.outcomes[ps.length];
}

// Frozen shadow results, one per outcome object, so a request with shadow rules allocates only its decision.
const shadowOf = new WeakMap<RbacOutcome, ShadowResult>();

function shadowResult(o: RbacOutcome): ShadowResult {
  let r = shadowOf.get(o);
  if (r === undefined) {
    r = Object.freeze({ effect: o.allowed ? 'allowed' : 'denied', ...(o.policy !== undefined ? { policy: o.policy } : {}) });
    shadowOf.set(o, r);
  }
  return r;
}

function toDecision(o: RbacOutcome | undefined): RbacDecision {
  if (o === undefined) return NO_RULES;
  return o.policy === undefined ? o : { allowed: o.allowed, matchedPolicy: o.policy, ...(o.log !== undefined ? { log: o.log } : {}) };
}

// Enforced decisions without shadow rules, one per outcome, frozen and shared.
const decisionOf = new WeakMap<RbacOutcome, RbacDecision>();

function decision(o: RbacOutcome): RbacDecision {
  let d = decisionOf.get(o);
  if (d === undefined) {
    d = Object.freeze(toDecision(o));
    decisionOf.set(o, d);
  }
  return d;
}

/** Evaluates `filter` for `req`. Never throws for a compiled filter; allocates at most the decision. */
export function evaluateRbac(filter: CompiledRbacFilter, req: RbacRequest): RbacDecision {
  const s = scratch.reset(req);
  try {
    const enforced = filter.rules === undefined ? undefined : run(filter.rules, s);
    if (filter.shadowRules === undefined) return enforced === undefined ? NO_RULES : decision(enforced);
    const shadow = shadowResult(run(filter.shadowRules, s));
    return { ...(enforced === undefined ? NO_RULES : decision(enforced)), shadow };
  } finally {
    s.release();
  }
}

/**
 * The dynamic metadata Envoy's HTTP RBAC filter writes under 'envoy.filters.http.rbac' (the network
 * filter under 'envoy.filters.network.rbac'): shadow_effective_policy_id / shadow_engine_result,
 * prefixed with shadow_rules_stat_prefix, and enforced_* likewise with rules_stat_prefix. Istio's
 * CUSTOM action reads `istio_ext_authz_shadow_effective_policy_id` from it to turn on ext_authz.
 */
export function rbacDynamicMetadata(filter: CompiledRbacFilter, d: RbacDecision): Record<string, string> {
  const md: Record<string, string> = {};
  if (d.shadow !== undefined) {
    const p = filter.shadowRulesStatPrefix;
    if (d.shadow.policy !== undefined) md[`${p}shadow_effective_policy_id`] = d.shadow.policy;
    md[`${p}shadow_engine_result`] = d.shadow.effect;
  }
  if (filter.rules !== undefined && filter.kind === 'http') {
    const p = filter.rulesStatPrefix;
    if (d.matchedPolicy !== undefined) md[`${p}enforced_effective_policy_id`] = d.matchedPolicy;
    md[`${p}enforced_engine_result`] = d.allowed ? 'allowed' : 'denied';
  }
  return md;
}

/** Envoy's response code details for a denied request: rbac_access_denied_matched_policy[<id>|none]. */
export function rbacResponseDetails(d: RbacDecision): string {
  // Envoy replaces whitespace in the id with '_' so the details stay one token.
  return `rbac_access_denied_matched_policy[${d.matchedPolicy === undefined ? 'none' : d.matchedPolicy.replace(/\s/g, '_')}]`;
}
