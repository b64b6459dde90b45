// Which endpoint a try goes to, by the cluster's lb_policy: round robin (one counter per cluster),
// random, or least request (two random choices, the one with fewer requests in flight, as
// Envoy's default choice_count of 2). A retry avoids the endpoints already tried where it can.
import type { ClusterConfig, Endpoint } from '../xds-client/convert.ts';
import { nextEndpoint } from './choose.ts';

/** Requests in flight per endpoint ("address:port"), for LEAST_REQUEST. */
export class InFlight {
  private readonly n = new Map<string, number>();
  add(ep: Endpoint, d: 1 | -1): void {
    const k = `${ep.address}:${ep.port}`;
    const v = (this.n.get(k) ?? 0) + d;
    if (v <= 0) this.n.delete(k);
    else this.n.set(k, v);
  }
  of(ep: Endpoint): number {
    return this.n.get(`${ep.address}:${ep.port}`) ?? 0;
  }
}

export function pickEndpoint(cluster: ClusterConfig, name: string, eps: readonly Endpoint[], rr: Map<string, number>, inflight: InFlight, tried: Set<Endpoint> | undefined, rand: () => number): Endpoint {
  const one = (): Endpoint => {
    if (cluster.lb === 'random') return eps[Math.floor(rand() * eps.length)];
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
