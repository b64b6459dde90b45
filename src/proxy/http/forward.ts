// The life of one proxied HTTP request, whatever protocol carried it (docs/request-lifecycle.md).
// The layers, in order, all assembled in forward() below:
//   metadata exchange (peer-metadata.ts, where the HCM has Istio's filter) -> tracing (trace-context.ts, where the listener's HCM has tracing) -> JWT (jwt.ts, where the listener has RequestAuthentication) -> authorization (authz.ts; inbound listeners with AuthorizationPolicies;
//   ext-authz.ts for CUSTOM ones) -> route (router.ts) -> local rate limit (ratelimit.ts) -> CORS (cors.ts) -> local reply
//   (local-reply.ts: direct_response, redirect) -> fault (fault.ts) -> target cluster and
//   endpoints -> rewrites and header edits (edits.ts) -> timeouts, tries and retries (retry.ts),
//   endpoint choice (upstream/balance.ts, outlier.ts) -> upstream exchange -> response header
//   edits; mirrored copies (mirror.ts) once the request body is complete.
// The downstream codec (http1/server.ts, http2/server.ts) hands in a Downstream; the upstream
// codec (http1/client.ts, or http2/client.ts for clusters that speak HTTP/2) takes an
// UpstreamRequest. Failures become ProxyErrors, and errors.ts alone turns them into responses.
import net from 'node:net';
import type { RuntimeConfig } from '../config.ts';
import { ProxyError, sendError, upstreamError } from '../errors.ts';
import { type ClusterConfig, DEFAULT_STREAM_IDLE_TIMEOUT_MS, type Endpoint, type ListenerConfig, type RouteEntry, type RouteTable } from '../xds-client/convert.ts';
import type { Target } from '../xds-client/convert-route.ts';
import { type PoolProtocol, type Pools, upstreamProtocolFor } from '../upstream/pools.ts';
import type { ClusterResources } from '../upstream/resources.ts';
import type { ResponseHandler, UpstreamCall, UpstreamError } from './types.ts';
import { grpcTimeoutMs, isGrpc } from './grpc.ts';
import { GrpcMessageCounter } from './grpc-frames.ts';
import { endToEnd } from '../http1/headers.ts';
import { type RequestView, findRoute, findVirtualHost, pickCluster, pickTarget } from './router.ts';
import { type RequestDetail, type RequestEvent, type Telemetry, requestEvent } from '../telemetry/events.ts';
import { peerPrincipal, peerWorkload } from '../tls/peer.ts';
import { hostPort } from '../net/addresses.ts';
import type { BodySink, Downstream, HeaderList, RequestHead } from './types.ts';
import { localReply } from './local-reply.ts';
import { RateLimiter, limitMessage } from './ratelimit.ts';
import { answerPreflight, corsOutcome, withCors } from './cors.ts';
import { type HashKey, hashKeyOf } from './hash-key.ts';
import { mirror } from './mirror.ts';
import { faultOutcome, injectFault } from './fault.ts';
import { headerValue, responseHeaders, upstreamHead } from './edits.ts';
import { cameBack, withOwnVia } from './via.ts';
import { type JwtOutcome, authenticate } from './jwt.ts';
import { JwksCache } from './jwks.ts';
import { ensureRequestId, traceRequest } from './trace-context.ts';
import { type OwnMetadata, PeerMetadataCache, answerHeaders, takeMetadataHeaders, withOwnMetadata } from './peer-metadata.ts';
import type { PeerMetadataConfig } from '../xds-client/convert-peer-metadata.ts';
import { transportFor } from '../xds-client/convert-tls.ts';

import { clusterEndpoints } from '../upstream/choose.ts';
import type { Tiers } from '../upstream/priority.ts';
import { InFlight, nextEndpointFor } from '../upstream/balance.ts';
import { OutlierDetector, type Outcome } from '../upstream/outlier.ts';
import type { SlowStart } from '../upstream/slow-start.ts';
import { RetryBudgets, type TryFailure, backoffMs, retriableFailure, retriableResponse } from './retry.ts';
import { join } from '../tcp/tcp.ts';
import { type PendingAuthz, authorize, deniedNow, rbacRequestOf } from './authz.ts';
import { type LiveTcpConnections, PLAINTEXT_NOW_REFUSED } from '../tcp/authz.ts';

export interface ForwardContext {
  config: () => RuntimeConfig;
  /** This workload's metadata exchange headers (peer-metadata.ts), where listeners run the exchange. */
  ownMetadata?: OwnMetadata;
  /** The peers' metadata taken so far (created on first use). */
  peerMetadata?: PeerMetadataCache;
  pools: Pools;
  /** Where the request path publishes what happened (telemetry subscribes). */
  telemetry: Telemetry;
  rr: Map<string, number>;
  /** Exchanges in progress, for the stream idle sweep. */
  active: ActiveExchanges;
  /** Each cluster's retry budget (created on first use when not given). */
  retryBudgets?: RetryBudgets;
  /** Ejections by outlier detection, and requests in flight per endpoint (created on first use). */
  outlier?: OutlierDetector;
  /** When endpoints joined clusters with slow start (created on first use). */
  slowStart?: SlowStart;
  /** Token buckets of the routes' local rate limits (created on first use). */
  rateLimiter?: RateLimiter;
  /** The JWT layer's key sets: inline ones made once, remote ones fetched and cached (created on first use). */
  jwks?: JwksCache;
  inflight?: InFlight;
  /** The service port an inbound listener's port stands for (authorization's destination port). */
  destinationPort?: (listenerPort: number) => number;
  /** The sidecar's log, for what the request path refuses (at most a line a second each). */
  log?: (msg: string) => void;
  /** Connections that outlive one decision (upgraded ones), decided again when policies change. */
  live?: LiveTcpConnections;
  /** This sidecar's SPIFFE id, when it has one (an external authorizer's destination principal). */
  localPrincipal?: () => string | undefined;
}

/** A request body larger than this is not kept for a retry, and its request is not retried (Envoy buffers 1 MiB per connection). */
export const RETRY_BODY_LIMIT = 64 * 1024;

/**
 * The exchanges in progress, linked through the exchanges themselves: adding and removing one
 * allocates nothing. Not a Set: a Set whose entries come and go with every request is rehashed
 * every few requests, and V8 links each obsolete table to its successor (for live iterators), so
 * that one obsolete table promoted to the old generation kept every later table, and the exchanges
 * they held, alive through scavenges: each request's objects were promoted (about 1 KB a request,
 * 1 MB/s of old generation at 1,000 rps) and the sidecar's memory grew until a major GC.
 */
