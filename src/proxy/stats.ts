// Request counts by cluster and status code (and, for the sidecar's own errors, the reason), and
// TCP connections and bytes by cluster: a subscriber to the request path's telemetry events
// (telemetry/events.ts), never called from it. The full Istio metric set comes with the
// observability issue.
import type { Telemetry } from './telemetry/events.ts';
/** Opaque TCP through one cluster (Envoy's upstream_cx_* counters, by another name). */
export interface TcpCounts {
  cluster: string;
  /** Upstream connections made and handed to the byte pipe. */
  opened: number;
  /** Of those, the ones that have ended. */
  closed: number;
  /** Connection attempts that failed (each retry counts). */
  connectFailed: number;
  /** Bytes written to the upstream (from the client), and read from it (to the client), of closed connections. */
  bytesSent: number;
  bytesReceived: number;
}

/** Authorization decisions (Envoy's rbac.allowed, rbac.denied, rbac.shadow_allowed, rbac.shadow_denied), and denials by policy. */
export interface AuthzCounts {
  allowed: number;
  denied: number;
  shadowAllowed: number;
  shadowDenied: number;
  /** Denials by the deciding policy id ('none': no ALLOW policy matched). */
  deniedBy: Record<string, number>;
  /** Dry-run denials by the shadow policy id. */
  shadowDeniedBy: Record<string, number>;
}

export class Stats {
  readonly authz: AuthzCounts = { allowed: 0, denied: 0, shadowAllowed: 0, shadowDenied: 0, deniedBy: {}, shadowDeniedBy: {} };
  private readonly tcpCounts = new Map<string, TcpCounts>();
  /** Requests by the client's SPIFFE id (mutual TLS), as Istio's source_principal label. */
  readonly sources = new Map<string, number>();

  /** Counts what the sidecar's request path publishes. */
  subscribe(t: Telemetry): void {
    t.request.subscribe((e) => {
      this.count(e.cluster, e.status, e.reason);
      if (e.source) this.sources.set(e.source, (this.sources.get(e.source) ?? 0) + 1);
    });
    t.authz.subscribe((e) => {
      const a = this.authz;
      if (e.effect === 'allowed') a.allowed++;
      else {
        a.denied++;
        const id = e.policy ?? 'none';
        a.deniedBy[id] = (a.deniedBy[id] ?? 0) + 1;
      }
      for (const s of e.shadow ?? []) {
        if (s.effect === 'allowed') a.shadowAllowed++;
        else {
          a.shadowDenied++;
          const id = s.policy ?? 'none';
          a.shadowDeniedBy[id] = (a.shadowDeniedBy[id] ?? 0) + 1;
        }
      }
    });
    t.tcp.subscribe((e) => {
      const c = this.tcp(e.cluster);
      if (e.kind === 'open') c.opened++;
      else if (e.kind === 'connect_failed') c.connectFailed++;
      else {
        c.closed++;
        c.bytesSent += e.bytesSent;
        c.bytesReceived += e.bytesReceived;
      }
    });
  }

  tcp(cluster: string): TcpCounts {
    let c = this.tcpCounts.get(cluster);
    if (!c) this.tcpCounts.set(cluster, (c = { cluster, opened: 0, closed: 0, connectFailed: 0, bytesSent: 0, bytesReceived: 0 }));
    return c;
  }

  tcpRows(): TcpCounts[] {
    return [...this.tcpCounts.values()].map((c) => ({ ...c })).sort((a, b) => a.cluster.localeCompare(b.cluster));
  }

  // cluster -> "status" or "status reason" -> count. Nested maps: no key string built per request.
  private readonly counts = new Map<string, Map<number | string, number>>();

  count(cluster: string, status: number, reason?: string): void {
    let byCode = this.counts.get(cluster);
    if (!byCode) this.counts.set(cluster, (byCode = new Map()));
    const key = reason ? `${status} ${reason}` : status;
    byCode.set(key, (byCode.get(key) ?? 0) + 1);
  }

  rows(): { cluster: string; code: number; reason?: string; count: number }[] {
    const out: { cluster: string; code: number; reason?: string; count: number }[] = [];
    for (const [cluster, byCode] of this.counts) {
      for (const [key, count] of byCode) {
        if (typeof key === 'number') out.push({ cluster, code: key, count });
        else {
          const i = key.indexOf(' ');
          out.push({ cluster, code: Number(key.slice(0, i)), reason: key.slice(i + 1), count });
        }
      }
    }
    return out.sort((a, b) => a.cluster.localeCompare(b.cluster) || a.code - b.code);
  }

  prometheus(): string {
    const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
    const lines = ['# HELP weft_requests_total Requests through this sidecar by cluster and response code.', '# TYPE weft_requests_total counter'];
    for (const r of this.rows()) {
      lines.push(`weft_requests_total{cluster="${esc(r.cluster)}",code="${r.code}"${r.reason ? `,reason="${esc(r.reason)}"` : ''}} ${r.count}`);
    }
    const a = this.authz;
    lines.push('# HELP weft_authz_decisions_total Authorization decisions (AuthorizationPolicy) by effect; shadow: dry-run.', '# TYPE weft_authz_decisions_total counter');
    lines.push(`weft_authz_decisions_total{effect="allowed"} ${a.allowed}`, `weft_authz_decisions_total{effect="denied"} ${a.denied}`);
    lines.push(`weft_authz_decisions_total{effect="shadow_allowed"} ${a.shadowAllowed}`, `weft_authz_decisions_total{effect="shadow_denied"} ${a.shadowDenied}`);
    const tcp = this.tcpRows();
    const metric = (name: string, help: string, get: (c: TcpCounts) => number) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
      for (const c of tcp) lines.push(`${name}{cluster="${esc(c.cluster)}"} ${get(c)}`);
    };
    if (tcp.length) {
      metric('weft_tcp_connections_opened_total', 'Opaque TCP connections opened to the cluster.', (c) => c.opened);
      metric('weft_tcp_connections_closed_total', 'Opaque TCP connections to the cluster that have ended.', (c) => c.closed);
      metric('weft_tcp_connect_failures_total', 'Failed connection attempts to the cluster (each retry counts).', (c) => c.connectFailed);
      metric('weft_tcp_sent_bytes_total', 'Bytes sent to the cluster over opaque TCP (closed connections).', (c) => c.bytesSent);
      metric('weft_tcp_received_bytes_total', 'Bytes received from the cluster over opaque TCP (closed connections).', (c) => c.bytesReceived);
    }
    return lines.join('\n') + '\n';
  }
}
