// Istio's certificate API (security/proto/istioca.proto: istio.v1.auth.IstioCertificateService,
// CreateCertificate), as both sides speak it: the control plane's CA serves it on the xDS port,
// the sidecar calls it for its workload certificate. Only the fields Weft uses (metadata is not).
import protobuf from 'protobufjs/light.js';

export const CERTIFICATE_METHOD = '/istio.v1.auth.IstioCertificateService/CreateCertificate';

export interface CertificateRequest {
  /** PEM PKCS #10 request. */
  csr: string;
  /** Seconds; 0 or unset: the CA's default. */
  validity_duration?: number;
}
export interface CertificateResponse {
  /** The workload certificate first, then the roots (Istio's order). */
  cert_chain: string[];
}

let types: { Request: protobuf.Type; Response: protobuf.Type } | undefined;
function load(): NonNullable<typeof types> {
  if (types) return types;
  const root = protobuf.Root.fromJSON({
    nested: {
      istio: {
        nested: {
          v1: {
            nested: {
              auth: {
                nested: {
                  IstioCertificateRequest: { fields: { csr: { type: 'string', id: 1 }, validity_duration: { type: 'int64', id: 3 } } },
                  IstioCertificateResponse: { fields: { cert_chain: { rule: 'repeated', type: 'string', id: 1 } } },
                },
              },
            },
          },
        },
      },
    },
  });
  types = { Request: root.lookupType('istio.v1.auth.IstioCertificateRequest'), Response: root.lookupType('istio.v1.auth.IstioCertificateResponse') };
  return types;
}

export const encodeCertificateRequest = (m: CertificateRequest): Buffer => Buffer.from(load().Request.encode(load().Request.fromObject(m)).finish());
export const decodeCertificateRequest = (b: Buffer): CertificateRequest => load().Request.toObject(load().Request.decode(b), { longs: Number, defaults: true }) as CertificateRequest;
export const encodeCertificateResponse = (m: CertificateResponse): Buffer => Buffer.from(load().Response.encode(load().Response.fromObject(m)).finish());
export const decodeCertificateResponse = (b: Buffer): CertificateResponse => load().Response.toObject(load().Response.decode(b), { defaults: true }) as CertificateResponse;
