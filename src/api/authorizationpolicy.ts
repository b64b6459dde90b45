// Istio's AuthorizationPolicy (security.istio.io v1 and v1beta1, one schema): its shape, transcribed
// from crd-all.gen.yaml (istio/istio 86c9f01f), the CRD's CEL rules, and Istio's webhook rules
// (ValidateAuthorizationPolicy in pkg/config/validation/validation.go, with the attribute, port,
// IP, service-account, trust-domain and path-template checks of pkg/config/security). Messages are
// ours; the rules are Istio's. Weft validates the kind but does not serve it yet: support.ts
// refuses it until the sidecar enforces it (control/translate/authz.ts builds its filters).

import type { FieldError, ObjectMeta } from './types.ts';
import { field, index, key, type ArraySchema, type ObjectSchema, type Pattern, type StringSchema } from './schema.ts';
import { Findings, asList, asObj, asStr, checkSelectorLabels, eachObj, eachStr, isSet } from './common.ts';
import { checkIPSubnet } from './rules.ts';

// ---- the schema ----

const STRING: StringSchema = { type: 'string' };
const STRINGS: ArraySchema = { type: 'array', items: STRING };
/** serviceAccounts and notServiceAccounts: at most 16 names of at most 320 characters. */
const SERVICE_ACCOUNTS: ArraySchema = { type: 'array', items: { type: 'string', maxLength: 320 }, maxItems: 16 };

const GROUP: Pattern = {
  re: /^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
  message: 'must be empty (the core group) or a DNS subdomain such as "networking.istio.io"',
};
const KIND: Pattern = { re: /^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/, message: 'must be a kind such as "Service": letters, digits and "-", starting with a letter' };

export const TARGET_REF: ObjectSchema = {
  type: 'object',
  props: {
    group: { type: 'string', maxLength: 253, pattern: GROUP },
    kind: { type: 'string', minLength: 1, maxLength: 63, pattern: KIND },
    name: { type: 'string', minLength: 1, maxLength: 253 },
    namespace: STRING,
  },
  required: ['kind', 'name'],
};

/** How a policy picks its workloads (selector, targetRef, targetRefs): the same fields in AuthorizationPolicy, RequestAuthentication and Telemetry. */
export const WORKLOAD_PICKER: ObjectSchema['props'] = {
  selector: { type: 'object', props: { matchLabels: { type: 'map', values: { type: 'string', maxLength: 63 }, maxProperties: 4096 } } },
  targetRef: TARGET_REF,
  targetRefs: { type: 'array', items: TARGET_REF, maxItems: 16 },
};

const SOURCE_LISTS = [
  'principals',
  'notPrincipals',
  'requestPrincipals',
  'notRequestPrincipals',
  'namespaces',
  'notNamespaces',
  'ipBlocks',
  'notIpBlocks',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
  'trustDomains',
  'notTrustDomains',
] as const;

const SOURCE: ObjectSchema = {
  type: 'object',
  props: {
    ...Object.fromEntries(SOURCE_LISTS.map((k) => [k, STRINGS])),
    serviceAccounts: SERVICE_ACCOUNTS,
    notServiceAccounts: SERVICE_ACCOUNTS,
  },
};

const OPERATION_LISTS = ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;
const OPERATION: ObjectSchema = { type: 'object', props: Object.fromEntries(OPERATION_LISTS.map((k) => [k, STRINGS])) };

const RULE: ObjectSchema = {
  type: 'object',
  props: {
    from: { type: 'array', items: { type: 'object', props: { source: SOURCE } }, maxItems: 512 },
    to: { type: 'array', items: { type: 'object', props: { operation: OPERATION } } },
    when: { type: 'array', items: { type: 'object', props: { key: STRING, values: STRINGS, notValues: STRINGS }, required: ['key'] } },
  },
};

