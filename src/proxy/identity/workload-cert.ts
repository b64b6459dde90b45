// The sidecar's workload certificate: its first one bought with the join token it was started
// with, then renewed with itself at half its life, each time for a new key made here (private keys
// never leave the sidecar). Both calls go to the control plane's certificate API over TLS, to a
// server whose certificate chains to the mesh root the sidecar was given and names the control
// plane's SPIFFE identity.
//
// Until the sidecars speak mTLS to each other (issue 7's next step), the certificate is what the
// sidecar proves itself with on its xDS stream.
import type { PeerCertificate } from 'node:tls';
import { newKeyAndRequest } from '../../util/csr.ts';
import { pemCertificates } from '../../util/pem.ts';
import { CONTROL_PLANE_IDENTITY, peerIdentity } from '../../util/spiffe.ts';
import { CERTIFICATE_METHOD, type CertificateRequest, type CertificateResponse, decodeCertificateResponse, encodeCertificateRequest } from '../../xds/istio-ca.ts';
import { type ChannelTls, GrpcChannel, GrpcError, STATUS } from '../xds-client/grpc-stream.ts';

const { X509Certificate } = process.getBuiltinModule('node:crypto');

export interface WorkloadCert {
  keyPem: string;
  /** The certificate, then the intermediates it chains to the root through (a plugged-in CA's), PEM: what TLS presents. */
  certPem: string;
  /**
   * The mesh roots, what peers' certificates must chain to (the secret ROOTCA): those the control
   * plane pushed over xDS last (setRoots), or else those it sent with the certificate.
   */
  rootsPem: string;
  notBefore: number;
  notAfter: number;
  /** When this sidecar got it: its life, for renewal, counts from here (the CA backdates notBefore by a minute). */
  receivedAt: number;
  spiffeId: string;
  /** What the certificate proves: the SPIFFE id's namespace, and the workload (the subject's CN). */
  namespace: string;
  workload?: string;
}

export interface WorkloadCertOptions {
  /** The control plane's xDS address, host:port. */
  server: string;
  /** The mesh root the control plane's certificate must chain to, PEM (its root-cert.pem). */
  rootPem: string;
  joinToken: string;
  /** Seconds asked for; 0 or unset: the CA's default (24 h). */
  validityS?: number;
  /** Part of its life after which a certificate is renewed (Istio's SECRET_GRACE_PERIOD_RATIO: 0.5). */
  renewAt?: number;
  log?: (msg: string) => void;
  /** Called with every certificate after the first. */
  onRenewed?: (c: WorkloadCert) => void;
  /**
   * Once the certificate has expired it cannot be renewed with itself: a new join token, if this
   * gives one (e.g. a --join-token-file rewritten), buys a new one.
   */
  rejoin?: () => string | undefined;
  /** How often an expired certificate looks for a new join token (default 30 s). */
  expiredRetryMs?: number;
}

/** Why a sidecar cannot get its first certificate, and no retry would help. */
export class CertificateRefused extends Error {
  override name = 'CertificateRefused';
}

const CALL_TIMEOUT_MS = 15_000;
/** How often an expired certificate looks for a new join token (rejoin). */
const EXPIRED_RETRY_MS = 30_000;

export class WorkloadCertificates {
  private cert: WorkloadCert | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly opts: WorkloadCertOptions;
  private readonly log: (msg: string) => void;

  constructor(opts: WorkloadCertOptions) {
    this.opts = opts;
    this.log = opts.log ?? (() => {});
  }

  current(): WorkloadCert {
    if (!this.cert) throw new Error('no workload certificate yet');
    return this.cert;
  }

  /** The roots last pushed over xDS (ROOTCA), and when they came. */
  private pushed: { pem: string; at: number } | undefined;

  /**
   * New mesh roots from the control plane (SDS over ADS, while it rotates its root): connections
   * made from now on trust them (a new certificate object: secrets.ts makes new secure contexts),
   * open ones go on. The certificate stays.
   */
  setRoots(pem: string): void {
    this.pushed = { pem, at: performance.now() };
    if (!this.cert || this.cert.rootsPem === pem) return;
    this.cert = { ...this.cert, rootsPem: pem };
    this.log(`mesh roots updated: ${pemCertificates(pem).length} root(s) trusted`);
  }

