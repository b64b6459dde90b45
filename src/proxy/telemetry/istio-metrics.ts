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
// A listener with Istio's stats filter (istio.stats, a Telemetry's metrics: xds-client/convert-stats.ts)
// reports as it says: metrics dropped, labels removed, replaced or added (their values from CEL
// expressions over the exchange, once per exchange: a user's expression over a path or an id makes
// a series per value, as in Istio: that is their choice). Metrics whose labels are the standard ones
// share the standard series; the others are kept by their label names and values. A listener
// without the filter takes the path it always took: nothing evaluated, nothing more allocated.
import type net from 'node:net';
import type { RuntimeConfig } from '../config.ts';
import { isGrpc } from '../http/grpc.ts';
import { peerMetadataOf, peerPrincipal, peerWorkload } from '../tls/peer.ts';
import { payloadRead, payloadWritten } from '../tcp/peer-exchange.ts';
import type { RequestEvent, TcpEvent, Telemetry } from './events.ts';
import type { PeerMetadata } from '../http/peer-metadata.ts';
import { header, histogramLines, labelText, sample } from './exposition.ts';
import { responseFlags } from './flags.ts';
import { guarded } from './guarded.ts';
import { Histogram } from './histogram.ts';
import { type KeyValue, SeriesIndex } from './series-index.ts';
import { type Peer, REQUEST_LABELS, TCP_LABELS, UNKNOWN, clusterService, edgeLabels, provenPeer, selfPeer, serviceLabels } from './istio-labels.ts';
import { HTTP_METRICS, type IstioStatsConfig, type StatsGroup, TCP_METRICS } from '../xds-client/convert-stats.ts';
import type { ListenerConfig } from '../xds-client/convert.ts';
import { requestLogEntry, tcpLogEntry } from './access-log.ts';

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
  /** The label names (REQUEST_LABELS but where a Telemetry changed them) and values. */
  names: readonly string[];
  labels: string[];
  /** Which metrics it reports (REQ, DUR, ... below): those some listener updates it for. */
  has: number;
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
  names: readonly string[];
  labels: string[];
  /** Which metrics it reports (OPENED, CLOSED, SENT, RECEIVED below). */
  has: number;
  text?: string;
  opened: number;
  closed: number;
  /** Client to server (Istio's received), and server to client (sent). */
  received: number;
  sent: number;
}

/** A connection still open: how much of its bytes the series has counted so far. */
interface LiveTcp {
  /** The series its close and its bytes count in (one series without a Telemetry; a dropped metric's: none). */
  closedIn?: TcpSeries;
  receivedIn?: TcpSeries;
  sentIn?: TcpSeries;
  up: net.Socket;
  received: number;
  sent: number;
}

/** A metric's bit in a StatsGroup's mask: its place in HTTP_METRICS or TCP_METRICS (convert-stats.ts). */
const bit = (metrics: readonly string[], name: string): number => 1 << metrics.indexOf(name);
const REQ = bit(HTTP_METRICS, 'requests_total');
const DUR = bit(HTTP_METRICS, 'request_duration_milliseconds');
const REQ_BYTES = bit(HTTP_METRICS, 'request_bytes');
const RESP_BYTES = bit(HTTP_METRICS, 'response_bytes');
const REQ_MSGS = bit(HTTP_METRICS, 'request_messages_total');
const RESP_MSGS = bit(HTTP_METRICS, 'response_messages_total');
const ALL_HTTP = (1 << HTTP_METRICS.length) - 1;
const OPENED = bit(TCP_METRICS, 'tcp_connections_opened_total');
const CLOSED = bit(TCP_METRICS, 'tcp_connections_closed_total');
const SENT = bit(TCP_METRICS, 'tcp_sent_bytes_total');
const RECEIVED = bit(TCP_METRICS, 'tcp_received_bytes_total');
const ALL_TCP = (1 << TCP_METRICS.length) - 1;
const NO_VALUES: readonly string[] = [];

