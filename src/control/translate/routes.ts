// PURE: the outbound route configuration for one proxy scope (namespace and the labels that
// sourceLabels names). Which VirtualService applies to which host, and which of its matches apply
// to this proxy, are decided here, as Istio's sidecar route builder decides them:
//   - a VirtualService is seen by the namespaces its exportTo names (all, when unset);
//   - for each service, the first visible VirtualService naming its host exactly applies, else the
//     visible one with the most specific wildcard host that matches it;
//   - a match whose sourceLabels, sourceNamespace or gateways leave this proxy out is dropped, and
//     a route all of whose matches are dropped is dropped too (it never becomes a catch-all);
//   - short names ("reviews") only reach the service of that name in the proxy's own namespace;
//   - the proxy's Sidecar (sidecar.ts) limits the services and VirtualServices it sees, and a
//     ServiceEntry is seen by the namespaces its exportTo names;
//   - a host the proxy does not know passes through (ALLOW_ANY, Istio's default) or gets 502
//     (REGISTRY_ONLY), by the Sidecar's outboundTrafficPolicy, else the mesh config's.
import type { Destination, DestinationRule, HTTPFaultInjection, HTTPMatchRequest, HTTPRedirect, HTTPRoute, HeaderOperations, StringMatch, TCPRoute, VirtualService } from '../../api/types.ts';
import { TYPE } from '../../xds/types.ts';
import { type ProxyScope, exportedTo, fqdn, hostMatches, labelsMatch, outboundClusterName } from '../model/model.ts';
import { type Service, type Target, appliesToMesh, byPrecedence, domainsFor, resolveDestination, routedPorts } from './services.ts';
import { type Egress, OPEN_EGRESS, egressAllows } from './sidecar.ts';
import { isConsumerRoutes } from './gamma.ts';
import { delegatedRouteName } from '../../api/delegation.ts';
import { duration } from './duration.ts';
import { quoteRegex } from './regex.ts';
import { effectivePolicy, hashPolicyOf } from './policy.ts';
import { type SniResources, isTlsProtocol, sniConnectRoute } from './tls-routes.ts';

export const OUTBOUND_ROUTE = 'outbound';

/** Where requests for hosts the mesh does not know go under ALLOW_ANY (Istio's name). */
export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';

/** The VirtualServices a scope sees, indexed by the hosts they name, each host's in precedence order. */
interface VsIndex {
  /** All of them, in precedence order (what Istio's L4 routes walk). */
  all: VirtualService[];
  exact: Map<string, VirtualService[]>;
  /** Wildcard hosts, most specific (longest) first. */
  wildcard: { pattern: string; vs: VirtualService }[];
}

function indexVirtualServices(all: readonly VirtualService[], scope: ProxyScope, egress: Egress): VsIndex {
  const exact = new Map<string, VirtualService[]>();
  const wild = new Map<string, VirtualService>();
  const seen: VirtualService[] = [];
  // Consumer mesh routes come first for their namespace's clients (the Gateway API's rule).
  const ordered = byPrecedence(all);
  for (const vs of [...ordered.filter(isConsumerRoutes), ...ordered.filter((v) => !isConsumerRoutes(v))]) {
    if (!appliesToMesh(vs) || !exportedTo(vs.spec.exportTo, vs.metadata.namespace, scope.namespace)) continue;
    // A Sidecar's egress hosts take a VirtualService when they take one of its hosts (as Istio does).
    if (!(vs.spec.hosts ?? []).some((h) => egressAllows(egress, vs.metadata.namespace, fqdn(h, vs.metadata.namespace)))) continue;
    seen.push(vs);
    for (const h of vs.spec.hosts ?? []) {
      const host = fqdn(h, vs.metadata.namespace);
      if (host.startsWith('*')) {
        if (!wild.has(host)) wild.set(host, vs);
      } else exact.set(host, [...(exact.get(host) ?? []), vs]);
    }
  }
  const wildcard = [...wild.entries()].map(([pattern, vs]) => ({ pattern, vs })).sort((a, b) => b.pattern.length - a.pattern.length || a.pattern.localeCompare(b.pattern));
  return { all: seen, exact, wildcard };
}

