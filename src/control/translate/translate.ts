// Where config becomes xDS. PURE: (mesh snapshot, proxy) -> Envoy v3 resources as proto JSON.
// No I/O, no clock, no randomness: the same input always gives the same output, byte for byte,
// which is what the golden tests in test/translate/ hold it to.
//
// Naming follows Istio so that Envoy dumps look familiar:
//   clusters   outbound|<port>|<subset>|<fqdn>, inbound|<port>||
//   listeners  "outbound" (the app's HTTP proxy on loopback), "inbound|<port>"
//   routes     "outbound": one virtual host per service and port
//
// Each service port carries the protocol Istio's rules choose (model/protocol.ts): HTTP ports get
// an HttpConnectionManager, opaque ones (tcp, tls, mysql, ...) a tcp_proxy, and ports whose
// protocol is not declared get Envoy's protocol detection (http_inspector: HTTP to the HCM, the
// rest to tcp_proxy). Apps reach TCP services through the outbound listener with CONNECT.
import type { DestinationRule, HTTPMatchRequest, HTTPRoute, StringMatch, VirtualService } from '../../api/types.ts';
import { parseDuration } from '../../api/rules.ts';
import { TYPE } from '../../xds/types.ts';
import { type PortHandling, portHandling } from '../model/protocol.ts';
import {
  type MeshSnapshot,
  type Workload,
  type WorkloadPort,
  DOMAIN_SUFFIX,
  fqdn,
  inboundClusterName,
  labelsMatch,
  outboundClusterName,
  workloadPorts,
} from '../model/model.ts';

export const OUTBOUND_LISTENER = 'outbound';
export const OUTBOUND_ROUTE = 'outbound';

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

/** A service: all workloads that registered under one name in one namespace, on one port. */
interface Service {
  host: string; // fqdn
  namespace: string;
  shortName: string;
  port: number;
  /** How the port is handled, from its name and appProtocol (the first workload's, by proxy id). */
  handling: PortHandling;
  /** Each serving workload with the inbound listener port that serves this service port. */
  members: { w: Workload; inboundPort: number }[];
}

/** The resources every proxy gets alike: outbound routes, clusters and endpoints. */
export type SharedResources = Omit<XdsResources, 'listeners'>;

/** Config for one proxy: what all proxies share, plus its own listeners and inbound cluster. */
export function translate(mesh: MeshSnapshot, proxy: Workload): XdsResources {
  return forProxy(translateShared(mesh), proxy);
}

/**
 * The part of every proxy's config that depends on the mesh alone. The ADS server computes it
 * once per snapshot and shares the objects between all proxies, so that a push to thousands of
 * proxies translates and encodes it once.
 */
export function translateShared(mesh: MeshSnapshot): SharedResources {
  const services = servicesOf(mesh.workloads);
  const drByHost = destinationRulesByHost(mesh.destinationRules);
  const clusterSet = new Map<string, { host: string; port: number; subset: string }>();
  const addCluster = (host: string, port: number, subset: string) =>
    clusterSet.set(outboundClusterName(port, subset, host), { host, port, subset });

  // Every service gets its default cluster, and one per DestinationRule subset.
  for (const s of services.values()) {
    addCluster(s.host, s.port, '');
    for (const sub of drByHost.get(s.host)?.spec.subsets ?? []) addCluster(s.host, s.port, sub.name);
  }

  const routes = outboundRoutes(mesh, services, addCluster);

  const clusters: Record<string, object> = {};
  const endpoints: Record<string, object> = {};
  for (const [name, c] of [...clusterSet.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    const svc = services.get(serviceKey(c.host, c.port));
    clusters[name] = edsCluster(name, svc?.handling === 'http2');
    const selector = c.subset ? drByHost.get(c.host)?.spec.subsets?.find((s) => s.name === c.subset)?.labels : undefined;
    const members = (svc?.members ?? []).filter((m) => labelsMatch(selector, m.w.labels));
    endpoints[name] = loadAssignment(name, members);
  }
  const apiListeners: Record<string, object> = {};
  for (const vh of (routes as { virtual_hosts: { domains: string[] }[] }).virtual_hosts) {
    for (const d of vh.domains) apiListeners[d] ??= apiListener(d);
  }
  return { apiListeners, routes: { [OUTBOUND_ROUTE]: routes }, clusters, endpoints };
}

function apiListener(name: string): object {
  return {
    name,
    api_listener: {
      api_listener: {
        '@type': TYPE.hcm,
        stat_prefix: name,
        rds: { route_config_name: OUTBOUND_ROUTE, config_source: { ads: {}, resource_api_version: 'V3' } },
        http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': TYPE.router } }],
      },
    },
  };
}

/** Adds one proxy's own resources to the shared ones (which it does not modify). */
export function forProxy(shared: SharedResources, proxy: Workload): XdsResources {
  const listeners: Record<string, object> = {};
  let clusters = shared.clusters;
  if (proxy.outboundPort !== undefined) {
    listeners[OUTBOUND_LISTENER] = httpListener(OUTBOUND_LISTENER, '127.0.0.1', proxy.outboundPort, {
      rds: { route_config_name: OUTBOUND_ROUTE, config_source: { ads: {}, resource_api_version: 'V3' } },
    });
  }
  const own = proxy.service ? workloadPorts(proxy) : [];
  if (own.length) clusters = { ...shared.clusters };
  for (const p of own) {
    const handling = portHandling(p);
    if (handling === 'udp') continue;
    const name = `inbound|${p.inboundPort}`;
    const cluster = inboundClusterName(p.port);
    listeners[name] = inboundListener(name, proxy.address, p, cluster, handling);
    clusters[cluster] = {
      name: cluster,
      type: 'STATIC',
      connect_timeout: { seconds: 10 },
      load_assignment: {
        cluster_name: cluster,
        endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress('127.0.0.1', p.appPort) } }] }],
      },
      ...(handling === 'http2' ? HTTP2_UPSTREAM : {}),
    };
  }
  return { listeners, apiListeners: shared.apiListeners, routes: shared.routes, clusters, endpoints: shared.endpoints };
}