export class ActiveExchanges {
  private first: Exchange | undefined;
  size = 0;

  add(x: Exchange): void {
    x.nextActive = this.first;
    if (this.first) this.first.prevActive = x;
    this.first = x;
    this.size++;
  }

  delete(x: Exchange): void {
    if (x.prevActive) x.prevActive.nextActive = x.nextActive;
    else if (this.first === x) this.first = x.nextActive;
    else return; // not in the list
    if (x.nextActive) x.nextActive.prevActive = x.prevActive;
    x.prevActive = x.nextActive = undefined;
    this.size--;
  }

  /** Each exchange once; the one just returned may be deleted meanwhile. */
  *[Symbol.iterator](): IterableIterator<Exchange> {
    for (let x = this.first; x; ) {
      const next = x.nextActive;
      yield x;
      x = next;
    }
  }
}

/**
 * Ends every exchange that moved no byte either way for its listener's stream_idle_timeout (an
 * upstream that never answers, a client whose body stops midway), as Envoy does. One sweep a
 * second for the whole sidecar; each exchange only records when it last moved.
 */
export function startIdleSweep(ctx: ForwardContext): NodeJS.Timeout {
  const t = setInterval(() => {
    const now = performance.now();
    for (const x of ctx.active) x.checkIdle(now);
  }, 250);
  t.unref();
  return t;
}

export function routeTableFor(cfg: RuntimeConfig, l: ListenerConfig | undefined, listenerName: string): RouteTable {
  if (!l) throw new ProxyError('no_config', `listener ${listenerName} has no config`);
  if (l.inlineRoutes) return l.inlineRoutes;
  const t = cfg.routes.get(l.rdsName!);
  if (!t) throw new ProxyError('no_config', `route configuration ${l.rdsName} of listener ${listenerName} has not arrived from the control plane`);
  return t;
}

interface Decision {
  route: RouteEntry;
  clusterName: string;
  /** The weighted cluster entry chosen (its header edits apply). */
  target: Target;
  cluster: ClusterConfig;
  healthy: Endpoint[];
  /** The endpoints' priorities and localities, where there are several (upstream/priority.ts). */
  tiers: Tiers | null;
  /** Some endpoint has a weight of its own. */
  weighted: boolean;
}

/** PURE: the route a request takes, or a ProxyError (no config, no virtual host, no route). */
export function matchRoute(cfg: RuntimeConfig, listenerName: string, h: RequestHead): RouteEntry {
  const table = routeTableFor(cfg, cfg.listeners.get(listenerName), listenerName);
  const vh = findVirtualHost(table, h.authority);
  if (!vh) throw new ProxyError('no_route', `no route for host "${h.authority}": no service or VirtualService in the mesh has that name`);
  const route = findRoute(vh, new HeadView(h));
  if (!route) throw new ProxyError('no_route', `no route of ${vh.name} matches ${h.method} ${h.path}`);
  return route;
}

/**
 * PURE given the snapshot and a random number: which cluster and endpoints a forwarding route's
 * request gets. `authority` is the request's, for ORIGINAL_DST clusters (upstream/choose.ts).
 */
export function targetOf(cfg: RuntimeConfig, route: RouteEntry, rand: number, authority?: string): Decision {
  if (route.action.kind !== 'forward') throw new Error(`route ${route.name} does not forward`);
  const target = pickTarget(route, rand);
  const clusterName = target.name;
  const cluster = cfg.clusters.get(clusterName);
  if (!cluster) throw new ProxyError('no_cluster', `route ${route.name} points at cluster ${clusterName}, which the sidecar does not have`, clusterName);
  const { healthy, tiers, weighted } = clusterEndpoints(cfg, clusterName, cluster, authority);
  return { route, clusterName, target, cluster, healthy, tiers, weighted };
}

/** PURE given the snapshot and a random number: which route, cluster and endpoints a request gets. */
export function decide(cfg: RuntimeConfig, listenerName: string, ds: Downstream, rand: number): Decision {
  return targetOf(cfg, matchRoute(cfg, listenerName, ds.head), rand, ds.head.authority);
}

/**
 * Where a CONNECT goes: 'http', a tunnel whose requests are routed by their own Host; 'tcp', an
 * opaque tunnel to the cluster; 'detect', either, by what the tunnel carries; 'internal', the
 * tunnel handed to an internal listener (the cluster's endpoint names it), which decides.
 */
export type ConnectTarget =
  | { kind: 'http' }
  | { kind: 'tcp' | 'detect'; cluster: string; tunnel?: TunnelLimits; hashSource?: boolean }
  | { kind: 'internal'; cluster: string; listener: string }
  | { kind: 'reply'; status: number; body: Buffer | undefined }
  | { kind: 'error'; error: ProxyError };

/** What the CONNECT route says of its tunnels: how long one may idle (0: forever; unset: the listener's idle timeout) and live. */
export interface TunnelLimits {
  idleTimeoutMs?: number;
  maxDurationMs?: number;
}

/**
 * PURE given the snapshot and a random number: where a CONNECT to `authority` goes, or a
 * sentence saying why nowhere. A CONNECT route (connect_matcher) makes the tunnel TCP to its
 * cluster; with HTTP routes beside it (a port of undeclared protocol), what the tunnel carries
 * decides.
 */
