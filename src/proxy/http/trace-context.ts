// The tracing layer of the request path (listeners whose HCM has `tracing`): the one part of
// tracing that must run on the path, because the headers the app and the upstream see carry it.
// It reads the incoming trace context (W3C traceparent/tracestate, else B3 single `b3`, else B3
// multi x-b3-*), keeps x-request-id (made when absent, as Envoy does) and decides sampling as
// Envoy's HCM with its default request id extension (UuidRequestIdConfig, pack_trace_reason) does:
// an incoming decision is honoured; otherwise the decision is derived from the request id (its first
// 8 hex digits modulo 10,000 against client_sampling, x-envoy-force-trace, random_sampling, then
// overall_sampling) and packed into it (its 15th character: '9' sampled, 'a' forced, 'b' client),
// so that every hop that gets the same x-request-id, even from an app that forwards nothing else,
// takes the same decision. The request gets a span of this hop: a new span id under the incoming
// one, in the same trace (a new trace when none came). The headers passed on name this span as the
// parent: on an inbound listener the app sees the SERVER span as its parent, on the outbound
// listener the next hop sees the CLIENT span, so an app that forwards only traceparent still joins
// the trace. B3 headers are rewritten in the form they came in; traceparent is always written,
// unless the HCM's no_context_propagation says no trace header is (Telemetry disableContextPropagation).
// Spans are built and exported off the path (telemetry/tracer.ts) from ds.trace.
//
// It runs on every request of such a listener, sampled or not (as Envoy's does): one pass over the
// headers, ids from a pool of random bytes written as one flat string each, and the common case
// (no B3, one traceparent or none) edits the header list in place rather than copying it.
import { randomFillSync } from 'node:crypto';
import type { TracingConfig } from '../xds-client/convert-tracing.ts';
import type { HeaderList, RequestHead } from './types.ts';

/** What a span is made of (telemetry/tracer.ts spanOf). */
export interface SpanContext {
  /** 32 lower-case hex digits. */
  readonly traceId: string;
  /** This hop's span: 16 hex digits. */
  readonly spanId: string;
  /** The incoming span, if any. */
  readonly parentId: string | undefined;
  readonly sampled: boolean;
  readonly traceState: string | undefined;
  readonly requestId: string;
  /** When the request arrived (performance.now()); nsAt() makes it ns since the epoch. */
  readonly startMs: number;
}

/**
 * What the layer decided for one request, kept on the Downstream for the span at its end. The ids
 * are read out of the traceparent passed on (and the incoming one) only when asked for: a span is
 * made of one request in a hundred, and three substrings a request were most of what the rest of
 * them made of their ids.
 */
export class TraceContext implements SpanContext {
  /** The traceparent passed on: "00-<trace id>-<this hop's span id>-<flags>". */
  readonly traceparent: string;
  /** The incoming span's id: `parentIn` itself (parentAt -1), or its 16 characters from parentAt (an incoming traceparent); none: undefined. */
  private readonly parentIn: string | undefined;
  private readonly parentAt: number;
  readonly sampled: boolean;
  readonly traceState: string | undefined;
  readonly requestId: string;
  readonly startMs: number;
  constructor(traceparent: string, parentIn: string | undefined, parentAt: number, sampled: boolean, traceState: string | undefined, requestId: string, startMs: number) {
    this.traceparent = traceparent;
    this.parentIn = parentIn;
    this.parentAt = parentAt;
    this.sampled = sampled;
    this.traceState = traceState;
    this.requestId = requestId;
    this.startMs = startMs;
  }
  get traceId(): string {
    return this.traceparent.slice(3, 35);
  }
  get spanId(): string {
    return this.traceparent.slice(36, 52);
  }
  get parentId(): string | undefined {
    const p = this.parentIn;
    return p === undefined || this.parentAt < 0 ? p : p.slice(this.parentAt, this.parentAt + 16);
  }
}

interface Incoming {
  traceId?: string;
  parentId?: string;
  sampled?: boolean;
  traceState?: string;
  /** A valid incoming traceparent (then traceId and parentId are not set: they are its characters 3-35 and 36-52). */
  tp?: string;
}

/** Envoy's trace reasons, packed into a UUID x-request-id's 15th character. */
const TRACE_BYTE = 14;
const TRACE_SAMPLED = '9';
const TRACE_FORCED = 'a';
const TRACE_CLIENT = 'b';
const UUID_LENGTH = 36;

