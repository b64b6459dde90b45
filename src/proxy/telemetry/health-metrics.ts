// The sidecar's own health on /stats/prometheus, weft_ prefixed: the config it runs (version per xDS
// type, whether the control plane has it), its workload certificate's remaining life, how late its
// event loop runs, its memory and its open connections. Read when scraped, except the event loop
// delay, which node:perf_hooks samples all along and this module reads per 10-second window.
import { header, sample } from './exposition.ts';

// Taken as sidecar.ts takes its builtins (process.getBuiltinModule): no ES module namespace built.
const { monitorEventLoopDelay } = process.getBuiltinModule('node:perf_hooks');
type IntervalHistogram = ReturnType<typeof monitorEventLoopDelay>;

export interface HealthSources {
  xds: () => { connected: boolean; reconnects: number; types: Record<string, { version: string; lastNack?: string }> };
  /** The workload certificate's notAfter (ms since the epoch), or undefined while it has none. */
  certNotAfter: () => number | undefined;
  downstreamConnections: () => number;
  /** Upstream connections by kind: "http" (pooled, HTTP/1.1 and HTTP/2), "tcp" (proxied TCP and tunnels). */
  upstreamConnections: () => Record<string, number>;
}

/** How long one event-loop delay window lasts; the gauges show the last complete one. */
const WINDOW_MS = 10_000;

export class HealthMetrics {
  private readonly src: HealthSources;
  private readonly monitor: IntervalHistogram;
  private readonly timer: NodeJS.Timeout;
  /** The last complete window's delay percentiles and maximum, in seconds (0 before the first window ends). */
  private lag = { p50: 0, p99: 0, max: 0 };

  constructor(src: HealthSources, windowMs = WINDOW_MS) {
    this.src = src;
    this.monitor = monitorEventLoopDelay({ resolution: 10 });
    this.monitor.enable();
    this.timer = setInterval(() => this.rotate(), windowMs).unref();
  }

  private rotate(): void {
    const m = this.monitor;
    this.lag = m.count ? { p50: m.percentile(50) / 1e9, p99: m.percentile(99) / 1e9, max: m.max / 1e9 } : { p50: 0, p99: 0, max: 0 };
    m.reset();
  }

  stop(): void {
    clearInterval(this.timer);
    this.monitor.disable();
  }

  prometheus(): string {
    const out: string[] = [];
    const x = this.src.xds();
    header(out, 'weft_xds_connected', 'gauge', '1 while the xDS stream to the control plane is up, else 0.');
    sample(out, 'weft_xds_connected', '', x.connected ? 1 : 0);
    header(out, 'weft_xds_reconnects_total', 'counter', 'Times the xDS stream was opened again after it ended.');
    sample(out, 'weft_xds_reconnects_total', '', x.reconnects);
    const types = Object.entries(x.types).sort(([a], [b]) => a.localeCompare(b));
    header(out, 'weft_xds_config_version', 'gauge', 'The config version in use per xDS type (CDS, EDS, LDS, RDS, SDS): the version_info number, or a 32-bit hash of a version that is not a number (as Envoy\'s *.version).');
    for (const [t, s] of types) sample(out, 'weft_xds_config_version', `type="${t}"`, versionNumber(s.version));
    header(out, 'weft_xds_config_rejected', 'gauge', '1 when the last config of the type was rejected (NACK), else 0.');
    for (const [t, s] of types) sample(out, 'weft_xds_config_rejected', `type="${t}"`, s.lastNack ? 1 : 0);
    const notAfter = this.src.certNotAfter();
    if (notAfter !== undefined) {
      header(out, 'weft_workload_cert_expiry_seconds', 'gauge', 'Seconds until the workload certificate expires (negative: expired).');
      sample(out, 'weft_workload_cert_expiry_seconds', '', Math.round((notAfter - Date.now()) / 1000));
    }
    const lag = this.lag;
    header(out, 'weft_event_loop_delay_seconds', 'gauge', 'Event-loop delay over the last 10-second window (perf_hooks monitorEventLoopDelay): the median, the 99th percentile and the maximum.');
    sample(out, 'weft_event_loop_delay_seconds', 'quantile="0.5"', lag.p50);
    sample(out, 'weft_event_loop_delay_seconds', 'quantile="0.99"', lag.p99);
    sample(out, 'weft_event_loop_delay_seconds', 'quantile="1"', lag.max);
    const mem = process.memoryUsage();
    header(out, 'weft_process_heap_used_bytes', 'gauge', 'V8 heap in use, bytes.');
    sample(out, 'weft_process_heap_used_bytes', '', mem.heapUsed);
    header(out, 'weft_process_resident_memory_bytes', 'gauge', 'Resident set size of the sidecar process, bytes.');
    sample(out, 'weft_process_resident_memory_bytes', '', mem.rss);
    header(out, 'weft_downstream_connections', 'gauge', 'Client connections open on the listeners.');
    sample(out, 'weft_downstream_connections', '', this.src.downstreamConnections());
    header(out, 'weft_upstream_connections', 'gauge', 'Upstream connections open, by kind (http: the pools; tcp: proxied TCP and tunnels).');
    for (const [kind, n] of Object.entries(this.src.upstreamConnections())) sample(out, 'weft_upstream_connections', `kind="${kind}"`, n);
    return out.join('\n') + '\n';
  }
}

/** A version_info as a number: itself when it is one, else FNV-1a over its characters. */
export function versionNumber(v: string): number {
  if (/^\d{1,15}$/.test(v)) return Number(v);
  let h = 0x811c9dc5;
  for (let i = 0; i < v.length; i++) h = Math.imul(h ^ v.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}
