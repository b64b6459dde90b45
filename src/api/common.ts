// Helpers for the per-kind validators: tolerant accessors (the schema check runs separately, so
// semantic rules must not trip over values of the wrong type: they simply skip them) and the
// rules the kinds share (labels, selectors, exportTo, gateway names, percentages).

import type { FieldError } from './types.ts';
import { field, index, isObject, key, type Obj } from './schema.ts';
import { checkFQDN, checkLabelKey, checkLabelValue, isDNS1123Label } from './rules.ts';

/** Collects errors; a rule reports `undefined` when it has nothing to say. */
export class Findings {
  readonly errors: FieldError[] = [];

  report(path: string, message: string | undefined): void {
    if (message !== undefined) this.errors.push({ path, message });
  }
}

export function asObj(v: unknown): Obj | undefined {
  return isObject(v) ? v : undefined;
}

export function asList(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

export function asStr(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function asNum(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Protobuf semantics: an unset string and "" are the same thing. */
export function nonEmpty(v: unknown): v is string {
  return typeof v === 'string' && v !== '';
}

export function isSet(v: unknown): boolean {
  return v !== undefined && v !== null;
}

/** Entries of a map-typed field (labels, headers, ...), or none when it is not an object. */
export function entriesOf(v: unknown): [string, unknown][] {
  return isObject(v) ? Object.entries(v) : [];
}

/** Each item of a list-typed field that is an object, with its path. */
export function eachObj(v: unknown, path: string): [Obj, string][] {
  return asList(v).flatMap((item, i): [Obj, string][] => (isObject(item) ? [[item, index(path, i)]] : []));
}

/** Each item of a list-typed field that is a string, with its path. */
export function eachStr(v: unknown, path: string): [string, string][] {
  return asList(v).flatMap((item, i): [string, string][] => (typeof item === 'string' ? [[item, index(path, i)]] : []));
}

/** Kubernetes label rules for keys and values (Istio's labels.Instance.Validate). */
export function checkLabels(f: Findings, labels: unknown, path: string): void {
  for (const [k, v] of entriesOf(labels)) {
    f.report(key(path, k), checkLabelKey(k));
    if (typeof v === 'string') f.report(key(path, k), checkLabelValue(v));
  }
}

/** Istio's validatePercentage: 0, or a value in [0.0001, 100]. */
export function checkPercentage(f: Findings, percentage: unknown, path: string): void {
  const value = asNum(asObj(percentage)?.value);
  if (value === undefined) return;
  if (value < 0 || value > 100 || (value > 0 && value < 0.0001)) {
    f.report(field(path, 'value'), 'must be 0 or between 0.0001 and 100');
  }
}

/** Istio's validateGatewayNames: "namespace/name", or the legacy FQDN form (e.g. "mesh"). */
export function checkGatewayNames(f: Findings, gateways: unknown, path: string): void {
  for (const [g, p] of eachStr(gateways, path)) {
    const slash = g.indexOf('/');
    if (slash < 0) {
      f.report(p, checkFQDN(g));
      continue;
    }
    const ns = g.slice(0, slash);
    const name = g.slice(slash + 1);
    if (ns === '' || name === '') f.report(p, 'gateway namespace and name cannot be empty');
    else if (!isDNS1123Label(ns)) f.report(p, `invalid gateway namespace "${ns}"`);
    else if (!isDNS1123Label(name)) f.report(p, `invalid gateway name "${name}"`);
  }
}

function isVisibility(v: string): boolean {
  return v === '.' || v === '*' || v === '~' || isDNS1123Label(v);
}

/**
 * Istio's validateExportTo. Istio allows "~" (no one) only in a ServiceEntry; Weft has always
 * accepted it in VirtualService and DestinationRule too, and honours it there (docs/config.md).
 */
export function checkExportTo(f: Findings, exportTo: unknown, path: string, namespace: string, withSelector = false): void {
  const entries = eachStr(exportTo, path);
  const seen = new Set<string>();
  for (const [e, p] of entries) {
    // "." means this namespace: "." and the namespace's own name are duplicates.
    const k = e === '.' ? namespace : e;
    if (seen.has(k)) f.report(p, k === e ? `duplicate entry "${e}"` : `duplicate entries: "." and the current namespace "${namespace}"`);
    else if (!isVisibility(k)) f.report(p, 'must be ".", "*", "~" or a namespace name');
    else seen.add(k);
  }
  if (withSelector && seen.size > 0) {
    if (!seen.has(namespace)) f.report(path, 'a destination rule with a workload selector cannot be exported beyond its own namespace');
    else if (seen.size > 1) f.report(path, 'a destination rule with a workload selector cannot have more than one exportTo entry');
  }
  if (seen.has('*') && entries.length > 1) f.report(path, 'cannot have both public (*) and non-public exportTo values');
  if (seen.has('~') && entries.length > 1) f.report(path, 'cannot export to no one (~) and to someone');
}

/**
 * A workload selector's labels: Istio's validateWorkloadSelector (no empty keys, no wildcards in
 * keys or values) and the CRDs' CEL rule on the values ("wildcard is not supported in selector").
 */
export function checkSelectorLabels(f: Findings, labels: unknown, path: string): void {
  for (const [k, v] of entriesOf(labels)) {
    const kp = key(path, k);
    if (k === '') f.report(kp, 'label key must not be empty');
    else if (k.includes('*')) f.report(kp, 'wildcard not allowed in label key match');
    if (typeof v === 'string' && v.includes('*')) f.report(kp, 'wildcard not allowed in label value match');
  }
}
