// The control plane's recent traces: what its OTLP/HTTP receiver (receiver.ts) was sent, kept in
// memory within bounds (the most recently updated traces, at most MAX_TRACES of them and
// MAX_SPANS spans in all; the oldest go first), for the admin API (admin/traces.ts), the CLI and
// the dashboard. Not a tracing backend: export to one (an opentelemetry provider) to keep more.
import type { OtlpSpan } from '../../xds/otlp.ts';

export const MAX_TRACES = 1000;
export const MAX_SPANS = 20_000;
/** A trace with more spans keeps its first ones. */
export const MAX_SPANS_PER_TRACE = 1000;
/**
 * What one span may hold, beyond which it is cut (the receiver takes spans from anyone who can reach
 * it): its name and service, each attribute's key and value (Envoy cuts its tags at 256 by default),
 * and its number of attributes. With MAX_SPANS, these bound the store to about 20,000 x 66 KiB
 * at worst, and MAX_BYTES bounds it further.
 */
export const MAX_NAME = 256;
export const MAX_ATTRIBUTES = 64;
export const MAX_KEY = 128;
export const MAX_VALUE = 1024;
/** The store's size in (UTF-16) characters of its spans' strings, about: past it, the oldest traces go. */
export const MAX_BYTES = 32 * 1024 * 1024;

export interface TraceSummary {
  traceId: string;
  /** The root span's service and name (the earliest span's, when the root was not received). */
  rootService: string;
  operation: string;
  /** ISO time of the earliest span's start. */
  start: string;
  durationMs: number;
  spanCount: number;
  error: boolean;
  services: string[];
}

export interface SpanView {
  spanId: string;
  parentSpanId?: string;
  service: string;
  name: string;
  kind: 'SERVER' | 'CLIENT' | 'INTERNAL' | 'PRODUCER' | 'CONSUMER' | 'UNSPECIFIED';
  start: string;
  startUnixNano: string;
  durationMs: number;
  error: boolean;
  attributes: Record<string, string>;
}

const KINDS = ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'] as const;

export class TraceStore {
  private readonly traces = new Map<string, OtlpSpan[]>();
  /** Each trace's span ids (the duplicate check) and its size, beside its list. */
  private readonly meta = new Map<string, { ids: Set<string>; bytes: number }>();
  private spans = 0;
  private bytes = 0;
  private readonly maxTraces: number;
  private readonly maxSpans: number;
  /** Spans received in all, and those not kept (the trace was full). */
  received = 0;
  dropped = 0;

  constructor(maxTraces = MAX_TRACES, maxSpans = MAX_SPANS) {
    this.maxTraces = maxTraces;
    this.maxSpans = maxSpans;
  }

  add(spans: readonly OtlpSpan[]): void {
    for (const raw of spans) {
      this.received++;
      const s = bounded(raw);
      let list = this.traces.get(s.traceId);
      let meta = this.meta.get(s.traceId);
      if (list) this.traces.delete(s.traceId); // re-inserted: most recently updated last
      else list = [];
      if (!meta) this.meta.set(s.traceId, (meta = { ids: new Set(), bytes: 0 }));
      this.traces.set(s.traceId, list);
      if (list.length >= MAX_SPANS_PER_TRACE || meta.ids.has(s.spanId)) {
        this.dropped++;
        continue;
      }
      const size = sizeOf(s);
      list.push(s);
      meta.ids.add(s.spanId);
      meta.bytes += size;
      this.bytes += size;
      this.spans++;
    }
    for (const [id, list] of this.traces) {
      if (this.traces.size <= this.maxTraces && this.spans <= this.maxSpans && this.bytes <= MAX_BYTES) break;
      this.traces.delete(id);
      this.spans -= list.length;
      this.bytes -= this.meta.get(id)?.bytes ?? 0;
      this.meta.delete(id);
    }
  }

