// Istio's standard metrics (istio.io "Istio Standard Metrics") with Istio's names, labels and
// buckets, so that Istio's Grafana dashboards and PromQL work unchanged:
//   HTTP and gRPC: istio_requests_total, istio_request_duration_milliseconds, istio_request_bytes,
//     istio_response_bytes (histograms, Envoy's default buckets), istio_request_messages_total and
//     istio_response_messages_total (gRPC only);
//   TCP: istio_tcp_connections_opened_total, istio_tcp_connections_closed_total,
//     istio_tcp_received_bytes_total (client to server), istio_tcp_sent_bytes_total (server to client).
// Reporter "destination" on inbound listeners, "source" on the others. A subscriber to the request
// path's events (events.ts), never called from the path. The labels (istio-labels.ts) take only
// values bounded by the mesh's edges: never a path, a header, a port or an id, so the series grow
// with service-to-service edges only. Each event finds its edge's series by its label values (series-index.ts) and updates all of them.
import type net from 'node:net';
import type { RuntimeConfig } from '../config.ts';
import { isGrpc } from '../http/grpc.ts';
import { peerPrincipal, peerWorkload } from '../tls/peer.ts';
import type { RequestEvent, TcpEvent, Telemetry } from './events.ts';
import { header, histogramLines, labelText, sample } from './exposition.ts';
import { responseFlags } from './flags.ts';
import { guarded } from './guarded.ts';
import { Histogram } from './histogram.ts';
import { SeriesIndex } from './series-index.ts';
import { type Peer, REQUEST_LABELS, TCP_LABELS, UNKNOWN, clusterService, edgeLabels, provenPeer, selfPeer, serviceLabels } from './istio-labels.ts';

export { REQUEST_LABELS, TCP_LABELS } from './istio-labels.ts';

export interface SelfIdentity {
  workload: string;
  namespace: string;
  /** Its workload labels (app, version, service.istio.io/canonical-name, ...), as the node metadata carries them. */
  labels?: Record<string, string>;
  /** The service host this workload serves (its inbound destination_service), if any. */
  service?: string;
  /** Its SPIFFE id (the workload certificate's). */
  principal: () => string | undefined;
}

/** Every HTTP metric of one label set. */
interface RequestSeries {
  labels: string[];
  /** The labels as the text format writes them, made at the first scrape. */
  text?: string;
  requests: number;
  duration: Histogram;
  requestBytes: Histogram;
  responseBytes: Histogram;
  /** gRPC only. */
  requestMessages: number;
  responseMessages: number;
  grpc: boolean;
}

/** Every TCP metric of one label set. */
interface TcpSeries {
  labels: string[];
  text?: string;
  opened: number;
  closed: number;
  /** Client to server (Istio's received), and server to client (sent). */
  received: number;
  sent: number;
}

/** A connection still open: how much of its bytes the series has counted so far. */
interface LiveTcp {
  series: TcpSeries;
  up: net.Socket;
  received: number;
  sent: number;
}

export class IstioMetrics {
  private readonly config: () => RuntimeConfig;
  private readonly self: SelfIdentity;
  private readonly own: Omit<Peer, 'principal'>;
  private readonly ownService: [string, string, string];
  private readonly requests = new SeriesIndex<RequestSeries>();
  private readonly tcp = new SeriesIndex<TcpSeries>();
  /** Open connections by their upstream socket: their bytes so far are counted at each scrape, as Envoy reports long connections periodically. */
  private readonly live = new Map<net.Socket, LiveTcp>();
  private readonly log: (msg: string) => void;

  constructor(config: () => RuntimeConfig, self: SelfIdentity, log: (msg: string) => void = () => {}) {
    this.config = config;
    this.self = self;
    this.own = selfPeer(self.workload, self.namespace, self.labels ?? {});
    this.ownService = serviceLabels(self.service);
    this.log = log;
  }

  subscribe(t: Telemetry): void {
    t.request.subscribe(guarded((e) => this.onRequest(e), this.log, 'metrics'));
    t.tcp.subscribe(guarded((e) => this.onTcp(e), this.log, 'metrics'));
  }

  private inbound(listener: string | undefined): boolean {
    return listener !== undefined && this.config().listeners.get(listener)?.direction === 'inbound';
  }

