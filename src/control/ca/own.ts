// Weft's own CA certificates, as the store keeps them (ca.ts): roots made here and, with
// --ca-intermediate, an intermediate CA under each root. Every private key is sealed (AES-256-GCM)
// with the key-encryption key (kek.ts), with its certificate as associated data: the store never
// holds a key in the clear, and a certificate swapped in it does not open.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { crypto, x509 } from './x509.ts';
import { CaError } from './ca.ts';

export const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

export const ROOT_TTL_MS = 10 * 365 * 24 * 3600_000;
export const INTERMEDIATE_TTL_MS = 365 * 24 * 3600_000;
/** An intermediate is replaced by a new one under the same root once less than this of its life is left. */
export const INTERMEDIATE_RENEW_BEFORE_MS = 90 * 24 * 3600_000;
/** A certificate starts a minute before it is made: clocks of the machines that check it may be behind. */
export const BACKDATE_MS = 60_000;

export interface Sealed {
  alg: 'A256GCM';
  iv: string;
  tag: string;
  data: string;
}

/** A CA certificate made here, as stored: PEM, and its PKCS #8 key sealed. */
export interface KeptCa {
  certificate: string;
  key: Sealed;
}

/** A root made here, as stored, with how long leaves it signed may live and the intermediate under it (--ca-intermediate). */
export interface RootRecord extends KeptCa {
  /** Epoch ms no workload certificate signed under this root outlives (an upper bound, raised as it signs). */
  leavesUntil?: number;
  intermediate?: KeptCa;
}

/** A kept CA certificate, opened: its key unsealed and checked against it. */
export interface OpenCa {
  cert: x509.X509Certificate;
  key: CryptoKey;
}

/** A new self-signed root (10 years), its key sealed. */
export async function newRoot(trustDomain: string, kek: Buffer, now: number): Promise<RootRecord> {
  const keys = (await crypto.subtle.generateKey(P256, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `O=${orgOf(trustDomain)}, CN=Weft root CA`,
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
  return { ...(await kept(cert, keys.privateKey, kek)), leavesUntil: 0 };
}

/**
 * A new intermediate CA signed by `root`: ECDSA P-256, CA:TRUE with pathLen 0 (it signs workload
 * certificates, never another CA), keyCertSign; a year, never past the root's own end.
 */
export async function newIntermediate(root: OpenCa, trustDomain: string, kek: Buffer, now: number): Promise<KeptCa> {
  const keys = (await crypto.subtle.generateKey(P256, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `O=${orgOf(trustDomain)}, CN=Weft intermediate CA`,
    issuer: root.cert.subject,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(Math.min(now + INTERMEDIATE_TTL_MS, root.cert.notAfter.getTime())),
    publicKey: keys.publicKey,
    signingKey: root.key,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(root.cert.publicKey),
    ],
  });
  return kept(cert, keys.privateKey, kek);
}

/** A stored CA certificate opened (`what` names it in errors: "root", "intermediate"); an intermediate must be `issuer`'s. */
export async function openKept(record: KeptCa, kek: Buffer, what: string, issuer?: x509.X509Certificate): Promise<OpenCa> {
  const cert = new x509.X509Certificate(record.certificate);
  const pkcs8 = unseal(record.key, kek, Buffer.from(cert.rawData), what);
  const key = await crypto.subtle.importKey('pkcs8', new Uint8Array(pkcs8), P256, false, ['sign']);
  // And the key must be the certificate's.
  const probe = randomBytes(32);
  const signature = await crypto.subtle.sign(SIGNING, key, probe);
  const publicKey = await cert.publicKey.export(P256, ['verify']);
  if (!(await crypto.subtle.verify(SIGNING, publicKey, signature, probe))) throw new CaError(`the CA ${what}'s private key is not the key of its certificate: the stored ${what} was altered`);
  if (issuer && !(await cert.verify({ publicKey: issuer.publicKey, signatureOnly: true }))) throw new CaError(`the stored CA ${what} ${cert.subject} is not signed by its root ${issuer.subject}: the stored ${what} was altered`);
  return { cert, key };
}

/** A positive 128-bit serial number, hex (RFC 5280: at most 20 octets, positive). */
export function serial(): string {
  const b = randomBytes(16);
  b[0] &= 0x7f;
  return b.toString('hex');
}

export function pemOf(c: x509.X509Certificate): string {
  return `${c.toString('pem').trim()}\n`;
}

/** The trust domain as an O= value: without the characters a DN string would read as syntax. */
const orgOf = (trustDomain: string) => trustDomain.replace(/[,+"\\<>;=]/g, '');

async function kept(cert: x509.X509Certificate, privateKey: CryptoKey, kek: Buffer): Promise<KeptCa> {
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', privateKey));
  return { certificate: cert.toString('pem'), key: seal(pkcs8, kek, Buffer.from(cert.rawData)) };
}

function seal(plain: Buffer, kek: Buffer, aad: Buffer): Sealed {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', kek, iv);
  c.setAAD(aad);
  const data = Buffer.concat([c.update(plain), c.final()]);
  return { alg: 'A256GCM', iv: iv.toString('base64'), tag: c.getAuthTag().toString('base64'), data: data.toString('base64') };
}

function unseal(s: Sealed, kek: Buffer, aad: Buffer, what: string): Buffer {
  try {
    const d = createDecipheriv('aes-256-gcm', kek, Buffer.from(s.iv, 'base64'));
    d.setAAD(aad);
    d.setAuthTag(Buffer.from(s.tag, 'base64'));
    return Buffer.concat([d.update(Buffer.from(s.data, 'base64')), d.final()]);
  } catch {
    throw new CaError(`the CA ${what}'s private key cannot be opened with this key-encryption key and this certificate (was the store moved without its key-encryption key, or the stored ${what} altered?)`);
  }
}
