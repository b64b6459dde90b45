// A parser for the Common Expression Language (github.com/google/cel-spec, langdef.md): the whole
// grammar, as Istio's webhook parses a Telemetry's access log filter (cel-go's Parse, macros
// expanded: has(), all, exists, exists_one, map, filter), into a small AST. Pure, no imports: the
// API's validation uses it, and the sidecar's access log filter evaluates what it returns
// (proxy/telemetry/cel-filter.ts; what of it the sidecars evaluate: cel-support.ts).

export type CelExpr =
  | { k: 'lit'; v: CelLiteral }
  | { k: 'ident'; name: string }
  /** operand.field; `test` for has(operand.field). */
  | { k: 'select'; operand: CelExpr; field: string; test?: boolean }
  /** A function or operator ("_&&_", "_==_", "!_", "_[_]", "_?_:_", "contains", ...), with its receiver for a method call. */
  | { k: 'call'; fn: string; target?: CelExpr; args: CelExpr[] }
  | { k: 'list'; items: CelExpr[] }
  | { k: 'map'; entries: { key: CelExpr; value: CelExpr }[] }
  | { k: 'struct'; name: string; fields: { name: string; value: CelExpr }[] }
  /** A comprehension macro: all, exists, exists_one, map, filter. */
  | { k: 'macro'; fn: string; target: CelExpr; variable: string; args: CelExpr[] };

export type CelLiteral = null | boolean | string | number | bigint | Uint8Array | { uint: bigint } | { double: number };

export class CelSyntaxError extends Error {}

const RESERVED = new Set(['as', 'break', 'const', 'continue', 'else', 'for', 'function', 'if', 'import', 'let', 'loop', 'package', 'namespace', 'return', 'var', 'void', 'while']);
const MACROS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);
/** cel-go's default limit on nesting. */
const MAX_DEPTH = 250;

type Tok = { t: 'num' | 'str' | 'bytes' | 'ident' | 'op' | 'end'; v: string; at: number; lit?: CelLiteral };

/** Why `text` is not a CEL expression, or undefined when it is one. */
export function celSyntaxError(text: string): string | undefined {
  try {
    parseCel(text);
    return undefined;
  } catch (e) {
    if (e instanceof CelSyntaxError) return `must be a valid CEL expression: ${e.message}`;
    throw e;
  }
}

/** cel-go's default limit on an expression's size, in code points. */
const MAX_CODE_POINTS = 100_000;

export function parseCel(text: string): CelExpr {
  if (text.length > MAX_CODE_POINTS && [...text].length > MAX_CODE_POINTS) throw new CelSyntaxError(`expression longer than ${MAX_CODE_POINTS} code points`);
  const p = new Parser(tokenize(text));
  const e = p.expr(0);
  p.expectEnd();
  // Repeated unary operators, member and index chains and operator chains are parsed in loops, so
  // the tree can be deeper than the parser's own nesting: every walk of it (support checks,
  // compiling, evaluating) recurses, so its depth is bounded here, counted without recursion.
  if (treeDepth(e) > MAX_DEPTH) throw new CelSyntaxError(`expression nested too deep (more than ${MAX_DEPTH} levels)`);
  return e;
}

/** The depth of an expression tree, walked with an explicit stack. */
function treeDepth(root: CelExpr): number {
  let max = 0;
  const stack: [CelExpr, number][] = [[root, 1]];
  while (stack.length) {
    const [e, d] = stack.pop()!;
    if (d > max) max = d;
    if (d > MAX_DEPTH) return d;
    for (const c of children(e)) stack.push([c, d + 1]);
  }
  return max;
}

function children(e: CelExpr): CelExpr[] {
  switch (e.k) {
    case 'lit':
    case 'ident':
      return [];
    case 'select':
      return [e.operand];
    case 'call':
      return e.target ? [e.target, ...e.args] : e.args;
    case 'list':
      return e.items;
    case 'map':
      return e.entries.flatMap((x) => [x.key, x.value]);
    case 'struct':
      return e.fields.map((f) => f.value);
    case 'macro':
      return [e.target, ...e.args];
  }
}

// ---- the lexer ----

