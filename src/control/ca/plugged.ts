// A CA the user plugs in, as Istio's "Plug in CA certificates" task does: a directory in Istio's
// cacerts layout,
//   ca-cert.pem     the CA certificate Weft signs workload certificates with (an intermediate),
//   ca-key.pem      its private key (unencrypted PEM: PKCS #8, SEC 1 or PKCS #1),
//   cert-chain.pem  ca-cert.pem, then the certificates up to the root (optional: without it,
//                   ca-cert.pem must be signed by a root itself),
//   root-cert.pem   the root(s) every workload trusts.
// Everything is checked before the control plane serves anything; each refusal names the file
// and says what is wrong, never what a key holds.
import path from 'node:path';
import fs from 'node:fs';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { pemCertificates } from '../../util/pem.ts';
import { crypto, x509 } from './x509.ts';

export const CACERTS_FILES = { cert: 'ca-cert.pem', key: 'ca-key.pem', chain: 'cert-chain.pem', root: 'root-cert.pem' } as const;

/** A refusal of a cacerts directory: what is wrong, naming the file. */
export class CaCertsError extends Error {
  override name = 'CaCertsError';
}

export interface PluggedCa {
  /** The signing certificate (ca-cert.pem) and its key. */
  cert: x509.X509Certificate;
  key: CryptoKey;
  signingAlgorithm: Algorithm | EcdsaParams | RsaHashedImportParams;
  /** The certificates between ca-cert.pem and the root, PEM, in order (workload certificates carry them). */
  intermediates: string[];
  /** root-cert.pem's certificates, PEM. */
  roots: string[];
}

