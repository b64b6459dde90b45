// Endpoint choice, shared by HTTP (http/forward.ts) and opaque TCP (tcp/tcp.ts): round robin over
// a cluster's healthy endpoints, one counter per cluster, so that a retry takes the next one.
import type { RuntimeConfig } from '../config.ts';
import { ProxyError } from '../errors.ts';
import type { ClusterConfig, Endpoint } from '../xds-client/convert.ts';

/** tcp_proxy: a connection that could not be made is tried on another endpoint, up to twice. (HTTP retries follow the route's retry policy: http/retry.ts.) */
export const CONNECT_RETRIES = 2;

/** The cluster's endpoints that can take traffic; a ProxyError naming the cluster if there is none. */
export function healthyEndpoints(cfg: RuntimeConfig, clusterName: string, cluster: ClusterConfig): Endpoint[] {
  const all = cluster.staticEndpoints ?? cfg.endpoints.get(cluster.edsName!) ?? EMPTY;
  // Endpoint lists are immutable (a config update makes new ones), so the healthy ones are
  // worked out once per list, not per request.
  let healthy = healthyOf.get(all);
  if (!healthy) healthyOf.set(all, (healthy = all.filter((e) => e.healthy)));
  if (healthy.length === 0) throw new ProxyError('no_healthy_endpoint', `no healthy endpoint in cluster ${clusterName}`, clusterName);
  return healthy;
}

const EMPTY: readonly Endpoint[] = [];
const healthyOf = new WeakMap<readonly Endpoint[], Endpoint[]>();

/** The next endpoint of the cluster, round robin. */
export function nextEndpoint(rr: Map<string, number>, clusterName: string, healthy: readonly Endpoint[]): Endpoint {
  const i = rr.get(clusterName) ?? 0;
  rr.set(clusterName, (i + 1) % 1_000_000_007);
  return healthy[i % healthy.length];
}
