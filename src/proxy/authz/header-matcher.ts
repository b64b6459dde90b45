// config.route.v3.HeaderMatcher as RBAC (and Envoy's router) evaluates it, Http::HeaderUtility's
// header data: repeated fields joined with ",", a missing header matching nothing whether inverted
// or not (unless treat_missing_header_as_empty), present_match alone looking only at presence.
import { fail, fields, str, bool } from './fields.ts';
import { hasHeader, headerValue } from './request.ts';
import { compileRegexMatcher, compileStringMatcher, type StringMatch } from './string-matcher.ts';

const HEADER_KINDS = ['exact_match', 'safe_regex_match', 'range_match', 'present_match', 'prefix_match', 'suffix_match', 'contains_match', 'string_match'];

/** config.route.v3.HeaderMatcher, as Envoy's Http::HeaderUtility header data, on a flat header list. */
export function compileHeaderMatcher(at: string, v: unknown): (headers: readonly string[] | undefined) => boolean {
  const f = fields(at, v, ['name', ...HEADER_KINDS, 'invert_match', 'treat_missing_header_as_empty']);
  const name = str(`${at}.name`, f.name).toLowerCase();
  if (name === '' || /[\0\r\n]/.test(name)) fail(`${at}.name`, 'not a valid header name');
  const invert = bool(`${at}.invert_match`, f.invert_match);
  const missingAsEmpty = bool(`${at}.treat_missing_header_as_empty`, f.treat_missing_header_as_empty);
  const set = HEADER_KINDS.filter((k) => f[k] !== undefined);
  if (set.length > 1) fail(at, `only one of ${set.join(', ')} may be set`);
  const kind = set[0] ?? 'present_match';
  if (kind === 'present_match') {
    // No specifier means "present"; presence only, whatever treat_missing_header_as_empty says.
    const present = f.present_match === undefined ? true : bool(`${at}.present_match`, f.present_match);
    return (h) => (hasHeader(h, name) === present) !== invert;
  }
  const w = `${at}.${kind}`;
  let m: StringMatch;
  switch (kind) {
    case 'string_match':
      m = compileStringMatcher(w, f.string_match);
      break;
    case 'safe_regex_match':
      m = compileRegexMatcher(w, f.safe_regex_match);
      break;
    case 'range_match':
      m = rangeMatch(w, f.range_match);
      break;
    case 'exact_match': {
      const want = str(w, f.exact_match);
      // Envoy's legacy exact_match: an empty value matches any value.
      m = want === '' ? () => true : (x) => x === want;
      break;
    }
    default: {
      const want = str(w, f[kind]);
      if (want === '') fail(w, 'must not be empty');
      m = kind === 'prefix_match' ? (x) => x.startsWith(want) : kind === 'suffix_match' ? (x) => x.endsWith(want) : (x) => x.includes(want);
    }
  }
  return (h) => {
    const value = headerValue(h, name);
    // A missing header matches nothing, inverted or not, unless it is to be read as ''.
    if (value === undefined && !missingAsEmpty) return false;
    return m(value ?? '') !== invert;
  };
}

/** Int64Range on a header value read as absl::SimpleAtoi reads an int64: [start, end). */
function rangeMatch(w: string, r: unknown): StringMatch {
  const f = fields(w, r, ['start', 'end']);
  const big = (x: unknown, n: string): bigint => {
    if (x === undefined) return 0n;
    if ((typeof x === 'number' && Number.isSafeInteger(x)) || (typeof x === 'string' && /^-?\d+$/.test(x))) return BigInt(x);
    fail(`${w}.${n}`, 'expected an integer');
  };
  const start = big(f.start, 'start');
  const end = big(f.end, 'end');
  const MIN = -(2n ** 63n);
  const MAX = 2n ** 63n - 1n;
  return (x) => {
    const t = x.replace(/^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g, '');
    if (!/^[+-]?\d+$/.test(t)) return false;
    const n = BigInt(t.startsWith('+') ? t.slice(1) : t);
    return n >= MIN && n <= MAX && n >= start && n < end;
  };
}