function serviceKey(host: string, port: number): string {
  return `${host}:${port}`;
}

function servicesOf(workloads: readonly Workload[]): Map<string, Service> {
  const out = new Map<string, Service>();
  for (const w of [...workloads].sort((a, b) => a.proxyId.localeCompare(b.proxyId))) {
    if (!w.service) continue;
    const host = fqdn(w.service, w.namespace);
    for (const p of workloadPorts(w)) {
      const handling = portHandling(p);
      if (handling === 'udp') continue;
      const key = serviceKey(host, p.port);
      let s = out.get(key);
      if (!s) {
        s = { host, namespace: w.namespace, shortName: w.service, port: p.port, handling, members: [] };
        out.set(key, s);
      }
      s.members.push({ w, inboundPort: p.inboundPort });
    }
  }
  return new Map([...out.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

function destinationRulesByHost(drs: readonly DestinationRule[]): Map<string, DestinationRule> {
  const out = new Map<string, DestinationRule>();
  // Oldest name first wins, as in Istio where the earliest-created rule takes precedence.
  for (const dr of [...drs].sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`))) {
    const host = fqdn(dr.spec.host, dr.metadata.namespace);
    if (!out.has(host)) out.set(host, dr);
  }
  return out;
}

/** The names a client may use for a service: short, namespaced and full, with and without port. */
function domainsFor(host: string, port: number, namespace: string): string[] {
  const names = [host];
  const suffix = `.${namespace}.${DOMAIN_SUFFIX}`;
  if (host.endsWith(suffix)) {
    const short = host.slice(0, -suffix.length);
    names.push(short, `${short}.${namespace}`, `${short}.${namespace}.svc`);
  }
  const out: string[] = [];
  for (const n of names) {
    if (port === 80) out.push(n);
    out.push(`${n}:${port}`);
  }
  return out;
}

function outboundRoutes(
  mesh: MeshSnapshot,
  services: Map<string, Service>,
  addCluster: (host: string, port: number, subset: string) => void,
): object {
  // The first VirtualService (by namespace/name) that claims a host owns it, as in Istio.
  const vsByHost = new Map<string, VirtualService>();
  for (const vs of [...mesh.virtualServices].sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`))) {
    if (vs.spec.gateways && vs.spec.gateways.length > 0 && !vs.spec.gateways.includes('mesh')) continue;
    for (const h of vs.spec.hosts ?? []) {
      const host = fqdn(h, vs.metadata.namespace);
      if (!vsByHost.has(host)) vsByHost.set(host, vs);
    }
  }
  const portsOf = (host: string): number[] => [...services.values()].filter((s) => s.host === host).map((s) => s.port);

  const virtualHosts: object[] = [];
  const seen = new Set<string>();
  for (const s of services.values()) {
    seen.add(s.host);
    const vs = vsByHost.get(s.host);
    const cluster = outboundClusterName(s.port, '', s.host);
    // An opaque TCP port is reached by CONNECT only; a port of undeclared protocol both ways (the
    // sidecar detects what the tunnel carries). VirtualService http routes do not apply to TCP.
    const routes =
      s.handling === 'tcp'
        ? [connectRoute(cluster)]
        : [...(vs ? httpRoutes(vs, s.port, portsOf, addCluster) : [defaultRoute(cluster)]), ...(s.handling === 'detect' ? [connectRoute(cluster)] : [])];
    virtualHosts.push({ name: `${s.host}:${s.port}`, domains: domainsFor(s.host, s.port, s.namespace), routes });
  }
  // A VirtualService for a host no workload serves yet still routes, so that traffic to it gets
  // "no healthy endpoint in cluster ..." rather than "no route".
  for (const [host, vs] of [...vsByHost.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    if (seen.has(host) || host.startsWith('*')) continue;
    virtualHosts.push({ name: `${host}:80`, domains: domainsFor(host, 80, vs.metadata.namespace), routes: httpRoutes(vs, 80, portsOf, addCluster) });
  }
  return { name: OUTBOUND_ROUTE, virtual_hosts: virtualHosts };
}

/** CONNECT to the service's authority becomes an opaque tunnel to the cluster (Envoy's CONNECT termination). */
function connectRoute(cluster: string): object {
  return { name: 'connect', match: { connect_matcher: {} }, route: { cluster, upgrade_configs: [{ upgrade_type: 'CONNECT' }] } };
}

function defaultRoute(cluster: string): object {
  return { name: 'default', match: { prefix: '/' }, route: { cluster, timeout: { seconds: 0 } } };
}

function httpRoutes(
  vs: VirtualService,
  port: number,
  portsOf: (host: string) => number[],
  addCluster: (host: string, port: number, subset: string) => void,
): object[] {
  const out: object[] = [];
  (vs.spec.http ?? []).forEach((r: HTTPRoute, i: number) => {
    if (!r.route || r.route.length === 0) return; // redirect, directResponse, delegate: later issues
    const matches = r.match && r.match.length > 0 ? r.match : [undefined];
    const action = routeAction(vs, r, port, portsOf, addCluster);
    matches.forEach((m, j) => {
      if (m?.port !== undefined && m.port !== port) return;
      out.push({ name: r.name ?? `${vs.metadata.namespace}/${vs.metadata.name}.http[${i}]${matches.length > 1 ? `.match[${j}]` : ''}`, match: routeMatch(m), route: action });
    });
  });
  return out;
}

function routeAction(
  vs: VirtualService,
  r: HTTPRoute,
  port: number,
  portsOf: (host: string) => number[],
  addCluster: (host: string, port: number, subset: string) => void,
): object {
  const dests = (r.route ?? []).map((d) => {
    const host = fqdn(d.destination.host, vs.metadata.namespace);
    const known = portsOf(host);
    const p = d.destination.port?.number ?? (known.includes(port) ? port : known[0] ?? port);
    const subset = d.destination.subset ?? '';
    addCluster(host, p, subset);
    return { name: outboundClusterName(p, subset, host), weight: d.weight ?? (r.route!.length === 1 ? 100 : 0) };
  });
  const action: Record<string, unknown> = {};
  if (dests.length === 1) action.cluster = dests[0].name;
  // weight is a google.protobuf.UInt32Value: {value: n}.
  else action.weighted_clusters = { clusters: dests.filter((d) => d.weight > 0).map((d) => ({ name: d.name, weight: { value: d.weight } })) };
  action.timeout = r.timeout ? duration(r.timeout) : { seconds: 0 };
  // retries, fault, mirror, rewrite, headers: the traffic issue. Validation accepts them; the
  // sidecar does not act on them yet, and docs/config.md says so.
  return action;
}

function routeMatch(m: HTTPMatchRequest | undefined): object {
  const out: Record<string, unknown> = {};
  const uri = m?.uri;
  if (uri?.exact !== undefined) out.path = uri.exact;
  else if (uri?.regex !== undefined) out.safe_regex = { regex: uri.regex };
  else out.prefix = uri?.prefix ?? '/';
  if (m?.ignoreUriCase) out.case_sensitive = { value: false }; // a BoolValue
  const headers: object[] = [];
  const header = (name: string, sm: StringMatch, invert = false) => {
    const h: Record<string, unknown> = { name };
    if (sm.exact === undefined && sm.prefix === undefined && sm.regex === undefined) h.present_match = true;
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
  const query = Object.entries(m?.queryParams ?? {}).map(([name, sm]) =>
    sm.exact === undefined && sm.prefix === undefined && sm.regex === undefined ? { name, present_match: true } : { name, string_match: stringMatch(sm) },
  );
  if (query.length) out.query_parameters = query;
  return out;
}

function stringMatch(sm: StringMatch): object {
  if (sm.exact !== undefined) return { exact: sm.exact };
  if (sm.prefix !== undefined) return { prefix: sm.prefix };
  return { safe_regex: { regex: sm.regex ?? '' } };
}

/**
 * An Istio duration ("1.5s", "100ms", "1m30s") -> google.protobuf.Duration, parsed by the same
 * parser validation used, so that every duration validation accepts means the same here.
 */
export function duration(s: string): { seconds: number; nanos?: number } {
  const total = parseDuration(s.trim()) ?? 0n;
  const seconds = Number(total / 1_000_000_000n);
  const nanos = Number(total % 1_000_000_000n);
  return nanos ? { seconds, nanos } : { seconds };
}

/** What makes a cluster speak HTTP/2 to its endpoints (http2, grpc and grpc-web ports, as in Istio). */
const HTTP2_UPSTREAM = {
  typed_extension_protocol_options: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': TYPE.httpProtocolOptions,
      explicit_http_config: { http2_protocol_options: {} },
    },
  },
};

function edsCluster(name: string, http2: boolean): object {
  return {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: name },
    connect_timeout: { seconds: 10 },
    lb_policy: 'ROUND_ROBIN',
    ...(http2 ? HTTP2_UPSTREAM : {}),
  };
}

