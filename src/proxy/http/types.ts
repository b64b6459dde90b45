// The request path's vocabulary, the same whatever protocol carried the request: a downstream
// codec (HTTP/1.1 today, HTTP/2 next) turns bytes into a Downstream, the layers in forward.ts act
// on it, and an upstream codec turns an UpstreamRequest back into bytes.

import type { PeerMetadata } from './peer-metadata.ts';
import type { TraceContext } from './trace-context.ts';
import type { HostPorts } from '../net/addresses.ts';

/** Header fields as a flat list: [name, value, name, value, ...], names in lower case. */
export type HeaderList = string[];

export interface RequestHead {
  method: string;
  /** Host and port the client addressed (Host header, absolute-form URL, or :authority). */
  authority: string;
  /** The canonical path that routing and the upstream see (docs/request-lifecycle.md), no query. */
  path: string;
  /** The query string, without the '?'; may be empty. */
  query: string;
  /** End-to-end headers only: no hop-by-hop fields, no Host, no Content-Length. */
  headers: HeaderList;
  /** Whether a body follows the head. */
  hasBody: boolean;
  /** The body's length when the client declared one. */
  contentLength?: number;
  /** "HTTP/1.0", "HTTP/1.1" or "HTTP/2". */
  protocol: string;
  /** The protocol the client asks to switch to (Upgrade: websocket), if any. */
  upgrade?: string;
}

/** Where request body bytes go; data() returning false asks the source to pause. */
export interface BodySink {
  data(chunk: Buffer): boolean;
  end(trailers: HeaderList): void;
}

/** One request from a client and the way back to it. Implemented by each downstream codec. */
export interface Downstream {
  readonly head: RequestHead;
  /** Starts the flow of the request body into `sink` (once; a request with no body ends at once). */
  readBody(sink: BodySink): void;
  /** Resumes a body paused by sink.data() returning false. */
  resumeBody(): void;
  /** Sends the response head. `end`: no body follows. */
  respond(status: number, headers: HeaderList, contentLength: number | undefined, end: boolean): void;
  /** Writes response body bytes; false: wait for the drain callback before writing more. */
  write(chunk: Buffer): boolean;
  onDrain(cb: () => void): void;
  end(trailers?: HeaderList): void;
  /** Cuts the exchange after the response started: the client sees an incomplete response. */
  reset(reason: string): void;
  /** Called once if the client goes away before the response ends. */
  onAbort(cb: () => void): void;
  readonly responseStarted: boolean;
  /** The client's address (the connection's remote address): what a source-IP hash policy hashes. */
  remoteAddress(): string;
  /** The client's port (the access log's DOWNSTREAM_REMOTE_ADDRESS). */
  remotePort?(): number;
  /** The client's SPIFFE id when it came over mutual TLS (tls/peer.ts): for authorization and telemetry. */
  sourcePrincipal?(): string | undefined;
  /** The workload the client's mTLS certificate names (tls/peer.ts peerWorkload), for telemetry. */
  peerWorkload?(): string | undefined;
  /** The connection's local address and port: where the client's connection arrived (authorization's destination). */
  localAddress?(): { address: string; port: number };
  /** Both addresses as the access log writes them ("a.b.c.d:port", "[v6]:port"), made once per connection (net/addresses.ts). */
  hostPorts?(): HostPorts;
  /** The server name (SNI) of the client's ClientHello, for a connection that came over TLS; undefined otherwise. */
  requestedServerName?(): string | undefined;
  /**
   * This request's dynamic metadata (filter name -> its Struct, as JSON), as Envoy's StreamInfo
   * holds it: written by the layers before authorization (JWT authentication writes
   * 'envoy.filters.http.jwt_authn' and 'istio_authn'), read by RBAC rules (http/authz.ts).
   */
  dynamicMetadata?: Record<string, Record<string, unknown>>;
  /** Headers a layer before routing adds to the response (an external authorizer's allowed_client_headers_on_success). */
  responseHeadersToAdd?: HeaderList;
  /** The client's metadata (Istio's metadata exchange, peer-metadata.ts), where it sent some to be believed: its labels in the metrics. */
  peerMetadata?: PeerMetadata;
  /** Headers every answer to this request carries, the sidecar's own too (the metadata exchange's): each codec's respond() adds them. */
  responseMetadata?: HeaderList;
  /** The listener the request came in on (set by forward.ts): which access log and which metrics reporter it takes. */
  listenerName?: string;
  /** Its trace context, on listeners with tracing (http/trace-context.ts): the span telemetry/tracer.ts reports. */
  trace?: TraceContext;
  /** Switches the connection to a raw byte stream after a 101 answer (WebSocket). */
  upgradeTo(status: number, headers: HeaderList): { socket: import('node:net').Socket; head: Buffer } | undefined;
}

