// The sidecar's runtime config: an immutable snapshot built from accepted xDS resources.
// Each accepted update builds a new snapshot from the old one and swaps it in whole; requests in
// flight keep the snapshot they started with. A rejected update leaves the old one serving.
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
}

export const EMPTY_CONFIG: RuntimeConfig = {
  listeners: new Map(),
  routes: new Map(),
  clusters: new Map(),
  endpoints: new Map(),
  raw: {},
  versions: {},
};

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
      return { ...next, listeners };
    }
    case TYPE.route: {
      const routes = new Map<string, RouteTable>();
      for (const r of resources) routes.set(r.name, convertRouteConfig(r));
      return { ...next, routes };
    }
    case TYPE.cluster: {
      const clusters = new Map<string, ClusterConfig>();
      for (const r of resources) clusters.set(r.name, convertCluster(r));
      // Endpoints of clusters that are gone are dropped; those of new clusters come by EDS.
      const wanted = new Set([...clusters.values()].map((c) => c.edsName).filter((n): n is string => !!n));
      const endpoints = new Map([...cur.endpoints].filter(([n]) => wanted.has(n)));
      return { ...next, clusters, endpoints };
    }
    case TYPE.endpoint: {
      // State of the world for EDS covers only the names subscribed: merge, do not replace.
      const endpoints = new Map(cur.endpoints);
      for (const r of resources) endpoints.set(r.cluster_name, convertEndpoints(r));
      return { ...next, endpoints };
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
  for (const r of wantedNames(c).routes) if (!c.routes.has(r)) out.push(`route configuration ${r} (RDS) not received`);
  for (const e of wantedNames(c).endpoints) if (!c.endpoints.has(e)) out.push(`endpoints for ${e} (EDS) not received`);
  return out;
}
