// Network RBAC (Istio's AuthorizationPolicy on a TCP port): the chain's RBAC filters, compiled once
// per config (xds-client/convert-authz.ts), decide whether a connection may reach tcp_proxy. A
// denied connection is closed without a byte written (after the filter's delay_deny, if any).
//
// Envoy's network RBAC decides on the connection's first bytes (ONE_TIME_ON_FIRST_BYTE); what its
// rules can read (addresses, ports, the peer's SPIFFE id, SNI) is all known when the connection is
// accepted, so Weft decides then, before dialing: the same decision, and a denied client never
// reaches the app, even one whose protocol has the server speak first. CONTINUOUS enforcement
// would decide again on every read with the same inputs, so it decides the same once.
// A network ext_authz filter (Istio's CUSTOM action with a gRPC provider) asks its authorizer once
// per connection, before dialing, as Envoy's does on the connection's first bytes; the connection
// stays paused meanwhile. Denied, or the authorizer unreachable without failure_mode_allow: closed.
import type net from 'node:net';
import { type RbacRequest, evaluateRbac, rbacDynamicMetadata } from '../authz/index.ts';
import { EXT_AUTHZ_POLICY } from '../errors.ts';
import { check } from '../ext-authz/check.ts';
import type { ClusterCallContext } from '../ext-authz/call.ts';
import { peerPrincipal, requestedServerName } from '../tls/peer.ts';
import { unmapped } from '../net/addresses.ts';
import type { Telemetry } from '../telemetry/events.ts';
import type { AuthzFilterConfig, ExtAuthzFilterConfig } from '../xds-client/convert.ts';
import type { AccessLogConfig } from '../xds-client/convert-accesslog.ts';
import { EXT_AUTHZ_MARKS } from '../xds-client/convert-ext-authz.ts';

export interface TcpAuthzContext {
  telemetry: Telemetry;
  log: (msg: string) => void;
  /** The service port an inbound listener port stands for (the connection's original destination). */
  destinationPort?: (listenerPort: number) => number;
  /** How an ext_authz filter reaches its authorizer's cluster (the HTTP side's pools), and this sidecar's SPIFFE id. */
  extAuthz?: ExtAuthzCallContext;
  /** The connections let through, for a policy change to decide again (LiveTcpConnections). */
  live?: LiveTcpConnections;
}

export interface ExtAuthzCallContext extends ClusterCallContext {
  localPrincipal?: () => string | undefined;
}

/** The connection as network RBAC reads it. */
export function connectionRequestOf(socket: net.Socket, ctx: Pick<TcpAuthzContext, 'destinationPort'>, serverName?: string): RbacRequest {
  const peer = peerPrincipal(socket);
  // A terminated TLS connection's server name, or the one the tls_inspector read (TLS passed through).
  const sni = serverName ?? requestedServerName(socket);
  const port = socket.localPort ?? 0;
  return {
    destinationIp: unmapped(socket.localAddress ?? ''),
    destinationPort: ctx.destinationPort?.(port) ?? port,
    sourceIp: unmapped(socket.remoteAddress ?? ''),
    ...(peer !== undefined ? { peer } : {}),
    ...(sni ? { sni } : {}),
  };
}

let lastLog = 0;

/**
 * Runs `filters` for a new connection: true when it may go on to tcp_proxy; false when a filter
 * denied it, and then the connection is closed here. A promise of that when an ext_authz filter
 * (a CUSTOM policy's gRPC authorizer) is asked; the client closing meanwhile cancels the check.
 */
export function authorizeConnection(ctx: TcpAuthzContext, listener: string, filters: readonly AuthzFilterConfig[], socket: net.Socket, a: Omit<Admission, 'refusedNow'> = {}): boolean | Promise<boolean> {
  return run(ctx, listener, filters, socket, connectionRequestOf(socket, ctx, a.serverName), 0, { admission: a });
}

/** What the listener knows of a connection it asks to admit. */
export interface Admission {
  /** A terminated TLS connection's server name, or the one the tls_inspector read. */
  serverName?: string;
  /** Whether its listener now takes mTLS only (plaintext and TLS passed through). */
  refusedNow?: () => boolean;
  /** The access log of the tcp_proxy it was to reach (its chain's): a denied connection's line goes there. */
  accessLog?: readonly AccessLogConfig[];
  /** When it was accepted (Date.now()): a denied connection's line starts there, as Envoy's START_TIME does. */
  acceptedAt?: number;
}

