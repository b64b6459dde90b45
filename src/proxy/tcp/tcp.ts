// Opaque TCP (Envoy's tcp_proxy): bytes both ways between a client and one endpoint of a cluster,
// which the sidecar does not look into. Endpoint choice is the HTTP side's (upstream/choose.ts):
// round robin over healthy endpoints, the cluster's connect timeout, and a connection that cannot
// be made is retried on another endpoint, up to twice. Then the two sockets are piped with
// backpressure; a FIN from either side is passed on (half-close), and the pair is closed after
// idleTimeoutMs with no byte either way. Each open, close (with its bytes) and failed connect is published on the
// sidecar's telemetry channel (telemetry/events.ts).
import type { ExtAuthzCallContext } from './authz.ts';
import net from 'node:net';
import type { RuntimeConfig } from '../config.ts';
import { ProxyError } from '../errors.ts';
import type { TcpConnection, Telemetry } from '../telemetry/events.ts';
import { CONNECT_RETRIES, type ClusterEndpoints, clusterEndpoints } from '../upstream/choose.ts';
import { type BalanceState, InFlight, nextEndpointFor } from '../upstream/balance.ts';
import { hash32 } from '../upstream/hash.ts';
import { OutlierDetector } from '../upstream/outlier.ts';
import type { Endpoint } from '../xds-client/convert.ts';
import type { ClusterResources } from '../upstream/resources.ts';
import type { AccessLogConfig, ClusterConfig } from '../xds-client/convert.ts';
import { keepAlive } from '../http1/client.ts';
import { transportFor } from '../xds-client/convert-tls.ts';
import { TLS_HANDSHAKE, connectTls } from '../tls/upstream.ts';
import type { TlsSecrets } from '../tls/secrets.ts';
import type { TlsStats } from '../tls/stats.ts';
import type { LiveTcpConnections } from './authz.ts';
import { type ExchangeContext, afterExchange, exchangePending, markExchange, payloadRead, payloadWritten } from './peer-exchange.ts';
import { timerMs } from '../../util/timer.ts';
import type { TLSSocket } from 'node:tls';

export interface TcpContext {
  config: () => RuntimeConfig;
  telemetry: Telemetry;
  /** Round robin, outlier detection and slow start: the sidecar's, shared with the HTTP side (http/forward.ts). */
  balance: BalanceState;
  log: (msg: string) => void;
  /** The cluster's circuit breakers (upstream/pools.ts), shared with its HTTP pools; none: no limits. */
  resources?: (cluster: ClusterConfig) => ClusterResources;
  /** The workload certificate, for endpoints reached over mutual TLS (the cluster's transport socket). */
  tls?: { secrets: TlsSecrets; stats?: TlsStats };
  /** The service port an inbound listener's port stands for (network RBAC's destination port: tcp/authz.ts). */
  destinationPort?: (listenerPort: number) => number;
  /** The inbound connections network RBAC let through, decided again when policies change (tcp/authz.ts). */
  live?: LiveTcpConnections;
  /** How a network ext_authz filter reaches its authorizer (tcp/authz.ts). */
  extAuthz?: ExtAuthzCallContext;
  /** Istio's TCP metadata exchange, where a chain or cluster runs it (tcp/peer-exchange.ts); none: never run. */
  peerExchange?: ExchangeContext;
}

/** Where the sidecar was given no certificate (tests of the TCP path alone): TLS endpoints cannot be reached, and say so. */
const noSecrets: TlsSecrets = {
  current: () => {
    throw new Error('upstream TLS: this sidecar has no workload certificate');
  },
};

/** TCP connections are not counted per endpoint: least request picks by weight alone here. */
const NO_INFLIGHT = new InFlight();

export interface Dialed {
  socket: net.Socket;
  endpoint: string;
}

/**
 * Connects to an endpoint of the cluster. Calls back once: with the connected socket, or with a
 * ProxyError saying why not. cancel() stops it (a socket connected later is closed). `authority`
 * is the CONNECT target, where an ORIGINAL_DST cluster connects.
 */