  /** The labels of an edge (reporter, both ends, the service), and of an outcome: a new series' labels. */
  private labels(inbound: boolean, down: string | undefined, downWorkload: string | undefined, up: string | undefined, upWorkload: string | undefined, cluster: string, mine: string, outcome: string[]): string[] {
    const me: Peer = { ...this.own, principal: mine };
    const edge = inbound ? edgeLabels('destination', provenPeer(down, downWorkload), me, this.ownService) : edgeLabels('source', me, provenPeer(up, upWorkload), clusterService(cluster));
    return [...edge, ...outcome];
  }

  /** This sidecar's principal as a label: only when the connection was mTLS. */
  private mine(peer: string | undefined): string {
    return peer ? (this.self.principal() ?? UNKNOWN) : UNKNOWN;
  }

  private onRequest(e: RequestEvent): void {
    const ds = e.ds;
    if (!ds) return;
    const inbound = this.inbound(ds.listenerName);
    const down = ds.sourcePrincipal?.();
    const grpc = isGrpc(ds.head.headers);
    const downWorkload = down ? ds.peerWorkload?.() : undefined;
    const { upstreamPeer: up, upstreamWorkload: upWorkload, cluster, status } = e;
    const mine = this.mine(inbound ? down : up);
    const grpcStatus = grpc ? grpcStatusLabel(e.grpcStatus) : '';
    const flags = responseFlags(e.reason);
    // The edge, then the outcome; the cluster names the service only on the source side.
    const keys = inbound ? [true, down ?? '', downWorkload ?? '', mine, grpc, status, grpcStatus, flags] : [false, up ?? '', upWorkload ?? '', mine, cluster, grpc, status, grpcStatus, flags];
    const s = this.requests.get(keys, () => ({
      labels: this.labels(inbound, down, downWorkload, up, upWorkload, cluster, mine, [grpc ? 'grpc' : 'http', String(status), grpcStatus, flags, securityPolicy(inbound, down)]),
      requests: 0,
      duration: new Histogram(),
      requestBytes: new Histogram(),
      responseBytes: new Histogram(),
      requestMessages: 0,
      responseMessages: 0,
      grpc,
    }));
    s.requests++;
    s.duration.observe(e.durationMs ?? 0);
    s.requestBytes.observe(e.bytesReceived ?? 0);
    s.responseBytes.observe(e.bytesSent ?? 0);
    if (grpc) {
      s.requestMessages += e.requestMessages ?? 0;
      s.responseMessages += e.responseMessages ?? 0;
    }
  }

  private onTcp(e: TcpEvent): void {
    if (e.kind === 'connect_failed') return;
    if (e.kind === 'close' && e.up) {
      const l = this.live.get(e.up);
      if (l) {
        this.live.delete(e.up);
        l.series.closed++;
        l.series.received += e.bytesSent - l.received;
        l.series.sent += e.bytesReceived - l.sent;
        return;
      }
    }
    const inbound = this.inbound(e.listener);
    const down = peerPrincipal(e.down);
    const up = peerPrincipal(e.up);
    const downWorkload = peerWorkload(e.down);
    const upWorkload = peerWorkload(e.up);
    const mine = this.mine(inbound ? down : up);
    const keys = inbound ? [true, down ?? '', downWorkload ?? '', mine] : [false, up ?? '', upWorkload ?? '', mine, e.cluster];
    const s = this.tcp.get(keys, () => ({ labels: this.labels(inbound, down, downWorkload, up, upWorkload, e.cluster, mine, ['tcp', '-', securityPolicy(inbound, down)]), opened: 0, closed: 0, received: 0, sent: 0 }));
    if (e.kind === 'open') {
      s.opened++;
      if (e.up) this.live.set(e.up, { series: s, up: e.up, received: 0, sent: 0 });
    } else {
      // A close whose open was not seen (the subscriber came later): all of it counts now.
      s.closed++;
      s.received += e.bytesSent;
      s.sent += e.bytesReceived;
    }
  }

  /** Bytes of connections still open, counted up to now. */
  private catchUp(): void {
    for (const l of this.live.values()) {
      const received = l.up.bytesWritten;
      const sent = l.up.bytesRead;
      l.series.received += received - l.received;
      l.series.sent += sent - l.sent;
      l.received = received;
      l.sent = sent;
    }
  }

