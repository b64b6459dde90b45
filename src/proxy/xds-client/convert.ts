// PURE: Envoy xDS resources (proto JSON) -> the sidecar's runtime config. Anything the sidecar
// cannot honour is an error whose message becomes the NACK reason, naming the resource and field.
// Nothing here touches sockets; the snapshot built from this is swapped in atomically.
import { type IstioStatsConfig, isIstioStats, istioStatsConfig } from './convert-stats.ts';
import { TYPE } from '../../xds/types.ts';
import { type RouteTable, convertRouteConfig } from './convert-route.ts';
import { duration, durationMs, fail } from './convert-util.ts';
import { type SniConfig, type TcpProxyConfig, sniChains, tcpProxy } from './convert-tcp.ts';
import { type MtlsListener, isMtlsListener, mtlsParts } from './convert-mtls.ts';
import { type TransportSocketMatch, type UpstreamTls, clusterTransport, endpointSocketMatch } from './convert-tls.ts';
import { type JwtAuthnConfig, jwtAuthnConfig } from './convert-jwt.ts';
import { type AccessLogConfig, accessLogs } from './convert-accesslog.ts';
import { type TracingConfig, requestIdExtension, tracingConfig } from './convert-tracing.ts';
export type { AccessLogConfig } from './convert-accesslog.ts';

export type { RouteEntry, RouteTable, VirtualHost, StringMatcher } from './convert-route.ts';
export { convertRouteConfig } from './convert-route.ts';
export type { SniChain, SniConfig, TcpProxyConfig } from './convert-tcp.ts';
export { chainFor, pickTcpCluster } from './convert-tcp.ts';
export type { MtlsListener, TlsChain } from './convert-mtls.ts';
export { tlsChainFor } from './convert-mtls.ts';
export type { DownstreamTls, TransportSocketMatch, UpstreamTls } from './convert-tls.ts';
export type { JwtAuthnConfig, JwtLocation, JwtProvider, JwtRequirement, JwksSource } from './convert-jwt.ts';
export { transportFor } from './convert-tls.ts';

export interface ListenerConfig {
  name: string;
  /** For an internal listener: '' and 0. */
  address: string;
  port: number;
  /**
   * Envoy's internal listener (internal_listener): bound to no socket. Connections reach it through
   * a cluster whose endpoint names it (envoy_internal_address): CONNECT tunnels, in Weft's sidecar.
   */
  internal?: boolean;
  /**
   * What the listener does with a connection: 'http', its HttpConnectionManager; 'tcp', its
   * tcp_proxy, at once; 'detect', HTTP (http_inspector matched http/1.1 or h2c) to the HCM and
   * anything else to the tcp_proxy; 'sni', the tcp_proxy of the chain the ClientHello's server
   * name picks (tls_inspector). For 'tcp' and 'sni' the HCM fields below hold Envoy's defaults.
   */
  kind: 'http' | 'tcp' | 'detect' | 'sni';
  tcp?: TcpProxyConfig;
  sni?: SniConfig;
  /**
   * Mutual TLS (tls_inspector and chains with a DownstreamTlsContext, convert-mtls.ts): a connection
   * with a ClientHello goes to the TLS chain its ALPN picks; one without goes to the listener's kind
   * above (PERMISSIVE's plaintext chains) or, with mtls.plaintext false (STRICT), is closed.
   */
  mtls?: MtlsListener;
  /**
   * The HttpConnectionManager's RBAC and ext_authz filters (AuthorizationPolicy), in order: the
   * request path runs them before routing (http/authz.ts). Absent: no authorization.
   */
  authz?: readonly AuthzFilterConfig[];
  /** Istio's stats filter (istio.stats) of its chains: how its Istio metrics are reported (convert-stats.ts). Absent: Istio's defaults. */
  istioStats?: IstioStatsConfig;
  /** Either the name of an RDS route configuration, or an inline one. */
  rdsName?: string;
  inlineRoutes?: RouteTable;
  /** HttpConnectionManager normalize_path and merge_slashes. */
  path: { normalize: boolean; mergeSlashes: boolean };
  /** HttpConnectionManager request_headers_timeout; 60 s when not set, against slowloris. */
  requestHeadersTimeoutMs: number;
  /** common_http_protocol_options.idle_timeout: Envoy's default is one hour. */
  idleTimeoutMs: number;
  /** stream_idle_timeout: a request with no bytes either way for this long ends (Envoy: 5 min). */
  streamIdleTimeoutMs: number;
  /** The HCM's jwt_authn filter (RequestAuthentication): the JWT layer (http/jwt.ts) runs it first. */
  jwt?: JwtAuthnConfig;
  /** The HCM's access_log: a line per request (telemetry/access-log.ts). */
  accessLog?: readonly AccessLogConfig[];
  /** The HCM's tracing: context propagated and spans reported (http/trace-context.ts, telemetry/tracer.ts). */
  tracing?: TracingConfig;
  /** generate_request_id false: a request without x-request-id gets none (Envoy's default, true, makes one); with tracing, tracing.generateRequestId says it. */
  noRequestId?: boolean;
  /** Istio's metadata exchange filter (istio.metadata_exchange): which of its parts the listener runs (http/peer-metadata.ts). */
  peerMetadata?: PeerMetadataConfig;
  /** traffic_direction: which side of an exchange the listener is (its metrics' reporter: destination for INBOUND, else source). */
  direction?: 'inbound' | 'outbound';
}

/** When the control plane sets no request_headers_timeout (Envoy's own default is none at all). */
export const DEFAULT_REQUEST_HEADERS_TIMEOUT_MS = 60_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 3_600_000;
export const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 300_000;

