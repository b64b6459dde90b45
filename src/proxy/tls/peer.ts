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

type WithPrincipal = { [PRINCIPAL]?: string };

export function setPeerPrincipal(socket: object, principal: string | undefined): void {
  if (principal !== undefined) (socket as WithPrincipal)[PRINCIPAL] = principal;
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
  return peerIdentity(cert && Object.keys(cert).length ? cert : undefined)?.spiffeId;
}

const WORKLOAD = Symbol('weft.peerWorkload');
type WithWorkload = { [WORKLOAD]?: string | null; getPeerCertificate?: () => PeerCertificate };

/** Sets the workload of a peer whose certificate the connection does not carry (a resumed TLS session: tls/upstream.ts). */
export function setPeerWorkload(socket: object, workload: string | undefined): void {
  (socket as WithWorkload)[WORKLOAD] = workload ?? null;
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
    const cert = s.getPeerCertificate?.();
    s[WORKLOAD] = peerIdentity(cert && Object.keys(cert).length ? cert : undefined)?.workload ?? null;
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