const PUNCT = ['==', '!=', '<=', '>=', '&&', '||', '<', '>', '!', '+', '-', '*', '/', '%', '?', ':', '.', ',', '(', ')', '[', ']', '{', '}'];

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (src.startsWith('//', i)) {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    const at = i;
    // String and bytes literals, with r/R (raw) and b/B prefixes in either order.
    const prefix = /^([rRbB]{0,2})(?=["'])/.exec(src.slice(i, i + 3))?.[1];
    if (prefix !== undefined && /^(?:[rR]?[bB]?|[bB][rR])$/.test(prefix)) {
      const raw = /[rR]/.test(prefix);
      const bytes = /[bB]/.test(prefix);
      i += prefix.length;
      const q = src.startsWith(src[i].repeat(3), i) ? src[i].repeat(3) : src[i];
      i += q.length;
      let s = '';
      for (;;) {
        if (i >= src.length) throw new CelSyntaxError(`unterminated string at ${at}`);
        if (src.startsWith(q, i)) {
          i += q.length;
          break;
        }
        if (q.length === 1 && (src[i] === '\n' || src[i] === '\r')) throw new CelSyntaxError(`newline in a single-quoted string at ${i}`);
        if (src[i] === '\\' && !raw) {
          const [ch, n] = escape(src, i, bytes);
          s += ch;
          i += n;
        } else {
          // A raw string keeps its backslashes as they are (and cannot hold its own quote).
          s += src[i++];
        }
      }
      out.push(bytes ? { t: 'bytes', v: s, at, lit: Uint8Array.from(Buffer.from(s, 'latin1')) } : { t: 'str', v: s, at, lit: s });
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] ?? ''))) {
      const hex = /^0[xX][0-9a-fA-F]+([uU])?/.exec(src.slice(i));
      if (hex) {
        const n = BigInt(hex[0].replace(/[uU]$/, ''));
        out.push({ t: 'num', v: hex[0], at, lit: intLiteral(n, Boolean(hex[1]), at) });
        i += hex[0].length;
        continue;
      }
      const m = /^(?:[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+|([0-9]+)([uU])?)/.exec(src.slice(i))!;
      i += m[0].length;
      out.push({ t: 'num', v: m[0], at, lit: m[1] !== undefined ? intLiteral(BigInt(m[1]), Boolean(m[2]), at) : { double: Number(m[0]) } });
      continue;
    }
    const id = /^[_a-zA-Z][_a-zA-Z0-9]*/.exec(src.slice(i));
    if (id) {
      out.push({ t: 'ident', v: id[0], at });
      i += id[0].length;
      continue;
    }
    const op = PUNCT.find((o) => src.startsWith(o, i));
    if (!op) throw new CelSyntaxError(`unexpected character ${JSON.stringify(c)} at ${i}`);
    out.push({ t: 'op', v: op, at });
    i += op.length;
  }
  out.push({ t: 'end', v: '', at: src.length });
  return out;
}

/** An int literal (a uint with the u suffix): out of range is an error, as in cel-go. */
function intLiteral(n: bigint, unsigned: boolean, at: number): CelLiteral {
  if (unsigned) {
    if (n > 0xffffffffffffffffn) throw new CelSyntaxError(`uint literal out of range at ${at}`);
    return { uint: n };
  }
  // -9223372036854775808 is written as a negation of this: checked there.
  if (n > 9223372036854775808n) throw new CelSyntaxError(`int literal out of range at ${at}`);
  return n;
}

const SIMPLE_ESCAPES: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', "'": "'", '"': '"', '`': '`', '?': '?' };

/** One escape sequence at src[i] ("\n", "\x41", "\u00e9", "\101"): the character and its length. */
function escape(src: string, i: number, bytes: boolean): [string, number] {
  const c = src[i + 1];
  if (c !== undefined && c in SIMPLE_ESCAPES) return [SIMPLE_ESCAPES[c], 2];
  const hex = (len: number) => {
    const h = src.slice(i + 2, i + 2 + len);
    if (h.length !== len || !/^[0-9a-fA-F]+$/.test(h)) throw new CelSyntaxError(`invalid escape sequence at ${i}`);
    return parseInt(h, 16);
  };
  if (c === 'x' || c === 'X') return [String.fromCharCode(hex(2)), 4];
  if ((c === 'u' || c === 'U') && !bytes) {
    const len = c === 'u' ? 4 : 8;
    const cp = hex(len);
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) throw new CelSyntaxError(`invalid code point in escape sequence at ${i}`);
    return [String.fromCodePoint(cp), 2 + len];
  }
  const oct = /^[0-3][0-7][0-7]/.exec(src.slice(i + 1, i + 4));
  if (oct) return [String.fromCharCode(parseInt(oct[0], 8)), 4];
  throw new CelSyntaxError(`invalid escape sequence at ${i}`);
}