export interface ClusterConfig {
  name: string;
  /**
   * STATIC, STRICT_DNS and LOGICAL_DNS clusters carry their endpoints (for the DNS types, names
   * that are resolved when a connection is made, as Envoy's LOGICAL_DNS does); EDS ones have them
   * sent separately; ORIGINAL_DST ones have none: a request goes where its authority (or its
   * CONNECT target) says, the app's original destination when the sidecar is its HTTP proxy.
   */
  type: 'EDS' | 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'ORIGINAL_DST';
  /** For EDS: the ClusterLoadAssignment name to subscribe to. */
  edsName?: string;
  connectTimeoutMs: number;
  /** For STATIC clusters: endpoints inline. */
  staticEndpoints?: Endpoint[];
  /**
   * A STATIC cluster whose one endpoint is an internal listener (envoy_internal_address): a CONNECT
   * tunnel routed to it is handed to that listener (no socket is opened).
   */
  internalListener?: string;
  /** What the cluster's endpoints speak: HTTP/2 when its protocol options say so, the client's own protocol for use_downstream_protocol_config, else HTTP/1.1. */
  protocol: UpstreamProtocol;
  /** circuit_breakers (DEFAULT priority), where set: limits across all of the cluster's endpoints (upstream/resources.ts). */
  limits: { maxConnections?: number; maxPending?: number; maxRequests?: number; maxRetries?: number; retryBudget?: { percent: number; minConcurrency: number } };
  /** How its upstream connections are kept and ended, where the cluster says (HttpProtocolOptions, upstream_connection_options). */
  connection?: ConnectionOptions;
  /** lb_policy: ROUND_ROBIN, RANDOM, LEAST_REQUEST (two random choices, the one with fewer requests in flight), RING_HASH or MAGLEV (by the route's hash_policy). */
  lb: 'round_robin' | 'random' | 'least_request' | 'ring_hash' | 'maglev' | 'cluster_provided';
  /** ring_hash_lb_config.minimum_ring_size (1024), or maglev_lb_config.table_size (65537). */
  hashTableSize?: number;
  /** ORIGINAL_DST: original_dst_lb_config.upstream_port_override, the port connections go to whatever the request named. */
  portOverride?: number;
  /** outlier_detection: endpoints ejected after consecutive errors (upstream/outlier.ts). */
  outlier?: OutlierConfig;
  /**
   * HttpProtocolOptions.upstream_http_protocol_options: an HTTP request's TLS sends its host as SNI
   * (auto_sni) and requires the server's certificate to name it (auto_san_validation).
   */
  autoSni?: { sni: boolean; san: boolean };
  /** transport_socket: TLS to every endpoint no transport_socket_matches entry picks (undefined: plaintext). */
  transportSocket?: UpstreamTls;
  /** transport_socket_matches: an endpoint's transport socket by its metadata (convert-tls.ts transportFor). */
  transportSocketMatches?: readonly TransportSocketMatch[];
  /** common_lb_config.healthy_panic_threshold (Envoy: 50%): below this share of endpoints not ejected, ejections are ignored. */
  panicPercent: number;
  /** common_lb_config.locality_weighted_lb_config: within a priority, a locality is picked by its load_balancing_weight. */
  localityWeighted?: boolean;
  /** round_robin_lb_config / least_request_lb_config slow_start_config: new endpoints' share grows over a window (upstream/slow-start.ts). */
  slowStart?: SlowStartConfig;
  /** Its upstream filters' Istio TCP metadata exchange: run on a TCP connection whose mutual TLS negotiated its protocol (tcp/peer-exchange.ts). */
  peerExchange?: TcpPeerExchangeConfig;
}

export interface SlowStartConfig {
  windowMs: number;
  aggression: number;
  minWeightPercent: number;
}

export interface OutlierConfig {
  /** 0: off. */
  consecutive5xx: number;
  consecutiveGateway: number;
  intervalMs: number;
  baseEjectionMs: number;
  maxEjectionPercent: number;
  /**
   * split_external_local_origin_errors: failures to connect, resets and timeouts are counted apart
   * (consecutiveLocalOrigin in a row eject; 0: never) and no longer as 5xx or gateway errors.
   */
  splitLocalOrigin?: boolean;
  consecutiveLocalOrigin?: number;
}

/** 'downstream': HTTP/2 for a request that came over HTTP/2, HTTP/1.1 for the rest (Envoy's use_downstream_protocol_config). */
export type UpstreamProtocol = 'http1' | 'http2' | 'downstream';

/** A cluster's upstream connection options, where it sets them (else the pools' defaults). */
export interface ConnectionOptions {
  /** common_http_protocol_options.idle_timeout: a connection with no request for this long is closed; 0: never. */
  idleTimeoutMs?: number;
  /** common_http_protocol_options.max_requests_per_connection: a connection carries at most this many requests, then closes. */
  maxRequestsPerConnection?: number;
  /** common_http_protocol_options.max_connection_duration: this long after it was made, a connection takes no new request and closes once its requests end. */
  maxConnectionDurationMs?: number;
  /** http2_protocol_options.max_concurrent_streams: streams per HTTP/2 connection (and never more than the server allows). */
  maxConcurrentStreams?: number;
  /** http2_protocol_options.connection_keepalive: a PING every intervalMs (plus up to jitterPercent of it); no answer within timeoutMs closes the connection. */
  h2Keepalive?: { intervalMs: number; timeoutMs: number; jitterPercent: number };
  /** upstream_connection_options.tcp_keepalive: SO_KEEPALIVE on upstream sockets, and how long a connection idles before probes start (seconds; unset: the OS's). */
  tcpKeepalive?: { timeS?: number };
}

export interface Endpoint {
  address: string;
  port: number;
  healthy: boolean;
  /** Its LocalityLbEndpoints' priority (0 first) and index in the assignment, and that locality's load_balancing_weight (upstream/priority.ts). */
  priority?: number;
  group?: number;
  localityWeight?: number;
  /** Its lb_endpoint load_balancing_weight, where not 1: its share against the others' (balance.ts, hash.ts). */
  weight?: number;
  /** metadata.filter_metadata['envoy.transport_socket_match'] (Istio's tlsMode): picks the cluster's transport socket. */
  socketMatch?: Readonly<Record<string, string>>;
}

export { ConvertError } from './convert-util.ts';
export type { AuthzFilterConfig } from './convert-authz.ts';
import { type PeerMetadataConfig, type TcpPeerExchangeConfig, isPeerMetadata, isTcpPeerExchange, peerMetadataConfig, tcpPeerExchangeConfig } from './convert-peer-metadata.ts';
import { AUTHN_FILTER_TYPES, type AuthzFilterConfig, httpRbacFilter, isHttpExtAuthz, isHttpRbac, splitNetworkRbac } from './convert-authz.ts';
import { httpExtAuthzFilter } from './convert-ext-authz.ts';
export type { ExtAuthzConfig, ExtAuthzFilterConfig, ExtAuthzService } from './convert-ext-authz.ts';

function socket(where: string, addr: any): { address: string; port: number } {
  const sa = addr?.socket_address;
  if (!sa) fail(where, 'only socket_address addresses are supported');
  const port = Number(sa.port_value ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`${where}.socket_address.port_value`, `invalid port ${sa.port_value}`);
  if (!sa.address) fail(`${where}.socket_address.address`, 'required');
  return { address: sa.address, port };
}

/** The application protocols Envoy's http_inspector reports for plain HTTP. */
const INSPECTED_HTTP = new Set(['http/1.1', 'http/1.0', 'h2c']);

/**
 * Listeners Weft's sidecar can serve: one filter chain with one HttpConnectionManager or one
 * tcp_proxy; or protocol detection, that is the http_inspector listener filter with one chain
 * matching only application_protocols (http/1.1, h2c) that holds an HCM, and one chain without
 * a match that holds a tcp_proxy; or SNI routing, the tls_inspector listener filter with chains
 * matching server_names, each holding a tcp_proxy (convert-tcp.ts). Any of them on an address, or
 * as an internal listener (internal_listener instead of an address).
 */
