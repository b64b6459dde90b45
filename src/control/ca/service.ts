// The certificate API, as Istio's CA serves it (istio.v1.auth.IstioCertificateService,
// CreateCertificate), on the control plane's gRPC port beside xDS: a workload sends a PKCS #10
// request for the key it made, with a join token as its credential (authorization: Bearer
// weft-join....); it gets a certificate for the identity the token proves, whatever the request
// names, and the roots. The token is spent.
//
// Not yet: TLS on this port (issue 7: the certificate API runs over TLS, then mTLS), and a
// workload's own certificate as the credential for renewal. Until then a join token travels in
// plain text, on loopback by default.
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { CaError, type CertificateAuthority, DEFAULT_WORKLOAD_TTL_MS, readRequest } from './ca.ts';
import { JoinError, type JoinTokens } from './join.ts';

/** Istio's security/proto/istioca.proto, the fields Weft reads (metadata is not). */
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
const Request = root.lookupType('istio.v1.auth.IstioCertificateRequest');
const Response = root.lookupType('istio.v1.auth.IstioCertificateResponse');

export interface CertificateRequest {
  csr: string;
  /** Seconds; 0 or unset: the CA's default. */
  validity_duration?: number;
}
export interface CertificateResponse {
  /** The workload certificate first, then the roots (Istio's order). */
  cert_chain: string[];
}

export const CERTIFICATE_METHOD = '/istio.v1.auth.IstioCertificateService/CreateCertificate';

export const CERTIFICATE_SERVICE: grpc.ServiceDefinition = {
  CreateCertificate: {
    path: CERTIFICATE_METHOD,
    requestStream: false,
    responseStream: false,
    requestSerialize: (m: CertificateRequest) => Buffer.from(Request.encode(Request.fromObject(m)).finish()),
    requestDeserialize: (b: Buffer) => Request.toObject(Request.decode(b), { longs: Number, defaults: true }) as CertificateRequest,
    responseSerialize: (m: CertificateResponse) => Buffer.from(Response.encode(Response.fromObject(m)).finish()),
    responseDeserialize: (b: Buffer) => Response.toObject(Response.decode(b), { defaults: true }) as CertificateResponse,
    originalName: 'createCertificate',
  },
};

/** A request may ask for less than the CA's default, not more. */
const MAX_VALIDITY_S = DEFAULT_WORKLOAD_TTL_MS / 1000;

export function certificateHandlers(ca: CertificateAuthority, tokens: JoinTokens, log: (msg: string) => void = () => {}): grpc.UntypedServiceImplementation {
  return {
    CreateCertificate: (call: grpc.ServerUnaryCall<CertificateRequest, CertificateResponse>, done: grpc.sendUnaryData<CertificateResponse>) => {
      void (async () => {
        const auth = String(call.metadata.get('authorization')[0] ?? '');
        const m = /^Bearer (\S{1,200})$/.exec(auth);
        if (!m) return done({ code: grpc.status.UNAUTHENTICATED, details: 'a certificate needs a credential: authorization: Bearer <join token> (weft token create)' });
        // The request first: a request that cannot be signed does not spend the token (its
        // CaError is answered below, as INVALID_ARGUMENT).
        const csr = await readRequest(call.request.csr);
        let id;
        try {
          id = tokens.redeem(m[1]);
        } catch (e) {
          if (!(e instanceof JoinError)) throw e;
          log(`certificate refused to ${call.getPeer()}: ${e.message}`);
          return done({ code: grpc.status.UNAUTHENTICATED, details: e.message });
        }
        const asked = Number(call.request.validity_duration ?? 0);
        const ttlMs = asked > 0 ? Math.min(asked, MAX_VALIDITY_S) * 1000 : undefined;
        const issued = await ca.sign(csr, { namespace: id.namespace, serviceAccount: id.serviceAccount }, ttlMs);
        log(`certificate for ${issued.spiffeId} (workload ${id.namespace}/${id.workload}) issued to ${call.getPeer()}, until ${issued.notAfter.toISOString()}`);
        done(null, { cert_chain: [issued.certificate, issued.trustBundle] });
      })().catch((e: unknown) => done({ code: e instanceof CaError ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL, details: (e as Error).message }));
    },
  };
}