export class IstioMetrics {
  private readonly config: () => RuntimeConfig;
  private readonly self: SelfIdentity;
  private readonly own: Omit<Peer, 'principal'>;
  private readonly ownService: [string, string, string];
  private readonly requests = new SeriesIndex<RequestSeries>();
  /** An exchange's series key, filled per event (onRequest). */
  private readonly keys: KeyValue[] = [false, '', '', '', '', '', false, 0, '', ''];
  private readonly tcp = new SeriesIndex<TcpSeries>();
  /** Series whose labels a Telemetry changed, by their label names. */
  private readonly otherRequests = new Map<string, SeriesIndex<RequestSeries>>();
  private readonly otherTcp = new Map<string, SeriesIndex<TcpSeries>>();
  /**
   * A group's series by the edge's keys and its expressions' values (StatsGroup.key): found
   * without making its labels; made (once) from the labels, in otherRequests, where groups that
   * come to the same labels share a series.
   */
  private readonly groupRequests = new Map<string, SeriesIndex<RequestSeries>>();
  private readonly groupTcp = new Map<string, SeriesIndex<TcpSeries>>();
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

  private listener(name: string | undefined): ListenerConfig | undefined {
    return name === undefined ? undefined : this.config().listeners.get(name);
  }

  /** A CONNECT tunnel's TCP metrics: its outbound listener's stats config (found once per config). */
  private readonly tunnelStats = new WeakMap<object, { s: IstioStatsConfig | undefined }>();
  private tunnel(): IstioStatsConfig | undefined {
    const c = this.config();
    let t = this.tunnelStats.get(c);
    if (!t) {
      const l = [...c.listeners.values()].find((x) => x.direction === 'outbound' && x.kind === 'http');
      this.tunnelStats.set(c, (t = { s: l?.istioStats }));
    }
    return t.s;
  }

  /** The labels of an edge (reporter, both ends, the service), and of an outcome: a new series' labels. */
  private labels(inbound: boolean, down: string | undefined, downWorkload: string | undefined, up: string | undefined, upWorkload: string | undefined, cluster: string, mine: string, outcome: string[], meta?: PeerMetadata): string[] {
    const me: Peer = { ...this.own, principal: mine };
    const edge = inbound ? edgeLabels('destination', provenPeer(down, downWorkload, meta), me, this.ownService) : edgeLabels('source', me, provenPeer(up, upWorkload, meta), clusterService(cluster));
    return [...edge, ...outcome];
  }

  /** This sidecar's principal as a label: only when the connection was mTLS. */
  private mine(peer: string | undefined): string {
    return peer ? (this.self.principal() ?? UNKNOWN) : UNKNOWN;
  }

  private onRequest(e: RequestEvent): void {
    const ds = e.ds;
    if (!ds) return;
    const l = this.listener(ds.listenerName);
    const inbound = l?.direction === 'inbound';
    const down = ds.sourcePrincipal?.();
    const grpc = isGrpc(ds.head.headers);
    const downWorkload = down ? ds.peerWorkload?.() : undefined;
    const { upstreamPeer: up, upstreamWorkload: upWorkload, cluster, status } = e;
    const mine = this.mine(inbound ? down : up);
    const grpcStatus = grpc ? grpcStatusLabel(e.grpcStatus) : '';
    const flags = responseFlags(e.reason);
    // The edge (the other end, its metadata from the exchange: the same object for the same
    // metadata), then the outcome; the cluster names the service only on the source side. The key
    // array is reused (the index keeps its values, not it): an event allocates nothing here once
    // its series exist. Nothing called from here may publish an event (it would refill it).
    const meta = inbound ? ds.peerMetadata : e.upstreamMetadata;
    const keys = this.keys;
    keys[0] = inbound;
    keys[1] = (inbound ? down : up) ?? '';
    keys[2] = (inbound ? downWorkload : upWorkload) ?? '';
    keys[3] = meta ?? '';
    keys[4] = mine;
    keys[5] = inbound ? '' : cluster;
    keys[6] = grpc;
    keys[7] = status;
    keys[8] = grpcStatus;
    keys[9] = flags;
    const stats = l?.istioStats;
    if (stats) return this.requestWith(stats, e, ds, keys, () => this.labels(inbound, down, downWorkload, up, upWorkload, cluster, mine, outcomeLabels(grpc, status, grpcStatus, flags, inbound, down), meta), grpc);
    // A new series' labels are made only when there is none yet (no closure per event).
    const s = this.requests.find(keys) ?? this.requests.add(keys, requestSeries(REQUEST_LABELS, this.labels(inbound, down, downWorkload, up, upWorkload, cluster, mine, outcomeLabels(grpc, status, grpcStatus, flags, inbound, down), meta), ALL_HTTP, grpc));
    // A series a stats filter made may lack some metrics: without the filter it reports them all.
    s.has = ALL_HTTP;
    s.requests++;
    s.duration.observe(e.durationMs ?? 0);
    s.requestBytes.observe(e.bytesReceived ?? 0);
    s.responseBytes.observe(e.bytesSent ?? 0);
    if (grpc) {
      s.requestMessages += e.requestMessages ?? 0;
      s.responseMessages += e.responseMessages ?? 0;
    }
  }

