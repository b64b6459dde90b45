// Who is at the other end of a connection that came over mutual TLS: the SPIFFE id its certificate
// proves, once the handshake verified the certificate against the mesh roots. Kept on the socket
// (under a symbol), where the request path reads it through the Downstream (sourcePrincipal) for
// authorization and telemetry, and the upstream side for the server's identity. A symbol property
// rather than a WeakMap: node:http2 hands out a proxy of the socket, which forwards property reads
// to the socket but is not the same object.
import type { PeerCertificate } from 'node:tls';
import { peerIdentity } from '../../util/spiffe.ts';

const PRINCIPAL = Symbol('weft.peerPrincipal');

type WithPrincipal = { [PRINCIPAL]?: string };

export function setPeerPrincipal(socket: object, principal: string | undefined): void {
  if (principal !== undefined) (socket as WithPrincipal)[PRINCIPAL] = principal;
}

/** The peer's SPIFFE id, for a connection that came over mutual TLS; undefined otherwise. */
export function peerPrincipal(socket: object | undefined | null): string | undefined {
  return socket ? (socket as WithPrincipal)[PRINCIPAL] : undefined;
}

/** The URI SAN of a verified peer certificate, if it is a SPIFFE id. */
export function spiffeOf(cert: PeerCertificate | undefined): string | undefined {
  return peerIdentity(cert && Object.keys(cert).length ? cert : undefined)?.spiffeId;
}
