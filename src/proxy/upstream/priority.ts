// Envoy's priority levels and locality-weighted load balancing, for clusters whose endpoints come
// in more than one priority (locality failover) or more than one weighted locality (`distribute`):
//   - each priority's health is the share of its endpoints available (not unhealthy, not ejected)
//     times the overprovisioning factor 1.4, at most 100%; priority 0 takes the load its health
//     allows and the rest spills to the next (Envoy's "priority load");
//   - a priority in panic (below the panic threshold, while the total health is under 100%) uses
//     all its endpoints, ejected or not;
//   - within a priority, where the cluster has locality_weighted_lb_config, a locality is picked
//     by its weight times its own availability (again with the factor 1.4, at most 1);
//   - a retry with Envoy's previous_priorities leaves out the priorities already tried, every
//     update_frequency tries (Istio's retryRemoteLocalities: 2).
// Clusters with one priority and one locality (the common case) never come here.
import type { ClusterConfig, Endpoint } from '../xds-client/convert.ts';

/** Envoy's default overprovisioning factor, in percent. */
export const OVERPROVISIONING = 140;

interface Group {
  weight: number;
  /** Its endpoints that are not unhealthy by EDS, in config order. */
  healthy: Endpoint[];
  total: number;
  rrKey: string;
}

interface Level {
  priority: number;
  healthy: Endpoint[];
  total: number;
  groups: Group[];
  rrKey: string;
}

export interface Tiers {
  levels: Level[];
  /** The priority load with nothing ejected (health is fixed per endpoint list): worked out once. */
  staticLoad?: number[];
}

const cache = new WeakMap<readonly Endpoint[], Tiers | null>();

/** Separates a cluster's name from its priority and locality in a round-robin key (cluster names hold "|"). */
export const TIER = '\u0000';

/** The priorities and localities of a cluster's endpoint list (all of them, healthy or not); null when there is one of each. */
export function tiersOf(all: readonly Endpoint[], clusterName: string): Tiers | null {
  let t = cache.get(all);
  if (t !== undefined) return t;
  t = null;
  const first = all[0];
  if (first && all.some((e) => e.priority !== first.priority || e.group !== first.group)) {
    const byPriority = new Map<number, Map<number, Endpoint[]>>();
    for (const e of all) {
      let groups = byPriority.get(e.priority ?? 0);
      if (!groups) byPriority.set(e.priority ?? 0, (groups = new Map()));
      let list = groups.get(e.group ?? 0);
      if (!list) groups.set(e.group ?? 0, (list = []));
      list.push(e);
    }
    const levels = [...byPriority.entries()]
      .sort(([a], [b]) => a - b)
      .map(([priority, groups]): Level => {
        const gs = [...groups.entries()].map(([g, eps]) => ({ weight: eps[0].localityWeight ?? 1, healthy: eps.filter((e) => e.healthy), total: eps.length, rrKey: `${clusterName}${TIER}p${priority}l${g}` }));
        const members = gs.flatMap((g) => g.healthy);
        return { priority, healthy: members, total: gs.reduce((n, g) => n + g.total, 0), groups: gs, rrKey: `${clusterName}${TIER}p${priority}` };
      });
    t = { levels };
  }
  cache.set(all, t);
  return t;
}

/** Where a try goes: the endpoints to choose among, the list its hash table is built from, and its round-robin counter. */
export interface Tier {
  eps: Endpoint[];
  all: Endpoint[];
  rrKey: string;
}

/**
 * The priority (and locality) a try takes. `available` is the cluster's endpoints that may take
 * traffic now (the same array as the level's `healthy` lists when nothing is ejected);
 * `excluded`, priorities a retry leaves out. Empty `eps`: no endpoint can take it.
 */
