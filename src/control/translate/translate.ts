// Where config becomes xDS. PURE: (mesh snapshot, proxy) -> Envoy v3 resources as proto JSON.
// No I/O, no clock, no randomness: the same input always gives the same output, byte for byte,
// which is what the golden tests in test/translate/ hold it to.
//
// Naming follows Istio so that Envoy dumps look familiar:
//   clusters   outbound|<port>|<subset>|<fqdn>, inbound|<port>||
//   listeners  "outbound" (the app's HTTP proxy on loopback), "inbound|<port>"
//   routes     "outbound": one virtual host per service and port (routes.ts)
//
// Clusters and endpoints are built once for the mesh, with each host's DestinationRule as every
// namespace sees it by default (destination-rules.ts), and shared by every proxy; routes depend on
// the proxy's scope (namespace, the labels sourceLabels names, the Sidecar that applies:
// model.ts ProxyScope), and so do the few clusters a scope sees otherwise (hosts hidden from it by
// exportTo or its Sidecar; hosts whose DestinationRule it finds in its own namespace); listeners
// and the inbound clusters are the proxy's own. The push step (control/push/) caches the shared
// part per snapshot and the scoped part per scope.
//
// Each service port carries the protocol Istio's rules choose (model/protocol.ts): HTTP ports get
// an HttpConnectionManager, opaque ones (tcp, tls, mysql, ...) a tcp_proxy, and ports whose
// protocol is not declared get Envoy's protocol detection (http_inspector: HTTP to the HCM, the
// rest to tcp_proxy). Apps reach TCP services through the outbound listener with CONNECT; on a
// TLS port with tls routes, the CONNECT goes to an internal listener that routes by server name
// (tls-routes.ts).
//
// Automatic mTLS (mtls.ts): endpoints whose sidecar takes mTLS are marked, the clusters that reach
// them choose TLS or plaintext per endpoint, and each inbound listener takes what its port's
// PeerAuthentication mode (api/peer-auth.ts) allows.
import type { AuthorizationPolicy, Destination, DestinationRule, LocalRateLimit, VirtualService } from '../../api/types.ts';
import { TYPE } from '../../xds/types.ts';
import { duration } from './duration.ts';
import { jwtAuthnFilter } from './jwt.ts';
import { type PortHandling, portHandling } from '../model/protocol.ts';
import {
  DEFAULT_TRUST_DOMAIN,
  type MeshSnapshot,
  type ProxyScope,
  type Workload,
  type WorkloadPort,
  fqdn,
  inboundClusterName,
  labelsMatch,
  localityOf,
  withTopology,
  outboundClusterName,
  workloadPorts,
} from '../model/model.ts';
import { type Discovery, type Service, type ServiceEndpoint, appliesToMesh, byPrecedence, resolveDestination, routedPorts, serviceKey, servicesOf, subsetDefined } from './services.ts';
import { DestinationRuleIndex, type DrLookup, ruleKey } from './destination-rules.ts';
import { CORS_FILTER, OUTBOUND_ROUTE, PASSTHROUGH_CLUSTER, mirrorsOf, outboundRoutes, serviceVisible } from './routes.ts';
import { egressOf, sidecarFor, sidecarKey } from './sidecar.ts';
import { allVirtualServices } from './gamma.ts';
import { clusterPolicyFields, effectivePolicy, policyLayers, protocolOptions } from './policy.ts';
import { failoverLabelKeys, loadAssignment, localityLbOf, socketAddress } from './locality.ts';
import { type SniResources, tcpProxy } from './tls-routes.ts';
import { type MeshMinTls, type PlainInbound, type PortFilters, clusterTls, outboundSni, subjectAltNames, withInboundMtls } from './mtls.ts';
import { type EffectiveMode, portMtlsMode, workloadMtls } from '../../api/peer-auth.ts';
import { type AuthzFilter, type MeshService, authzFilters, customProviderProblem } from './authz.ts';
import { proxyTracing, withTracing } from './tracing.ts';
import { accessLogsFor } from './telemetry-logs.ts';
import { istioStatsFilter, withStats } from './telemetry-metrics.ts';
import { INBOUND_PEER_METADATA, OUTBOUND_PEER_METADATA, withPeerMetadata, withoutPeerExchange } from './peer-metadata.ts';
import { applicableTelemetries, applicableTelemetriesOfScope, workloadTelemetryKeys } from '../../api/telemetry-select.ts';

export { duration } from './duration.ts';
export { OUTBOUND_ROUTE, PASSTHROUGH_CLUSTER } from './routes.ts';

export const OUTBOUND_LISTENER = 'outbound';

/** The route configuration a proxyless gRPC client's api listeners name (proxylessRoutes). */
export const PROXYLESS_ROUTE = 'outbound-proxyless';

export interface XdsResources {
  /** The proxy's own listeners: what a wildcard LDS subscription (Weft's sidecar, Envoy) gets. */
  listeners: Record<string, object>;
  /**
   * Listeners named by service host ("my-backend-service", its namespaced and full names, with and
   * without ":port"), each an `api_listener` on the outbound routes. A proxyless gRPC client
   * (grpc-js-xds, target xds:///my-backend-service) asks for these by name; a wildcard
   * subscription does not get them.
   */
  apiListeners: Record<string, object>;
  routes: Record<string, object>;
  clusters: Record<string, object>;
  endpoints: Record<string, object>;
}

/** What every proxy gets alike: clusters and endpoints. */
export type SharedResources = Pick<XdsResources, 'clusters' | 'endpoints'>;

/**
 * What every proxy of one scope gets alike: the outbound routes, and the listeners a proxyless
 * gRPC client asks for by name. When some services are hidden from the scope (a ServiceEntry's
 * exportTo, a Sidecar's egress hosts), also their hosts: their clusters are not sent to it.
 */
