// PURE: the opaque-TCP parts of a listener -> runtime config: tcp_proxy filters, and the filter
// chains a tls_inspector listener picks by server name (Envoy's filter_chain_match.server_names).
import type { AuthzFilterConfig } from './convert-authz.ts';
import type { TcpPeerExchangeConfig } from './convert-peer-metadata.ts';
import { TYPE } from '../../xds/types.ts';
import { pickTarget } from '../http/router.ts';
import { duration, fail } from './convert-util.ts';
import { type AccessLogConfig, accessLogs } from './convert-accesslog.ts';

export interface TcpProxyConfig {
  /** The cluster (weight 1), or weighted_clusters: a connection goes to one, by weight. */
  clusters: readonly { name: string; weight: number }[];
  totalWeight: number;
  /** tcp_proxy idle_timeout: 1 h when not set (Envoy's default); 0 when set to 0s (none). */
  idleTimeoutMs: number;
  /** max_downstream_connection_duration: a connection is closed this long after it was joined, whatever its traffic. */
  maxDurationMs?: number;
  /** hash_policy source_ip: a ring or Maglev cluster hashes the client's address. */
  hashSource?: boolean;
  /** The network RBAC filters before the tcp_proxy (AuthorizationPolicy), in order: tcp/authz.ts. */
  rbac?: readonly AuthzFilterConfig[];
  /** The tcp_proxy's access_log: a line per connection (telemetry/access-log.ts). */
  accessLog?: readonly AccessLogConfig[];
  /** The listener it is on (set once the listener is converted): telemetry's listener. */
  listener?: string;
  /** Istio's TCP metadata exchange before it: run where the chain's mutual TLS negotiated its protocol (tcp/peer-exchange.ts). */
  peerExchange?: TcpPeerExchangeConfig;
}

/** A filter chain of a tls_inspector listener: its name (for logs) and its tcp_proxy. */
export interface SniChain {
  name: string;
  tcp: TcpProxyConfig;
}

/**
 * A listener that routes by the server name of a connection's ClientHello (tcp/sni.ts reads it).
 * Names are lower case; a wildcard "*.example.com" is kept as ".example.com", as Envoy keeps it.
 */
export interface SniConfig {
  exact: ReadonlyMap<string, SniChain>;
  wildcard: ReadonlyMap<string, SniChain>;
  /** A chain without server_names, else default_filter_chain: where the rest goes. None: closed. */
  fallback?: SniChain;
  /** listener_filters_timeout (Envoy: 15 s when unset; 0: none). */
  timeoutMs: number;
  /** continue_on_listener_filters_timeout: at the timeout, route as having no server name (else close). */
  continueOnTimeout: boolean;
}

export const DEFAULT_TCP_IDLE_TIMEOUT_MS = 3_600_000;
/** Envoy's listener_filters_timeout when unset. */
export const DEFAULT_LISTENER_FILTERS_TIMEOUT_MS = 15_000;

export function tcpProxy(where: string, tc: any): TcpProxyConfig {
  let clusters: { name: string; weight: number }[];
  if (tc.cluster) clusters = [{ name: tc.cluster, weight: 1 }];
  else if (tc.weighted_clusters) {
    clusters = (tc.weighted_clusters.clusters ?? []).map((c: any, i: number) => {
      const cw = `${where}: tcp_proxy.weighted_clusters.clusters[${i}]`;
      for (const k of Object.keys(c)) if (k !== 'name' && k !== 'weight') fail(`${cw}.${k}`, 'not supported');
      if (!c.name) fail(`${cw}.name`, 'required');
      const weight = Number(c.weight?.value ?? c.weight ?? 0);
      if (!Number.isInteger(weight) || weight < 1) fail(`${cw}.weight`, `must be a whole number of at least 1, got ${JSON.stringify(c.weight)}`);
      return { name: String(c.name), weight };
    });
    if (!clusters.length) fail(`${where}: tcp_proxy.weighted_clusters.clusters`, 'at least one cluster is required');
  } else fail(`${where}: tcp_proxy.cluster`, 'required (or weighted_clusters)');
  let idleTimeoutMs = DEFAULT_TCP_IDLE_TIMEOUT_MS;
  if (tc.idle_timeout != null) {
    idleTimeoutMs = duration(`${where}: tcp_proxy.idle_timeout`, tc.idle_timeout);
  }
  let maxDurationMs: number | undefined;
  if (tc.max_downstream_connection_duration != null) {
    maxDurationMs = duration(`${where}: tcp_proxy.max_downstream_connection_duration`, tc.max_downstream_connection_duration);
  }
  const hashes: any[] = tc.hash_policy ?? [];
  for (const [i, h] of hashes.entries()) if (!h?.source_ip) fail(`${where}: tcp_proxy.hash_policy[${i}]`, 'only source_ip is supported');
  const accessLog = accessLogs(`${where}: tcp_proxy`, tc.access_log);
  return { clusters, totalWeight: clusters.reduce((s, c) => s + c.weight, 0), idleTimeoutMs, ...(maxDurationMs ? { maxDurationMs } : {}), ...(hashes.length ? { hashSource: true } : {}), ...(accessLog ? { accessLog } : {}) };
}

