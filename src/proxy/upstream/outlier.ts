// Envoy's outlier detection, the consecutive-error detectors: an endpoint that answers N 5xx in
// a row (or N gateway errors: 502, 503, 504), or that cannot be reached, is ejected from its
// cluster's load balancing for base_ejection_time times the number of times it was ejected, at
// most max_ejection_percent of the cluster at once (at least one endpoint). Below the cluster's
// panic threshold of endpoints left, ejections are ignored (Envoy's panic mode).
import type { ClusterConfig, Endpoint, OutlierConfig } from '../xds-client/convert.ts';
import { OVERPROVISIONING } from './priority.ts';

interface HostState {
  consecutive5xx: number;
  consecutiveGateway: number;
  consecutiveLocal: number;
  /** Envoy's ejection multiplier: up on each ejection, down by one for each interval spent healthy since. */
  ejections: number;
  /** performance.now() when the ejection ends; 0 when not ejected. */
  ejectedUntil: number;
  /** When the multiplier last went down (or the last ejection ended). */
  healthySince: number;
}

/** Envoy's max_ejection_time default: no ejection lasts longer, however often the endpoint failed. */
export const MAX_EJECTION_MS = 300_000;

/** What a try's outcome says of its endpoint: a status, or an error with no response (counts as 5xx and gateway error). */
export type Outcome = number | 'local_error';

export class OutlierDetector {
  private readonly clusters = new Map<string, Map<string, HostState>>();

  /** Records one try's outcome; ejects the endpoint when its run of errors reaches the limit. */
  report(cluster: ClusterConfig, ep: Endpoint, outcome: Outcome, now: number, endpoints: readonly Endpoint[]): void {
    const cfg = cluster.outlier;
    if (!cfg) return;
    let hosts = this.clusters.get(cluster.name);
    if (!hosts) this.clusters.set(cluster.name, (hosts = new Map()));
    const key = `${ep.address}:${ep.port}`;
    let h = hosts.get(key);
    if (!h) hosts.set(key, (h = { consecutive5xx: 0, consecutiveGateway: 0, consecutiveLocal: 0, ejections: 0, ejectedUntil: 0, healthySince: now }));
    // An endpoint healthy since its last ejection ended earns the multiplier back, one per interval.
    if (h.ejections > 0 && h.ejectedUntil <= now) {
      const since = Math.max(h.healthySince, h.ejectedUntil);
      const intervals = Math.floor((now - since) / cfg.intervalMs);
      if (intervals > 0) {
        h.ejections = Math.max(0, h.ejections - intervals);
        h.healthySince = since + intervals * cfg.intervalMs;
      }
    }
    const local = outcome === 'local_error';
    if (cfg.splitLocalOrigin) {
      // Split: a local-origin failure counts only as that; any response means the connection was good.
      h.consecutiveLocal = local ? h.consecutiveLocal + 1 : 0;
      if (!local) {
        h.consecutive5xx = outcome >= 500 ? h.consecutive5xx + 1 : 0;
        h.consecutiveGateway = outcome === 502 || outcome === 503 || outcome === 504 ? h.consecutiveGateway + 1 : 0;
      }
    } else {
      h.consecutive5xx = local || outcome >= 500 ? h.consecutive5xx + 1 : 0;
      h.consecutiveGateway = local || outcome === 502 || outcome === 503 || outcome === 504 ? h.consecutiveGateway + 1 : 0;
    }
    if (h.ejectedUntil > now) return;
    const trip =
      (cfg.consecutive5xx > 0 && h.consecutive5xx >= cfg.consecutive5xx) ||
      (cfg.consecutiveGateway > 0 && h.consecutiveGateway >= cfg.consecutiveGateway) ||
      (cfg.consecutiveLocalOrigin !== undefined && cfg.consecutiveLocalOrigin > 0 && h.consecutiveLocal >= cfg.consecutiveLocalOrigin);
    if (!trip || !this.mayEject(cfg, hosts, endpoints.length, now)) return;
    h.ejections++;
    h.ejectedUntil = now + Math.min(cfg.baseEjectionMs * h.ejections, Math.max(MAX_EJECTION_MS, cfg.baseEjectionMs));
    h.healthySince = h.ejectedUntil;
    h.consecutive5xx = 0;
    h.consecutiveGateway = 0;
    h.consecutiveLocal = 0;
  }

  private mayEject(cfg: OutlierConfig, hosts: Map<string, HostState>, total: number, now: number): boolean {
    let ejected = 0;
    for (const h of hosts.values()) if (h.ejectedUntil > now) ejected++;
    return ejected + 1 <= Math.max(1, Math.floor((cfg.maxEjectionPercent * total) / 100));
  }

  /**
   * The endpoints not ejected now; all of them when fewer than the panic threshold would be left
   * (unless `panic` is false: with several priorities, panic is judged per priority, priority.ts).
   * The share counts the endpoints EDS calls healthy, where Envoy's counts every host: the sidecar
   * never sends to the others.
   */
  available(cluster: ClusterConfig, healthy: Endpoint[], now: number, panic = true): Endpoint[] {
    const hosts = this.clusters.get(cluster.name);
    if (!cluster.outlier || !hosts) return healthy;
    let out: Endpoint[] | undefined;
    for (let i = 0; i < healthy.length; i++) {
      const h = hosts.get(`${healthy[i].address}:${healthy[i].port}`);
      const ejected = h !== undefined && h.ejectedUntil > now;
      if (ejected && !out) out = healthy.slice(0, i);
      else if (!ejected && out) out.push(healthy[i]);
    }
    if (!out) return healthy;
    // Envoy's panic: under the threshold, ejections are ignored, but only while the endpoints left are
    // short of the whole even with its overprovisioning factor (1.4: at 72% or more, never).
    const share = (100 * out.length) / healthy.length;
    if (panic && share * (OVERPROVISIONING / 100) < 100 && share < cluster.panicPercent) return healthy;
    return out;
  }

  /** Whether an endpoint is ejected now (for the admin stats). */
  isEjected(clusterName: string, ep: Endpoint, now: number): boolean {
    return (this.clusters.get(clusterName)?.get(`${ep.address}:${ep.port}`)?.ejectedUntil ?? 0) > now;
  }
}
