// A connection's addresses as Envoy writes them in access logs and Istio's authorization reads
// them: "a.b.c.d:port" or "[v6]:port", an IPv4 client of a dual-stack socket without its ::ffff:
// prefix. A connection's addresses never change, so their text is made once per connection, not
// once per request: a string made per request was also a new string for the access log's writer to
// compare with the last line's, and a concatenation it flattened. A downstream connection keeps it
// in a field of its own object (one shape for every connection), not on Node's socket, whose
// shapes vary.

import { endpointName } from '../../util/net.ts';

/** Node reports an IPv4 client of a dual-stack socket as ::ffff:a.b.c.d; Envoy (and Istio's ipBlocks) see a.b.c.d. */
export function unmapped(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

/** "a.b.c.d:port", "[v6]:port" (util/net.ts's endpointName of the unmapped address); the address alone without a port. */
export function hostPort(address: string, port: number | undefined): string {
  const a = unmapped(address);
  return port === undefined ? a : endpointName(a, port);
}

/** A connection's two ends as text (an end the socket no longer knows: its empty address and port 0). */
export interface HostPorts {
  /** This side: where the connection arrived. */
  readonly local: string;
  /** The other side. */
  readonly remote: string;
}

/** What a net.Socket (or a TLSSocket, or an HTTP/2 session's socket) tells of its ends. */
interface Ends {
  readonly localAddress?: string;
  readonly localPort?: number;
  readonly remoteAddress?: string;
  readonly remotePort?: number;
}

/** Where a connection keeps its ends' text: a field of its own object. */
export interface HostPortsHolder {
  hostPorts: HostPorts | undefined;
}

/**
 * The text of `socket`'s ends, kept in `holder` once the socket knows its remote address
 * (connected, not yet gone); before that, made each time.
 */
export function hostPortsOf(holder: HostPortsHolder, socket: Ends | undefined | null): HostPorts {
  const kept = holder.hostPorts;
  if (kept !== undefined) return kept;
  const remoteAddress = socket?.remoteAddress;
  const made: HostPorts = {
    local: hostPort(socket?.localAddress ?? '', socket?.localPort ?? 0),
    remote: hostPort(remoteAddress ?? '', socket?.remotePort ?? 0),
  };
  if (remoteAddress !== undefined) holder.hostPorts = made;
  return made;
}