export type ScopedResources = Pick<XdsResources, 'routes' | 'apiListeners'> & {
  hiddenHosts?: ReadonlySet<string>;
  /** The clusters of the hosts whose DestinationRule this scope sees otherwise than the default view, in place of the shared ones. */
  clusterOverrides?: SharedResources & { hosts: ReadonlySet<string> };
  /** The internal listeners that route TLS ports by server name for this scope, and the clusters that reach them. */
  sni?: SniResources;
};

/** Config for one proxy: the shared and scoped parts, plus its own listeners and inbound clusters. */
export function translate(mesh: MeshSnapshot, proxy: Workload): XdsResources {
  const scoped = translateScoped(mesh, scopeOf(mesh, proxy));
  return forProxy(sharedFor(translateShared(mesh), scoped), scoped, proxy, mesh);
}

/** The shared clusters and endpoints a scope gets: all but those of the hosts hidden from it, with its own for the hosts whose DestinationRule it sees otherwise. */
export function sharedFor(shared: SharedResources, scoped: ScopedResources): SharedResources {
  const hidden = scoped.hiddenHosts;
  const over = scoped.clusterOverrides;
  const sni = scoped.sni?.clusters;
  if (!hidden && !over) return sni ? { clusters: { ...shared.clusters, ...sni }, endpoints: shared.endpoints } : shared;
  const drop = (name: string) => {
    const host = name.split('|')[3] ?? '';
    return !!hidden?.has(host) || !!over?.hosts.has(host);
  };
  const pick = (r: Record<string, object>, add: Record<string, object> = {}) => {
    const out = Object.fromEntries(Object.entries(r).filter(([name]) => !drop(name)));
    for (const [name, x] of Object.entries(add)) if (!hidden?.has(name.split('|')[3] ?? '')) out[name] = x;
    return out;
  };
  return { clusters: { ...pick(shared.clusters, over?.clusters), ...sni }, endpoints: pick(shared.endpoints, over?.endpoints) };
}

/**
 * The label keys that can change a proxy's config: those some mesh-bound match's sourceLabels
 * names (its routes), and those a DestinationRule's failoverPriority compares (its endpoints'
 * priorities).
 */
export function sourceLabelKeys(mesh: MeshSnapshot): string[] {
  const keys = new Set<string>(failoverLabelKeys(mesh.destinationRules));
  for (const vs of allVirtualServices(mesh)) {
    for (const r of [...(vs.spec.http ?? []), ...(vs.spec.tcp ?? []), ...(vs.spec.tls ?? [])]) for (const m of r.match ?? []) for (const k of Object.keys(m.sourceLabels ?? {})) keys.add(k);
  }
  return [...keys].sort();
}

/** A proxy's scope, its labels reduced to `keys` (sourceLabelKeys of the mesh; computed here when not given). */
export function scopeOf(mesh: MeshSnapshot, proxy: Workload, keys: readonly string[] = sourceLabelKeys(mesh)): ProxyScope {
  const labels: Record<string, string> = {};
  const where = localityOf(proxy.labels);
  // As Istio's proxy labels: with the topology labels its locality gives (failoverPriority compares them).
  const own = withTopology(proxy.labels, where);
  for (const k of keys) if (own[k] !== undefined) labels[k] = own[k];
  const sc = sidecarFor(mesh.sidecars, proxy);
  // DestinationRules with a workloadSelector apply to the workloads of their namespace they select.
  const selectedRules = mesh.destinationRules
    .filter((dr) => dr.spec.workloadSelector && dr.metadata.namespace === proxy.namespace && labelsMatch(dr.spec.workloadSelector.matchLabels, proxy.labels))
    .map(ruleKey)
    .sort();
  // Its locality, where some endpoint of the mesh has one: locality load balancing orders endpoints by it.
  const locality = indexOf(mesh).localized ? where : '';
  // Telemetries with a selector that selects it: its outbound access logs (the internal listeners' too) follow them.
  const telemetries = workloadTelemetryKeys(mesh.telemetries, proxy);
  return { namespace: proxy.namespace, labels, ...(sc ? { sidecar: sidecarKey(sc) } : {}), ...(selectedRules.length ? { selectedRules } : {}), ...(locality ? { locality } : {}), ...(telemetries.length ? { telemetries } : {}) };
}

interface SnapshotIndex {
  index: DestinationRuleIndex;
  services: Map<string, Service>;
  /** Every host some outbound cluster may be built for: services, route destinations and mirrors, DestinationRule hosts. */
  hosts: Set<string>;
  /** The namespace of each service host (the first service's), where its DestinationRule is looked up. */
  nsOfHost: Map<string, string>;
  /** Some endpoint has a locality. */
  localized: boolean;
}

/** Every destination of a VirtualService: its http, tls and tcp routes' and its mirrors'. */
function destinationsOf(vs: VirtualService): Destination[] {
  return [
    ...(vs.spec.tcp ?? []).flatMap((r) => (r.route ?? []).map((x) => x.destination)),
    ...(vs.spec.tls ?? []).flatMap((r) => (r.route ?? []).map((x) => x.destination)),
    ...(vs.spec.http ?? []).flatMap((r) => [...(r.route ?? []).map((x) => x.destination), ...mirrorsOf(r).map((m) => m.destination)]),
  ];
}

/** The DestinationRule index of a snapshot, its services, and the hosts clusters are built for, made once per snapshot. */
const drIndexes = new WeakMap<MeshSnapshot, SnapshotIndex>();