export function dial(ctx: TcpContext, clusterName: string, cb: (err: ProxyError | undefined, d?: Dialed) => void, authority?: string, source?: string): { cancel(): void } {
  let cancelled = false;
  let current: net.Socket | undefined;
  let stopWaiting: (() => void) | undefined;
  const done = (err: ProxyError | undefined, d?: Dialed) => {
    if (cancelled) {
      d?.socket.destroy();
      return;
    }
    cancelled = true;
    cb(err, d);
  };
  const cfg = ctx.config();
  const cluster = cfg.clusters.get(clusterName);
  let ce: ClusterEndpoints;
  try {
    if (!cluster) throw new ProxyError('no_cluster', `cluster ${clusterName} is not known to the sidecar`, clusterName);
    ce = clusterEndpoints(cfg, clusterName, cluster, authority, 0); // a CONNECT target has a port
  } catch (e) {
    queueMicrotask(() => done(e as ProxyError));
    return { cancel: () => (cancelled = true) };
  }
  let attempt = 0;
  const slots = ctx.resources?.(cluster).tcp;
  // The cluster's own load balancing, as Envoy's tcp_proxy uses it: priorities and localities,
  // weights, slow start, outlier ejections, and a ring or Maglev table by the client's address
  // where the route hashes by it (useSourceIp); a retry goes to another endpoint where it can.
  const hashKey = source !== undefined && (cluster.lb === 'ring_hash' || cluster.lb === 'maglev') ? hash32(source) : undefined;
  const tried = new Set<Endpoint>();
  const outlier = cluster.outlier ? (ctx.balance.outlier ??= new OutlierDetector()) : undefined;
  const tryOne = () => {
    if (cancelled) return;
    const ep = nextEndpointFor(cluster, clusterName, ce, ctx.balance, NO_INFLIGHT, tried.size ? tried : undefined, Math.random, hashKey);
    if (!ep) {
      queueMicrotask(() => done(new ProxyError('no_healthy_endpoint', `every endpoint of cluster ${clusterName} is ejected by outlier detection`, clusterName)));
      return;
    }
    tried.add(ep);
    const endpoint = `${ep.address}:${ep.port}`;
    if (slots && !slots.take(endpoint)) {
      // max_connections: wait for one of the cluster's TCP connections to close, or overflow.
      stopWaiting = slots.wait(tryOne);
      if (!stopWaiting) {
        const err = new ProxyError('overflow', `too many connections to cluster ${clusterName}: ${slots.overflow()}`, clusterName);
        queueMicrotask(() => done(err)); // never before dial() returns
      }
      return;
    }
    // The endpoint's transport socket (Envoy's rule): TLS offers the context's ALPN (istio-peer-exchange, istio), as a TCP stream.
    const tls = transportFor(cluster, ep);
    let s: net.Socket;
    try {
      s = tls ? connectTls(ep.address, ep.port, { tls, secrets: ctx.tls?.secrets ?? noSecrets, ...(ctx.tls?.stats ? { stats: ctx.tls.stats } : {}), ...(ctx.peerExchange && cluster.peerExchange ? { peerExchange: cluster.peerExchange.protocol } : {}) }, 'tcp') : net.connect({ host: ep.address, port: ep.port, noDelay: true, allowHalfOpen: true });
    } catch (e) {
      if (slots) slots.give(endpoint);
      const err = new ProxyError('connect_failed', `could not connect to ${endpoint} in cluster ${clusterName}: ${(e as Error).message}`, clusterName);
      queueMicrotask(() => done(err));
      return;
    }
    if (tls) s.allowHalfOpen = true;
    if (slots) s.once('close', () => slots.give(endpoint));
    keepAlive(s, cluster.connection?.tcpKeepalive);
    current = s;
    const timer = setTimeout(() => failed(s, endpoint, 'ETIMEDOUT', `no connection within the cluster's connect timeout of ${cluster.connectTimeoutMs} ms`, ep), cluster.connectTimeoutMs);
    // Over TLS the connection is made once the server is verified.
    s.once(tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      outlier?.report(cluster, ep, 200, performance.now(), ce.healthy); // a connection made: Envoy's local-origin success
      // Istio's metadata exchange, where the cluster runs it and the server took its protocol: the
      // connection is made; its first user (pipeTcp, detect) runs the exchange (afterExchange).
      if (ctx.peerExchange && tls && cluster.peerExchange && (s as TLSSocket).alpnProtocol === cluster.peerExchange.protocol) markExchange(s);
      done(undefined, { socket: s, endpoint });
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      failed(s, endpoint, e.code ?? 'error', e.message, ep);
    });
  };
  const failed = (s: net.Socket, endpoint: string, code: string, message: string, ep?: Endpoint) => {
    s.destroy();
    if (ep) outlier?.report(cluster, ep, 'local_error', performance.now(), ce.healthy);
    if (cancelled) return;
    if (ctx.telemetry.tcp.hasSubscribers) ctx.telemetry.tcp.publish({ kind: 'connect_failed', cluster: clusterName, endpoint, code });
    if (attempt < CONNECT_RETRIES && ce.healthy.length > 1) {
      attempt++;
      tryOne();
      return;
    }
    done(
      code === 'ECONNREFUSED'
        ? new ProxyError('connect_refused', `connection refused by ${endpoint} in cluster ${clusterName}`, clusterName)
        : new ProxyError('connect_failed', `could not connect to ${endpoint} in cluster ${clusterName}: ${code === 'ETIMEDOUT' || code === TLS_HANDSHAKE ? message : `${code} (${message})`}`, clusterName),
    );
  };
  tryOne();
  return {
    cancel: () => {
      cancelled = true;
      stopWaiting?.();
      current?.destroy();
    },
  };
}

