// The control plane's own TLS: a serving certificate from its CA, for the identity
// spiffe://<trust-domain>/ns/weft-system/sa/weft-control (which no join token can name), renewed
// at half its life without dropping a connection; and the gRPC server credentials of the xDS port.
//
// A sidecar pins the mesh's root and checks that URI SAN, so the certificate needs no DNS or IP
// name: the control plane may be reached by any address.
import * as grpc from '@grpc/grpc-js';
import type { SecureContextOptions } from 'node:tls';
import { newKeyAndRequest } from '../../util/csr.ts';
import { CONTROL_PLANE_IDENTITY } from '../../util/spiffe.ts';
import type { CertificateAuthority } from './ca.ts';

const HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * TLS 1.3 (in the context, so that a renewed one keeps it); a client certificate asked for and checked against the roots, but not required: a
 * sidecar's first call (for its certificate, with a join token) has none. A call that needs one
 * checks it (grpc-js's getAuthContext() holds only a certificate the handshake verified).
 */
export class MeshServerCredentials extends grpc.ServerCredentials {
  constructor(context: SecureContextOptions) {
    // A handshake gets 10 s, not Node's 120: a client that connects and says nothing holds a
    // socket (and the control plane's shutdown) no longer.
    super({ requestCert: true, rejectUnauthorized: false, handshakeTimeout: HANDSHAKE_TIMEOUT_MS }, context);
  }

  /** New certificate or roots: connections from now on use them; open ones go on. */
  rotate(context: SecureContextOptions): void {
    this.updateSecureContextOptions(context);
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

export interface ControlPlaneTls {
  credentials: MeshServerCredentials;
  /** The serving key, certificate and roots in use now. */
  context(): SecureContextOptions;
  /** Called with each renewed context (for the admin API's HTTPS server). */
  onRenewed(fn: (context: SecureContextOptions) => void): void;
  /** When the serving certificate in use expires. */
  notAfter(): Date;
  /** A new serving certificate now, with the CA's roots as they are now (a root rotation's steps). */
  renewNow(): Promise<void>;
  stop(): void;
}

/** The xDS port's credentials, with a serving certificate from `ca` kept fresh. */
export async function controlPlaneTls(ca: CertificateAuthority, log: (msg: string) => void = () => {}): Promise<ControlPlaneTls> {
  let current = await issue(ca);
  const credentials = new MeshServerCredentials(current.context);
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const listeners: ((c: SecureContextOptions) => void)[] = [];
  const schedule = (inMs: number) => {
    if (stopped) return;
    timer = setTimeout(() => void renew(), Math.min(2 ** 31 - 1, Math.max(1000, inMs)));
    timer.unref();
  };
  const renew = async () => {
    clearTimeout(timer);
    try {
      current = await issue(ca);
      credentials.rotate(current.context);
      for (const fn of listeners) fn(current.context);
      log(`control plane certificate renewed, until ${current.notAfter.toISOString()}`);
      schedule(halfLife(current));
    } catch (e) {
      log(`control plane certificate renewal failed (trying again in a minute): ${(e as Error).message}`);
      schedule(60_000);
    }
  };
  schedule(halfLife(current));
  return {
    credentials,
    notAfter: () => current.notAfter,
    context: () => current.context,
    onRenewed: (fn) => listeners.push(fn),
    renewNow: renew,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

async function issue(ca: CertificateAuthority): Promise<{ context: SecureContextOptions; notAfter: Date; notBefore: number }> {
  const { keyPem, csrPem } = newKeyAndRequest();
  const notBefore = Date.now();
  // Signed by the oldest root while a rotation runs: every sidecar trusts that one (ca.ts).
  const issued = await ca.sign(csrPem, { ...CONTROL_PLANE_IDENTITY, workload: CONTROL_PLANE_IDENTITY.serviceAccount }, undefined, true);
  return { context: { key: keyPem, cert: [issued.certificate, ...issued.chain].join(''), ca: issued.trustBundle, minVersion: 'TLSv1.3' }, notAfter: issued.notAfter, notBefore };
}

const halfLife = (c: { notAfter: Date; notBefore: number }) => (c.notAfter.getTime() - c.notBefore) / 2;