interface Trail {
  admission: Omit<Admission, 'refusedNow'>;
  shadow?: { effect: 'allowed' | 'denied'; policy?: string }[];
  allowedBy?: string;
  metadata?: Record<string, Record<string, unknown>>;
}

function run(ctx: TcpAuthzContext, listener: string, filters: readonly AuthzFilterConfig[], socket: net.Socket, req: RbacRequest, from: number, t: Trail): boolean | Promise<boolean> {
  for (let i = from; i < filters.length; i++) {
    const f = filters[i];
    if (f.extAuthz) {
      if (f.extAuthz.enabled && !f.extAuthz.enabled(t.metadata)) continue;
      return external(ctx, listener, filters, socket, req, i, t).catch((e: Error) => {
        deny(ctx, listener, socket, req, EXT_AUTHZ_POLICY, f.name, t, `BUG: ${e.message}`, 0);
        return false;
      });
    }
    const d = evaluateRbac(f.rbac, req);
    // Dry-run results; the marks of a CUSTOM policy's RBAC filter (Istio's istio_ext_authz_ shadow rules) are not.
    if (d.shadow && f.rbac.shadowRulesStatPrefix !== EXT_AUTHZ_MARKS) (t.shadow ??= []).push(d.shadow);
    const md = rbacDynamicMetadata(f.rbac, d);
    if (Object.keys(md).length) t.metadata = { ...t.metadata, [f.name]: { ...t.metadata?.[f.name], ...md } };
    if (!d.allowed) {
      const policy = d.matchedPolicy ?? 'none';
      deny(ctx, listener, socket, req, policy, f.name, t, `RBAC: access denied by ${policy === 'none' ? 'no ALLOW policy matching' : `policy ${policy}`}`, f.rbac.delayDenyMs);
      return false;
    }
    if (f.rbac.rules?.action === 'ALLOW' && d.matchedPolicy !== undefined) t.allowedBy = d.matchedPolicy;
  }
  publish(ctx, { listener, protocol: 'tcp', effect: 'allowed', ...(t.allowedBy !== undefined ? { policy: t.allowedBy } : {}), ...(t.shadow ? { shadow: t.shadow } : {}), ...(req.peer ? { source: req.peer as string } : {}) });
  return true;
}

function deny(ctx: TcpAuthzContext, listener: string, socket: net.Socket, req: RbacRequest, policy: string, filter: string, t: Trail, why: string, delayMs: number): void {
  const { accessLog, acceptedAt } = t.admission;
  publish(ctx, { listener, protocol: 'tcp', effect: 'denied', policy, filter, ...(t.shadow ? { shadow: t.shadow } : {}), ...(req.peer ? { source: req.peer as string } : {}), down: socket, ...(accessLog ? { accessLog } : {}), ...(acceptedAt !== undefined ? { startMs: acceptedAt } : {}) });
  logOnce(ctx, `TCP connection from ${req.sourceIp}:${socket.remotePort}${req.peer ? ` (${req.peer as string})` : ''} to listener ${listener} closed: ${why} (filter ${filter})`);
  socket.pause();
  if (delayMs > 0) setTimeout(() => socket.destroy(), delayMs).unref();
  else socket.destroy();
}

/** A network ext_authz filter: asks the authorizer once for the connection, then runs the filters after it. */
async function external(ctx: TcpAuthzContext, listener: string, filters: readonly AuthzFilterConfig[], socket: net.Socket, req: RbacRequest, i: number, t: Trail): Promise<boolean> {
  const f = filters[i] as ExtAuthzFilterConfig;
  const c = f.extAuthz;
  socket.pause();
  if (!ctx.extAuthz) {
    deny(ctx, listener, socket, req, EXT_AUTHZ_POLICY, f.name, t, 'BUG: this sidecar has no way to reach an authorizer', 0);
    return false;
  }
  const own = req.peer !== undefined ? ctx.extAuthz.localPrincipal?.() : undefined;
  const running = check(ctx.extAuthz, c, {
    source: { address: req.sourceIp as string, port: socket.remotePort ?? 0, ...(req.peer !== undefined ? { principal: req.peer as string } : {}) },
    destination: { address: req.destinationIp as string, port: req.destinationPort as number, ...(own ? { principal: own } : {}) },
  });
  const onClose = () => running.abort();
  socket.once('close', onClose);
  const o = await running.outcome;
  socket.off('close', onClose);
  if (socket.destroyed) return false;
  if (o.kind === 'deny' || (o.kind === 'error' && !c.failOpen)) {
    deny(ctx, listener, socket, req, EXT_AUTHZ_POLICY, f.name, t, o.kind === 'deny' ? `external authorization denied it: ${o.reason}` : `the authorizer could not be asked: ${o.reason}`, 0);
    return false;
  }
  return run(ctx, listener, filters, socket, req, i + 1, t);
}