/**
 * The VirtualServices for a host, in the order they are tried: those naming it; only when none
 * does, the most specific wildcard (Istio never applies a wildcard to a host an exact one names).
 */
function virtualServicesFor(index: VsIndex, host: string): VirtualService[] {
  const exact = index.exact.get(host);
  if (exact?.length) return exact;
  const wild = index.wildcard.find((w) => hostMatches(w.pattern, host))?.vs;
  return wild ? [wild] : [];
}

/**
 * A host's routes on a port: those of the first of its VirtualServices that builds any for this
 * port and proxy, as Istio keeps the first per domain (a VirtualService with routes for other
 * ports only, or for other proxies only, leaves the port to the next).
 */
function firstRoutes(vss: readonly VirtualService[], port: number, services: ReadonlyMap<string, Service>, scope: ProxyScope, hashFor: HashFor): object[] {
  for (const vs of vss) {
    const r = httpRoutes(vs, port, services, scope, hashFor);
    if (r.length) return r;
  }
  return [];
}

/** Can a proxy of this scope and egress see a service? (exportTo of its ServiceEntry, and the Sidecar's egress hosts.) */
export function serviceVisible(s: Service, scope: ProxyScope, egress: Egress): boolean {
  return exportedTo(s.exportTo, s.namespace, scope.namespace) && egressAllows(egress, s.namespace, s.host, s.port);
}

