// Envoy's slow start (Istio's DestinationRule loadBalancer.warmup), for ROUND_ROBIN and
// LEAST_REQUEST clusters: an endpoint added to a cluster that already had endpoints gets a share
// of traffic that grows over the slow-start window, by weight
//   max(min_weight_percent, time_factor ^ (1 / aggression)),  time_factor = max(age, 1 ms) / window
// (Envoy's applySlowStartFactor; its docs say 1 s, its code 1 ms)
// while the endpoints that were there take their full share. Endpoints of the cluster's first
// endpoint list are not in slow start, as in Envoy (they are the cluster's initial hosts).
// While some endpoint is warming, tries are spread by weighted random choice rather than round
// robin; afterwards the cluster's own policy applies again.
//
// "Added" is when the request path first sees the endpoint list that has it (lists are replaced
// whole on each EDS update), which is the update itself while requests flow.
import type { ClusterConfig, Endpoint } from '../xds-client/convert.ts';
import { nameOf } from './hash.ts';

interface Seen {
  list: readonly Endpoint[];
  /** address:port -> when it was added (performance.now()); the initial endpoints are not here. */
  added: Map<string, number>;
}

export class SlowStart {
  private readonly clusters = new Map<string, Seen>();

  /** Forgets the clusters a config no longer has. */
  retain(clusters: ReadonlySet<string> | ReadonlyMap<string, unknown>): void {
    for (const name of this.clusters.keys()) if (!clusters.has(name)) this.clusters.delete(name);
  }

  /**
   * The weight of each endpoint of `all` (the cluster's current list) at `now`, or undefined when
   * none is warming (then the cluster's own policy picks, unweighted).
   */
  weights(cluster: ClusterConfig, name: string, all: readonly Endpoint[], now: number): ((e: Endpoint) => number) | undefined {
    const cfg = cluster.slowStart;
    if (!cfg) return undefined;
    let seen = this.clusters.get(name);
    if (!seen) {
      this.clusters.set(name, { list: all, added: new Map() });
      return undefined;
    }
    if (seen.list !== all) {
      const before = new Set(seen.list.map(nameOf));
      const added = new Map<string, number>();
      for (const e of all) {
        const k = nameOf(e);
        const at = seen.added.get(k);
        if (at !== undefined) added.set(k, at);
        else if (!before.has(k)) added.set(k, now);
      }
      seen = { list: all, added };
      this.clusters.set(name, seen);
    }
    if (seen.added.size === 0) return undefined;
    let warming = false;
    for (const [k, at] of seen.added) {
      if (now - at < cfg.windowMs) warming = true;
      else seen.added.delete(k); // out of its window for good
    }
    if (!warming) return undefined;
    const added = seen.added;
    return (e) => {
      const at = added.get(nameOf(e));
      if (at === undefined) return 1;
      const factor = Math.min(1, Math.max(now - at, 1) / cfg.windowMs);
      return Math.max(cfg.minWeightPercent / 100, factor ** (1 / cfg.aggression));
    };
  }
}

/** A weighted random choice among `eps`, leaving out those in `tried` where it can. */
export function pickWeighted(eps: readonly Endpoint[], weightOf: (e: Endpoint) => number, tried: ReadonlySet<Endpoint> | undefined, rand: () => number): Endpoint {
  const candidates = tried && eps.some((e) => !tried.has(e)) ? eps.filter((e) => !tried.has(e)) : eps;
  const weights = candidates.map(weightOf);
  let r = rand() * weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < candidates.length - 1; i++) {
    r -= weights[i];
    if (r < 0) return candidates[i];
  }
  return candidates[candidates.length - 1];
}
