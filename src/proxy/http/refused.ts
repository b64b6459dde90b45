// A request the listener answers itself before it reaches the request path: a malformed or
// oversized head (http1/server.ts, http2/server.ts), a head that never completed in time (408), a
// CONNECT with nowhere to go (listeners/listener.ts). Envoy's HCM makes a stream for such a
// request, answers it with a local reply and logs and counts it like any other (its response flag
// DPE for the codec's refusals, NR for a CONNECT no route takes); so does Weft. The codec gives
// the listener a Refusal: what was read of the request, and its connection's ends, as a
// DownstreamView that telemetry reads while the event is delivered.
import type net from 'node:net';
import { peerPrincipal, peerWorkload, requestedServerName } from '../tls/peer.ts';
import { type HostPorts, type HostPortsHolder, hostPortsOf } from '../net/addresses.ts';
import type { DownstreamView, RequestHead } from './types.ts';

/** A request refused before routing: its answer's status, the sidecar's reason (errors.ts), and the request as far as it was read. */
export interface Refusal {
  status: number;
  /** The x-weft-error code the client got (bad_request, request_headers_too_large, no_route, ...). */
  code: string;
  /** The cluster a CONNECT's route chose, where it got that far. */
  cluster?: string;
  /** From the head's first byte to the answer: 0 for one answered as it was read, the timeout for a head that never came whole, the connection attempt for a CONNECT's. */
  durationMs?: number;
  /** The request: the codec's own stream where it made one (HTTP/2), else a RefusedRequest. */
  ds: DownstreamView;
}

/** What was read of a refused request: an empty method, authority or path is one never read (the access log's "-"). */
export function refusedHead(method: string, authority: string, path: string, query: string, protocol: string): RequestHead {
  return { method, authority, path, query, headers: [], hasBody: false, contentLength: undefined, protocol };
}

/** A refused request on `socket`: its connection's ends and the client's mTLS identity, as a live request's. */
export class RefusedRequest implements DownstreamView {
  readonly head: RequestHead;
  /** Set by the listener that refused it (sidecar.ts): its access log and its metrics' reporter. */
  listenerName: string | undefined = undefined;
  private readonly socket: net.Socket;
  private readonly ends: HostPortsHolder;

  /** `ends`: the connection's holder of its ends' text, where it keeps one (http1/server.ts). */
  constructor(socket: net.Socket, head: RequestHead, ends: HostPortsHolder = { hostPorts: undefined }) {
    this.socket = socket;
    this.head = head;
    this.ends = ends;
  }

  remoteAddress(): string {
    return this.socket.remoteAddress ?? '';
  }

  remotePort(): number {
    return this.socket.remotePort ?? 0;
  }

  sourcePrincipal(): string | undefined {
    return peerPrincipal(this.socket);
  }

  peerWorkload(): string | undefined {
    return peerWorkload(this.socket);
  }

  localAddress(): { address: string; port: number } {
    return { address: this.socket.localAddress ?? '', port: this.socket.localPort ?? 0 };
  }

  hostPorts(): HostPorts {
    return hostPortsOf(this.ends, this.socket);
  }

  requestedServerName(): string | undefined {
    return requestedServerName(this.socket);
  }
}