export function outboundRoutes(
  virtualServices: readonly VirtualService[],
  services: ReadonlyMap<string, Service>,
  scope: ProxyScope,
  drFor: (host: string) => DestinationRule | undefined = () => undefined,
  egress: Egress = OPEN_EGRESS,
  /** Where the internal listeners (and their clusters) of TLS ports with tls routes go. */
  sni: SniResources = { listeners: {}, clusters: {} },
): object {
  const hashFor = (host: string, subset: string, port: number) => hashPolicyOf(effectivePolicy(drFor(host), subset, port).loadBalancer?.consistentHash);
  const tcpFor = (t: Target, as: 'route' | 'tcp_proxy') => tcpSettings(drFor(t.host), hashFor(t.host, t.subset, t.port), as);
  const index = indexVirtualServices(virtualServices, scope, egress);
  const claimed = new Set<string>();
  // A name reaches one virtual host: the first to claim it (services before VirtualService-only hosts).
  const claim = (domains: string[]) => domains.filter((d) => !claimed.has(d) && claimed.add(d));

  const virtualHosts: object[] = [];
  const served = new Set<string>();
  for (const s of services.values()) {
    if (!serviceVisible(s, scope, egress)) continue;
    served.add(s.host);
    const vss = virtualServicesFor(index, s.host);
    const cluster = outboundClusterName(s.port, '', s.host);
    const own: Target = { host: s.host, subset: '', port: s.port };
    // An opaque TCP port is reached by CONNECT only; a port of undeclared protocol both ways (the
    // sidecar detects what the tunnel carries). VirtualService http routes do not apply to TCP.
    // On a TLS port, tls routes do and tcp routes do not (tls-routes.ts), as in Istio.
    const tunnel = () => {
      if (isTlsProtocol(s.protocol)) {
        const destinations = (vs: VirtualService, r: { route?: { destination: Destination; weight?: number }[] }, port: number) => weightedDestinations(vs, r.route ?? [], port, services);
        return sniConnectRoute(s, index.all, scope, egress.policy === 'REGISTRY_ONLY', matchApplies, destinations, sni, (t) => tcpFor(t, 'tcp_proxy')) ?? connectRoute(cluster, tcpFor(own, 'route'));
      }
      for (const vs of vss) {
        const tcp = tcpRouteFor(vs, s.port, scope);
        if (tcp) return tcpConnectRoute(vs, tcp, s.port, services, tcpFor);
      }
      return connectRoute(cluster, tcpFor(own, 'route'));
    };
    // No VirtualService that builds routes for this port and proxy: the service's default route,
    // as in Istio (which skips a VirtualService that builds no routes).
    const http = s.handling === 'tcp' ? [] : firstRoutes(vss, s.port, services, scope, hashFor);
    const routes =
      s.handling === 'tcp'
        ? [tunnel()]
        : [...(http.length ? http : [defaultRoute(cluster, hashFor(s.host, '', s.port))]), ...(s.handling === 'detect' ? [tunnel()] : [])];
    const domains = claim(domainsFor(s.host, s.port, scope.namespace, s.addresses));
    if (domains.length) virtualHosts.push({ name: `${s.host}:${s.port}`, domains, routes });
  }
  // A VirtualService for a host no workload serves yet still routes, so that traffic to it gets
  // "no healthy endpoint in cluster ..." rather than "no route".
  for (const [host, vss] of [...index.exact.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    if (served.has(host)) continue;
    for (const port of routedPorts(host, services)) {
      if (!vss.some((vs) => egressAllows(egress, vs.metadata.namespace, host, port))) continue;
      const domains = claim(domainsFor(host, port, scope.namespace));
      if (domains.length) virtualHosts.push({ name: `${host}:${port}`, domains, routes: firstRoutes(vss, port, services, scope, hashFor) });
    }
  }
  virtualHosts.push(egress.policy === 'REGISTRY_ONLY' ? blockAll(egress.policyFrom) : allowAny(PASSTHROUGH_CLUSTER));
  return { name: OUTBOUND_ROUTE, virtual_hosts: virtualHosts };
}

/** ALLOW_ANY: a host the mesh does not know goes where the app asked (Istio's allow_any virtual host), CONNECT too. */
function allowAny(cluster: string): object {
  return { name: 'allow_any', domains: ['*'], routes: [{ name: 'allow_any', match: { prefix: '/' }, route: { cluster, timeout: { seconds: 0 } } }, connectRoute(cluster)] };
}

/** REGISTRY_ONLY: a host the mesh does not know gets 502 (Istio's block_all virtual host), with a body that says why. */
function blockAll(from: string | undefined): object {
  const why = `the host is not a service of the mesh (nor of a ServiceEntry this proxy sees), and the outbound traffic policy${from ? ` of ${from}` : ''} is REGISTRY_ONLY\n`;
  const reply = { status: 502, body: { inline_string: why } };
  return { name: 'block_all', domains: ['*'], routes: [{ name: 'block_all', match: { prefix: '/' }, direct_response: reply }, { name: 'block_all', match: { connect_matcher: {} }, direct_response: reply }] };
}

/**
 * What Istio's outbound tcp_proxy takes from the DestinationRule of the (first) destination: its
 * top-level connectionPool.tcp idleTimeout ("0s" turns it off) and maxConnectionDuration, and the
 * client's address as the hash key where its consistentHash says useSourceIp (the other keys are
 * HTTP's). Said as a tcp_proxy says it, or as the CONNECT route of Weft's tunnels does
 * (max_stream_duration, a connection_properties hash policy).
 */
function tcpSettings(dr: DestinationRule | undefined, hash: object | undefined, as: 'route' | 'tcp_proxy'): object {
  const tcp = (dr?.spec.trafficPolicy as { connectionPool?: { tcp?: { idleTimeout?: string; maxConnectionDuration?: string } } } | undefined)?.connectionPool?.tcp;
  const out: Record<string, unknown> = {};
  if (tcp?.idleTimeout !== undefined) out.idle_timeout = duration(tcp.idleTimeout);
  if (tcp?.maxConnectionDuration !== undefined) {
    const d = duration(tcp.maxConnectionDuration);
    if (as === 'route') out.max_stream_duration = { max_stream_duration: d };
    else out.max_downstream_connection_duration = d;
  }
  if (hash && 'connection_properties' in hash) out.hash_policy = [as === 'route' ? hash : { source_ip: {} }];
  return out;
}

/** CONNECT to the service's authority becomes an opaque tunnel to the cluster (Envoy's CONNECT termination). */
function connectRoute(cluster: string, settings: object = {}): object {
  return { name: 'connect', match: { connect_matcher: {} }, route: { cluster, upgrade_configs: [{ upgrade_type: 'CONNECT' }], ...settings } };
}

/** The first tcp route of a VirtualService whose match applies to this port and proxy (or that has none). */
function tcpRouteFor(vs: VirtualService, port: number, scope: ProxyScope): TCPRoute | undefined {
  return (vs.spec.tcp ?? []).find((r) => !r.match?.length || r.match.some((m) => matchApplies(m, port, scope)));
}

/** A VirtualService tcp route: CONNECT tunnels split over its weighted destinations (the first one's DestinationRule limits them all, as Istio's listener). */
function tcpConnectRoute(vs: VirtualService, r: TCPRoute, port: number, services: ReadonlyMap<string, Service>, tcpFor: (t: Target, as: 'route') => object): object {
  const first = r.route?.[0]?.destination;
  const settings = first ? tcpFor(resolveDestination(vs, first, port, services), 'route') : {};
  const action = { ...clusterSpecifier(weightedDestinations(vs, r.route ?? [], port, services)), upgrade_configs: [{ upgrade_type: 'CONNECT' }], ...settings };
  return { name: 'connect', match: { connect_matcher: {} }, route: action };
}

/**
 * A route's destinations as clusters: resolved in the VirtualService's namespace, each with its
 * weight (unset: 100 for a lone destination, else 0). A subset no DestinationRule defines has no
 * cluster: its traffic gets 503, as in Istio.
 */
function weightedDestinations<D extends { destination: Destination; weight?: number }>(vs: VirtualService, dests: readonly D[], port: number, services: ReadonlyMap<string, Service>) {
  return dests.map((d) => {
    const t = resolveDestination(vs, d.destination, port, services);
    return { name: outboundClusterName(t.port, t.subset, t.host), weight: d.weight ?? (dests.length === 1 ? 100 : 0), target: t, dest: d };
  });
}

/** `cluster` for one destination, else `weighted_clusters` over those with a weight (a UInt32Value), each with what `extra` adds. */
function clusterSpecifier<D>(dests: readonly { name: string; weight: number; dest: D }[], extra: (d: D) => Record<string, unknown> = () => ({})): Record<string, unknown> {
  if (dests.length === 1) return { cluster: dests[0].name };
  return { weighted_clusters: { clusters: dests.filter((d) => d.weight > 0).map((d) => ({ name: d.name, weight: { value: d.weight }, ...extra(d.dest) })) } };
}
function defaultRoute(cluster: string, hash: object | undefined): object {
  const [, port, , host] = cluster.split('|');
  return { name: 'default', match: { prefix: '/' }, route: { cluster, timeout: { seconds: 0 }, retry_policy: hash ? stickyRetry(DEFAULT_RETRY) : DEFAULT_RETRY, ...(hash ? { hash_policy: [hash] } : {}) }, decorator: { operation: `${host}:${port}/*` } };
}

type RouteMatchJson = { prefix?: string; path?: string; safe_regex?: { regex: string } };

/**
 * Istio's getRouteOperation, the route's decorator (the name of its spans): "<host>:<port><path>"
 * of its one destination's cluster, else of the VirtualService's name; the path is the match's
 * (a prefix with "*" after it, an exact path, a regex).
 */
function routeOperation(m: RouteMatchJson, body: Record<string, unknown>, vsName: string, port: number): string {
  const path = m.prefix !== undefined ? `${m.prefix}*` : m.path !== undefined ? m.path : m.safe_regex !== undefined ? m.safe_regex.regex : '/*';
  const cluster = (body.route as { cluster?: unknown } | undefined)?.cluster;
  const p = typeof cluster === 'string' ? cluster.split('|') : [];
  if (p.length === 4 && p[0] === 'outbound') return `${p[3]}:${p[1]}${path}`;
  return `${vsName}:${port}${path}`;
}

/** A retry policy for a consistent-hash route: retries stay on the key's endpoint (Istio's DefaultConsistentHashPolicy). */
function stickyRetry(p: Record<string, unknown>): object {
  const { retry_host_predicate: _r, host_selection_retry_max_attempts: _h, ...rest } = p;
  return rest;
}

/** The hash policy of a destination's cluster (consistentHash in its DestinationRule), if it has one. */
type HashFor = (host: string, subset: string, port: number) => object | undefined;

/**
 * Istio's default retry policy (its retry.DefaultPolicy), on every route whose VirtualService
 * says nothing of retries: twice, to another endpoint, on a failed connection, a refused stream,
 * gRPC's UNAVAILABLE and CANCELLED, and HTTP 503.
 */
const DEFAULT_RETRY = {
  retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
  num_retries: { value: 2 },
  retriable_status_codes: [503],
  retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts', typed_config: { '@type': TYPE.previousHosts } }],
  host_selection_retry_max_attempts: 5,
};

const REMOTE_LOCALITIES = { name: 'envoy.retry_priorities.previous_priorities', typed_config: { '@type': TYPE.previousPriorities, update_frequency: 2 } };

/**
 * Istio's mirror (with mirrorPercentage, or the older mirrorPercent; 100% when unset) and mirrors.
 * A route has both only by delegation (a delegate route's mirrors, its root's mirror): then both
 * apply, as in Istio.
 */
export function mirrorsOf(r: HTTPRoute): { destination: NonNullable<HTTPRoute['mirror']>; percent: number }[] {
  const mirror = r.mirror ? [{ destination: r.mirror, percent: r.mirrorPercentage?.value ?? r.mirrorPercent ?? 100 }] : [];
  return [...mirror, ...(r.mirrors ?? []).map((m) => ({ destination: m.destination, percent: m.percentage?.value ?? 100 }))];
}

/** Istio's HTTPRetry -> Envoy's RetryPolicy (its retry.ConvertPolicy): attempts 0 turns retries off. */
function retryPolicy(r: HTTPRoute['retries']): object | undefined {
  if (!r) return DEFAULT_RETRY;
  if (!r.attempts || r.attempts <= 0) return undefined;
  const out: Record<string, unknown> = { ...DEFAULT_RETRY, num_retries: { value: r.attempts } };
  if (r.retryOn) {
    const conditions: string[] = [];
    const codes: number[] = [];
    for (const c of r.retryOn.split(',').map((x) => x.trim()).filter(Boolean)) {
      if (/^\d+$/.test(c)) codes.push(Number(c));
      else conditions.push(c);
    }
    if (codes.length && !conditions.includes('retriable-status-codes')) conditions.push('retriable-status-codes');
    out.retry_on = conditions.join(',');
    if (codes.length) out.retriable_status_codes = codes;
    else delete out.retriable_status_codes;
  }
  if (r.perTryTimeout) out.per_try_timeout = duration(r.perTryTimeout);
  if (r.backoff) out.retry_back_off = { base_interval: duration(r.backoff) };
  // Istio's retryRemoteLocalities: every second try, the priorities (localities) tried are left out.
  if (r.retryRemoteLocalities) out.retry_priority = REMOTE_LOCALITIES;
  return out;
}

/** Does a match apply to this proxy and port? Istio evaluates these when it builds a proxy's routes. */
function matchApplies(m: Pick<HTTPMatchRequest, 'port' | 'sourceLabels' | 'sourceNamespace' | 'gateways'>, port: number, scope: ProxyScope): boolean {
  if (m.port !== undefined && m.port !== 0 && m.port !== port) return false;
  if (m.sourceLabels && !labelsMatch(m.sourceLabels, scope.labels)) return false;
  if (m.sourceNamespace && m.sourceNamespace !== scope.namespace) return false;
  if (m.gateways && m.gateways.length > 0 && !m.gateways.includes('mesh')) return false;
  return true;
}

function httpRoutes(vs: VirtualService, port: number, services: ReadonlyMap<string, Service>, scope: ProxyScope, hashFor: HashFor): object[] {
  const out: object[] = [];
  (vs.spec.http ?? []).forEach((r: HTTPRoute, i: number) => {
    if (r.delegate) return; // a root route left out (api/delegation.ts merged every delegation that makes routes)
    const all = r.match && r.match.length > 0 ? r.match : undefined;
    const matches = all ? all.map((m, j) => ({ m, j })).filter(({ m }) => matchApplies(m, port, scope)) : [{ m: undefined, j: 0 }];
    if (matches.length === 0) return; // none of its matches is for this proxy
    const body = routeBody(vs, r, port, services, hashFor);
    // Unnamed: where it came from (a route merged from a delegate, its root route and delegate route).
    const unnamed = delegatedRouteName(r) ?? `${vs.metadata.namespace}/${vs.metadata.name}.http[${i}]`;
    for (const { m, j } of matches) {
      const match = routeMatch(m) as RouteMatchJson;
      out.push({ name: r.name ?? `${unnamed}${all && all.length > 1 ? `.match[${j}]` : ''}`, match, ...body, decorator: { operation: routeOperation(match, body, vs.metadata.name, port) } });
    }
  });
  return out;
}

/** What a route does (forward, redirect or answer directly), with its header edits and fault config. */
function routeBody(vs: VirtualService, r: HTTPRoute, port: number, services: ReadonlyMap<string, Service>, hashFor: HashFor): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const dests = r.route ?? [];
  // One destination: its header edits join the route's (before them, as Envoy orders levels).
  const ops = dests.length === 1 ? [dests[0].headers, r.headers] : [r.headers];
  const request = headerEdits(ops.map((h) => h?.request));
  const response = headerEdits(ops.map((h) => h?.response));
  if (r.redirect) out.redirect = redirectAction(r.redirect);
  else if (r.directResponse) out.direct_response = directResponse(r.directResponse);
  else {
    out.route = routeAction(vs, r, port, services, request.authority, hashFor);
    if (request.add.length) out.request_headers_to_add = request.add;
    if (request.remove.length) out.request_headers_to_remove = request.remove;
  }
  if (response.add.length) out.response_headers_to_add = response.add;
  if (response.remove.length) out.response_headers_to_remove = response.remove;
  const perFilter: Record<string, object> = {};
  if (r.corsPolicy) perFilter[CORS_FILTER] = corsPolicy(r.corsPolicy as CorsPolicy);
  // Also before a redirect or direct response (a route has both only by delegation): Envoy's fault
  // filter runs before the router, which answers those, and Istio sets it on every route with a fault.
  if (r.fault) perFilter[FAULT_FILTER] = fault(r.fault);
  if (Object.keys(perFilter).length) out.typed_per_filter_config = perFilter;
  return out;
}