function loadAssignment(name: string, members: readonly { w: Workload; inboundPort: number }[]): object {
  const lbEndpoints = [...members]
    .sort((a, b) => a.w.proxyId.localeCompare(b.w.proxyId))
    .map(({ w, inboundPort }) => ({
      endpoint: { address: socketAddress(w.address, inboundPort) },
      health_status: w.healthy ? 'HEALTHY' : 'UNHEALTHY',
    }));
  // One locality with weight 1: gRPC's xDS client requires a locality and skips weightless ones.
  return { cluster_name: name, endpoints: lbEndpoints.length ? [{ locality: {}, lb_endpoints: lbEndpoints, load_balancing_weight: { value: 1 } }] : [] };
}

function socketAddress(address: string, port: number): object {
  return { socket_address: { address, port_value: port } };
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

function httpListener(name: string, address: string, port: number, routeSpec: object): object {
  return { name, address: socketAddress(address, port), filter_chains: [{ filters: [hcmFilter(name, routeSpec)] }] };
}

function hcmFilter(name: string, routeSpec: object): object {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': TYPE.hcm,
      stat_prefix: name,
      ...routeSpec,
      ...HCM_DEFAULTS,
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': TYPE.router } }],
    },
  };
}

/** Opaque TCP to one cluster; Envoy's default idle timeout (1 h) applies, so none is set. */
function tcpProxyFilter(statPrefix: string, cluster: string): object {
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TYPE.tcpProxy, stat_prefix: statPrefix, cluster } };
}