// ---- the parser (precedence climbing over CEL's grammar) ----

const BINARY: Record<string, { prec: number; fn: string }> = {
  '||': { prec: 1, fn: '_||_' },
  '&&': { prec: 2, fn: '_&&_' },
  '==': { prec: 3, fn: '_==_' },
  '!=': { prec: 3, fn: '_!=_' },
  '<': { prec: 3, fn: '_<_' },
  '<=': { prec: 3, fn: '_<=_' },
  '>': { prec: 3, fn: '_>_' },
  '>=': { prec: 3, fn: '_>=_' },
  in: { prec: 3, fn: '@in' },
  '+': { prec: 4, fn: '_+_' },
  '-': { prec: 4, fn: '_-_' },
  '*': { prec: 5, fn: '_*_' },
  '/': { prec: 5, fn: '_/_' },
  '%': { prec: 5, fn: '_%_' },
};

class Parser {
  private pos = 0;
  private depth = 0;
  private readonly toks: Tok[];

  constructor(toks: Tok[]) {
    this.toks = toks;
  }

  private peek(): Tok {
    return this.toks[this.pos];
  }

  private isOp(v: string): boolean {
    const t = this.peek();
    return (t.t === 'op' || (t.t === 'ident' && v === 'in')) && t.v === v;
  }

  private eat(v: string): boolean {
    if (!this.isOp(v)) return false;
    this.pos++;
    return true;
  }

  private expect(v: string): void {
    if (!this.eat(v)) this.fail(`expected '${v}'`);
  }

  private fail(what: string): never {
    const t = this.peek();
    throw new CelSyntaxError(`${what} at ${t.at}${t.t === 'end' ? ' (end of expression)' : `, found '${t.v}'`}`);
  }

  expectEnd(): void {
    if (this.peek().t !== 'end') this.fail('unexpected input');
  }

  private deeper<T>(f: () => T): T {
    if (++this.depth > MAX_DEPTH) this.fail('expression nested too deep');
    try {
      return f();
    } finally {
      this.depth--;
    }
  }

  /** Expr = ConditionalOr ["?" ConditionalOr ":" Expr] */
  expr(_: number): CelExpr {
    return this.deeper(() => {
      const cond = this.binary(1);
      if (!this.eat('?')) return cond;
      const a = this.binary(1);
      this.expect(':');
      const b = this.expr(0);
      return { k: 'call', fn: '_?_:_', args: [cond, a, b] };
    });
  }

  private binary(min: number): CelExpr {
    let left = this.unary();
    for (;;) {
      const t = this.peek();
      const op = (t.t === 'op' || (t.t === 'ident' && t.v === 'in')) ? BINARY[t.v] : undefined;
      if (!op || op.prec < min) return left;
      this.pos++;
      const right = this.deeper(() => this.binary(op.prec + 1));
      left = { k: 'call', fn: op.fn, args: [left, right] };
    }
  }

  private unary(): CelExpr {
    if (this.isOp('!') || this.isOp('-')) {
      const ops: string[] = [];
      // One operator, repeated ("!!a", "--1"): the grammar has no "!-a".
      const op = this.peek().v;
      while (this.isOp(op)) ops.push(this.toks[this.pos++].v);
      // -9223372036854775808: a negated literal is one literal.
      let e = this.member();
      for (let i = ops.length - 1; i >= 0; i--) {
        if (ops[i] === '-' && e.k === 'lit' && typeof e.v === 'bigint' && i === ops.length - 1) e = { k: 'lit', v: -e.v };
        else if (ops[i] === '-' && e.k === 'lit' && isDouble(e.v) && i === ops.length - 1) e = { k: 'lit', v: { double: -e.v.double } };
        else e = { k: 'call', fn: ops[i] === '!' ? '!_' : '-_', args: [e] };
      }
      return e;
    }
    const e = this.member();
    // 9223372036854775808 is an int only when negated.
    if (e.k === 'lit' && typeof e.v === 'bigint' && e.v > 9223372036854775807n) throw new CelSyntaxError('int literal out of range');
    return e;
  }

