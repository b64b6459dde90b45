// Where connections come in. A listener accepts, enforces the sidecar's connection limit, and
// dispatches by the listener's kind:
//   - http (an HttpConnectionManager): looks at the first bytes to decide what the connection
//     carries before handing it to a codec: HTTP/2 with prior knowledge (http2/server.ts) when
//     they are the HTTP/2 connection preface, HTTP/1.1 (http1/server.ts) otherwise; a TLS
//     handshake is refused with a log line saying why;
//   - tcp (a tcp_proxy): opaque TCP at once (tcp/tcp.ts), with no sniffing, so that a protocol in
//     which the server speaks first works;
//   - detect: tcp/detect.ts races the client's first bytes against the upstream's;
//   - sni (the tls_inspector): tcp/sni.ts routes by the ClientHello's server name.
// A listener with mutual TLS chains (STRICT, PERMISSIVE) goes through tls/inbound.ts first: a TLS
// connection is terminated there and its decrypted stream handled as its chain says (the HCM's
// sniffing, or a tcp_proxy); one without a ClientHello is handled by the kind above (PERMISSIVE's
// plaintext chains), with the bytes already read, or closed (STRICT).
// CONNECT tunnels come back here: to a TCP service (a CONNECT route) they become opaque TCP; to an
// HTTP service, what the tunnel carries is decided like any new connection; to a cluster whose
// endpoint is an internal listener, the tunnel is handed to that listener (internal.ts).
import net from 'node:net';
import type { PathOptions } from '../http/path.ts';
import type { Downstream } from '../http/types.ts';
import type { ConnectTarget } from '../http/forward.ts';
import { Sweeper, serveHttp1 } from '../http1/server.ts';
import { type Http2Downstream, createHttp2Downstream } from '../http2/server.ts';
import { rawHttp1Error, rawHttp1Reply } from '../errors.ts';
import { type Refusal, RefusedRequest, refusedHead } from '../http/refused.ts';
import { type TcpContext, dial, pipeTcp, proxyTcp } from '../tcp/tcp.ts';
import { type CurrentFilters, admitConnection } from '../tcp/authz.ts';
import { exchangePeerMetadata } from '../tcp/peer-exchange.ts';
import { detect } from '../tcp/detect.ts';
import { routeBySni } from '../tcp/sni.ts';
import { type MtlsListener, type SniConfig, type TcpProxyConfig, pickTcpCluster } from '../xds-client/convert.ts';
import { MtlsTerminator } from '../tls/inbound.ts';
import type { TlsSecrets } from '../tls/secrets.ts';
import type { TlsStats } from '../tls/stats.ts';


export interface ListenerHandlers {
  onRequest(ds: Downstream): void;
  /** Where a CONNECT to this authority goes; a string says why it has nowhere to go. */
  connectTarget(authority: string): ConnectTarget | string;
  /** Hands a CONNECT tunnel (its 200 sent) to the internal listener of that name. */
  internal(listener: string, socket: net.Socket, head: Buffer, authority: string): void;
  /** A request the listener answered itself instead of the request path (a refused head, a CONNECT: http/refused.ts): for telemetry. */
  onRejected(r: Refusal): void;
  log(msg: string): void;
  tcp: TcpContext;
  /** The workload certificate and the TLS counts, for listeners with mTLS chains. */
  tls?: { secrets: TlsSecrets; stats: TlsStats };
}

export interface ListenerLimits {
  name: string;
  path: PathOptions;
  headersTimeoutMs: number;
  idleTimeoutMs: number;
  kind: 'http' | 'tcp' | 'detect' | 'sni';
  /** For tcp and detect: the tcp_proxy's clusters and idle timeout. */
  tcp?: TcpProxyConfig;
  /** For sni: the chains by server name. */
  sni?: SniConfig;
  /** Mutual TLS chains, before the kind (tls/inbound.ts). */
  mtls?: MtlsListener;
}

/** Counts every client connection of the sidecar, across listeners, against one limit. */
export class ConnectionBudget {
  readonly limit: number;
  readonly sockets = new Set<net.Socket>();
  refused = 0;
  constructor(limit: number) {
    this.limit = limit;
  }
}