/**
 * The layer: decides the request's trace context and rewrites its headers. `rand` is in [0, 1):
 * the sampling draw where the request id gives none (an id that does not start with 8 hex digits).
 */
export function traceRequest(head: RequestHead, cfg: TracingConfig, rand: number): TraceContext {
  const h = head.headers;
  // One pass: where each header this layer reads is.
  let tp = -1;
  let tps = 0;
  let rid = -1;
  let b3 = false;
  let multi = false;
  let b3any = false;
  let force = false;
  let client = false;
  let state = false;
  for (let i = 0; i < h.length; i += 2) {
    const n = h[i]!;
    const c = n.charCodeAt(0);
    // By first character and length before any compare: a name that came off the wire is a
    // string of its own, and comparing it with another is a call into V8 even where the lengths differ.
    const len = n.length;
    if (c === 116 /* t */) {
      if (len === 11 && n === 'traceparent') {
        if (tps++ === 0) tp = i;
      } else if (len === 10 && n === 'tracestate') state = true;
    } else if (c === 120 /* x */) {
      if (len === 12 && n === 'x-request-id') {
        if (rid < 0) rid = i;
      } else if (len === 19 && n === 'x-envoy-force-trace') force = true;
      else if (len === 17 && n === 'x-client-trace-id') client = true;
      else if (n.charCodeAt(2) === 98 /* b */ && n.charCodeAt(3) === 51 /* 3 */ && B3_MULTI.has(n)) {
        b3any = true;
        // The multi-header form is what came when its trace id or decision did (a lone span id is not one).
        if (n === 'x-b3-traceid' || n === 'x-b3-sampled' || n === 'x-b3-flags') multi = true;
      }
    } else if (c === 98 /* b */ && len === 2 && n === 'b3') b3 = true;
  }
  const inc = tp >= 0 || b3 || b3any ? incoming(h, tp, state) : NONE;
  // An empty x-request-id is none (Envoy makes a new one, unless the HCM's generate_request_id is false).
  let requestId = rid >= 0 && h[rid + 1] ? h[rid + 1]! : cfg.generateRequestId ? uuid() : '';
  // Envoy's mutateTracingRequestHeader: the decision the request id carries, else one drawn from it.
  // An id that gives no draw (its first 8 characters are not hex) is left as it came, as Envoy leaves it.
  // use_request_id_for_trace_sampling false: the draw is random and the id says nothing (Envoy then
  // leaves the decision to the tracer, whose OpenTelemetry one without a sampler traces every new
  // request; the configured percentages are applied to the random draw instead). pack_trace_reason
  // false: the decision is read from the id but never written into it.
  const fromId = cfg.requestIdSampling ? idDraw(requestId) : undefined;
  const draw = fromId ?? Math.floor(rand * 10000);
  const packed = cfg.packTraceReason && fromId !== undefined && requestId.length === UUID_LENGTH;
  let reason = cfg.requestIdSampling && requestId.length === UUID_LENGTH ? requestId[TRACE_BYTE]! : '';
  if (reason !== TRACE_SAMPLED && reason !== TRACE_FORCED && reason !== TRACE_CLIENT) {
    reason = client && draw < pct(cfg.clientSampling) ? TRACE_CLIENT : force ? TRACE_FORCED : draw < pct(cfg.randomSampling) ? TRACE_SAMPLED : '';
  }
  if (reason && draw >= pct(cfg.overallSampling)) reason = '';
  if (packed) {
    const now = requestId[TRACE_BYTE]!;
    const want = reason || (now === TRACE_SAMPLED || now === TRACE_FORCED || now === TRACE_CLIENT ? '4' : now);
    if (want !== now) requestId = `${requestId.slice(0, TRACE_BYTE)}${want}${requestId.slice(TRACE_BYTE + 1)}`;
  }
  const sampled = inc.sampled ?? reason !== '';
  const traceparent = traceparentOf(inc, sampled);
  const incTrace = inc.tp !== undefined || inc.traceId !== undefined;
  // A new trace drops the tracestate that came (W3C: it belongs to the trace it came with).
  const dropState = state && !incTrace;
  if (cfg.noContextPropagation) {
    // no_context_propagation: the span is this hop's, the headers the request came with pass as they came.
    if (rid >= 0) h[rid + 1] = requestId;
    else if (requestId) h.push('x-request-id', requestId);
  } else if (!b3 && !b3any && tps <= 1 && !dropState) {
    // The common case: edited in place.
    if (rid >= 0) h[rid + 1] = requestId;
    else if (requestId) h.push('x-request-id', requestId);
    if (tp >= 0) h[tp + 1] = traceparent;
    else h.push('traceparent', traceparent);
  } else {
    const out: HeaderList = [];
    for (let i = 0; i < h.length; i += 2) {
      const n = h[i]!;
      if (n === 'traceparent' || n === 'b3' || (n.startsWith('x-b3-') && B3_MULTI.has(n)) || (dropState && n === 'tracestate')) continue;
      out.push(n, i === rid ? requestId : h[i + 1]!);
    }
    if (rid < 0 && requestId) out.push('x-request-id', requestId);
    out.push('traceparent', traceparent);
    const traceId = traceparent.slice(3, 35);
    const spanId = traceparent.slice(36, 52);
    const parentId = inc.tp !== undefined ? inc.tp.slice(36, 52) : inc.parentId;
    if (b3) out.push('b3', `${traceId}-${spanId}-${sampled ? '1' : '0'}`);
    else if (multi) {
      out.push('x-b3-traceid', traceId, 'x-b3-spanid', spanId, 'x-b3-sampled', sampled ? '1' : '0');
      if (parentId) out.push('x-b3-parentspanid', parentId);
    }
    head.headers = out;
  }
  const w3c = inc.tp !== undefined;
  return new TraceContext(traceparent, w3c ? inc.tp : inc.parentId, w3c ? 36 : -1, sampled, inc.traceState, requestId, performance.now());
}

