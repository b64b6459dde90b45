// The sidecar's own SDS: the secrets 'default' (its workload key and certificate) and 'ROOTCA' (the
// mesh roots it got with them), resolved to the certificate current when a connection is made
// (proxy/identity/workload-cert.ts renews it at half its life). One secure context per certificate,
// made on first use: a renewal makes a new certificate object, so new connections take the new
// context and connections already open keep theirs, as Envoy's do when SDS pushes a new secret.
import type { SecureContext } from 'node:tls';

// node:tls taken without an ESM import (src/proxy/sidecar.ts says why).
const tls = process.getBuiltinModule('node:tls');

/** What the TLS layer needs of the workload certificate (WorkloadCertificates has it). */
export interface TlsSecrets {
  current(): { keyPem: string; certPem: string; rootsPem: string; spiffeId: string };
}

/** TLS 1.2 is the least the contract allows, on both sides (Istio's default minimum too). */
export const MIN_VERSION = 'TLSv1.2' as const;

/** TLS versions as node:tls names them (convert-tls.ts reads them from tls_params). */
export interface Versions {
  min: 'TLSv1.2' | 'TLSv1.3';
  max: 'TLSv1.2' | 'TLSv1.3';
}

const DEFAULT_VERSIONS: Versions = { min: MIN_VERSION, max: 'TLSv1.3' };

/** Per certificate, per versions ("min max"): node:tls takes the versions from the context, not the connection's options, when given a context. */
const contexts = new WeakMap<object, Map<string, SecureContext>>();

/** The options of a secure context for a certificate: key and certificate 'default', roots 'ROOTCA', the versions. */
export function contextOptions(c: { keyPem: string; certPem: string; rootsPem: string }, v: Versions = DEFAULT_VERSIONS): { key: string; cert: string; ca: string; minVersion: Versions['min']; maxVersion: Versions['max'] } {
  return { key: c.keyPem, cert: c.certPem, ca: c.rootsPem, minVersion: v.min, maxVersion: v.max };
}

/** The secure context of the current certificate. */
export function secureContext(secrets: TlsSecrets, v: Versions = DEFAULT_VERSIONS): SecureContext {
  const c = secrets.current();
  let byVersions = contexts.get(c);
  if (!byVersions) contexts.set(c, (byVersions = new Map()));
  const key = `${v.min} ${v.max}`;
  let ctx = byVersions.get(key);
  if (!ctx) byVersions.set(key, (ctx = tls.createSecureContext(contextOptions(c, v))));
  return ctx;
}