export function connectTarget(cfg: RuntimeConfig, listenerName: string, authority: string, rand: number): ConnectTarget | string {
  let vh;
  try {
    vh = findVirtualHost(routeTableFor(cfg, cfg.listeners.get(listenerName), listenerName), authority);
  } catch (e) {
    return (e as Error).message;
  }
  if (!vh) return `no route for CONNECT to "${authority}": no service or VirtualService in the mesh has that name`;
  const r = vh.routes.find((x) => x.connect);
  if (!r) return { kind: 'http' };
  // A direct_response on CONNECT: the sidecar answers it (REGISTRY_ONLY's 502 for unknown hosts).
  if (r.action.kind === 'direct') return { kind: 'reply', status: r.action.status, body: r.action.body };
  const cluster = pickCluster(r, rand);
  // Envoy's CONNECT to an internal listener: the tunnel is that listener's connection (TLS routes
  // by server name are one: translate/tls-routes.ts).
  const listener = cfg.clusters.get(cluster)?.internalListener;
  if (listener !== undefined) {
    if (cfg.listeners.get(listener)?.internal) return { kind: 'internal', cluster, listener };
    return { kind: 'error', error: new ProxyError('no_cluster', `cluster ${cluster} leads to internal listener ${listener}, which the sidecar does not have`, cluster) };
  }
  const tunnel: TunnelLimits = {};
  if (r.idleTimeoutMs !== undefined) tunnel.idleTimeoutMs = r.idleTimeoutMs;
  if (r.maxStreamDurationMs !== undefined) tunnel.maxDurationMs = r.maxStreamDurationMs;
  const limits = { ...(Object.keys(tunnel).length ? { tunnel } : {}), ...(r.hashPolicy?.some((p) => p.kind === 'source_ip') ? { hashSource: true } : {}) };
  // A tunnel to where the client asked (ORIGINAL_DST: ALLOW_ANY's passthrough) goes there whatever
  // it carries: nothing to detect, and the client hears 200 only once the connection is made.
  if (cfg.clusters.get(cluster)?.type === 'ORIGINAL_DST') return { kind: 'tcp', cluster, ...limits };
  return { kind: vh.routes.some((x) => !x.connect) ? 'detect' : 'tcp', cluster, ...limits };
}

/** A request head as the router sees it. */
class HeadView implements RequestView {
  readonly path: string;
  readonly query: string;
  private readonly h: RequestHead;
  constructor(h: RequestHead) {
    this.h = h;
    this.path = h.path;
    this.query = h.query;
  }
  header(n: string): string | undefined {
    const h = this.h;
    return n === ':method' ? h.method : n === ':authority' ? h.authority : n === ':scheme' ? 'http' : headerValue(h.headers, n);
  }
}

export function forward(ctx: ForwardContext, listenerName: string, ds: Downstream): void {
  // One snapshot for the whole request: a config swap mid-request does not affect it.
  const cfg = ctx.config();
  ds.listenerName = listenerName;
  // A request on a connection that came without mTLS, to a listener that now takes mTLS only
  // (PeerAuthentication STRICT applied after the connection was opened): the connection is
  // closed, unanswered, as a new one would be refused (Envoy drains the removed plaintext chain).
  const l = cfg.listeners.get(listenerName);
  if (l?.mtls && !l.mtls.plaintext && ds.sourcePrincipal?.() === undefined) return refusePlaintext(ctx, ds, listenerName);
  // Istio's metadata exchange, first as Istio's pilot puts it: the exchange's headers are taken
  // off before anything else sees the request (peer-metadata.ts).
  if (l?.peerMetadata) exchangeDownstream(ctx, ds, l.peerMetadata);
  // Tracing first, as Envoy's HCM starts the span before its filters: the request's trace context,
  // x-request-id and the propagation headers (trace-context.ts); the span is reported at the end.
  if (l?.tracing) ds.trace = traceRequest(ds.head, l.tracing, Math.random());
  else if (l && !l.noRequestId) ensureRequestId(ds.head);
  // The JWT layer first, as Envoy's jwt_authn filter is first among the HCM's filters. A request
  // with no token is decided at once; one with tokens waits for their verification only (jwt.ts).
  const jwt = l?.jwt;
  if (!jwt) return routeRequest(ctx, cfg, listenerName, ds);
  let outcome: JwtOutcome | Promise<JwtOutcome>;
  try {
    outcome = authenticate(jwt, ds.head, { jwks: (ctx.jwks ??= new JwksCache()) });
  } catch (e) {
    fail(ctx, ds, e);
    return;
  }
  if (!(outcome instanceof Promise)) return authenticated(ctx, cfg, listenerName, ds, outcome);
  // A client that leaves while its tokens are verified is not sent on (as after any other layer).
  let gone = false;
  ds.onAbort(() => {
    gone = true;
    publish(ctx, ds, '-', 499, 'downstream_closed', undefined, undefined);
  });
  outcome.then(
    (o) => gone || authenticated(ctx, cfg, listenerName, ds, o),
    (e) => gone || fail(ctx, ds, e),
  );
}

/**
 * The exchange's headers are taken off the request on any listener that runs the exchange: an
 * app's own never pass (outbound, this workload's go on per try to mesh endpoints). Inbound
 * (discovery), the client's metadata, if it came over mutual TLS and is to be believed, goes on
 * ds.peerMetadata for the metrics; every answer to it carries this workload's (propagation), the
 * sidecar's own answers too, over mutual TLS only.
 */
function exchangeDownstream(ctx: ForwardContext, ds: Downstream, mx: PeerMetadataConfig): void {
  const got = takeMetadataHeaders(ds.head.headers);
  if (!mx.downstreamDiscovery || (got.value === undefined && got.id === undefined)) return;
  const principal = ds.sourcePrincipal?.();
  if (principal === undefined) return;
  if (got.value !== undefined) ds.peerMetadata = (ctx.peerMetadata ??= new PeerMetadataCache()).accept(got.value, principal, ds.peerWorkload?.());
  const own = ctx.ownMetadata;
  if (mx.downstreamPropagation && own) ds.responseMetadata = answerHeaders(own, got);
}

/** Mutual TLS with the mesh's own certificates (no origination files): the endpoint is a mesh sidecar. */
function meshMtls(tls: { files?: unknown } | undefined): boolean {
  return tls !== undefined && tls.files === undefined;
}

let lastPlaintextLog = 0;

function refusePlaintext(ctx: ForwardContext, ds: Downstream, listenerName: string): void {
  publish(ctx, ds, '-', 0, 'plaintext_refused', undefined, undefined);
  const now = Date.now();
  if (now - lastPlaintextLog >= 1000) {
    lastPlaintextLog = now;
    ctx.log?.(`request ${ds.head.method} ${ds.head.authority}${ds.head.path.slice(0, 200)} from ${ds.remoteAddress()} on listener ${listenerName}: connection closed: it came without mutual TLS, which the listener now requires (PeerAuthentication STRICT)`);
  }
  ds.reset('plaintext connection on a listener that now requires mutual TLS');
}

/** After the JWT layer: refused (401, 403), or on with what the layer found (dynamic metadata, which authorization reads). */
function authenticated(ctx: ForwardContext, cfg: RuntimeConfig, listenerName: string, ds: Downstream, o: JwtOutcome): void {
  if (!o.ok) return fail(ctx, ds, o.error);
  if (o.metadata) ds.dynamicMetadata = o.metadata;
  routeRequest(ctx, cfg, listenerName, ds);
}