export function convertListener(l: any): ListenerConfig {
  const c = convertListenerShape(l);
  // Each tcp_proxy knows its listener, for telemetry (the TCP path is handed the tcp_proxy alone).
  const tcps = [c.tcp, ...(c.mtls?.chains ?? []).map((x) => x.tcp), ...(c.sni ? [...c.sni.exact.values(), ...c.sni.wildcard.values(), c.sni.fallback].map((x) => x?.tcp) : [])];
  for (const t of tcps) if (t) t.listener = c.name;
  const td = l.traffic_direction;
  const direction = td === 'INBOUND' || td === 1 ? 'inbound' : td === 'OUTBOUND' || td === 2 ? 'outbound' : undefined;
  const istioStats = listenerStats(`listener ${l.name}`, l);
  return { ...c, ...(direction ? { direction } : {}), ...(istioStats ? { istioStats } : {}) };
}

/**
 * Istio's stats filter (istio.stats) of a listener: in its HCMs' http_filters and before its
 * tcp_proxies, as Istio puts it. The sidecar's metrics take one config per listener (Istio's pilot
 * makes one per listener class), so every chain's must be the same; none: Istio's defaults.
 */
function listenerStats(where: string, l: any): IstioStatsConfig | undefined {
  const found: { where: string; f: any }[] = [];
  const chains: any[] = [...(l.filter_chains ?? []), ...(l.default_filter_chain ? [l.default_filter_chain] : [])];
  chains.forEach((c, i) => {
    (c.filters ?? []).forEach((f: any, j: number) => {
      const fw = `${where}: filter_chains[${i}].filters[${j}]`;
      if (isIstioStats(f)) found.push({ where: fw, f });
      if (f.typed_config?.['@type'] === TYPE.hcm) (f.typed_config.http_filters ?? []).forEach((h: any, k: number) => isIstioStats(h) && found.push({ where: `${fw}.http_filters[${k}]`, f: h }));
    });
  });
  if (!found.length) return undefined;
  const first = JSON.stringify(found[0]!.f.typed_config);
  const other = found.find((x) => JSON.stringify(x.f.typed_config) !== first);
  if (other) fail(other.where, `every istio.stats filter of a listener must be the same (${found[0]!.where} differs): the sidecar reports a listener's metrics one way`);
  return istioStatsConfig(found[0]!.where, found[0]!.f);
}

function convertListenerShape(l: any): ListenerConfig {
  const where = `listener ${l.name ?? '(unnamed)'}`;
  if (!l.name) fail(where, 'name: required');
  if (l.internal_listener && l.address) fail(`${where}: internal_listener`, 'an internal listener has no address');
  const { address, port } = l.internal_listener ? { address: '', port: 0 } : socket(`${where}: address`, l.address);
  const internal = l.internal_listener ? { internal: true } : {};
  const chains: any[] = l.filter_chains ?? [];
  if (isMtlsListener(l)) return mtlsListener(where, l);
  if ((l.listener_filters ?? []).some((f: any) => f.typed_config?.['@type'] === TYPE.tlsInspector)) {
    return { name: l.name, address, port, ...internal, kind: 'sni', sni: sniChains(where, l), ...hcmDefaults() };
  }
  if (l.internal_listener && chains.some((c) => (c.filters ?? []).some((f: any) => f.typed_config?.['@type'] === TYPE.hcm))) {
    fail(`${where}: internal_listener`, "an internal listener holding an HttpConnectionManager is not supported (one holding a tcp_proxy, or the tls_inspector's chains, is)");
  }
  const named = chains.findIndex((c) => c.filter_chain_match?.server_names?.length);
  if (named >= 0) fail(`${where}: filter_chains[${named}].filter_chain_match.server_names`, 'needs the tls_inspector listener filter, which reads the server name');
  if (l.default_filter_chain) fail(`${where}: default_filter_chain`, 'supported beside the tls_inspector only (elsewhere, put the default chain in filter_chains without a filter_chain_match)');
  let inspector = false;
  for (const [i, f] of (l.listener_filters ?? []).entries()) {
    const t = f.typed_config?.['@type'];
    if (t === TYPE.httpInspector) inspector = true;
    else fail(`${where}: listener_filters[${i}]`, `unsupported listener filter ${t ?? f.name} (http_inspector and tls_inspector are)`);
  }
  const only = (i: number): { type: 'hcm' | 'tcp'; f: any; rbac: AuthzFilterConfig[] } => {
    const cw = `${where}: filter_chains[${i}]`;
    const { rbac, rest: filters } = splitNetworkRbac(cw, chains[i].filters ?? []);
    const types = filters.map((f: any) => f.typed_config?.['@type'] ?? f.name);
    if (filters.length !== 1 || (types[0] !== TYPE.hcm && types[0] !== TYPE.tcpProxy)) {
      fail(`${cw}.filters`, `a chain must hold exactly one HttpConnectionManager or tcp_proxy filter, after any network RBAC filters (got ${types.join(', ') || 'none'})`);
    }
    if (types[0] === TYPE.hcm && rbac.length) fail(`${cw}.filters[0]`, 'network RBAC before an HttpConnectionManager is not supported (put HTTP RBAC filters in its http_filters)');
    return { type: types[0] === TYPE.hcm ? 'hcm' : 'tcp', f: filters[0], rbac };
  };
  const withRbac = (tcp: TcpProxyConfig, rbac: AuthzFilterConfig[]): TcpProxyConfig => (rbac.length ? { ...tcp, rbac } : tcp);
  const matchKeys = (i: number): string[] => Object.keys(chains[i].filter_chain_match ?? {});
  const base = { name: l.name as string, address, port, ...internal };
  if (chains.length === 1 && matchKeys(0).length === 0) {
    const c = only(0);
    if (c.type === 'tcp') return { ...base, kind: 'tcp', tcp: withRbac(tcpProxy(`${where}: filter_chains[0]`, c.f.typed_config), c.rbac), ...hcmDefaults() };
    return { ...base, kind: 'http', ...hcmConfig(where, c.f.typed_config) };
  }
  if (chains.length === 2) {
    const httpAt = chains.findIndex((c) => c.filter_chain_match);
    const tcpAt = 1 - httpAt;
    if (httpAt >= 0 && matchKeys(tcpAt).length === 0) {
      const m = chains[httpAt].filter_chain_match;
      const other = matchKeys(httpAt).filter((k) => k !== 'application_protocols');
      if (other.length) fail(`${where}: filter_chains[${httpAt}].filter_chain_match`, `only application_protocols is supported (got ${other.join(', ')})`);
      const protos: string[] = m.application_protocols ?? [];
      if (!protos.length || !protos.every((p) => INSPECTED_HTTP.has(p))) {
        fail(`${where}: filter_chains[${httpAt}].filter_chain_match.application_protocols`, `must name only what http_inspector reports for HTTP (http/1.1, http/1.0, h2c), got ${JSON.stringify(protos)}`);
      }
      if (!inspector) fail(`${where}: listener_filters`, 'a chain matching application_protocols needs the http_inspector listener filter');
      const h = only(httpAt);
      const t = only(tcpAt);
      if (h.type !== 'hcm') fail(`${where}: filter_chains[${httpAt}].filters`, 'the chain matching HTTP must hold an HttpConnectionManager');
      if (t.type !== 'tcp') fail(`${where}: filter_chains[${tcpAt}].filters`, 'the default chain of a detecting listener must hold a tcp_proxy');
      return { ...base, kind: 'detect', tcp: withRbac(tcpProxy(`${where}: filter_chains[${tcpAt}]`, t.f.typed_config), t.rbac), ...hcmConfig(where, h.f.typed_config) };
    }
  }
  fail(`${where}: filter_chains`, `supported: one chain (HttpConnectionManager or tcp_proxy), or protocol detection (a chain matching application_protocols http/1.1 and h2c, and a default tcp_proxy chain); got ${chains.length} chain(s)`);
}

