// The mesh's certificate authority, in the control plane: a root generated on first start and
// kept in the store (its private key sealed with a key-encryption key that is not in the store),
// and short-lived workload certificates issued from the sidecars' certificate requests.
//
//   - Workload certificates carry one URI SAN, the SPIFFE identity
//     spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>, which the caller proved (a join
//     token, a Kubernetes token): whatever names the request itself asks for are ignored. The
//     trust domain is the mesh config's (meshConfig.trustDomain, setTrustDomain): a change applies
//     to the certificates issued from then on, as sidecars renew theirs at half their life.
//   - Keys are ECDSA P-256, made by the sidecar; a request for any other key is refused. Private
//     keys never reach the control plane.
//   - 24 h by default; the root 10 years.
// X.509 and PKCS #10 through @peculiar/x509 on Node's WebCrypto.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { ConfigStore } from '../store/store.ts';
import { crypto, x509 } from './x509.ts';
import { DEFAULT_TRUST_DOMAIN, spiffeUri } from '../../util/spiffe.ts';

const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

export { DEFAULT_TRUST_DOMAIN };
export const DEFAULT_WORKLOAD_TTL_MS = 24 * 3600_000;
const ROOT_TTL_MS = 10 * 365 * 24 * 3600_000;
/** A certificate starts a minute before it is made: clocks of the machines that check it may be behind. */
const BACKDATE_MS = 60_000;
/** A PEM certificate request larger than this is no P-256 request: refused before parsing. */
const MAX_CSR_BYTES = 16 * 1024;
/** The secret the root lives in (store.getSecret). */
const ROOT_SECRET = 'ca/root';

/** A refusal to issue, in words a sidecar's log can show. */
export class CaError extends Error {
  override name = 'CaError';
}

export interface WorkloadIdentity {
  namespace: string;
  serviceAccount: string;
  /** The workload's name, written as the subject's CN (src/util/spiffe.ts reads it back). */
  workload?: string;
}

/** Kubernetes names: what may stand in a SPIFFE path segment here (and in a join token's identity). */
export const KUBERNETES_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export function spiffeId(trustDomain: string, id: WorkloadIdentity): string {
  return spiffeUri(trustDomain, id.namespace, id.serviceAccount);
}

export interface CaOptions {
  store: Pick<ConfigStore, 'getSecret' | 'putSecretIfAbsent'>;
  /** 32 bytes that seal the root's private key in the store. */
  kek: Buffer;
  trustDomain?: string;
  workloadTtlMs?: number;
  /** The clock, for tests. */
  now?: () => number;
}

export interface Issued {
  /** The workload certificate, PEM. */
  certificate: string;
  /** The roots a peer's certificate must chain to, PEM. */
  trustBundle: string;
  notAfter: Date;
  spiffeId: string;
}

interface RootRecord {
  certificate: string;
  key: Sealed;
}

interface Sealed {
  alg: 'A256GCM';
  iv: string;
  tag: string;
  data: string;
}

export class CertificateAuthority {
  private td: string;
  private aliases: readonly string[] = [];
  private readonly root: x509.X509Certificate;
  private readonly rootKey: CryptoKey;
  private readonly ttlMs: number;
  private readonly now: () => number;

  private constructor(root: x509.X509Certificate, rootKey: CryptoKey, trustDomain: string, ttlMs: number, now: () => number) {
    this.root = root;
    this.rootKey = rootKey;
    this.td = trustDomain;
    this.ttlMs = ttlMs;
    this.now = now;
  }

