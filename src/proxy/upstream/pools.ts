// Connection pools, one per endpoint address and protocol: keep-alive HTTP/1.1 connections
// (http1/client.ts) or multiplexed HTTP/2 sessions (http2/client.ts), as the cluster's protocol
// options say. Pools outlive config snapshots: an endpoint that stays across updates keeps its
// warm connections.
import { EndpointPool, type PoolStats } from '../http1/client.ts';
import { Http2Pool } from '../http2/client.ts';
import type { ResponseHandler, UpstreamCall, UpstreamRequest } from '../http/types.ts';
import type { ClusterConfig } from '../xds-client/convert.ts';
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

export class Pools {
  private readonly pools = new Map<string, { addr: string; pool: UpstreamPool }>();
  private readonly limits: UpstreamLimits;

  constructor(limits: UpstreamLimits = upstreamLimits()) {
    this.limits = limits;
  }

  /** The pool for one endpoint of a cluster, made on first use; its limits follow the cluster's. */
  get(address: string, port: number, cluster: Pick<ClusterConfig, 'connectTimeoutMs' | 'protocol' | 'limits'>): UpstreamPool {
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
