// How deep YAML's flow collections nest, checked before the parser sees the text (parse.ts, and
// the mesh config's data.mesh document, meshconfig-rules.ts).

/** Deeper than any Istio or Gateway API resource nests (a VirtualService is about 8 levels deep). */
export const MAX_FLOW_DEPTH = 64;

/**
 * Where flow collections ([ and {) nest deeper than MAX_FLOW_DEPTH, outside quoted scalars: the
 * YAML parser recurses per level, so such input would cost it seconds and end in a stack
 * overflow; it is refused first, with a plain message.
 */
export function tooDeep(text: string): { line: number; column: number } | undefined {
  let depth = 0;
  let quote = '';
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') {
      line++;
      lineStart = i + 1;
    } else if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = '';
    } else if ((c === '"' || c === "'") && depth > 0) quote = c;
    else if (c === '[' || c === '{') {
      if (++depth > MAX_FLOW_DEPTH) return { line, column: i - lineStart + 1 };
    } else if ((c === ']' || c === '}') && depth > 0) depth--;
  }
  return undefined;
}
