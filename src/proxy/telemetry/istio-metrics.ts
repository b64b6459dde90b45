// Istio's standard metrics (istio.io: "Istio Standard Metrics"), the part Weft reports so far:
// istio_requests_total for HTTP and istio_tcp_connections_opened_total / _closed_total for opaque
// TCP, each with the identity labels of both ends as Istio names them, from the sidecar's own
// view of the exchange: "destination" reporter on inbound listeners (traffic_direction INBOUND),
// "source" on the others. A subscriber to the request path's events (events.ts), never called from
// the path. Labels take only values bounded by the mesh's edges (identities, workloads, services,
// codes, flags): never a path, a header or an id, so the series grow with edges only.
//
// Where a value comes from:
//   - this sidecar's end: its workload, namespace, service and SPIFFE id (the node and certificate);
//   - the other end: what its mTLS certificate proves (the SPIFFE id; its namespace; its workload,
//     the subject CN Weft's CA writes), "unknown" without mTLS (Istio's metadata exchange, which
//     would name plaintext peers, is not implemented);
//   - destination_service: the service host of the cluster (outbound|port|subset|host), or this
//     sidecar's own service on the inbound side;
//   - connection_security_policy: mutual_tls or none on the destination side, "unknown" on the
//     source side (as Istio).
import type { RuntimeConfig } from '../config.ts';
import { headerValue } from '../http/edits.ts';
import { peerPrincipal, peerWorkload } from '../tls/peer.ts';
import type { RequestEvent, TcpEvent, Telemetry } from './events.ts';
import { responseFlags } from './flags.ts';
import { guarded } from './guarded.ts';

export interface SelfIdentity {
  workload: string;
  namespace: string;
  /** The service host this workload serves (its inbound destination_service), if any. */
  service?: string;
  /** Its SPIFFE id (the workload certificate's). */
  principal: () => string | undefined;
}

const UNKNOWN = 'unknown';

/** The labels of istio_requests_total, in Istio's order. */
export const REQUEST_LABELS = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_principal',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_service',
  'request_protocol',
  'response_code',
  'response_flags',
  'connection_security_policy',
] as const;

type Labels = string[];

const NAMESPACE = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/[^/]+$/;
const namespaceOf = (principal: string | undefined) => (principal ? (NAMESPACE.exec(principal)?.[1] ?? UNKNOWN) : UNKNOWN);

export class IstioMetrics {
  private readonly config: () => RuntimeConfig;
  private readonly self: SelfIdentity;
  private readonly requests = new Map<string, { labels: Labels; count: number }>();
  private readonly tcpOpened = new Map<string, { labels: Labels; count: number }>();
  private readonly tcpClosed = new Map<string, { labels: Labels; count: number }>();

  private readonly log: (msg: string) => void;

  constructor(config: () => RuntimeConfig, self: SelfIdentity, log: (msg: string) => void = () => {}) {
    this.config = config;
    this.self = self;
    this.log = log;
  }

  subscribe(t: Telemetry): void {
    t.request.subscribe((e) => guarded(() => this.onRequest(e), this.log, 'metrics'));
    t.tcp.subscribe((e) => guarded(() => this.onTcp(e), this.log, 'metrics'));
  }

  private inbound(listener: string | undefined): boolean {
    return listener !== undefined && this.config().listeners.get(listener)?.direction === 'inbound';
  }

  /** The labels both metrics share: reporter and the two ends' identities, destination_service. */
  private identity(inbound: boolean, downPeer: string | undefined, downWorkload: string | undefined, upPeer: string | undefined, upWorkload: string | undefined, cluster: string): Labels {
    const me = this.self;
    if (inbound) {
      return ['destination', downWorkload ?? UNKNOWN, namespaceOf(downPeer), downPeer ?? UNKNOWN, me.workload, me.namespace, (downPeer && me.principal()) || UNKNOWN, me.service ?? UNKNOWN];
    }
    return ['source', me.workload, me.namespace, (upPeer && me.principal()) || UNKNOWN, upWorkload ?? UNKNOWN, namespaceOf(upPeer), upPeer ?? UNKNOWN, serviceOf(cluster)];
  }