/** Reads and checks a cacerts directory (at `now`, for validity). */
export async function loadPluggedCa(dir: string, now: number): Promise<PluggedCa> {
  const file = (f: string) => path.join(dir, f);
  const read = (f: string, optional = false): string | undefined => {
    try {
      return fs.readFileSync(file(f), 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (optional && code === 'ENOENT') return undefined;
      throw new CaCertsError(`${file(f)}: cannot be read (${code ?? (e as Error).message}); a CA directory holds ${Object.values(CACERTS_FILES).join(', ')}`);
    }
  };
  const certs = (f: string, text: string): X509Certificate[] => {
    const blocks = pemCertificates(text);
    if (!blocks.length) throw new CaCertsError(`${file(f)}: holds no PEM certificate`);
    return blocks.map((b, i) => {
      try {
        return new X509Certificate(b);
      } catch (e) {
        throw new CaCertsError(`${file(f)}: certificate ${i + 1} cannot be read (${(e as Error).message})`);
      }
    });
  };
  const name = (c: X509Certificate) => c.subject.replace(/\n/g, ', ');
  const valid = (f: string, c: X509Certificate) => {
    if (now >= c.validToDate.getTime()) throw new CaCertsError(`${file(f)}: certificate ${name(c)} expired at ${c.validToDate.toISOString()}`);
    if (now < c.validFromDate.getTime()) throw new CaCertsError(`${file(f)}: certificate ${name(c)} is not valid before ${c.validFromDate.toISOString()}`);
  };
  const isCa = (f: string, c: X509Certificate) => {
    if (!c.ca) throw new CaCertsError(`${file(f)}: certificate ${name(c)} is not a CA certificate (its basic constraints do not say CA:TRUE), so it cannot sign workload certificates`);
    const ku = new x509.X509Certificate(c.raw).getExtension(x509.KeyUsagesExtension);
    if (ku && !(ku.usages & x509.KeyUsageFlags.keyCertSign)) throw new CaCertsError(`${file(f)}: certificate ${name(c)} is a CA whose key usage does not allow signing certificates (keyCertSign)`);
  };

  const [caCert, ...extra] = certs(CACERTS_FILES.cert, read(CACERTS_FILES.cert)!);
  if (extra.length) throw new CaCertsError(`${file(CACERTS_FILES.cert)}: holds ${extra.length + 1} certificates; it is the one CA certificate that signs (the rest of the chain goes in ${CACERTS_FILES.chain})`);
  valid(CACERTS_FILES.cert, caCert);
  isCa(CACERTS_FILES.cert, caCert);

  let keyObject: KeyObject;
  const keyText = read(CACERTS_FILES.key)!;
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(keyText)) throw new CaCertsError(`${file(CACERTS_FILES.key)}: the key is encrypted; give it unencrypted (as Istio's cacerts), readable by the control plane only`);
  try {
    keyObject = createPrivateKey({ key: keyText, format: 'pem' });
  } catch {
    throw new CaCertsError(`${file(CACERTS_FILES.key)}: is not a PEM private key`);
  }
  if (!caCert.checkPrivateKey(keyObject)) throw new CaCertsError(`${file(CACERTS_FILES.key)}: the key is not the key of ${file(CACERTS_FILES.cert)} (${name(caCert)})`);
  const { importAlg, signingAlgorithm } = algorithmsOf(keyObject, file(CACERTS_FILES.key));

  const roots = certs(CACERTS_FILES.root, read(CACERTS_FILES.root)!);
  for (const r of roots) {
    valid(CACERTS_FILES.root, r);
    isCa(CACERTS_FILES.root, r);
  }
  // cert-chain.pem: ca-cert.pem first (Istio's layout), then up towards the root, which it may end with.
  const chainText = read(CACERTS_FILES.chain, true);
  let chain = chainText === undefined ? [] : certs(CACERTS_FILES.chain, chainText);
  if (chain.length && chain[0].fingerprint256 === caCert.fingerprint256) chain = chain.slice(1);
  const isRoot = (c: X509Certificate) => roots.some((r) => r.fingerprint256 === c.fingerprint256);
  const intermediates: X509Certificate[] = [];
  let last = caCert;
  for (const c of chain) {
    if (isRoot(c)) break;
    if (!(last.checkIssued(c) && last.verify(c.publicKey))) {
      throw new CaCertsError(`${file(CACERTS_FILES.chain)}: the chain does not lead to the root: ${name(last)} is not signed by the next certificate, ${name(c)}`);
    }
    valid(CACERTS_FILES.chain, c);
    isCa(CACERTS_FILES.chain, c);
    intermediates.push(c);
    last = c;
  }
  if (!roots.some((r) => last.checkIssued(r) && last.verify(r.publicKey))) {
    throw new CaCertsError(`${chainText === undefined ? file(CACERTS_FILES.cert) : file(CACERTS_FILES.chain)}: the chain does not lead to a root of ${file(CACERTS_FILES.root)}: ${name(last)} is signed by ${last.issuer.replace(/\n/g, ', ')}, which is not one of its roots`);
  }

  const pkcs8 = keyObject.export({ format: 'der', type: 'pkcs8' });
  const key = await crypto.subtle.importKey('pkcs8', new Uint8Array(pkcs8), importAlg, false, ['sign']);
  return {
    cert: new x509.X509Certificate(caCert.raw),
    key,
    signingAlgorithm,
    intermediates: intermediates.map((c) => c.toString()),
    roots: roots.map((r) => r.toString()),
  };
}

/** How WebCrypto imports and signs with a key of this type (ECDSA P-256/P-384, RSA). */
function algorithmsOf(k: KeyObject, where: string): { importAlg: EcKeyImportParams | RsaHashedImportParams; signingAlgorithm: EcdsaParams | RsaHashedImportParams } {
  if (k.asymmetricKeyType === 'ec') {
    const curve = k.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return { importAlg: { name: 'ECDSA', namedCurve: 'P-256' }, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } };
    if (curve === 'secp384r1') return { importAlg: { name: 'ECDSA', namedCurve: 'P-384' }, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-384' } };
    throw new CaCertsError(`${where}: an EC key on curve ${curve}; Weft signs with P-256, P-384 or RSA keys`);
  }
  if (k.asymmetricKeyType === 'rsa') {
    const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    return { importAlg: alg, signingAlgorithm: alg };
  }
  throw new CaCertsError(`${where}: a ${k.asymmetricKeyType} key; Weft signs with P-256, P-384 or RSA keys`);
}