export const AUTHORIZATION_POLICY_SPEC: ObjectSchema = {
  type: 'object',
  props: {
    action: { type: 'string', enum: ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'] },
    provider: { type: 'object', props: { name: STRING } },
    rules: { type: 'array', items: RULE, maxItems: 512 },
    ...WORKLOAD_PICKER,
  },
};

// ---- the rules beyond the shape ----

/**
 * How a security policy picks its workloads (AuthorizationPolicy, RequestAuthentication): the CEL
 * rule on spec (and the webhook's validateOneOfSelectorType), one of selector, targetRef and
 * targetRefs; then each of them well formed.
 */
export function checkWorkloadPicker(f: Findings, spec: Record<string, unknown>): void {
  const pickers = ['selector', 'targetRef', 'targetRefs'].filter((k) => isSet(spec[k]));
  if (pickers.length > 1) f.report('spec', `only one of selector, targetRef and targetRefs may be set (got ${pickers.join(', ')})`);
  checkSelectorLabels(f, asObj(spec.selector)?.matchLabels, 'spec.selector.matchLabels');
  const single = asObj(spec.targetRef);
  if (single) checkTargetRef(f, single, 'spec.targetRef');
  for (const [ref, p] of eachObj(spec.targetRefs, 'spec.targetRefs')) checkTargetRef(f, ref, p);
}

export function validateAuthorizationPolicy(spec: Record<string, unknown>, _namespace: string, meta: ObjectMeta): FieldError[] {
  const f = new Findings();
  checkDryRun(f, meta.annotations?.[DRY_RUN], asStr(spec.action) ?? 'ALLOW');
  checkWorkloadPicker(f, spec);

  const action = asStr(spec.action) ?? 'ALLOW';
  // Protobuf has no presence for lists: `rules: []` is no rules, as Istio reads it.
  const rulesSet = asList(spec.rules).length > 0;
  if (action === 'CUSTOM') {
    if (!rulesSet) f.report('spec.rules', 'required with action CUSTOM: a CUSTOM policy without rules never applies (an empty rule {} applies to every request)');
    else if (!asStr(asObj(spec.provider)?.name)) f.report('spec.provider.name', 'required with action CUSTOM');
  } else if (isSet(spec.provider)) {
    f.report('spec.provider', `only allowed with action CUSTOM (got ${action})`);
  }
  if (action === 'DENY' && !rulesSet) f.report('spec.rules', 'required with action DENY: a DENY policy without rules never applies (an empty rule {} applies to every request)');

  asList(spec.rules).forEach((rule, i) => {
    const p = index('spec.rules', i);
    const r = asObj(rule);
    if (!r) f.report(p, 'must not be null');
    else checkRule(f, r, p, action === 'CUSTOM');
  });
  return f.errors;
}

const DRY_RUN = 'istio.io/dry-run';

/** Istio's checkDryRunAnnotation: a boolean (Go's strconv.ParseBool), and only on ALLOW and DENY policies. */
function checkDryRun(f: Findings, value: string | undefined, action: string): void {
  if (value === undefined) return;
  const p = key('metadata.annotations', DRY_RUN);
  if (action !== 'ALLOW' && action !== 'DENY') f.report(p, `only ALLOW and DENY policies can be dry-run (got ${action})`);
  else if (!['1', 't', 'T', 'TRUE', 'true', 'True', '0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) f.report(p, `"${value}" is not a boolean ("true" or "false")`);
}

/** The kinds a policy may target, by group ("" is the core group), as Istio's allowedTargetRefs. */
const TARGET_KINDS = new Set(['/Service', 'networking.istio.io/ServiceEntry', 'gateway.networking.k8s.io/Gateway', 'gateway.networking.k8s.io/GatewayClass']);

export function checkTargetRef(f: Findings, ref: Record<string, unknown>, p: string): void {
  // CEL "cross namespace referencing is not currently supported" (and the webhook's rule).
  if (asStr(ref.namespace)) f.report(field(p, 'namespace'), 'must be empty: a policy cannot target another namespace');
  const group = asStr(ref.group) ?? '';
  const kind = asStr(ref.kind);
  if (kind !== undefined && !TARGET_KINDS.has(`${group === 'core' ? '' : group}/${kind}`)) {
    f.report(p, `cannot target ${kind}${group ? ` (group ${group})` : ''}: a policy targets a Service, a ServiceEntry (networking.istio.io), a Gateway or a GatewayClass (gateway.networking.k8s.io)`);
  }
}

/** The source fields a CUSTOM policy cannot match on (Istio's "currently not supported with CUSTOM action"). */
const NOT_WITH_CUSTOM = ['namespaces', 'notNamespaces', 'serviceAccounts', 'notServiceAccounts', 'trustDomains', 'notTrustDomains', 'principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals'];

function checkRule(f: Findings, rule: Record<string, unknown>, p: string, custom: boolean): void {
  // A list that is present but empty is an error where absence is not: `from: []` reads as "from
  // nobody" to a reader, but Istio would take it as "from anyone".
  if (Array.isArray(rule.from) && rule.from.length === 0) f.report(field(p, 'from'), 'must not be empty (leave it out to match any source)');
  asList(rule.from).forEach((from, j) => {
    const fp = index(field(p, 'from'), j);
    const source = asObj(asObj(from)?.source);
    if (!source) f.report(asObj(from) ? field(fp, 'source') : fp, 'required');
    else checkSource(f, source, field(fp, 'source'), custom);
  });
  if (Array.isArray(rule.to) && rule.to.length === 0) f.report(field(p, 'to'), 'must not be empty (leave it out to match any operation)');
  asList(rule.to).forEach((to, j) => {
    const tp = index(field(p, 'to'), j);
    const operation = asObj(asObj(to)?.operation);
    if (!operation) f.report(asObj(to) ? field(tp, 'operation') : tp, 'required');
    else checkOperation(f, operation, field(tp, 'operation'));
  });
  asList(rule.when).forEach((when, k) => {
    const c = asObj(when);
    if (c) checkCondition(f, c, index(field(p, 'when'), k), custom);
  });
}

const hasValues = (v: unknown): boolean => asList(v).length > 0;

function checkSource(f: Findings, s: Record<string, unknown>, p: string, custom: boolean): void {
  // CEL: serviceAccounts name a namespace themselves, so they exclude namespaces and principals.
  const accounts = isSet(s.serviceAccounts) || isSet(s.notServiceAccounts);
  const others = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces'].filter((k) => isSet(s[k]));
  if (accounts && others.length) f.report(p, `serviceAccounts cannot be set with ${others.join(' or ')}`);
  if (![...SOURCE_LISTS, 'serviceAccounts', 'notServiceAccounts'].some((k) => hasValues(s[k]))) f.report(p, 'must set at least one field (leave the source out to match any)');
  for (const k of ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks']) {
    for (const [v, vp] of eachStr(s[k], field(p, k))) f.report(vp, v === '' ? 'must not be empty' : checkIPSubnet(v));
  }
  for (const k of ['principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'namespaces', 'notNamespaces']) {
    for (const [v, vp] of eachStr(s[k], field(p, k))) if (v === '') f.report(vp, 'must not be empty');
  }
  for (const k of ['serviceAccounts', 'notServiceAccounts']) checkServiceAccounts(f, s[k], field(p, k));
  for (const k of ['trustDomains', 'notTrustDomains']) {
    for (const [v, vp] of eachStr(s[k], field(p, k))) f.report(vp, checkWildcard(v) ?? (v.includes('/') ? `trust domain "${v}" must not contain "/"` : undefined));
  }
  if (custom) for (const k of NOT_WITH_CUSTOM) if (hasValues(s[k])) f.report(field(p, k), 'not supported with action CUSTOM');
}

function checkOperation(f: Findings, op: Record<string, unknown>, p: string): void {
  if (!OPERATION_LISTS.some((k) => hasValues(op[k]))) f.report(p, 'must set at least one field (leave the operation out to match any)');
  for (const k of OPERATION_LISTS) {
    for (const [v, vp] of eachStr(op[k], field(p, k))) {
      if (v === '') f.report(vp, 'must not be empty');
      else if (k === 'ports' || k === 'notPorts') f.report(vp, checkPortString(v));
      else if (k === 'paths' || k === 'notPaths') f.report(vp, checkPathTemplate(v));
    }
  }
}

// ---- conditions (`when`) ----

/** The keys a CUSTOM policy cannot use: its provider decides who, Envoy's RBAC only what. */
const isCustomUnsupportedKey = (k: string): boolean => ['source.namespace', 'source.serviceAccount', 'source.trustDomain', 'source.principal'].includes(k) || k.startsWith('request.auth.');

function checkCondition(f: Findings, c: Record<string, unknown>, p: string, custom: boolean): void {
  const k = asStr(c.key);
  if (k === undefined) return; // required: a schema error
  if (k === '') return f.report(field(p, 'key'), 'must not be empty');
  if (!hasValues(c.values) && !hasValues(c.notValues)) f.report(p, `at least one of values or notValues must be set for key ${k}`);
  const problem = checkKey(k);
  if (problem) f.report(field(p, 'key'), problem);
  else {
    for (const name of ['values', 'notValues']) {
      // As for a source's serviceAccounts: at most 16 (Istio's bound on the regexes they make).
      if (k === 'source.serviceAccount' && asList(c[name]).length > 16) f.report(field(p, name), 'must have at most 16 items');
      for (const [v, vp] of eachStr(c[name], field(p, name))) f.report(vp, v === '' ? 'must not be empty' : checkValue(k, v));
    }
  }
  if (custom && isCustomUnsupportedKey(k)) f.report(field(p, 'key'), `${k} is not supported with action CUSTOM`);
}

/** Istio's validateMapKey: "name[key]", with a non-empty name and key. */
function checkMapKey(k: string): string | undefined {
  const open = k.indexOf('[');
  return k.endsWith(']') && open > 0 && open < k.length - 2 ? undefined : `"${k}" must have the form ${k.slice(0, Math.max(open, 0)) || 'name'}[key]`;
}

/** Istio's ValidateAttribute, for the key alone (value checks are in checkValue). */
function checkKey(k: string): string | undefined {
  // Prefix keys first, as Istio's switch does: "request.headers..." is a header whatever follows.
  if (k.startsWith('request.headers') || k.startsWith('request.auth.claims') || k.startsWith('experimental.envoy.filters.')) return checkMapKey(k);
  if (KNOWN_KEYS.has(k)) return undefined;
  if (k === 'destination.namespace') return `${k} is replaced by the policy's own namespace (metadata.namespace)`;
  if (k.startsWith('destination.labels')) return `${k} is replaced by the workload selector`;
  if (k === 'destination.name' || k === 'destination.user') return `${k} is deprecated: only v1alpha1 policies had it`;
  return `unknown attribute ${k}`;
}

const KNOWN_KEYS = new Set([
  'source.ip',
  'remote.ip',
  'source.namespace',
  'source.serviceAccount',
  'source.principal',
  'source.trustDomain',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'destination.ip',
  'destination.port',
  'connection.sni',
]);

function checkValue(k: string, v: string): string | undefined {
  switch (k) {
    case 'source.ip':
    case 'remote.ip':
    case 'destination.ip':
      return checkIPSubnet(v);
    case 'destination.port':
      return checkPortString(v);
    case 'source.serviceAccount':
      return checkServiceAccount(v);
    case 'source.trustDomain':
      return checkWildcard(v);
    default:
      return undefined;
  }
}

// ---- value checks (pkg/config/security) ----

/** ValidatePorts: a decimal number from 0 to 65535. */
function checkPortString(v: string): string | undefined {
  return /^[0-9]+$/.test(v) && Number(v) <= 65535 ? undefined : `"${v}" is not a port (0-65535)`;
}

/** CheckWildcardValues: exact, "prefix*", "*suffix" or "*": one wildcard at most, at an end. */
function checkWildcard(v: string): string | undefined {
  if (v === '') return 'must not be empty';
  const stars = v.split('*').length - 1;
  if (stars > 1) return `at most one wildcard is allowed ("${v}")`;
  if (stars === 1 && !v.startsWith('*') && !v.endsWith('*')) return `a wildcard is only allowed at the start or the end ("${v}")`;
  return undefined;
}

function checkServiceAccounts(f: Findings, list: unknown, p: string): void {
  for (const [v, vp] of eachStr(list, p)) f.report(vp, checkServiceAccount(v));
}

/** CheckServiceAccount, one value: "name" (of the policy's namespace) or "namespace/name", no wildcard. */
function checkServiceAccount(v: string): string | undefined {
  if (v === '') return 'must not be empty';
  if (v.includes('*')) return `wildcards are not allowed in a service account ("${v}")`;
  const parts = v.split('/');
  if (parts.length > 2) return `"${v}" must be "serviceAccount" or "namespace/serviceAccount"`;
  if (v.length > 320) return 'must be at most 320 characters';
  if (parts.some((s) => s === '')) return `"${v}" must be "serviceAccount" or "namespace/serviceAccount", neither empty`;
  return undefined;
}

const MATCH_ONE = '{*}';
const MATCH_ANY = '{**}';
/** RFC 3986 pchar, as Envoy's URI templates take literals. */
const LITERAL = /^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$/;

export function containsPathTemplate(path: string): boolean {
  return path.includes(MATCH_ONE) || path.includes(MATCH_ANY);
}

/** CheckValidPathTemplate: {*} and {**} as whole segments, {**} last, plain literals beside them. */
function checkPathTemplate(path: string): string | undefined {
  const template = containsPathTemplate(path);
  let seenAny = false;
  for (const glob of path.replace(/^\/+|\/+$/g, '').split('/')) {
    if ((glob === MATCH_ONE || glob === MATCH_ANY) && seenAny) return `"${path}": {**} must be the last operator of a path template`;
    if (glob === MATCH_ONE) continue;
    if (glob === MATCH_ANY) {
      seenAny = true;
      continue;
    }
    if (/[{}]/.test(glob)) return `"${path}": "{" and "}" are only allowed in {*} and {**}`;
    if (template && !LITERAL.test(glob)) return `"${path}": segment "${glob}" is not a valid literal of a path template`;
  }
  return undefined;
}
