// PURE: which route a request takes. Virtual host by authority (Envoy's order: exact domain,
// longest suffix wildcard, longest prefix wildcard, then "*"), then the first route whose path,
// headers and query parameters all match, then a weighted pick among its clusters.
import type { RouteEntry, RouteTable, VirtualHost } from '../xds-client/convert-route.ts';

export function findVirtualHost(table: RouteTable, authority: string): VirtualHost | undefined {
  // Clients send the same authority request after request: the last answer per table is kept
  // (tables are immutable, so it stays right), and a string compare replaces hashing it.
  const last = lastHost.get(table);
  if (last !== undefined && last.authority === authority) return last.vh;
  const vh = lookupVirtualHost(table, authority);
  lastHost.set(table, { authority, vh });
  return vh;
}

const lastHost = new WeakMap<RouteTable, { authority: string; vh: VirtualHost | undefined }>();

function lookupVirtualHost(table: RouteTable, authority: string): VirtualHost | undefined {
  const host = authority.toLowerCase();
  const exact = table.exact.get(host);
  if (exact) return exact;
  for (const s of table.suffix) if (host.endsWith(s.suffix)) return s.vh;
  for (const p of table.prefix) if (host.startsWith(p.prefix)) return p.vh;
  return table.any;
}

export interface RequestView {
  path: string; // without the query string
  query: string; // without the leading '?', may be empty
  header: (name: string) => string | undefined; // lower-case name; ':method', ':authority', ':scheme' too
}

export function findRoute(vh: VirtualHost, req: RequestView): RouteEntry | undefined {
  let params: URLSearchParams | undefined;
  // Indexed loops: this runs for every request, and an iterator is an object.
  const routes = vh.routes;
  next: for (let i = 0; i < routes.length; i++) {
    const r = routes[i];
    if (!r.path(req.path)) continue;
    const hs = r.headers;
    for (let j = 0; j < hs.length; j++) {
      const h = hs[j];
      if (h.match(req.header(h.name)) === h.invert) continue next;
    }
    if (r.query.length) {
      params ??= new URLSearchParams(req.query);
      if (!r.query.every((q) => q.match(params!.get(q.name) ?? undefined))) continue;
    }
    return r;
  }
  return undefined;
}

/** Weighted random pick, as Envoy does for weighted_clusters (a route's, or a tcp_proxy's). `rand` is in [0, 1). */
export function pickTarget<T extends { weight: number }>(route: { clusters: readonly T[]; totalWeight: number }, rand: number): T {
  const cs = route.clusters;
  if (cs.length === 1) return cs[0];
  let x = rand * route.totalWeight;
  for (let i = 0; i < cs.length; i++) {
    if (x < cs[i].weight) return cs[i];
    x -= cs[i].weight;
  }
  return cs[cs.length - 1];
}

export function pickCluster(route: RouteEntry, rand: number): string {
  return pickTarget(route, rand).name;
}
