// What HTTPRoute and GRPCRoute share beyond the schema's shape: the CEL rules
// (x-kubernetes-validations) of the Gateway API's CRDs on parentRefs, backendRefs, filters, rule
// names, match counts and sessionPersistence, plus the Gateway API's one rule on header modifiers
// that has no CEL (a header appears once in a modifier, names compared without case, as the
// project's own webhook validation checked). CEL runs after defaulting, so a missing field is read
// as its default here (a parentRef is a Gateway, a backendRef a Service, a filter list's absent
// denominator 100, ...). Messages are ours; the CRD's wording is in a comment where it helps.

import { field, index, isObject, type Obj } from './schema.ts';
import { Findings, asList, asNum, asObj, asStr, eachObj, isSet } from './common.ts';
import { parseDuration } from './rules.ts';
import { GATEWAY_DURATION } from './gateway-schema.ts';

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';

export interface GroupKind {
  readonly group: string;
  readonly kind: string;
}

/** A parentRef's group and kind; unset, they are gateway.networking.k8s.io and Gateway. */
export function parentGroupKind(ref: Obj): GroupKind {
  return { group: asStr(ref.group) ?? GATEWAY_GROUP, kind: asStr(ref.kind) ?? 'Gateway' };
}

/** A backendRef's group and kind; unset, they are "" (core) and Service. */
export function backendGroupKind(ref: Obj): GroupKind {
  return { group: asStr(ref.group) ?? '', kind: asStr(ref.kind) ?? 'Service' };
}

/** A Kubernetes Service: kind Service in the core group, written "" or "core". */
export function isService({ group, kind }: GroupKind): boolean {
  return kind === 'Service' && (group === '' || group === 'core');
}

/** A Gateway API duration ("1h30m", "500ms") in nanoseconds; undefined when it is not one. */
export function gatewayDuration(v: unknown): bigint | undefined {
  return typeof v === 'string' && GATEWAY_DURATION.re.test(v) ? parseDuration(v) : undefined;
}

// ---- spec.parentRefs ----

/**
 * CEL on spec.parentRefs (experimental channel; the standard one leaves port out and so refuses a
 * route that names two ports of one Service): references to one parent (group, kind, namespace as
 * written, name) must all set sectionName or all leave it out, likewise port, and differ in them.
 */
function checkParentRefs(f: Findings, parentRefs: unknown, path: string): void {
  const refs = eachObj(parentRefs, path).map(([ref, p]): ParentRefKey => {
    const { group, kind } = parentGroupKind(ref);
    return {
      p,
      parent: JSON.stringify([group, kind, asStr(ref.namespace) ?? '', ref.name]),
      section: asStr(ref.sectionName) ?? '',
      port: asNum(ref.port) ?? 0,
    };
  });
  refs.forEach((ref, j) => f.report(ref.p, refs.slice(0, j).map((other) => parentClash(other, ref)).find((m) => m !== undefined)));
}

interface ParentRefKey {
  readonly p: string;
  readonly parent: string;
  readonly section: string;
  readonly port: number;
}

function parentClash(a: ParentRefKey, b: ParentRefKey): string | undefined {
  if (a.parent !== b.parent) return undefined;
  // CEL "sectionName or port must be specified when parentRefs includes 2 or more references to the same parent".
  if ((a.section === '') !== (b.section === '') || (a.port === 0) !== (b.port === 0)) {
    return `names the same parent as ${a.p}: references to one parent must all set sectionName or all leave it out, and likewise port`;
  }
  // CEL "sectionName or port must be unique when ...".
  if (a.section === b.section && a.port === b.port) return `duplicates ${a.p}: references to one parent must differ in sectionName or port`;
  return undefined;
}

// ---- backendRefs and filters ----

/** CEL "Must have port for Service reference": a Service (group "" and kind Service, the defaults) needs a port. */
function checkBackendPort(f: Findings, ref: unknown, path: string): void {
  if (!isObject(ref)) return;
  const { group, kind } = backendGroupKind(ref);
  if (group === '' && kind === 'Service' && !isSet(ref.port)) f.report(field(path, 'port'), 'required for a Service backend (group "" and kind Service, the defaults)');
}

/** Which filters a kind has: each type, the field that carries its settings; those a list may hold once; pairs a list cannot hold both of. */
export interface FilterKinds {
  readonly fields: Readonly<Record<string, string>>;
  readonly once: readonly string[];
  readonly apart: readonly (readonly [string, string])[];
}

/**
 * The rules every filter list of a kind gets, a rule's or a backendRef's: each filter's settings
 * in the field its type names and in no other, no filter type twice where the CRD says so,
 * header modifiers and mirrors. Returns each filter with its path, for the kind's own rules.
 */