function indexOf(mesh: MeshSnapshot): SnapshotIndex {
  let x = drIndexes.get(mesh);
  if (!x) {
    const services = servicesOf(mesh);
    const hosts = new Set<string>([...services.values()].map((s) => s.host));
    for (const dr of mesh.destinationRules) hosts.add(fqdn(dr.spec.host, dr.metadata.namespace));
    for (const vs of allVirtualServices(mesh)) for (const d of destinationsOf(vs)) hosts.add(fqdn(d.host, vs.metadata.namespace));
    const nsOfHost = new Map<string, string>();
    for (const s of services.values()) if (!nsOfHost.has(s.host)) nsOfHost.set(s.host, s.namespace);
    const localized = [...services.values()].some((s) => s.endpoints.some((e) => e.locality !== ''));
    drIndexes.set(mesh, (x = { index: new DestinationRuleIndex(mesh.destinationRules), services, hosts, nsOfHost, localized }));
  }
  return x;
}

/** How a client in `clientNamespace` (undefined: the default view every proxy shares) finds a host's DestinationRule. */
function drLookup(mesh: MeshSnapshot, clientNamespace: string | undefined, selected: readonly string[] = []): DrLookup {
  const { index, nsOfHost } = indexOf(mesh);
  return (host) => index.lookup(host, clientNamespace, nsOfHost.get(host), selected);
}

/** The part of every proxy's config that depends on the mesh alone. */
export function translateShared(mesh: MeshSnapshot): SharedResources {
  const { services } = indexOf(mesh);
  const clusters: Record<string, object> = { [PASSTHROUGH_CLUSTER]: passthroughCluster(PASSTHROUGH_CLUSTER, {}) };
  const endpoints: Record<string, object> = {};
  buildClusters(mesh, services, drLookup(mesh, undefined), () => true, clusters, endpoints);
  return { clusters, endpoints };
}

/**
 * The outbound clusters (and EDS endpoints) of the hosts `want` takes, with each host's
 * DestinationRule as `drFor` gives it: every service's default cluster and one per subset, and
 * every route destination, also of hosts no workload serves yet (no endpoints, then).
 */