  /** TLS to the control plane with this certificate (mutual): for the xDS stream. */
  tlsToControlPlane(): ChannelTls {
    const c = this.current();
    return { ca: c.rootsPem, key: c.keyPem, cert: c.certPem, checkServer: checkControlPlane };
  }

  /**
   * The first certificate, for the join token. While the control plane cannot be reached, tries
   * again (with backoff, up to `waitMs`); a refusal (a token unknown, used or expired) is final.
   */
  async start(waitMs = 60_000): Promise<WorkloadCert> {
    const deadline = Date.now() + waitMs;
    let backoff = 200;
    for (;;) {
      try {
        this.cert = await this.withToken(this.opts.joinToken);
        break;
      } catch (e) {
        if (!(e instanceof GrpcError)) throw e;
        const retry = e.code === STATUS.UNAVAILABLE || e.code === STATUS.DEADLINE_EXCEEDED;
        if (!retry || this.stopped) throw new CertificateRefused(`no workload certificate from the control plane at ${this.opts.server}: ${e.details}`);
        if (Date.now() + backoff > deadline) throw new CertificateRefused(`no workload certificate: the control plane at ${this.opts.server} could not be reached for ${Math.round(waitMs / 1000)} s (${e.details})`);
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 5000);
      }
    }
    this.log(`workload certificate ${this.cert.spiffeId}, until ${new Date(this.cert.notAfter).toISOString()}`);
    this.schedule();
    return this.cert;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(retryMs?: number): void {
    if (this.stopped || !this.cert) return;
    const c = this.cert;
    // Half of the life it was given, from when it came: not from notBefore, which the CA sets a
    // minute early for clock skew (a 10 s certificate would otherwise be renewed at once, forever).
    const at = c.receivedAt + (c.notAfter - c.receivedAt) * (this.opts.renewAt ?? 0.5);
    const inMs = retryMs ?? Math.max(0, at - Date.now());
    this.timer = setTimeout(() => void this.renew(), Math.min(inMs, 2 ** 31 - 1));
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    const expired = Date.now() >= this.current().notAfter;
    // An expired certificate proves nothing any more (the handshake refuses it): only a new join token helps.
    const token = expired ? this.opts.rejoin?.() : undefined;
    if (expired && !token) {
      if (!this.expiredSaid) {
        this.expiredSaid = true;
        this.log(`the workload certificate expired at ${new Date(this.current().notAfter).toISOString()} while it could not be renewed: it can no longer be renewed with itself. Give this sidecar a new join token (weft token create; restart it with WEFT_JOIN_TOKEN, or rewrite its --join-token-file); until then it serves its last config, and the control plane refuses its xDS stream`);
      }
      return this.schedule(this.opts.expiredRetryMs ?? EXPIRED_RETRY_MS);
    }
    try {
      this.cert = token ? await this.withToken(token) : await this.request(this.tlsToControlPlane(), {});
      this.expiredSaid = false;
      this.log(`workload certificate ${token ? 'bought again with a new join token' : 'renewed'}, until ${new Date(this.cert.notAfter).toISOString()}`);
      this.opts.onRenewed?.(this.cert);
      this.schedule();
    } catch (e) {
      const left = Math.round((this.current().notAfter - Date.now()) / 1000);
      this.log(`workload certificate renewal failed (${e instanceof GrpcError ? e.details : (e as Error).message}); the current one has ${left} s left; trying again`);
      // Again soon, but never more often than every second, nor later than a tenth of what is left.
      this.schedule(left <= 0 ? (this.opts.expiredRetryMs ?? EXPIRED_RETRY_MS) : Math.max(1000, Math.min(30_000, (left * 1000) / 10)));
    }
  }

  private expiredSaid = false;

  private withToken(token: string): Promise<WorkloadCert> {
    // The roots it holds once it has any (a root rotation since it started may have replaced the file's).
    return this.request({ ca: this.cert?.rootsPem ?? this.opts.rootPem, checkServer: checkControlPlane }, { authorization: `Bearer ${token}` });
  }