  /** An exchange on a listener with Istio's stats filter: each group of metrics that share labels updates its series. */
  private requestWith(stats: IstioStatsConfig, e: RequestEvent, ds: NonNullable<RequestEvent['ds']>, keys: readonly KeyValue[], edge: () => string[], grpc: boolean): void {
    const values = stats.httpReads ? evaluate(stats, requestLogEntry(e, ds, this.self.principal)) : NO_VALUES;
    for (const g of stats.http) {
      let s: RequestSeries;
      if (g.standard) s = this.requests.get(keys, () => requestSeries(REQUEST_LABELS, edge(), 0, grpc));
      else {
        s = indexOf(this.groupRequests, g.key).get(groupKeys(keys, g, values), () => {
          const labels = relabel(g, edge(), values);
          return indexOf(this.otherRequests, g.namesKey).get(labels, () => requestSeries(g.names, labels, 0, grpc));
        });
        if (grpc) s.grpc = true;
      }
      const m = g.mask;
      s.has |= m;
      if (m & REQ) s.requests++;
      if (m & DUR) s.duration.observe(e.durationMs ?? 0);
      if (m & REQ_BYTES) s.requestBytes.observe(e.bytesReceived ?? 0);
      if (m & RESP_BYTES) s.responseBytes.observe(e.bytesSent ?? 0);
      if (grpc) {
        if (m & REQ_MSGS) s.requestMessages += e.requestMessages ?? 0;
        if (m & RESP_MSGS) s.responseMessages += e.responseMessages ?? 0;
      }
    }
  }

  private onTcp(e: TcpEvent): void {
    if (e.kind === 'connect_failed') return;
    if (e.kind === 'close' && e.up) {
      const l = this.live.get(e.up);
      if (l) {
        this.live.delete(e.up);
        if (l.closedIn) l.closedIn.closed++;
        if (l.receivedIn) l.receivedIn.received += e.bytesSent - l.received;
        if (l.sentIn) l.sentIn.sent += e.bytesReceived - l.sent;
        return;
      }
    }
    const listener = this.listener(e.listener);
    const inbound = listener?.direction === 'inbound';
    const down = peerPrincipal(e.down);
    const up = peerPrincipal(e.up);
    const downWorkload = peerWorkload(e.down);
    const upWorkload = peerWorkload(e.up);
    const mine = this.mine(inbound ? down : up);
    // The other end's metadata from Istio's TCP metadata exchange (tcp/peer-exchange.ts), where it sent any to believe.
    const meta = peerMetadataOf(inbound ? e.down : e.up);
    const keys = inbound ? [true, down ?? '', downWorkload ?? '', mine, '', meta ?? ''] : [false, up ?? '', upWorkload ?? '', mine, e.cluster, meta ?? ''];
    const edge = () => this.labels(inbound, down, downWorkload, up, upWorkload, e.cluster, mine, ['tcp', '-', securityPolicy(inbound, down)], meta);
    const stats = e.listener === undefined ? this.tunnel() : listener?.istioStats;
    if (stats) return this.tcpWith(stats, e, keys, edge);
    const s = this.tcp.get(keys, () => tcpSeries(TCP_LABELS, edge(), ALL_TCP));
    s.has = ALL_TCP;
    if (e.kind === 'open') {
      s.opened++;
      if (e.up) this.live.set(e.up, { closedIn: s, receivedIn: s, sentIn: s, up: e.up, received: 0, sent: 0 });
    } else {
      // A close whose open was not seen (the subscriber came later): all of it counts now.
      s.closed++;
      s.received += e.bytesSent;
      s.sent += e.bytesReceived;
    }
  }

