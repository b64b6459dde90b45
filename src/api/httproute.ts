// HTTPRoute rules beyond the schema's shape: the CEL rules (x-kubernetes-validations) of the
// Gateway API's HTTPRoute CRD that are HTTPRoute's own (path matches, redirects and rewrites,
// CORS lists, timeouts); those it shares with GRPCRoute are in gateway-common.ts. CEL runs after
// defaulting: a rule without matches has one, PathPrefix "/"; a path match without a type is a
// PathPrefix, without a value "/".

import type { FieldError } from './types.ts';
import { field, type Obj } from './schema.ts';
import { Findings, asList, asObj, asStr, eachObj, isSet } from './common.ts';
import { checkBackendRefs, checkFilters, checkRouteSpec, gatewayDuration, type FilterKinds } from './gateway-common.ts';

export const HTTP_FILTER_KINDS: FilterKinds = {
  fields: {
    RequestHeaderModifier: 'requestHeaderModifier',
    ResponseHeaderModifier: 'responseHeaderModifier',
    RequestMirror: 'requestMirror',
    RequestRedirect: 'requestRedirect',
    URLRewrite: 'urlRewrite',
    ExtensionRef: 'extensionRef',
    CORS: 'cors',
  },
  // RequestMirror and ExtensionRef may be repeated.
  once: ['CORS', 'RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite'],
  // A redirect is the response: there is no request left to rewrite.
  apart: [['RequestRedirect', 'URLRewrite']],
};

export function validateHTTPRoute(spec: Obj): FieldError[] {
  const f = new Findings();
  checkRouteSpec(f, spec, 1);
  for (const [rule, p] of eachObj(spec.rules, 'spec.rules')) checkRule(f, rule, p);
  return f.errors;
}

function checkRule(f: Findings, rule: Obj, p: string): void {
  for (const [match, mp] of eachObj(rule.matches, field(p, 'matches'))) checkPathMatch(f, asObj(match.path), field(mp, 'path'));
  const filters = checkFilters(f, rule.filters, field(p, 'filters'), HTTP_FILTER_KINDS);
  const backendFilters = checkBackendRefs(f, rule.backendRefs, field(p, 'backendRefs'), HTTP_FILTER_KINDS);
  for (const [filter, fp] of [...filters, ...backendFilters]) checkFilter(f, filter, fp, rule);
  if (asList(rule.backendRefs).length > 0) {
    // CEL "RequestRedirect filter must not be used together with backendRefs".
    for (const [filter, fp] of filters) {
      if (isSet(filter.requestRedirect)) f.report(fp, 'a RequestRedirect filter answers the request itself: it cannot be used in a rule with backendRefs');
    }
  }
  checkTimeouts(f, asObj(rule.timeouts), field(p, 'timeouts'));
}

// ---- matches ----

const PATH_CHARACTERS = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$/;
const NOT_IN_PATH = ['//', '/./', '/../', '%2f', '%2F', '#'];
const NOT_AT_PATH_END = ['/..', '/.'];

/** CEL on an Exact or PathPrefix path match: an absolute, normalised path of URL characters. */
function checkPathMatch(f: Findings, path: Obj | undefined, p: string): void {
  if (!path) return;
  const type = asStr(path.type) ?? 'PathPrefix';
  const value = isSet(path.value) ? asStr(path.value) : '/';
  if (value === undefined || (type !== 'Exact' && type !== 'PathPrefix')) return;
  f.report(field(p, 'value'), pathProblem(value));
}

function pathProblem(value: string): string | undefined {
  if (!value.startsWith('/')) return 'must be an absolute path, starting with "/"';
  const inside = NOT_IN_PATH.find((s) => value.includes(s));
  if (inside) return `must not contain "${inside}"`;
  const end = NOT_AT_PATH_END.find((s) => value.endsWith(s));
  if (end) return `must not end with "${end}"`;
  if (!PATH_CHARACTERS.test(value)) return `may contain only letters, digits, "%" followed by two hex digits, and the characters -/._~!$&'()*+,;=:@`;
  return undefined;
}

/** Does the rule have exactly one match, a PathPrefix path match (what ReplacePrefixMatch replaces)? */
function hasOnePathPrefixMatch(rule: Obj): boolean {
  const matches = isSet(rule.matches) ? asList(rule.matches) : [{}];
  const match = matches.length === 1 ? asObj(matches[0]) : undefined;
  return match !== undefined && (asStr(asObj(match.path)?.type) ?? 'PathPrefix') === 'PathPrefix';
}

// ---- filters ----

function checkFilter(f: Findings, filter: Obj, p: string, rule: Obj): void {
  for (const name of ['requestRedirect', 'urlRewrite']) {
    const pm = asObj(asObj(filter[name])?.path);
    if (!pm) continue;
    const pp = field(field(p, name), 'path');
    checkPathModifier(f, pm, pp);
    // CEL "When using RequestRedirect (URLRewrite) filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified"
    // (and its "Within backendRefs" twins).
    if (pm.type === 'ReplacePrefixMatch' && isSet(pm.replacePrefixMatch) && !hasOnePathPrefixMatch(rule)) {
      f.report(pp, 'ReplacePrefixMatch needs a rule with exactly one match, and that a PathPrefix path match (the prefix it replaces)');
    }
  }
  checkCors(f, asObj(filter.cors), field(p, 'cors'));
}

/** CEL on HTTPPathModifier: the type names the one field that is set. */
function checkPathModifier(f: Findings, pm: Obj, p: string): void {
  const type = asStr(pm.type);
  for (const [t, name] of [['ReplaceFullPath', 'replaceFullPath'], ['ReplacePrefixMatch', 'replacePrefixMatch']] as const) {
    if (type === t && !isSet(pm[name])) f.report(field(p, name), `required when type is ${t}`);
    if (type !== undefined && type !== t && isSet(pm[name])) f.report(field(p, name), `must not be set when type is ${type}`);
  }
}

/** CEL: "*" stands alone in allowOrigins, allowMethods and allowHeaders. */
function checkCors(f: Findings, cors: Obj | undefined, p: string): void {
  if (!cors) return;
  for (const [name, what] of [['allowOrigins', 'origins'], ['allowMethods', 'methods'], ['allowHeaders', 'headers']] as const) {
    const values = asList(cors[name]);
    if (values.includes('*') && values.length > 1) f.report(field(p, name), `"*" (any) cannot be listed with other ${what}`);
  }
}

// ---- timeouts ----

/** CEL "backendRequest timeout cannot be longer than request timeout" (a request timeout of 0 is none). */
function checkTimeouts(f: Findings, timeouts: Obj | undefined, p: string): void {
  const request = gatewayDuration(timeouts?.request);
  const backend = gatewayDuration(timeouts?.backendRequest);
  if (request === undefined || backend === undefined || request === 0n || backend <= request) return;
  f.report(field(p, 'backendRequest'), `must not be longer than timeouts.request (${String(timeouts?.request)})`);
}
