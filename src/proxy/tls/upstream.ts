// The client side of mutual TLS (the contract's automatic mTLS): a connection to an endpoint whose
// transport socket is an UpstreamTlsContext (convert-tls.ts transportFor) is TLS 1.2+ with the
// workload certificate current at that moment ('default'), trusting only the mesh roots ('ROOTCA'),
// with the context's SNI, and the server's URI SAN must be one of match_subject_alt_names. ALPN is
// offered as Istio's alpn filter rewrites it: the upstream's HTTP version first, then the context's.
//
// Failures are the connection's: the socket emits 'error' before 'secureConnect', with code
// 'tls_handshake' and a message that starts "upstream TLS:" and says why, so that each pool reports
// a connect failure (errors.ts names the endpoint and cluster) that retries and outlier detection
// count as any other.
import type { TLSSocket } from 'node:tls';
import type { UpstreamTls } from '../xds-client/convert.ts';
import { type TlsSecrets, secureContext } from './secrets.ts';
import { identityOf, peerPrincipal, peerWorkload, setPeerPrincipal, spiffeOf } from './peer.ts';
import type { TlsStats } from './stats.ts';
import { originationContext, rootsName, sanMismatchOf } from './origination.ts';
import { PEER_EXCHANGE_ALPN } from '../../xds/node-meta.ts';

const tls = process.getBuiltinModule('node:tls');

/** What a pool or a tunnel needs to originate TLS to one endpoint. */
export interface TlsOrigin {
  tls: UpstreamTls;
  secrets: TlsSecrets;
  stats?: TlsStats;
  /** A TCP connection's cluster runs Istio's metadata exchange on this protocol (tcp/peer-exchange.ts). */
  peerExchange?: string;
}

/** What the connection carries, for the ALPN Istio's alpn filter sets. */
export type TlsCarries = 'http1' | 'http2' | 'tcp';

/** The error code of every failed upstream handshake (errors.ts turns it into connect_failed). */
export const TLS_HANDSHAKE = 'tls_handshake';

/**
 * Istio's alpn filter: istio-http/1.1 or istio-h2 ahead of the context's own (istio-peer-exchange,
 * istio); TCP offers the context's (istio-peer-exchange only where the cluster runs the metadata
 * exchange), and so does TLS of the user's own (the cluster's istio.alpn_override "false": h2 for
 * an HTTP/2 cluster, else none).
 */
export function offeredAlpn(t: UpstreamTls, carries: TlsCarries, peerExchange?: string): string[] {
  if (t.noAlpnOverride) return [...t.alpn];
  // The metadata exchange's protocol only on a TCP connection whose cluster runs the exchange: a
  // server that took it would write its frame into the stream (HTTP exchanges it in headers).
  const own = t.alpn.filter((p) => p !== PEER_EXCHANGE_ALPN || (carries === 'tcp' && p === peerExchange));
  if (carries === 'http1') return ['istio-http/1.1', ...own];
  if (carries === 'http2') return ['istio-h2', ...own];
  return own;
}

/** Why a verified server certificate is not the one asked for, or undefined when it is. */
export function sanMismatch(t: UpstreamTls, id: string | undefined): string | undefined {
  if (!t.sans.length) return undefined; // any workload of the mesh (the chain was verified against ROOTCA)
  if (id !== undefined && t.sans.includes(id)) return undefined;
  return `certificate for ${id ?? 'no SPIFFE identity'} is not one of ${t.sans.join(', ')}`;
}

/**
 * Opens TLS to host:port (a new TCP connection). The socket emits 'secureConnect' once the server
 * is verified (its SPIFFE id is then on it: peer.ts), else 'error' with code 'tls_handshake'.
 */