/**
 * The layers after authentication. What the filters before found is on ds.dynamicMetadata
 * (http/istio-authn.ts: 'envoy.filters.http.jwt_authn', 'istio_authn'), where authorization reads it.
 */
function routeRequest(ctx: ForwardContext, cfg: RuntimeConfig, listenerName: string, ds: Downstream): void {
  // Authorization next, as Istio orders the inbound filters: after authentication only (the JWT
  // layer above filled ds.dynamicMetadata, which RBAC reads); a denied request is answered here
  // and never routed.
  const l = cfg.listeners.get(listenerName);
  if (l?.authz) {
    const denied = authorize(ctx, l, ds);
    if (denied instanceof ProxyError) return fail(ctx, ds, denied);
    // An external authorizer (CUSTOM policy) is being asked: a client that leaves meanwhile cancels the check.
    if (denied) return authorizing(ctx, cfg, listenerName, ds, denied);
  }
  routeAuthorized(ctx, cfg, listenerName, ds);
}

function authorizing(ctx: ForwardContext, cfg: RuntimeConfig, listenerName: string, ds: Downstream, pending: PendingAuthz): void {
  let gone = false;
  ds.onAbort(() => {
    gone = true;
    pending.cancel();
    publish(ctx, ds, '-', 499, 'downstream_closed', undefined, undefined);
  });
  pending.result.then(
    (denied) => gone || (denied ? fail(ctx, ds, denied) : routeAuthorized(ctx, cfg, listenerName, ds)),
    (e) => gone || fail(ctx, ds, e),
  );
}

/** The layers after authorization: route, local rate limit, CORS, fault, then the router's action. */
function routeAuthorized(ctx: ForwardContext, cfg: RuntimeConfig, listenerName: string, ds: Downstream): void {
  let route: RouteEntry;
  try {
    route = matchRoute(cfg, listenerName, ds.head);
  } catch (e) {
    fail(ctx, ds, e);
    return;
  }
  // A local rate limit first: past it, 429 naming the limit (ratelimit.ts).
  if (route.rateLimit && !(ctx.rateLimiter ??= new RateLimiter()).take(route.rateLimit, performance.now())) {
    fail(ctx, ds, new ProxyError('rate_limited', limitMessage(route.rateLimit)));
    return;
  }
  // Then CORS (Envoy's filter order: cors, fault, router): a preflight it allows is answered here.
  const cors = route.cors ? corsOutcome(route.cors, ds.head) : undefined;
  if (cors?.kind === 'preflight') {
    answerPreflight(ds, cors.headers);
    publish(ctx, ds, '-', 200, undefined, undefined, undefined, routeDetail(route));
    return;
  }
  // What an external authorizer adds to the response (allowed_client_headers_on_success) goes with CORS's.
  const extra = ds.responseHeadersToAdd;
  const corsHeaders = cors?.kind === 'actual' ? (extra ? [...cors.headers, ...extra] : cors.headers) : extra;
  if (!route.fault) return routeAction(ctx, cfg, listenerName, ds, route, corsHeaders); // no closure per request
  // The fault filter comes before the router, which forwards, redirects or answers directly.
  injectFault(
    ds,
    faultOutcome(route.fault, Math.random(), Math.random()),
    () => routeAction(ctx, cfg, listenerName, ds, route, corsHeaders),
    (answer) => fail(ctx, ds, new ProxyError('fault_abort', `fault filter abort (fault injection of route ${route.name})`, undefined, answer)),
  );
}

/** What the router does with a request: forward it, or answer it (a redirect, a direct response). */
function routeAction(ctx: ForwardContext, cfg: RuntimeConfig, listenerName: string, ds: Downstream, route: RouteEntry, corsHeaders: HeaderList | undefined): void {
  if (route.action.kind === 'forward') return toUpstream(ctx, cfg, listenerName, ds, route, corsHeaders);
  publish(ctx, ds, '-', localReply(ds, route, corsHeaders), undefined, undefined, undefined, routeDetail(route));
}

/** The forwarding route's target (cluster and endpoints), then the exchange with it. */
function toUpstream(ctx: ForwardContext, cfg: RuntimeConfig, listenerName: string, ds: Downstream, route: RouteEntry, corsHeaders: HeaderList | undefined): void {
  let d: Decision;
  try {
    d = targetOf(cfg, route, Math.random(), ds.head.authority);
  } catch (e) {
    fail(ctx, ds, e);
    return;
  }
  if (d.cluster.type === 'ORIGINAL_DST' && cameBack(ds.head.headers)) {
    fail(ctx, ds, new ProxyError('bad_request', `request loop: ${ds.head.authority} led back to this sidecar (its own Via entry is on the request), so cluster ${d.clusterName} cannot send it there`, d.clusterName));
    return;
  }
  // The route's own idle_timeout, else the listener's stream_idle_timeout; 0 is none.
  const idle = route.idleTimeoutMs ?? cfg.listeners.get(listenerName)?.streamIdleTimeoutMs ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS;
  const ex = new Exchange(ctx, ds, d, idle === 0 ? Infinity : idle, corsHeaders, cfg.listeners.get(listenerName)?.peerMetadata);
  // A request that may become a byte stream (WebSocket) is decided again when policies change, as
  // long as its connection lives (tcp/authz.ts LiveTcpConnections).
  if (ds.head.upgrade !== undefined && ctx.live) ex.afterUpgrade = { listener: listenerName, refusal: upgradeRefusal(ctx, listenerName, ds) };
  ex.start();
}

/** Why the listener's policies of now refuse an upgraded connection: it came without mTLS where STRICT now applies, or RBAC now denies its request. */
function upgradeRefusal(ctx: ForwardContext, listenerName: string, ds: Downstream): () => string | undefined {
  const req = rbacRequestOf(ds, ctx);
  const plaintext = ds.sourcePrincipal?.() === undefined;
  return () => {
    const l = ctx.config().listeners.get(listenerName);
    if (!l) return undefined;
    if (plaintext && l.mtls && !l.mtls.plaintext) return PLAINTEXT_NOW_REFUSED;
    return deniedNow(ctx, l, req);
  };
}

/** What telemetry learns of the route that took a request: its name, and its decorator's operation. */
function routeDetail(r: RouteEntry): RequestDetail {
  return r.operation ? { route: r.name, operation: r.operation } : { route: r.name };
}