/** One service port's inbound listener, by the port's protocol. */
function inboundListener(name: string, address: string, p: WorkloadPort, cluster: string, handling: PortHandling): object {
  const hcm = () =>
    hcmFilter(name, {
      route_config: {
        name,
        virtual_hosts: [{ name: 'inbound|http', domains: ['*'], routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster, timeout: { seconds: 0 } } }] }],
      },
    });
  const addr = socketAddress(address, p.inboundPort);
  if (handling === 'tcp') return { name, address: addr, filter_chains: [{ filters: [tcpProxyFilter(name, cluster)] }] };
  if (handling === 'detect') {
    // Envoy's protocol detection: http_inspector sets the application protocol of plain HTTP
    // connections; those take the HCM chain, everything else the default (TCP) chain.
    return {
      name,
      address: addr,
      listener_filters: [{ name: 'envoy.filters.listener.http_inspector', typed_config: { '@type': TYPE.httpInspector } }],
      filter_chains: [
        { name: 'http', filter_chain_match: { application_protocols: ['http/1.1', 'h2c'] }, filters: [hcm()] },
        { name: 'tcp', filters: [tcpProxyFilter(name, cluster)] },
      ],
    };
  }
  return { name, address: addr, filter_chains: [{ filters: [hcm()] }] };
}