export function createListener(handlers: ListenerHandlers, limits: () => ListenerLimits, budget: ConnectionBudget): net.Server {
  const server = net.createServer({ noDelay: true });
  const h2 = createHttp2Downstream({
    onRequest: (ds) => handlers.onRequest(ds),
    onRejected: (r) => handlers.onRejected(r),
    limits: () => limits(),
  });
  const codecs: Codecs = { h2, sweeper: new Sweeper() };
  const mtls = new MtlsTerminator();
  // The network authorization filters that apply to a connection of this listener now (decided
  // when it is about to reach tcp_proxy, and again on every policy change: tcp/authz.ts): its TLS
  // chain's, else the listener's TCP chain's.
  const rbacNow = (chainName?: string): CurrentFilters => () => {
    const now = limits();
    const chain = chainName === undefined ? undefined : now.mtls?.chains.find((c) => c.name === chainName);
    return (chain?.tcp ?? now.tcp)?.rbac;
  };
  // Whether the listener now refuses what came without the mesh's mTLS (STRICT): such a
  // connection, plaintext or TLS passed through, is closed then (tcp/authz.ts).
  const strictNow = () => {
    const m = limits().mtls;
    return m !== undefined && !m.plaintext;
  };
  server.on('connection', (socket: net.Socket) => {
    if (budget.sockets.size >= budget.limit) {
      // Refused before any byte is read, so the sidecar keeps file descriptors for the traffic it
      // already carries and for its admin endpoint.
      budget.refused++;
      if (budget.refused === 1 || budget.refused % 1000 === 0) handlers.log(`connection limit of ${budget.limit} reached: refused ${budget.refused} connection(s) so far`);
      socket.destroy();
      return;
    }
    const acceptedAt = Date.now();
    budget.sockets.add(socket);
    socket.once('close', () => budget.sockets.delete(socket));
    socket.on('error', () => {}); // errors are handled by the codec once it has the socket
    const l = limits();
    if (!l.mtls) {
      byKind(socket, handlers, l, codecs, Buffer.alloc(0), rbacNow(), strictNow, acceptedAt);
      return;
    }
    if (!handlers.tls) {
      handlers.log(`BUG: listener ${l.name} has mTLS chains but the sidecar gave it no certificate: connection closed`);
      socket.destroy();
      return;
    }
    mtls.accept(socket, {
      listener: l.name,
      mtls: l.mtls,
      ...handlers.tls,
      log: handlers.log,
      plaintext: (s, head) => byKind(s, handlers, l, codecs, head, rbacNow(), strictNow, acceptedAt),
      passthrough: (s, head, chain, sni) => {
        // The port's network RBAC applies to TLS passed through as to any TCP chain, with the
        // ClientHello's server name as its connection.sni.
        const go = () => proxyTcp(handlers.tcp, pickTcpCluster(chain.tcp!, Math.random()), s, head, chain.tcp!.idleTimeoutMs, undefined, chain.tcp!);
        admit(admitConnection(handlers.tcp, l.name, s, rbacNow(chain.name), { serverName: sni, refusedNow: strictNow, accessLog: chain.tcp!.accessLog, acceptedAt }), go);
      },
      secure: (t, chain) => {
        if (chain.serve === 'tcp') {
          const tcp = chain.tcp!;
          const proxy = (head: Buffer) => proxyTcp(handlers.tcp, pickTcpCluster(tcp, Math.random()), t, head, tcp.idleTimeoutMs, undefined, tcp);
          // Admitted first, then Istio's metadata exchange where the chain runs it and its
          // protocol was negotiated (a denied client learns nothing of this workload).
          const x = handlers.tcp.peerExchange;
          const go = x && tcp.peerExchange && t.alpnProtocol === tcp.peerExchange.protocol ? () => exchangePeerMetadata(t, x, `TCP connection from ${t.remoteAddress}:${t.remotePort} to listener ${l.name}`, tcp.idleTimeoutMs, proxy) : () => proxy(Buffer.alloc(0));
          admit(admitConnection(handlers.tcp, l.name, t, rbacNow(chain.name), { accessLog: tcp.accessLog, acceptedAt }), go);
        }
        // HTTP inside: HTTP/2 or HTTP/1.1 by the preface, as on plaintext (the ALPN picked the chain).
        else sniff(t, handlers, l, codecs);
      },
    });
  });
  return server;
}

