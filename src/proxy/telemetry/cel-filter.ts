// PURE: Envoy's CEL access log filter (envoy.access_loggers.extension_filters.cel, ExpressionFilter)
// as the sidecar evaluates it: an exchange is logged when the expression is true; an expression
// that errs (a header the request does not have, a response code a TCP connection has not) is
// false, as Envoy's docs say. The expression is parsed (api/cel.ts, the whole CEL grammar) and
// checked when the config arrives: an attribute, function or construct the sidecar does not
// evaluate is refused then (the listener is NACKed naming it), never at request time.
//
// Values: int and uint as bigint, double as number, string, bool, null, lists, maps; CEL's
// operators with its semantics (&& and || absorb errors: false && error is false), has(), in,
// size, startsWith, endsWith, contains, matches (RE2, found anywhere), int, uint, double, string,
// duration (request.duration > duration('500ms')).
import { CelSyntaxError, parseCel, type CelExpr } from '../../api/cel.ts';
import { celAttributeOf, celSupportProblem } from '../../api/cel-support.ts';
import { parseDuration } from '../../api/duration.ts';
import { compileSearch, type FullMatch } from '../http/regex.ts';
import type { LogEntry } from './format.ts';

/** The longest regex a filter compiles while it evaluates (one from the request): `a{1000}` x 20 compiles in tens of ms. */
const MAX_DYNAMIC_PATTERN = 256;

export class CelFilterError extends Error {}