  /** The traces kept, most recently updated first. */
  list(limit = MAX_TRACES): TraceSummary[] {
    const out: TraceSummary[] = [];
    for (const [id, spans] of [...this.traces].reverse()) {
      if (out.length >= limit) break;
      if (spans.length) out.push(summary(id, spans));
    }
    return out;
  }

  get(traceId: string): { traceId: string; summary: TraceSummary; spans: SpanView[] } | undefined {
    const spans = this.traces.get(traceId.toLowerCase());
    if (!spans?.length) return undefined;
    const sorted = [...spans].sort((a, b) => (a.startNs < b.startNs ? -1 : a.startNs > b.startNs ? 1 : 0));
    return { traceId: traceId.toLowerCase(), summary: summary(traceId.toLowerCase(), spans), spans: sorted.map(view) };
  }

  stats(): { traces: number; spans: number; received: number; dropped: number; bytes: number } {
    return { traces: this.traces.size, spans: this.spans, received: this.received, dropped: this.dropped, bytes: this.bytes };
  }
}

const cut = (v: string, n: number) => (v.length > n ? `${v.slice(0, n)}...` : v);

/** The span as kept: its strings and its number of attributes cut to the bounds above. */
function bounded(s: OtlpSpan): OtlpSpan {
  const keys = Object.keys(s.attributes);
  const long = keys.length > MAX_ATTRIBUTES || s.name.length > MAX_NAME || s.service.length > MAX_NAME || (s.traceState?.length ?? 0) > MAX_VALUE || keys.some((k) => k.length > MAX_KEY || s.attributes[k]!.length > MAX_VALUE);
  if (!long) return s;
  const attributes: Record<string, string> = {};
  for (const k of keys.slice(0, MAX_ATTRIBUTES)) attributes[cut(k, MAX_KEY)] = cut(s.attributes[k]!, MAX_VALUE);
  return { ...s, name: cut(s.name, MAX_NAME), service: cut(s.service, MAX_NAME), ...(s.traceState ? { traceState: cut(s.traceState, MAX_VALUE) } : {}), attributes };
}

function sizeOf(s: OtlpSpan): number {
  let n = 200 + s.name.length + s.service.length + (s.traceState?.length ?? 0);
  for (const k in s.attributes) n += k.length + s.attributes[k]!.length + 16;
  return n;
}

function summary(traceId: string, spans: readonly OtlpSpan[]): TraceSummary {
  const ids = new Set(spans.map((s) => s.spanId));
  let start = spans[0]!.startNs;
  let end = spans[0]!.endNs;
  for (const s of spans) {
    if (s.startNs < start) start = s.startNs;
    if (s.endNs > end) end = s.endNs;
  }
  // The root: no parent, else a parent not received (the app's own span, say), earliest first.
  const byStart = [...spans].sort((a, b) => (a.startNs < b.startNs ? -1 : a.startNs > b.startNs ? 1 : 0));
  const root = byStart.find((s) => !s.parentSpanId) ?? byStart.find((s) => !ids.has(s.parentSpanId!)) ?? byStart[0]!;
  return {
    traceId,
    rootService: root.service,
    operation: root.name,
    start: isoOf(start),
    durationMs: Number(end - start) / 1e6,
    spanCount: spans.length,
    error: spans.some((s) => s.error),
    services: [...new Set(spans.map((s) => s.service))].sort(),
  };
}

function view(s: OtlpSpan): SpanView {
  return {
    spanId: s.spanId,
    ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
    service: s.service,
    name: s.name,
    kind: KINDS[s.kind] ?? 'UNSPECIFIED',
    start: isoOf(s.startNs),
    startUnixNano: s.startNs.toString(),
    durationMs: Number(s.endNs - s.startNs) / 1e6,
    error: s.error,
    attributes: s.attributes,
  };
}

function isoOf(ns: bigint): string {
  return new Date(Number(ns / 1_000_000n)).toISOString();
}