/**
 * An mTLS listener: its TLS chains, and its plaintext chains converted as any listener is. With no
 * plaintext chain (STRICT) the kind is what the TLS chains run ('http' when one holds the HCM), so
 * that the HCM's fields are the listener's.
 */
function mtlsListener(where: string, l: any): ListenerConfig {
  const parts = mtlsParts(where, l);
  if (parts.plain) return { ...convertListenerShape(parts.plain), mtls: parts.mtls };
  const base = { name: l.name as string, ...socket(`${where}: address`, l.address), mtls: parts.mtls };
  if (parts.hcm) return { ...base, kind: 'http', ...hcmConfig(where, parts.hcm) };
  return { ...base, kind: 'tcp', tcp: parts.mtls.chains[0]!.tcp!, ...hcmDefaults() };
}

function hcmDefaults(): Pick<ListenerConfig, 'path' | 'requestHeadersTimeoutMs' | 'idleTimeoutMs' | 'streamIdleTimeoutMs'> {
  return {
    path: { normalize: false, mergeSlashes: false },
    requestHeadersTimeoutMs: DEFAULT_REQUEST_HEADERS_TIMEOUT_MS,
    idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
    streamIdleTimeoutMs: DEFAULT_STREAM_IDLE_TIMEOUT_MS,
  };
}

function hcmConfig(where: string, tc: any): Pick<ListenerConfig, 'path' | 'requestHeadersTimeoutMs' | 'idleTimeoutMs' | 'streamIdleTimeoutMs' | 'rdsName' | 'inlineRoutes' | 'authz' | 'jwt' | 'accessLog' | 'tracing' | 'noRequestId' | 'peerMetadata'> {
  // The router, and before it the CORS and fault filters (their config comes per route: convert-route.ts).
  // The JWT filter first, then the RBAC filters (after authentication only): the request path runs
  // them in that order before anything else, so one placed after another filter would run earlier
  // than Envoy runs it.
  const authz: AuthzFilterConfig[] = [];
  let jwt: JwtAuthnConfig | undefined;
  let peerMetadata: PeerMetadataConfig | undefined;
  let others = -1;
  // Istio's metadata exchange may come anywhere (its pilot puts it first): the sidecar reads and
  // removes its headers before the other layers run, which is where Istio's first filter does.
  let exchangeAt = -1;
  for (const [i, f] of (tc.http_filters ?? []).entries()) {
    const t = f.typed_config?.['@type'];
    if (isPeerMetadata(f)) {
      if (peerMetadata) fail(`${where}: http_filters[${i}]`, `a second metadata exchange filter (http_filters[${exchangeAt}] is one)`);
      peerMetadata = peerMetadataConfig(`${where}: http_filters[${i}]`, f);
      exchangeAt = i;
      continue;
    }
    if (isHttpRbac(f) || isHttpExtAuthz(f)) {
      if (others >= 0) fail(`${where}: http_filters[${i}]`, `an RBAC or ext_authz filter must come before the other filters but authentication (here after http_filters[${others}]): the sidecar authorizes a request before anything else acts on it`);
      authz.push(isHttpRbac(f) ? httpRbacFilter(where, i, f) : httpExtAuthzFilter(where, i, f));
      continue;
    }
    if (!AUTHN_FILTER_TYPES.has(t)) others = i;
    if (t === TYPE.jwtAuthn) {
      // The sidecar runs the JWT layer before every other (http/forward.ts): so must the config.
      if (i !== (exchangeAt === 0 ? 1 : 0)) fail(`${where}: http_filters[${i}]`, 'the JWT filter must be the first HTTP filter, but for the metadata exchange (the sidecar runs it before any other)');
      jwt = jwtAuthnConfig(`${where}: http_filters[${i}].typed_config`, f.typed_config);
    } else if (t === TYPE.localRateLimit) {
      const keys = Object.keys(f.typed_config).filter((k) => k !== '@type' && k !== 'stat_prefix');
      if (keys.length) fail(`${where}: http_filters[${i}].typed_config.${keys[0]}`, 'the local rate limit filter is configured per route here (typed_per_filter_config); listener-wide buckets are not supported');
    } else if (t === TYPE.fault || t === TYPE.cors) {
      const keys = Object.keys(f.typed_config).filter((k) => k !== '@type');
      if (keys.length) fail(`${where}: http_filters[${i}].typed_config.${keys[0]}`, 'the fault and CORS filters are configured per route here (typed_per_filter_config); listener-wide config is not supported');
    } else if (isIstioStats(f)) {
      // Istio's stats filter: the listener's metrics (listenerStats reads it, for every chain).
    } else if (t !== TYPE.router && !f.is_optional) fail(`${where}: http_filters[${i}]`, `unsupported HTTP filter ${t ?? f.name}`);
  }
  const bool = (v: any): boolean => (v?.value ?? v) === true;
  const positive = (field: string, v: any, dflt: number): number => {
    if (v == null) return dflt;
    const ms = duration(`${where}: ${field}`, v);
    return ms === 0 ? dflt : ms;
  };
  const base = {
    ...(authz.length ? { authz: Object.freeze(authz) } : {}),
    path: { normalize: bool(tc.normalize_path), mergeSlashes: bool(tc.merge_slashes) },
    requestHeadersTimeoutMs: positive('request_headers_timeout', tc.request_headers_timeout, DEFAULT_REQUEST_HEADERS_TIMEOUT_MS),
    idleTimeoutMs: positive('common_http_protocol_options.idle_timeout', tc.common_http_protocol_options?.idle_timeout, DEFAULT_IDLE_TIMEOUT_MS),
    streamIdleTimeoutMs: positive('stream_idle_timeout', tc.stream_idle_timeout, DEFAULT_STREAM_IDLE_TIMEOUT_MS),
    ...(jwt ? { jwt } : {}),
    ...((tc.generate_request_id?.value ?? tc.generate_request_id) === false ? { noRequestId: true } : {}),
    ...(peerMetadata ? { peerMetadata } : {}),
  };
  const accessLog = accessLogs(`${where}: HttpConnectionManager`, tc.access_log);
  if (accessLog) Object.assign(base, { accessLog });
  const rid = { ...requestIdExtension(`${where}: HttpConnectionManager.request_id_extension`, tc.request_id_extension), generateRequestId: !base.noRequestId };
  const tracing = tracingConfig(`${where}: HttpConnectionManager`, tc.tracing, rid);
  if (tracing) Object.assign(base, { tracing });
  if (tc.rds) {
    if (!tc.rds.route_config_name) fail(`${where}: rds.route_config_name`, 'required');
    return { ...base, rdsName: tc.rds.route_config_name };
  }
  if (tc.route_config) return { ...base, inlineRoutes: convertRouteConfig(tc.route_config, `${where}: route_config`) };
  fail(where, 'the HttpConnectionManager needs rds or route_config');
}