export const CORS_FILTER = 'envoy.filters.http.cors';

interface CorsPolicy {
  allowOrigins?: StringMatch[];
  allowOrigin?: string[];
  allowMethods?: string[];
  allowHeaders?: string[];
  exposeHeaders?: string[];
  maxAge?: string;
  allowCredentials?: boolean;
  unmatchedPreflights?: string;
}

/** Istio's corsPolicy -> Envoy's CorsPolicy (the older allowOrigin list as exact matches, "*" as any origin). */
function corsPolicy(c: CorsPolicy): object {
  const origins = [
    ...(c.allowOrigins ?? []).map((m) => stringMatch(m)),
    ...(c.allowOrigin ?? []).map((o) => (o === '*' ? { safe_regex: { regex: '.*' } } : { exact: o })),
  ];
  const out: Record<string, unknown> = { '@type': TYPE.corsPolicy, allow_origin_string_match: origins };
  if (c.allowMethods?.length) out.allow_methods = c.allowMethods.join(',');
  if (c.allowHeaders?.length) out.allow_headers = c.allowHeaders.join(',');
  if (c.exposeHeaders?.length) out.expose_headers = c.exposeHeaders.join(',');
  if (c.maxAge) out.max_age = String(duration(c.maxAge).seconds);
  if (c.allowCredentials !== undefined) out.allow_credentials = { value: c.allowCredentials };
  out.forward_not_matching_preflights = { value: c.unmatchedPreflights !== 'IGNORE' };
  return out;
}