const NONE: Incoming = Object.freeze({});

/**
 * A listener without tracing: x-request-id is made where the request has none, as Envoy's HCM
 * makes it (generate_request_id, true by default), so that apps and access logs behind any sidecar
 * see one, as behind Istio's.
 */
export function ensureRequestId(head: RequestHead): void {
  const h = head.headers;
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] !== 'x-request-id') continue;
    // An empty one is none (Envoy makes a new one).
    if (!h[i + 1]) h[i + 1] = uuid();
    return;
  }
  h.push('x-request-id', uuid());
}

/** A percentage as Envoy's FractionalPercent of 10,000 (rounded, as PROTOBUF_PERCENT_TO_ROUNDED_INTEGER_OR_DEFAULT). */
function pct(p: number): number {
  return Math.round(p * 100);
}

/** Envoy's draw from a request id: its first 8 hex digits modulo 10,000; undefined where it has none. */
function idDraw(id: string): number | undefined {
  if (id.length < 8) return undefined;
  let v = 0;
  for (let i = 0; i < 8; i++) {
    const d = HEX_DIGIT[id.charCodeAt(i)] ?? -1;
    if (d < 0) return undefined;
    v = v * 16 + d;
  }
  return v % 10000;
}

const HEX_DIGIT: number[] = [];
for (let i = 0; i < 10; i++) HEX_DIGIT[48 + i] = i;
for (let i = 0; i < 6; i++) HEX_DIGIT[97 + i] = HEX_DIGIT[65 + i] = 10 + i;

const B3_MULTI = new Set(['x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags']);
const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const ZERO32 = '0'.repeat(32);
const ZERO16 = '0'.repeat(16);

/**
 * The incoming context: W3C first (Envoy's OpenTelemetry tracer), then B3 single, then B3 multi.
 * `at`: where the first traceparent is (-1: none), and `state`: whether a tracestate came, where
 * the caller's pass over the headers found them already (undefined: looked up here).
 */
export function incoming(h: HeaderList, at?: number, state?: boolean): Incoming {
  const tp = at === undefined ? value(h, 'traceparent') : at >= 0 ? h[at + 1] : undefined;
  const w3c = tp === undefined ? undefined : traceparent(trimmed(tp));
  if (w3c) {
    const ts = state === false ? undefined : value(h, 'tracestate');
    if (ts) w3c.traceState = ts;
    return w3c;
  }
  const b3 = value(h, 'b3');
  if (b3 !== undefined) {
    const parts = b3.trim().toLowerCase().split('-');
    if (parts.length === 1) return { sampled: sampledOf(parts[0]) }; // a decision only
    const [tid, sid, s] = parts;
    const traceId = b3TraceId(tid);
    if (traceId && sid && HEX16.test(sid) && sid !== ZERO16) return { traceId, parentId: sid, sampled: sampledOf(s) };
  }
  const tid = value(h, 'x-b3-traceid');
  const sid = value(h, 'x-b3-spanid');
  const flags = value(h, 'x-b3-flags');
  const sampled = flags === '1' ? true : sampledOf(value(h, 'x-b3-sampled'));
  const traceId = tid !== undefined ? b3TraceId(tid.trim().toLowerCase()) : undefined;
  const spanId = sid?.trim().toLowerCase();
  if (traceId && spanId && HEX16.test(spanId) && spanId !== ZERO16) return { traceId, parentId: spanId, sampled };
  if (sampled !== undefined && (tid !== undefined || value(h, 'x-b3-sampled') !== undefined || flags !== undefined)) return { sampled };
  return {};
}

