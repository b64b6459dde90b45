// Keep-alive connection pools, one per endpoint address (http1/client.ts). Pools outlive config
// snapshots: an endpoint that stays across updates keeps its warm connections.
import { EndpointPool, type PoolStats } from '../http1/client.ts';

export class Pools {
  private readonly pools = new Map<string, EndpointPool>();

  get(address: string, port: number, connectTimeoutMs: number): EndpointPool {
    const key = `${address}:${port}`;
    let p = this.pools.get(key);
    if (!p) {
      p = new EndpointPool(address, port, { connectTimeoutMs });
      this.pools.set(key, p);
    }
    return p;
  }

  /** Closes pools for endpoints no longer in the config; their requests in flight finish first. */
  retain(keep: Set<string>): void {
    for (const [key, p] of this.pools) {
      if (keep.has(key)) continue;
      this.pools.delete(key);
      p.close();
    }
  }

  stats(): PoolStats[] {
    return [...this.pools.values()].map((p) => p.stats());
  }

  async close(): Promise<void> {
    for (const p of this.pools.values()) p.destroy();
    this.pools.clear();
  }
}