  /** The CA of a store: its root if it has one, else a new root, stored for every later start. */
  static async open(opts: CaOptions): Promise<CertificateAuthority> {
    if (opts.kek.length !== 32) throw new CaError(`the CA's key-encryption key must be 32 bytes, not ${opts.kek.length}`);
    const trustDomain = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    const now = opts.now ?? Date.now;
    let stored = opts.store.getSecret(ROOT_SECRET);
    if (stored === undefined) {
      // Another control plane on the same store may make one at the same time: the first stored wins.
      stored = opts.store.putSecretIfAbsent(ROOT_SECRET, JSON.stringify(await newRoot(trustDomain, opts.kek, now())));
    }
    const record = JSON.parse(stored) as RootRecord;
    const root = new x509.X509Certificate(record.certificate);
    // The key is sealed with the certificate as associated data: a certificate swapped in the
    // store (by someone who can write it but has no KEK) does not open.
    const pkcs8 = unseal(record.key, opts.kek, Buffer.from(root.rawData));
    const rootKey = await crypto.subtle.importKey('pkcs8', new Uint8Array(pkcs8), P256, false, ['sign']);
    // And the key must be the certificate's.
    const probe = randomBytes(32);
    const signature = await crypto.subtle.sign(SIGNING, rootKey, probe);
    const publicKey = await root.publicKey.export(P256, ['verify']);
    if (!(await crypto.subtle.verify(SIGNING, publicKey, signature, probe))) throw new CaError("the CA root's private key is not the key of its certificate: the stored root was altered");
    return new CertificateAuthority(root, rootKey, trustDomain, opts.workloadTtlMs ?? DEFAULT_WORKLOAD_TTL_MS, now);
  }

  /** The trust domain of the certificates it issues (spiffe://<this>/ns/.../sa/...). */
  get trustDomain(): string {
    return this.td;
  }

  /**
   * The trust domains whose certificates prove a workload to the control plane (a renewal, an xDS
   * stream): the mesh's own, then its aliases (meshConfig.trustDomainAliases), so that sidecars still
   * holding a certificate of an earlier trust domain renew it into the new one.
   */
  trustDomains(): readonly string[] {
    return [this.td, ...this.aliases.filter((a) => a !== this.td)];
  }

  /** The mesh config's trustDomain and trustDomainAliases: certificates issued from now on are in `trustDomain`. */
  setTrustDomain(trustDomain: string, aliases: readonly string[] = []): void {
    this.td = trustDomain;
    this.aliases = [...aliases];
  }

  /** The roots, PEM: what every sidecar trusts. */
  trustBundle(): string {
    return this.root.toString('pem');
  }

  /**
   * A certificate for `id`, for the key of a PKCS #10 request: its PEM, or the request readRequest
   * already read from it (so that it is not read and verified twice). The request must be signed
   * by its key, an ECDSA P-256 one; the names it asks for are ignored.
   */
  async sign(request: string | x509.Pkcs10CertificateRequest, id: WorkloadIdentity, ttlMs: number = this.ttlMs): Promise<Issued> {
    if (!KUBERNETES_NAME.test(id.namespace) || !KUBERNETES_NAME.test(id.serviceAccount) || (id.workload !== undefined && !KUBERNETES_NAME.test(id.workload))) {
      throw new CaError(`no certificate for namespace "${id.namespace}", service account "${id.serviceAccount}"${id.workload === undefined ? '' : `, workload "${id.workload}"`}: not Kubernetes names`);
    }
    const now = this.now();
    if (now >= this.root.notAfter.getTime()) throw new CaError(`the CA root expired at ${this.root.notAfter.toISOString()}: no certificate can be issued under it`);
    const csr = typeof request === 'string' ? await readRequest(request) : request;
    const uri = spiffeId(this.trustDomain, id);
    const notAfter = new Date(Math.min(now + ttlMs, this.root.notAfter.getTime()));
    const publicKey = await csr.publicKey.export(P256, ['verify']);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: id.workload ? `CN=${id.workload}` : '',
      issuer: this.root.subject,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter,
      publicKey,
      signingKey: this.rootKey,
      signingAlgorithm: SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        // Critical, as in Istio's certificates, whose subject is empty (RFC 5280 4.2.1.6).
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }], true),
        await x509.AuthorityKeyIdentifierExtension.create(this.root.publicKey),
      ],
    });
    return { certificate: cert.toString('pem'), trustBundle: this.trustBundle(), notAfter, spiffeId: uri };
  }
}

