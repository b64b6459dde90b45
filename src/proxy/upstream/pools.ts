// Connection pools, one per endpoint address and protocol: keep-alive HTTP/1.1 connections
// (http1/client.ts) or multiplexed HTTP/2 sessions (http2/client.ts), as the cluster's protocol
// options say. Pools outlive config snapshots: an endpoint that stays across updates keeps its
// warm connections.
import { EndpointPool, type PoolStats } from '../http1/client.ts';
import { Http2Pool } from '../http2/client.ts';
import type { ResponseHandler, UpstreamCall, UpstreamRequest } from '../http/types.ts';
import type { UpstreamProtocol } from '../xds-client/convert.ts';
import { type UpstreamLimits, upstreamLimits } from '../limits.ts';

/** What the request path needs of a pool, whatever the protocol. */
export interface UpstreamPool {
  readonly name: string;
  request(req: UpstreamRequest, handler: ResponseHandler): UpstreamCall;
  stats(): PoolStats;
  close(): void;
  destroy(): void;
}

export class Pools {
  private readonly pools = new Map<string, { addr: string; pool: UpstreamPool }>();
  private readonly limits: UpstreamLimits;

  constructor(limits: UpstreamLimits = upstreamLimits()) {
    this.limits = limits;
  }

  get(address: string, port: number, connectTimeoutMs: number, protocol: UpstreamProtocol = 'http1'): UpstreamPool {
    const addr = `${address}:${port}`;
    const key = `${protocol}|${addr}`;
    let p = this.pools.get(key);
    if (!p) {
      p = {
        addr,
        pool:
          protocol === 'http2'
            ? new Http2Pool(address, port, { connectTimeoutMs, ...this.limits })
            : new EndpointPool(address, port, { connectTimeoutMs, maxConnections: this.limits.maxConnections, maxPending: this.limits.maxPending }),
      };
      this.pools.set(key, p);
    }
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