/** Goes on with a connection its network authorization admits (no filters: undefined), now or once an external authorizer answered. */
function admit(verdict: boolean | Promise<boolean> | undefined, go: () => void): void {
  if (verdict === undefined || verdict === true) go();
  else if (verdict !== false) verdict.then((ok) => ok && go(), () => {}); // a check never rejects (ext-authz/check.ts)
}

/** A connection by the listener's kind; `head`: its bytes already read (by the tls_inspector); `rbacNow`: its network authorization filters as config changes; `strictNow`: whether its listener now takes mTLS only; `acceptedAt`: when it was accepted. */
function byKind(socket: net.Socket, handlers: ListenerHandlers, l: ListenerLimits, codecs: Codecs, head: Buffer, rbacNow: CurrentFilters, strictNow: () => boolean, acceptedAt: number): void {
  const admission = { refusedNow: strictNow, accessLog: l.tcp?.accessLog, acceptedAt };
  if (l.kind === 'tcp') {
    admit(admitConnection(handlers.tcp, l.name, socket, rbacNow, admission), () =>
      proxyTcp(handlers.tcp, pickTcpCluster(l.tcp!, Math.random()), socket, head, l.tcp!.idleTimeoutMs, undefined, l.tcp!),
    );
  } else if (l.kind === 'detect') {
    // The TCP chain's RBAC decides only once the connection turns out not to be HTTP (HTTP gets the HCM's).
    const allow = () => admitConnection(handlers.tcp, l.name, socket, rbacNow, admission);
    detect(handlers.tcp, pickTcpCluster(l.tcp!, Math.random()), socket, head, l.tcp!.idleTimeoutMs, (first) => sniff(socket, handlers, l, codecs, first), undefined, l.tcp!.maxDurationMs, l.tcp!.hashSource, allow, l.tcp);
  }
  else if (l.kind === 'sni') routeBySni(handlers.tcp, l.name, l.sni!, socket, head);
  else sniff(socket, handlers, l, codecs, head.length ? head : undefined);
}

/** Waits for the first bytes and hands the connection to the codec they belong to. */
/** What a listener keeps for all its connections: the HTTP/2 server, and the timeout sweep. */
interface Codecs {
  h2: Http2Downstream;
  sweeper: Sweeper;
}

/** How long a refused CONNECT's client may take to close after the answer, before the socket is destroyed. */
const REFUSED_LINGER_MS = 1000;

/** A CONNECT the listener answers itself (no route, a direct response, a cluster it cannot reach), for telemetry. */
function connectRefusal(s: net.Socket, authority: string, status: number, code: string, cluster?: string, durationMs = 0): Refusal {
  return { status, code, cluster, durationMs, ds: new RefusedRequest(s, refusedHead('CONNECT', authority, '', '', 'HTTP/1.1')) };
}

/**
 * Answers a CONNECT that goes nowhere, and closes it: what the client still sends (its FIN, or
 * bytes) is read and dropped, so that the socket closes and leaves the connection limit; after a
 * moment it is destroyed whatever the client does. (A socket handed over by the HTTP/1.1 server
 * is paused, and a dial leaves it half-open: ending it alone would keep it, and its slot, for good.)
 */
function refuse(s: net.Socket, answer: string): void {
  s.allowHalfOpen = false;
  s.on('data', () => {});
  s.on('error', () => {});
  s.end(answer, 'latin1');
  s.resume();
  setTimeout(() => s.destroy(), REFUSED_LINGER_MS).unref();
}

