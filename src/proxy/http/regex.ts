// Envoy's safe_regex: RE2 syntax, and the whole value must match. RE2 runs in time linear in the
// input, whatever the pattern, so no pattern in a config can stall a sidecar; the same library
// (re2js, a port of RE2) is what `weft apply` validates with, so what is accepted is what runs.
// It is loaded on first use: a sidecar whose config has no regex does not pay its memory.
import type * as Re2 from 're2js';

let lib: typeof Re2 | undefined;

function re2(): typeof Re2 {
  lib ??= process.getBuiltinModule('node:module').createRequire(import.meta.url)('re2js') as typeof Re2;
  return lib;
}

export interface FullMatch {
  test(value: string): boolean;
}

/** Compiles an RE2 pattern that must match a whole value; throws an Error saying why it cannot. */
export function compileFullMatch(source: string): FullMatch {
  const re = re2().RE2JS.compile(source);
  return { test: (value) => re.matches(value) };
}

/** Compiles an RE2 pattern that must match somewhere in a value (CEL's matches()); throws an Error saying why it cannot. */
export function compileSearch(source: string): FullMatch {
  const re = re2().RE2JS.compile(source);
  return { test: (value) => re.matcher(value).find() };
}

/** Replaces every match of a pattern (Envoy's RegexMatchAndSubstitute). */
export interface Rewriter {
  replaceAll(value: string): string;
}

/**
 * RE2's GlobalReplace, as Envoy's regex_rewrite uses it: every non-overlapping match of `source`
 * is replaced by `substitution`, in which \0-\9 stand for the match's groups and \\ for a
 * backslash. Throws if the pattern does not compile or names a group it does not have.
 */
export function compileRewriter(source: string, substitution: string): Rewriter {
  const re = re2().RE2JS.compile(source);
  const groups = re.groupCount();
  const parts: (string | number)[] = [];
  let lit = '';
  for (let i = 0; i < substitution.length; i++) {
    const c = substitution[i];
    if (c !== '\\' || i + 1 === substitution.length) {
      lit += c;
      continue;
    }
    const n = substitution[++i];
    if (n === '\\') lit += '\\';
    else if (n >= '0' && n <= '9') {
      if (Number(n) > groups) throw new Error(`substitution ${JSON.stringify(substitution)} uses \\${n}, but the pattern has ${groups} group(s)`);
      if (lit) parts.push(lit);
      lit = '';
      parts.push(Number(n));
    } else throw new Error(`substitution ${JSON.stringify(substitution)}: invalid escape \\${n} (use \\0-\\9 or \\\\)`);
  }
  if (lit) parts.push(lit);
  return {
    replaceAll(value: string): string {
      const m = re.matcher(value);
      let out = '';
      let last = 0;
      while (m.find()) {
        out += value.slice(last, m.start());
        for (const p of parts) out += typeof p === 'number' ? (m.group(p) ?? '') : p;
        last = m.end();
      }
      return out + value.slice(last);
    },
  };
}