/**
 * A PKCS #10 request a workload may have a certificate for: PEM, at most 16 KiB, an ECDSA P-256
 * key, signed by that key. Anything else is a CaError saying why. (Checked before a credential
 * is spent on it.)
 */
export async function readRequest(csrPem: string): Promise<x509.Pkcs10CertificateRequest> {
  if (typeof csrPem !== 'string' || csrPem.length > MAX_CSR_BYTES) throw new CaError(`the certificate request is not a PEM request of at most ${MAX_CSR_BYTES} bytes`);
  let csr: x509.Pkcs10CertificateRequest;
  let alg: EcKeyAlgorithm;
  try {
    // DER, decoded here with one linear check: the library's own PEM parser backtracks
    // exponentially on crafted header lines (a few hundred bytes would block the control plane).
    csr = new x509.Pkcs10CertificateRequest(derOf(csrPem));
    alg = csr.publicKey.algorithm as EcKeyAlgorithm;
  } catch (e) {
    throw new CaError(`the certificate request cannot be read: ${e instanceof CaError ? e.message : (e as Error).message}`);
  }
  if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') throw new CaError(`the certificate request's key is ${alg.name}${alg.namedCurve ? ` ${alg.namedCurve}` : ''}; workload keys are ECDSA P-256`);
  let signed = false;
  try {
    signed = await csr.verify();
  } catch {
    signed = false;
  }
  if (!signed) throw new CaError('the certificate request is not signed by its own key');
  return csr;
}

/** A positive 128-bit serial number, hex (RFC 5280: at most 20 octets, positive). */
function serial(): string {
  const b = randomBytes(16);
  b[0] &= 0x7f;
  return b.toString('hex');
}

async function newRoot(trustDomain: string, kek: Buffer, now: number): Promise<RootRecord> {
  const keys = (await crypto.subtle.generateKey(P256, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `O=${trustDomain.replace(/[,+"\\<>;=]/g, '')}, CN=Weft root CA`,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + ROOT_TTL_MS),
    keys,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { certificate: cert.toString('pem'), key: seal(pkcs8, kek, Buffer.from(cert.rawData)) };
}

const PEM_CSR = /^-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END (?:NEW )?CERTIFICATE REQUEST-----\s*$/;

/** A PEM certificate request's DER: one block, base64 only (no headers), a DER SEQUENCE. */
function derOf(pem: string): ArrayBuffer {
  const m = PEM_CSR.exec(pem);
  if (!m) throw new CaError('not one PEM CERTIFICATE REQUEST block');
  const der = Buffer.from(m[1].replace(/[\r\n]/g, ''), 'base64');
  if (der.length < 2 || der[0] !== 0x30) throw new CaError('its content is no DER sequence');
  return der.buffer.slice(der.byteOffset, der.byteOffset + der.length) as ArrayBuffer;
}

function seal(plain: Buffer, kek: Buffer, aad: Buffer): Sealed {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', kek, iv);
  c.setAAD(aad);
  const data = Buffer.concat([c.update(plain), c.final()]);
  return { alg: 'A256GCM', iv: iv.toString('base64'), tag: c.getAuthTag().toString('base64'), data: data.toString('base64') };
}

function unseal(s: Sealed, kek: Buffer, aad: Buffer): Buffer {
  try {
    const d = createDecipheriv('aes-256-gcm', kek, Buffer.from(s.iv, 'base64'));
    d.setAAD(aad);
    d.setAuthTag(Buffer.from(s.tag, 'base64'));
    return Buffer.concat([d.update(Buffer.from(s.data, 'base64')), d.final()]);
  } catch {
    throw new CaError("the CA root's private key cannot be opened with this key-encryption key and this certificate (was the store moved without its key-encryption key, or the stored root altered?)");
  }
}
