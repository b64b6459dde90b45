// What the request path tells the world: events on node:diagnostics_channel. The path publishes
// and never waits; telemetry (stats.ts today; metrics, access logs and traces with the
// observability issue) subscribes from outside. Channels are made per sidecar (a Symbol name),
// so that two sidecars in one process, as some tests run them, never see each other's events.
import dc from 'node:diagnostics_channel';
import type net from 'node:net';
import type { DownstreamView, HeaderList } from '../http/types.ts';
import type { PeerMetadata } from '../http/peer-metadata.ts';
import type { AccessLogConfig } from '../xds-client/convert-accesslog.ts';

/** An HTTP exchange ended: answered by the upstream, by the sidecar itself, or cut. */
export interface RequestEvent {
  /** The upstream cluster, or '-' when the request never got that far. */
  cluster: string;
  status: number;
  /** The sidecar's own reason (an x-weft-error code), when it answered or the client left. */
  reason?: string;
  /** The endpoint the last attempt went to, e.g. "127.0.0.1:8080". */
  endpoint?: string;
  /** From the request head's arrival to the end of the exchange. */
  durationMs?: number;
  /** The client's SPIFFE id, when it came over mutual TLS (Istio's source_principal). */
  source?: string;
  /** Why the connection to the upstream failed (Envoy's UPSTREAM_TRANSPORT_FAILURE_REASON), when it did. */
  transportFailure?: string;
  /** A request an AuthorizationPolicy denied: the deciding policy id ("ns[foo]-policy[deny-all]-rule[0]", "none": no ALLOW matched). */
  authzPolicy?: string;
  /**
   * The request itself (head, connection addresses, the client's SPIFFE id, its listener), for the
   * access log and the metrics' labels: read while the event is delivered, never kept. A request
   * the listener refused before routing has one too (http/refused.ts), with what was read of it.
   */
  ds?: DownstreamView;
  /** The route that took it (its name), when one did. */
  route?: string;
  /** That route's decorator operation (its spans' name), when it has one. */
  operation?: string;
  /** Request and response body bytes. */
  bytesReceived?: number;
  bytesSent?: number;
  /** The upstream connection of the last attempt: its local address and the server's SPIFFE id (mutual TLS). */
  upstreamLocal?: string;
  upstreamPeer?: string;
  /** The workload the server's mTLS certificate names. */
  upstreamWorkload?: string;
  /** The server's metadata (Istio's metadata exchange, http/peer-metadata.ts), where it sent some to be believed. */
  upstreamMetadata?: PeerMetadata;
  /** The response headers the client got (from the upstream, with the route's edits). */
  responseHeaders?: HeaderList;
  /** A gRPC exchange: the grpc-status the client got (trailers, or a trailers-only response); the messages each way (5-byte length-prefixed frames). */
  grpcStatus?: string;
  requestMessages?: number;
  responseMessages?: number;
  /** The response trailers, where the upstream sent some (gRPC's grpc-status, for traces). */
  responseTrailers?: HeaderList;
}

/** What an exchange adds to its event beyond its outcome: route, bytes, the upstream connection. */
export type RequestDetail = Pick<RequestEvent, 'upstreamMetadata' | 'route' | 'operation' | 'bytesReceived' | 'bytesSent' | 'upstreamLocal' | 'upstreamPeer' | 'upstreamWorkload' | 'responseHeaders' | 'responseTrailers' | 'authzPolicy' | 'transportFailure' | 'grpcStatus' | 'requestMessages' | 'responseMessages'>;

/**
 * A request's event. Every field is there, undefined where it has none, always in this order: one
 * shape, so that each subscriber's reads of it stay monomorphic (spreading what each exchange had
 * made events of several shapes, and the readers' loads went through V8's generic lookup).
 */
