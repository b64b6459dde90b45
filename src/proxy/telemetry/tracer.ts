// Spans, as Envoy's OpenTelemetry tracer reports them for Istio: a subscriber to the request path's
// events (events.ts), never called from the path itself. A request the tracing layer sampled
// (http/trace-context.ts put its context on ds.trace) becomes one span when it ends: SERVER on an
// inbound listener, CLIENT on the outbound one, named by the route's decorator (Istio's operation:
// "<service host>:<port>/*", or "<host>:<port><path>" for a VirtualService route with a path match),
// else as Istio's default routes name theirs, from the cluster), with Envoy's tags as string attributes and the HCM's custom tags.
// Spans are queued per exporter (its cluster, path and headers) and sent in batches over OTLP/HTTP
// (protobuf) through the cluster (ext-authz/call.ts callCluster: its endpoints, TLS and circuit
// breakers); a full queue drops and counts (/stats tracing). Unsampled requests cost one check.
import type { RuntimeConfig } from '../config.ts';
import { type ClusterCallContext, callCluster } from '../ext-authz/call.ts';
import { headerValue } from '../http/edits.ts';
import { type SpanContext, nowNs, nsAt } from '../http/trace-context.ts';
import type { OtlpExport, TracingConfig } from '../xds-client/convert-tracing.ts';
import { SPAN_KIND, type OtlpSpan, encodeTraces } from '../../xds/otlp.ts';
import { WEFT_VERSION } from '../../version.ts';
import type { RequestEvent, Telemetry } from './events.ts';
import { responseFlags } from './flags.ts';
import { guarded } from './guarded.ts';

/**
 * Spans sent per export request (encoding 128 spans takes about 0.3 ms of the event loop), and kept
 * waiting per exporter at most (about 1.4 KB each; past it they are dropped and counted).
 */
export const BATCH_SPANS = 128;
export const MAX_QUEUED_SPANS = 2048;
/** A batch that is not full goes after this long. */
export const FLUSH_MS = 1000;

export interface TracerOptions {
  config: () => RuntimeConfig;
  /** What exports go through: the sidecar's clusters and pools. */
  calls: ClusterCallContext;
  /** The node id (Envoy's node_id tag). */
  nodeId: string;
  /** The service host this workload serves (<service>.<namespace>.svc.cluster.local): inbound span names. */
  service?: string;
  log: (msg: string) => void;
}

export class Tracer {
  private readonly opts: TracerOptions;
  private readonly exporters = new Map<string, Exporter>();
  /** Sampled requests whose HCM reports no spans (no provider): context propagated only. */
  unreported = 0;

  constructor(opts: TracerOptions) {
    this.opts = opts;
  }

  subscribe(t: Telemetry): void {
    t.request.subscribe(guarded((e) => this.onRequest(e), this.opts.log, 'tracer'));
  }

  stats(): { unreported: number; exporters: ExporterStats[] } {
    return { unreported: this.unreported, exporters: [...this.exporters.values()].map((x) => x.stats()) };
  }

  /** weft_tracing_spans_total{cluster,outcome}: exported, dropped (queue full) and failed spans per exporter, for /stats/prometheus. */
  prometheus(): string {
    const rows = this.stats().exporters;
    if (!rows.length) return '';
    const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
    const out = ['# HELP weft_tracing_spans_total Spans by exporter cluster and outcome (exported, dropped: the queue was full, failed: the export failed).', '# TYPE weft_tracing_spans_total counter'];
    for (const r of rows) for (const o of ['exported', 'dropped', 'failed'] as const) out.push(`weft_tracing_spans_total{cluster="${esc(r.cluster)}",outcome="${o}"} ${r[o]}`);
    return out.join('\n') + '\n';
  }

  /** Waits for every queued span to be sent (or fail); for tests and shutdown. */
  async flush(): Promise<void> {
    await Promise.all([...this.exporters.values()].map((x) => x.drain()));
  }

  close(): void {
    for (const x of this.exporters.values()) x.close();
  }