  /** A connection on a listener with Istio's stats filter: as requestWith, the labels evaluated when it opens (or closes, unseen open). */
  private tcpWith(stats: IstioStatsConfig, e: Extract<TcpEvent, { kind: 'open' | 'close' }>, keys: readonly KeyValue[], edge: () => string[]): void {
    const values = stats.tcpReads ? evaluate(stats, tcpLogEntry(e, this.self.principal)) : NO_VALUES;
    const live: LiveTcp | undefined = e.kind === 'open' && e.up ? { up: e.up, received: 0, sent: 0 } : undefined;
    for (const g of stats.tcp) {
      let s: TcpSeries;
      if (g.standard) s = this.tcp.get(keys, () => tcpSeries(TCP_LABELS, edge(), 0));
      else {
        s = indexOf(this.groupTcp, g.key).get(groupKeys(keys, g, values), () => {
          const labels = relabel(g, edge(), values);
          return indexOf(this.otherTcp, g.namesKey).get(labels, () => tcpSeries(g.names, labels, 0));
        });
      }
      const m = g.mask;
      s.has |= m;
      if (live) {
        if (m & OPENED) s.opened++;
        if (m & CLOSED) live.closedIn = s;
        if (m & RECEIVED) live.receivedIn = s;
        if (m & SENT) live.sentIn = s;
      } else if (e.kind === 'close') {
        if (m & CLOSED) s.closed++;
        if (m & RECEIVED) s.received += e.bytesSent;
        if (m & SENT) s.sent += e.bytesReceived;
      } else if (m & OPENED) s.opened++;
    }
    if (live) this.live.set(live.up, live);
  }

  /** Bytes of connections still open, counted up to now. */
  private catchUp(): void {
    for (const l of this.live.values()) {
      const received = payloadWritten(l.up);
      const sent = payloadRead(l.up);
      if (l.receivedIn) l.receivedIn.received += received - l.received;
      if (l.sentIn) l.sentIn.sent += sent - l.sent;
      l.received = received;
      l.sent = sent;
    }
  }

  /** The metrics in Prometheus's text exposition format. */
  prometheus(): string {
    this.catchUp();
    const out: string[] = [];
    const reqs = this.allRequests().map((s) => ({ s, l: (s.text ??= labelText(s.names, s.labels)) }));
    const of = (b: number) => withBit(reqs, b);
    const counter = <S>(rows: { s: S; l: string }[], name: string, help: string, get: (s: S) => number) => {
      if (!rows.length) return;
      header(out, name, 'counter', help);
      for (const { s, l } of rows) sample(out, name, l, get(s));
    };
    const hist = (b: number, name: string, help: string, get: (s: RequestSeries) => Histogram) => {
      const rows = of(b);
      if (!rows.length) return;
      header(out, name, 'histogram', help);
      for (const { s, l } of rows) histogramLines(out, name, l, get(s));
    };
    counter(of(REQ), 'istio_requests_total', 'Requests handled, by both ends, service, protocol and outcome (Istio standard metric).', (s) => s.requests);
    hist(DUR, 'istio_request_duration_milliseconds', 'Request duration in milliseconds, from the request head to the end of the exchange (Istio standard metric).', (s) => s.duration);
    hist(REQ_BYTES, 'istio_request_bytes', 'Request body sizes in bytes (Istio standard metric).', (s) => s.requestBytes);
    hist(RESP_BYTES, 'istio_response_bytes', 'Response body sizes in bytes (Istio standard metric).', (s) => s.responseBytes);
    const grpc = reqs.filter((r) => r.s.grpc);
    counter(withBit(grpc, REQ_MSGS), 'istio_request_messages_total', 'gRPC messages sent by clients (Istio standard metric).', (s) => s.requestMessages);
    counter(withBit(grpc, RESP_MSGS), 'istio_response_messages_total', 'gRPC messages sent by servers (Istio standard metric).', (s) => s.responseMessages);
    const tcp = this.allTcp().map((s) => ({ s, l: (s.text ??= labelText(s.names, s.labels)) }));
    const tcpOf = (b: number) => withBit(tcp, b);
    counter(tcpOf(OPENED), 'istio_tcp_connections_opened_total', 'TCP connections opened (Istio standard metric).', (s) => s.opened);
    counter(tcpOf(CLOSED), 'istio_tcp_connections_closed_total', 'TCP connections closed (Istio standard metric).', (s) => s.closed);
    counter(tcpOf(RECEIVED), 'istio_tcp_received_bytes_total', 'TCP bytes received from the client, towards the server (Istio standard metric).', (s) => s.received);
    counter(tcpOf(SENT), 'istio_tcp_sent_bytes_total', 'TCP bytes sent to the client, from the server (Istio standard metric).', (s) => s.sent);
    return out.length ? out.join('\n') + '\n' : '';
  }

