// SPIFFE identities as Weft's certificates carry them: one URI SAN,
// spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>, and the workload's name as the
// subject's CN. Read from Node's view of a peer's certificate (tls.PeerCertificate), on both sides.

export interface PeerIdentity {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
  /** The subject's CN: the workload the certificate was issued to, when the CA wrote one. */
  workload?: string;
  /** The URI SAN itself. */
  spiffeId: string;
}

/** The trust domain of a mesh that names none (Istio's default). */
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

/** A workload's SPIFFE id: what the CA writes into its certificate, and what peers expect of it. */
export function spiffeUri(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

const SPIFFE = /^spiffe:\/\/([a-z0-9.-]{1,255})\/ns\/([a-z0-9.-]{1,253})\/sa\/([a-z0-9.-]{1,253})$/;

/** The identity a peer's certificate proves (only once the handshake verified its chain), or undefined. */
export function peerIdentity(cert: { subjectaltname?: string; subject?: { CN?: string | string[] } } | undefined): PeerIdentity | undefined {
  const san = cert?.subjectaltname;
  if (!san) return undefined;
  // "URI:spiffe://..., DNS:..."; a URI with a comma would be quoted, and is no SPIFFE id of ours.
  const uris = san.split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
  if (uris.length !== 1) return undefined;
  const m = SPIFFE.exec(uris[0]);
  if (!m) return undefined;
  const cn = cert!.subject?.CN;
  return { trustDomain: m[1], namespace: m[2], serviceAccount: m[3], spiffeId: uris[0], ...(typeof cn === 'string' && cn ? { workload: cn } : {}) };
}

const SPIFFE_NS = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/[^/]+$/;

/** The namespace a SPIFFE id names (spiffe://<td>/ns/<namespace>/sa/<sa>), or undefined where it is no such id. */
export function spiffeNamespace(id: string): string | undefined {
  return SPIFFE_NS.exec(id)?.[1];
}

/** The control plane's own identity, in its serving certificate: no join token may name it. */
export const CONTROL_PLANE_IDENTITY = { namespace: 'weft-system', serviceAccount: 'weft-control' } as const;
