// The server side of mutual TLS on an inbound listener (the contract's STRICT and PERMISSIVE):
// Envoy's tls_inspector reads the ClientHello without consuming it (tcp/client-hello.ts), the TLS
// chain its ALPN picks (convert-mtls.ts tlsChainFor) terminates TLS with the workload certificate
// current at that moment, requires a client certificate and verifies it against the mesh roots,
// and hands the decrypted stream, with the client's SPIFFE id on it (peer.ts), to what the chain
// runs. A connection without a ClientHello goes to the plaintext chains (PERMISSIVE) or is closed
// (STRICT); a ClientHello no chain matches is closed (Envoy's rule).
//
// Hostile or broken clients are the rule: garbage that starts like TLS, a hello cut short, a
// handshake that stops half way, a certificate from another CA. Each ends in a close that is
// counted by reason (TlsStats) and logged (at most once a second per listener, so a flood cannot
// fill the log); nothing throws out of here, and every wait is bounded: the ClientHello and the
// handshake each get the listener's listener_filters_timeout (Envoy's 15 s when unset).
import type net from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { ClientHelloReader, type HelloOutcome, MAX_CLIENT_HELLO } from '../tcp/client-hello.ts';
import { type MtlsListener, type TlsChain, tlsChainFor } from '../xds-client/convert.ts';
import { type TlsSecrets, contextOptions } from './secrets.ts';
import { identityOf, setPeerPrincipal } from './peer.ts';
import type { TlsStats } from './stats.ts';
import { PEER_EXCHANGE_ALPN } from '../../xds/node-meta.ts';

const tls = process.getBuiltinModule('node:tls');

/** The bound on a handshake when the listener sets listener_filters_timeout to 0 (none): a handshake is never unbounded. */
const HANDSHAKE_TIMEOUT_MS = 15_000;

export interface MtlsAccept {
  listener: string;
  mtls: MtlsListener;
  secrets: TlsSecrets;
  stats: TlsStats;
  log(msg: string): void;
  /** No ClientHello (PERMISSIVE): the plaintext chains take the connection, with the bytes read so far. */
  plaintext(socket: net.Socket, head: Buffer): void;
  /** The handshake is done: the decrypted stream (its peer's SPIFFE id set), for the chain's filters. */
  secure(socket: TLSSocket, chain: TlsChain): void;
  /** A chain that passes TLS through (no DownstreamTlsContext): the raw connection, with the bytes read so far, for its tcp_proxy. */
  passthrough(socket: net.Socket, head: Buffer, chain: TlsChain, sni: string | undefined): void;
}

/** Log lines about refused connections, per listener: at most one a second (the counts are in /stats). */
const lastLog = new Map<string, number>();

function logRefusal(o: MtlsAccept, from: string, why: string): void {
  const now = Date.now();
  if (now - (lastLog.get(o.listener) ?? 0) < 1000) return;
  lastLog.set(o.listener, now);
  o.log(`connection from ${from} to listener ${o.listener} closed: ${why}`);
}