function sniff(socket: net.Socket, handlers: ListenerHandlers, limits: ListenerLimits, codecs: Codecs, initial?: Buffer): void {
  const go = (first: Buffer) => {
    if (first.length >= PREFACE.length && first.subarray(0, PREFACE.length).equals(PREFACE)) {
      codecs.h2.serve(socket, first);
      return;
    }
    if (first.length > 0 && first[0] === 0x16) {
      handlers.log(`connection from ${socket.remoteAddress}:${socket.remotePort} started a TLS handshake; Weft's sidecar takes plain HTTP here (use http:// and let the mesh add TLS)`);
      socket.destroy();
      return;
    }
    serveHttp1(
      socket,
      {
        onRequest: handlers.onRequest,
        onRejected: handlers.onRejected,
        onBug: (e) => handlers.log(`BUG: a connection from ${socket.remoteAddress}:${socket.remotePort} was closed after an internal error: ${(e as Error)?.stack ?? e}`),
        onConnect: (authority, s, head) => {
          const t = handlers.connectTarget(authority);
          if (typeof t === 'string') {
            handlers.onRejected(connectRefusal(s, authority, 404, 'no_route'));
            refuse(s, rawHttp1Error(404, 'no_route', t));
            return;
          }
          if (t.kind === 'reply') {
            handlers.onRejected(connectRefusal(s, authority, t.status, 'direct_response'));
            refuse(s, rawHttp1Reply(t.status, t.body));
            return;
          }
          if (t.kind === 'error') {
            handlers.onRejected(connectRefusal(s, authority, t.error.status, t.error.code, t.error.cluster));
            refuse(s, rawHttp1Error(t.error.status, t.error.code, t.error.message));
            return;
          }
          const established = 'HTTP/1.1 200 Connection Established\r\n\r\n';
          if (t.kind === 'internal') {
            // As Envoy's CONNECT to an internal listener: the connection to it is made at once, so
            // the client hears 200 before anything is chosen (it has to: a TLS client sends its
            // ClientHello only then); what the listener cannot carry ends in a close.
            s.write(established);
            handlers.internal(t.listener, s, head, authority);
            return;
          }
          // The CONNECT route's idle timeout for its tunnels (the DestinationRule's tcp.idleTimeout), else the listener's.
          const idle = t.kind === 'http' ? limits.idleTimeoutMs : (t.tunnel?.idleTimeoutMs ?? limits.idleTimeoutMs);
          if (t.kind === 'tcp') {
            // A TCP service: answer 200 once the upstream is connected, or say why it is not.
            s.pause();
            s.allowHalfOpen = true;
            const dialed = performance.now();
            const c = dial(handlers.tcp, t.cluster, (err, d) => {
              s.off('close', onClose);
              if (err) {
                handlers.onRejected(connectRefusal(s, authority, err.status, err.code, t.cluster, performance.now() - dialed));
                refuse(s, rawHttp1Error(err.status, err.code, err.message));
                return;
              }
              s.write(established);
              pipeTcp(handlers.tcp, t.cluster, s, d!, head, Buffer.alloc(0), idle, t.tunnel?.maxDurationMs, { listener: limits.name });
            }, authority, t.hashSource ? s.remoteAddress : undefined);
            const onClose = () => c.cancel();
            s.once('close', onClose);
            return;
          }
          s.write(established);
          // A port of undeclared protocol: HTTP inside is routed, anything else is TCP to its cluster.
          if (t.kind === 'detect') detect(handlers.tcp, t.cluster, s, head, idle, (first) => sniff(s, handlers, limits, codecs, first), authority, t.tunnel?.maxDurationMs, t.hashSource, undefined, { listener: limits.name });
          // What the tunnel carries is decided like any new connection; requests inside it are
          // routed by their own Host.
          else sniff(s, handlers, limits, codecs, head);
        },
        path: limits.path,
        headersTimeoutMs: limits.headersTimeoutMs,
        sweeper: codecs.sweeper,
        idleTimeoutMs: limits.idleTimeoutMs,
      },
      first,
    );
  };
  let got = initial && initial.length ? initial : undefined;
  if (got && !isPrefaceStart(got)) {
    go(got);
    return;
  }
  // A connection that never says anything is closed at the idle timeout.
  const timer = setTimeout(() => socket.destroy(), limits.idleTimeoutMs);
  timer.unref();
  const onData = (d: Buffer) => {
    got = got ? Buffer.concat([got, d]) : d;
    // The HTTP/2 preface may arrive in pieces: wait for all 24 bytes before deciding.
    if (isPrefaceStart(got)) return;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.pause();
    go(got);
  };
  socket.on('data', onData);
  socket.once('close', () => clearTimeout(timer));
  socket.resume();
}

/** The HTTP/2 connection preface (RFC 9113 3.4): a client with prior knowledge starts with it. */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** A strict beginning of the preface: more bytes are needed to tell HTTP/2 from HTTP/1.1. */
function isPrefaceStart(b: Buffer): boolean {
  return b.length < PREFACE.length && PREFACE.subarray(0, b.length).equals(b);
}
