// The sidecar's runtime config: an immutable snapshot built from accepted xDS resources.
// Each accepted update builds a new snapshot from the old one and swaps it in whole; requests in
// flight keep the snapshot they started with. A rejected update leaves the old one serving.
//
// Make before break, as Envoy's cluster warming: a route table that names a cluster whose
// endpoints have not arrived yet waits (pendingRoutes) while the table it replaces keeps serving,
// and a cluster that CDS removed stays (draining) while a route still names it. So a new subset
// gets traffic only once it has endpoints, and a removed one keeps its traffic until the routes
// that named it are gone: adding, removing or renaming a subset under load fails no request.
import { type ResourceType, TYPE } from '../xds/types.ts';
import {
  type ClusterConfig,
  type Endpoint,
  type ListenerConfig,
  type RouteTable,
  ConvertError,
  convertCluster,
  convertEndpoints,
  convertListener,
  convertRouteConfig,
} from './xds-client/convert.ts';

export interface RuntimeConfig {
  readonly listeners: ReadonlyMap<string, ListenerConfig>;
  readonly routes: ReadonlyMap<string, RouteTable>;
  readonly clusters: ReadonlyMap<string, ClusterConfig>;
  /** ClusterLoadAssignment name -> endpoints. */
  readonly endpoints: ReadonlyMap<string, readonly Endpoint[]>;
  /** The resources as received, for the config dump. */
  readonly raw: Readonly<Record<string, ReadonlyMap<string, object>>>;
  readonly versions: Readonly<Record<string, string>>;
  /** Route tables that name a cluster still warming; the table of the same name in `routes` (if any) serves meanwhile. */
  readonly pendingRoutes: ReadonlyMap<string, RouteTable>;
  /** The clusters of the last CDS response. `clusters` also holds removed ones that a route still names. */
  readonly declaredClusters: ReadonlySet<string>;
}

export const EMPTY_CONFIG: RuntimeConfig = {
  listeners: new Map(),
  routes: new Map(),
  clusters: new Map(),
  endpoints: new Map(),
  raw: {},
  versions: {},
  pendingRoutes: new Map(),
  declaredClusters: new Set(),
};

/** Every cluster a route table's routes name. */
function clustersOf(t: RouteTable): Set<string> {
  const out = new Set<string>();
  const vhs = new Set([...t.exact.values(), ...t.suffix.map((s) => s.vh), ...t.prefix.map((p) => p.vh), ...(t.any ? [t.any] : [])]);
  for (const vh of vhs) for (const r of vh.routes) for (const c of r.clusters) out.add(c.name);
  return out;
}

/** Every cluster the listeners' tcp_proxies name (their own, and their SNI chains'). */
function listenerClusters(listeners: ReadonlyMap<string, ListenerConfig>): Set<string> {
  const out = new Set<string>();
  for (const l of listeners.values()) {
    const chains = l.sni ? [...l.sni.exact.values(), ...l.sni.wildcard.values(), ...(l.sni.fallback ? [l.sni.fallback] : [])] : [];
    for (const t of [...(l.tcp ? [l.tcp] : []), ...chains.map((c) => c.tcp)]) for (const c of t.clusters) out.add(c.name);
  }
  return out;
}

/** The clusters in use: those listeners name (tcp_proxy, SNI chains), then those routes and pending routes name. */
function namedClusters(listeners: ReadonlyMap<string, ListenerConfig>, routes: ReadonlyMap<string, RouteTable>, pendingRoutes: ReadonlyMap<string, RouteTable>): Set<string> {
  const named = listenerClusters(listeners);
  for (const t of [...routes.values(), ...pendingRoutes.values()]) for (const n of clustersOf(t)) named.add(n);
  return named;
}

/** An EDS cluster whose endpoints have not arrived yet. */
function warming(c: Pick<RuntimeConfig, 'clusters' | 'endpoints'>, name: string): boolean {
  const cl = c.clusters.get(name);
  return cl !== undefined && cl.type === 'EDS' && !c.endpoints.has(cl.edsName!);
}

/**
 * Promotes the pending route tables whose clusters are all warm (or all of them, `force`: Envoy
 * gives up waiting after its initial_fetch_timeout), then drops the removed clusters that no route
 * names any more, and the endpoints of clusters that are gone.
 */
export function settle(c: RuntimeConfig, force = false): RuntimeConfig {
  let routes = c.routes;
  let pendingRoutes = c.pendingRoutes;
  for (const [name, t] of c.pendingRoutes) {
    if (!force && [...clustersOf(t)].some((n) => warming(c, n))) continue;
    if (routes === c.routes) routes = new Map(c.routes);
    if (pendingRoutes === c.pendingRoutes) pendingRoutes = new Map(c.pendingRoutes);
    (routes as Map<string, RouteTable>).set(name, t);
    (pendingRoutes as Map<string, RouteTable>).delete(name);
  }
  // A listener's tcp_proxy names clusters too (an SNI chain's destinations): kept while it does.
  const named = namedClusters(c.listeners, routes, pendingRoutes);
  let clusters = c.clusters;
  if ([...c.clusters.keys()].some((n) => !c.declaredClusters.has(n) && !named.has(n))) {
    clusters = new Map([...c.clusters].filter(([n]) => c.declaredClusters.has(n) || named.has(n)));
  }
  const edsNames = new Set([...clusters.values()].map((cl) => cl.edsName).filter((n): n is string => !!n));
  const endpoints = [...c.endpoints.keys()].every((n) => edsNames.has(n)) ? c.endpoints : new Map([...c.endpoints].filter(([n]) => edsNames.has(n)));
  if (routes === c.routes && clusters === c.clusters && endpoints === c.endpoints) return c;
  return { ...c, routes, pendingRoutes, clusters, endpoints };
}