  /** The metrics in Prometheus's text exposition format. */
  prometheus(): string {
    this.catchUp();
    const out: string[] = [];
    const reqs = this.requests.all.map((s) => ({ s, l: (s.text ??= labelText(REQUEST_LABELS, s.labels)) }));
    if (reqs.length) {
      header(out, 'istio_requests_total', 'counter', 'Requests handled, by both ends, service, protocol and outcome (Istio standard metric).');
      for (const { s, l } of reqs) sample(out, 'istio_requests_total', l, s.requests);
      const hist = (name: string, help: string, get: (s: RequestSeries) => Histogram) => {
        header(out, name, 'histogram', help);
        for (const { s, l } of reqs) histogramLines(out, name, l, get(s));
      };
      hist('istio_request_duration_milliseconds', 'Request duration in milliseconds, from the request head to the end of the exchange (Istio standard metric).', (s) => s.duration);
      hist('istio_request_bytes', 'Request body sizes in bytes (Istio standard metric).', (s) => s.requestBytes);
      hist('istio_response_bytes', 'Response body sizes in bytes (Istio standard metric).', (s) => s.responseBytes);
      const grpc = reqs.filter((r) => r.s.grpc);
      if (grpc.length) {
        header(out, 'istio_request_messages_total', 'counter', 'gRPC messages sent by clients (Istio standard metric).');
        for (const { s, l } of grpc) sample(out, 'istio_request_messages_total', l, s.requestMessages);
        header(out, 'istio_response_messages_total', 'counter', 'gRPC messages sent by servers (Istio standard metric).');
        for (const { s, l } of grpc) sample(out, 'istio_response_messages_total', l, s.responseMessages);
      }
    }
    const tcp = this.tcp.all.map((s) => ({ s, l: (s.text ??= labelText(TCP_LABELS, s.labels)) }));
    if (tcp.length) {
      const counter = (name: string, help: string, get: (s: TcpSeries) => number) => {
        header(out, name, 'counter', help);
        for (const { s, l } of tcp) sample(out, name, l, get(s));
      };
      counter('istio_tcp_connections_opened_total', 'TCP connections opened (Istio standard metric).', (s) => s.opened);
      counter('istio_tcp_connections_closed_total', 'TCP connections closed (Istio standard metric).', (s) => s.closed);
      counter('istio_tcp_received_bytes_total', 'TCP bytes received from the client, towards the server (Istio standard metric).', (s) => s.received);
      counter('istio_tcp_sent_bytes_total', 'TCP bytes sent to the client, from the server (Istio standard metric).', (s) => s.sent);
    }
    return out.length ? out.join('\n') + '\n' : '';
  }

  /** Each series with its labels, for /stats. */
  json(): Record<'requests' | 'tcp' | 'tcpOpened' | 'tcpClosed', Record<string, string | number>[]> {
    const named = (names: readonly string[], labels: string[]) => Object.fromEntries(names.map((n, i) => [n, labels[i]!]));
    const tcp = this.tcp.all;
    return {
      // As before: each TCP series' opened and closed counts apart.
      tcpOpened: tcp.map((s) => ({ ...named(TCP_LABELS, s.labels), count: s.opened })),
      tcpClosed: tcp.map((s) => ({ ...named(TCP_LABELS, s.labels), count: s.closed })),
      requests: this.requests.all.map((s) => ({ ...named(REQUEST_LABELS, s.labels), count: s.requests, durationMsSum: s.duration.sum, requestBytesSum: s.requestBytes.sum, responseBytesSum: s.responseBytes.sum, ...(s.grpc ? { requestMessages: s.requestMessages, responseMessages: s.responseMessages } : {}) })),
      tcp: tcp.map((s) => ({ ...named(TCP_LABELS, s.labels), opened: s.opened, closed: s.closed, receivedBytes: s.received, sentBytes: s.sent })),
    };
  }
}

/**
 * grpc_response_status: gRPC's codes 0 to 16, as Envoy reads grpc-status (Grpc::Common::getGrpcStatus);
 * anything else the upstream sent (text, 17 and up) is one value, "unknown", so that an upstream
 * cannot make a series per value it invents.
 */
export function grpcStatusLabel(raw: string | undefined): string {
  if (raw === undefined || !/^\d{1,2}$/.test(raw)) return UNKNOWN;
  const n = Number(raw);
  return n <= 16 ? String(n) : UNKNOWN;
}

/** connection_security_policy: as Istio, known only to the destination side. */
function securityPolicy(inbound: boolean, down: string | undefined): string {
  return !inbound ? UNKNOWN : down ? 'mutual_tls' : 'none';
}
