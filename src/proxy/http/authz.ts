// The inbound authorization layer (Istio's AuthorizationPolicy, as Envoy's HTTP RBAC filters): the
// listener's RBAC filters, compiled once per config (xds-client/convert-authz.ts), run in their
// order on every request before it is routed; the first that denies answers 403 "RBAC: access
// denied" (PERMISSION_DENIED for gRPC) through errors.ts, naming the deciding policy, and no later
// filter runs. Dry-run (shadow) results are reported, never enforced. An ext_authz filter among them
// (Istio's CUSTOM action) asks its authorizer (ext-authz.ts) when the RBAC filter before it marked
// the request; the filters after it wait for the answer.
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
// RBAC evaluation is synchronous over compiled matchers; only an external authorizer is waited for.
import { type Metadata, type RbacDecision, type RbacRequest, evaluateRbac, rbacDynamicMetadata } from '../authz/index.ts';
import { EXT_AUTHZ_POLICY, ProxyError, extAuthzDenied, rbacDenied } from '../errors.ts';
import { unmapped } from '../net/addresses.ts';
import type { AuthzEvent, Telemetry } from '../telemetry/events.ts';
import type { ExtAuthzFilterConfig, ListenerConfig } from '../xds-client/convert.ts';
import { type ExtAuthzContext, extAuthorize, extAuthzEnabled } from './ext-authz.ts';
import { EXT_AUTHZ_MARKS } from '../xds-client/convert-ext-authz.ts';
import type { Downstream } from './types.ts';
import { headerValue } from './edits.ts';

const { isIP } = process.getBuiltinModule('node:net');

export interface AuthzContext extends Partial<ExtAuthzContext> {
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

/** A decision that waits for an external authorizer: its outcome, and how to cancel it (the client left). */
export interface PendingAuthz {
  readonly result: Promise<ProxyError | undefined>;
  cancel(): void;
}

/** What the filters run so far found, for the event published at the end. */
interface Trail {
  shadow?: { effect: 'allowed' | 'denied'; policy?: string }[];
  allowedBy?: string;
  audit?: string;
}

/**
 * The RBAC filters' decision again, for a request whose connection outlived it (an upgrade:
 * WebSocket) when the listener's policies change: why they now deny it, or undefined. An external
 * authorizer (CUSTOM) is asked per request, not again here: a CUSTOM policy applies to connections
 * opened after it. Only a denial is published.
 */
export function deniedNow(ctx: AuthzContext, l: ListenerConfig, req: RbacRequest): string | undefined {
  for (const f of l.authz ?? []) {
    if (f.extAuthz) continue;
    const d: RbacDecision = evaluateRbac(f.rbac, req);
    if (d.allowed) continue;
    const policy = d.matchedPolicy ?? 'none';
    const ch = ctx.telemetry.authz;
    if (ch.hasSubscribers) ch.publish({ listener: l.name, protocol: 'http', effect: 'denied', policy, filter: f.name, ...(req.peer ? { source: req.peer as string } : {}) });
    return `RBAC: access denied by ${policy === 'none' ? 'no ALLOW policy matching' : `policy ${policy}`} (filter ${f.name})`;
  }
  return undefined;
}

/**
 * Runs the listener's authorization filters for one request: undefined when every filter lets it
 * through, else the denial to answer with; a PendingAuthz when an ext_authz filter (a CUSTOM
 * policy's) asks its authorizer. Publishes the decision on the telemetry channel.
 */
export function authorize(ctx: AuthzContext, l: ListenerConfig, ds: Downstream): ProxyError | undefined | PendingAuthz {
  if (!l.authz) return undefined;
  return run(ctx, l, ds, 0, {});
}

function run(ctx: AuthzContext, l: ListenerConfig, ds: Downstream, from: number, t: Trail): ProxyError | undefined | PendingAuthz {
  const filters = l.authz!;
  // RBAC filters write what they found in the dynamic metadata only where an ext_authz filter reads it.
  const marks = filters.length > 1 && filters.some((f) => f.extAuthz);
  let req: RbacRequest | undefined;
  for (let i = from; i < filters.length; i++) {
    const f = filters[i];
    if (f.extAuthz) {
      if (!extAuthzEnabled(f, ds)) continue;
      return external(ctx, l, ds, f, i, t);
    }
    req ??= rbacRequestOf(ds, ctx);
    const d: RbacDecision = evaluateRbac(f.rbac, req);
    // Dry-run results; the marks of a CUSTOM policy's RBAC filter (Istio's istio_ext_authz_ shadow rules) are not.
    if (d.shadow && f.rbac.shadowRulesStatPrefix !== EXT_AUTHZ_MARKS) (t.shadow ??= []).push(d.shadow);
    if (d.log && d.matchedPolicy !== undefined) t.audit = d.matchedPolicy;
    if (marks) {
      const md = rbacDynamicMetadata(f.rbac, d);
      ds.dynamicMetadata = { ...ds.dynamicMetadata, [f.name]: { ...ds.dynamicMetadata?.[f.name], ...md } };
      req = undefined; // the next filter reads the new metadata
    }
    if (!d.allowed) {
      report(ctx, l, ds, { effect: 'denied', policy: d.matchedPolicy ?? 'none', filter: f.name }, t.shadow, t.audit);
      return rbacDenied(d.matchedPolicy, f.name, l.name);
    }
    if (f.rbac.rules?.action === 'ALLOW' && d.matchedPolicy !== undefined) t.allowedBy = d.matchedPolicy;
  }
  report(ctx, l, ds, { effect: 'allowed', ...(t.allowedBy !== undefined ? { policy: t.allowedBy } : {}) }, t.shadow, t.audit);
  return undefined;
}

/** An ext_authz filter's check, then the filters after it (which see the request as the authorizer's answer left it). */
function external(ctx: AuthzContext, l: ListenerConfig, ds: Downstream, f: ExtAuthzFilterConfig, i: number, t: Trail): PendingAuthz {
  let cancel: (() => void) | undefined;
  let cancelled = false;
  const onCancel = (c: () => void) => {
    cancel = c;
    if (cancelled) c();
  };
  const result = (async (): Promise<ProxyError | undefined> => {
    if (!ctx.pools || !ctx.config || !ctx.rr) return extAuthzDenied(f.name, l.name, f.extAuthz.statusOnError, [], '', 'BUG: this listener has no way to reach an authorizer');
    const r = await extAuthorize(ctx as ExtAuthzContext, l.name, f, ds, onCancel);
    if (cancelled) return undefined;
    if (r.denied) {
      report(ctx, l, ds, { effect: 'denied', policy: EXT_AUTHZ_POLICY, filter: f.name }, t.shadow, t.audit);
      return r.denied;
    }
    const next = run(ctx, l, ds, i + 1, t);
    if (next === undefined || next instanceof ProxyError) return next;
    onCancel(next.cancel);
    return next.result;
  })();
  return {
    result,
    cancel: () => {
      cancelled = true;
      cancel?.();
    },
  };
}

function report(ctx: AuthzContext, l: ListenerConfig, ds: Downstream, e: Pick<AuthzEvent, 'effect' | 'policy' | 'filter'>, shadow: AuthzEvent['shadow'], audit: string | undefined): void {
  const ch = ctx.telemetry.authz;
  if (!ch.hasSubscribers) return;
  const source = ds.sourcePrincipal?.();
  ch.publish({ listener: l.name, protocol: 'http', ...e, ...(shadow ? { shadow } : {}), ...(audit ? { audit } : {}), ...(source ? { source } : {}) });
}