function buildClusters(
  mesh: MeshSnapshot,
  services: ReadonlyMap<string, Service>,
  drFor: DrLookup,
  want: (host: string) => boolean,
  clusters: Record<string, object>,
  endpoints: Record<string, object>,
  /** The proxy's locality and labels, for locality load balancing (locality.ts); none in the shared view. */
  where: { locality: string; labels: Readonly<Record<string, string>> } = { locality: '', labels: {} },
): void {
  const clusterSet = new Map<string, { host: string; port: number; subset: string }>();
  const addCluster = (host: string, port: number, subset: string) => {
    // A subset no DestinationRule defines gets no cluster: routes to it answer 503, as in Istio.
    if (want(host) && subsetDefined(drFor, host, subset)) clusterSet.set(outboundClusterName(port, subset, host), { host, port, subset });
  };
  for (const s of services.values()) {
    addCluster(s.host, s.port, '');
    for (const sub of drFor(s.host)?.spec.subsets ?? []) addCluster(s.host, s.port, sub.name);
  }
  for (const vs of allVirtualServices(mesh)) {
    if (!appliesToMesh(vs)) continue;
    const dests = destinationsOf(vs);
    for (const h of vs.spec.hosts ?? []) {
      for (const port of routedPorts(fqdn(h, vs.metadata.namespace), services)) {
        for (const d of dests) {
          const t = resolveDestination(vs, d, port, services);
          addCluster(t.host, t.port, t.subset);
        }
      }
    }
  }
  for (const [name, c] of [...clusterSet.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    const svc = services.get(serviceKey(c.host, c.port));
    const dr = drFor(c.host);
    const effective = effectivePolicy(dr, c.subset, c.port);
    const locality = localityLbOf(effective);
    const policy = withLocalityWeighted(clusterPolicyFields(effective), locality !== undefined);
    const assignment = (eps: readonly ServiceEndpoint[]) => loadAssignment(name, eps, locality, where.locality, where.labels);
    const selector = c.subset ? dr?.spec.subsets?.find((s) => s.name === c.subset)?.labels : undefined;
    const members = (svc?.endpoints ?? []).filter((e) => labelsMatch(selector, e.labels));
    const discovery: Discovery = svc?.discovery ?? 'EDS';
    const protocol = protocolOptions(effective, svc?.handling);
    const tlsCtx = { h2: isHttp2Options(protocol), ...(svc?.subjectAltNames ? { serviceSans: svc.subjectAltNames } : {}) };
    // loadBalancer PASSTHROUGH: Istio's ORIGINAL_DST cluster, no balancing: the connection goes
    // where the client addressed it (for Weft's sidecar, the request's authority).
    if (discovery === 'ORIGINAL_DST' || effective.loadBalancer?.simple === 'PASSTHROUGH') {
      // The client's own protocol decides nothing here yet: HTTP/1.1 unless the rule says otherwise.
      // The port's protocol, as Istio sets every cluster's (gRPC through a resolution NONE entry is HTTP/2).
      // No automatic mTLS to an address the mesh does not know; a DestinationRule's tls (ISTIO_MUTUAL, SIMPLE, MUTUAL) still applies.
      clusters[name] = { ...passthroughCluster(name, withProtocol(protocol, policy), svc?.targetPort), ...clusterTls(effective.tls, NO_AUTO_MTLS, outboundSni(c.port, c.subset, c.host), tlsCtx) };
    } else if (discovery === 'EDS') {
      // Automatic mTLS (mtls.ts): only where some endpoint takes it, so a plaintext mesh's clusters
      // stay as they were; unless the DestinationRule's tls says otherwise (any mode). With the
      // mesh config's enableAutoMtls false, only ISTIO_MUTUAL originates mTLS (as in Istio).
      const secure = members.filter((e) => e.identity);
      const sans = subjectAltNames(mesh.trustDomain, secure.map((e) => e.identity!), mesh.meshConfig?.trustDomainAliases);
      const auto = mesh.meshConfig?.enableAutoMtls !== false && secure.length > 0;
      const tls = clusterTls(effective.tls, { sans, secure: auto }, outboundSni(c.port, c.subset, c.host), tlsCtx);
      clusters[name] = { ...edsCluster(name, protocol, policy), ...tls };
      endpoints[name] = assignment(members);
    } else if (members.length > 0) {
      // DNS: the endpoints' names go in the cluster; the proxy resolves them (Istio's STRICT_DNS and
      // LOGICAL_DNS clusters). A LOGICAL_DNS cluster has one name: the first. With no endpoint at
      // all there is no cluster, as in Istio (its routes answer 503).
      const eps = discovery === 'LOGICAL_DNS' ? members.slice(0, 1) : members;
      clusters[name] = { name, type: discovery, ...clusterSettings(protocol, policy), ...clusterTls(effective.tls, NO_AUTO_MTLS, outboundSni(c.port, c.subset, c.host), tlsCtx), load_assignment: assignment(eps) };
    }
  }
}

/** DNS and passthrough clusters reach no proven workload: automatic mTLS has nothing to do there. */
const NO_AUTO_MTLS = { sans: [], secure: false } as const;

/** Envoy's locality-weighted load balancing, which Istio turns on where it applies locality load balancing. */
function withLocalityWeighted(policy: Record<string, any>, on: boolean): Record<string, any> {
  return on ? { ...policy, common_lb_config: { ...policy.common_lb_config, locality_weighted_lb_config: {} } } : policy;
}

/** The part of a proxy's config that depends on its scope: routes, and the api_listeners named after them. */
export function translateScoped(mesh: MeshSnapshot, scope: ProxyScope): ScopedResources {
  const sc = scope.sidecar ? mesh.sidecars?.find((x) => sidecarKey(x) === scope.sidecar) : undefined;
  const egress = egressOf(sc, scope.namespace, mesh.meshConfig?.outboundTrafficPolicy?.mode);
  const { services } = indexOf(mesh);
  const drFor = drLookup(mesh, scope.namespace, scope.selectedRules);
  const sni: SniResources = { listeners: {}, clusters: {} };
  const routes = outboundRoutes(allVirtualServices(mesh), services, scope, drFor, egress, sni);
  // The client side's access log (Telemetry, else the mesh config's: telemetry-logs.ts).
  const scopeTelemetries = applicableTelemetriesOfScope(mesh.telemetries, scope.namespace, scope.telemetries);
  withAccessLog(sni.listeners, accessLogsFor(scopeTelemetries, mesh.meshConfig, 'CLIENT'));
  // And its metrics (Telemetry metrics: telemetry-metrics.ts), as the client.
  const clientStats = istioStatsFilter(scopeTelemetries, mesh.meshConfig, 'CLIENT');
  for (const [name, l] of Object.entries(sni.listeners)) sni.listeners[name] = withStats(l, clientStats);
  const apiListeners: Record<string, object> = {};
  const vhosts = (routes as { virtual_hosts: { domains: string[]; routes: RouteJson[] }[] }).virtual_hosts;
  for (const vh of vhosts) {
    // The catch-all ("*": allow_any or block_all) is no name a proxyless gRPC client dials.
    for (const d of vh.domains) if (d !== '*') apiListeners[d] ??= apiListener(d);
  }
  const proxyless = proxylessRoutes(vhosts, (cluster) => services.get(serviceKey(cluster.split('|')[3] ?? '', Number(cluster.split('|')[1])))?.discovery);
  const out: ScopedResources = { apiListeners, routes: { [OUTBOUND_ROUTE]: routes, [PROXYLESS_ROUTE]: proxyless } };
  // Hosts none of whose services the scope may see (exportTo, the Sidecar's egress hosts): their
  // clusters are not sent, so a VirtualService that routes to one gets 503, as in Istio.
  const seen = new Set<string>();
  for (const s of services.values()) if (serviceVisible(s, scope, egress)) seen.add(s.host);
  const hiddenHosts = new Set([...services.values()].map((s) => s.host).filter((h) => !seen.has(h)));
  // Hosts whose DestinationRule this scope sees otherwise than the default view (a rule in its own
  // namespace, or one not exported to it): their clusters are built again for it.
  const shared = drLookup(mesh, undefined);
  // And, for a proxy with a locality or failoverPriority labels, the hosts whose endpoints locality
  // load balancing orders for it.
  const placed = scope.locality !== undefined || Object.keys(scope.labels).length > 0;
  const differs = new Set([...indexOf(mesh).hosts].filter((h) => !h.startsWith('*') && (drFor(h) !== shared(h) || (placed && localityApplies(drFor(h))))));
  let clusterOverrides: ScopedResources['clusterOverrides'];
  if (differs.size) {
    const clusters: Record<string, object> = {};
    const endpoints: Record<string, object> = {};
    buildClusters(mesh, services, drFor, (h) => differs.has(h), clusters, endpoints, { locality: scope.locality ?? '', labels: scope.labels });
    clusterOverrides = { hosts: differs, clusters, endpoints };
  }
  return { ...out, ...(hiddenHosts.size ? { hiddenHosts } : {}), ...(clusterOverrides ? { clusterOverrides } : {}), ...(Object.keys(sni.listeners).length ? { sni } : {}) };
}

/** The mesh config's access log on the tcp_proxy of every chain of the internal listeners that route TLS by server name. */
function withAccessLog(listeners: Record<string, object>, accessLog: object[] | undefined): void {
  if (!accessLog) return;
  type Chain = { filters: { typed_config: Record<string, unknown> }[] };
  const logged = (c: Chain): Chain => ({ ...c, filters: c.filters.map((f) => (f.typed_config['@type'] === TYPE.tcpProxy ? { ...f, typed_config: { ...f.typed_config, access_log: accessLog } } : f)) });
  for (const [name, l] of Object.entries(listeners) as [string, { filter_chains: Chain[]; default_filter_chain?: Chain }][]) {
    listeners[name] = { ...l, filter_chains: l.filter_chains.map(logged), ...(l.default_filter_chain ? { default_filter_chain: logged(l.default_filter_chain) } : {}) };
  }
}

/** Can a DestinationRule's locality load balancing depend on the proxy (some layer has outlier detection, or `distribute`)? */
function localityApplies(dr: DestinationRule | undefined): boolean {
  return dr !== undefined && policyLayers(dr).some((tp) => tp.outlierDetection !== undefined || tp.loadBalancer?.localityLbSetting?.distribute?.length);
}

/**
 * The outbound routes as a proxyless gRPC client (grpc-js-xds) can take them, which its api
 * listeners name: no CONNECT routes and no CORS (it rejects a whole route table that has either),
 * no catch-all (it has no passthrough). A route it cannot carry out (a direct response, a
 * redirect, a cluster type it rejects: it takes EDS and LOGICAL_DNS) keeps its match but points
 * at a cluster that does not exist, so that its calls fail (UNAVAILABLE) rather than fall to a
 * broader route. As Istio, which builds proxyless clients their own config.
 */
function proxylessRoutes(vhosts: readonly { domains: string[]; routes: RouteJson[] }[], discoveryOf: (cluster: string) => Discovery | undefined): object {
  const usable = (r: RouteJson) => r.route !== undefined && clustersOf(r).every((c) => { const d = discoveryOf(c); return d === undefined || d === 'EDS' || d === 'LOGICAL_DNS'; });
  const carried = (r: RouteJson): RouteJson => (usable(r) ? withoutCors(r) : { name: r.name, match: r.match, route: { cluster: PROXYLESS_UNSUPPORTED } });
  const virtualHosts = vhosts
    .filter((vh) => !vh.domains.includes('*'))
    .map((vh) => ({ ...vh, routes: vh.routes.filter((r) => r.match?.connect_matcher === undefined).map(carried) }))
    .filter((vh) => vh.routes.length > 0);
  return { name: PROXYLESS_ROUTE, virtual_hosts: virtualHosts };
}

/** The cluster a proxyless client's routes name where Weft has nothing it can carry out: none by that name exists. */
export const PROXYLESS_UNSUPPORTED = 'unsupported-by-proxyless-grpc';

function withoutCors(r: RouteJson): RouteJson {
  const filters = r.typed_per_filter_config;
  if (!filters || !(CORS_FILTER in filters)) return r;
  const { [CORS_FILTER]: _cors, ...rest } = filters;
  const { typed_per_filter_config: _all, ...route } = r;
  return Object.keys(rest).length ? { ...route, typed_per_filter_config: rest } : route;
}

type RouteJson = { name?: string; match?: { connect_matcher?: object }; typed_per_filter_config?: Record<string, object>; route?: { cluster?: string; weighted_clusters?: { clusters: { name: string }[] }; request_mirror_policies?: { cluster: string }[] } };

/** The clusters a route sends to or mirrors to. */
function clustersOf(r: RouteJson): string[] {
  return [...(r.route?.cluster ? [r.route.cluster] : []), ...(r.route?.weighted_clusters?.clusters ?? []).map((c) => c.name), ...(r.route?.request_mirror_policies ?? []).map((m) => m.cluster)];
}

function apiListener(name: string): object {
  return {
    name,
    api_listener: {
      api_listener: {
        '@type': TYPE.hcm,
        stat_prefix: name,
        rds: { route_config_name: PROXYLESS_ROUTE, config_source: { ads: {}, resource_api_version: 'V3' } },
        http_filters: PROXYLESS_FILTERS,
      },
    },
  };
}

/** What a proxy's own resources read of the mesh: its rate limits, its Sidecar, its PeerAuthentications, AuthorizationPolicies, RequestAuthentications and Telemetries, and the control plane's trace receiver. */
export type ProxyPolicies = Pick<MeshSnapshot, 'rateLimits' | 'sidecars' | 'peerAuthentications' | 'authorizationPolicies' | 'requestAuthentications' | 'trustDomain' | 'meshConfig' | 'discoveredJwksUris' | 'tracesReceiver' | 'telemetries'> &
  Partial<Pick<MeshSnapshot, 'workloads' | 'serviceEntries' | 'workloadEntries'>>;

/** Adds one proxy's own resources to the shared and scoped ones (which it does not modify). */
export function forProxy(shared: SharedResources, scoped: ScopedResources, proxy: Workload, mesh: ProxyPolicies = {}): XdsResources {
  const { sidecars } = mesh;
  const limits = inboundLimits(mesh.rateLimits ?? [], proxy);
  // Its RequestAuthentications: the JWT filter of every inbound HCM (translate/jwt.ts).
  const jwt = jwtAuthnFilter(mesh.requestAuthentications, proxy, undefined, mesh.discoveredJwksUris);
  // Its ports' mTLS modes. A proxy that proved no identity has no certificate to terminate TLS
  // with: PERMISSIVE serves it plaintext only, and STRICT still refuses plaintext (fails closed).
  const mtls = workloadMtls(mesh.peerAuthentications, proxy);
  const modeOf = (port: number) => {
    const m = portMtlsMode(mtls, port);
    return proxy.serviceAccount === undefined && m === 'PERMISSIVE' ? 'DISABLE' : m;
  };
  // The Sidecar's inboundConnectionPool: a DestinationRule connectionPool for the proxy's inbound
  // clusters (to its app), as Istio applies it.
  const inboundPool = sidecarFor(sidecars, proxy)?.spec.inboundConnectionPool as Record<string, any> | undefined;
  // The AuthorizationPolicies that select it, as Envoy RBAC filters (authz.ts): the same on every
  // inbound port, HTTP filters in each HCM and network filters on each TCP chain.
  const authz = inboundAuthz(mesh, proxy);
  // Its access logs (telemetry-logs.ts): by the Telemetries that apply to it, else the mesh
  // config's; the outbound listener's as the client (CLIENT), the inbound ones' as the server (SERVER).
  const telemetries = applicableTelemetries(mesh.telemetries, proxy);
  const clientLog = accessLogsFor(telemetries, mesh.meshConfig, 'CLIENT');
  const accessLog = accessLogsFor(telemetries, mesh.meshConfig, 'SERVER');
  // The scope's internal listeners (TLS routed by server name) first: CONNECT tunnels reach them.
  const listeners: Record<string, object> = { ...scoped.sni?.listeners };
  let clusters = shared.clusters;
  if (proxy.outboundPort !== undefined) {
    listeners[OUTBOUND_LISTENER] = {
      ...httpListener(OUTBOUND_LISTENER, '127.0.0.1', proxy.outboundPort, { rds: { route_config_name: OUTBOUND_ROUTE, config_source: { ads: {}, resource_api_version: 'V3' } } }, clientLog),
      traffic_direction: 'OUTBOUND',
    };
  }
  const own = proxy.service ? workloadPorts(proxy) : [];
  // A proxy that does not speak Istio's TCP metadata exchange (a stock Envoy) is not asked to (peer-metadata.ts).
  if (!proxy.peerExchange) clusters = withoutPeerExchange(clusters);
  else if (own.length) clusters = { ...shared.clusters };
  for (const p of own) {
    const handling = portHandling(p);
    if (handling === 'udp') continue;
    const name = `inbound|${p.inboundPort}`;
    const cluster = inboundClusterName(p.port);
    // traffic_direction, as Istio sets it: which side of the exchange the sidecar reports (its metrics' reporter label).
    // The inbound route's decorator, as Istio's: "<service host>:<service port>/*" (the name of its spans).
    const operation = proxy.service ? `${fqdn(proxy.service, proxy.namespace)}:${p.port}/*` : undefined;
    listeners[name] = { ...inboundListener(name, proxy.address, p, cluster, handling, limits, modeOf(p.port), authz, jwt, mesh.meshConfig?.meshMTLS?.minProtocolVersion, accessLog, operation, proxy.peerExchange === true), traffic_direction: 'INBOUND' };
    const base = {
      name: cluster,
      type: 'STATIC',
      connect_timeout: { seconds: 10 },
      load_assignment: {
        cluster_name: cluster,
        endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress('127.0.0.1', p.appPort) } }] }],
      },
    };
    // Istio upgrades outbound clusters only, and takes useClientProtocol there only
    // (applyTrafficPolicy): the app keeps its own protocol. No inboundConnectionPool: no policy
    // (clusterPolicyFields({}) is {}).
    const { h2UpgradePolicy: _upgrade, useClientProtocol: _client, ...http } = (inboundPool?.http ?? {}) as Record<string, unknown>;
    const policy = inboundPool ? { connectionPool: { ...inboundPool, ...(inboundPool.http ? { http } : {}) } } : {};
    clusters[cluster] = { ...base, ...withProtocol(protocolOptions(policy, handling), clusterPolicyFields(policy)) };
  }
  // Istio's metrics by its Telemetries (telemetry-metrics.ts): the stats filter of each side, where it changes the defaults.
  const stats = { CLIENT: istioStatsFilter(telemetries, mesh.meshConfig, 'CLIENT'), SERVER: istioStatsFilter(telemetries, mesh.meshConfig, 'SERVER') };
  for (const name of Object.keys(listeners)) {
    // And Istio's metadata exchange (peer-metadata.ts): the peers' app and version labels.
    if (name === OUTBOUND_LISTENER) listeners[name] = withPeerMetadata(withStats(listeners[name]!, stats.CLIENT), OUTBOUND_PEER_METADATA);
    else if (name.startsWith('inbound|')) listeners[name] = withPeerMetadata(withStats(listeners[name]!, stats.SERVER), INBOUND_PEER_METADATA);
  }
  // Tracing (tracing.ts): the HCMs of its own listeners, server spans inbound and client spans outbound.
  const tracing = proxyTracing(mesh, proxy, () => meshServices(mesh));
  if (tracing.inbound || tracing.outbound) {
    for (const name of Object.keys(listeners)) {
      if (name === OUTBOUND_LISTENER) listeners[name] = withTracing(listeners[name]!, tracing.outbound);
      else if (name.startsWith('inbound|')) listeners[name] = withTracing(listeners[name]!, tracing.inbound);
    }
    if (Object.keys(tracing.clusters).length) clusters = { ...clusters, ...tracing.clusters };
  }
  return { listeners, apiListeners: scoped.apiListeners, routes: scoped.routes, clusters, endpoints: shared.endpoints };
}


