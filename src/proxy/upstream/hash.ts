// Consistent hashing of requests to endpoints, as Envoy's RING_HASH and MAGLEV load balancers
// (Istio's consistentHash): a request's key (a header, a cookie, a query parameter: the route's
// hash_policy) always reaches the same endpoint while the endpoints stay the same, and when one
// leaves only the keys it had move. The hash is 32-bit FNV-1a (Envoy uses xxHash; the mapping of
// keys to endpoints differs from Envoy's, the properties do not).
import type { Endpoint } from '../xds-client/convert.ts';

export function hash32(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // A final mix (murmur3's), so that similar keys spread over the ring.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** An endpoint as address:port (what the ring hashes, and slow start's key). */
export const nameOf = (e: Endpoint) => `${e.address}:${e.port}`;

/** Envoy's ring_hash_lb_config maximum_ring_size default. */
const MAX_RING_SIZE = 8 * 1024 * 1024;

/** A ring of at least `minSize` points, each endpoint owning a share of them by its weight. */
export class Ring {
  private readonly points: number[] = [];
  private readonly owners: Endpoint[] = [];

  constructor(eps: readonly Endpoint[], minSize: number) {
    // Envoy's ring: scaled so that the lightest endpoint gets a whole number of points (at least
    // minSize in all, at most 8M), each endpoint then as many as its share of that, as running sums.
    const total = eps.reduce((n, e) => n + (e.weight ?? 1), 0) || 1;
    const minShare = Math.min(...eps.map((e) => (e.weight ?? 1) / total));
    const scale = eps.length ? Math.min(Math.ceil(minShare * minSize) / minShare, MAX_RING_SIZE) : 0;
    const all: [number, Endpoint][] = [];
    let current = 0;
    let target = 0;
    for (const e of eps) {
      target += (scale * (e.weight ?? 1)) / total;
      for (let i = 0; current < target; i++, current++) all.push([hash32(`${nameOf(e)}_${i}`), e]);
    }
    all.sort((a, b) => a[0] - b[0] || nameOf(a[1]).localeCompare(nameOf(b[1])));
    for (const [p, e] of all) {
      this.points.push(p);
      this.owners.push(e);
    }
  }

  /** The endpoint owning the first point at or after the key's hash; `skip` other endpoints first (a retry). */
  pick(key: number, skip?: ReadonlySet<Endpoint>): Endpoint {
    const pts = this.points;
    let lo = 0;
    let hi = pts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (pts[mid] < key) lo = mid + 1;
      else hi = mid;
    }
    for (let i = 0; i < pts.length; i++) {
      const e = this.owners[(lo + i) % pts.length];
      if (!skip?.has(e)) return e;
    }
    return this.owners[lo % pts.length];
  }
}

/** Maglev's lookup table of `size` entries (a prime), filled from each endpoint's permutation. */
export class Maglev {
  private readonly table: Endpoint[];

  constructor(eps: readonly Endpoint[], size: number) {
    const sorted = [...eps].sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
    const n = sorted.length;
    this.table = new Array(size);
    if (n === 0) return;
    const offset = sorted.map((e) => hash32(nameOf(e), 0x9747b28c) % size);
    const skip = sorted.map((e) => (hash32(nameOf(e), 0x1b873593) % Math.max(1, size - 1)) + 1);
    const next = new Array(n).fill(0);
    let filled = 0;
    const taken = new Uint8Array(size);
    // Weights, as Envoy's Maglev: each round, an endpoint takes a slot only once its share of the
    // rounds (its weight against the largest) says so.
    const weight = sorted.map((e) => e.weight ?? 1);
    const max = Math.max(...weight);
    const target = weight.map(() => 0);
    for (let round = 1; filled < size; round++) {
      for (let i = 0; i < n && filled < size; i++) {
        if (round * weight[i] < target[i]) continue;
        target[i] += max;
        let c = (offset[i] + next[i] * skip[i]) % size;
        while (taken[c]) {
          next[i]++;
          c = (offset[i] + next[i] * skip[i]) % size;
        }
        taken[c] = 1;
        this.table[c] = sorted[i];
        next[i]++;
        filled++;
      }
    }
  }

  pick(key: number, skip?: ReadonlySet<Endpoint>): Endpoint {
    const t = this.table;
    for (let i = 0; i < t.length; i++) {
      const e = t[(key + i) % t.length];
      if (!skip?.has(e)) return e;
    }
    return t[key % t.length];
  }
}
