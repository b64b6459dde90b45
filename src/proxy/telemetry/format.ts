// PURE: Envoy's access log format strings (envoyproxy.io: "Access logging", command operators), as
// the sidecar supports them: compiled once per config into parts, rendered per logged exchange
// (a TEXT line straight into its file's buffer: writeText; its operators may run again where the
// line, or the copy of the last line it is written over, does not fit, or where it is not plain
// ASCII, so an operator reads, never changes). A TEXT format renders each operator's value or "-" when it has none; a JSON format
// (json_format) renders an entry that is a single operator as a typed value (a number, or null
// when there is none) and any other string as a string, as Envoy does. An operator the sidecar
// does not implement is refused when the format is compiled (the config is NACKed naming it),
// never at request time.

/** What one logged exchange (an HTTP request, or a TCP connection) offers the operators. */
export interface LogEntry {
  /** Wall clock of the start (ms since the epoch). */
  startMs: number;
  durationMs: number | undefined;
  /** HTTP only: the request head as the client sent it. */
  method?: string;
  path?: string;
  query?: string;
  authority?: string;
  /** "HTTP/1.1", "HTTP/2"; undefined for TCP (Envoy's "-"). */
  protocol?: string;
  /** A request header by lower-case name. */
  reqHeader?(name: string): string | undefined;
  /** A response header by lower-case name. */
  respHeader?(name: string): string | undefined;
  /** 0 for TCP, as Envoy. */
  responseCode: number;
  /** Envoy's response flags ("UF", "NR", ...), "-" for none. */
  responseFlags: string;
  responseCodeDetails?: string;
  connectionTerminationDetails?: string;
  upstreamTransportFailureReason?: string;
  bytesReceived: number;
  bytesSent: number;
  upstreamHost?: string;
  upstreamCluster?: string;
  upstreamLocalAddress?: string;
  downstreamLocalAddress?: string;
  downstreamRemoteAddress?: string;
  requestedServerName?: string;
  routeName?: string;
  downstreamPeerUriSan?: string;
  downstreamLocalUriSan?: string;
  upstreamPeerUriSan?: string;
  /** Dynamic metadata: filter namespace -> its struct (JWT authentication's, authorization's). */
  dynamicMetadata?: Record<string, Record<string, unknown>>;
}

type Value = string | number | undefined;
type Op = (e: LogEntry) => Value;
/** A compiled format string: literal text and operators, in order. */
export type FormatParts = readonly (string | Operator)[];
/**
 * `startTime`: START_TIME, which writeText writes without making its text. `unique`: a value that
 * differs on every line (REQ(X-REQUEST-ID): a request's own id), which writeText writes without
 * comparing it with the last line's first.
 */
type Operator = { op: Op; max?: number; startTime?: true; unique?: true };

export type CompiledFormat =
  | { kind: 'text'; parts: FormatParts }
  /** A JSON object: each key's value is a format string, a nested object, or a literal (number, bool, null). */
  | { kind: 'json'; fields: readonly JsonField[] };
type JsonField = { key: string; parts?: FormatParts; nested?: readonly JsonField[]; literal?: unknown };

export class FormatError extends Error {}

const addr = (a: string | undefined) => a;
const withoutPort = (a: string | undefined) => {
  if (a === undefined) return undefined;
  if (a.startsWith('[')) return a.slice(1, a.indexOf(']'));
  const i = a.lastIndexOf(':');
  return i > 0 && a.indexOf(':') === i ? a.slice(0, i) : a;
};

/**
 * ISO 8601 with milliseconds, as Date.toISOString() writes it, from a prefix made once a second
 * (Envoy caches its formatted time too): a Date and its formatting per line were a tenth of what an
 * access log line cost.
 */