  private member(): CelExpr {
    let e = this.primary();
    for (;;) {
      if (this.eat('.')) {
        const id = this.ident(true);
        if (this.eat('(')) {
          const args = this.list(')');
          e = this.methodCall(e, id, args);
        } else e = { k: 'select', operand: e, field: id };
      } else if (this.eat('[')) {
        const i = this.expr(0);
        this.expect(']');
        e = { k: 'call', fn: '_[_]', args: [e, i] };
      } else if (this.isOp('{') && qualifiedName(e) !== undefined) {
        this.pos++;
        e = { k: 'struct', name: qualifiedName(e)!, fields: this.fieldInits() };
      } else return e;
    }
  }

  private methodCall(target: CelExpr, fn: string, args: CelExpr[]): CelExpr {
    if (!MACROS.has(fn)) return { k: 'call', fn, target, args };
    const arity = fn === 'map' ? [2, 3] : [2];
    if (!arity.includes(args.length)) return { k: 'call', fn, target, args };
    const v = args[0];
    if (v.k !== 'ident') throw new CelSyntaxError(`argument must be a simple name (${fn} macro)`);
    return { k: 'macro', fn, target, variable: v.name, args: args.slice(1) };
  }

  /** An identifier; a reserved word ("if", "for", ...) only as a field or method name, as cel-go takes it. */
  private ident(asName = false): string {
    const t = this.peek();
    if (t.t !== 'ident') this.fail('expected an identifier');
    if ((!asName && RESERVED.has(t.v)) || t.v === 'in' || t.v === 'true' || t.v === 'false' || t.v === 'null') this.fail(`reserved word '${t.v}'`);
    this.pos++;
    return t.v;
  }

  private primary(): CelExpr {
    const t = this.peek();
    if (t.t === 'num' || t.t === 'str' || t.t === 'bytes') {
      this.pos++;
      return { k: 'lit', v: t.lit! };
    }
    if (t.t === 'ident' && (t.v === 'true' || t.v === 'false' || t.v === 'null')) {
      this.pos++;
      return { k: 'lit', v: t.v === 'null' ? null : t.v === 'true' };
    }
    if (this.eat('.')) return this.identOrCall('.' + this.ident());
    if (t.t === 'ident') return this.identOrCall(this.ident());
    if (this.eat('(')) {
      const e = this.expr(0);
      this.expect(')');
      return e;
    }
    if (this.eat('[')) return { k: 'list', items: this.list(']') };
    if (this.eat('{')) {
      const entries: { key: CelExpr; value: CelExpr }[] = [];
      while (!this.eat('}')) {
        const key = this.expr(0);
        this.expect(':');
        entries.push({ key, value: this.expr(0) });
        if (!this.eat(',')) {
          this.expect('}');
          break;
        }
      }
      return { k: 'map', entries };
    }
    this.fail('expected an expression');
  }

  private identOrCall(name: string): CelExpr {
    if (!this.eat('(')) return { k: 'ident', name };
    const args = this.list(')');
    if (name === 'has') {
      const a = args[0];
      if (args.length !== 1 || a.k !== 'select') throw new CelSyntaxError('invalid argument to has() macro');
      return { ...a, test: true };
    }
    return { k: 'call', fn: name, args };
  }

  /** A comma-separated list up to `close` (a trailing comma allowed in lists and maps, not in calls). */
  private list(close: string): CelExpr[] {
    const out: CelExpr[] = [];
    if (this.eat(close)) return out;
    for (;;) {
      out.push(this.expr(0));
      if (this.eat(close)) return out;
      this.expect(',');
      if (close === ']' && this.eat(close)) return out;
    }
  }

  private fieldInits(): { name: string; value: CelExpr }[] {
    const out: { name: string; value: CelExpr }[] = [];
    while (!this.eat('}')) {
      const name = this.ident(true);
      this.expect(':');
      out.push({ name, value: this.expr(0) });
      if (!this.eat(',')) {
        this.expect('}');
        break;
      }
    }
    return out;
  }
}

function isDouble(v: CelLiteral): v is { double: number } {
  return typeof v === 'object' && v !== null && 'double' in v;
}

/** "a.b.c" for a message name written as a chain of identifiers, else undefined. */
function qualifiedName(e: CelExpr): string | undefined {
  if (e.k === 'ident') return e.name;
  if (e.k === 'select' && !e.test) {
    const o = qualifiedName(e.operand);
    return o === undefined ? undefined : `${o}.${e.field}`;
  }
  return undefined;
}