/**
 * Istio's PassthroughCluster, and the cluster of a ServiceEntry with resolution NONE: Envoy's
 * ORIGINAL_DST, the address the client meant. Weft's sidecar is the app's HTTP proxy rather than
 * an iptables redirect, so for it the original destination is the request's authority (or the
 * CONNECT target). The DestinationRule's lb policy cannot apply: the destination is given.
 */
function passthroughCluster(name: string, policy: Record<string, unknown>, targetPort?: number): object {
  // Nor outlier detection: every destination a request names would be an endpoint to track.
  const { lb_policy: _lb, ring_hash_lb_config: _r, maglev_lb_config: _m, round_robin_lb_config: _rr, least_request_lb_config: _lr, outlier_detection: _o, ...rest } = policy;
  // A ServiceEntry port's targetPort: where connections go, whatever port the request named (Istio's upstream_port_override).
  const override = targetPort ? { original_dst_lb_config: { upstream_port_override: { value: targetPort } } } : {};
  return { name, type: 'ORIGINAL_DST', connect_timeout: { seconds: 10 }, lb_policy: 'CLUSTER_PROVIDED', ...override, ...rest };
}

function edsCluster(name: string, protocol: object | undefined, policy: object): object {
  return { name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: name }, ...clusterSettings(protocol, policy) };
}