let isoSecond = NaN;
let isoPrefix = '';
const isoPrefixBytes = new Uint8Array(20);
const isoPrefixView = new DataView(isoPrefixBytes.buffer);
export function isoTime(ms: number): string {
  ms = Math.trunc(ms); // a Date's time value, as TimeClip makes it
  const sec = Math.floor(ms / 1000);
  if (sec !== isoSecond && !isoAt(sec)) return new Date(ms).toISOString();
  const m = ms - sec * 1000;
  return `${isoPrefix}${m < 10 ? '00' : m < 100 ? '0' : ''}${m}Z`;
}

/** Makes the prefix of second `sec` ("2026-12-06T18:24:01."); false for years past 9999 or before 0. */
function isoAt(sec: number): boolean {
  const iso = new Date(sec * 1000).toISOString();
  if (iso.length !== 24) return false;
  isoSecond = sec;
  isoPrefix = iso.slice(0, 20);
  for (let i = 0; i < 20; i++) isoPrefixBytes[i] = iso.charCodeAt(i);
  return true;
}

/** isoTime's text written into `buf` at `o`; -1 where it does not fit. */
function writeIsoTime(ms: number, buf: Buffer, dv: DataView, o: number): number {
  ms = Math.trunc(ms);
  const sec = Math.floor(ms / 1000);
  // A year the prefix cannot hold: Date's own text (ASCII), as any other value is written.
  if (sec !== isoSecond && !isoAt(sec)) return writeValue(new Date(ms).toISOString(), undefined, buf, dv, o);
  if (o + 24 > buf.length) return -1;
  copyBytes(isoPrefixBytes, isoPrefixView, 0, buf, dv, o, 20);
  const m = ms - sec * 1000;
  buf[o + 20] = 48 + Math.floor(m / 100);
  buf[o + 21] = 48 + (Math.floor(m / 10) % 10);
  buf[o + 22] = 48 + (m % 10);
  buf[o + 23] = 90; // Z
  return o + 24;
}

/** The operators without arguments. */
const SIMPLE: Record<string, Op> = {
  START_TIME: (e) => isoTime(e.startMs),
  PROTOCOL: (e) => e.protocol,
  RESPONSE_CODE: (e) => e.responseCode,
  RESPONSE_FLAGS: (e) => e.responseFlags,
  RESPONSE_CODE_DETAILS: (e) => e.responseCodeDetails,
  CONNECTION_TERMINATION_DETAILS: (e) => e.connectionTerminationDetails,
  UPSTREAM_TRANSPORT_FAILURE_REASON: (e) => e.upstreamTransportFailureReason,
  BYTES_RECEIVED: (e) => e.bytesReceived,
  BYTES_SENT: (e) => e.bytesSent,
  DURATION: (e) => (e.durationMs === undefined ? undefined : Math.floor(e.durationMs)),
  UPSTREAM_HOST: (e) => e.upstreamHost,
  UPSTREAM_CLUSTER: (e) => e.upstreamCluster,
  UPSTREAM_CLUSTER_RAW: (e) => e.upstreamCluster,
  UPSTREAM_LOCAL_ADDRESS: (e) => addr(e.upstreamLocalAddress),
  UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: (e) => withoutPort(e.upstreamLocalAddress),
  DOWNSTREAM_LOCAL_ADDRESS: (e) => addr(e.downstreamLocalAddress),
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: (e) => withoutPort(e.downstreamLocalAddress),
  DOWNSTREAM_REMOTE_ADDRESS: (e) => addr(e.downstreamRemoteAddress),
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: (e) => withoutPort(e.downstreamRemoteAddress),
  REQUESTED_SERVER_NAME: (e) => e.requestedServerName,
  ROUTE_NAME: (e) => e.routeName,
  DOWNSTREAM_PEER_URI_SAN: (e) => e.downstreamPeerUriSan,
  DOWNSTREAM_LOCAL_URI_SAN: (e) => e.downstreamLocalUriSan,
  UPSTREAM_PEER_URI_SAN: (e) => e.upstreamPeerUriSan,
};

