// The registry: which workloads run where. A sidecar registers its workload when its ADS stream
// opens; the entry goes when the stream closes or its heartbeats (gRPC keepalive pings) stop.
//
// After a control plane restart the registry starts from the workloads it last knew, marked
// "recovering": they keep serving as endpoints for a grace period, so a sidecar that reconnects
// first does not see every other endpoint vanish. Each is confirmed when its sidecar
// reconnects, or dropped when the grace period ends without it.
import type { Workload } from '../model/model.ts';

export interface RegistryOptions {
  /** Called (synchronously) after every change. */
  onChange?: () => void;
  setTimer?: (fn: () => void, ms: number) => { unref?: () => void };
}

export class Registry {
  private readonly live = new Map<string, Workload>();
  private readonly recovering = new Map<string, Workload>();
  private generation = 0;
  private readonly opts: RegistryOptions;

  constructor(opts: RegistryOptions = {}) {
    this.opts = opts;
  }

  register(w: Workload): void {
    this.recovering.delete(w.proxyId);
    this.live.set(w.proxyId, w);
    this.changed();
  }

  unregister(proxyId: string): void {
    if (this.live.delete(proxyId)) this.changed();
  }

  /** Workloads known before a restart; each expires after graceMs unless its sidecar returns. */
  restore(workloads: readonly Workload[], graceMs: number): void {
    if (workloads.length === 0) return;
    for (const w of workloads) if (!this.live.has(w.proxyId)) this.recovering.set(w.proxyId, w);
    const setTimer = this.opts.setTimer ?? setTimeout;
    const t = setTimer(() => {
      if (this.recovering.size === 0) return;
      this.recovering.clear();
      this.changed();
    }, graceMs);
    t.unref?.();
    this.changed();
  }

  /** Every workload that serves traffic now: live ones and those still recovering. */
  list(): Workload[] {
    return [...this.live.values(), ...this.recovering.values()].sort((a, b) => a.proxyId.localeCompare(b.proxyId));
  }

  /** Only those whose sidecar is connected now. */
  connected(): Workload[] {
    return [...this.live.values()];
  }

  /** Bumped on every change: part of the xDS version. */
  version(): number {
    return this.generation;
  }

  private changed(): void {
    this.generation += 1;
    this.opts.onChange?.();
  }
}