/**
 * Envoy's choice of upstream protocol, and what the cluster's HTTP connections do:
 * typed_extension_protocol_options' envoy.extensions.upstreams.http.v3.HttpProtocolOptions
 * (explicit_http_config picks HTTP/1.1 or HTTP/2, use_downstream_protocol_config the client's;
 * auto_config is not supported; common_http_protocol_options and the HTTP/2 options below are
 * applied), or the deprecated Cluster.http2_protocol_options.
 */
function httpProtocolOptions(where: string, c: any): { protocol: UpstreamProtocol; connection: ConnectionOptions; autoSni?: { sni: boolean; san: boolean } } {
  const opts = c.typed_extension_protocol_options ?? {};
  for (const key of Object.keys(opts)) {
    if (key !== HTTP_PROTOCOL_OPTIONS) fail(`${where}: typed_extension_protocol_options`, `unsupported protocol options ${key}`);
  }
  const hpo = opts[HTTP_PROTOCOL_OPTIONS];
  if (!hpo) return { protocol: c.http2_protocol_options ? 'http2' : 'http1', connection: c.http2_protocol_options ? http2Options(`${where}: http2_protocol_options`, c.http2_protocol_options) : {} };
  const w = `${where}: typed_extension_protocol_options["${HTTP_PROTOCOL_OPTIONS}"]`;
  if (hpo['@type'] !== undefined && hpo['@type'] !== TYPE.httpProtocolOptions) fail(w, `expected ${TYPE.httpProtocolOptions}, got ${hpo['@type']}`);
  if (hpo.auto_config) fail(w, 'auto_config is not supported (explicit_http_config and use_downstream_protocol_config are)');
  for (const k of Object.keys(hpo)) {
    if (!HPO_FIELDS.has(k)) fail(`${w}.${k}`, 'not supported (explicit_http_config, use_downstream_protocol_config and common_http_protocol_options are)');
  }
  const connection = commonOptions(`${w}.common_http_protocol_options`, hpo.common_http_protocol_options ?? {});
  const auto = autoSniOf(`${w}.upstream_http_protocol_options`, hpo.upstream_http_protocol_options);
  const withAuto = auto ? { autoSni: auto } : {};
  if (hpo.use_downstream_protocol_config) {
    const d = hpo.use_downstream_protocol_config;
    if (d.http3_protocol_options) fail(`${w}.use_downstream_protocol_config.http3_protocol_options`, 'HTTP/3 upstreams are not supported');
    return { protocol: 'downstream', connection: { ...connection, ...http2Options(`${w}.use_downstream_protocol_config.http2_protocol_options`, d.http2_protocol_options ?? {}) }, ...withAuto };
  }
  const e = hpo.explicit_http_config;
  if (e?.http2_protocol_options) return { protocol: 'http2', connection: { ...connection, ...http2Options(`${w}.explicit_http_config.http2_protocol_options`, e.http2_protocol_options) }, ...withAuto };
  if (e?.http3_protocol_options) fail(`${w}.explicit_http_config`, 'HTTP/3 upstreams are not supported');
  return { protocol: 'http1', connection, ...withAuto };
}

const HPO_FIELDS = new Set(['@type', 'explicit_http_config', 'use_downstream_protocol_config', 'common_http_protocol_options', 'upstream_http_protocol_options']);

/** upstream_http_protocol_options: auto_sni and auto_san_validation (Envoy: the request's host, without its port). */
function autoSniOf(where: string, u: any): { sni: boolean; san: boolean } | undefined {
  if (u == null) return undefined;
  for (const k of Object.keys(u)) if (k !== 'auto_sni' && k !== 'auto_san_validation') fail(`${where}.${k}`, 'not supported (auto_sni and auto_san_validation are)');
  const sni = (u.auto_sni?.value ?? u.auto_sni) === true;
  const san = (u.auto_san_validation?.value ?? u.auto_san_validation) === true;
  return sni || san ? { sni, san } : undefined;
}

/** common_http_protocol_options of upstream connections: idle_timeout, max_requests_per_connection, max_connection_duration. */
function commonOptions(where: string, o: any): ConnectionOptions {
  for (const k of Object.keys(o)) {
    if (!['idle_timeout', 'max_requests_per_connection', 'max_connection_duration'].includes(k)) fail(`${where}.${k}`, 'not supported (idle_timeout, max_requests_per_connection and max_connection_duration are)');
  }
  const out: ConnectionOptions = {};
  if (o.idle_timeout != null) out.idleTimeoutMs = duration(`${where}.idle_timeout`, o.idle_timeout);
  if (o.max_connection_duration != null) {
    const ms = duration(`${where}.max_connection_duration`, o.max_connection_duration);
    if (ms > 0) out.maxConnectionDurationMs = ms; // 0: none, as Envoy
  }
  if (o.max_requests_per_connection != null) {
    const n = Number(o.max_requests_per_connection.value ?? o.max_requests_per_connection);
    if (!Number.isInteger(n) || n < 0) fail(`${where}.max_requests_per_connection`, `must be a whole number, got ${JSON.stringify(o.max_requests_per_connection)}`);
    if (n > 0) out.maxRequestsPerConnection = n; // 0: no limit, as Envoy
  }
  return out;
}