/** Envoy's pseudo-headers of the request, as REQ() reads them; another name, the request's header. */
function requestHeader(name: string): Op {
  switch (name) {
    case ':method':
      return (e) => e.method;
    case ':path':
      return (e) => (e.path === undefined ? undefined : e.query ? `${e.path}?${e.query}` : e.path);
    case ':authority':
    case 'host':
      return (e) => e.authority;
    case ':scheme':
      return (e) => (e.method === undefined ? undefined : 'http');
    default:
      return (e) => e.reqHeader?.(name);
  }
}

/** REQ(X?Y) / RESP(X?Y): the first header, else the alternative (the getter of each chosen once, not per line). */
function headerOp(which: 'REQ' | 'RESP', arg: string, where: string): Op {
  const [a, b, extra] = arg.toLowerCase().split('?');
  if (!a || extra !== undefined || b === '') throw new FormatError(`${where}: %${which}(${arg})%: expected a header name, optionally ?alternative`);
  const get = (n: string): Op => (which === 'REQ' ? requestHeader(n) : (e) => e.respHeader?.(n));
  const first = get(a);
  if (b === undefined) return first;
  const second = get(b);
  return (e) => first(e) ?? second(e);
}

/** DYNAMIC_METADATA(namespace:key:...): the value at that path, a string or JSON. */
function metadataOp(arg: string, where: string): Op {
  const [ns, ...path] = arg.split(':');
  if (!ns) throw new FormatError(`${where}: %DYNAMIC_METADATA(${arg})%: expected a filter namespace`);
  return (e) => {
    let v: unknown = e.dynamicMetadata?.[ns];
    for (const k of path) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
    if (v === undefined || v === null) return undefined;
    return typeof v === 'string' || typeof v === 'number' ? v : JSON.stringify(v);
  };
}

const OPERATOR = /^([A-Z_]+)(?:\(([^)]*)\))?(?::(\d+))?$/;

/** One operator's text between the % signs. */
function compileOperator(token: string, where: string): Operator {
  const m = OPERATOR.exec(token);
  if (!m) throw new FormatError(`${where}: unsupported access log command operator %${token}%`);
  const [, name, arg, max] = m as unknown as [string, string, string | undefined, string | undefined];
  const lim = max !== undefined ? { max: Number(max) } : {};
  if (name === 'REQ' || name === 'RESP') {
    if (arg === undefined) throw new FormatError(`${where}: %${name}%: needs a header name, %${name}(name)%`);
    return { op: headerOp(name, arg, where), ...lim, ...(name === 'REQ' && arg.toLowerCase() === 'x-request-id' ? { unique: true as const } : {}) };
  }
  if (name === 'DYNAMIC_METADATA') {
    if (arg === undefined) throw new FormatError(`${where}: %DYNAMIC_METADATA%: needs a namespace, %DYNAMIC_METADATA(namespace:key)%`);
    return { op: metadataOp(arg, where), ...lim };
  }
  const op = SIMPLE[name];
  if (!op) throw new FormatError(`${where}: unsupported access log command operator %${token}% (the sidecar implements ${[...Object.keys(SIMPLE), 'REQ(...)', 'RESP(...)', 'DYNAMIC_METADATA(...)'].join(', ')})`);
  if (arg !== undefined) throw new FormatError(`${where}: %${token}%: ${name} takes no argument here (START_TIME's strftime format is not supported)`);
  return { op, ...lim, ...(name === 'START_TIME' && max === undefined ? { startTime: true as const } : {}) };
}

/** A format string's parts. "%%" is a literal "%"; an unclosed "%" is an error. */
export function compileText(s: string, where: string): FormatParts {
  const parts: (string | Operator)[] = [];
  let lit = '';
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c !== '%') {
      lit += c;
      i++;
      continue;
    }
    if (s[i + 1] === '%') {
      lit += '%';
      i += 2;
      continue;
    }
    const end = s.indexOf('%', i + 1);
    if (end < 0) throw new FormatError(`${where}: unterminated command operator at character ${i} of the format`);
    if (lit) parts.push(lit);
    lit = '';
    parts.push(compileOperator(s.slice(i + 1, end), where));
    i = end + 1;
  }
  if (lit) parts.push(lit);
  return parts;
}