/** A cluster's protocol (its port's and its DestinationRule's: policy.ts protocolOptions), timeouts and DestinationRule policy: all but its name, type and endpoints. */
function clusterSettings(protocol: object | undefined, policy: object): Record<string, unknown> {
  return {
    connect_timeout: { seconds: 10 },
    lb_policy: 'ROUND_ROBIN',
    ...withProtocol(protocol, {}),
    ...policy, // the DestinationRule's traffic policy (policy.ts)
  };
}

/** HttpProtocolOptions that make the cluster HTTP/2 (explicit_http_config). */
function isHttp2Options(protocol: object | undefined): boolean {
  const o = (protocol as Record<string, { explicit_http_config?: { http2_protocol_options?: object } }> | undefined)?.['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
  return o?.explicit_http_config?.http2_protocol_options !== undefined;
}

function withProtocol(protocol: object | undefined, fields: Record<string, unknown>): Record<string, unknown> {
  return protocol ? { typed_extension_protocol_options: protocol, ...fields } : fields;
}

/**
 * What every sidecar listener's HttpConnectionManager sets: Istio's path normalization (BASE:
 * RFC 3986 normalization, no slash merging), and bounds on how long a client may take to send a
 * request head and how long an idle connection is kept (Envoy's own default idle timeout).
 */
const HCM_DEFAULTS = {
  normalize_path: { value: true },
  request_headers_timeout: { seconds: 10 },
  common_http_protocol_options: { idle_timeout: { seconds: 3600 } },
};

function httpListener(name: string, address: string, port: number, routeSpec: object, accessLog?: object[]): object {
  return { name, address: socketAddress(address, port), filter_chains: [{ filters: [hcmFilter(name, routeSpec, OUTBOUND_FILTERS, accessLog)] }] };
}

/** The inbound HCM's filters: just the router. */
const ROUTER = [{ name: 'envoy.filters.http.router', typed_config: { '@type': TYPE.router } }];
/** The outbound side's, in Istio's order: CORS and fault (their config comes per route, from VirtualService corsPolicy and fault), then the router. */
const OUTBOUND_FILTERS = [{ name: CORS_FILTER, typed_config: { '@type': TYPE.cors } }, { name: 'envoy.filters.http.fault', typed_config: { '@type': TYPE.fault } }, ...ROUTER];

/** A proxyless gRPC client's (grpc-js-xds): it has the fault filter and the router, not CORS (a browser concern). */
const PROXYLESS_FILTERS = OUTBOUND_FILTERS.filter((f) => f.name !== CORS_FILTER);

function hcmFilter(name: string, routeSpec: object, filters: object[] = ROUTER, accessLog?: object[]): object {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': TYPE.hcm,
      stat_prefix: name,
      ...routeSpec,
      ...HCM_DEFAULTS,
      http_filters: filters,
      ...(accessLog ? { access_log: accessLog } : {}),
    },
  };
}