export function requestEvent(cluster: string, status: number, reason: string | undefined, endpoint: string | undefined, durationMs: number | undefined, source: string | undefined, ds: DownstreamView | undefined, d: RequestDetail | undefined): RequestEvent {
  return {
    cluster,
    status,
    reason,
    endpoint,
    durationMs,
    source,
    transportFailure: d?.transportFailure,
    authzPolicy: d?.authzPolicy,
    ds,
    route: d?.route,
    operation: d?.operation,
    bytesReceived: d?.bytesReceived,
    bytesSent: d?.bytesSent,
    upstreamLocal: d?.upstreamLocal,
    upstreamPeer: d?.upstreamPeer,
    upstreamWorkload: d?.upstreamWorkload,
    upstreamMetadata: d?.upstreamMetadata,
    responseHeaders: d?.responseHeaders,
    grpcStatus: d?.grpcStatus,
    requestMessages: d?.requestMessages,
    responseMessages: d?.responseMessages,
    responseTrailers: d?.responseTrailers,
  };
}

/**
 * One authorization decision of a listener's RBAC filters (AuthorizationPolicy): per HTTP request or
 * per TCP connection, on listeners that have them. An access log takes the policy ids from here.
 */
export interface AuthzEvent {
  listener: string;
  protocol: 'http' | 'tcp';
  effect: 'allowed' | 'denied';
  /** The enforced policy that decided (ALLOW: let it in; DENY: kept it out); 'none' when denied because no ALLOW policy matched. */
  policy?: string;
  /** The filter that denied. */
  filter?: string;
  /** Dry-run (shadow) results of the filters that have them, in filter order. */
  shadow?: readonly { effect: 'allowed' | 'denied'; policy?: string }[];
  /** An AUDIT policy matched (Envoy's access_log_hint): its id. */
  audit?: string;
  /** The client's SPIFFE id, when it came over mutual TLS. */
  source?: string;
  /** A TCP connection denied: the connection, for the access log (read during delivery, never kept; it is closed after). */
  down?: net.Socket;
  /** A TCP connection denied: the access log of the tcp_proxy its chain has. */
  accessLog?: readonly AccessLogConfig[];
  /** A TCP connection denied: when it was accepted (Date.now()). */
  startMs?: number;
}

/** A TCP connection through a tcp_proxy (or a CONNECT tunnel to a TCP service) changed state. */
export type TcpEvent =
  | ({ kind: 'open'; cluster: string; endpoint: string } & TcpConnection)
  | ({ kind: 'close'; cluster: string; endpoint: string; bytesSent: number; bytesReceived: number; durationMs?: number } & TcpConnection)
  | { kind: 'connect_failed'; cluster: string; endpoint: string; code: string };

/** Who is at either end of a proxied TCP connection, for the access log and the metrics' labels (read during delivery, never kept). */
export interface TcpConnection {
  /** The listener whose tcp_proxy took it (undefined: a CONNECT tunnel of the outbound listener). */
  listener?: string;
  down?: net.Socket;
  up?: net.Socket;
  /** The tcp_proxy's access_log. */
  accessLog?: readonly AccessLogConfig[];
}

export interface Channel<T> {
  readonly hasSubscribers: boolean;
  publish(message: T): void;
  subscribe(fn: (message: T) => void): void;
  /** Stops delivering to fn (a subscriber that comes and goes: tap.ts). */
  unsubscribe(fn: (message: T) => void): void;
}

export class Telemetry {
  readonly request: Channel<RequestEvent> = channel<RequestEvent>('weft.request');
  readonly tcp: Channel<TcpEvent> = channel<TcpEvent>('weft.tcp');
  readonly authz: Channel<AuthzEvent> = channel<AuthzEvent>('weft.authz');
}

function channel<T>(name: string): Channel<T> {
  const ch = dc.channel(Symbol(name));
  return {
    get hasSubscribers() {
      return ch.hasSubscribers;
    },
    publish: (m: T) => ch.publish(m),
    subscribe: (fn: (m: T) => void) => ch.subscribe(fn as (m: unknown) => void),
    unsubscribe: (fn: (m: T) => void) => void ch.unsubscribe(fn as (m: unknown) => void),
  };
}