/**
 * What telemetry reads of a request when its exchange ends (telemetry/events.ts RequestEvent.ds):
 * a live Downstream, or a request the listener refused before routing (http/refused.ts).
 */
export type DownstreamView = Pick<Downstream, 'head' | 'remoteAddress' | 'remotePort' | 'sourcePrincipal' | 'peerWorkload' | 'localAddress' | 'hostPorts' | 'requestedServerName' | 'dynamicMetadata' | 'peerMetadata' | 'listenerName' | 'trace'>;

// The upstream side's vocabulary: what every upstream codec (http1/client.ts, http2/client.ts) takes
// and gives back.

export interface UpstreamRequest {
  method: string;
  /** Path and query, as sent on the request line. */
  target: string;
  authority: string;
  headers: HeaderList;
  /** 'none': no body; a number: Content-Length; 'chunked': length unknown. */
  body: 'none' | 'chunked' | number;
  /** Upgrade token (websocket): the request asks to switch protocols. */
  upgrade?: string;
}

export type UpstreamPhase = 'connect' | 'request' | 'response';

/** Why an exchange with an upstream failed. `phase` says how far it got. */
export class UpstreamError extends Error {
  readonly code: string;
  readonly phase: UpstreamPhase;
  constructor(code: string, phase: UpstreamPhase, message: string) {
    super(message);
    this.code = code;
    this.phase = phase;
  }
}

export interface ResponseHandler {
  /** The request head is on the wire: the body may flow now (the proxy reads it only from here on). */
  onRequestSent(call: UpstreamCall): void;
  /** The final response head (1xx interim responses are not passed on). `headers` is valid only during the call. */
  onResponse(status: number, headers: HeaderList, contentLength: number | undefined, bodyless: boolean): void;
  /** Response body bytes; false pauses the upstream until call.resume(). */
  onData(chunk: Buffer): boolean;
  onEnd(trailers: HeaderList): void;
  onError(err: UpstreamError): void;
  /** 101 Switching Protocols: the connection is now a byte stream, handed over whole. */
  onUpgrade(status: number, headers: HeaderList, socket: import('node:net').Socket, head: Buffer): void;
}

export interface UpstreamCall {
  /** Request body bytes; false: wait for onDrain. */
  write(chunk: Buffer): boolean;
  onDrain(cb: () => void): void;
  end(trailers?: HeaderList): void;
  /** Gives up on the exchange; the connection is destroyed and no callback fires after this. */
  abort(): void;
  /** Resumes a response paused by onData returning false. */
  resume(): void;
  /** The connection the exchange is on (once it has one): its local address and the server's identity, for telemetry. */
  socket?(): import('node:net').Socket | undefined;
  /** What is kept for the life of that connection (once it has one). */
  memo?(): ConnectionMemo | undefined;
}

/**
 * What telemetry keeps per upstream connection (forward.ts upstreamSide: made by the first exchange
 * that reports on it, read by the rest): a field of the pool's own connection object, not a
 * property added to node's socket. A property that some sockets get and others do not is one more
 * hidden class for node's stream code (Socket._write) to see, and past four of them its property
 * loads go through V8's megamorphic lookup, for every socket's writes.
 */
export interface ConnectionMemo {
  upstreamSide: unknown;
}

