// Keep-alive connection pools, one undici Pool per endpoint address. Pools outlive config
// snapshots: an endpoint that stays across updates keeps its warm connections.
//
// Only undici's Pool is loaded, not the package index: the index brings fetch, WebSocket, caches
// and more, about 11 MB of RSS in every sidecar (docs/performance.md). The sidecar drives the pool
// with dispatch() and a handler (http/forward.ts), which is all it needs.
import { createRequire } from 'node:module';
import type { Pool as PoolType } from 'undici';

const Pool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof PoolType;
type Pool = PoolType;

export class Pools {
  private readonly pools = new Map<string, Pool>();

  get(address: string, port: number, connectTimeoutMs: number): Pool {
    const key = `${address}:${port}`;
    let p = this.pools.get(key);
    if (!p) {
      const host = address.includes(':') ? `[${address}]` : address;
      p = new Pool(`http://${host}:${port}`, {
        connections: 256,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        connect: { timeout: connectTimeoutMs },
      });
      this.pools.set(key, p);
    }
    return p;
  }

  /** Closes pools for endpoints no longer in the config; their requests in flight finish first. */
  retain(keep: Set<string>): void {
    for (const [key, p] of this.pools) {
      if (keep.has(key)) continue;
      this.pools.delete(key);
      p.close().catch(() => {});
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.destroy().catch(() => {})));
    this.pools.clear();
  }
}