/** One service port's inbound listener, by the port's protocol. */
/** One limit of a LocalRateLimit that applies to a proxy, in the order they are tried. */
interface InboundLimit {
  id: string; // "namespace/name.limit": the bucket's name, and what a 429 names
  match?: { method?: string; path?: { exact?: string; prefix?: string } };
  requests: number;
  per: string;
  burst?: number;
}

/** The LocalRateLimits of the proxy's namespace whose selector takes it (oldest first), their limits in order. */
function inboundLimits(all: readonly LocalRateLimit[], proxy: Workload): InboundLimit[] {
  const out: InboundLimit[] = [];
  for (const rl of byPrecedence(all)) {
    if (rl.metadata.namespace !== proxy.namespace || !labelsMatch(rl.spec.selector?.matchLabels, proxy.labels)) continue;
    rl.spec.limits.forEach((l, i) => out.push({ id: `${rl.metadata.namespace}/${rl.metadata.name}.${l.name ?? `limits[${i}]`}`, match: l.match, requests: l.requests, per: l.per, burst: l.burst }));
  }
  return out;
}

const LOCAL_RATE_LIMIT_FILTER = 'envoy.filters.http.local_ratelimit';

/** A limit as an inbound route: its match, and Envoy's local_ratelimit token bucket as the route's config. */
function limitRoute(l: InboundLimit, cluster: string): object {
  const match: Record<string, unknown> = l.match?.path?.exact !== undefined ? { path: l.match.path.exact } : { prefix: l.match?.path?.prefix ?? '/' };
  if (l.match?.method) match.headers = [{ name: ':method', string_match: { exact: l.match.method } }];
  return {
    name: l.id,
    match,
    route: { cluster, timeout: { seconds: 0 } },
    typed_per_filter_config: {
      [LOCAL_RATE_LIMIT_FILTER]: {
        '@type': TYPE.localRateLimit,
        stat_prefix: l.id,
        token_bucket: { max_tokens: l.burst ?? l.requests, tokens_per_fill: { value: l.requests }, fill_interval: duration(l.per) },
        filter_enabled: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
        filter_enforced: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
      },
    },
  };
}

