// type.matcher.v3.MetadataMatcher and ValueMatcher over dynamic metadata, as Envoy's
// Matchers::MetadataMatcher. Metadata is given as plain JSON, one google.protobuf.Struct per filter
// name, e.g. { 'envoy.filters.http.jwt_authn': { payload: { iss, sub, aud: [..] } } } as Istio's
// JWT filter writes it. The JSON kinds stand for Value's: null, number, string, boolean, array
// (list_value), object (struct_value); undefined is a value that is not there (KIND_NOT_SET).
import { fail, fields, list, oneOf, str, bool } from './fields.ts';
import { compileStringMatcher } from './string-matcher.ts';

/** Dynamic metadata: filter name -> that filter's Struct, as JSON. */
export type Metadata = Readonly<Record<string, unknown>>;

export type ValueMatch = (v: unknown) => boolean;

function num(where: string, v: unknown): number {
  if (typeof v === 'number') return v;
  // proto JSON spells NaN and the infinities as strings.
  if (v === 'NaN' || v === 'Infinity' || v === '-Infinity' || (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)))) return Number(v);
  if (v === undefined) return 0;
  fail(where, 'expected a number');
}

export function compileValueMatcher(where: string, m: unknown): ValueMatch {
  const KINDS = ['null_match', 'double_match', 'string_match', 'bool_match', 'present_match', 'list_match', 'or_match'];
  const f = fields(where, m, KINDS);
  const kind = oneOf(where, f, KINDS);
  const at = `${where}.${kind}`;
  switch (kind) {
    case 'null_match':
      fields(at, f.null_match, []);
      return (v) => v === null;
    case 'double_match': {
      const d = fields(at, f.double_match, ['range', 'exact']);
      if (oneOf(at, d, ['range', 'exact']) === 'exact') {
        const want = num(`${at}.exact`, d.exact);
        return (v) => typeof v === 'number' && v === want;
      }
      const r = fields(`${at}.range`, d.range, ['start', 'end']);
      const start = num(`${at}.range.start`, r.start);
      const end = num(`${at}.range.end`, r.end);
      return (v) => typeof v === 'number' && start <= v && v < end;
    }
    case 'string_match': {
      const sm = compileStringMatcher(at, f.string_match);
      return (v) => typeof v === 'string' && sm(v);
    }
    case 'bool_match': {
      const want = bool(at, f.bool_match);
      return (v) => v === want;
    }
    case 'present_match': {
      // Envoy: present_match false matches nothing, not "absent"; invert the MetadataMatcher for that.
      if (!bool(at, f.present_match)) return () => false;
      return (v) => v !== undefined;
    }
    case 'list_match': {
      const l = fields(at, f.list_match, ['one_of']);
      oneOf(at, l, ['one_of']);
      const one = compileValueMatcher(`${at}.one_of`, l.one_of);
      return (v) => Array.isArray(v) && v.some(one);
    }
    default: {
      const o = fields(at, f.or_match, ['value_matchers']);
      const ms = list(`${at}.value_matchers`, o.value_matchers).map((x, i) => compileValueMatcher(`${at}.value_matchers[${i}]`, x));
      if (ms.length < 2) fail(`${at}.value_matchers`, 'needs at least 2 matchers');
      return (v) => {
        for (const m of ms) if (m(v)) return true;
        return false;
      };
    }
  }
}

/** Envoy's Config::Metadata::metadataValue: each key but the last must lead to a Struct. */
function lookup(md: Metadata | undefined, filter: string, path: readonly string[]): unknown {
  let cur: unknown = md?.[filter];
  for (const key of path) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = Object.hasOwn(cur, key) ? (cur as Record<string, unknown>)[key] : undefined;
  }
  return cur;
}

export function compileMetadataMatcher(where: string, m: unknown): (md: Metadata | undefined) => boolean {
  const f = fields(where, m, ['filter', 'path', 'value', 'invert']);
  const filter = str(`${where}.filter`, f.filter);
  if (filter === '') fail(`${where}.filter`, 'must not be empty');
  const path = list(`${where}.path`, f.path).map((seg, i) => {
    const s = fields(`${where}.path[${i}]`, seg, ['key']);
    const key = str(`${where}.path[${i}].key`, s.key);
    if (key === '') fail(`${where}.path[${i}].key`, 'must not be empty');
    return key;
  });
  if (path.length === 0) fail(`${where}.path`, 'at least one segment is required');
  if (f.value === undefined) fail(`${where}.value`, 'required');
  const value = compileValueMatcher(`${where}.value`, f.value);
  const invert = bool(`${where}.invert`, f.invert);
  return (md) => value(lookup(md, filter, path)) !== invert;
}