/** http2_protocol_options: max_concurrent_streams and connection_keepalive are applied; the rest is not supported. */
function http2Options(where: string, o: any): ConnectionOptions {
  for (const k of Object.keys(o)) {
    if (k !== 'max_concurrent_streams' && k !== 'connection_keepalive') fail(`${where}.${k}`, 'not supported (max_concurrent_streams and connection_keepalive are)');
  }
  const out: ConnectionOptions = {};
  if (o.max_concurrent_streams != null) {
    const n = Number(o.max_concurrent_streams.value ?? o.max_concurrent_streams);
    if (!Number.isInteger(n) || n < 1 || n > 2147483647) fail(`${where}.max_concurrent_streams`, `must be 1 to 2147483647, got ${JSON.stringify(o.max_concurrent_streams)}`);
    out.maxConcurrentStreams = n;
  }
  const ka = o.connection_keepalive;
  if (ka) {
    const kw = `${where}.connection_keepalive`;
    for (const k of Object.keys(ka)) if (!['interval', 'timeout', 'interval_jitter'].includes(k)) fail(`${kw}.${k}`, 'not supported (interval, timeout and interval_jitter are)');
    const intervalMs = ka.interval == null ? 0 : duration(`${kw}.interval`, ka.interval);
    const timeoutMs = ka.timeout == null ? NaN : duration(`${kw}.timeout`, ka.timeout);
    if (!(timeoutMs >= 1)) fail(`${kw}.timeout`, 'required, at least 1ms');
    const jitter = ka.interval_jitter == null ? 15 : Number(ka.interval_jitter.value ?? ka.interval_jitter);
    if (!(jitter >= 0 && jitter <= 100)) fail(`${kw}.interval_jitter`, 'must be 0-100');
    // An interval of 0 sends no PINGs (Envoy).
    if (intervalMs > 0) out.h2Keepalive = { intervalMs, timeoutMs, jitterPercent: jitter };
  }
  return out;
}

/** upstream_connection_options.tcp_keepalive: keepalive_time is applied; probes and interval cannot be (see below). */
function upstreamConnectionOptions(where: string, u: any): ConnectionOptions {
  for (const k of Object.keys(u)) if (k !== 'tcp_keepalive') fail(`${where}.${k}`, 'not supported (tcp_keepalive is)');
  const ka = u.tcp_keepalive;
  if (!ka) return {};
  const kw = `${where}.tcp_keepalive`;
  for (const k of ['keepalive_probes', 'keepalive_interval']) {
    // Node sets these through libuv only, to its own fixed values (1 s, 10 probes) once a keepalive time is set.
    if (ka[k] != null) fail(`${kw}.${k}`, "not supported: the sidecar's sockets cannot set it (Node's keepalive sets only the time before probes)");
  }
  for (const k of Object.keys(ka)) if (!['keepalive_probes', 'keepalive_interval', 'keepalive_time'].includes(k)) fail(`${kw}.${k}`, 'not supported');
  if (ka.keepalive_time == null) return { tcpKeepalive: {} };
  const timeS = Number(ka.keepalive_time.value ?? ka.keepalive_time);
  if (!Number.isInteger(timeS) || timeS < 0) fail(`${kw}.keepalive_time`, `must be a whole number of seconds, got ${JSON.stringify(ka.keepalive_time)}`);
  return { tcpKeepalive: timeS > 0 ? { timeS } : {} };
}

const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

export function convertCluster(c: any): ClusterConfig {
  const where = `cluster ${c.name ?? '(unnamed)'}`;
  if (!c.name) fail(where, 'name: required');
  const { protocol, connection: http, autoSni } = httpProtocolOptions(where, c);
  const connection = { ...http, ...(c.upstream_connection_options ? upstreamConnectionOptions(`${where}: upstream_connection_options`, c.upstream_connection_options) : {}) };
  const connectTimeoutMs = durationMs(c.connect_timeout) || 10_000;
  const limits = circuitBreakers(where, c.circuit_breakers);
  const type = c.type ?? 'STATIC';
  const lb = LB_POLICIES[c.lb_policy ?? 'ROUND_ROBIN'] ?? fail(`${where}: lb_policy`, `${c.lb_policy} is not supported yet (ROUND_ROBIN, RANDOM, LEAST_REQUEST, RING_HASH, MAGLEV, and CLUSTER_PROVIDED for ORIGINAL_DST, are)`);
  // Envoy's rule: an ORIGINAL_DST cluster's endpoint is given, so its lb_policy is CLUSTER_PROVIDED, and only its.
  if ((type === 'ORIGINAL_DST') !== (lb === 'cluster_provided')) fail(`${where}: lb_policy`, type === 'ORIGINAL_DST' ? 'an ORIGINAL_DST cluster needs CLUSTER_PROVIDED' : 'CLUSTER_PROVIDED is for ORIGINAL_DST clusters');
  const outlier = c.outlier_detection ? outlierDetection(`${where}: outlier_detection`, c.outlier_detection) : undefined;
  const panic = c.common_lb_config?.healthy_panic_threshold;
  const panicPercent = panic == null ? 50 : Number(panic.value ?? panic);
  if (!(panicPercent >= 0 && panicPercent <= 100)) fail(`${where}: common_lb_config.healthy_panic_threshold`, 'must be 0-100');
  for (const k of Object.keys(c.common_lb_config ?? {})) if (k !== 'healthy_panic_threshold' && k !== 'locality_weighted_lb_config') fail(`${where}: common_lb_config.${k}`, 'not supported (healthy_panic_threshold and locality_weighted_lb_config are)');
  const localityWeighted = c.common_lb_config?.locality_weighted_lb_config != null;
  let hashTableSize: number | undefined;
  if (lb === 'ring_hash') hashTableSize = Number(c.ring_hash_lb_config?.minimum_ring_size?.value ?? c.ring_hash_lb_config?.minimum_ring_size ?? 1024);
  if (lb === 'maglev') hashTableSize = Number(c.maglev_lb_config?.table_size?.value ?? c.maglev_lb_config?.table_size ?? 65537);
  if (hashTableSize !== undefined && !(Number.isInteger(hashTableSize) && hashTableSize > 0 && hashTableSize <= 8_388_608)) fail(`${where}: ${lb}_lb_config`, `invalid size ${hashTableSize}`);
  if (lb === 'maglev' && !isPrime(hashTableSize!)) fail(`${where}: maglev_lb_config.table_size`, `must be a prime number, got ${hashTableSize}`);
  const slowStart = slowStartOf(where, c, lb);
  const transport = clusterTransport(where, c);
  const peerExchange = upstreamFilters(where, c.filters);
  const base = { name: c.name, connectTimeoutMs, protocol, limits, lb, panicPercent, localityWeighted, ...transport, ...(autoSni ? { autoSni } : {}), ...(slowStart ? { slowStart } : {}), ...(peerExchange ? { peerExchange } : {}), ...(Object.keys(connection).length ? { connection } : {}), ...(outlier ? { outlier } : {}), ...(hashTableSize ? { hashTableSize } : {}) };
  const internal = internalEndpoint(`${where}: load_assignment`, c.load_assignment);
  if (internal !== undefined) {
    if (type !== 'STATIC') fail(`${where}: type`, 'a cluster whose endpoint is an internal listener must be STATIC');
    return { ...base, type, staticEndpoints: [], internalListener: internal };
  }
  if (type === 'EDS') return { ...base, type: 'EDS', edsName: c.eds_cluster_config?.service_name || c.name };
  if (type === 'STATIC' || type === 'STRICT_DNS' || type === 'LOGICAL_DNS') {
    const staticEndpoints = convertEndpoints(c.load_assignment ?? { cluster_name: c.name }, `${where}: load_assignment`);
    if (type === 'LOGICAL_DNS' && staticEndpoints.length !== 1) fail(`${where}: load_assignment`, `a LOGICAL_DNS cluster has exactly one endpoint, not ${staticEndpoints.length}`);
    return { ...base, type, staticEndpoints };
  }
  if (type === 'ORIGINAL_DST') {
    if (c.load_assignment?.endpoints?.length) fail(`${where}: load_assignment`, 'an ORIGINAL_DST cluster has no endpoints (the request says where it goes)');
    const o = c.original_dst_lb_config ?? {};
    for (const k of Object.keys(o)) if (k !== 'upstream_port_override') fail(`${where}: original_dst_lb_config.${k}`, 'not supported (upstream_port_override is)');
    const port = o.upstream_port_override == null ? undefined : Number(o.upstream_port_override.value ?? o.upstream_port_override);
    if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) fail(`${where}: original_dst_lb_config.upstream_port_override`, `invalid port ${port}`);
    return { ...base, type, ...(port ? { portOverride: port } : {}) };
  }
  fail(`${where}: type`, `${type} clusters are not supported (EDS, STATIC, STRICT_DNS, LOGICAL_DNS and ORIGINAL_DST are)`);
}

