// The tracing layer of the request path (listeners whose HCM has `tracing`): the one part of
// tracing that must run on the path, because the headers the app and the upstream see carry it.
// It reads the incoming trace context (W3C traceparent/tracestate, else B3 single `b3`, else B3
// multi x-b3-*), decides sampling (an incoming decision is honoured; otherwise
// x-envoy-force-trace, else random_sampling), keeps x-request-id (made when absent, as Envoy does
// at the edge) and gives the request a span of this hop: a new span id under the incoming one, in
// the same trace (a new trace when none came). The headers passed on name this span as the parent:
// on an inbound listener the app sees the SERVER span as its parent, on the outbound listener the
// next hop sees the CLIENT span, so an app that forwards only traceparent still joins the trace.
// B3 headers are rewritten in the form they came in; traceparent is always written.
// Spans are built and exported off the path (telemetry/tracer.ts) from ds.trace.
import { randomFillSync, randomUUID } from 'node:crypto';
import type { TracingConfig } from '../xds-client/convert-tracing.ts';
import type { HeaderList, RequestHead } from './types.ts';

/** What the layer decided for one request, kept on the Downstream for the span at its end. */
export interface TraceContext {
  /** 32 lower-case hex digits. */
  traceId: string;
  /** This hop's span: 16 hex digits. */
  spanId: string;
  /** The incoming span, if any. */
  parentId?: string;
  sampled: boolean;
  traceState?: string;
  requestId: string;
  /** When the request arrived, in ns since the epoch. */
  startNs: bigint;
}

interface Incoming {
  traceId?: string;
  parentId?: string;
  sampled?: boolean;
  traceState?: string;
}

/**
 * The layer: decides the request's trace context and rewrites its headers (ds.head.headers is
 * replaced, never edited in place). `rand` is in [0, 1).
 */
export function traceRequest(head: RequestHead, cfg: TracingConfig, rand: number): TraceContext {
  const h = head.headers;
  const inc = incoming(h);
  const b3 = b3Form(h);
  let requestId = value(h, 'x-request-id');
  let sampled = inc.sampled;
  if (sampled === undefined) {
    // Envoy: x-envoy-force-trace, then client_sampling of x-client-trace-id, then random_sampling; overall last.
    sampled = value(h, 'x-envoy-force-trace') !== undefined || (value(h, 'x-client-trace-id') !== undefined && rand * 100 < cfg.clientSampling) || rand * 100 < cfg.randomSampling;
    sampled = sampled && rand * 100 < cfg.overallSampling;
  }
  const traceId = inc.traceId ?? hex(16);
  const spanId = hex(8);
  const out: HeaderList = [];
  for (let i = 0; i < h.length; i += 2) {
    const n = h[i]!;
    if (n === 'traceparent' || n === 'b3' || (n.startsWith('x-b3-') && B3_MULTI.has(n))) continue;
    out.push(n, h[i + 1]!);
  }
  if (requestId === undefined) out.push('x-request-id', (requestId = randomUUID()));
  out.push('traceparent', `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`);
  if (b3 === 'single') out.push('b3', `${traceId}-${spanId}-${sampled ? '1' : '0'}`);
  else if (b3 === 'multi') {
    out.push('x-b3-traceid', traceId, 'x-b3-spanid', spanId, 'x-b3-sampled', sampled ? '1' : '0');
    if (inc.parentId) out.push('x-b3-parentspanid', inc.parentId);
  }
  head.headers = out;
  return { traceId, spanId, ...(inc.parentId ? { parentId: inc.parentId } : {}), sampled, ...(inc.traceState ? { traceState: inc.traceState } : {}), requestId, startNs: nowNs() };
}

/** The B3 form the request came with (whichever context won): the form passed on. */
function b3Form(h: HeaderList): 'single' | 'multi' | undefined {
  let multi = false;
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] === 'b3') return 'single';
    if (h[i] === 'x-b3-traceid' || h[i] === 'x-b3-sampled' || h[i] === 'x-b3-flags') multi = true;
  }
  return multi ? 'multi' : undefined;
}

const B3_MULTI = new Set(['x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags']);
const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const ZERO32 = '0'.repeat(32);
const ZERO16 = '0'.repeat(16);

/** The incoming context: W3C first (Envoy's OpenTelemetry tracer), then B3 single, then B3 multi. */
export function incoming(h: HeaderList): Incoming {
  const tp = value(h, 'traceparent');
  if (tp !== undefined) {
    // version-traceid-parentid-flags; version ff is invalid, a higher version may carry more fields.
    const m = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/.exec(tp.trim());
    if (m && m[1] !== 'ff' && (m[1] !== '00' || !m[5]) && m[2] !== ZERO32 && m[3] !== ZERO16) {
      const ts = value(h, 'tracestate');
      return { traceId: m[2], parentId: m[3], sampled: (parseInt(m[4]!, 16) & 1) === 1, ...(ts ? { traceState: ts } : {}) };
    }
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

/** A B3 trace id: 32 hex digits, or 16 (64-bit ids, left-padded as Envoy does). */
function b3TraceId(s: string | undefined): string | undefined {
  if (!s) return undefined;
  const id = s.length === 16 ? ZERO16 + s : s;
  return HEX32.test(id) && id !== ZERO32 ? id : undefined;
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

function hex(bytes: number): string {
  if (used + bytes > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const s = pool.toString('hex', used, used + bytes);
  used += bytes;
  // An all-zero id is invalid: vanishingly rare, but never sent.
  return /^0+$/.test(s) ? hex(bytes) : s;
}

const origin = BigInt(Math.round(performance.timeOrigin * 1000)) * 1000n;

/** Now, in ns since the epoch (the monotonic clock, from the process's time origin). */
export function nowNs(): bigint {
  return origin + BigInt(Math.round(performance.now() * 1e6));
}
