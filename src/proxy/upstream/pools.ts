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

type PoolCluster = Pick<ClusterConfig, 'connectTimeoutMs' | 'protocol' | 'limits'> & { type?: ClusterConfig['type'] };

/**
 * Pools for destinations that requests name (ORIGINAL_DST clusters: the hosts an app reaches
 * through ALLOW_ANY, or a ServiceEntry with resolution NONE) are kept apart: past this many, the
 * least recently used one with nothing in flight is closed for each new one, so an app that calls
 * many hosts does not grow the sidecar without bound (only as far as it has requests in flight).
 */
export const MAX_DYNAMIC_POOLS = 128;

export class Pools {
  private readonly pools = new Map<string, { addr: string; pool: UpstreamPool }>();
  /** ORIGINAL_DST destinations' pools, least recently used first; config updates leave them be. */
  private readonly dynamic = new Map<string, UpstreamPool>();
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
    if (cluster.type === 'ORIGINAL_DST') return this.forDestination(ep, cluster);
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
    const opts = this.optionsFor(cluster);
    if (!p) {
      p = { addr, pool: this.newPool(address, port, cluster, opts) };
      this.pools.set(key, p);
    } else p.pool.setLimits?.(opts);
    return p.pool;
  }

  /** An ORIGINAL_DST destination's pool: reused while among the MAX_DYNAMIC_POOLS most recent, else made afresh. */
  private forDestination(ep: Endpoint, cluster: PoolCluster): UpstreamPool {
    const key = `${cluster.protocol}|${ep.address}:${ep.port}`;
    const opts = this.optionsFor(cluster);
    let pool = this.dynamic.get(key);
    if (pool) {
      this.dynamic.delete(key); // to the most recent end
      pool.setLimits?.(opts);
    } else {
      pool = this.newPool(ep.address, ep.port, cluster, opts);
      if (this.dynamic.size >= MAX_DYNAMIC_POOLS) this.evictIdle();
    }
    this.dynamic.set(key, pool);
    return pool;
  }

  /** Closes the least recently used destination pool that has nothing in flight; while every one is busy, none. */
  private evictIdle(): void {
    for (const [key, pool] of this.dynamic) {
      const s = pool.stats();
      if (s.busy || s.pending || s.connecting || s.streams) continue;
      this.dynamic.delete(key);
      pool.close();
      return;
    }
  }

  /** The cluster's circuit breakers where it sets them, else the sidecar's defaults (limits.ts). */
  private optionsFor(cluster: PoolCluster) {
    return {
      connectTimeoutMs: cluster.connectTimeoutMs,
      maxConnections: cluster.limits.maxConnections ?? this.limits.maxConnections,
      maxPending: cluster.limits.maxPending ?? this.limits.maxPending,
      maxStreamsPerSession: this.limits.maxStreamsPerSession,
    };
  }

  private newPool(address: string, port: number, cluster: PoolCluster, opts: ReturnType<Pools['optionsFor']>): UpstreamPool {
    return cluster.protocol === 'http2' ? new Http2Pool(address, port, opts) : new EndpointPool(address, port, opts);
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
    return [...[...this.pools.values()].map((p) => p.pool), ...this.dynamic.values()].map((p) => p.stats());
  }

  async close(): Promise<void> {
    for (const p of this.pools.values()) p.pool.destroy();
    for (const p of this.dynamic.values()) p.destroy();
    this.pools.clear();
    this.dynamic.clear();
  }
}