/** A cluster's upstream network filters: Istio's TCP metadata exchange, and nothing else. */
function upstreamFilters(where: string, filters: unknown): TcpPeerExchangeConfig | undefined {
  if (filters == null) return undefined;
  if (!Array.isArray(filters)) fail(`${where}: filters`, 'must be a list');
  let out: TcpPeerExchangeConfig | undefined;
  filters.forEach((f: any, i: number) => {
    if (!isTcpPeerExchange(f)) fail(`${where}: filters[${i}]`, `unsupported upstream network filter ${f?.typed_config?.['@type'] ?? f?.name ?? '(none)'} (Istio's metadata exchange, envoy.tcp.metadataexchange.config.MetadataExchange, is supported)`);
    if (out) fail(`${where}: filters[${i}]`, 'a second metadata exchange filter');
    out = tcpPeerExchangeConfig(`${where}: filters[${i}]`, f);
  });
  return out;
}

/** Envoy's slow_start_config, for the ROUND_ROBIN and LEAST_REQUEST policies that have one. */
function slowStartOf(where: string, c: any, lb: ClusterConfig['lb']): SlowStartConfig | undefined {
  const at = lb === 'round_robin' ? 'round_robin_lb_config' : lb === 'least_request' ? 'least_request_lb_config' : undefined;
  for (const k of ['round_robin_lb_config', 'least_request_lb_config']) {
    if (c[k] != null && k !== at) fail(`${where}: ${k}`, `does not go with lb_policy ${c.lb_policy ?? 'ROUND_ROBIN'}`);
  }
  const cfg = at ? c[at] : undefined;
  if (!cfg) return undefined;
  for (const k of Object.keys(cfg)) if (k !== 'slow_start_config') fail(`${where}: ${at}.${k}`, 'not supported (slow_start_config is)');
  const ss = cfg.slow_start_config;
  if (!ss) return undefined;
  const w = `${where}: ${at}.slow_start_config`;
  for (const k of Object.keys(ss)) if (!['slow_start_window', 'aggression', 'min_weight_percent'].includes(k)) fail(`${w}.${k}`, 'not supported');
  const windowMs = durationMs(ss.slow_start_window);
  if (!(windowMs > 0)) fail(`${w}.slow_start_window`, 'must be a positive duration');
  // A RuntimeDouble: Weft has no runtime layer, so its default_value is the value (as in an Envoy whose runtime does not override it).
  const aggression = ss.aggression == null ? 1 : Number(ss.aggression.default_value ?? 1);
  if (!(aggression > 0) || !Number.isFinite(aggression)) fail(`${w}.aggression.default_value`, `must be above 0, got ${JSON.stringify(ss.aggression?.default_value)}`);
  const minWeightPercent = ss.min_weight_percent == null ? 10 : Number(ss.min_weight_percent.value ?? 0);
  if (!(minWeightPercent >= 0 && minWeightPercent <= 100)) fail(`${w}.min_weight_percent`, 'must be 0-100');
  return { windowMs, aggression, minWeightPercent };
}

/** The internal listener a cluster's endpoints name (envoy_internal_address), if they name one: then it must be the only endpoint. */
function internalEndpoint(where: string, cla: any): string | undefined {
  const eps = (cla?.endpoints ?? []).flatMap((loc: any) => loc.lb_endpoints ?? []);
  const at = eps.findIndex((e: any) => e.endpoint?.address?.envoy_internal_address);
  if (at < 0) return undefined;
  if (eps.length !== 1) fail(where, 'a cluster whose endpoint is an internal listener has exactly one endpoint');
  const ia = eps[0].endpoint.address.envoy_internal_address;
  if (!ia.server_listener_name) fail(`${where}: endpoints[0].lb_endpoints[0].endpoint.address.envoy_internal_address.server_listener_name`, 'required');
  return String(ia.server_listener_name);
}

const LB_POLICIES: Record<string, ClusterConfig['lb']> = { ROUND_ROBIN: 'round_robin', RANDOM: 'random', LEAST_REQUEST: 'least_request', RING_HASH: 'ring_hash', MAGLEV: 'maglev', CLUSTER_PROVIDED: 'cluster_provided' };

/** Envoy's own primality test for Maglev table sizes (which Istio's validation copies). */
function isPrime(x: number): boolean {
  if (x !== 0 && x < 4) return true;
  if (x % 2 === 0) return false;
  for (let f = 3; f * f <= x; f += 2) if (x % f === 0) return false;
  return true;
}

const OUTLIER_FIELDS = new Set([
  'consecutive_5xx', 'enforcing_consecutive_5xx', 'consecutive_gateway_failure', 'enforcing_consecutive_gateway_failure',
  'interval', 'base_ejection_time', 'max_ejection_percent', 'enforcing_success_rate', 'enforcing_failure_percentage', 'enforcing_failure_percentage_local_origin',
  'split_external_local_origin_errors', 'consecutive_local_origin_failure', 'enforcing_consecutive_local_origin_failure', 'enforcing_local_origin_success_rate',
]);

