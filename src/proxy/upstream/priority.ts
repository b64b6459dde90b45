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
const OVERPROVISIONING = 140;

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
        const gs = [...groups.entries()].map(([g, eps]) => ({ weight: eps[0].localityWeight ?? 1, healthy: eps.filter((e) => e.healthy), total: eps.length, rrKey: `${clusterName}|p${priority}|l${g}` }));
        const members = gs.flatMap((g) => g.healthy);
        return { priority, healthy: members, total: gs.reduce((n, g) => n + g.total, 0), groups: gs, rrKey: `${clusterName}|p${priority}` };
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
  let load: number[];
  if (!avail && !excluded?.size && tiers.staticLoad) load = tiers.staticLoad;
  else {
    let hs = levels.map((l, i) => health(counts ? counts[i] : l.healthy.length, l.total));
    // previous_priorities: the priorities tried count as unavailable, unless that leaves none.
    if (excluded?.size) {
      const left = hs.map((h, i) => (excluded.has(levels[i].priority) ? 0 : h));
      if (left.some((h) => h > 0)) hs = left;
    }
    load = priorityLoad(hs);
    if (!avail && !excluded?.size) tiers.staticLoad = load;
  }
  const totalHealth = Math.min(100, levels.reduce((n, l, i) => n + health(counts ? counts[i] : l.healthy.length, l.total), 0));
  // Nothing available anywhere: priority 0, in panic if the cluster has a panic threshold at all.
  if (load.every((x) => x === 0)) {
    const l0 = levels[0];
    return cluster.panicPercent > 0 ? { eps: l0.healthy, all: l0.healthy, rrKey: l0.rrKey } : { eps: [], all: l0.healthy, rrKey: l0.rrKey };
  }
  let r = hashKey !== undefined ? hashKey % 100 : Math.floor(rand() * 100);
  let at = 0;
  while (at < levels.length - 1 && (r >= load[at] || load[at] === 0)) {
    r -= load[at];
    at++;
  }
  const level = levels[at];
  const n = counts ? counts[at] : level.healthy.length;
  // Envoy's panic: only while the cluster as a whole is short of endpoints.
  const panic = totalHealth < 100 && level.total > 0 && (100 * n) / level.total < cluster.panicPercent;
  const inLevel = panic || !avail ? level.healthy : level.healthy.filter((e) => avail.has(e));
  if (!cluster.localityWeighted || level.groups.length < 2) return { eps: inLevel, all: level.healthy, rrKey: level.rrKey };
  // Locality-weighted: a locality by its weight times its availability.
  const weights = level.groups.map((g) => g.weight * Math.min(1, (OVERPROVISIONING * (panic ? g.healthy.length : count(g.healthy))) / 100 / (g.total || 1)));
  const sum = weights.reduce((a, b) => a + b, 0);
  if (sum <= 0) return { eps: inLevel, all: level.healthy, rrKey: level.rrKey };
  let w = (hashKey !== undefined ? (hashKey % 10007) / 10007 : rand()) * sum;
  let g = 0;
  while (g < weights.length - 1 && (w >= weights[g] || weights[g] === 0)) {
    w -= weights[g];
    g++;
  }
  const group = level.groups[g];
  const eps = panic || !avail ? group.healthy : group.healthy.filter((e) => avail.has(e));
  return { eps, all: group.healthy, rrKey: group.rrKey };
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