/**
 * A valid traceparent: version-traceid-parentid-flags, in lower-case hex; version ff is invalid, a
 * higher version than 00 may carry more fields after a "-". Its first 55 characters are copied
 * into `tpIn` in one native call (as UTF-8) and checked there byte by byte: the string's
 * characters read one by one cost about twice as much (as did a regular expression's test), and a
 * match's captures were most of what the next hop's tracing allocated. The trace id's bytes stay
 * there for traceparentOf.
 */
function traceparent(tp: string): Incoming | undefined {
  const n = tp.length;
  if (n < 55 || (n > 55 && (tp.charCodeAt(55) !== 45 || tp.startsWith('00')))) return undefined;
  // As UTF-8: a character past ASCII becomes bytes from 0x80 up, which no check below lets pass
  // (latin1 would keep only a wider character's low byte), or leaves the 55 bytes short.
  const b = tpIn;
  // Node's own utf8Write, without Buffer.write's argument checks and encoding lookup (as format.ts writes values).
  if ((b as Utf8Writer).utf8Write(tp, 0, 55) !== 55 || b[2] !== 45 || b[35] !== 45 || b[52] !== 45) return undefined;
  let hex = HEX_BYTE[b[0]!]! & HEX_BYTE[b[1]!]! & HEX_BYTE[b[53]!]! & HEX_BYTE[b[54]!]!;
  let trace = 0;
  for (let i = 3; i < 35; i++) {
    const c = b[i]!;
    hex &= HEX_BYTE[c]!;
    trace |= c ^ 48;
  }
  let span = 0;
  for (let i = 36; i < 52; i++) {
    const c = b[i]!;
    hex &= HEX_BYTE[c]!;
    span |= c ^ 48;
  }
  if (hex === 0 || trace === 0 || span === 0 || (b[0] === 102 && b[1] === 102)) return undefined;
  // A later version's further fields: anything but a line terminator (the expression's ".").
  for (let i = 56; i < n; i++) {
    const c = tp.charCodeAt(i);
    if (c === 10 || c === 13 || c === 0x2028 || c === 0x2029) return undefined;
  }
  return { tp, sampled: (HEX_DIGIT[b[54]!]! & 1) === 1 };
}

/** The last incoming traceparent's bytes (traceparent()): a valid one's, read by traceparentOf right after. */
const tpIn = Buffer.alloc(64);
/** 1 for a lower-case hex digit's byte, else 0. */
const HEX_BYTE = new Uint8Array(256);
for (const c of '0123456789abcdef') HEX_BYTE[c.charCodeAt(0)] = 1;

/** A B3 trace id: 32 hex digits, or 16 (64-bit ids, left-padded as Envoy does). */
function b3TraceId(s: string | undefined): string | undefined {
  if (!s) return undefined;
  const id = s.length === 16 ? ZERO16 + s : s;
  return HEX32.test(id) && id !== ZERO32 ? id : undefined;
}

/** `s` without surrounding whitespace (String.prototype.trim's); itself, without the call, where both ends are printable ASCII (a traceparent as sent). */
function trimmed(s: string): string {
  const a = s.charCodeAt(0);
  const z = s.charCodeAt(s.length - 1);
  return a > 32 && a < 127 && z > 32 && z < 127 ? s : s.trim();
}

function sampledOf(s: string | undefined): boolean | undefined {
  if (s === undefined) return undefined;
  const v = s.trim().toLowerCase();
  return v === '1' || v === 'd' || v === 'true' ? true : v === '0' || v === 'false' ? false : undefined;
}

function value(h: HeaderList, name: string): string | undefined {
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
  return undefined;
}

/** Random ids from a pool refilled 4 KiB at a time: no system call per request. */
const pool = Buffer.alloc(4096);
let used = pool.length;