/** The tls_inspector's part: reads the ClientHello and picks a TLS chain (then `handshake`), the plaintext chains, or a close. */
function acceptMtls(socket: net.Socket, o: MtlsAccept, handshake: (socket: net.Socket, head: Buffer) => void): void {
  const reader = new ClientHelloReader();
  const from = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
  let decided = false;
  const finish = (): boolean => {
    if (decided) return false;
    decided = true;
    if (timer) clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('close', onClose);
    socket.pause();
    return true;
  };
  const refuse = (reason: string, why: string) => {
    if (!finish()) return;
    o.stats.fail(reason);
    logRefusal(o, from, why);
    socket.destroy();
  };
  const toPlaintext = (why: string) => {
    if (!o.mtls.plaintext) return refuse('plaintext', `${why}, and the listener takes mutual TLS only (STRICT)`);
    if (!finish()) return;
    o.plaintext(socket, reader.bytes);
  };
  const decide = (h: HelloOutcome) => {
    if (h.kind === 'more') return;
    if (h.kind === 'too_large') return refuse('client_hello_too_large', `its ClientHello is over ${MAX_CLIENT_HELLO / 1024} KiB`);
    if (h.kind === 'not_tls') return toPlaintext(`no TLS ClientHello (${h.why})`);
    const chain = tlsChainFor(o.mtls, h.alpn);
    if (!chain) return refuse('no_filter_chain', `no filter chain matches its TLS ALPN ${JSON.stringify(h.alpn)}`);
    if (!finish()) return;
    // The ClientHello's server name goes with it: network RBAC's connection.sni reads it (as Envoy's tls_inspector sets it).
    if (!chain.tls) return o.passthrough(socket, reader.bytes, chain, h.serverName);
    handshake(socket, reader.bytes);
  };
  const onData = (d: Buffer) => decide(reader.feed(d));
  // A connection closed before sending a byte (the health check's probe, a port scan) is no refusal.
  const onEnd = () => (reader.bytes.length === 0 ? (finish(), socket.destroy()) : refuse('client_hello_incomplete', 'the client ended the connection before its ClientHello was complete'));
  const onClose = () => finish();
  const timer =
    o.mtls.timeoutMs > 0
      ? setTimeout(() => (o.mtls.continueOnTimeout ? toPlaintext(`no ClientHello within ${o.mtls.timeoutMs} ms`) : refuse('listener_filters_timeout', `no complete ClientHello within ${o.mtls.timeoutMs} ms (listener_filters_timeout)`)), o.mtls.timeoutMs)
      : undefined;
  timer?.unref();
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('close', onClose);
  socket.resume();
}

/**
 * TLS termination for one listener. node:tls verifies a client certificate only for sockets its
 * own tls.Server accepts (the check runs in the server's connection handler), so each listener has
 * a tls.Server that listens nowhere: it is handed the connections whose ClientHello picked a TLS
 * chain. Its secure context follows the workload certificate: replaced when a renewal makes a new
 * one, which applies to the handshakes that start afterwards (open connections keep theirs).
 */
export class MtlsTerminator {
  private server: TlsServer | undefined;
  /** The handshake bound and TLS versions the server was made with. */
  private setting = '';
  private cert: object | undefined;
  /** The listener's config and handlers as of the last connection (a handshake finishing after an update takes the new ones). */
  private o: MtlsAccept | undefined;

  accept(socket: net.Socket, o: MtlsAccept): void {
    this.o = o;
    acceptMtls(socket, o, (raw, head) => this.handshake(raw, head, o));
  }

  private handshake(socket: net.Socket, head: Buffer, o: MtlsAccept): void {
    let server: TlsServer;
    try {
      server = this.serverFor(o);
    } catch (e) {
      o.stats.fail('tls_setup');
      logRefusal(o, peerOf(socket), `TLS could not be set up: ${(e as Error).message}`);
      socket.destroy();
      return;
    }
    // The bytes read go back in front of the socket's buffer: node:tls reads what is buffered
    // before it reads the socket itself.
    socket.unshift(head);
    server.emit('connection', socket);
  }

