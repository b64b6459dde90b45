// A tiny structural-schema checker, in the spirit of Kubernetes' OpenAPI v3 validation of CRDs:
// types, enums, ranges, lengths, patterns, required fields, "at most one of" groups, unknown
// fields, and the list types set and map (no repeats).
// The schemas it runs are transcribed by hand into TypeScript (istio-schema.ts, gateway-schema.ts);
// nothing is read from disk at run time.

import type { FieldError } from './types.ts';
import { parseDuration, type DurationCheck, checkDuration } from './rules.ts';

interface Base {
  /** null is a legal value (the CRD says `nullable: true`, e.g. wrapper types like BoolValue). */
  readonly nullable?: boolean;
}

export interface StringSchema extends Base {
  readonly type: 'string';
  readonly enum?: readonly string[];
  /** The string is a duration (google.protobuf.Duration): see DurationCheck. */
  readonly duration?: DurationCheck;
  readonly maxLength?: number;
  readonly minLength?: number;
  /** format: byte — base64 text. */
  readonly base64?: boolean;
  /** The CRD's `pattern`, with the message that says in words what it asks for. */
  readonly pattern?: Pattern;
}

export interface Pattern {
  readonly re: RegExp;
  /** "must be ...": the whole message a value that does not match gets. */
  readonly message: string;
}

export interface IntegerSchema extends Base {
  readonly type: 'integer';
  readonly min?: number;
  readonly max?: number;
  readonly enum?: readonly number[];
}

export interface NumberSchema extends Base {
  readonly type: 'number';
  readonly min?: number;
  readonly max?: number;
}

export interface BooleanSchema extends Base {
  readonly type: 'boolean';
}

export interface ArraySchema extends Base {
  readonly type: 'array';
  readonly items: Schema;
  readonly maxItems?: number;
  readonly minItems?: number;
  /** `x-kubernetes-list-type: set`: no value twice. */
  readonly set?: boolean;
  /** `x-kubernetes-list-type: map`: no two items with the same values of these fields. */
  readonly mapKeys?: readonly string[];
}

export interface ObjectSchema extends Base {
  readonly type: 'object';
  readonly props: Readonly<Record<string, Schema>>;
  readonly required?: readonly string[];
  /** Each group is a protobuf `oneof`: at most one of its fields may be set. */
  readonly oneOf?: readonly (readonly string[])[];
}

/** An object with free-form keys (`additionalProperties` in OpenAPI), e.g. labels. */
export interface MapSchema extends Base {
  readonly type: 'map';
  readonly values: Schema;
  readonly maxProperties?: number;
  readonly minProperties?: number;
}

export type Schema = StringSchema | IntegerSchema | NumberSchema | BooleanSchema | ArraySchema | ObjectSchema | MapSchema;

// ---- path helpers (shared with the semantic rules so every message names fields the same way) ----

export function field(base: string, name: string): string {
  return base === '' ? name : `${base}.${name}`;
}

export function index(base: string, i: number): string {
  return `${base}[${i}]`;
}

/** Map keys are written in brackets, unquoted: spec.http[0].match[0].headers[x-user]. */
export function key(base: string, k: string): string {
  return `${base}[${k}]`;
}

// ---- value helpers ----

export type Obj = Record<string, unknown>;

export function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const TYPE_NAMES: Record<Schema['type'], string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'a boolean (true or false)',
  array: 'a list',
  object: 'an object',
  map: 'an object',
};

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  return `${typeof v} ${String(v)}`;
}