export function chooseTier(cluster: ClusterConfig, tiers: Tiers, available: readonly Endpoint[], ejections: boolean, rand: () => number, hashKey?: number, excluded?: ReadonlySet<number>): Tier {
  const avail = ejections ? new Set(available) : undefined;
  const count = (eps: readonly Endpoint[]) => (avail ? eps.reduce((n, e) => n + (avail.has(e) ? 1 : 0), 0) : eps.length);
  const health = (n: number, total: number) => (total ? Math.min(100, Math.floor((OVERPROVISIONING * n) / total)) : 0);
  const levels = tiers.levels;
  const counts = avail ? levels.map((l) => count(l.healthy)) : undefined;
  const healthOf = levels.map((l, i) => health(counts ? counts[i] : l.healthy.length, l.total));
  const totalHealth = Math.min(100, healthOf.reduce((a, b) => a + b, 0));
  // Envoy's panic: a priority whose available share is under the panic threshold uses all its
  // endpoints, but only while the cluster as a whole is short (total health under 100%).
  const inPanic = (i: number) => totalHealth < 100 && (100 * (counts ? counts[i] : levels[i].healthy.length)) / (levels[i].total || 1) < cluster.panicPercent;
  const r0 = hashKey !== undefined ? hashKey % 100 : Math.floor(rand() * 100);
  if (totalHealth === 0 && cluster.panicPercent === 0) return { eps: [], all: levels[0].healthy, rrKey: levels[0].rrKey }; // nothing left, panic off
  if (levels.every((_, i) => inPanic(i))) {
    // Total panic (Envoy's recalculateLoadInTotalPanic): load by each priority's endpoints, any of
    // them; Envoy counts those EDS calls unhealthy too, which the sidecar never sends to.
    const level = levels[pickByShare(levels.map((l) => l.healthy.length), r0)];
    return { eps: level.healthy, all: level.healthy, rrKey: level.rrKey };
  }
  let load: number[];
  if (!avail && !excluded?.size && tiers.staticLoad) load = tiers.staticLoad;
  else {
    let hs = healthOf;
    // previous_priorities: the priorities tried count as unavailable, unless that leaves none.
    if (excluded?.size) {
      const left = hs.map((h, i) => (excluded.has(levels[i].priority) ? 0 : h));
      if (left.some((h) => h > 0)) hs = left;
    }
    load = priorityLoad(hs);
    if (!avail && !excluded?.size) tiers.staticLoad = load;
  }
  const at = pickByShare(load, r0);
  const level = levels[at];
  const panic = inPanic(at);
  const inLevel = panic || !avail ? level.healthy : level.healthy.filter((e) => avail.has(e));
  // In panic, as Envoy: every endpoint of the priority, whatever its locality.
  if (panic || !cluster.localityWeighted || level.groups.length < 2) return { eps: inLevel, all: level.healthy, rrKey: level.rrKey };
  // Locality-weighted: a locality by its weight times its availability.
  const weights = level.groups.map((g) => g.weight * Math.min(1, (OVERPROVISIONING * count(g.healthy)) / 100 / (g.total || 1)));
  const sum = weights.reduce((a, b) => a + b, 0);
  if (sum <= 0) return { eps: inLevel, all: level.healthy, rrKey: level.rrKey };
  let w = (hashKey !== undefined ? (hashKey % 10007) / 10007 : rand()) * sum;
  let g = 0;
  while (g < weights.length - 1 && (w >= weights[g] || weights[g] === 0)) {
    w -= weights[g];
    g++;
  }
  const group = level.groups[g];
  const eps = !avail ? group.healthy : group.healthy.filter((e) => avail.has(e));
  return { eps, all: group.healthy, rrKey: group.rrKey };
}

/** The index whose share (of their sum, or of 100 for loads) `r` (0-99) falls in; empty shares are skipped. */
function pickByShare(shares: readonly number[], r: number): number {
  const sum = shares.reduce((a, b) => a + b, 0);
  let x = sum === 100 ? r : (r / 100) * sum;
  let at = 0;
  while (at < shares.length - 1 && (x >= shares[at] || shares[at] === 0)) {
    x -= shares[at];
    at++;
  }
  return at;
}

/** Envoy's per-priority load from each priority's health (0-100): in order, each takes its share of what is left. */
export function priorityLoad(health: readonly number[]): number[] {
  const total = Math.min(100, health.reduce((a, b) => a + b, 0));
  if (total === 0) return health.map(() => 0);
  let left = 100;
  const load = health.map((h) => {
    const x = Math.min(left, Math.floor((h * 100) / total));
    left -= x;
    return x;
  });
  if (left > 0) load[health.findIndex((h) => h > 0)] += left; // rounding
  return load;
}
