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
export const MIN_VERSION = 'TLSv1.2';

const contexts = new WeakMap<object, SecureContext>();

/** The secure context of the current certificate: key and certificate 'default', roots 'ROOTCA'. */
export function secureContext(secrets: TlsSecrets): SecureContext {
  const c = secrets.current();
  let ctx = contexts.get(c);
  if (!ctx) contexts.set(c, (ctx = tls.createSecureContext({ key: c.keyPem, cert: c.certPem, ca: c.rootsPem, minVersion: MIN_VERSION })));
  return ctx;
}