  private onRequest(e: RequestEvent): void {
    const ds = e.ds;
    if (!ds) return;
    const inbound = this.inbound(ds.listenerName);
    const down = ds.sourcePrincipal?.();
    const downWorkload = down ? ds.peerWorkload?.() : undefined;
    const labels = this.identity(inbound, down, downWorkload, e.upstreamPeer, e.upstreamWorkload, e.cluster);
    const grpc = (headerValue(ds.head.headers, 'content-type') ?? '').startsWith('application/grpc');
    labels.push(grpc ? 'grpc' : 'http', String(e.status), responseFlags(e.reason), !inbound ? UNKNOWN : down ? 'mutual_tls' : 'none');
    count(this.requests, labels);
  }

  private onTcp(e: TcpEvent): void {
    if (e.kind === 'connect_failed') return;
    const inbound = this.inbound(e.listener);
    const down = peerPrincipal(e.down);
    const up = peerPrincipal(e.up);
    const labels = this.identity(inbound, down, peerWorkload(e.down), up, peerWorkload(e.up), e.cluster);
    labels.push('tcp', '-', !inbound ? UNKNOWN : down ? 'mutual_tls' : 'none');
    count(e.kind === 'open' ? this.tcpOpened : this.tcpClosed, labels);
  }

  /** The metrics in Prometheus's text exposition format (written by hand: no client library). */
  prometheus(): string {
    const out: string[] = [];
    series(out, 'istio_requests_total', 'Requests, by the identities of both ends (Istio standard metric).', REQUEST_LABELS, this.requests);
    const tcpLabels = [...REQUEST_LABELS.slice(0, 8), 'request_protocol', 'response_flags', 'connection_security_policy'];
    series(out, 'istio_tcp_connections_opened_total', 'TCP connections opened, by the identities of both ends (Istio standard metric).', tcpLabels, this.tcpOpened);
    series(out, 'istio_tcp_connections_closed_total', 'TCP connections closed, by the identities of both ends (Istio standard metric).', tcpLabels, this.tcpClosed);
    return out.join('\n') + (out.length ? '\n' : '');
  }

  /** Each series with its labels, for /stats. */
  json(): { requests: Record<string, string | number>[]; tcpOpened: Record<string, string | number>[]; tcpClosed: Record<string, string | number>[] } {
    const rows = (m: Map<string, { labels: Labels; count: number }>, names: readonly string[]) => [...m.values()].map((s) => ({ ...Object.fromEntries(names.map((n, i) => [n, s.labels[i]!])), count: s.count }));
    const tcpLabels = [...REQUEST_LABELS.slice(0, 8), 'request_protocol', 'response_flags', 'connection_security_policy'];
    return { requests: rows(this.requests, REQUEST_LABELS), tcpOpened: rows(this.tcpOpened, tcpLabels), tcpClosed: rows(this.tcpClosed, tcpLabels) };
  }
}

/** The service host of an outbound cluster name (outbound|port|subset|host), else "unknown". */
function serviceOf(cluster: string): string {
  if (!cluster.startsWith('outbound|')) return UNKNOWN;
  return cluster.split('|')[3] || UNKNOWN;
}

function count(m: Map<string, { labels: Labels; count: number }>, labels: Labels): void {
  const key = labels.join('\u0000');
  const s = m.get(key);
  if (s) s.count++;
  else m.set(key, { labels, count: 1 });
}

const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

function series(out: string[], name: string, help: string, names: readonly string[], m: Map<string, { labels: Labels; count: number }>): void {
  if (!m.size) return;
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
  for (const s of m.values()) out.push(`${name}{${names.map((n, i) => `${n}="${esc(s.labels[i]!)}"`).join(',')}} ${s.count}`);
}
