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

/**
 * Runs `filters` for a new connection: true when it may go on to tcp_proxy; false when a filter
 * denied it, and then the connection is closed here.
 */
export function authorizeConnection(ctx: TcpAuthzContext, listener: string, filters: readonly AuthzFilterConfig[], socket: net.Socket, serverName?: string): boolean {
  const req = connectionRequestOf(socket, ctx, serverName);
  let shadow: { effect: 'allowed' | 'denied'; policy?: string }[] | undefined;
  let allowedBy: string | undefined;
  for (const f of filters) {
    const d = evaluateRbac(f.rbac, req);
    if (d.shadow) (shadow ??= []).push(d.shadow);
    if (!d.allowed) {
      const policy = d.matchedPolicy ?? 'none';
      publish(ctx, { listener, protocol: 'tcp', effect: 'denied', policy, filter: f.name, ...(shadow ? { shadow } : {}), ...(req.peer ? { source: req.peer as string } : {}) });
      const now = Date.now();
      if (now - lastLog >= 1000) {
        lastLog = now;
        ctx.log(`TCP connection from ${req.sourceIp}:${socket.remotePort}${req.peer ? ` (${req.peer as string})` : ''} to listener ${listener} closed: RBAC: access denied by ${policy === 'none' ? 'no ALLOW policy matching' : `policy ${policy}`} (filter ${f.name})`);
      }
      socket.pause();
      if (f.rbac.delayDenyMs > 0) setTimeout(() => socket.destroy(), f.rbac.delayDenyMs).unref();
      else socket.destroy();
      return false;
    }
    if (f.rbac.rules?.action === 'ALLOW' && d.matchedPolicy !== undefined) allowedBy = d.matchedPolicy;
  }
  publish(ctx, { listener, protocol: 'tcp', effect: 'allowed', ...(allowedBy !== undefined ? { policy: allowedBy } : {}), ...(shadow ? { shadow } : {}), ...(req.peer ? { source: req.peer as string } : {}) });
  return true;
}

function publish(ctx: TcpAuthzContext, e: Parameters<Telemetry['authz']['publish']>[0]): void {
  if (ctx.telemetry.authz.hasSubscribers) ctx.telemetry.authz.publish(e);
}
