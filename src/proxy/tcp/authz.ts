// Network RBAC (Istio's AuthorizationPolicy on a TCP port): the chain's RBAC filters, compiled once
// per config (xds-client/convert-authz.ts), decide whether a connection may reach tcp_proxy. A
// denied connection is closed without a byte written (after the filter's delay_deny, if any).
//
// Envoy's network RBAC decides on the connection's first bytes (ONE_TIME_ON_FIRST_BYTE); what its
// rules can read (addresses, ports, the peer's SPIFFE id, SNI) is all known when the connection is
// accepted, so Weft decides then, before dialing: the same decision, and a denied client never
// reaches the app, even one whose protocol has the server speak first. CONTINUOUS enforcement
// would decide again on every read with the same inputs, so it decides the same once.
import type net from 'node:net';
import { type RbacRequest, evaluateRbac } from '../authz/index.ts';
import { peerPrincipal } from '../tls/peer.ts';
import { unmapped } from '../http/authz.ts';
import type { Telemetry } from '../telemetry/events.ts';
import type { AuthzFilterConfig } from '../xds-client/convert.ts';

export interface TcpAuthzContext {
  telemetry: Telemetry;
  log: (msg: string) => void;
  /** The service port an inbound listener port stands for (the connection's original destination). */
  destinationPort?: (listenerPort: number) => number;
  /** The connections let through, for a policy change to decide again (LiveTcpConnections). */
  live?: LiveTcpConnections;
}

/** The connection as network RBAC reads it. */
export function connectionRequestOf(socket: net.Socket, ctx: Pick<TcpAuthzContext, 'destinationPort'>, serverName?: string): RbacRequest {
  const peer = peerPrincipal(socket);
  // A terminated TLS connection's server name, or the one the tls_inspector read (TLS passed through).
  const sni = serverName ?? (socket as { servername?: unknown }).servername;
  const port = socket.localPort ?? 0;
  return {
    destinationIp: unmapped(socket.localAddress ?? ''),
    destinationPort: ctx.destinationPort?.(port) ?? port,
    sourceIp: unmapped(socket.remoteAddress ?? ''),
    ...(peer !== undefined ? { peer } : {}),
    ...(typeof sni === 'string' && sni !== '' ? { sni } : {}),
  };
}

let lastLog = 0;

/** What network RBAC decided for one connection: the filter and policy of a denial. */
interface Denial {
  filter: string;
  policy: string;
  delayDenyMs: number;
}

/** Runs the chain's filters over the connection as Envoy's network RBAC does, publishing the decision. */
function decide(ctx: TcpAuthzContext, listener: string, filters: readonly AuthzFilterConfig[], req: RbacRequest): Denial | undefined {
  let shadow: { effect: 'allowed' | 'denied'; policy?: string }[] | undefined;
  let allowedBy: string | undefined;
  const source = req.peer ? { source: req.peer as string } : {};
  for (const f of filters) {
    const d = evaluateRbac(f.rbac, req);
    if (d.shadow) (shadow ??= []).push(d.shadow);
    if (!d.allowed) {
      const policy = d.matchedPolicy ?? 'none';
      publish(ctx, { listener, protocol: 'tcp', effect: 'denied', policy, filter: f.name, ...(shadow ? { shadow } : {}), ...source });
      return { filter: f.name, policy, delayDenyMs: f.rbac.delayDenyMs };
    }
    if (f.rbac.rules?.action === 'ALLOW' && d.matchedPolicy !== undefined) allowedBy = d.matchedPolicy;
  }
  publish(ctx, { listener, protocol: 'tcp', effect: 'allowed', ...(allowedBy !== undefined ? { policy: allowedBy } : {}), ...(shadow ? { shadow } : {}), ...source });
  return undefined;
}