export function connectTls(host: string, port: number, o: TlsOrigin, carries: TlsCarries): TLSSocket {
  let verified = false;
  let tcpUp = false;
  // tls_params' versions are the context's (node:tls ignores the connection's when given one).
  // TLS origination's context is its files' (tls/origination.ts), read when its cluster came.
  const files = o.tls.files;
  const context = files ? originationContext(o.tls) : secureContext(o.secrets, o.tls.versions);
  const resume = sessionsOf(context);
  const sessionKey = `${host}|${port}|${o.tls.sni}|${o.tls.sans.join(',')}`;
  const saved = resume.get(sessionKey);
  const session = saved?.session;
  const s = tls.connect({
    host,
    port,
    // Node refuses an IP address as a server name; an empty sni sends none.
    ...(o.tls.sni ? { servername: o.tls.sni } : {}),
    secureContext: context,
    // TLS session resumption (Envoy's default: one session kept per upstream): a later connection
    // to the same endpoint resumes the last one's session, a shorter handshake with no certificate
    // signatures. The server still checks who the session was made with.
    ...(session ? { session } : {}),
    ALPNProtocols: offeredAlpn(o.tls, carries, o.peerExchange),
    // insecureSkipVerify: an empty validation context, as Envoy's, verifies nothing.
    rejectUnauthorized: files?.roots !== 'none',
    // The chain is verified against ROOTCA (or the origination's roots) first; then, instead of a
    // host name check (mesh certificates name workloads, not hosts; Envoy checks no host name),
    // the SAN check of match_subject_alt_names.
    checkServerIdentity: (_host, cert) => {
      const why = files ? sanMismatchOf(o.tls.sans, cert) : sanMismatch(o.tls, spiffeOf(cert));
      return why ? Object.assign(new Error(why), { code: 'ERR_TLS_SAN_MISMATCH' }) : undefined;
    },
  });
  s.setNoDelay(true);
  // Before anyone else sees the error: say it is the TLS handshake, and why, in words that name no
  // OpenSSL internals where a plainer reason is known.
  // A failure to make the TCP connection (refused, unreachable) is left as it is.
  s.once('connect', () => (tcpUp = true));
  // A session is kept with who it was made with: a resumed handshake has no certificate to read (node:tls gives none).
  // (TLS 1.2 may hand the session over before secureConnect: then the certificate is read here; a
  // certificate that then fails verification takes the session with it, below.)
  s.on('session', (sess: Buffer) => {
    const known = peerPrincipal(s) !== undefined;
    const id = known ? undefined : identityOf(s.getPeerCertificate());
    remember(resume, sessionKey, { session: sess, principal: known ? peerPrincipal(s) : id?.spiffeId, workload: known ? peerWorkload(s) : id?.workload });
  });
  s.prependListener('error', (e: NodeJS.ErrnoException) => {
    if (!verified) resume.delete(sessionKey); // a session that did not work is not offered again
    if (verified || !tcpUp || e.code === TLS_HANDSHAKE) return;
    const reason = handshakeFailure(e, rootsName(o.tls));
    o.stats?.upstreamFail(reason.stat);
    e.message = `upstream TLS: ${reason.why}`;
    e.code = TLS_HANDSHAKE;
  });
  s.once('secureConnect', () => {
    verified = true;
    const id = identityOf(s.getPeerCertificate());
    const proven = id?.spiffeId;
    if (proven === undefined && s.isSessionReused() && saved) {
      // The session resumed was made with a verified server (the one the full handshake checked):
      // it is the same server, whose certificate the resumed handshake does not carry again.
      setPeerPrincipal(s, saved.principal, saved.workload ?? null);
    } else setPeerPrincipal(s, proven, id?.workload ?? null);
    if (o.stats) {
      o.stats.upstreamHandshakes++;
      if (s.isSessionReused()) o.stats.upstreamResumed++;
    }
  });
  return s;
}

/**
 * Sessions to resume, per secure context (so per workload certificate: a renewed certificate
 * starts afresh, and the old sessions go with the old context), per endpoint and TLS settings.
 */
/** A TLS session to resume, and the server identity its full handshake verified. */
interface Saved {
  session: Buffer;
  principal: string | undefined;
  workload: string | undefined;
}

const sessions = new WeakMap<object, Map<string, Saved>>();
/** Endpoints whose session is kept, per certificate: the oldest are forgotten past this. */
const MAX_SESSIONS = 1024;

function sessionsOf(context: object): Map<string, Saved> {
  let m = sessions.get(context);
  if (!m) sessions.set(context, (m = new Map()));
  return m;
}

function remember(m: Map<string, Saved>, key: string, saved: Saved): void {
  m.delete(key);
  m.set(key, saved);
  if (m.size > MAX_SESSIONS) m.delete(m.keys().next().value!);
}

/** A failed handshake's reason: for the error message, and a short one for the counts. */
export function handshakeFailure(e: NodeJS.ErrnoException, roots = 'the mesh roots'): { why: string; stat: string } {
  const code = e.code ?? '';
  if (code === 'ERR_TLS_SAN_MISMATCH') return { why: e.message, stat: 'san_mismatch' };
  if (code === 'ECONNRESET' || code === 'EPIPE' || /disconnected before secure TLS connection/.test(e.message)) {
    return { why: 'the server closed the connection during the handshake (it may not take TLS, or refused this client certificate, or wanted one)', stat: 'server_closed' };
  }
  if (code === 'CERT_HAS_EXPIRED') return { why: `the server's certificate has expired (${code})`, stat: 'expired_server_certificate' };
  if (code === 'UNABLE_TO_GET_CRL') return { why: `no CRL of the server certificate's issuer is given (${code}: with a CRL, every CA of the chain needs one, as in Envoy)`, stat: 'no_crl' };
  if (code === 'CERT_REVOKED') return { why: `the server's certificate is revoked (${code})`, stat: 'revoked_server_certificate' };
  if (code === 'CERT_NOT_YET_VALID') return { why: `the server's certificate is not valid yet (${code}: check the clocks)`, stat: 'server_certificate_not_yet_valid' };
  if (/^(UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|CERT_)/.test(code)) return { why: `the server's certificate does not chain to ${roots} (${code})`, stat: 'untrusted_server' };
  if (code.startsWith('ERR_SSL_')) return { why: `${code.slice(8).toLowerCase().replace(/_/g, ' ')} (${code})`, stat: code.slice(8).toLowerCase() };
  return { why: `${e.message} (${code || 'error'})`, stat: 'handshake_error' };
}