/**
 * Joins the client and the dialed upstream. downHead: client bytes already read (to send first);
 * upHead: upstream bytes already read (to deliver first). idleTimeoutMs 0: no idle timeout;
 * maxDurationMs: both are closed this long after the join (the tunnel's max_stream_duration).
 */
export function pipeTcp(ctx: TcpContext, clusterName: string, down: net.Socket, up: Dialed, downHead: Buffer, upHead: Buffer, idleTimeoutMs: number, maxDurationMs?: number, from?: TcpFrom): void {
  if (!ctx.peerExchange || !exchangePending(up.socket)) return joinTcp(ctx, clusterName, down, up, downHead, upHead, idleTimeoutMs, maxDurationMs, from);
  // Istio's metadata exchange first, where the dial left it to be run: the connection opens (and
  // is counted, with the peer's labels) once the server's frame came; a server that closes first
  // (its AuthorizationPolicy denied the connection) closes the client's too.
  // The client is watched meanwhile: its going ends the exchange.
  const gone = () => up.socket.destroy();
  down.once('close', gone);
  afterExchange(
    up.socket,
    ctx.peerExchange,
    () => `TCP connection to ${up.endpoint} in cluster ${clusterName}`,
    idleTimeoutMs,
    (rest) => {
      down.off('close', gone);
      joinTcp(ctx, clusterName, down, up, downHead, rest.length ? Buffer.concat([rest, upHead]) : upHead, idleTimeoutMs, maxDurationMs, from);
    },
    () => {
      down.off('close', gone);
      // Counted as a connection that could not be made (the server's policy denied it, say), unless
      // the client went first; the exchange said why where there was something to say.
      if (!down.destroyed && ctx.telemetry.tcp.hasSubscribers) ctx.telemetry.tcp.publish({ kind: 'connect_failed', cluster: clusterName, endpoint: up.endpoint, code: 'metadata_exchange' });
      down.destroy();
    },
  );
}

function joinTcp(ctx: TcpContext, clusterName: string, down: net.Socket, up: Dialed, downHead: Buffer, upHead: Buffer, idleTimeoutMs: number, maxDurationMs?: number, from?: TcpFrom): void {
  const u = up.socket;
  if (u.destroyed || down.destroyed) {
    // Either side went while the exchange ran: nothing to join (and no close event is coming for it).
    u.destroy();
    down.destroy();
    return;
  }
  const events = ctx.telemetry.tcp;
  const started = performance.now();
  // Who is at either end, and the tcp_proxy's access log (telemetry reads them while the event is delivered).
  const conn: TcpConnection = { listener: from?.listener, down, up: u, accessLog: from?.accessLog };
  if (events.hasSubscribers) events.publish({ kind: 'open', cluster: clusterName, endpoint: up.endpoint, ...conn });
  join(down, u, downHead, upHead, {
    idleTimeoutMs,
    maxDurationMs,
    onIdle: () => ctx.log(`TCP connection through cluster ${clusterName} to ${up.endpoint} idle for ${idleTimeoutMs} ms: closed`),
    onExpired: () => ctx.log(`TCP connection through cluster ${clusterName} to ${up.endpoint} open for ${maxDurationMs} ms, its maximum: closed`),
    onClosed: () => {
      if (events.hasSubscribers) events.publish({ kind: 'close', cluster: clusterName, endpoint: up.endpoint, bytesSent: payloadWritten(u), bytesReceived: payloadRead(u), durationMs: performance.now() - started, ...conn });
    },
  });
}

