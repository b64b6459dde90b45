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

/** Runs the chain's filters over the connection as Envoy's network RBAC does, publishing the decision (an allowance only when `quietAllow` is not set). */
function decide(ctx: TcpAuthzContext, listener: string, filters: readonly AuthzFilterConfig[], req: RbacRequest, quietAllow = false): Denial | undefined {
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
  if (!quietAllow) publish(ctx, { listener, protocol: 'tcp', effect: 'allowed', ...(allowedBy !== undefined ? { policy: allowedBy } : {}), ...(shadow ? { shadow } : {}), ...source });
  return undefined;
}

function denialText(d: Denial): string {
  return `RBAC: access denied by ${d.policy === 'none' ? 'no ALLOW policy matching' : `policy ${d.policy}`} (filter ${d.filter})`;
}

/** Why a connection that came without the mesh's mTLS is closed once its listener takes mTLS only. */
export const PLAINTEXT_NOW_REFUSED = 'it came without mutual TLS, which the listener now requires (PeerAuthentication STRICT)';

/** The network RBAC filters that apply to a connection now: its chain's, in the listener's current config (none: no policy). */
export type CurrentFilters = () => readonly AuthzFilterConfig[] | undefined;

/**
 * Decides a connection that is about to reach tcp_proxy, under its chain's filters as they are now
 * (`current`; none: no policy), and whether its listener still takes a connection that came
 * without mTLS (`refusedNow`, for plaintext and TLS passed through): true when it may go on; false
 * when it is refused, and then it is closed here. A connection let through is kept in ctx.live, so
 * that a later policy change decides it again.
 */
export function admitConnection(ctx: TcpAuthzContext, listener: string, socket: net.Socket, current: CurrentFilters, serverName?: string, refusedNow?: () => boolean): boolean {
  // Decided by the config of now, not of when it was accepted: a policy that arrived while the
  // connection was silent (protocol detection) or shaking hands applies to it.
  if (refusedNow?.()) {
    logOnce(ctx, `TCP connection from ${socket.remoteAddress}:${socket.remotePort} to listener ${listener} closed: ${PLAINTEXT_NOW_REFUSED}`);
    socket.destroy();
    return false;
  }
  const filters = current();
  if (filters?.length) {
    const req = connectionRequestOf(socket, ctx, serverName);
    const d = decide(ctx, listener, filters, req);
    if (d) {
      logOnce(ctx, `TCP connection from ${req.sourceIp}:${socket.remotePort}${req.peer ? ` (${req.peer as string})` : ''} to listener ${listener} closed: ${denialText(d)}`);
      socket.pause();
      if (d.delayDenyMs > 0) setTimeout(() => socket.destroy(), d.delayDenyMs).unref();
      else socket.destroy();
      return false;
    }
  }
  ctx.live?.add(socket, listener, () => {
    if (refusedNow?.()) return PLAINTEXT_NOW_REFUSED;
    const now = current();
    if (!now?.length) return undefined;
    const d = decide(ctx, listener, now, connectionRequestOf(socket, ctx, serverName), true);
    return d && denialText(d);
  });
  return true;
}

function logOnce(ctx: Pick<TcpAuthzContext, 'log'>, msg: string): void {
  const now = Date.now();
  if (now - lastLog < 1000) return;
  lastLog = now;
  ctx.log(msg);
}

/**
 * The connections that outlive a single decision: TCP ones network RBAC let through (or that had
 * no policy), and HTTP connections upgraded to a byte stream (WebSocket), each with what says why
 * it would be refused now. When policies change, `recheck` asks each and closes those now refused,
 * at once: an AuthorizationPolicy or a PeerAuthentication STRICT applies to connections already
 * open, not only to new ones. (Envoy drains a changed filter chain instead, closing every
 * connection on it after the drain time, allowed or not.)
 */
export class LiveTcpConnections {
  private readonly live = new Map<net.Socket, { listener: string; refusal: () => string | undefined }>();

  /** Keeps `socket` until it closes; `refusal` says why the listener's policies of now refuse it, or undefined. */
  add(socket: net.Socket, listener: string, refusal: () => string | undefined): void {
    if (socket.destroyed) return;
    this.live.set(socket, { listener, refusal });
    socket.once('close', () => this.live.delete(socket));
  }

  get size(): number {
    return this.live.size;
  }

  /** Decides every live connection again; closes those now refused. Returns how many it closed. */
  recheck(ctx: Pick<TcpAuthzContext, 'log'>): number {
    let closed = 0;
    for (const [socket, c] of this.live) {
      if (socket.destroyed) continue;
      const why = c.refusal();
      if (!why) continue;
      logOnce(ctx, `connection from ${socket.remoteAddress}:${socket.remotePort} to listener ${c.listener} closed after a policy change: ${why}`);
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