const FAULT_FILTER = 'envoy.filters.http.fault';

/** Istio's headers.{request,response}: set overwrites, add appends, remove removes. A set of host or :authority is the authority rewrite. */
function headerEdits(ops: (HeaderOperations | undefined)[]): { add: object[]; remove: string[]; authority?: string } {
  const out: { add: object[]; remove: string[]; authority?: string } = { add: [], remove: [] };
  for (const o of ops) {
    if (!o) continue;
    for (const name of o.remove ?? []) out.remove.push(name.toLowerCase());
    for (const [name, value] of Object.entries(o.set ?? {})) {
      const n = name.toLowerCase();
      if (n === 'host' || n === ':authority') out.authority = value;
      else out.add.push({ header: { key: n, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
    }
    for (const [name, value] of Object.entries(o.add ?? {})) {
      const n = name.toLowerCase();
      if (n === 'host' || n === ':authority') out.authority = value;
      else out.add.push({ header: { key: n, value }, append_action: 'APPEND_IF_EXISTS_OR_ADD' });
    }
  }
  return out;
}

function routeAction(vs: VirtualService, r: HTTPRoute, port: number, services: ReadonlyMap<string, Service>, authority: string | undefined, hashFor: HashFor): object {
  const dests = weightedDestinations(vs, r.route ?? [], port, services);
  const hashes = dests.map(({ target: t }) => JSON.stringify(hashFor(t.host, t.subset, t.port) ?? null));
  // A destination's own header edits go on its weighted cluster entry.
  const action = clusterSpecifier(dests, (d) => {
    const c: Record<string, unknown> = {};
    const req = headerEdits([d.headers?.request]);
    const res = headerEdits([d.headers?.response]);
    if (req.add.length) c.request_headers_to_add = req.add;
    if (req.remove.length) c.request_headers_to_remove = req.remove;
    if (res.add.length) c.response_headers_to_add = res.add;
    if (res.remove.length) c.response_headers_to_remove = res.remove;
    if (req.authority !== undefined) c.host_rewrite_literal = req.authority;
    return c;
  });
  action.timeout = r.timeout ? duration(r.timeout) : { seconds: 0 };
  // A consistent-hash destination's key, where every destination hashes by the same one.
  const hashed = hashes.length > 0 && hashes[0] !== 'null' && hashes.every((h) => h === hashes[0]);
  if (hashed) action.hash_policy = [JSON.parse(hashes[0])];
  const retry = retryPolicy(r.retries);
  if (retry) action.retry_policy = hashed ? stickyRetry(retry as Record<string, unknown>) : retry;
  const mirrors = mirrorsOf(r).map(({ destination, percent: p }) => {
    const t = resolveDestination(vs, destination, port, services);
    return { cluster: outboundClusterName(t.port, t.subset, t.host), runtime_fraction: { default_value: percent({ value: p }) }, trace_sampled: { value: false } };
  });
  if (mirrors.length) action.request_mirror_policies = mirrors;
  const rw = r.rewrite;
  if (rw?.uri) action.prefix_rewrite = rw.uri;
  const rr = rw?.uriRegexRewrite as { match?: string; rewrite?: string } | undefined;
  if (rr?.match) action.regex_rewrite = { pattern: { regex: rr.match }, substitution: rr.rewrite ?? '' };
  const host = rw?.authority || authority;
  if (host) action.host_rewrite_literal = host;
  return action;
}

const REDIRECT_CODES: Record<number, string> = { 301: 'MOVED_PERMANENTLY', 302: 'FOUND', 303: 'SEE_OTHER', 307: 'TEMPORARY_REDIRECT', 308: 'PERMANENT_REDIRECT' };

/** Istio's HTTPRedirect: uri replaces the whole path; authority, scheme and port their parts of the URL. */
function redirectAction(r: HTTPRedirect): object {
  const out: Record<string, unknown> = {};
  if (r.uri) out.path_redirect = r.uri;
  else if (r.prefixRewrite !== undefined) out.prefix_rewrite = r.prefixRewrite;
  if (r.authority) out.host_redirect = r.authority;
  if (r.scheme) out.scheme_redirect = r.scheme;
  if (r.port) out.port_redirect = r.port;
  else if (r.derivePort === 'FROM_PROTOCOL_DEFAULT') out.port_redirect = r.scheme === 'https' ? 443 : 80;
  out.response_code = REDIRECT_CODES[r.redirectCode || 301];
  return out;
}

function directResponse(d: { status: number; body?: { string?: string; bytes?: string } }): object {
  const out: Record<string, unknown> = { status: d.status };
  if (d.body?.string !== undefined) out.body = { inline_string: d.body.string };
  else if (d.body?.bytes !== undefined) out.body = { inline_bytes: d.body.bytes };
  return out;
}

// gRPC status names -> codes, for abort.grpcStatus.
const GRPC_CODES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];

/** Istio's percentage (a double, 0-100; 100 when unset) -> Envoy's FractionalPercent, in millionths. */
function percent(p: { value?: number } | undefined, legacy?: number): object {
  const v = p?.value ?? legacy ?? 100;
  return { numerator: Math.round(v * 10_000), denominator: 'MILLION' };
}

function fault(f: HTTPFaultInjection): object {
  const out: Record<string, unknown> = { '@type': TYPE.fault };
  if (f.delay?.fixedDelay) out.delay = { fixed_delay: duration(f.delay.fixedDelay), percentage: percent(f.delay.percentage, f.delay.percent) };
  if (f.abort) {
    const a: Record<string, unknown> = { percentage: percent(f.abort.percentage) };
    if (f.abort.grpcStatus) a.grpc_status = GRPC_CODES.indexOf(f.abort.grpcStatus);
    else a.http_status = f.abort.httpStatus;
    out.abort = a;
  }
  return out;
}

function routeMatch(m: HTTPMatchRequest | undefined): object {
  const out: Record<string, unknown> = {};
  const uri = m?.uri;
  if (uri?.exact !== undefined) out.path = uri.exact;
  else if (uri?.regex !== undefined) out.safe_regex = { regex: uri.regex };
  // Envoy's RouteMatch has no suffix: the whole path must end with it.
  else if (uri?.suffix !== undefined) out.safe_regex = { regex: `${m?.ignoreUriCase ? '(?i)' : ''}.*${quoteRegex(uri.suffix)}` };
  else out.prefix = uri?.prefix ?? '/';
  if (m?.ignoreUriCase) out.case_sensitive = { value: false }; // a BoolValue
  const headers: object[] = [];
  const header = (name: string, sm: StringMatch, invert = false) => {
    const h: Record<string, unknown> = { name };
    if (isPresence(sm)) h.present_match = true;
    else h.string_match = stringMatch(sm);
    if (invert) h.invert_match = true;
    headers.push(h);
  };
  if (m?.method) header(':method', m.method);
  if (m?.authority) header(':authority', m.authority);
  if (m?.scheme) header(':scheme', m.scheme);
  for (const [name, sm] of Object.entries(m?.headers ?? {})) header(name.toLowerCase(), sm);
  for (const [name, sm] of Object.entries(m?.withoutHeaders ?? {})) header(name.toLowerCase(), sm, true);
  if (headers.length) out.headers = headers;
  const query = Object.entries(m?.queryParams ?? {}).map(([name, sm]) => (isPresence(sm) ? { name, present_match: true } : { name, string_match: stringMatch(sm) }));
  if (query.length) out.query_parameters = query;
  return out;
}

/** An empty match (`{}`), and withoutHeaders' `regex: "*"`, test presence. */
function isPresence(sm: StringMatch): boolean {
  return (sm.exact === undefined && sm.prefix === undefined && sm.regex === undefined && sm.suffix === undefined) || sm.regex === '*';
}

function stringMatch(sm: StringMatch): object {
  if (sm.exact !== undefined) return { exact: sm.exact };
  if (sm.prefix !== undefined) return { prefix: sm.prefix };
  if (sm.suffix !== undefined) return { suffix: sm.suffix };
  return { safe_regex: { regex: sm.regex ?? '' } };
}
