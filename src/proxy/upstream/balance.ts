// Which endpoint a try goes to, by the cluster's lb_policy: round robin (one counter per cluster),
// random, or least request (two random choices, the one with fewer requests in flight, as
// Envoy's default choice_count of 2). A retry avoids the endpoints already tried where it can.
import type { ClusterConfig, Endpoint } from '../xds-client/convert.ts';
import { type ClusterEndpoints, nextEndpoint } from './choose.ts';
import { chooseTier } from './priority.ts';
import { SlowStart, pickWeighted } from './slow-start.ts';
import { OutlierDetector } from './outlier.ts';
import { Maglev, Ring } from './hash.ts';

/** The ring or Maglev table of an endpoint list, built once per list (lists are immutable). */
const tables = new WeakMap<readonly Endpoint[], Ring | Maglev>();

function tableFor(cluster: ClusterConfig, eps: readonly Endpoint[]): Ring | Maglev {
  let t = tables.get(eps);
  if (!t) tables.set(eps, (t = cluster.lb === 'maglev' ? new Maglev(eps, cluster.hashTableSize ?? 65537) : new Ring(eps, cluster.hashTableSize ?? 1024)));
  return t;
}

/**
 * Requests in flight per endpoint, for LEAST_REQUEST clusters only (others do not count). Keyed by
 * the endpoint object of the config: an EDS update starts the counts afresh, and the old objects'
 * counts go with them.
 */
export class InFlight {
  private readonly n = new WeakMap<Endpoint, number>();
  add(ep: Endpoint, d: 1 | -1): void {
    this.n.set(ep, (this.n.get(ep) ?? 0) + d);
  }
  of(ep: Endpoint): number {
    return this.n.get(ep) ?? 0;
  }
}

export function pickEndpoint(
  cluster: ClusterConfig,
  name: string,
  eps: readonly Endpoint[],
  rr: Map<string, number>,
  inflight: InFlight,
  tried: Set<Endpoint> | undefined,
  rand: () => number,
  hashKey?: number,
  /** The cluster's endpoints before outlier ejections (`eps` may leave some out): the hash table is built from these. */
  all: readonly Endpoint[] = eps,
): Endpoint {
  // The common case, first: round robin for a first try.
  if (cluster.lb === 'round_robin' && !tried) return nextEndpoint(rr, name, eps);
  // Consistent hashing: the key's endpoint (the next on the ring for a retry); no key, a random one.
  if ((cluster.lb === 'ring_hash' || cluster.lb === 'maglev') && hashKey !== undefined) {
    // One table per endpoint list: ejected endpoints are skipped at pick time, as tried ones are,
    // rather than a table built for each list that ejections leave.
    let skip: Set<Endpoint> | undefined = tried;
    if (eps !== all) {
      const left = new Set(eps);
      skip = new Set(tried);
      for (const e of all) if (!left.has(e)) skip.add(e);
    }
    return tableFor(cluster, all).pick(hashKey, skip);
  }
  const one = (): Endpoint => {
    if (cluster.lb !== 'least_request' && cluster.lb !== 'round_robin') return eps[Math.floor(rand() * eps.length)];
    if (cluster.lb === 'least_request') {
      const a = eps[Math.floor(rand() * eps.length)];
      const b = eps[Math.floor(rand() * eps.length)];
      return inflight.of(b) < inflight.of(a) ? b : a;
    }
    return nextEndpoint(rr, name, eps);
  };
  let ep = one();
  if (tried) for (let i = 1; i < eps.length * 2 && tried.has(ep); i++) ep = one();
  return ep;
}

/**
 * The endpoint a try goes to: with several priorities or weighted localities, first the one the
 * priority load picks (upstream/priority.ts), then an endpoint of it by the cluster's lb_policy.
 * `available` is the endpoints not ejected (ce.healthy itself when none is); `excluded`, the
 * priorities a retry leaves out. Undefined: no endpoint can take the try.
 */
export function chooseEndpoint(
  cluster: ClusterConfig,
  name: string,
  ce: ClusterEndpoints,
  available: readonly Endpoint[],
  rr: Map<string, number>,
  inflight: InFlight,
  tried: Set<Endpoint> | undefined,
  rand: () => number,
  hashKey?: number,
  excluded?: ReadonlySet<number>,
  /** Slow start's weights, while some endpoint is warming (upstream/slow-start.ts). */
  weightOf?: (e: Endpoint) => number,
): Endpoint | undefined {
  let eps: readonly Endpoint[] = available;
  let all: readonly Endpoint[] = ce.healthy;
  let rrKey = name;
  if (ce.tiers) {
    const t = chooseTier(cluster, ce.tiers, available, available !== ce.healthy, rand, hashKey, excluded);
    ({ eps, all, rrKey } = t);
  }
  if (eps.length === 0) return undefined;
  // Endpoint weights (and slow start's) for round robin and least request, as Envoy weighs them
  // (it schedules by earliest deadline; a weighted random choice gives the same shares). Random
  // ignores weights, as Envoy's; the hash tables hold them (hash.ts).
  const hashing = (cluster.lb === 'ring_hash' || cluster.lb === 'maglev') && hashKey !== undefined;
  if (!hashing && (weightOf || (ce.weighted && cluster.lb !== 'random'))) {
    const lr = cluster.lb === 'least_request';
    return pickWeighted(eps, (e) => ((e.weight ?? 1) * (weightOf ? weightOf(e) : 1)) / (lr ? inflight.of(e) + 1 : 1), tried, rand);
  }
  return pickEndpoint(cluster, rrKey, eps, rr, inflight, tried, rand, hashKey, all);
}

/** A sidecar's load-balancing state, shared by its HTTP and TCP paths; what is unset is made on first use. */
export interface BalanceState {
  rr: Map<string, number>;
  outlier?: OutlierDetector;
  slowStart?: SlowStart;
}

/**
 * chooseEndpoint for a try now: with the cluster's outlier ejections and slow start applied (the
 * clock read only where one of them needs it: this runs for every request).
 */
export function nextEndpointFor(
  cluster: ClusterConfig,
  name: string,
  ce: ClusterEndpoints,
  state: BalanceState,
  inflight: InFlight,
  tried: Set<Endpoint> | undefined,
  rand: () => number,
  hashKey?: number,
  excluded?: ReadonlySet<number>,
): Endpoint | undefined {
  const now = cluster.outlier || cluster.slowStart ? performance.now() : 0;
  const available = cluster.outlier ? (state.outlier ??= new OutlierDetector()).available(cluster, ce.healthy, now, !ce.tiers) : ce.healthy;
  const weightOf = cluster.slowStart ? (state.slowStart ??= new SlowStart()).weights(cluster, name, ce.healthy, now) : undefined;
  return chooseEndpoint(cluster, name, ce, available, state.rr, inflight, tried, rand, hashKey, excluded, weightOf);
}