/** Tells telemetry how an exchange ended (events.ts requestEvent: one shape); costs nothing when nobody listens. */
function publish(ctx: ForwardContext, ds: Downstream, cluster: string, status: number, reason: string | undefined, endpoint: string | undefined, started: number | undefined, d?: RequestDetail): void {
  const ch = ctx.telemetry.request;
  if (!ch.hasSubscribers) return;
  ch.publish(requestEvent(cluster, status, reason, endpoint, started === undefined ? undefined : performance.now() - started, ds.sourcePrincipal?.() || undefined, ds, d));
}

/** The sidecar answers the client itself; `endpoint` and `started` when an exchange had begun. */
function fail(ctx: ForwardContext, ds: Downstream, e: unknown, endpoint?: string, started?: number, detail?: RequestDetail): void {
  const err = e instanceof ProxyError ? e : new ProxyError('upstream_reset', `internal error: ${(e as Error).message}`);
  if (ctx.telemetry.request.hasSubscribers) {
    const policy = err.authzPolicy;
    // A gRPC client that gets the sidecar's own answer gets it as a trailers-only response with this grpc-status.
    const grpcStatus = !ds.responseStarted && isGrpc(ds.head.headers) ? { grpcStatus: String(err.grpcStatus) } : {};
    publish(ctx, ds, err.cluster ?? '-', err.status, err.code, endpoint || undefined, started, { ...detail, ...(policy ? { authzPolicy: policy } : {}), ...(err.transportFailure ? { transportFailure: err.transportFailure } : {}), bytesSent: ds.responseStarted ? (detail?.bytesSent ?? 0) : localReplyBytes(ds, err), ...grpcStatus });
  }
  sendError(ds, err);
}

/** The body bytes of the sidecar's own answer (none for gRPC's trailers-only answer). */
function localReplyBytes(ds: Downstream, err: ProxyError): number {
  return isGrpc(ds.head.headers) ? 0 : Buffer.byteLength(err.body);
}

/**
 * One request's way through the upstream side: endpoint, tries and retries (retry.ts decides which
 * outcomes are retried, with back-off and the cluster's budget), per-try and route timeouts.
 * The request body is kept (up to RETRY_BODY_LIMIT) so that a retry can send it again; once the
 * response has started towards the client, nothing is retried.
 */
export class Exchange implements BodySink, ResponseHandler {
  private readonly ctx: ForwardContext;
  private readonly ds: Downstream;
  private readonly d: Decision;
  /** The request as the upstream gets it: the route's rewrites and header edits applied. */
  private readonly head: RequestHead;
  private readonly idleMs: number;
  readonly started = performance.now();
  /** When the idle sweep last saw bytes move (or the start). */
  private lastMoved = this.started;
  /** Bytes moved since the last idle sweep (a flag, not a clock read per chunk). */
  private moved = false;
  private requestDone = false;
  private call: UpstreamCall | undefined;
  private endpoint = '';
  private endpointObj: Endpoint | undefined;
  /** Retries made so far. */
  private retries = 0;
  /** Endpoints tried: a retry goes elsewhere when it can (Envoy's previous_hosts). */
  private tried: Set<Endpoint> | undefined;
  /** With several priorities: each try's priority, and those a retry leaves out (Envoy's previous_priorities). */
  private readonly attempted: number[] = [];
  private excludedPriorities: Set<number> | undefined;
  /** The request body so far, for a retry to send again (made on the first chunk); null once it passed RETRY_BODY_LIMIT. */
  private body: Buffer[] | null | undefined;
  private bodyBytes = 0;
  /** Request body bytes from the client, and response body bytes to it (the access log's BYTES_RECEIVED, BYTES_SENT). */
  private bytesIn = 0;
  private bytesOut = 0;
  /** What telemetry learns of the upstream connection and the response head, kept only when someone listens. */
  private upstream: UpstreamSide | undefined;
  private responseHead: HeaderList | undefined;
  /** A gRPC exchange someone listens to: the messages each way, counted as they pass (Istio's request/response_messages_total), and the grpc-status the client got. */
  private messages: { request: GrpcMessageCounter; response: GrpcMessageCounter } | undefined;
  private grpcStatus: string | undefined;
  private requestTrailers: HeaderList = [];
  /** The downstream body has started to flow (readBody was called). */
  private bodyStarted = false;
  /** The response head went to the client: from here on there is no retry. */
  private responded = false;
  private tryTimer: NodeJS.Timeout | undefined;
  private backoffTimer: NodeJS.Timeout | undefined;
  /** The current try counts as in flight at its endpoint (LEAST_REQUEST clusters). */
  private tryOpen = false;
  /** The cluster's retry slot (max_retries) this exchange holds: from a retry's decision until that retry's outcome, as Envoy. */
  private retrySlot: ClusterResources | undefined;
  /** What the upstream speaks for this request: the cluster's protocol, or the client's where the cluster follows it. */
  private readonly protocol: PoolProtocol;
  /** The client's gRPC deadline (grpc-timeout), in ms from `started`. */
  private grpcDeadlineMs: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private done = false;
  private status = 0;
  /** Links of ActiveExchanges. */
  prevActive: Exchange | undefined;
  nextActive: Exchange | undefined;

  /** Headers the CORS layer adds to the response. */
  private readonly corsHeaders: HeaderList | undefined;
  /** For a request that may upgrade: its listener, and why that listener's policies would refuse it now. */
  afterUpgrade: { listener: string; refusal: () => string | undefined } | undefined;
  /** What a RING_HASH or MAGLEV cluster hashes this request by (hash-key.ts). */
  private readonly hashKey: HashKey | undefined;
  /** The listener's metadata exchange (peer-metadata.ts), and the upstream's x-envoy-peer-metadata from its answer. */
  private readonly mx: PeerMetadataConfig | undefined;
  private upstreamMetadata: string | undefined;
  /** The current try goes to a mesh endpoint over the mesh's mutual TLS: only its answer's metadata may be believed. */
  private meshTry = false;