function publish(ctx: TcpAuthzContext, e: Parameters<Telemetry['authz']['publish']>[0]): void {
  if (ctx.telemetry.authz.hasSubscribers) ctx.telemetry.authz.publish(e);
}

/** Why a connection that came without the mesh's mTLS is closed once its listener takes mTLS only. */
export const PLAINTEXT_NOW_REFUSED = 'it came without mutual TLS, which the listener now requires (PeerAuthentication STRICT)';

/** The network authorization filters that apply to a connection now: its chain's, in the listener's current config (none: no policy). */
export type CurrentFilters = () => readonly AuthzFilterConfig[] | undefined;

/**
 * Decides a connection that is about to reach tcp_proxy, under its chain's filters as they are now
 * (`current`; none: no policy), and whether its listener still takes a connection that came
 * without mTLS (`a.refusedNow`, for plaintext and TLS passed through): true when it may go on (a
 * promise of that while an external authorizer is asked); false when it is refused, and then it
 * is closed here. A connection let through is kept in ctx.live, so that a later policy change
 * decides it again.
 */
export function admitConnection(ctx: TcpAuthzContext, listener: string, socket: net.Socket, current: CurrentFilters, a: Admission = {}): boolean | Promise<boolean> {
  const { serverName, refusedNow } = a;
  // Decided by the config of now, not of when it was accepted: a policy that arrived while the
  // connection was silent (protocol detection) or shaking hands applies to it.
  if (refusedNow?.()) {
    logOnce(ctx, `TCP connection from ${socket.remoteAddress}:${socket.remotePort} to listener ${listener} closed: ${PLAINTEXT_NOW_REFUSED}`);
    socket.destroy();
    return false;
  }
  // Kept from now on, before any verdict: a policy change while an external authorizer is asked
  // (found by review) decides it too, and closes it if it now refuses it (the check then ends
  // false). A connection denied below is closed, and leaves the set as it closes.
  ctx.live?.add(socket, listener, () => (refusedNow?.() ? PLAINTEXT_NOW_REFUSED : deniedNow(ctx, listener, current(), connectionRequestOf(socket, ctx, serverName))));
  const filters = current();
  if (!filters?.length) return true;
  return authorizeConnection(ctx, listener, filters, socket, a);
}

/**
 * The network RBAC filters' decision again for a connection already open (a policy change): why
 * they deny it now, or undefined. An external authorizer (CUSTOM) is asked once per connection, not
 * again here. Only a denial is published.
 */
function deniedNow(ctx: TcpAuthzContext, listener: string, filters: readonly AuthzFilterConfig[] | undefined, req: RbacRequest): string | undefined {
  for (const f of filters ?? []) {
    if (f.extAuthz) continue;
    const d = evaluateRbac(f.rbac, req);
    if (d.allowed) continue;
    const policy = d.matchedPolicy ?? 'none';
    publish(ctx, { listener, protocol: 'tcp', effect: 'denied', policy, filter: f.name, ...(req.peer ? { source: req.peer as string } : {}) });
    return `RBAC: access denied by ${policy === 'none' ? 'no ALLOW policy matching' : `policy ${policy}`} (filter ${f.name})`;
  }
  return undefined;
}

/** Logs `msg` unless this module logged a line less than a second ago: a flood of refusals cannot fill the log (the counts are in /stats). */
function logOnce(ctx: Pick<TcpAuthzContext, 'log'>, msg: string): void {
  const now = Date.now();
  if (now - lastLog < 1000) return;
  lastLog = now;
  ctx.log(msg);
}

/**
 * The connections that outlive a single decision: TCP ones network authorization let through (or
 * that had no policy), and HTTP connections upgraded to a byte stream (WebSocket), each with what
 * says why it would be refused now. When policies change, `recheck` asks each and closes those now
 * refused, at once: an AuthorizationPolicy or a PeerAuthentication STRICT applies to connections
 * already open, not only to new ones. (Envoy drains a changed filter chain instead, closing every
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