export function compileJson(obj: Record<string, unknown>, where: string): readonly JsonField[] {
  return Object.entries(obj).map(([key, v]) => {
    if (typeof v === 'string') return { key, parts: compileText(v, `${where}.${key}`) };
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return { key, nested: compileJson(v as Record<string, unknown>, `${where}.${key}`) };
    if (Array.isArray(v)) throw new FormatError(`${where}.${key}: lists are not supported in json_format`);
    return { key, literal: v };
  });
}

function valueText(v: Value, max?: number): string {
  const s = v === undefined || v === '' ? '-' : String(v);
  return max !== undefined && s.length > max ? s.slice(0, max) : s;
}

/** A text format's line for one entry. */
export function renderText(parts: FormatParts, e: LogEntry): string {
  let out = '';
  for (const p of parts) out += typeof p === 'string' ? p : valueText(p.op(e), p.max);
  return out;
}

/** writeText's answers where it wrote nothing that counts. */
export const NO_ROOM = -1;
export const NOT_ASCII = -2;
/** The line writer's answer where the last line's rest does not fit after a longer value: writeText writes the line again without it. */
const AGAIN = -3;

/**
 * A text format as its line writer (compileLine) is made from it: each operator with the literal
 * text before it as bytes (the last step: the text after the last operator, no operator). Made
 * once per compiled format; a literal written from its bytes costs a fraction of one read a
 * character at a time (charCodeAt was most of what a line cost), and a step per operator, not per part.
 */
class Step {
  readonly lit: Uint8Array;
  readonly op: Op | undefined;
  readonly max: number | undefined;
  /** START_TIME, written without making its text. */
  readonly startTime: boolean;
  /** A value new on every line: written without a compare with the last line's. */
  readonly unique: boolean;
  constructor(lit: string, p: Operator | undefined) {
    this.lit = Uint8Array.from(lit, (c) => c.charCodeAt(0));
    this.op = p?.op;
    this.max = p?.max;
    this.startTime = p?.startTime === true;
    this.unique = p?.unique === true;
  }
}

/**
 * A compiled text format's steps, and where its last line is: a line starts as a copy of the last
 * line (one copyWithin) and only the values that changed are written over it, moving what follows
 * (one more copy) where a value's length changed. Most of a sidecar's lines differ from the one
 * before in a few values of the same length (the time, the request id, a port), and a JavaScript
 * loop costs about 40 instructions a byte written from a string (V8 checks the string and the
 * buffer again for each), so writing each byte was most of a line's cost.
 */
class TextWriter {
  /** The last line: the buffer and epoch it was written in (none: no line to copy from), where it starts and ends. */
  buf: Buffer | undefined;
  epoch = 0;
  at = 0;
  end = 0;
  /**
   * Per step of the last line: its value (START_TIME's: the millisecond) and where the step ends,
   * from the line's start. Updated in place as a line is written, so a line that is not written
   * whole leaves no last line.
   */
  readonly values: Value[];
  readonly ends: number[];
  /** The line's writer, made for this format (compileLine). */
  readonly write: LineWriter;
  constructor(steps: readonly Step[], write: LineWriter) {
    this.values = steps.map(() => undefined);
    this.ends = steps.map(() => 0);
    this.write = write;
  }
}

/**
 * Writes a line at `at`, from the last line at `last` (-1: none), `lastLen` bytes long; returns its
 * end, NO_ROOM or NOT_ASCII.
 */
type LineWriter = (e: LogEntry, buf: Buffer, dv: DataView, at: number, last: number, lastLen: number, values: Value[], ends: number[]) => number;