/** The tcp_proxy a connection came through: its listener and access log. */
export interface TcpFrom {
  listener?: string | undefined;
  accessLog?: readonly AccessLogConfig[] | undefined;
}

/**
 * Two sockets as one byte pipe, both ways, with backpressure: a tcp_proxy, a CONNECT tunnel, or a
 * connection after a 101 (WebSocket). downHead and upHead are bytes already read from either side,
 * delivered first. A FIN from one side is passed on to the other (half-close); a reset or an error
 * on either ends both; idleTimeoutMs (0: none) with no byte either way ends both, and so does
 * maxDurationMs after the join, whatever the traffic.
 */
export function join(
  down: net.Socket,
  u: net.Socket,
  downHead: Buffer,
  upHead: Buffer,
  o: { idleTimeoutMs: number; maxDurationMs?: number; onIdle?: () => void; onExpired?: () => void; onClosed?: () => void },
): void {
  // Each socket closes once both of its directions are done.
  down.allowHalfOpen = true;
  u.allowHalfOpen = true;
  let closed = 0;
  let expiry: NodeJS.Timeout | undefined;
  const onClose = () => {
    if (++closed < 2) return;
    if (expiry) clearTimeout(expiry);
    o.onClosed?.();
  };
  const kill = () => {
    down.destroy();
    u.destroy();
  };
  if (o.maxDurationMs) {
    expiry = setTimeout(() => {
      o.onExpired?.();
      kill();
    }, timerMs(o.maxDurationMs));
  }
  down.on('error', kill);
  u.on('error', kill);
  down.once('close', onClose);
  u.once('close', onClose);
  // A reset (or destroy) of one side ends the other at once.
  down.once('close', (hadError) => hadError && u.destroy());
  u.once('close', (hadError) => hadError && down.destroy());
  if (o.idleTimeoutMs > 0) {
    // A socket's timeout counts reads and writes, so a byte either way keeps both alive.
    const idle = () => {
      o.onIdle?.();
      kill();
    };
    down.setTimeout(timerMs(o.idleTimeoutMs), idle);
    u.setTimeout(timerMs(o.idleTimeoutMs), idle);
  }
  if (upHead.length) down.write(upHead);
  if (downHead.length) u.write(downHead);
  down.pipe(u);
  u.pipe(down);
  down.resume();
  u.resume();
}

/**
 * dial, then pipeTcp; a client whose upstream cannot be reached is closed, and the reason logged.
 * `authority`: the CONNECT target the connection came with, for an ORIGINAL_DST cluster.
 */
export function proxyTcp(ctx: TcpContext, clusterName: string, down: net.Socket, downHead: Buffer, idleTimeoutMs: number, authority?: string, o: { maxDurationMs?: number; hashSource?: boolean } & TcpFrom = {}): void {
  down.pause();
  down.allowHalfOpen = true;
  let gone = false;
  down.once('close', () => {
    gone = true;
    c.cancel();
  });
  const c = dial(ctx, clusterName, (err, d) => {
    if (gone) {
      d?.socket.destroy();
      return;
    }
    if (err) {
      ctx.log(`TCP connection from ${down.remoteAddress}:${down.remotePort} closed: ${err.message}`);
      down.destroy();
      return;
    }
    pipeTcp(ctx, clusterName, down, d!, downHead, Buffer.alloc(0), idleTimeoutMs, o.maxDurationMs, o);
  }, authority, o.hashSource ? down.remoteAddress : undefined);
}