  private onRequest(e: RequestEvent): void {
    const tc = e.ds?.trace;
    if (!tc?.sampled) return;
    const ds = e.ds!;
    const l = this.opts.config().listeners.get(ds.listenerName ?? '');
    const cfg = l?.tracing;
    if (!cfg?.export) {
      this.unreported++;
      return;
    }
    this.exporter(cfg).add(spanOf(e, tc, cfg, l!.direction === 'inbound', this.opts));
  }

  private exporter(cfg: TracingConfig): Exporter {
    const x = cfg.export!;
    const key = `${x.cluster}\u0000${x.authority}\u0000${x.path}\u0000${x.serviceName}\u0000${x.headers.join('\u0000')}`;
    let e = this.exporters.get(key);
    if (!e) this.exporters.set(key, (e = new Exporter(x, this.opts)));
    return e;
  }
}

/** PURE but for the clock: the span of one ended request, with Envoy's tags as string attributes. */
export function spanOf(e: RequestEvent, tc: SpanContext, cfg: TracingConfig, inbound: boolean, self: Pick<TracerOptions, 'nodeId' | 'service'>): OtlpSpan {
  const ds = e.ds!;
  const h = ds.head;
  const url = `http://${h.authority}${h.path}${h.query ? `?${h.query}` : ''}`;
  // gRPC (Envoy's addGrpcRequestTags/addGrpcResponseTags): its status from the trailers, or a trailers-only answer's headers.
  const grpc = (headerValue(h.headers, 'content-type') ?? '').startsWith('application/grpc');
  const grpcStatus = grpc ? ((e.responseTrailers && headerValue(e.responseTrailers, 'grpc-status')) ?? (e.responseHeaders && headerValue(e.responseHeaders, 'grpc-status'))) : undefined;
  const error = e.status === 0 || e.status >= 500 || (grpcStatus !== undefined && grpcStatus !== '0');
  const a: Record<string, string> = {
    'component': 'proxy',
    'node_id': self.nodeId,
    'http.url': url.length > cfg.maxPathTagLength ? url.slice(0, cfg.maxPathTagLength) : url,
    'http.method': h.method,
    'downstream_cluster': headerValue(h.headers, 'x-envoy-downstream-service-cluster') ?? '-',
    'user_agent': headerValue(h.headers, 'user-agent') ?? '-',
    'http.protocol': h.protocol,
    'peer.address': ds.remoteAddress(),
    'request_size': String(e.bytesReceived ?? 0),
    'response_flags': responseFlags(e.reason),
    'http.status_code': String(e.status),
    'response_size': String(e.bytesSent ?? 0),
  };
  if (tc.requestId) a['guid:x-request-id'] = tc.requestId;
  if (e.cluster !== '-') {
    a['upstream_cluster'] = e.cluster;
    a['upstream_cluster.name'] = e.cluster;
  }
  if (e.endpoint) a['upstream_address'] = e.endpoint;
  if (grpc) {
    a['grpc.path'] = h.path;
    a['grpc.authority'] = h.authority;
    if (grpcStatus !== undefined) a['grpc.status_code'] = grpcStatus;
  }
  if (error) a['error'] = 'true';
  for (const t of cfg.customTags) {
    const v = t.kind === 'literal' ? t.value : t.kind === 'header' ? (headerValue(h.headers, t.name) ?? t.defaultValue) : metadataValue(ds.dynamicMetadata, t.filter, t.path);
    if (v !== undefined) a[t.tag] = v;
  }
  return {
    traceId: tc.traceId,
    spanId: tc.spanId,
    ...(tc.parentId ? { parentSpanId: tc.parentId } : {}),
    ...(tc.traceState ? { traceState: tc.traceState } : {}),
    name: e.operation ?? operationName(e.cluster, inbound, self.service),
    kind: inbound ? SPAN_KIND.SERVER : SPAN_KIND.CLIENT,
    startNs: nsAt(tc.startMs),
    endNs: nowNs(),
    attributes: a,
    error,
    service: cfg.export?.serviceName ?? 'unknown',
  };
}

