// PURE: a cluster's endpoints as Envoy's ClusterLoadAssignment, grouped by locality, with Istio's
// locality load balancing for the proxy that asks (pilot's loadbalancer.ApplyLocalityLoadBalancer):
//   - `distribute`: the rule whose `from` matches the proxy's locality weights the localities it
//     names (a wildcard's weight shared by the localities it matches, by their endpoints); the
//     endpoints of localities it does not name get no traffic;
//   - failover, where the cluster has outlier detection (without it Envoy never sees an endpoint
//     fail, so Istio does not set priorities): endpoints in the proxy's region, zone and subzone
//     come first (priority 0), then same zone, then same region, then the `failover` rule's target
//     region, then the rest; with `failoverPriority`, first by how many of the listed labels
//     (or label=value) the endpoint shares with the proxy.
// Istio's mesh default enables locality load balancing; `localityLbSetting.enabled: false` turns
// it off for the rule. Envoy then prefers priority 0 while it is healthy enough (its
// overprovisioning factor, 1.4), and spills over to the next as endpoints are ejected.
import type { DestinationRule } from '../../api/types.ts';
import type { ServiceEndpoint } from './services.ts';
import { policyLayers } from './policy.ts';
import { withTopology } from '../model/model.ts';
import { MTLS_ENDPOINT_METADATA, MTLS_PEER_EXCHANGE_ENDPOINT_METADATA } from './mtls.ts';

type Obj = Record<string, any>;

/** The locality settings of a cluster's effective policy that apply for a proxy, if any do. */
export interface LocalityLb {
  distribute?: { from?: string; to?: Record<string, number> }[];
  failover?: { from?: string; to?: string }[];
  failoverPriority?: string[];
  /** The cluster has outlier detection: priorities may be set. */
  enableFailover: boolean;
}

/** Istio's rule: the DestinationRule's setting (unless disabled), else the mesh default (enabled). */
export function localityLbOf(policy: { loadBalancer?: Obj; outlierDetection?: Obj }): LocalityLb | undefined {
  const s = policy.loadBalancer?.localityLbSetting as Obj | undefined;
  if (s?.enabled === false) return undefined;
  const enableFailover = policy.outlierDetection !== undefined;
  const distribute = s?.distribute?.length ? s.distribute : undefined;
  if (!distribute && !enableFailover) return undefined;
  return { enableFailover, ...(distribute ? { distribute } : {}), ...(s?.failover?.length ? { failover: s.failover } : {}), ...(s?.failoverPriority?.length ? { failoverPriority: s.failoverPriority } : {}) };
}

interface Group {
  locality: string;
  endpoints: ServiceEndpoint[];
  weight: number;
  priority: number;
}

const split = (l: string): [string, string, string] => {
  const [region = '', zone = '', subzone = ''] = l.split('/');
  return [region, zone, subzone];
};

/** Istio's util.LocalityMatch: a rule's locality ("region/zone/subzone", "*" for any part, missing parts match all) against one. */
export function localityMatch(locality: string, rule: string): boolean {
  const [r, z, s] = split(rule);
  const [pr, pz, ps] = split(locality);
  return (r === '*' || r === pr) && (z === '*' || z === '' || z === pz) && (s === '*' || s === '' || s === ps);
}

/** Istio's util.LbPriority: 0 same subzone, 1 same zone, 2 same region, 3 elsewhere. */
function lbPriority(proxy: string, ep: string): number {
  const [pr, pz, ps] = split(proxy);
  const [er, ez, es] = split(ep);
  if (pr !== er) return 3;
  if (pz !== ez) return 2;
  return ps === es ? 0 : 1;
}

/**
 * The ClusterLoadAssignment of `members` for a proxy at `proxyLocality` with labels
 * `proxyLabels` (only those failoverPriority names matter).
 */
export function loadAssignment(name: string, members: readonly ServiceEndpoint[], lb?: LocalityLb, proxyLocality = '', proxyLabels: Readonly<Record<string, string>> = {}): object {
  const byLocality = new Map<string, ServiceEndpoint[]>();
  for (const e of fitWeights([...members].sort((a, b) => a.id.localeCompare(b.id)))) {
    let g = byLocality.get(e.locality);
    if (!g) byLocality.set(e.locality, (g = []));
    g.push(e);
  }
  const sum = (eps: readonly ServiceEndpoint[]) => eps.reduce((n, e) => n + (e.weight ?? 1), 0);
  let groups: Group[] = [...byLocality.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([locality, endpoints]) => ({ locality, endpoints, weight: sum(endpoints), priority: 0 }));
  if (lb?.distribute) groups = distribute(groups, lb.distribute, proxyLocality);
  else if (lb?.enableFailover) {
    if (lb.failoverPriority) groups = byFailoverPriority(groups, lb.failoverPriority, proxyLabels);
    if (!lb.failoverPriority || lb.failover) failover(groups, lb.failover ?? [], proxyLocality);
  }
  return {
    cluster_name: name,
    endpoints: groups.map((g) => ({
      locality: localityJson(g.locality),
      lb_endpoints: g.endpoints.map((e) => ({
        endpoint: { address: socketAddress(e.address, e.port) },
        health_status: e.healthy ? 'HEALTHY' : 'UNHEALTHY',
        ...(e.weight ? { load_balancing_weight: { value: e.weight } } : {}),
        // The endpoint takes mTLS: its cluster's 'tlsMode-istio' transport socket applies (mtls.ts),
        // the one that offers Istio's TCP metadata exchange where its sidecar runs it.
        ...(e.identity ? { metadata: e.peerExchange ? MTLS_PEER_EXCHANGE_ENDPOINT_METADATA : MTLS_ENDPOINT_METADATA } : {}),
      })),
      // gRPC's xDS client requires a weight, and skips weightless localities.
      load_balancing_weight: { value: g.weight },
      ...(g.priority ? { priority: g.priority } : {}),
    })),
  };
}