function rangeMessage(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return `must be between ${min} and ${max}`;
  if (min !== undefined) return `must be at least ${min}`;
  return `must be at most ${String(max)}`;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Check `value` against `schema`; returns one error per offending field, in document order. */
export function checkShape(value: unknown, schema: Schema, path: string): FieldError[] {
  if (value === null) {
    // Kubernetes prunes nulls of non-nullable object fields; we do the same (see pruneNulls),
    // so a null here only reaches us for nullable fields or list items.
    return schema.nullable ? [] : [{ path, message: `must be ${TYPE_NAMES[schema.type]}, not null` }];
  }
  switch (schema.type) {
    case 'string':
      return checkString(value, schema, path);
    case 'integer':
      return checkNumber(value, schema, path, true);
    case 'number':
      return checkNumber(value, schema, path, false);
    case 'boolean':
      return typeof value === 'boolean' ? [] : [typeError(path, schema, value)];
    case 'array':
      return checkArray(value, schema, path);
    case 'object':
      return checkObject(value, schema, path);
    case 'map':
      return checkMap(value, schema, path);
  }
}

function typeError(path: string, schema: Schema, value: unknown): FieldError {
  return { path, message: `must be ${TYPE_NAMES[schema.type]}, not ${describe(value)}` };
}

function checkString(value: unknown, schema: StringSchema, path: string): FieldError[] {
  if (typeof value !== 'string') return [typeError(path, schema, value)];
  if (schema.enum && !schema.enum.includes(value)) {
    return [{ path, message: `must be one of ${schema.enum.join(', ')} (got ${JSON.stringify(value)})` }];
  }
  if (schema.maxLength !== undefined && value.length > schema.maxLength) {
    return [{ path, message: `must be at most ${schema.maxLength} characters` }];
  }
  if (schema.minLength !== undefined && value.length < schema.minLength) {
    return [{ path, message: schema.minLength === 1 ? 'must not be empty' : `must be at least ${schema.minLength} characters` }];
  }
  if (schema.pattern && !schema.pattern.re.test(value)) return [{ path, message: schema.pattern.message }];
  if (schema.base64 && !BASE64.test(value)) return [{ path, message: 'must be base64-encoded' }];
  if (schema.duration) {
    const problem = checkDuration(parseDuration(value), schema.duration);
    if (problem) return [{ path, message: problem }];
  }
  return [];
}

function checkNumber(value: unknown, schema: IntegerSchema | NumberSchema, path: string, integer: boolean): FieldError[] {
  if (typeof value !== 'number' || !Number.isFinite(value)) return [typeError(path, schema, value)];
  if (integer && !Number.isInteger(value)) return [typeError(path, schema, value)];
  const { min, max } = schema;
  if ((min !== undefined && value < min) || (max !== undefined && value > max)) {
    return [{ path, message: rangeMessage(min, max) }];
  }
  if ('enum' in schema && schema.enum && !schema.enum.includes(value)) {
    return [{ path, message: `must be one of ${schema.enum.join(', ')} (got ${value})` }];
  }
  return [];
}

function checkArray(value: unknown, schema: ArraySchema, path: string): FieldError[] {
  if (!Array.isArray(value)) return [typeError(path, schema, value)];
  if (schema.maxItems !== undefined && value.length > schema.maxItems) {
    return [{ path, message: `must have at most ${schema.maxItems} items` }];
  }
  if (schema.minItems !== undefined && value.length < schema.minItems) {
    return [{ path, message: schema.minItems === 1 ? 'must not be empty' : `must have at least ${schema.minItems} items` }];
  }
  const items = value.flatMap((item, i) => checkShape(item, schema.items, index(path, i)));
  return [...items, ...duplicateItems(value, schema, path)];
}

/** A set's repeated values, or a list-map's repeated keys: each repeat names the item it repeats. */
function duplicateItems(value: unknown[], schema: ArraySchema, path: string): FieldError[] {
  if (!schema.set && !schema.mapKeys) return [];
  const keyOf = (item: unknown): string | undefined => {
    if (schema.set) return typeof item === 'object' ? undefined : JSON.stringify(item);
    // An item without its key is reported as such (`required`), not as a repeat.
    if (!schema.mapKeys || !isObject(item) || schema.mapKeys.some((k) => item[k] === undefined || item[k] === null)) return undefined;
    return schema.mapKeys.map((k) => `${k} ${JSON.stringify(item[k])}`).join(', ');
  };
  const seen = new Map<string, number>();
  const errors: FieldError[] = [];
  value.forEach((item, i) => {
    const k = keyOf(item);
    if (k === undefined) return;
    const first = seen.get(k);
    if (first === undefined) seen.set(k, i);
    else errors.push({ path: index(path, i), message: `duplicate ${schema.set ? 'value ' : ''}${k} (already at ${index(path, first)})` });
  });
  return errors;
}

function checkMap(value: unknown, schema: MapSchema, path: string): FieldError[] {
  if (!isObject(value)) return [typeError(path, schema, value)];
  const entries = Object.entries(value);
  if (schema.maxProperties !== undefined && entries.length > schema.maxProperties) {
    return [{ path, message: `must have at most ${schema.maxProperties} entries` }];
  }
  if (schema.minProperties !== undefined && entries.length < schema.minProperties) {
    return [{ path, message: schema.minProperties === 1 ? 'must have at least one entry' : `must have at least ${schema.minProperties} entries` }];
  }
  return entries.flatMap(([k, v]) => checkShape(v, schema.values, key(path, k)));
}

function checkObject(value: unknown, schema: ObjectSchema, path: string): FieldError[] {
  if (!isObject(value)) return [typeError(path, schema, value)];
  const errors: FieldError[] = [];
  for (const [name, v] of Object.entries(value)) {
    const sub = schema.props[name];
    if (!sub) errors.push({ path: field(path, name), message: 'unknown field' });
    else if (v !== null || sub.nullable) errors.push(...checkShape(v, sub, field(path, name)));
  }
  for (const name of schema.required ?? []) {
    if (value[name] === undefined || value[name] === null) errors.push({ path: field(path, name), message: 'required' });
  }
  for (const group of schema.oneOf ?? []) {
    const set = group.filter((name) => value[name] !== undefined && value[name] !== null);
    if (set.length > 1) errors.push({ path, message: `only one of ${group.join(', ')} may be set (got ${set.join(', ')})` });
  }
  return errors;
}

/**
 * Drop null-valued object fields that the schema does not mark nullable, as the Kubernetes API
 * server does, so later code never meets `field: null`. Returns a new value; the input is untouched.
 */
export function pruneNulls(value: unknown, schema: Schema | undefined): unknown {
  if (Array.isArray(value)) {
    const items = schema?.type === 'array' ? schema.items : undefined;
    return value.map((v) => pruneNulls(v, items));
  }
  if (!isObject(value)) return value;
  const out: Obj = {};
  for (const [k, v] of Object.entries(value)) {
    const sub = schema?.type === 'object' ? schema.props[k] : schema?.type === 'map' ? schema.values : undefined;
    if (v === null && !(sub?.nullable ?? false) && schema?.type === 'object') continue;
    out[k] = pruneNulls(v, sub);
  }
  return out;
}