  private serverFor(o: MtlsAccept): TlsServer {
    // A listener_filters_timeout that ends in plain text (continue_on_listener_filters_timeout, as
    // PERMISSIVE ports have, a second) is a detection period, not a bound on the handshake.
    const bound = o.mtls.timeoutMs > 0 && !o.mtls.continueOnTimeout ? o.mtls.timeoutMs : HANDSHAKE_TIMEOUT_MS;
    const c = o.secrets.current();
    // The chains' tls_params versions (convert-mtls.ts makes them agree): one server per setting.
    const versions = o.mtls.chains.find((ch) => ch.tls)!.tls!.versions;
    const setting = `${bound} ${versions.min} ${versions.max}`;
    if (this.server && this.setting === setting) {
      if (this.cert !== c) this.server.setSecureContext(contextOptions(c, versions));
      this.cert = c;
      return this.server;
    }
    const server = tls.createServer({
      ...contextOptions(c, versions),
      requestCert: true,
      // Every TLS chain requires a client certificate (convert-tls.ts refuses one that does not).
      rejectUnauthorized: true,
      handshakeTimeout: bound,
      // Node ends the handshake with a fatal alert when the callback picks nothing, where Envoy's
      // BoringSSL goes on without ALPN (the contract's server list, h2 and http/1.1, is never what
      // a sidecar offers). So the protocol that picked the chain is selected (selectAlpn): the
      // chain can be found again from it once the handshake is done.
      ALPNCallback: ({ protocols }) => selectAlpn(this.o?.mtls.chains ?? [], protocols),
    });
    server.on('secureConnection', (t: TLSSocket) => this.secured(t));
    server.on('tlsClientError', (e: NodeJS.ErrnoException, t: TLSSocket) => {
      const o = this.o!;
      // Set when node:tls judged the client certificate and refused it (it does so after the
      // handshake, so OpenSSL's own error is only the client's reaction).
      const authz = (t as unknown as { authorizationError?: string }).authorizationError;
      o.stats.fail(authz ? 'untrusted_client_certificate' : handshakeReason(e));
      logRefusal(o, peerOf(t), `TLS handshake failed: ${authz ? `the client certificate is not trusted (${authz})` : (e.message.trim().split('\n')[0] ?? e.code)}`);
      t.destroy();
    });
    this.server = server;
    this.setting = setting;
    this.cert = c;
    return server;
  }

  private secured(t: TLSSocket): void {
    const o = this.o!;
    t.on('error', () => {}); // until the chain's filters add their own
    // Verified against ROOTCA by node:tls (rejectUnauthorized): the SPIFFE id is who the client is.
    const id = identityOf(t.getPeerCertificate());
    const principal = id?.spiffeId;
    if (!t.authorized || !principal) {
      o.stats.fail('no_spiffe_id');
      logRefusal(o, peerOf(t), 'the client certificate carries no SPIFFE id');
      t.destroy();
      return;
    }
    const negotiated = typeof t.alpnProtocol === 'string' ? [t.alpnProtocol] : [];
    const chain = tlsChainFor(o.mtls, negotiated);
    if (!chain) {
      o.stats.fail('no_filter_chain');
      logRefusal(o, peerOf(t), `no filter chain matches ALPN ${JSON.stringify(negotiated)} (the listener changed during the handshake)`);
      t.destroy();
      return;
    }
    setPeerPrincipal(t, principal, id?.workload ?? null);
    o.stats.handshakes++;
    if (t.isSessionReused()) o.stats.resumed++;
    o.secure(t, chain);
  }
}

/**
 * The protocol the server takes of the client's offer: the first a chain matches. The metadata
 * exchange's is taken only for a chain that runs the exchange (a client that negotiated it writes
 * its frame first, which no app must read). Node ends the handshake when nothing is picked, where
 * Envoy goes on without ALPN: then the first offered that is not the exchange's; a client that
 * offers only that is refused (better than its frame in an app's stream).
 */
export function selectAlpn(chains: readonly TlsChain[], offered: readonly string[]): string | undefined {
  return offered.find((p) => chains.some((ch) => ch.alpn.includes(p) && (p !== PEER_EXCHANGE_ALPN || ch.tcp?.peerExchange?.protocol === p))) ?? offered.find((p) => p !== PEER_EXCHANGE_ALPN);
}

function peerOf(s: net.Socket): string {
  return `${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'}`;
}

/** A short, bounded reason for the counts: OpenSSL's reason code when Node gives one. */
function handshakeReason(e: NodeJS.ErrnoException & { reason?: string }): string {
  if (e.code === 'ECONNRESET' || e.code === 'EPIPE') return 'client_reset';
  if (e.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'handshake_timeout';
  if (e.code?.startsWith('ERR_SSL_')) return e.code.slice('ERR_SSL_'.length).toLowerCase();
  return 'handshake_error';
}