/**
 * A format's line writer, made as JavaScript for its steps (as protobufjs makes its codecs): each
 * operator gets its own call and compare, so that V8 inlines the operator and compares its values
 * by their type, where one loop over the steps made one call that saw every operator and a compare
 * that saw every type (about 150 instructions a step). The source holds nothing from the config but
 * the literals' bytes (numbers); the operators, longer literals and length limits are passed in.
 *
 * Where there is a last line and the new one has room for it, the last line is copied whole to
 * `at`. Then per step: the operator's value (START_TIME's: its millisecond). Where it is the last
 * line's, its bytes are in place already (moved by `d`, what the values written so far added to
 * the length). Otherwise the value is written where it now starts, after the literal the copy
 * holds, and kept for the next line; where its length is not the old one's, the rest of the last
 * line is copied again after it. Without a last line, each step's literal and value are written.
 * `ends` keeps where each step ends, from the line's start.
 */
function compileLine(steps: readonly Step[]): LineWriter {
  const src: string[] = [
    '"use strict";',
    'return function writeLine(e, buf, dv, at, last, lastLen, values, ends) {',
    'const end = buf.length; let o = at; let v; let d = 0; let old;',
    'const copy = last >= 0 && at + lastLen <= end;',
    'if (copy) copyRun(buf, dv, last, last + lastLen, at);',
  ];
  steps.forEach((st, k) => {
    const l = st.lit.length;
    const literal = l === 0 ? '' : `if (o + ${l} > end) return ${NO_ROOM}; ${l <= 16 ? literalStores(st.lit) : `buf.set(lits[${k}], o);`} o += ${l};`;
    if (st.op === undefined) {
      // The text after the last operator (the last step).
      src.push(`if (copy) return at + lastLen + d;`, literal, 'return o;');
      return;
    }
    const write = (at: string) => (st.startTime ? `writeIsoTime(v, buf, dv, ${at})` : `writeValue(v, maxes[${k}], buf, dv, ${at})`);
    src.push(`s${k}: {`, `v = ${st.startTime ? 'Math.trunc(e.startMs)' : `ops[${k}](e)`};`);
    src.push(
      // A unique step's value is written over the last line's without a compare: the request id, a
      // slice of the read's text on the server side, is compared in V8's runtime (about 400
      // instructions), and it is never the last line's (an equal one is written over with the same bytes).
      `if (copy) { ${st.unique ? '' : `if (v === values[${k}]) { ends[${k}] += d; break s${k}; } `}values[${k}] = v; old = ends[${k}];`,
      `o = ${write(`at + ${k === 0 ? 0 : `ends[${k - 1}]`} + ${l}`)}; if (o < 0) return o;`,
      `if (o - at - old !== d) { d = o - at - old; if (o + lastLen - old > end) return ${AGAIN}; copyRun(buf, dv, last + old, last + lastLen, o); }`,
      `ends[${k}] = o - at; break s${k}; }`,
    );
    src.push(`values[${k}] = v; ${literal}`, `o = ${write('o')}; if (o < 0) return o;`, `ends[${k}] = o - at;`, '}');
  });
  src.push('};');
  const make = new Function('ops', 'lits', 'maxes', 'copyRun', 'writeIsoTime', 'writeValue', src.join('\n')) as (...a: unknown[]) => LineWriter;
  return make(
    steps.map((st) => st.op),
    steps.map((st) => st.lit),
    steps.map((st) => st.max),
    copyRun,
    writeIsoTime,
    writeValue,
  );
}

/** Each compiled text format's writer; none where its own text is not plain ASCII or no writer can be made (its lines are never written as bytes). */
const WRITERS = new WeakMap<FormatParts, TextWriter | null>();
/** The last format asked for and its writer: a sidecar's lines are mostly of one format (no hash lookup per line). Keeps at most that one format alive past its config. */
let lastParts: FormatParts | undefined;
let lastWriter: TextWriter | null = null;

function writerOf(parts: FormatParts): TextWriter | null {
  if (parts === lastParts) return lastWriter;
  let w = WRITERS.get(parts);
  if (w === undefined) w = makeWriter(parts);
  lastParts = parts;
  lastWriter = w;
  return w;
}