  constructor(ctx: ForwardContext, ds: Downstream, d: Decision, idleMs: number, corsHeaders?: HeaderList, mx?: PeerMetadataConfig) {
    this.ctx = ctx;
    this.mx = mx;
    this.ds = ds;
    this.d = d;
    this.corsHeaders = corsHeaders;
    const head = upstreamHead(ds.head, d.route, d.target);
    // Where the request names its own destination, the sidecar's Via entry goes with it (loop detection: via.ts).
    this.head = d.cluster.type === 'ORIGINAL_DST' ? { ...head, headers: withOwnVia(head.headers) } : head;
    this.hashKey = d.route.hashPolicy && (d.cluster.lb === 'ring_hash' || d.cluster.lb === 'maglev') ? hashKeyOf(d.route.hashPolicy, ds.head, Math.random, () => ds.remoteAddress()) : undefined;
    this.idleMs = idleMs;
    this.protocol = upstreamProtocolFor(d.cluster, ds.head);
    if (ctx.telemetry.request.hasSubscribers && isGrpc(ds.head.headers)) this.messages = { request: new GrpcMessageCounter(), response: new GrpcMessageCounter() };
  }

  start(): void {
    this.ctx.active.add(this);
    // The route timeout covers everything: connecting, every retry, and the whole response. A gRPC
    // client's own deadline (grpc-timeout) shortens it, as Envoy does.
    const route = this.d.route.timeoutMs;
    const grpc = grpcTimeoutMs(this.head.headers);
    this.grpcDeadlineMs = grpc;
    if (grpc !== undefined && (route === 0 || grpc < route)) this.timer = setTimeout(() => this.timedOut(grpc, 'the gRPC deadline (grpc-timeout)'), grpc);
    else if (route > 0) this.timer = setTimeout(() => this.timedOut(route, 'the route timeout'), route);
    this.ds.onAbort(() => {
      if (this.done) return;
      this.finish();
      this.call?.abort();
      publish(this.ctx, this.ds, this.d.clusterName, 499, 'downstream_closed', this.endpoint, this.started, this.detail());
    });
    this.ds.onDrain(() => this.call?.resume());
    if (this.d.route.retry) this.budgets().request(this.d.clusterName, this.started); // the clock read for this exchange already
    this.tryEndpoint();
  }

  private budgets(): RetryBudgets {
    return (this.ctx.retryBudgets ??= new RetryBudgets());
  }

  private tryEndpoint(): void {
    const { cluster, clusterName, tiers } = this.d;
    const inflight = (this.ctx.inflight ??= new InFlight());
    const ep = nextEndpointFor(cluster, clusterName, this.d, this.ctx, inflight, this.tried, Math.random, this.hashKey?.key, this.excludedPriorities);
    if (!ep) {
      this.finish();
      fail(this.ctx, this.ds, new ProxyError('no_healthy_endpoint', `every endpoint of cluster ${clusterName} is ejected by outlier detection`, clusterName), undefined, this.started, this.detail());
      return;
    }
    if (tiers) this.attempted.push(ep.priority ?? 0);
    this.endpointObj = ep;
    if (cluster.lb === 'least_request') {
      inflight.add(ep, 1);
      this.tryOpen = true;
    }
    // As Envoy: a try's timeout runs from when the whole request is sent (or now, if it was already).
    if (this.requestDone || !this.head.hasBody) this.armTryTimer();
    const pool = this.ctx.pools.forEndpoint(ep, cluster, this.protocol, this.head.authority);
    this.endpoint = pool.name;
    const h = this.head;
    let headers = this.grpcDeadlineMs === undefined ? h.headers : withGrpcTimeout(h.headers, this.grpcDeadlineMs - (performance.now() - this.started));
    // Istio's metadata exchange: this workload's metadata goes to mesh endpoints only (the mesh's
    // mutual TLS: no origination files), never to a server outside the mesh.
    const own = this.ctx.ownMetadata;
    this.meshTry = this.mx !== undefined && cluster.type !== 'ORIGINAL_DST' && meshMtls(transportFor(cluster, ep));
    if (this.meshTry && this.mx!.upstreamPropagation && own) headers = withOwnMetadata(headers, own);
    this.call = pool.request(
      {
        method: h.method,
        target: h.query ? `${h.path}?${h.query}` : h.path,
        authority: h.authority,
        headers,
        body: !h.hasBody ? 'none' : h.contentLength !== undefined ? h.contentLength : 'chunked',
        upgrade: h.upgrade,
      },
      this,
    );
  }

  // ResponseHandler: the upstream's side of the exchange.
  onRequestSent(call: UpstreamCall): void {
    // May come before request() returns (an idle connection was ready): keep the call now.
    this.call = call;
    if (this.done) return;
    if (this.head.hasBody) call.onDrain(() => this.ds.resumeBody());
    if (!this.bodyStarted) {
      this.bodyStarted = true;
      this.ds.readBody(this);
      return;
    }
    // A retry: what the body had so far goes again, and the rest follows as it comes.
    if (this.body === null) {
      // It outgrew what is kept while this try was waiting: it cannot be sent again whole.
      this.finish();
      call.abort();
      fail(this.ctx, this.ds, new ProxyError('upstream_reset', `upstream ${this.endpoint} in cluster ${this.d.clusterName}: a retry (after ${this.lastRetryReason}) could not resend the request body, which is over ${RETRY_BODY_LIMIT} bytes`, this.d.clusterName), this.endpoint, this.started, this.detail());
      return;
    }
    for (const chunk of this.body ?? []) call.write(chunk);
    if (this.requestDone) call.end(this.requestTrailers);
    else this.ds.resumeBody();
  }

  onResponse(status: number, headers: HeaderList, contentLength: number | undefined, bodyless: boolean): void {
    if (this.done) return;
    this.clearTryTimer();
    this.releaseRetry();
    this.reportOutcome(status);
    const policy = this.d.route.retry;
    if (policy && retriableResponse(policy, status, headers, status === 200 && policy.readsHeaders && this.protocol === 'http2' && isGrpc(this.head.headers)) && this.retry(`status ${status}`)) return;
    this.responded = true;
    this.status = status;
    // The exchange's headers: taken off before the client sees the answer (an app's own never
    // pass); outbound, the server's metadata if the try went to a mesh endpoint.
    if (this.mx) this.tookMetadata(headers);
    let out = responseHeaders(endToEnd(headers), this.d.route, this.d.target);
    if (this.corsHeaders) out = withCors(out, this.corsHeaders);
    if (this.hashKey?.setCookie) out = [...out, 'set-cookie', this.hashKey.setCookie];
    if (this.ctx.telemetry.request.hasSubscribers) {
      this.upstream = upstreamSide(this.call);
      this.responseHead = out;
      if (this.messages && bodyless) this.grpcStatus = headerValue(out, 'grpc-status'); // trailers-only
    }
    this.ds.respond(status, out, contentLength, bodyless);
  }