function take(bytes: number): number {
  if (used + bytes > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const at = used;
  used += bytes;
  return at;
}

/**
 * Text is written into `line` and read out once as a flat one-byte string: built by
 * concatenation, an id was a chain of 2-character pieces (a heap object each) that had to be
 * flattened again when the header was written. Two random bytes' four hex digits are one 32-bit
 * store through a DataView: a Buffer's element costs about as much to store as that (V8 checks the
 * array again for each).
 */
const line = Buffer.alloc(64);
const lineView = new DataView(line.buffer, line.byteOffset, line.length);
const tpInView = new DataView(tpIn.buffer, tpIn.byteOffset, tpIn.length);
const HEX_CHAR = Buffer.from('0123456789abcdef');
/** A byte's two hex digits, as the 16 bits that store them in order. */
const HEX2 = new Uint16Array(256);
for (let b = 0; b < 256; b++) HEX2[b] = (HEX_CHAR[b >> 4]! << 8) | HEX_CHAR[b & 15]!;

/** Random bytes `at`, `at + 1` of the pool as four hex digits into `view` at `o`; returns them ORed (0: both zero). */
function hex4(at: number, view: DataView, o: number): number {
  const a = pool[at]!;
  const b = pool[at + 1]!;
  view.setUint32(o, (HEX2[a]! << 16) | HEX2[b]!);
  return a | b;
}

/** `bytes` (8 or 16) random bytes from the pool as hex into `out` (`line` or `tpIn`) at `o` (never all zero: an all-zero id is invalid); returns the end. */
function hexInto(bytes: number, o: number, out: Buffer): number {
  const view = out === tpIn ? tpInView : lineView;
  for (;;) {
    const at = take(bytes);
    // Whether every byte was zero is seen as they are written, not by a loop of its own.
    let any = 0;
    for (let i = at; i < at + bytes; i += 2) {
      any |= hex4(i, view, o + (i - at) * 2);
    }
    // Vanishingly rare, but never sent: written again from the next bytes.
    if (any !== 0) return o + bytes * 2;
  }
}

/** Node's Buffer method that toString('latin1', start, end) calls, without toString's argument checks and encoding lookup. */
type Latin1Slicer = Buffer & { latin1Slice(start: number, end: number): string };
/** Node's Buffer method that write(string, offset, length, 'utf8') calls. */
type Utf8Writer = Buffer & { utf8Write(s: string, offset: number, length: number): number };

/** "00-<trace id>-<new span id>-<flags>": the incoming trace's id (32 lower-case hex digits), else a new one. */
function traceparentOf(inc: Incoming, sampled: boolean): string {
  // A valid incoming traceparent's own trace id: its bytes are in tpIn, where traceparent() (called
  // by incoming() just before) checked them; only it sets inc.tp.
  const b = inc.tp !== undefined ? tpIn : line;
  const traceId = inc.tp !== undefined ? undefined : inc.traceId;
  b[0] = b[1] = 48; // "00-"
  b[2] = 45;
  let o = b === tpIn ? 35 : traceId !== undefined ? 3 + b.write(traceId, 3, 'latin1') : hexInto(16, 3, b);
  b[o++] = 45;
  o = hexInto(8, o, b);
  b[o++] = 45;
  b[o++] = 48;
  b[o++] = sampled ? 49 : 48;
  return (b as Latin1Slicer).latin1Slice(0, o);
}

/** A random (version 4) UUID, as crypto.randomUUID() makes it, from the same pool. */
function uuid(): string {
  const at = take(16);
  pool[at + 6] = (pool[at + 6]! & 0x0f) | 0x40;
  pool[at + 8] = (pool[at + 8]! & 0x3f) | 0x80;
  let o = 0;
  for (let i = 0; i < 16; i += 2) {
    if (i === 4 || i === 6 || i === 8 || i === 10) line[o++] = 45;
    hex4(at + i, lineView, o);
    o += 4;
  }
  return (line as Latin1Slicer).latin1Slice(0, o);
}

const origin = BigInt(Math.round(performance.timeOrigin * 1000)) * 1000n;

/** A performance.now() reading as ns since the epoch (the monotonic clock, from the process's time origin). */
export function nsAt(ms: number): bigint {
  return origin + BigInt(Math.round(ms * 1e6));
}

/** Now, in ns since the epoch. */
export function nowNs(): bigint {
  return nsAt(performance.now());
}