/** Envoy's outlier_detection, the consecutive-error detectors; success-rate and failure-percentage ones must be off. */
function outlierDetection(where: string, o: any): OutlierConfig {
  for (const k of Object.keys(o)) if (!OUTLIER_FIELDS.has(k)) fail(`${where}.${k}`, 'not supported (the consecutive 5xx and gateway-failure detectors are)');
  const num = (v: any, dflt: number) => (v == null ? dflt : Number(v.value ?? v));
  for (const k of ['enforcing_success_rate', 'enforcing_failure_percentage', 'enforcing_failure_percentage_local_origin']) {
    // Envoy enforces success rate by default, but never without enough traffic stats configured; Weft has no such detector.
    if (k !== 'enforcing_success_rate' && num(o[k], 0) !== 0) fail(`${where}.${k}`, 'must be 0: that detector is not supported');
  }
  const consecutive5xx = num(o.enforcing_consecutive_5xx, 100) > 0 ? num(o.consecutive_5xx, 5) : 0;
  // Envoy does not enforce the gateway-failure detector unless told to.
  const consecutiveGateway = num(o.enforcing_consecutive_gateway_failure, 0) > 0 ? num(o.consecutive_gateway_failure, 5) : 0;
  const intervalMs = o.interval == null ? 10_000 : durationMs(o.interval);
  const baseEjectionMs = o.base_ejection_time == null ? 30_000 : durationMs(o.base_ejection_time);
  const maxEjectionPercent = num(o.max_ejection_percent, 10);
  if (!(intervalMs > 0) || !(baseEjectionMs > 0)) fail(where, 'interval and base_ejection_time must be positive durations');
  if (!(maxEjectionPercent >= 0 && maxEjectionPercent <= 100)) fail(`${where}.max_ejection_percent`, 'must be 0-100');
  const splitLocalOrigin = (o.split_external_local_origin_errors?.value ?? o.split_external_local_origin_errors) === true;
  // Envoy's defaults: 5 local-origin failures in a row, enforced.
  const consecutiveLocalOrigin = splitLocalOrigin && num(o.enforcing_consecutive_local_origin_failure, 100) > 0 ? num(o.consecutive_local_origin_failure, 5) : 0;
  return { consecutive5xx, consecutiveGateway, intervalMs, baseEjectionMs, maxEjectionPercent, ...(splitLocalOrigin ? { splitLocalOrigin, consecutiveLocalOrigin } : {}) };
}

/**
 * Envoy's circuit_breakers.thresholds, DEFAULT priority: max_connections, max_pending_requests,
 * max_requests and max_retries, each for the whole cluster (upstream/resources.ts); past them a
 * request gets 503 overflow naming the limit, and a retry is not made. Fields the sidecar cannot
 * enforce are refused, not ignored.
 */
function circuitBreakers(where: string, cb: any): ClusterConfig['limits'] {
  const limits: ClusterConfig['limits'] = {};
  for (const [i, t] of (cb?.thresholds ?? []).entries()) {
    const at = `${where}: circuit_breakers.thresholds[${i}]`;
    if ((t.priority ?? 'DEFAULT') !== 'DEFAULT') fail(`${at}.priority`, `${t.priority} is not supported (only DEFAULT: the sidecar has no request priorities)`);
    for (const k of Object.keys(t)) {
      if (!['priority', 'retry_budget', ...Object.keys(THRESHOLDS)].includes(k)) fail(`${at}.${k}`, 'not supported (max_connections, max_pending_requests, max_requests, max_retries and retry_budget are)');
    }
    if (t.retry_budget != null) {
      const rb = t.retry_budget;
      for (const k of Object.keys(rb)) if (k !== 'budget_percent' && k !== 'min_retry_concurrency') fail(`${at}.retry_budget.${k}`, 'not supported');
      const percent = rb.budget_percent == null ? 20 : Number(rb.budget_percent.value ?? rb.budget_percent);
      const minConcurrency = rb.min_retry_concurrency == null ? 3 : Number(rb.min_retry_concurrency.value ?? rb.min_retry_concurrency);
      if (!(percent >= 0 && percent <= 100)) fail(`${at}.retry_budget.budget_percent`, `must be 0-100, got ${JSON.stringify(rb.budget_percent)}`);
      if (!Number.isInteger(minConcurrency) || minConcurrency < 0) fail(`${at}.retry_budget.min_retry_concurrency`, `must be a whole number, got ${JSON.stringify(rb.min_retry_concurrency)}`);
      limits.retryBudget = { percent, minConcurrency };
    }
    for (const [k, key] of Object.entries(THRESHOLDS)) {
      const v = t[k];
      if (v == null) continue;
      const n = Number(v?.value ?? v);
      // Istio sends 2^32-1 for "no limit"; max_retries may be 0 (no retries at all).
      if (!Number.isInteger(n) || n < (k === 'max_retries' ? 0 : 1)) fail(`${at}.${k}`, `must be a whole number of at least ${k === 'max_retries' ? 0 : 1}, got ${JSON.stringify(v)}`);
      limits[key] = n;
    }
  }
  return limits;
}

const THRESHOLDS = { max_connections: 'maxConnections', max_pending_requests: 'maxPending', max_requests: 'maxRequests', max_retries: 'maxRetries' } as const;

export function convertEndpoints(cla: any, whereOuter?: string): Endpoint[] {
  const where = whereOuter ?? `endpoints ${cla.cluster_name ?? '(unnamed)'}`;
  const out: Endpoint[] = [];
  (cla.endpoints ?? []).forEach((loc: any, i: number) => {
    const priority = Number(loc.priority ?? 0);
    if (!Number.isInteger(priority) || priority < 0 || priority > 127) fail(`${where}: endpoints[${i}].priority`, `must be a whole number from 0 to 127, got ${JSON.stringify(loc.priority)}`);
    const lw = loc.load_balancing_weight == null ? 1 : Number(loc.load_balancing_weight.value ?? loc.load_balancing_weight);
    if (!Number.isInteger(lw) || lw < 1 || lw > 0xffffffff) fail(`${where}: endpoints[${i}].load_balancing_weight`, `must be a whole number from 1 to 4294967295, got ${JSON.stringify(loc.load_balancing_weight)}`);
    let sum = 0;
    (loc.lb_endpoints ?? []).forEach((e: any, j: number) => {
      const { address, port } = socket(`${where}: endpoints[${i}].lb_endpoints[${j}].endpoint.address`, e.endpoint?.address);
      if (port === 0) fail(`${where}: endpoints[${i}].lb_endpoints[${j}]`, 'port 0 is not a valid endpoint');
      const hs = e.health_status ?? 'UNKNOWN';
      const weight = e.load_balancing_weight == null ? 1 : Number(e.load_balancing_weight.value ?? e.load_balancing_weight);
      if (!Number.isInteger(weight) || weight < 1 || weight > 0xffffffff) fail(`${where}: endpoints[${i}].lb_endpoints[${j}].load_balancing_weight`, `must be a whole number of at least 1, got ${JSON.stringify(e.load_balancing_weight)}`);
      sum += weight;
      if (sum > 0xffffffff) fail(`${where}: endpoints[${i}]`, "the weights of the locality's endpoints add up to more than 4294967295 (Envoy's limit)");
      const socketMatch = endpointSocketMatch(e.metadata);
      out.push({ address, port, healthy: hs === 'HEALTHY' || hs === 'UNKNOWN', priority, group: i, localityWeight: lw, ...(weight !== 1 ? { weight } : {}), ...(socketMatch ? { socketMatch } : {}) });
    });
  });
  return out;
}
