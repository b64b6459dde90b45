// Reading proto-JSON messages strictly. The sidecar decodes xDS with snake_case names (src/xds/
// protos.ts), while Istio's goldens and hand-written configs use proto3 JSON's lowerCamelCase; both
// are valid proto JSON, so both are read. A field this code does not know is an error naming it:
// an RBAC rule silently dropped would change who gets in, so it must become a NACK instead.
import { fail } from '../xds-client/convert-util.ts';

export { ConvertError, fail } from '../xds-client/convert-util.ts';

function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

/**
 * The fields of message `obj` at `where`, keyed by their snake_case names. Fails on a value that is
 * not an object, on a field not in `known`, and on a field given under both spellings.
 */
export function fields(where: string, obj: unknown, known: readonly string[]): Record<string, any> {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) fail(where, 'expected a message (object)');
  const out: Record<string, any> = {};
  for (const [k, v] of Object.entries(obj)) {
    const name = k === '@type' ? k : snake(k);
    if (!known.includes(name)) fail(`${where}.${name}`, 'unknown or unsupported field');
    if (name in out) fail(`${where}.${name}`, 'given twice (snake_case and camelCase)');
    // A JSON null is the field's default, as proto3 JSON says; treat it as absent.
    if (v !== null && v !== undefined) out[name] = v;
  }
  return out;
}

/** The one field set of a oneof among `names`; fails if none or several are. */
export function oneOf(where: string, f: Record<string, any>, names: readonly string[]): string {
  const set = names.filter((n) => f[n] !== undefined);
  if (set.length === 0) fail(where, `one of ${names.join(', ')} is required`);
  if (set.length > 1) fail(where, `only one of ${set.join(', ')} may be set`);
  return set[0];
}

export function str(where: string, v: unknown): string {
  if (typeof v !== 'string') fail(where, 'expected a string');
  return v;
}

export function bool(where: string, v: unknown): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') fail(where, 'expected true or false');
  return v;
}

/**
 * An integer field; proto JSON may carry 64-bit ones as strings. `wrapped`: a wrapper type
 * (UInt32Value), which protobufjs decodes as {value} and proto JSON writes as the bare number.
 */
export function int(where: string, v: unknown, def = 0, wrapped = false): number {
  if (wrapped && v !== null && typeof v === 'object') v = fields(where, v, ['value']).value;
  if (v === undefined || v === null) return def;
  const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) fail(where, 'expected an integer');
  return n;
}

export function list(where: string, v: unknown): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) fail(where, 'expected a list');
  return v;
}