  private tookMetadata(headers: HeaderList): void {
    const got = takeMetadataHeaders(headers);
    if (this.mx!.upstreamDiscovery && this.meshTry) this.upstreamMetadata = got.value;
  }

  /** What telemetry learns of this exchange besides its outcome (publish copies it into the event). */
  private detail(trailers?: HeaderList): RequestDetail {
    const up = this.upstream ?? (this.ctx.telemetry.request.hasSubscribers ? upstreamSide(this.call) : undefined);
    const m = this.messages;
    const meta = this.upstreamMetadata !== undefined && up?.upstreamPeer !== undefined ? (this.ctx.peerMetadata ??= new PeerMetadataCache()).accept(this.upstreamMetadata, up.upstreamPeer, up.upstreamWorkload) : undefined;
    const r = this.d.route;
    return {
      upstreamMetadata: meta,
      route: r.name,
      operation: r.operation || undefined,
      bytesReceived: this.bytesIn,
      bytesSent: this.bytesOut,
      upstreamLocal: up?.upstreamLocal,
      upstreamPeer: up?.upstreamPeer,
      upstreamWorkload: up?.upstreamWorkload,
      responseHeaders: this.responseHead,
      requestMessages: m?.request.count,
      responseMessages: m?.response.count,
      grpcStatus: m ? this.grpcStatus : undefined,
      responseTrailers: trailers,
    };
  }

  onData(chunk: Buffer): boolean {
    this.moved = true;
    this.bytesOut += chunk.length;
    this.messages?.response.feed(chunk);
    return this.done || this.ds.write(chunk);
  }

  onEnd(trailers: HeaderList): void {
    if (this.done) return;
    this.finish();
    this.ds.end(trailers);
    if (this.messages) this.grpcStatus = headerValue(trailers, 'grpc-status') ?? this.grpcStatus;
    if (this.ctx.telemetry.request.hasSubscribers) publish(this.ctx, this.ds, this.d.clusterName, this.status, undefined, this.endpoint, this.started, this.detail(trailers.length ? trailers : undefined));
  }

  onError(err: UpstreamError): void {
    this.upstreamFailed(err);
  }

  onUpgrade(status: number, headers: HeaderList, socket: net.Socket, head: Buffer): void {
    this.upgraded(status, headers, socket, head);
  }

  // BodySink: the request body, flowing from the client to the upstream.
  data(chunk: Buffer): boolean {
    if (this.done) return true;
    this.moved = true;
    this.bytesIn += chunk.length;
    this.messages?.request.feed(chunk);
    if (this.body !== null && (this.d.route.retry || this.d.route.mirrors)) {
      this.bodyBytes += chunk.length;
      if (this.bodyBytes > RETRY_BODY_LIMIT) this.body = null;
      else (this.body ??= []).push(chunk);
    }
    // Between tries (a retry's back-off) the chunk is kept and the client paused.
    if (!this.call) return false;
    return this.call.write(chunk);
  }

  end(trailers: HeaderList): void {
    this.requestDone = true;
    this.requestTrailers = trailers;
    this.moved = true;
    if (!this.done) this.call?.end(trailers);
    if (!this.done && this.call && this.head.hasBody) this.armTryTimer();
    // The whole request is here: its mirrored copies go now (mirror.ts); one too large to keep is not copied.
    if (this.d.route.mirrors && this.body !== null && !this.head.upgrade) {
      mirror(this.ctx, this.ctx.config(), this.d.route, this.head, this.body ?? [], trailers, Math.random);
    }
  }

  checkIdle(now: number): void {
    if (this.done) return;
    if (this.moved) {
      // Bytes moved since the last sweep, so at most a sweep period ago: the idle time counts from
      // now (a timeout fires up to two periods late, never early).
      this.moved = false;
      this.lastMoved = now;
      return;
    }
    if (now - this.lastMoved < this.idleMs) return;
    this.finish();
    this.call?.abort();
    const waitingFor = this.requestDone || !this.head.hasBody ? `upstream ${this.endpoint} in cluster ${this.d.clusterName}` : 'the rest of the request body from the client';
    fail(this.ctx, this.ds, new ProxyError('stream_idle_timeout', `no bytes moved for ${this.idleMs} ms (the stream idle timeout) while waiting for ${waitingFor}`, this.d.clusterName), this.endpoint, this.started, this.detail());
  }

  private upstreamFailed(err: UpstreamError): void {
    if (this.done) return;
    this.clearTryTimer();
    this.releaseRetry();
    if (err.code !== 'overflow') this.reportOutcome('local_error'); // a full pool is this sidecar's limit, not the endpoint's fault
    const policy = this.d.route.retry;
    if (policy && !this.responded) {
      const how: TryFailure | undefined =
        err.phase === 'connect' ? (err.code === 'overflow' ? undefined : 'connect') : /REFUSED_STREAM/.test(err.code) ? 'refused' : 'reset';
      if (how && retriableFailure(policy, how) && this.retry(`${how}: ${err.message}`)) return;
    }
    this.finish();
    fail(this.ctx, this.ds, upstreamError(err, this.d.clusterName, this.endpoint), this.endpoint, this.started, this.detail());
  }

  /** The per-try timeout passed: another try if the policy allows one, else 504. */
  private tryTimedOut(ms: number): void {
    this.tryTimer = undefined;
    if (this.done) return;
    this.releaseRetry();
    this.reportOutcome('local_error');
    const policy = this.d.route.retry!;
    if (!this.responded && retriableFailure(policy, 'timeout') && this.retry(`per-try timeout of ${ms} ms`)) return;
    this.finish();
    this.call?.abort();
    fail(this.ctx, this.ds, new ProxyError('upstream_timeout', `upstream ${this.endpoint} in cluster ${this.d.clusterName} did not answer within the per-try timeout of ${ms} ms`, this.d.clusterName), this.endpoint, this.started, this.detail());
  }