export function checkFilters(f: Findings, filters: unknown, path: string, kinds: FilterKinds): [Obj, string][] {
  const all = eachObj(filters, path);
  const firstOfType = new Map<string, string>();
  for (const [filter, p] of all) {
    const type = asStr(filter.type);
    for (const [t, name] of Object.entries(kinds.fields)) {
      // CEL "filter.X must be nil if the filter.type is not T" / "filter.X must be specified for T filter.type".
      if (isSet(filter[name]) && type !== undefined && type !== t) f.report(field(p, name), `must not be set when type is ${type}`);
      if (!isSet(filter[name]) && type === t) f.report(field(p, name), `required when type is ${t}`);
    }
    if (type === undefined) continue;
    const first = firstOfType.get(type);
    // CEL "T filter cannot be repeated".
    if (first !== undefined && kinds.once.includes(type)) f.report(p, `only one ${type} filter is allowed here; the first is ${first}`);
    if (first === undefined) firstOfType.set(type, p);
    checkHeaderModifier(f, filter.requestHeaderModifier, field(p, 'requestHeaderModifier'));
    checkHeaderModifier(f, filter.responseHeaderModifier, field(p, 'responseHeaderModifier'));
    checkRequestMirror(f, filter.requestMirror, field(p, 'requestMirror'));
  }
  // e.g. CEL "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both".
  for (const [a, b] of kinds.apart) {
    const first = firstOfType.get(a);
    const second = all.find(([filter]) => filter.type === b)?.[1];
    if (first !== undefined && second !== undefined) f.report(second, `a ${b} filter cannot be used with a ${a} filter (${first})`);
  }
  return all;
}

/**
 * A header appears in one action of a modifier, once: "set X" and "remove x" together say two
 * things of one header (names are case-insensitive). Exact repeats in one list are the CRD's
 * list-map and set rules too, reported on the same item.
 */
function checkHeaderModifier(f: Findings, modifier: unknown, path: string): void {
  if (!isObject(modifier)) return;
  const seen = new Map<string, string>();
  for (const action of ['set', 'add', 'remove']) {
    asList(modifier[action]).forEach((item, i) => {
      const name = action === 'remove' ? asStr(item) : asStr(asObj(item)?.name);
      if (name === undefined) return;
      const p = index(field(path, action), i);
      const first = seen.get(name.toLowerCase());
      if (first === undefined) seen.set(name.toLowerCase(), p);
      else f.report(p, `header "${name}" is already modified at ${first}: a modifier acts on a header once (names are case-insensitive)`);
    });
  }
}

function checkRequestMirror(f: Findings, mirror: unknown, path: string): void {
  if (!isObject(mirror)) return;
  checkBackendPort(f, mirror.backendRef, field(path, 'backendRef'));
  // CEL "Only one of percent or fraction may be specified in HTTPRequestMirrorFilter".
  if (isSet(mirror.percent) && isSet(mirror.fraction)) f.report(path, 'only one of percent or fraction may be set');
  const fraction = asObj(mirror.fraction);
  const numerator = asNum(fraction?.numerator);
  const denominator = isSet(fraction?.denominator) ? asNum(fraction?.denominator) : 100;
  if (numerator !== undefined && denominator !== undefined && numerator > denominator) {
    f.report(field(path, 'fraction'), `numerator (${numerator}) must not be greater than denominator (${denominator}${isSet(fraction?.denominator) ? '' : ', the default'})`);
  }
}

/** A rule's backendRefs: the port rule and their filters. Returns every backendRef's filters with their paths. */
export function checkBackendRefs(f: Findings, refs: unknown, path: string, kinds: FilterKinds): [Obj, string][] {
  return eachObj(refs, path).flatMap(([ref, p]) => {
    checkBackendPort(f, ref, p);
    return checkFilters(f, ref.filters, field(p, 'filters'), kinds);
  });
}

// ---- spec.rules ----

/**
 * The rules of spec.rules the kinds share: rule names unique (experimental channel CEL), at most
 * 128 matches in all (CEL; `unsetMatches`: how many matches a rule without any has after
 * defaulting), and sessionPersistence's CEL rules.
 */
function checkRules(f: Findings, rules: unknown, path: string, unsetMatches: number): void {
  const names = new Map<string, string>();
  let matches = 0;
  for (const [rule, p] of eachObj(rules, path)) {
    const name = asStr(rule.name);
    const first = name === undefined ? undefined : names.get(name);
    if (name !== undefined && first !== undefined) f.report(field(p, 'name'), `duplicate rule name "${name}" (already at ${first})`);
    else if (name !== undefined) names.set(name, field(p, 'name'));
    matches += isSet(rule.matches) ? asList(rule.matches).length : unsetMatches;
    checkSessionPersistence(f, rule.sessionPersistence, field(p, 'sessionPersistence'));
  }
  if (matches > 128) f.report(path, `the rules have ${matches} matches in all; at most 128 are allowed`);
}

function checkSessionPersistence(f: Findings, sp: unknown, path: string): void {
  if (!isObject(sp)) return;
  const type = asStr(sp.type) ?? 'Cookie';
  if (isSet(sp.cookie) && type !== 'Cookie') f.report(field(path, 'cookie'), `must not be set when type is ${type}`);
  if (!isSet(sp.cookie) && type === 'Cookie') f.report(field(path, 'cookie'), `required when type is Cookie${isSet(sp.type) ? '' : ' (the default)'}`);
  if (isSet(sp.header) && type !== 'Header') f.report(field(path, 'header'), `must not be set when type is ${type}`);
  if (!isSet(sp.header) && type === 'Header') f.report(field(path, 'header'), 'required when type is Header');
  if (asStr(asObj(sp.cookie)?.lifetimeType) === 'Permanent' && !isSet(sp.absoluteTimeout)) {
    f.report(field(path, 'absoluteTimeout'), 'required when cookie.lifetimeType is Permanent');
  }
}

/** What every route's spec gets: its parentRefs' rules and its rules' shared ones. */
export function checkRouteSpec(f: Findings, spec: Obj, unsetMatches: number): void {
  checkParentRefs(f, spec.parentRefs, 'spec.parentRefs');
  checkRules(f, spec.rules, 'spec.rules', unsetMatches);
}