/**
 * PURE: the next snapshot after one state-of-the-world response of `type`. Throws ConvertError
 * (the NACK reason) if any resource cannot be used; then nothing of the response is applied.
 */
export function nextConfig(cur: RuntimeConfig, type: ResourceType, resources: Record<string, any>[], version: string): RuntimeConfig {
  const raw = new Map<string, object>();
  const names = new Set<string>();
  const nameOf = (r: any): string => (type === TYPE.endpoint ? r.cluster_name : r.name) ?? '';
  for (const r of resources) {
    const n = nameOf(r);
    if (names.has(n)) throw new ConvertError(`duplicate resource name "${n}" in one response`);
    names.add(n);
    raw.set(n, r);
  }
  const next = { ...cur, raw: { ...cur.raw, [type]: raw }, versions: { ...cur.versions, [type]: version } };
  switch (type) {
    case TYPE.listener: {
      const listeners = new Map<string, ListenerConfig>();
      const bound = new Map<string, string>();
      for (const r of resources) {
        const l = convertListener(r);
        const addr = `${l.address}:${l.port}`;
        if (l.port !== 0 && bound.has(addr)) throw new ConvertError(`listener ${l.name}: address ${addr} is also used by listener ${bound.get(addr)}`);
        bound.set(addr, l.name);
        listeners.set(l.name, l);
      }
      return settle({ ...next, listeners });
    }
    case TYPE.route: {
      // A table that names a warming cluster waits; the one it replaces serves meanwhile.
      const routes = new Map<string, RouteTable>();
      const pendingRoutes = new Map<string, RouteTable>();
      for (const r of resources) {
        const t = convertRouteConfig(r);
        if ([...clustersOf(t)].some((n) => warming(cur, n))) {
          pendingRoutes.set(r.name, t);
          const old = cur.routes.get(r.name);
          if (old) routes.set(r.name, old);
        } else routes.set(r.name, t);
      }
      return settle({ ...next, routes, pendingRoutes });
    }
    case TYPE.cluster: {
      const clusters = new Map<string, ClusterConfig>();
      for (const r of resources) clusters.set(r.name, convertCluster(r));
      const declaredClusters = new Set(clusters.keys());
      // A removed cluster that a route or listener still names stays, with its endpoints, until none does.
      const stillNamed = namedClusters(cur.listeners, cur.routes, cur.pendingRoutes);
      for (const n of stillNamed) {
        const old = cur.clusters.get(n);
        if (old && !clusters.has(n)) clusters.set(n, old);
      }
      // Endpoints of clusters that are gone are dropped (settle); those of new clusters come by EDS.
      return settle({ ...next, clusters, declaredClusters });
    }
    case TYPE.endpoint: {
      // State of the world for EDS covers only the names subscribed: merge, do not replace.
      const endpoints = new Map(cur.endpoints);
      for (const r of resources) endpoints.set(r.cluster_name, convertEndpoints(r));
      return settle({ ...next, endpoints });
    }
  }
  return next;
}

/** The RDS and EDS names this config needs: what the xDS client subscribes to. */
export function wantedNames(c: RuntimeConfig): { routes: string[]; endpoints: string[] } {
  const routes = [...c.listeners.values()].map((l) => l.rdsName).filter((n): n is string => !!n);
  const endpoints = [...c.clusters.values()].map((cl) => cl.edsName).filter((n): n is string => !!n);
  return { routes, endpoints };
}

/** What is still missing before the sidecar can serve all its listeners: empty when ready. */
export function missing(c: RuntimeConfig): string[] {
  const out: string[] = [];
  if (c.versions[TYPE.listener] === undefined) out.push('no listeners (LDS) yet');
  if (c.versions[TYPE.cluster] === undefined) out.push('no clusters (CDS) yet');
  for (const r of wantedNames(c).routes) {
    const p = c.pendingRoutes.get(r);
    if (c.routes.has(r)) continue;
    if (p) out.push(`route configuration ${r} waits for the endpoints of ${[...clustersOf(p)].filter((n) => warming(c, n)).join(', ')} (EDS)`);
    else out.push(`route configuration ${r} (RDS) not received`);
  }
  for (const e of wantedNames(c).endpoints) if (!c.endpoints.has(e)) out.push(`endpoints for ${e} (EDS) not received`);
  return out;
}