function logDenial(ctx: TcpAuthzContext, listener: string, socket: net.Socket, req: RbacRequest, d: Denial, what: string): void {
  const now = Date.now();
  if (now - lastLog < 1000) return;
  lastLog = now;
  ctx.log(`TCP connection from ${req.sourceIp}:${socket.remotePort}${req.peer ? ` (${req.peer as string})` : ''} to listener ${listener} ${what}: RBAC: access denied by ${d.policy === 'none' ? 'no ALLOW policy matching' : `policy ${d.policy}`} (filter ${d.filter})`);
}

/** The network RBAC filters that apply to a connection now: its chain's, in the listener's current config (none: no policy). */
export type CurrentFilters = () => readonly AuthzFilterConfig[] | undefined;

/**
 * Runs the chain's network RBAC `filters` (none: no policy) for a new connection: true when it may
 * go on to tcp_proxy; false when a filter denied it, and then the connection is closed here. A
 * connection let through is kept in ctx.live, so that a later policy change decides it again
 * (`current` says which filters apply to it then).
 */
export function admitConnection(ctx: TcpAuthzContext, listener: string, filters: readonly AuthzFilterConfig[] | undefined, socket: net.Socket, current: CurrentFilters, serverName?: string, refusedNow?: () => boolean): boolean {
  if (filters?.length) {
    const req = connectionRequestOf(socket, ctx, serverName);
    const d = decide(ctx, listener, filters, req);
    if (d) {
      logDenial(ctx, listener, socket, req, d, 'closed');
      socket.pause();
      if (d.delayDenyMs > 0) setTimeout(() => socket.destroy(), d.delayDenyMs).unref();
      else socket.destroy();
      return false;
    }
  }
  ctx.live?.add(socket, listener, current, serverName, refusedNow);
  return true;
}

/**
 * The TCP connections network RBAC let through (or that had no policy), each with the filters that
 * apply to it now. When policies change, `recheck` decides each again and closes those the new
 * policies deny: an AuthorizationPolicy applies to connections already open, not only to new ones.
 * (Envoy drains a changed filter chain, closing every connection on it, allowed or not, after the
 * drain time; Weft closes only those now denied, at once.) A connection that came without the
 * mesh's mTLS (plaintext, or TLS passed through) is closed too when its listener now takes mTLS
 * only (PeerAuthentication STRICT): `refusedNow` says so.
 */
export class LiveTcpConnections {
  private readonly live = new Map<net.Socket, { listener: string; current: CurrentFilters; serverName?: string; refusedNow?: () => boolean }>();

  add(socket: net.Socket, listener: string, current: CurrentFilters, serverName?: string, refusedNow?: () => boolean): void {
    if (socket.destroyed) return;
    this.live.set(socket, { listener, current, ...(serverName !== undefined ? { serverName } : {}), ...(refusedNow ? { refusedNow } : {}) });
    socket.once('close', () => this.live.delete(socket));
  }

  get size(): number {
    return this.live.size;
  }

  /** Decides every live connection again under the filters that apply now; closes the denied. Returns how many it closed. */
  recheck(ctx: TcpAuthzContext): number {
    let closed = 0;
    for (const [socket, c] of this.live) {
      if (c.refusedNow?.()) {
        const now = Date.now();
        if (now - lastLog >= 1000) {
          lastLog = now;
          ctx.log(`TCP connection from ${socket.remoteAddress}:${socket.remotePort} to listener ${c.listener} closed: it came without mutual TLS, which the listener now requires (PeerAuthentication STRICT)`);
        }
        this.live.delete(socket);
        socket.destroy();
        closed++;
        continue;
      }
      const filters = c.current();
      if (!filters?.length || socket.destroyed) continue;
      const req = connectionRequestOf(socket, ctx, c.serverName);
      const d = decide(ctx, c.listener, filters, req);
      if (!d) continue;
      logDenial(ctx, c.listener, socket, req, d, 'closed after a policy change');
      this.live.delete(socket);
      socket.destroy();
      closed++;
    }
    return closed;
  }
}

function publish(ctx: TcpAuthzContext, e: Parameters<Telemetry['authz']['publish']>[0]): void {
  if (ctx.telemetry.authz.hasSubscribers) ctx.telemetry.authz.publish(e);
}