/** A proxy's inbound authorization filters; none without a namespace or policies (a pure client has no inbound side). */
export function inboundAuthz(mesh: ProxyPolicies, proxy: Workload): InboundAuthz {
  const all = mesh.authorizationPolicies ?? [];
  if (!all.length) return NO_AUTHZ;
  // CUSTOM policies name a provider of meshConfig.extensionProviders, whose service must be one of
  // the mesh's (looked up only when a CUSTOM policy exists). The mesh config's trust domain
  // aliases: a principal of any of them matches as one of the mesh's own.
  const custom = all.some((p) => p.spec.action === 'CUSTOM');
  const extensionProviders = custom ? mesh.meshConfig?.extensionProviders : undefined;
  return authzFilters(all, { namespace: proxy.namespace, labels: proxy.labels ?? {} }, {
    trustDomain: mesh.trustDomain ?? DEFAULT_TRUST_DOMAIN,
    trustDomainAliases: mesh.meshConfig?.trustDomainAliases ?? [],
    ...(extensionProviders?.length ? { extensionProviders, services: meshServices(mesh) } : {}),
  });
}

/**
 * What `weft apply` says of a CUSTOM policy whose provider the mesh config does not give, or gives
 * in a form that cannot be used: the policy stays, and denies what it matches (as Istio's).
 */
export function customProviderWarnings(p: AuthorizationPolicy, mesh: ProxyPolicies): string[] {
  if (p.spec.action !== 'CUSTOM') return [];
  const why = customProviderProblem(p, mesh.meshConfig?.extensionProviders ?? [], meshServices(mesh));
  const name = `AuthorizationPolicy ${p.metadata.namespace}/${p.metadata.name}`;
  return why ? [`${name}: spec.provider.name: ${why}; the requests this policy matches are denied (it fails closed, as in Istio)`] : [];
}

/** The services of the mesh by hostname and namespace, once per snapshot (what extension providers name). */
const meshServicesOf = new WeakMap<object, MeshService[]>();
function meshServices(mesh: ProxyPolicies): MeshService[] {
  let out = meshServicesOf.get(mesh);
  if (!out) {
    const seen = new Map<string, MeshService>();
    for (const s of servicesOf({ workloads: mesh.workloads ?? [], serviceEntries: mesh.serviceEntries, workloadEntries: mesh.workloadEntries, peerAuthentications: mesh.peerAuthentications }).values()) {
      seen.set(`${s.namespace}/${s.host}`, { hostname: s.host, namespace: s.namespace });
    }
    out = [...seen.values()];
    meshServicesOf.set(mesh, out);
  }
  return out;
}

/** The RBAC (and ext_authz) filters of the inbound side: HTTP ones for the HCM, network ones for TCP chains. */
export interface InboundAuthz {
  http: readonly AuthzFilter[];
  tcp: readonly AuthzFilter[];
}
const NO_AUTHZ: InboundAuthz = { http: [], tcp: [] };

function inboundListener(name: string, address: string, p: WorkloadPort, cluster: string, handling: PortHandling, limits: InboundLimit[], mode: EffectiveMode, authz: InboundAuthz = NO_AUTHZ, jwt?: object, minTls?: MeshMinTls, accessLog?: object[], operation?: string, peerExchange = false): object {
  const plain = plainInboundListener(name, address, p, cluster, handling, limits, authz, jwt, accessLog, operation);
  return withInboundMtls(plain.listener, mode, handling, plain.filters, minTls, peerExchange);
}

/**
 * One service port's inbound listener without mTLS, and the port's filters (for the mTLS chains).
 * Istio's order: authentication first (the JWT filter of RequestAuthentication), then the
 * authorization filters (which read what authentication found), then the rest, then the router;
 * on a TCP chain the network RBAC filters come before tcp_proxy.
 */
function plainInboundListener(name: string, address: string, p: WorkloadPort, cluster: string, handling: PortHandling, limits: InboundLimit[], authz: InboundAuthz, jwt?: object, accessLog?: object[], operation?: string): { listener: PlainInbound; filters: PortFilters } {
  const filters = [
    ...(jwt ? [jwt] : []),
    ...authz.http,
    ...(limits.length ? [{ name: LOCAL_RATE_LIMIT_FILTER, typed_config: { '@type': TYPE.localRateLimit, stat_prefix: 'inbound' } }] : []),
    ...ROUTER,
  ];
  const hcm = () =>
    hcmFilter(
      name,
      {
        route_config: {
          name,
          virtual_hosts: [
            { name: 'inbound|http', domains: ['*'], routes: [...limits.map((l) => limitRoute(l, cluster)), { name: 'default', match: { prefix: '/' }, route: { cluster, timeout: { seconds: 0 } }, ...(operation ? { decorator: { operation } } : {}) }] },
          ],
        },
      },
      filters,
      accessLog,
    );
  const addr = socketAddress(address, p.inboundPort);
  // Opaque TCP to the one cluster, with no settings: Envoy's default idle timeout (1 h) applies.
  const tcp = () => tcpProxy(name, [{ name: cluster, weight: 100 }], accessLog ? { access_log: accessLog } : {});
  const own: PortFilters = { hcm, tcp, tcpFilters: authz.tcp };
  if (handling === 'tcp') return { listener: { name, address: addr, filter_chains: [{ filters: [...authz.tcp, tcp()] }] }, filters: own };
  if (handling === 'detect') {
    // Envoy's protocol detection: http_inspector sets the application protocol of plain HTTP
    // connections; those take the HCM chain, everything else the default (TCP) chain.
    const listener = {
      name,
      address: addr,
      listener_filters: [{ name: 'envoy.filters.listener.http_inspector', typed_config: { '@type': TYPE.httpInspector } }],
      filter_chains: [
        { name: 'http', filter_chain_match: { application_protocols: ['http/1.1', 'h2c'] }, filters: [hcm()] },
        { name: 'tcp', filters: [...authz.tcp, tcp()] },
      ],
    };
    return { listener, filters: own };
  }
  return { listener: { name, address: addr, filter_chains: [{ filters: [hcm()] }] }, filters: own };
}
