// Connection pools, one per endpoint address and protocol: keep-alive HTTP/1.1 connections
// (http1/client.ts) or multiplexed HTTP/2 sessions (http2/client.ts), as the cluster's protocol
// options say. Pools outlive config snapshots: an endpoint that stays across updates keeps its
// warm connections.
import { EndpointPool, type PoolStats } from '../http1/client.ts';
import { Http2Pool } from '../http2/client.ts';
import type { ResponseHandler, UpstreamCall, UpstreamRequest } from '../http/types.ts';
import type { ClusterConfig, Endpoint } from '../xds-client/convert.ts';
import { type UpstreamLimits, upstreamLimits } from '../limits.ts';

/** What the request path needs of a pool, whatever the protocol. */
export interface UpstreamPool {
  readonly name: string;
  request(req: UpstreamRequest, handler: ResponseHandler): UpstreamCall;
  stats(): PoolStats;
  /** The cluster's limits changed (a new config): applies to requests from now on. */
  setLimits?(opts: { connectTimeoutMs: number; maxConnections: number; maxPending: number; maxStreamsPerSession: number }): void;
  close(): void;
  destroy(): void;
}

type PoolCluster = Pick<ClusterConfig, 'connectTimeoutMs' | 'protocol' | 'limits'>;

export class Pools {
  private readonly pools = new Map<string, { addr: string; pool: UpstreamPool }>();
  private readonly limits: UpstreamLimits;
  /**
   * The pool each (cluster, endpoint) of a config snapshot got, so that a request finds it without
   * building key strings or applying the cluster's limits again. Config objects are immutable (an
   * update makes new ones); a retain() may close pools, so entries of an earlier generation are
   * looked up afresh.
   */
  private readonly byEndpoint = new WeakMap<PoolCluster, WeakMap<Endpoint, { pool: UpstreamPool; generation: number }>>();
  private generation = 0;

  constructor(limits: UpstreamLimits = upstreamLimits()) {
    this.limits = limits;
  }

  /** get() for an endpoint object of the current config, remembered per (cluster, endpoint). */
  forEndpoint(ep: Endpoint, cluster: PoolCluster): UpstreamPool {
    let m = this.byEndpoint.get(cluster);
    const hit = m?.get(ep);
    if (hit && hit.generation === this.generation) return hit.pool;
    const pool = this.get(ep.address, ep.port, cluster);
    if (!m) this.byEndpoint.set(cluster, (m = new WeakMap()));
    m.set(ep, { pool, generation: this.generation });
    return pool;
  }

  /** The pool for one endpoint of a cluster, made on first use; its limits follow the cluster's. */
  get(address: string, port: number, cluster: PoolCluster): UpstreamPool {
    const addr = `${address}:${port}`;
    const key = `${cluster.protocol}|${addr}`;
    let p = this.pools.get(key);
    // The cluster's circuit breakers where it sets them, else the sidecar's defaults (limits.ts).
    const opts = {
      connectTimeoutMs: cluster.connectTimeoutMs,
      maxConnections: cluster.limits.maxConnections ?? this.limits.maxConnections,
      maxPending: cluster.limits.maxPending ?? this.limits.maxPending,
      maxStreamsPerSession: this.limits.maxStreamsPerSession,
    };
    if (!p) {
      p = { addr, pool: cluster.protocol === 'http2' ? new Http2Pool(address, port, opts) : new EndpointPool(address, port, opts) };
      this.pools.set(key, p);
    } else p.pool.setLimits?.(opts);
    return p.pool;
  }

  /** Closes pools for endpoints no longer in the config; their requests in flight finish first. */
  retain(keep: Set<string>): void {
    this.generation++;
    for (const [key, p] of this.pools) {
      if (keep.has(p.addr)) continue;
      this.pools.delete(key);
      p.pool.close();
    }
  }

  stats(): PoolStats[] {
    return [...this.pools.values()].map((p) => p.pool.stats());
  }

  async close(): Promise<void> {
    for (const p of this.pools.values()) p.pool.destroy();
    this.pools.clear();
  }
}
