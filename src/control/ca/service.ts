// The certificate API, as Istio's CA serves it (istio.v1.auth.IstioCertificateService,
// CreateCertificate), on the control plane's xDS port, over TLS. A workload sends a PKCS #10
// request for a key it made, with one of two credentials:
//   - a join token (authorization: Bearer weft-join....), for its first certificate: the token is
//     spent, and the certificate is for the identity the token was made for;
//   - its current certificate, presented in the TLS handshake, to renew: the new certificate is
//     for the same identity.
// Whatever names the request itself asks for are ignored. The answer is the certificate, the
// intermediates it chains through (a plugged-in CA's, or Weft's own under --ca-intermediate;
// none when Weft's root signs directly), then the roots.
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { type CertificateRequest, type CertificateResponse, CERTIFICATE_METHOD, decodeCertificateRequest, decodeCertificateResponse, encodeCertificateRequest, encodeCertificateResponse } from '../../xds/istio-ca.ts';
import { CONTROL_PLANE_IDENTITY, peerIdentity } from '../../util/spiffe.ts';
import { CaError, type CertificateAuthority, DEFAULT_WORKLOAD_TTL_MS, type WorkloadIdentity, readRequest } from './ca.ts';
import { JoinError, type JoinTokens } from './join.ts';

export { CERTIFICATE_METHOD, type CertificateRequest, type CertificateResponse };

export const CERTIFICATE_SERVICE: grpc.ServiceDefinition = {
  CreateCertificate: {
    path: CERTIFICATE_METHOD,
    requestStream: false,
    responseStream: false,
    requestSerialize: encodeCertificateRequest,
    requestDeserialize: decodeCertificateRequest,
    responseSerialize: encodeCertificateResponse,
    responseDeserialize: decodeCertificateResponse,
    originalName: 'createCertificate',
  },
};

/** A request may ask for less than the CA's default, not more. */
const MAX_VALIDITY_S = DEFAULT_WORKLOAD_TTL_MS / 1000;

/** A grpc-js server call, as far as its TLS peer goes (grpc-js does not export its AuthContext type). */
export interface TlsCall {
  getAuthContext(): { sslPeerCertificate?: PeerCertificate } | null;
}

/**
 * The identity a call's TLS peer proved with a certificate of this mesh (the handshake checked its
 * chain to the roots), or undefined: plain text, no certificate, or one of another CA or trust
 * domain. `trustDomains`: the mesh's, then its aliases (CertificateAuthority.trustDomains).
 */
export function callerIdentity(call: TlsCall, trustDomains: string | readonly string[]): WorkloadIdentity | undefined {
  const id = peerIdentity(call.getAuthContext()?.sslPeerCertificate);
  if (!id || !(typeof trustDomains === 'string' ? [trustDomains] : trustDomains).includes(id.trustDomain)) return undefined;
  return { namespace: id.namespace, serviceAccount: id.serviceAccount, ...(id.workload ? { workload: id.workload } : {}) };
}

export function certificateHandlers(ca: CertificateAuthority, tokens: JoinTokens, log: (msg: string) => void = () => {}): grpc.UntypedServiceImplementation {
  return {
    CreateCertificate: (call: grpc.ServerUnaryCall<CertificateRequest, CertificateResponse>, done: grpc.sendUnaryData<CertificateResponse>) => {
      void (async () => {
        const auth = String(call.metadata.get('authorization')[0] ?? '');
        const bearer = /^Bearer (\S{1,200})$/.exec(auth);
        const renewing = bearer ? undefined : callerIdentity(call, ca.trustDomains());
        if (!bearer && !renewing) {
          return done({ code: grpc.status.UNAUTHENTICATED, details: 'a certificate needs a credential: a join token (authorization: Bearer <token>, from weft token create) or, to renew, this mesh\'s certificate in the TLS handshake' });
        }
        // The token is read, the certificate made, and only then the token spent: a request that
        // cannot be signed (its CaError is answered below, as INVALID_ARGUMENT), or a signature
        // slower than the caller waits, does not cost the caller its token.
        const refused = (e: unknown) => {
          if (!(e instanceof JoinError)) throw e;
          log(`certificate refused to ${call.getPeer()}: ${e.message}`);
          done({ code: grpc.status.UNAUTHENTICATED, details: e.message });
        };
        let id: WorkloadIdentity;
        if (bearer) {
          try {
            const j = tokens.peek(bearer[1]);
            id = { namespace: j.namespace, serviceAccount: j.serviceAccount, workload: j.workload };
          } catch (e) {
            return refused(e);
          }
        } else {
          id = renewing!;
        }
        // Never the control plane's own identity, whatever a token (made before that rule, say) names.
        if (id.namespace === CONTROL_PLANE_IDENTITY.namespace && id.serviceAccount === CONTROL_PLANE_IDENTITY.serviceAccount) {
          return done({ code: grpc.status.PERMISSION_DENIED, details: 'the control plane\'s identity is not issued through the certificate API' });
        }
        const csr = await readRequest(call.request.csr);
        const asked = Number(call.request.validity_duration ?? 0);
        const ttlMs = asked > 0 ? Math.min(asked, MAX_VALIDITY_S) * 1000 : undefined;
        const issued = await ca.sign(csr, id, ttlMs);
        // A caller that gave up meanwhile (its deadline passed while this was signing) keeps its token.
        if (call.cancelled) return;
        if (bearer) {
          try {
            tokens.redeem(bearer[1]); // spent now; of two racing callers, one gets here
          } catch (e) {
            return refused(e);
          }
        }
        const by = bearer ? 'a join token' : 'its current certificate';
        log(`certificate for ${issued.spiffeId}${id.workload ? ` (workload ${id.namespace}/${id.workload})` : ''} issued to ${call.getPeer()} on ${by}, until ${issued.notAfter.toISOString()}`);
        // Istio's order: the certificate, the intermediates, the roots last.
        done(null, { cert_chain: [issued.certificate, ...issued.chain, issued.trustBundle] });
      })().catch((e: unknown) => done({ code: e instanceof CaError ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL, details: (e as Error).message }));
    },
  };
}
