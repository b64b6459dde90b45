// The inbound authorization layer (Istio's AuthorizationPolicy, as Envoy's HTTP RBAC filters): the
// listener's RBAC filters, compiled once per config (xds-client/convert-authz.ts), run in their
// order on every request before it is routed; the first that denies answers 403 "RBAC: access
// denied" (PERMISSION_DENIED for gRPC) through errors.ts, naming the deciding policy, and no later
// filter runs. Dry-run (shadow) results are reported, never enforced.
//
// What a rule sees, as Envoy gives it to RBAC:
//   - the headers with :method, :authority and :path (path normalized as routing sees it, with the
//     query), which are what to.operation and request.headers match;
//   - the connection: source address (from.source.ipBlocks), the local address and port
//     (to.operation.ports, destination.port: the service port the inbound listener stands for, as
//     iptables would have restored it; Weft's PeerAuthentication keys ports the same way), the
//     peer's SPIFFE id from the mTLS handshake (principals, namespaces), the SNI;
//   - dynamic metadata written by the layers before this one (JWT authentication's
//     envoy.filters.http.jwt_authn and istio_authn: request.auth.*).
// Nothing here waits: evaluation is synchronous over compiled matchers.
import { type Metadata, type RbacDecision, type RbacRequest, evaluateRbac } from '../authz/index.ts';
import { type ProxyError, rbacDenied } from '../errors.ts';
import type { AuthzEvent, Telemetry } from '../telemetry/events.ts';
import type { ListenerConfig } from '../xds-client/convert.ts';
import type { Downstream } from './types.ts';
import { headerValue } from './edits.ts';

const { isIP } = process.getBuiltinModule('node:net');

export interface AuthzContext {
  telemetry: Telemetry;
  /** The service port an inbound listener port stands for (the connection's original destination); identity when unknown. */
  destinationPort?: (listenerPort: number) => number;
}

/** The request as RBAC reads it (Envoy's header map, connection and stream info). */
export function rbacRequestOf(ds: Downstream, ctx: AuthzContext): RbacRequest {
  const h = ds.head;
  const path = h.query ? `${h.path}?${h.query}` : h.path;
  // As Envoy's header map: the pseudo-headers, and on an upgrade its Upgrade and Connection (which
  // the request head keeps apart, as hop-by-hop), so that a rule on request.headers[upgrade] sees
  // them; Host is :authority.
  const headers = [':method', h.method, ':authority', h.authority, ':path', path, ...(h.upgrade ? ['upgrade', h.upgrade, 'connection', 'upgrade'] : []), ...h.headers];
  const xff = headerValue(h.headers, 'x-forwarded-for');
  const local = ds.localAddress?.() ?? { address: '', port: 0 };
  const peer = ds.sourcePrincipal?.();
  const sni = ds.requestedServerName?.();
  return {
    headers,
    path,
    destinationIp: unmapped(local.address),
    destinationPort: ctx.destinationPort?.(local.port) ?? local.port,
    sourceIp: unmapped(ds.remoteAddress()),
    // remote.ip / remoteIpBlocks: the original client, as Envoy takes it with use_remote_address
    // false and no trusted hops (Istio's inbound): the last X-Forwarded-For address, else the peer.
    ...(xff ? { remoteIp: lastForwardedFor(xff) ?? unmapped(ds.remoteAddress()) } : {}),
    ...(peer !== undefined ? { peer } : {}),
    ...(sni !== undefined ? { sni } : {}),
    ...(ds.dynamicMetadata ? { metadata: ds.dynamicMetadata as Metadata } : {}),
  };
}

/** The last address of an X-Forwarded-For value (Envoy's choice with no trusted hops), if it is one. */
function lastForwardedFor(xff: string): string | undefined {
  const last = xff.slice(xff.lastIndexOf(',') + 1).trim();
  return isIP(last) ? unmapped(last) : undefined;
}

/** Node reports an IPv4 client of a dual-stack socket as ::ffff:a.b.c.d; Envoy (and Istio's ipBlocks) see a.b.c.d. */
export function unmapped(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

/** What the listener's RBAC filters decide for a request: the denying filter and policy, if any. */
interface Verdict {
  denied?: { policy: string; filter: string };
  allowedBy?: string;
  shadow?: { effect: 'allowed' | 'denied'; policy?: string }[];
  audit?: string;
}

function evaluate(filters: NonNullable<ListenerConfig['authz']>, req: RbacRequest): Verdict {
  const v: Verdict = {};
  for (const f of filters) {
    const d: RbacDecision = evaluateRbac(f.rbac, req);
    if (d.shadow) (v.shadow ??= []).push(d.shadow);
    if (d.log && d.matchedPolicy !== undefined) v.audit = d.matchedPolicy;
    if (!d.allowed) {
      v.denied = { policy: d.matchedPolicy ?? 'none', filter: f.name };
      return v;
    }
    if (f.rbac.rules?.action === 'ALLOW' && d.matchedPolicy !== undefined) v.allowedBy = d.matchedPolicy;
  }
  return v;
}

/**
 * Runs the listener's RBAC filters for one request: undefined when every filter lets it through,
 * else the denial to answer with. Publishes the decision on the telemetry channel.
 */
export function authorize(ctx: AuthzContext, l: ListenerConfig, ds: Downstream): ProxyError | undefined {
  const filters = l.authz;
  if (!filters) return undefined;
  const v = evaluate(filters, rbacRequestOf(ds, ctx));
  if (v.denied) {
    report(ctx, l, ds, { effect: 'denied', ...v.denied }, v.shadow, v.audit);
    return rbacDenied(v.denied.policy === 'none' ? undefined : v.denied.policy, v.denied.filter, l.name);
  }
  report(ctx, l, ds, { effect: 'allowed', ...(v.allowedBy !== undefined ? { policy: v.allowedBy } : {}) }, v.shadow, v.audit);
  return undefined;
}

/**
 * The same decision again, for a request whose connection outlived it (an upgrade: WebSocket) when
 * the listener's policies change: why they now deny it, or undefined. Only a denial is published.
 */
export function deniedNow(ctx: AuthzContext, l: ListenerConfig, req: RbacRequest): string | undefined {
  if (!l.authz) return undefined;
  const v = evaluate(l.authz, req);
  if (!v.denied) return undefined;
  const ch = ctx.telemetry.authz;
  if (ch.hasSubscribers) ch.publish({ listener: l.name, protocol: 'http', effect: 'denied', ...v.denied, ...(req.peer ? { source: req.peer as string } : {}) });
  return `RBAC: access denied by ${v.denied.policy === 'none' ? 'no ALLOW policy matching' : `policy ${v.denied.policy}`} (filter ${v.denied.filter})`;
}

function report(ctx: AuthzContext, l: ListenerConfig, ds: Downstream, e: Pick<AuthzEvent, 'effect' | 'policy' | 'filter'>, shadow: AuthzEvent['shadow'], audit: string | undefined): void {
  const ch = ctx.telemetry.authz;
  if (!ch.hasSubscribers) return;
  const source = ds.sourcePrincipal?.();
  ch.publish({ listener: l.name, protocol: 'http', ...e, ...(shadow ? { shadow } : {}), ...(audit ? { audit } : {}), ...(source ? { source } : {}) });
}