/** Where the route has no decorator: Istio's default routes' names, "<host>:<port>/*" of the cluster's service; Envoy's "ingress"/"egress" where no route took the request. */
export function operationName(cluster: string, inbound: boolean, service: string | undefined): string {
  const p = cluster.split('|');
  if (p[0] === 'outbound' && p.length === 4 && p[3]) return `${p[3]}:${p[1]}/*`;
  if (p[0] === 'inbound' && service) return `${service}:${p[1]}/*`;
  if (cluster !== '-') return cluster;
  return inbound ? 'ingress' : 'egress';
}

function metadataValue(md: Record<string, Record<string, unknown>> | undefined, filter: string, path: readonly string[]): string | undefined {
  let v: unknown = md?.[filter];
  for (const k of path) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return v === undefined || v === null ? undefined : typeof v === 'string' ? v : JSON.stringify(v);
}

export interface ExporterStats {
  cluster: string;
  path: string;
  queued: number;
  exported: number;
  /** Spans dropped: the queue was full. */
  dropped: number;
  /** Spans in batches the collector did not take (an error, or a non-2xx answer). */
  failed: number;
  lastError?: string;
}

/** One destination's queue and batches: at most one export request in flight. */
class Exporter {
  private readonly x: OtlpExport;
  private readonly opts: TracerOptions;
  private queue: OtlpSpan[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private exported = 0;
  private dropped = 0;
  private failed = 0;
  private lastError: string | undefined;
  private closed = false;

  constructor(x: OtlpExport, opts: TracerOptions) {
    this.x = x;
    this.opts = opts;
  }

  add(s: OtlpSpan): void {
    if (this.queue.length >= MAX_QUEUED_SPANS) {
      this.dropped++;
      return;
    }
    this.queue.push(s);
    // Never on the request path: the batch is encoded and sent from a timer or setImmediate.
    if (this.queue.length >= BATCH_SPANS && !this.sending) setImmediate(() => this.send());
    else if (!this.timer) {
      this.timer = setTimeout(() => this.send(), FLUSH_MS);
      this.timer.unref();
    }
  }

  async drain(): Promise<void> {
    while (this.queue.length || this.sending) {
      if (!this.sending) this.send();
      await this.sending;
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  stats(): ExporterStats {
    return { cluster: this.x.cluster, path: this.x.path, queued: this.queue.length, exported: this.exported, dropped: this.dropped, failed: this.failed, ...(this.lastError ? { lastError: this.lastError } : {}) };
  }

  private send(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.sending || this.closed || !this.queue.length) return;
    const batch = this.queue.splice(0, BATCH_SPANS);
    this.sending = this.post(batch).finally(() => {
      this.sending = undefined;
      if (this.queue.length && !this.closed) {
        this.timer = setTimeout(() => this.send(), this.queue.length >= BATCH_SPANS ? 0 : FLUSH_MS);
        this.timer.unref();
      }
    });
  }

  private async post(batch: OtlpSpan[]): Promise<void> {
    const x = this.x;
    try {
      const body = encodeTraces(x.serviceName, { name: 'weft', version: WEFT_VERSION }, batch);
      const call = callCluster(this.opts.calls, x.cluster, undefined, { method: 'POST', target: x.path, authority: x.authority, headers: ['content-type', 'application/x-protobuf', ...x.headers], body: body.length }, body, x.timeoutMs);
      const r = await call.reply;
      if (r.status < 200 || r.status > 299) throw new Error(`${x.authority}${x.path} (cluster ${x.cluster}) answered ${r.status}`);
      this.exported += batch.length;
    } catch (e) {
      this.failed += batch.length;
      const msg = (e as Error).message;
      if (msg !== this.lastError) this.opts.log(`tracing: ${batch.length} spans not exported to ${x.authority}${x.path} (cluster ${x.cluster}): ${msg}; failed spans are counted (/stats tracing)`);
      this.lastError = msg;
    }
  }
}
