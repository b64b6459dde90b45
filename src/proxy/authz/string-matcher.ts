// type.matcher.v3.StringMatcher, as Envoy's StringMatcherImpl evaluates it. ignore_case folds
// ASCII letters only (absl's EqualsIgnoreCase / AsciiStrToLower), never other Unicode: a policy on
// "/ADMIN" with ignore_case must not be dodged, nor widened, by Unicode case rules Envoy does not
// apply. safe_regex is RE2 matching the whole value (src/proxy/http/regex.ts).
import { compileFullMatch } from '../http/regex.ts';
import { fail, fields, oneOf, str, bool } from './fields.ts';

export type StringMatch = (value: string) => boolean;

function foldCode(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c + 0x20 : c;
}

/** ASCII lower case; returns `s` itself (no copy) when it has no upper-case ASCII letter. */
export function lowerAscii(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
  }
  return s;
}

/** Whether value[at, at + want.length) equals `want` (already lower case) folding ASCII case. */
function regionFolded(value: string, at: number, want: string): boolean {
  for (let i = 0; i < want.length; i++) if (foldCode(value.charCodeAt(at + i)) !== want.charCodeAt(i)) return false;
  return true;
}

/** Envoy's RegexMatcher: `regex` is RE2 and must match the whole input. */
export function compileRegexMatcher(where: string, m: unknown): StringMatch {
  const f = fields(where, m, ['regex', 'google_re2']);
  if (f.google_re2 !== undefined) fields(`${where}.google_re2`, f.google_re2, []);
  const source = str(`${where}.regex`, f.regex);
  if (source === '') fail(`${where}.regex`, 'must not be empty');
  // Istio writes ".+" for every "*" value; RE2's '.' is any character but '\n', so these two need no engine.
  if (source === '.+') return (v) => v.length > 0 && v.indexOf('\n') < 0;
  if (source === '.*') return (v) => v.indexOf('\n') < 0;
  try {
    const re = compileFullMatch(source);
    return (v) => re.test(v);
  } catch (e) {
    fail(`${where}.regex`, `invalid RE2 regex ${JSON.stringify(source)}: ${(e as Error).message}`);
  }
}

export function compileStringMatcher(where: string, m: unknown): StringMatch {
  const f = fields(where, m, ['exact', 'prefix', 'suffix', 'contains', 'safe_regex', 'custom', 'ignore_case']);
  const kind = oneOf(where, f, ['exact', 'prefix', 'suffix', 'contains', 'safe_regex', 'custom']);
  const ci = bool(`${where}.ignore_case`, f.ignore_case);
  if (kind === 'custom') fail(`${where}.custom`, 'custom string matcher extensions are not supported');
  if (kind === 'safe_regex') {
    // Envoy refuses this combination rather than guessing: a pattern says (?i) itself.
    if (ci) fail(`${where}.ignore_case`, 'ignore_case has no effect for safe_regex');
    return compileRegexMatcher(`${where}.safe_regex`, f.safe_regex);
  }
  const raw = str(`${where}.${kind}`, f[kind]);
  if (kind !== 'exact' && raw === '') fail(`${where}.${kind}`, 'must not be empty');
  const want = ci ? lowerAscii(raw) : raw;
  const n = want.length;
  switch (kind) {
    case 'exact':
      return ci ? (v) => v.length === n && regionFolded(v, 0, want) : (v) => v === want;
    case 'prefix':
      return ci ? (v) => v.length >= n && regionFolded(v, 0, want) : (v) => v.startsWith(want);
    case 'suffix':
      return ci ? (v) => v.length >= n && regionFolded(v, v.length - n, want) : (v) => v.endsWith(want);
    default:
      return ci ? (v) => lowerAscii(v).includes(want) : (v) => v.includes(want);
  }
}