  private allRequests(): RequestSeries[] {
    return this.otherRequests.size ? [this.requests.all, ...[...this.otherRequests.values()].map((i) => i.all)].flat() : this.requests.all;
  }

  private allTcp(): TcpSeries[] {
    return this.otherTcp.size ? [this.tcp.all, ...[...this.otherTcp.values()].map((i) => i.all)].flat() : this.tcp.all;
  }

  /** Each series with its labels, for /stats. */
  json(): Record<'requests' | 'tcp' | 'tcpOpened' | 'tcpClosed', Record<string, string | number>[]> {
    const named = (names: readonly string[], labels: string[]) => Object.fromEntries(names.map((n, i) => [n, labels[i]!]));
    const tcp = this.allTcp();
    return {
      // As before: each TCP series' opened and closed counts apart.
      tcpOpened: tcp.map((s) => ({ ...named(s.names, s.labels), count: s.opened })),
      tcpClosed: tcp.map((s) => ({ ...named(s.names, s.labels), count: s.closed })),
      requests: this.allRequests().map((s) => ({ ...named(s.names, s.labels), count: s.requests, durationMsSum: s.duration.sum, requestBytesSum: s.requestBytes.sum, responseBytesSum: s.responseBytes.sum, ...(s.grpc ? { requestMessages: s.requestMessages, responseMessages: s.responseMessages } : {}) })),
      tcp: tcp.map((s) => ({ ...named(s.names, s.labels), opened: s.opened, closed: s.closed, receivedBytes: s.received, sentBytes: s.sent })),
    };
  }
}

/** The rows whose series report the metric of this bit. */
function withBit<R extends { s: { has: number } }>(rows: readonly R[], b: number): R[] {
  return rows.filter((r) => (r.s.has & b) !== 0);
}

function requestSeries(names: readonly string[], labels: string[], has: number, grpc: boolean): RequestSeries {
  return { names, labels, has, requests: 0, duration: new Histogram(), requestBytes: new Histogram(), responseBytes: new Histogram(), requestMessages: 0, responseMessages: 0, grpc };
}

function tcpSeries(names: readonly string[], labels: string[], has: number): TcpSeries {
  return { names, labels, has, opened: 0, closed: 0, received: 0, sent: 0 };
}

function indexOf<S>(m: Map<string, SeriesIndex<S>>, key: string): SeriesIndex<S> {
  let i = m.get(key);
  if (!i) m.set(key, (i = new SeriesIndex<S>()));
  return i;
}

/** Every expression's value for one exchange (a bug in one is "unknown", never the request path's). */
function evaluate(stats: IstioStatsConfig, entry: Parameters<IstioStatsConfig['exprs'][number]>[0]): string[] {
  return stats.exprs.map((x) => {
    try {
      return x(entry);
    } catch {
      return UNKNOWN;
    }
  });
}

/** An exchange's outcome labels: request_protocol, response_code, grpc_response_status, response_flags, connection_security_policy. */
function outcomeLabels(grpc: boolean, status: number, grpcStatus: string, flags: string, inbound: boolean, down: string | undefined): string[] {
  return [grpc ? 'grpc' : 'http', String(status), grpcStatus, flags, securityPolicy(inbound, down)];
}

/** A group's series key: the edge's keys, then the values of the expressions it reads. */
function groupKeys(keys: readonly KeyValue[], g: StatsGroup, values: readonly string[]): readonly KeyValue[] {
  if (!g.reads.length) return keys;
  const out = keys.slice();
  for (const i of g.reads) out.push(values[i] ?? UNKNOWN);
  return out;
}

/** A group's label values: the standard ones it keeps, and its expressions'. */
function relabel(g: StatsGroup, standard: readonly string[], values: readonly string[]): string[] {
  return g.from.map((i) => (i >= 0 ? standard[i]! : (values[~i] ?? UNKNOWN)));
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
