// Endpoint choice, shared by HTTP (http/forward.ts) and opaque TCP (tcp/tcp.ts): round robin over
// a cluster's healthy endpoints, one counter per cluster, so that a retry takes the next one.
import type { RuntimeConfig } from '../config.ts';
import { ProxyError } from '../errors.ts';
import type { ClusterConfig, Endpoint } from '../xds-client/convert.ts';
import { TIER, type Tiers, tiersOf } from './priority.ts';

/** tcp_proxy: a connection that could not be made is tried on another endpoint, up to twice. (HTTP retries follow the route's retry policy: http/retry.ts.) */
export const CONNECT_RETRIES = 2;

/**
 * The cluster's endpoints that can take traffic; a ProxyError naming the cluster if there is none.
 * For an ORIGINAL_DST cluster, the one the request names: `authority` (its Host, or its CONNECT
 * target), on `defaultPort` when it gives none (0: it must give one), or on the cluster's
 * upstream_port_override.
 */
export function healthyEndpoints(cfg: RuntimeConfig, clusterName: string, cluster: ClusterConfig, authority?: string, defaultPort = 80): Endpoint[] {
  return clusterEndpoints(cfg, clusterName, cluster, authority, defaultPort).healthy;
}

/** healthyEndpoints, with the endpoints' priorities and localities where there are several (upstream/priority.ts). */
export function clusterEndpoints(cfg: RuntimeConfig, clusterName: string, cluster: ClusterConfig, authority?: string, defaultPort = 80): ClusterEndpoints {
  if (cluster.type === 'ORIGINAL_DST') return { healthy: [originalDestination(cfg, clusterName, cluster, authority, defaultPort)], tiers: null, weighted: false };
  if (cluster.internalListener !== undefined) {
    throw new ProxyError('no_healthy_endpoint', `cluster ${clusterName} leads to internal listener ${cluster.internalListener}, which only CONNECT tunnels reach in Weft's sidecar`, clusterName);
  }
  const all = cluster.staticEndpoints ?? cfg.endpoints.get(cluster.edsName!) ?? EMPTY;
  // Endpoint lists are immutable (a config update makes new ones), so the healthy ones (and the
  // priorities) are worked out once per list, not per request.
  let entry = byList.get(all);
  if (!entry) byList.set(all, (entry = { healthy: all.filter((e) => e.healthy), tiers: tiersOf(all, clusterName), weighted: all.some((e) => e.weight !== undefined && e.weight !== 1) }));
  if (entry.healthy.length === 0) throw new ProxyError('no_healthy_endpoint', `no healthy endpoint in cluster ${clusterName}`, clusterName);
  return entry;
}

export interface ClusterEndpoints {
  healthy: Endpoint[];
  /** null: one priority and one locality, the common case. */
  tiers: Tiers | null;
  /** Some endpoint has a load_balancing_weight other than 1. */
  weighted: boolean;
}

const EMPTY: readonly Endpoint[] = [];
const byList = new WeakMap<readonly Endpoint[], ClusterEndpoints>();

/** Forgets the round-robin counters of clusters a config no longer has (their priorities' and localities' too). */
export function pruneRoundRobin(rr: Map<string, number>, clusters: ReadonlyMap<string, unknown>): void {
  for (const key of rr.keys()) {
    const at = key.indexOf(TIER);
    if (!clusters.has(at < 0 ? key : key.slice(0, at))) rr.delete(key);
  }
}

/** The next endpoint of the cluster, round robin. */
export function nextEndpoint(rr: Map<string, number>, clusterName: string, healthy: readonly Endpoint[]): Endpoint {
  const i = rr.get(clusterName) ?? 0;
  rr.set(clusterName, (i + 1) % 1_000_000_007);
  return healthy[i % healthy.length];
}

const LOOPBACK = /^(?:localhost|127(?:\.\d{1,3}){3}|::1|0\.0\.0\.0|::|\[::1\]|\[::\])$/i;

/**
 * Where an ORIGINAL_DST cluster's request goes: the host and port it names. Not one of this
 * sidecar's own listeners by a name that says so (127.0.0.1:<the outbound port>): a clear answer
 * at once. Other ways back to the sidecar are caught by its Via entry (http/via.ts).
 */
function originalDestination(cfg: RuntimeConfig, clusterName: string, cluster: ClusterConfig, authority: string | undefined, defaultPort: number): Endpoint {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(authority ?? '');
  const port = cluster.portOverride ?? (m?.[2] === undefined ? defaultPort : Number(m[2]));
  if (!m || !(port > 0 && port < 65536)) throw new ProxyError('bad_request', `cluster ${clusterName} sends a request where its authority says, and "${authority ?? ''}" is no host and port`, clusterName);
  const host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
  for (const l of cfg.listeners.values()) {
    if (l.port === port && (LOOPBACK.test(m[1]) || host === l.address)) {
      throw new ProxyError('bad_request', `cluster ${clusterName} would send the request to ${host}:${port}, this sidecar's own listener ${l.name}: it would loop`, clusterName);
    }
  }
  return { address: host, port, healthy: true };
}