/** Below this, a sum of weights fits Envoy's uint32 (each locality's sum must, and so must the total). */
const MAX_WEIGHT_SUM = 2 ** 31;

/**
 * Endpoint weights scaled down, keeping their proportions, where their sum would not fit a uint32
 * (WorkloadEntry weights are uint32 each): Envoy refuses such an assignment, and the wire would
 * wrap the sum round to a wrong small number.
 */
function fitWeights(eps: ServiceEndpoint[]): ServiceEndpoint[] {
  const total = eps.reduce((n, e) => n + (e.weight ?? 1), 0);
  if (total <= MAX_WEIGHT_SUM) return eps;
  const scale = MAX_WEIGHT_SUM / total;
  return eps.map((e) => {
    const w = Math.max(1, Math.floor((e.weight ?? 1) * scale));
    return { ...e, ...(w > 1 ? { weight: w } : { weight: undefined }) };
  });
}

function localityJson(l: string): object {
  const [region, zone, subzone] = split(l);
  return { ...(region ? { region } : {}), ...(zone ? { zone } : {}), ...(subzone ? { sub_zone: subzone } : {}) };
}

/** Istio's applyLocalityWeights: the first rule whose `from` matches the proxy decides. */
function distribute(groups: Group[], rules: NonNullable<LocalityLb['distribute']>, proxy: string): Group[] {
  const rule = rules.find((r) => r.from !== undefined && localityMatch(proxy, r.from));
  if (!rule) return groups;
  const weights = new Map<Group, number>();
  const left = new Set(groups);
  for (const [to, weight] of Object.entries(rule.to ?? {})) {
    const matched = groups.filter((g) => left.has(g) && localityMatch(g.locality, to));
    const total = matched.reduce((n, g) => n + g.weight, 0);
    for (const g of matched) {
      left.delete(g);
      const w = Math.ceil((g.weight * weight) / total);
      if (w > 0) weights.set(g, w);
    }
  }
  // Localities the rule does not name get no traffic.
  return groups.filter((g) => weights.has(g)).map((g) => ({ ...g, weight: weights.get(g)! }));
}

/** Istio's applyLocalityFailover: priorities by how near each locality is, then renumbered 0..N. */
function failover(groups: Group[], rules: NonNullable<LocalityLb['failover']>, proxy: string): void {
  const [region] = split(proxy);
  for (const g of groups) {
    let p = lbPriority(proxy, g.locality);
    if (p === 3) {
      const rule = rules.find((r) => r.from === region);
      if (rule && split(g.locality)[0] !== rule.to) p = 4;
    }
    g.priority = g.priority * 5 + p;
  }
  renumber(groups);
}

/**
 * Istio's applyFailoverPriorities: each locality's endpoints split by the first listed label they
 * do not share with the proxy (all shared: priority 0). "label=value" compares with that value
 * instead of the proxy's.
 */
function byFailoverPriority(groups: Group[], labels: readonly string[], proxyLabels: Readonly<Record<string, string>>): Group[] {
  const out: Group[] = [];
  for (const g of groups) {
    const parts = new Map<number, ServiceEndpoint[]>();
    for (const e of g.endpoints) {
      const own = withTopology(e.labels, e.locality);
      let p = 0;
      for (const [j, l] of labels.entries()) {
        const at = l.indexOf('=');
        const key = at < 0 ? l : l.slice(0, at);
        const want = at < 0 ? proxyLabels[key] : l.slice(at + 1);
        if (want !== own[key]) {
          p = labels.length - j;
          break;
        }
      }
      let list = parts.get(p);
      if (!list) parts.set(p, (list = []));
      list.push(e);
    }
    for (const p of [...parts.keys()].sort((a, b) => a - b)) out.push({ locality: g.locality, endpoints: parts.get(p)!, weight: parts.get(p)!.reduce((n, e) => n + (e.weight ?? 1), 0), priority: p });
  }
  renumber(out);
  return out;
}

/** Priorities as Envoy wants them: 0 to N without gaps, in the same order. */
function renumber(groups: Group[]): void {
  const seen = [...new Set(groups.map((g) => g.priority))].sort((a, b) => a - b);
  for (const g of groups) g.priority = seen.indexOf(g.priority);
}

/** The label keys failoverPriority compares a proxy's labels on, across the mesh's DestinationRules. */
export function failoverLabelKeys(rules: readonly DestinationRule[]): string[] {
  const keys = new Set<string>();
  for (const tp of rules.flatMap(policyLayers)) {
    for (const l of tp.loadBalancer?.localityLbSetting?.failoverPriority ?? []) if (!String(l).includes('=')) keys.add(String(l));
  }
  return [...keys];
}

export function socketAddress(address: string, port: number): object {
  return { socket_address: { address, port_value: port } };
}
