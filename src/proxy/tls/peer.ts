// Who is at the other end of a connection that came over mutual TLS: the SPIFFE id its certificate
// proves, once the handshake verified the certificate against the mesh roots. Kept on the socket
// (under a symbol), where the request path reads it through the Downstream (sourcePrincipal) for
// authorization and telemetry, and the upstream side for the server's identity. A symbol property
// rather than a WeakMap: node:http2 hands out a proxy of the socket, which forwards property reads
// to the socket but is not the same object.
import type { PeerCertificate } from 'node:tls';
import { peerIdentity } from '../../util/spiffe.ts';
import type { PeerMetadata } from '../http/peer-metadata.ts';

const PRINCIPAL = Symbol('weft.peerPrincipal');
const WORKLOAD = Symbol('weft.peerWorkload');

type WithPrincipal = { [PRINCIPAL]?: string };
type WithWorkload = { [WORKLOAD]?: string | null; getPeerCertificate?: () => PeerCertificate };

/**
 * Sets the SPIFFE id a verified peer proved, and the workload its certificate names (null: none;
 * undefined: not read yet, read from the certificate when first asked). Both at once, at the
 * handshake, so that every mTLS socket gets the same two properties in the same order: one hidden
 * class. The workload was set when telemetry first asked for it, which gave node's stream code
 * sockets of one more shape to see (http/types.ts ConnectionMemo says what that costs).
 */
export function setPeerPrincipal(socket: object, principal: string | undefined, workload?: string | null): void {
  if (principal === undefined) return;
  (socket as WithPrincipal)[PRINCIPAL] = interned(principal);
  (socket as WithWorkload)[WORKLOAD] = typeof workload === 'string' ? interned(workload) : workload;
}

/**
 * One string object for each identity (the first one read): every connection's certificate is
 * read into strings of its own, and the metrics' series keys (istio-metrics.ts, series-index.ts)
 * compare each request's with the last one's. The same object compares by pointer; equal text
 * from another connection was a compare of every character, on every request that alternated
 * between connections. At most INTERNED identities are kept (then the table starts again).
 */
const INTERNED = 4096;
const identities = new Map<string, string>();
function interned(s: string): string {
  let t = identities.get(s);
  if (t === undefined) {
    if (identities.size >= INTERNED) identities.clear();
    identities.set(s, (t = s));
  }
  return t;
}

/** The peer's SPIFFE id, for a connection that came over mutual TLS; undefined otherwise. */
export function peerPrincipal(socket: object | undefined | null): string | undefined {
  return socket ? (socket as WithPrincipal)[PRINCIPAL] : undefined;
}

/**
 * The server name (SNI) of the ClientHello a TLS connection came with; undefined for one that sent
 * none (a TLSSocket's servername is then false or '') and for a plain socket.
 */
export function requestedServerName(socket: object | undefined | null): string | undefined {
  const n = (socket as { servername?: unknown } | undefined | null)?.servername;
  return typeof n === 'string' && n !== '' ? n : undefined;
}

/** The URI SAN of a verified peer certificate, if it is a SPIFFE id. */
export function spiffeOf(cert: PeerCertificate | undefined): string | undefined {
  return identityOf(cert)?.spiffeId;
}

/** What a verified peer certificate proves: its SPIFFE id, and the workload it names. */
export function identityOf(cert: PeerCertificate | undefined): { spiffeId: string; workload?: string } | undefined {
  return peerIdentity(cert && Object.keys(cert).length ? cert : undefined);
}

/**
 * The workload a verified mTLS peer's certificate was issued to (its subject CN, as Weft's CA
 * writes it), for telemetry's peer workload labels; undefined when the connection is not mTLS or
 * the certificate names none. Read once per connection, then kept on the socket.
 */
export function peerWorkload(socket: object | undefined | null): string | undefined {
  if (!socket || peerPrincipal(socket) === undefined) return undefined;
  const s = socket as WithWorkload;
  if (s[WORKLOAD] === undefined) {
    const w = identityOf(s.getPeerCertificate?.())?.workload;
    s[WORKLOAD] = w === undefined ? null : interned(w);
  }
  return s[WORKLOAD] ?? undefined;
}

const METADATA = Symbol('weft.peerMetadata');
type WithMetadata = { [METADATA]?: PeerMetadata };

/** Sets what the peer of a TCP connection said of itself by Istio's metadata exchange (tcp/peer-exchange.ts), once believed. */
export function setPeerMetadata(socket: object, meta: PeerMetadata): void {
  (socket as WithMetadata)[METADATA] = meta;
}

/** The peer's metadata from the TCP metadata exchange, for the TCP metrics; undefined where it sent none to believe. */
export function peerMetadataOf(socket: object | undefined | null): PeerMetadata | undefined {
  return socket ? (socket as WithMetadata)[METADATA] : undefined;
}
