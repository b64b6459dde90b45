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