/** The cluster a new connection goes to: by weight, `rand` in [0, 1). */
export function pickTcpCluster(t: TcpProxyConfig, rand: number): string {
  return pickTarget(t, rand).name;
}

/** The one tcp_proxy of a chain (what a tls_inspector listener's chains hold). */
function chainTcp(where: string, chain: any): TcpProxyConfig {
  const filters = chain?.filters ?? [];
  const types = filters.map((f: any) => f.typed_config?.['@type'] ?? f.name);
  if (filters.length !== 1 || types[0] !== TYPE.tcpProxy) fail(`${where}.filters`, `a chain of a tls_inspector listener must hold exactly one tcp_proxy (got ${types.join(', ') || 'none'})`);
  return tcpProxy(where, filters[0].typed_config);
}

/**
 * The filter chains of a listener with the tls_inspector: each matching only server_names (exact,
 * or "*." and a domain) and holding one tcp_proxy, at most one without a match, and a
 * default_filter_chain. As in Envoy, the most specific name wins whatever the order, a name may
 * be in one chain only, and "*" is no server name (leave server_names out instead).
 */
export function sniChains(where: string, l: any): SniConfig {
  for (const [i, f] of (l.listener_filters ?? []).entries()) {
    const tc = f.typed_config ?? {};
    if (tc['@type'] !== TYPE.tlsInspector) fail(`${where}: listener_filters[${i}]`, `unsupported listener filter ${tc['@type'] ?? f.name} beside the tls_inspector`);
    // initial_read_buffer_size only sizes Envoy's first read; it changes nothing that is matched.
    if ((tc.enable_ja3_fingerprinting?.value ?? tc.enable_ja3_fingerprinting) === true) fail(`${where}: listener_filters[${i}].typed_config.enable_ja3_fingerprinting`, 'not supported');
  }
  const exact = new Map<string, SniChain>();
  const wildcard = new Map<string, SniChain>();
  let fallback: SniChain | undefined;
  (l.filter_chains ?? []).forEach((c: any, i: number) => {
    const cw = `${where}: filter_chains[${i}]`;
    const m = c.filter_chain_match ?? {};
    const other = Object.keys(m).filter((k) => k !== 'server_names');
    if (other.length) fail(`${cw}.filter_chain_match`, `only server_names is supported beside the tls_inspector (got ${other.join(', ')})`);
    const chain = { name: String(c.name ?? `filter_chains[${i}]`), tcp: chainTcp(cw, c) };
    const names: string[] = m.server_names ?? [];
    if (!names.length) {
      if (fallback) fail(cw, 'a second chain without server_names: they would match the same connections');
      fallback = chain;
    }
    names.forEach((raw, j) => {
      const n = String(raw).toLowerCase();
      const nw = `${cw}.filter_chain_match.server_names[${j}]`;
      if (n === '*') fail(nw, '"*" is not supported: leave server_names out to match every name');
      const wild = n.startsWith('*.');
      if (n === '' || n.slice(wild ? 2 : 0).includes('*') || (!wild && n.startsWith('*'))) fail(nw, `"${raw}" is no server name (a wildcard is "*." then a domain)`);
      const [map, key] = wild ? [wildcard, n.slice(1)] : [exact, n];
      if (map.has(key)) fail(nw, `"${raw}" is matched by another chain too (${map.get(key)!.name}): each server name may be in one chain only`);
      map.set(key, chain);
    });
  });
  if (l.default_filter_chain) {
    const d = l.default_filter_chain;
    if (Object.keys(d.filter_chain_match ?? {}).length) fail(`${where}: default_filter_chain.filter_chain_match`, 'must be empty');
    // A chain without a match already takes every connection no name matches: Envoy uses the default only when none does.
    fallback ??= { name: String(d.name ?? 'default_filter_chain'), tcp: chainTcp(`${where}: default_filter_chain`, d) };
  }
  let timeoutMs = DEFAULT_LISTENER_FILTERS_TIMEOUT_MS;
  if (l.listener_filters_timeout != null) {
    timeoutMs = duration(`${where}: listener_filters_timeout`, l.listener_filters_timeout);
  }
  return { exact, wildcard, ...(fallback ? { fallback } : {}), timeoutMs, continueOnTimeout: l.continue_on_listener_filters_timeout === true };
}

/** Envoy's match: the exact name, then ".example.com", then ".com" (for www.example.com), then the fallback. */
export function chainFor(sni: SniConfig, serverName: string | undefined): SniChain | undefined {
  if (serverName) {
    const hit = sni.exact.get(serverName);
    if (hit) return hit;
    for (let pos = serverName.indexOf('.', 1); pos >= 0 && pos < serverName.length - 1; pos = serverName.indexOf('.', pos + 1)) {
      const w = sni.wildcard.get(serverName.slice(pos));
      if (w) return w;
    }
  }
  return sni.fallback;
}
