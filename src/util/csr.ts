// A workload key and its PKCS #10 certificate request, made with node:crypto alone: an ECDSA P-256
// key (the CA takes no other) and a request with an empty subject, no attributes, signed
// ecdsa-with-SHA256. The CA ignores every name a request asks for, so there is nothing else to say.
//
// Written out here, a few lines of DER, rather than with @peculiar/x509: that library and the
// WebCrypto it needs would cost every sidecar about 4 MB of private memory for one request a day
// (docs/performance.md). The control plane parses these with @peculiar/x509 (ca.ts's readRequest),
// and the tests check them with it and with openssl.
//
// node:crypto is taken with process.getBuiltinModule (see src/proxy/sidecar.ts on why).
const { generateKeyPairSync, sign } = process.getBuiltinModule('node:crypto');

export interface KeyAndRequest {
  /** The private key, PKCS #8 PEM: it never leaves this process. */
  keyPem: string;
  /** The certificate request, PEM. */
  csrPem: string;
}

/** A new P-256 key and a request for a certificate for it. */
export function newKeyAndRequest(): KeyAndRequest {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const info = seq(
    Buffer.from([0x02, 0x01, 0x00]), // version 0
    seq(), // subject: empty
    spki,
    Buffer.from([0xa0, 0x00]), // attributes: [0] IMPLICIT SET, empty
  );
  const signature = sign('sha256', info, { key: privateKey, dsaEncoding: 'der' });
  const der = seq(info, ECDSA_WITH_SHA256, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  return { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, csrPem: pem('CERTIFICATE REQUEST', der) };
}

/** AlgorithmIdentifier { 1.2.840.10045.4.3.2 } (RFC 5758: no parameters). */
const ECDSA_WITH_SHA256 = Buffer.from([0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);

const seq = (...parts: Buffer[]): Buffer => tlv(0x30, Buffer.concat(parts));

/** One DER element: tag, definite length (short or long form), content. */
function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), content]);
}

function pem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