  /**
   * Starts another try after the back-off, if the policy has retries left, the body was kept, the
   * cluster's circuit breaker has room for another retry under way (max_retries: past it the outcome
   * stands, as Envoy's upstream_rq_retry_overflow) and its budget has room; false leaves the outcome
   * to the caller.
   */
  private retry(why: string): boolean {
    const policy = this.d.route.retry;
    if (!policy || this.retries >= policy.numRetries || this.responded) return false;
    if (this.head.hasBody && this.body === null) return false; // too large to send again
    const res = this.ctx.pools.resourcesOf(this.d.cluster);
    if (!res.takeRetry()) return false;
    // A DestinationRule's retryBudget replaces Weft's own (a share of the last 10 s's requests): a retry it refuses gives its slot back.
    if (!res.limits.retryBudget && !this.budgets().tryRetry(this.d.clusterName, performance.now())) {
      res.retries--;
      return false;
    }
    this.retrySlot = res;
    this.retries++;
    this.lastRetryReason = why;
    if (policy.otherHosts && this.endpointObj) (this.tried ??= new Set()).add(this.endpointObj);
    // previous_priorities: every update_frequency tries, the priorities tried so far are left out.
    if (policy.priorityUpdateFrequency && this.attempted.length % policy.priorityUpdateFrequency === 0) {
      for (const p of this.attempted) (this.excludedPriorities ??= new Set()).add(p);
    }
    const call = this.call;
    this.call = undefined;
    call?.abort();
    this.releaseTry();
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      if (!this.done) this.tryEndpoint();
    }, backoffMs(policy, this.retries, Math.random()));
    return true;
  }

  /** Why the last retry was made, for diagnostics. */
  lastRetryReason: string | undefined;

  /** Tells outlier detection how the current try's endpoint did. */
  private reportOutcome(outcome: Outcome): void {
    const { cluster, healthy } = this.d;
    if (cluster.outlier && this.endpointObj) (this.ctx.outlier ??= new OutlierDetector()).report(cluster, this.endpointObj, outcome, performance.now(), healthy);
  }

  /** The retry this exchange made has its outcome (or the exchange ended): its slot is free for another. */
  private releaseRetry(): void {
    if (!this.retrySlot) return;
    this.retrySlot.retries--;
    this.retrySlot = undefined;
  }

  private releaseTry(): void {
    if (!this.tryOpen) return;
    this.tryOpen = false;
    if (this.endpointObj) this.ctx.inflight?.add(this.endpointObj, -1);
  }

  private armTryTimer(): void {
    const perTry = this.d.route.retry?.perTryTimeoutMs;
    if (!perTry || this.tryTimer) return;
    this.tryTimer = setTimeout(() => this.tryTimedOut(perTry), perTry);
  }

  private clearTryTimer(): void {
    if (this.tryTimer) clearTimeout(this.tryTimer);
    this.tryTimer = undefined;
  }

  private timedOut(ms: number, what: string): void {
    this.timer = undefined;
    if (this.done) return;
    this.finish();
    this.call?.abort();
    fail(this.ctx, this.ds, new ProxyError('upstream_timeout', `upstream ${this.endpoint} in cluster ${this.d.clusterName} did not complete the response within ${what} of ${ms} ms`, this.d.clusterName), this.endpoint, this.started, this.detail());
  }

  /** 101 Switching Protocols: from here on, bytes flow both ways untouched (WebSocket). */
  private upgraded(status: number, headers: HeaderList, up: net.Socket, upHead: Buffer): void {
    if (this.done) {
      up.destroy();
      return;
    }
    this.finish();
    if (this.mx) this.tookMetadata(headers);
    const down = this.ds.upgradeTo(status, endToEnd(headers));
    if (!down) {
      up.destroy();
      return;
    }
    publish(this.ctx, this.ds, this.d.clusterName, status, undefined, this.endpoint, this.started, this.detail());
    if (this.afterUpgrade) {
      // A policy change between routing and the 101 (found by review): decided once more now.
      const why = this.afterUpgrade.refusal();
      if (why) {
        this.ctx.log?.(`upgraded connection from ${this.ds.remoteAddress()} to listener ${this.afterUpgrade.listener} closed: ${why}`);
        down.socket.destroy();
        up.destroy();
        return;
      }
      this.ctx.live?.add(down.socket, this.afterUpgrade.listener, this.afterUpgrade.refusal);
    }
    join(down.socket, up, down.head, upHead, { idleTimeoutMs: Number.isFinite(this.idleMs) ? this.idleMs : 0 });
  }

  private finish(): void {
    this.done = true;
    this.ctx.active.delete(this);
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.clearTryTimer();
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    this.backoffTimer = undefined;
    this.releaseTry();
    this.releaseRetry();
  }
}

type UpstreamSide = Pick<RequestEvent, 'upstreamLocal' | 'upstreamPeer' | 'upstreamWorkload'>;

/**
 * The upstream connection of a call as telemetry reports it: its local address (as Envoy writes
 * it: an IPv6 one in brackets), and the server's identity over mTLS. Read at once: an HTTP/2
 * session's socket cannot be read once the session let it go (ERR_HTTP2_SOCKET_UNBOUND), which is
 * then nothing to report. None of it changes once the connection is up, so it is made once per
 * connection and kept with it (types.ts ConnectionMemo: the same object for every request it
 * carries: read, never changed).
 */
function upstreamSide(call: UpstreamCall | undefined): UpstreamSide | undefined {
  try {
    const memo = call?.memo?.();
    const kept = memo?.upstreamSide as UpstreamSide | undefined;
    if (kept) return kept;
    const s = call?.socket?.();
    if (!s) return undefined;
    const peer = peerPrincipal(s);
    const workload = peer ? peerWorkload(s) : undefined;
    const local = s.localAddress;
    const side: UpstreamSide = { ...(local ? { upstreamLocal: hostPort(local, s.localPort) } : {}), ...(peer ? { upstreamPeer: peer } : {}), ...(workload ? { upstreamWorkload: workload } : {}) };
    // Kept once it cannot change: the socket connected (its address known) and, over TLS, the
    // server's identity read (a TLS socket whose handshake has not ended has none yet).
    if (memo && local && (peer !== undefined || !(s as { encrypted?: boolean }).encrypted)) memo.upstreamSide = side;
    return side;
  } catch {
    return undefined;
  }
}

/** The headers with grpc-timeout set to what is left of the client's deadline (at least 1 ms). */
function withGrpcTimeout(h: HeaderList, leftMs: number): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i < h.length; i += 2) if (h[i] !== 'grpc-timeout') out.push(h[i], h[i + 1]);
  out.push('grpc-timeout', `${Math.max(1, Math.floor(leftMs))}m`);
  return out;
}