/** An evaluation error: no such attribute or key, no such overload, overflow. */
class Err {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

/** request.headers / response.headers: looked up by name, in any case (Envoy lower-cases the key). */
class HeaderMap {
  readonly get: (name: string) => string | undefined;
  constructor(get: (name: string) => string | undefined) {
    this.get = get;
  }
}

/** A google.protobuf.Duration: nanoseconds. */
class Duration {
  readonly nanos: bigint;
  constructor(nanos: bigint) {
    this.nanos = nanos;
  }
}

type V = null | boolean | bigint | number | string | Uint8Array | V[] | Map<string, { k: V; v: V }> | HeaderMap | Duration | Err;

const MISSING = (what: string) => new Err(`no such attribute ${what}`);

const hostOf = (a: string | undefined) => (a === undefined ? undefined : a.startsWith('[') ? a.slice(1, a.indexOf(']')) : a.lastIndexOf(':') > 0 && a.indexOf(':') === a.lastIndexOf(':') ? a.slice(0, a.lastIndexOf(':')) : a);
const portOf = (a: string | undefined) => {
  const m = a === undefined ? null : /:(\d+)$/.exec(a);
  return m ? BigInt(m[1]) : undefined;
};
const opt = <T>(v: T | undefined, name: string): V => (v === undefined ? MISSING(name) : (v as V));

/** Each attribute the sidecar evaluates (api/cel.ts CEL_ATTRIBUTES names the same: a test holds them equal). */
export const ATTRIBUTES: Readonly<Record<string, (e: LogEntry) => V>> = {
  'request.path': (e) => opt(e.path === undefined ? undefined : e.query ? `${e.path}?${e.query}` : e.path, 'request.path'),
  'request.url_path': (e) => opt(e.path, 'request.url_path'),
  'request.host': (e) => opt(e.authority, 'request.host'),
  'request.method': (e) => opt(e.method, 'request.method'),
  'request.headers': (e) => (e.reqHeader ? new HeaderMap((n) => e.reqHeader!(n)) : MISSING('request.headers')),
  'request.referer': (e) => opt(e.reqHeader?.('referer'), 'request.referer'),
  'request.useragent': (e) => opt(e.reqHeader?.('user-agent'), 'request.useragent'),
  'request.id': (e) => opt(e.reqHeader?.('x-request-id'), 'request.id'),
  'request.protocol': (e) => opt(e.protocol, 'request.protocol'),
  'request.query': (e) => opt(e.path === undefined ? undefined : (e.query ?? ''), 'request.query'),
  'request.size': (e) => (e.protocol === undefined ? MISSING('request.size') : BigInt(e.bytesReceived)),
  // From the request head's arrival to the end of the exchange (a TCP connection's whole life).
  'request.duration': (e) => (e.durationMs === undefined ? MISSING('request.duration') : new Duration(BigInt(Math.round(e.durationMs * 1e6)))),
  // 0: no response (a TCP connection, or a request the client gave up on).
  'response.code': (e) => (e.responseCode ? BigInt(e.responseCode) : MISSING('response.code')),
  'response.code_details': (e) => opt(e.responseCodeDetails, 'response.code_details'),
  'response.headers': (e) => (e.respHeader && e.responseCode ? new HeaderMap((n) => e.respHeader!(n)) : MISSING('response.headers')),
  'response.size': (e) => (e.protocol === undefined ? MISSING('response.size') : BigInt(e.bytesSent)),
  'source.address': (e) => opt(hostOf(e.downstreamRemoteAddress), 'source.address'),
  'source.port': (e) => opt(portOf(e.downstreamRemoteAddress), 'source.port'),
  'destination.address': (e) => opt(hostOf(e.downstreamLocalAddress), 'destination.address'),
  'destination.port': (e) => opt(portOf(e.downstreamLocalAddress), 'destination.port'),
  'connection.mtls': (e) => e.downstreamPeerUriSan !== undefined,
  'connection.requested_server_name': (e) => e.requestedServerName ?? '',
  'connection.uri_san_peer_certificate': (e) => opt(e.downstreamPeerUriSan, 'connection.uri_san_peer_certificate'),
  'connection.uri_san_local_certificate': (e) => opt(e.downstreamLocalUriSan, 'connection.uri_san_local_certificate'),
  'upstream.address': (e) => opt(hostOf(e.upstreamHost), 'upstream.address'),
  'upstream.port': (e) => opt(portOf(e.upstreamHost), 'upstream.port'),
  'upstream.uri_san_peer_certificate': (e) => opt(e.upstreamPeerUriSan, 'upstream.uri_san_peer_certificate'),
  'xds.cluster_name': (e) => opt(e.upstreamCluster, 'xds.cluster_name'),
  'xds.route_name': (e) => opt(e.routeName, 'xds.route_name'),
};

export type CelFilter = (entry: LogEntry) => boolean;

/** Compiles a filter expression; throws CelFilterError saying what the sidecar cannot evaluate. */
export function compileCelFilter(expression: string): CelFilter {
  let ast: CelExpr;
  try {
    ast = parseCel(expression);
  } catch (e) {
    if (e instanceof CelSyntaxError) throw new CelFilterError(`not a CEL expression: ${e.message}`);
    throw e;
  }
  const problem = celSupportProblem(ast);
  if (problem) throw new CelFilterError(`cannot be evaluated by this sidecar: ${problem}`);
  const regexes = new Map<string, FullMatch>();
  // A pattern written as a literal is compiled now: one that is no RE2 is refused with the config.
  const literalPatterns = (x: CelExpr): void => {
    if (x.k === 'call' && x.fn === 'matches') {
      const p = x.target ? x.args[0] : x.args[1];
      if (p?.k === 'lit' && typeof p.v === 'string') {
        try {
          regexes.set(p.v, compileSearch(p.v));
        } catch (err) {
          throw new CelFilterError(`matches(${JSON.stringify(p.v)}): not an RE2 pattern (${(err as Error).message})`);
        }
      }
    }
    for (const c of children(x)) literalPatterns(c);
  };
  literalPatterns(ast);
  const ctx: Ctx = { regexes, dynamic: new Map(), vars: new Map() };
  return (entry) => evaluate(ast, entry, ctx) === true;
}

/**
 * A metric label's value (Istio's stats filter, a Telemetry tagOverride UPSERT): the expression's
 * value printed as Envoy prints a CEL value (Filters::Common::Expr::print: a string as it is, a
 * number in decimal, true/false, NULL), "unknown" where it errs (no such header, no response), as
 * the stats filter writes. Compiled as compileCelFilter compiles (CelFilterError for what the
 * sidecar cannot evaluate); undefined where the expression does not parse: the stats filter then
 * leaves the label out (IstioStatsConfig says what that does).
 */
export function compileCelValue(expression: string): ((entry: LogEntry) => string) | undefined {
  let ast: CelExpr;
  try {
    ast = parseCel(expression);
  } catch (e) {
    if (e instanceof CelSyntaxError) return undefined;
    throw e;
  }
  const problem = celSupportProblem(ast);
  if (problem) throw new CelFilterError(`cannot be evaluated by this sidecar: ${problem}`);
  const ctx: Ctx = { regexes: new Map(), dynamic: new Map(), vars: new Map() };
  return (entry) => printValue(evaluate(ast, entry, ctx));
}

/** Envoy's print(CelValue); an error is the stats filter's "unknown". */
function printValue(v: V): string {
  if (isErr(v)) return 'unknown';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (typeof v === 'number') return sixDigits(v);
  if (v === null) return 'NULL';
  if (v instanceof Uint8Array) return Buffer.from(v).toString('latin1');
  if (v instanceof Duration) return formatDuration(v.nanos);
  return Array.isArray(v) ? 'list value' : v instanceof Map || v instanceof HeaderMap ? 'map value' : 'unknown';
}

/**
 * absl::StrCat of a double (SixDigitsToBuffer): printf's "%g", six significant digits, trailing
 * zeros dropped, an exponent where it is below -4 or at least 6 ("1e+06", "1.5e-05"); "nan",
 * "inf", "-inf". A value exactly halfway between two six-digit ones is rounded to the even one, as
 * absl and glibc round it (JS's toExponential and toFixed round it up: 1234565 would be 1.23457e+06).
 */
export function sixDigits(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v < 0 ? '-inf' : 'inf';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  // A tie whose sixth digit is even rounds down: the double just below it (toward zero) rounds
  // down and to the same digits (doubles are far closer together than a seventh digit's half).
  if (tieToEven(v)) v = towardZero(v);
  // The exponent after rounding to six digits (999999.5 is 1e+06).
  const [mantissa, e] = v.toExponential(5).split('e') as [string, string];
  const exp = Number(e);
  if (exp < -4 || exp >= 6) return `${trimZeros(mantissa)}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return trimZeros(v.toFixed(5 - exp));
}

/**
 * Whether |v| is exactly halfway between two six-significant-digit values and the lower one's
 * sixth digit is even. Only values from 1e-4 to 1e21 can be such a tie (below, the decimal
 * fraction is never exact in binary; above, no double has such digits), and there toFixed(100)
 * writes a double's exact decimal expansion (at most 66 digits after the point).
 */
function tieToEven(v: number): boolean {
  const a = Math.abs(v);
  if (a < 1e-4 || a >= 1e21) return false;
  const digits = a.toFixed(100).replace('.', '').replace(/^0+/, '');
  if (digits[6] !== '5') return false;
  for (let i = 7; i < digits.length; i++) if (digits[i] !== '0') return false;
  return (digits.charCodeAt(5) - 48) % 2 === 0;
}

/** The double next to v toward zero (v finite, not zero). */
function towardZero(v: number): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, v);
  view.setBigUint64(0, view.getBigUint64(0) - 1n);
  return view.getFloat64(0);
}

/** "1.50000" -> "1.5", "3.00000" -> "3". */
function trimZeros(s: string): string {
  if (!s.includes('.')) return s;
  let end = s.length;
  while (s[end - 1] === '0') end--;
  if (s[end - 1] === '.') end--;
  return s.slice(0, end);
}

/** absl::FormatDuration: "1.5s", "250ms", "0". */
function formatDuration(nanos: bigint): string {
  if (nanos === 0n) return '0';
  const sign = nanos < 0n ? '-' : '';
  const n = nanos < 0n ? -nanos : nanos;
  const [unit, per] = n >= 1_000_000_000n ? ['s', 1e9] : n >= 1_000_000n ? ['ms', 1e6] : n >= 1000n ? ['us', 1e3] : ['ns', 1];
  return `${sign}${Number(n) / per}${unit}`;
}

interface Ctx {
  regexes: Map<string, FullMatch>;
  /** Patterns met only while evaluating (taken from the request): the 64 last used. */
  dynamic: Map<string, FullMatch>;
  vars: Map<string, V>;
}

function children(x: CelExpr): CelExpr[] {
  switch (x.k) {
    case 'select':
      return [x.operand];
    case 'call':
      return [...(x.target ? [x.target] : []), ...x.args];
    case 'list':
      return x.items;
    case 'map':
      return x.entries.flatMap((m) => [m.key, m.value]);
    default:
      return [];
  }
}

const INT_MIN = -(2n ** 63n);
const INT_MAX = 2n ** 63n - 1n;
const int = (n: bigint): V => (n < INT_MIN || n > INT_MAX ? new Err('int overflow') : n);
const isErr = (v: V): v is Err => v instanceof Err;
const isNum = (v: V): v is bigint | number => typeof v === 'bigint' || typeof v === 'number';
const noOverload = (fn: string) => new Err(`no such overload: ${fn}`);

function evaluate(x: CelExpr, e: LogEntry, ctx: Ctx): V {
  switch (x.k) {
    case 'lit': {
      const v = x.v;
      if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) return 'uint' in v ? v.uint : v.double;
      return v;
    }
    case 'ident':
      return ctx.vars.get(x.name) ?? MISSING(x.name);
    case 'select':
      return select(x, e, ctx);
    case 'list': {
      const items = x.items.map((i) => evaluate(i, e, ctx));
      return items.find(isErr) ?? items;
    }
    case 'map': {
      const m = new Map<string, { k: V; v: V }>();
      for (const en of x.entries) {
        const k = evaluate(en.key, e, ctx);
        const v = evaluate(en.value, e, ctx);
        if (isErr(k)) return k;
        if (isErr(v)) return v;
        m.set(keyOf(k), { k, v });
      }
      return m;
    }
    case 'call':
      return call(x, e, ctx);
    default:
      return new Err('unsupported');
  }
}

/** Each select node's attribute path, made once (celAttributeOf makes a string each time). */
const paths = new WeakMap<CelExpr, string | null>();

function select(x: Extract<CelExpr, { k: 'select' }>, e: LogEntry, ctx: Ctx): V {
  let path = paths.get(x);
  if (path === undefined) paths.set(x, (path = celAttributeOf(x) ?? null));
  let v: V;
  if (path !== null && Object.hasOwn(ATTRIBUTES, path)) v = ATTRIBUTES[path](e);
  else {
    const o = evaluate(x.operand, e, ctx);
    if (isErr(o)) return o;
    v = member(o, x.field);
  }
  if (!x.test) return v;
  return !isErr(v);
}

/** o.field, or o["field"]: a map's or a header's value. */
function member(o: V, field: string): V {
  if (o instanceof HeaderMap) return o.get(field.toLowerCase()) ?? new Err(`no such key: ${field}`);
  if (o instanceof Map) return o.get(keyOf(field))?.v ?? new Err(`no such key: ${field}`);
  return new Err(`no such field: ${field}`);
}

function keyOf(v: V): string {
  return typeof v === 'bigint' ? `n${v}` : typeof v === 'number' && Number.isInteger(v) ? `n${v}` : `${typeof v}:${String(v)}`;
}

function call(x: Extract<CelExpr, { k: 'call' }>, e: LogEntry, ctx: Ctx): V {
  const ev = (y: CelExpr) => evaluate(y, e, ctx);
  switch (x.fn) {
    case '_&&_':
    case '_||_': {
      const absorbing = x.fn === '_||_';
      const a = ev(x.args[0]);
      if (a === absorbing) return absorbing;
      const b = ev(x.args[1]);
      if (b === absorbing) return absorbing;
      if (typeof a === 'boolean' && typeof b === 'boolean') return !absorbing;
      return isErr(a) ? a : isErr(b) ? b : noOverload(x.fn);
    }
    case '_?_:_': {
      const c = ev(x.args[0]);
      if (typeof c !== 'boolean') return isErr(c) ? c : noOverload('_?_:_');
      return ev(x.args[c ? 1 : 2]);
    }
  }
  const target = x.target ? ev(x.target) : undefined;
  if (target !== undefined && isErr(target)) return target;
  const args = x.args.map(ev);
  const bad = args.find(isErr);
  if (bad) return bad;
  const [a, b] = args;
  switch (x.fn) {
    case '!_':
      return typeof a === 'boolean' ? !a : noOverload('!_');
    case '-_':
      return typeof a === 'bigint' ? int(-a) : typeof a === 'number' ? -a : noOverload('-_');
    case '_==_':
      return equal(a, b);
    case '_!=_': {
      const r = equal(a, b);
      return isErr(r) ? r : !r;
    }
    case '_<_':
    case '_<=_':
    case '_>_':
    case '_>=_': {
      const c = compare(a, b);
      if (c === undefined) return noOverload(x.fn);
      return x.fn === '_<_' ? c < 0 : x.fn === '_<=_' ? c <= 0 : x.fn === '_>_' ? c > 0 : c >= 0;
    }
    case '@in':
      if (Array.isArray(b)) return b.some((i) => equal(a, i) === true);
      if (b instanceof Map) return b.has(keyOf(a));
      if (b instanceof HeaderMap) return typeof a === 'string' ? b.get(a.toLowerCase()) !== undefined : noOverload('@in');
      return noOverload('@in');
    case '_[_]':
      if (Array.isArray(a)) return typeof b === 'bigint' && b >= 0n && b < BigInt(a.length) ? a[Number(b)] : new Err('index out of range');
      if (a instanceof HeaderMap) return typeof b === 'string' ? member(a, b) : noOverload('_[_]');
      if (a instanceof Map) return a.get(keyOf(b))?.v ?? new Err('no such key');
      return noOverload('_[_]');
    case '_+_':
      if (typeof a === 'bigint' && typeof b === 'bigint') return int(a + b);
      if (typeof a === 'number' && typeof b === 'number') return a + b;
      if (typeof a === 'string' && typeof b === 'string') return a + b;
      if (Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
      return noOverload('_+_');
    case '_-_':
    case '_*_':
    case '_/_':
    case '_%_':
      return arithmetic(x.fn, a, b);
    case 'size': {
      const v = target ?? a;
      if (typeof v === 'string') return BigInt([...v].length);
      if (Array.isArray(v)) return BigInt(v.length);
      if (v instanceof Map) return BigInt(v.size);
      if (v instanceof Uint8Array) return BigInt(v.length);
      return noOverload('size');
    }
    case 'startsWith':
    case 'endsWith':
    case 'contains': {
      if (typeof target !== 'string' || typeof a !== 'string') return noOverload(x.fn);
      return x.fn === 'startsWith' ? target.startsWith(a) : x.fn === 'endsWith' ? target.endsWith(a) : target.includes(a);
    }
    case 'matches': {
      const [s, p] = target !== undefined ? [target, a] : [a, b];
      if (typeof s !== 'string' || typeof p !== 'string') return noOverload('matches');
      let re = ctx.regexes.get(p) ?? ctx.dynamic.get(p);
      if (!re) {
        // A pattern not known at config time (taken from the request, say): compiled now, so bounded
        // as cel-cpp bounds a program (regex_max_program_size), by its length here; an error is false.
        if (p.length > MAX_DYNAMIC_PATTERN) return new Err(`regex longer than ${MAX_DYNAMIC_PATTERN} characters`);
        try {
          re = compileSearch(p);
        } catch (err) {
          return new Err(`invalid regex: ${(err as Error).message}`);
        }
        if (ctx.dynamic.size >= 64) ctx.dynamic.delete(ctx.dynamic.keys().next().value!); // the oldest goes
        ctx.dynamic.set(p, re);
      }
      return re.test(s);
    }
    case 'int':
    case 'uint': {
      let n: bigint | undefined;
      if (typeof a === 'bigint') n = a;
      else if (typeof a === 'number' && Number.isFinite(a)) n = BigInt(Math.trunc(a));
      else if (typeof a === 'string' && /^[-+]?\d+$/.test(a)) n = BigInt(a);
      if (n === undefined) return noOverload(x.fn);
      return x.fn === 'uint' ? (n < 0n || n > 2n ** 64n - 1n ? new Err('uint overflow') : n) : int(n);
    }
    case 'double':
      if (isNum(a)) return Number(a);
      if (typeof a === 'string' && a.trim() !== '' && !Number.isNaN(Number(a))) return Number(a);
      return noOverload('double');
    case 'duration': {
      const nanos = typeof a === 'string' ? parseDuration(a) : undefined;
      return a instanceof Duration ? a : nanos === undefined ? new Err(`invalid duration ${JSON.stringify(a)}`) : new Duration(nanos);
    }
    case 'string':
      if (typeof a === 'string') return a;
      // A double as cel-cpp's string() writes it (absl::StrCat): "1e+06", "0.3".
      if (typeof a === 'number') return sixDigits(a);
      if (typeof a === 'bigint' || typeof a === 'boolean') return String(a);
      return noOverload('string');
  }
  return noOverload(x.fn);
}

function arithmetic(fn: string, a: V, b: V): V {
  if (typeof a === 'bigint' && typeof b === 'bigint') {
    if ((fn === '_/_' || fn === '_%_') && b === 0n) return new Err(fn === '_/_' ? 'division by zero' : 'modulus by zero');
    return int(fn === '_-_' ? a - b : fn === '_*_' ? a * b : fn === '_/_' ? a / b : a % b);
  }
  if (typeof a === 'number' && typeof b === 'number' && fn !== '_%_') return fn === '_-_' ? a - b : fn === '_*_' ? a * b : a / b;
  return noOverload(fn);
}

/** CEL's equality: numbers across int, uint and double by value; lists item by item; maps by entries. */
function equal(a: V, b: V): boolean | Err {
  if (isNum(a) && isNum(b)) return compare(a, b) === 0;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]) === true);
  if (a instanceof Map && b instanceof Map) return a.size === b.size && [...a].every(([k, x]) => b.has(k) && equal(x.v, b.get(k)!.v) === true);
  if (a instanceof Uint8Array && b instanceof Uint8Array) return a.length === b.length && a.every((x, i) => x === b[i]);
  if (a instanceof HeaderMap || b instanceof HeaderMap) return noOverload('_==_');
  if (a instanceof Duration || b instanceof Duration) return a instanceof Duration && b instanceof Duration && a.nanos === b.nanos;
  return a === b;
}

/** -1, 0, 1; undefined where CEL has no ordering between the two. */
function compare(a: V, b: V): number | undefined {
  if (isNum(a) && isNum(b)) {
    if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
    const x = Number(a);
    const y = Number(b);
    return Number.isNaN(x) || Number.isNaN(y) ? undefined : x < y ? -1 : x > y ? 1 : 0;
  }
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  if (a instanceof Duration && b instanceof Duration) return a.nanos < b.nanos ? -1 : a.nanos > b.nanos ? 1 : 0;
  return undefined;
}

