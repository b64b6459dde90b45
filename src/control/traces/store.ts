// The control plane's recent traces: what its OTLP/HTTP receiver (receiver.ts) was sent, kept in
// memory within bounds (the most recently updated traces, at most MAX_TRACES of them and
// MAX_SPANS spans in all; the oldest go first), for the admin API (admin/traces.ts), the CLI and
// the dashboard. Not a tracing backend: export to one (an opentelemetry provider) to keep more.
import type { OtlpSpan } from '../../xds/otlp.ts';

export const MAX_TRACES = 1000;
export const MAX_SPANS = 20_000;
/** A trace with more spans keeps its first ones. */
export const MAX_SPANS_PER_TRACE = 1000;

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
  private spans = 0;
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
    for (const s of spans) {
      this.received++;
      let list = this.traces.get(s.traceId);
      if (list) this.traces.delete(s.traceId); // re-inserted: most recently updated last
      else list = [];
      this.traces.set(s.traceId, list);
      if (list.length >= MAX_SPANS_PER_TRACE || list.some((x) => x.spanId === s.spanId)) {
        this.dropped++;
        continue;
      }
      list.push(s);
      this.spans++;
    }
    for (const [id, list] of this.traces) {
      if (this.traces.size <= this.maxTraces && this.spans <= this.maxSpans) break;
      this.traces.delete(id);
      this.spans -= list.length;
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

  stats(): { traces: number; spans: number; received: number; dropped: number } {
    return { traces: this.traces.size, spans: this.spans, received: this.received, dropped: this.dropped };
  }
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