  private async request(tls: ChannelTls, metadata: Record<string, string>): Promise<WorkloadCert> {
    const sentAt = performance.now();
    const { keyPem, csrPem } = newKeyAndRequest();
    const channel = new GrpcChannel(this.opts.server, { keepaliveTimeMs: 30_000, keepaliveTimeoutMs: 10_000, tls: () => tls });
    try {
      const req: CertificateRequest = { csr: csrPem, ...(this.opts.validityS ? { validity_duration: this.opts.validityS } : {}) };
      const res = await channel.unary<CertificateRequest, CertificateResponse>(CERTIFICATE_METHOD, encodeCertificateRequest, decodeCertificateResponse, req, metadata, CALL_TIMEOUT_MS);
      const issued = readIssued(keyPem, res.cert_chain);
      // Roots pushed while this call was out are newer than the ones it answered with.
      return this.pushed && this.pushed.at >= sentAt ? { ...issued, rootsPem: this.pushed.pem } : issued;
    } finally {
      channel.close();
    }
  }
}

/** The control plane's certificate must name its identity (its chain was checked before this). */
function checkControlPlane(cert: PeerCertificate): Error | undefined {
  const id = peerIdentity(cert);
  if (id?.namespace === CONTROL_PLANE_IDENTITY.namespace && id.serviceAccount === CONTROL_PLANE_IDENTITY.serviceAccount) return undefined;
  return new Error(`the xDS server's certificate is not the control plane's (it is for ${id?.spiffeId ?? 'no SPIFFE identity'})`);
}

/**
 * The answer, in Istio's order: the certificate for our key, the intermediates it chains through
 * (none when the CA signs with its root), and last the roots (one entry, one or more PEM blocks).
 * Anything else (garbage, another key, a chain that does not lead to one of the roots, no SPIFFE
 * identity) is refused, saying which.
 */
function readIssued(keyPem: string, chain: string[]): WorkloadCert {
  if (chain.length < 2) throw new CertificateRefused(`the certificate API answered ${chain.length} certificate(s); a certificate and the roots were expected`);
  const parse = (pem: string, what: string) => {
    try {
      return new X509Certificate(pem);
    } catch (e) {
      throw new CertificateRefused(`the certificate API answered ${what} that cannot be read (${(e as Error).message})`);
    }
  };
  const leaf = parse(chain[0], 'a certificate');
  const intermediates = chain.slice(1, -1).map((pem, i) => parse(pem, `intermediate ${i + 1}`));
  const rootBlocks = pemCertificates(chain[chain.length - 1]);
  if (!rootBlocks.length) throw new CertificateRefused('the certificate API answered no PEM root certificate after the certificate');
  const roots = rootBlocks.map((pem, i) => parse(pem, `root ${i + 1}`));
  const { createPrivateKey } = process.getBuiltinModule('node:crypto');
  if (!leaf.checkPrivateKey(createPrivateKey(keyPem))) throw new CertificateRefused('the certificate API answered a certificate for another key');
  const signs = (child: InstanceType<typeof X509Certificate>, parent: InstanceType<typeof X509Certificate>) => child.checkIssued(parent) && child.verify(parent.publicKey);
  let last = leaf;
  for (const [i, c] of intermediates.entries()) {
    if (!signs(last, c)) throw new CertificateRefused(`the certificate API answered a chain that breaks at intermediate ${i + 1}: it did not sign the certificate before it`);
    last = c;
  }
  if (!roots.some((r) => signs(last, r))) throw new CertificateRefused('the certificate API answered a certificate that does not chain to any of the roots it sent');
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(leaf.subject)?.[1];
  const spiffe = peerIdentity({ subjectaltname: leaf.subjectAltName, subject: { CN: cn } });
  if (!spiffe) throw new CertificateRefused(`the certificate API answered a certificate with no SPIFFE identity (${leaf.subjectAltName ?? 'no SAN'})`);
  return {
    keyPem,
    certPem: chain.slice(0, -1).map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join(''),
    rootsPem: rootBlocks.join(''),
    notBefore: leaf.validFromDate.getTime(),
    notAfter: leaf.validToDate.getTime(),
    receivedAt: Date.now(),
    spiffeId: spiffe.spiffeId,
    namespace: spiffe.namespace,
    ...(spiffe.workload ? { workload: spiffe.workload } : {}),
  };
}