function makeWriter(parts: FormatParts): TextWriter | null {
  let w: TextWriter | null;
  if (parts.some((p) => typeof p === 'string' && /[^\x00-\x7f]/.test(p))) w = null;
  else {
    const out: Step[] = [];
    let lit = '';
    for (const p of parts) {
      if (typeof p === 'string') lit += p;
      else {
        out.push(new Step(lit, p));
        lit = '';
      }
    }
    out.push(new Step(lit, undefined));
    // Where code cannot be made from strings (node --disallow-code-generation-from-strings), the
    // format's lines are written as renderText makes them.
    let write: LineWriter | undefined;
    try {
      write = compileLine(out);
    } catch (err) {
      if (!(err instanceof EvalError)) throw err;
    }
    w = write ? new TextWriter(out, write) : null;
  }
  WRITERS.set(parts, w);
  return w;
}

/**
 * A text format's line for one entry, written as bytes into `buf` from `at` (an access log's
 * buffer): the same bytes as renderText's line in UTF-8, without the line as a string, whose
 * pieces (a heap object per operator) and the flat copy its write needs were most of what a line
 * allocated. Returns where the line ends, or NO_ROOM where it does not fit before the end of
 * `buf`, or NOT_ASCII at a character past 0x7f, the format's own text's too, or where the format's
 * writer cannot be made (what follows `at` is then garbage; the caller writes renderText's line
 * instead).
 *
 * `epoch`: the caller's promise that the bytes of `buf` before `at` are as this format wrote
 * them for as long as it passes the same number with the same buffer; the caller changes it when
 * it reuses or overwrites what it wrote (LogFile: at each flush). Where given, the line is written
 * over a copy of the format's last line in `buf` (compileLine). Without it, every byte is written.
 */
export function writeText(parts: FormatParts, e: LogEntry, buf: Buffer, at: number, epoch?: number): number {
  const w = writerOf(parts);
  if (w === null) return NOT_ASCII;
  const last = epoch !== undefined && w.buf === buf && w.epoch === epoch && w.end <= at ? w.at : -1;
  // Until the line is whole there is no last line (its values and ends are being overwritten).
  w.buf = undefined;
  const dv = viewOf(buf);
  let o = w.write(e, buf, dv, at, last, w.end - w.at, w.values, w.ends);
  // The rest of the last line did not fit after a longer value, where the line itself may: written without it.
  if (o === AGAIN) o = w.write(e, buf, dv, at, -1, 0, w.values, w.ends);
  // The line is whole: the next one copies from it.
  if (o >= 0 && epoch !== undefined) {
    w.buf = buf;
    w.epoch = epoch;
    w.at = at;
    w.end = o;
  }
  return o;
}

/** Runs at least this long are copied by one copyWithin (a call into C++ that costs about as much as 36 bytes copied four at a time). */
const COPY_WITHIN = 40;

/** Bytes [from, to) of `buf` copied to `o` (after them: the last line ends before `o`); -1 where they do not fit. */
function copyRun(buf: Buffer, dv: DataView, from: number, to: number, o: number): number {
  const n = to - from;
  if (o + n > buf.length) return -1;
  if (n >= COPY_WITHIN) buf.copyWithin(o, from, to);
  else copyBytes(buf, dv, from, buf, dv, o, n);
  return o + n;
}

/**
 * `n` bytes of `src` from `from` to `dst` at `o`, four at a time through their DataViews: a
 * typed array's element costs about as much to store as four bytes through a DataView (V8 checks
 * the array again for each). Never overlapping.
 */
function copyBytes(src: Uint8Array, sv: DataView, from: number, dst: Uint8Array, dv: DataView, o: number, n: number): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) dv.setUint32(o + i, sv.getUint32(from + i));
  for (; i < n; i++) dst[o + i] = src[from + i]!;
}

/** A literal's bytes as the generated writer stores them: four at a time, then two, then one. */
function literalStores(lit: Uint8Array): string {
  const out: string[] = [];
  let i = 0;
  for (; i + 4 <= lit.length; i += 4) out.push(`dv.setUint32(o + ${i}, ${((lit[i]! << 24) | (lit[i + 1]! << 16) | (lit[i + 2]! << 8) | lit[i + 3]!) >>> 0});`);
  if (i + 2 <= lit.length) {
    out.push(`dv.setUint16(o + ${i}, ${(lit[i]! << 8) | lit[i + 1]!});`);
    i += 2;
  }
  if (i < lit.length) out.push(`buf[o + ${i}] = ${lit[i]!};`);
  return out.join(' ');
}

/**
 * Values at least this long are written by one call into C++ (Buffer's utf8Write, as protobufjs
 * writes long strings), shorter ones a character at a time: the call costs about as much as 30
 * characters read and stored.
 */
const NATIVE_VALUE = 32;
/** Node's Buffer method that write(string, offset, length, 'utf8') calls, without its argument checks. */
type Utf8Writer = Buffer & { utf8Write(s: string, offset: number, length: number): number };

/** An operator's value as text at `o`: NO_ROOM, or NOT_ASCII at a character past 0x7f. */
function writeValue(v: Value, max: number | undefined, buf: Buffer, dv: DataView, o: number): number {
  let s: string;
  if (max !== undefined) s = valueText(v, max);
  else if (typeof v === 'string') s = v === '' ? '-' : v;
  else if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return writeInteger(v, buf, o);
  else s = valueText(v);
  const n = s.length;
  if (o + n > buf.length) return NO_ROOM;
  // UTF-8 takes as many bytes as the string has characters only where every one is ASCII (one
  // past it takes two or three), so the count written says whether it was. With room for three a
  // character, so that a string that is not ASCII is never cut to exactly `n` bytes.
  if (n >= NATIVE_VALUE && o + 3 * n <= buf.length) return (buf as Utf8Writer).utf8Write(s, o, 3 * n) === n ? o + n : NOT_ASCII;
  let i = 0;
  let hi = 0;
  for (; i + 4 <= n; i += 4) {
    const a = s.charCodeAt(i);
    const b = s.charCodeAt(i + 1);
    const c = s.charCodeAt(i + 2);
    const d = s.charCodeAt(i + 3);
    hi |= a | b | c | d;
    dv.setUint32(o + i, (a << 24) | (b << 16) | (c << 8) | d);
  }
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    hi |= c;
    buf[o + i] = c;
  }
  return hi > 0x7f ? NOT_ASCII : o + n;
}

/** The DataView of the last buffer a line was written into (made again when the buffer changes). */
let viewBuf: Buffer | undefined;
let view: DataView = new DataView(new ArrayBuffer(0));
function viewOf(buf: Buffer): DataView {
  if (buf !== viewBuf) {
    viewBuf = buf;
    view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  return view;
}

/** A non-negative integer's decimal digits at `o`; -1 where they do not fit. */
function writeInteger(v: number, buf: Buffer, o: number): number {
  let digits = 1;
  for (let x = v; x >= 10; x = Math.floor(x / 10)) digits++;
  if (o + digits > buf.length) return -1;
  for (let i = o + digits - 1; i >= o; i--) {
    buf[i] = 48 + (v % 10);
    v = Math.floor(v / 10);
  }
  return o + digits;
}

function jsonValue(parts: FormatParts, e: LogEntry): unknown {
  const only = parts.length === 1 ? parts[0] : undefined;
  if (only !== undefined && typeof only !== 'string') {
    const v = only.op(e);
    if (v === undefined || v === '') return null;
    return typeof v === 'number' ? v : valueText(v, only.max);
  }
  return renderText(parts, e);
}

function jsonObject(fields: readonly JsonField[], e: LogEntry): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const f of fields) o[f.key] = f.parts ? jsonValue(f.parts, e) : f.nested ? jsonObject(f.nested, e) : f.literal;
  return o;
}

/** One log line, newline included (a text format carries its own; Istio's end in "\n"). */
export function render(f: CompiledFormat, e: LogEntry): string {
  return f.kind === 'text' ? renderText(f.parts, e) : `${JSON.stringify(jsonObject(f.fields, e))}\n`;
}
