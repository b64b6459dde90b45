// PURE: the outbound route configuration for one proxy scope (namespace and the labels that
// sourceLabels names). Which VirtualService applies to which host, and which of its matches apply
// to this proxy, are decided here, as Istio's sidecar route builder decides them:
//   - a VirtualService is seen by the namespaces its exportTo names (all, when unset);
//   - for each service, the first visible VirtualService naming its host exactly applies, else the
//     visible one with the most specific wildcard host that matches it;
//   - a match whose sourceLabels, sourceNamespace or gateways leave this proxy out is dropped, and
//     a route all of whose matches are dropped is dropped too (it never becomes a catch-all);
//   - short names ("reviews") only reach the service of that name in the proxy's own namespace.
import type { HTTPMatchRequest, HTTPRoute, StringMatch, VirtualService } from '../../api/types.ts';
import { type ProxyScope, exportedTo, fqdn, hostMatches, labelsMatch, outboundClusterName } from '../model/model.ts';
import { type Service, appliesToMesh, byPrecedence, domainsFor, resolveDestination, routedPorts } from './services.ts';
import { duration } from './duration.ts';

export const OUTBOUND_ROUTE = 'outbound';

/** The VirtualServices a scope sees, indexed by the hosts they name. */
interface VsIndex {
  exact: Map<string, VirtualService>;
  /** Wildcard hosts, most specific (longest) first. */
  wildcard: { pattern: string; vs: VirtualService }[];
}

function indexVirtualServices(all: readonly VirtualService[], scope: ProxyScope): VsIndex {
  const exact = new Map<string, VirtualService>();
  const wild = new Map<string, VirtualService>();
  for (const vs of byPrecedence(all)) {
    if (!appliesToMesh(vs) || !exportedTo(vs.spec.exportTo, vs.metadata.namespace, scope.namespace)) continue;
    for (const h of vs.spec.hosts ?? []) {
      const host = fqdn(h, vs.metadata.namespace);
      const into = host.startsWith('*') ? wild : exact;
      if (!into.has(host)) into.set(host, vs);
    }
  }
  const wildcard = [...wild.entries()].map(([pattern, vs]) => ({ pattern, vs })).sort((a, b) => b.pattern.length - a.pattern.length || a.pattern.localeCompare(b.pattern));
  return { exact, wildcard };
}

function virtualServiceFor(index: VsIndex, host: string): VirtualService | undefined {
  return index.exact.get(host) ?? index.wildcard.find((w) => hostMatches(w.pattern, host))?.vs;
}

export function outboundRoutes(virtualServices: readonly VirtualService[], services: ReadonlyMap<string, Service>, scope: ProxyScope): object {
  const index = indexVirtualServices(virtualServices, scope);
  const claimed = new Set<string>();
  // A name reaches one virtual host: the first to claim it (services before VirtualService-only hosts).
  const claim = (domains: string[]) => domains.filter((d) => !claimed.has(d) && claimed.add(d));

  const virtualHosts: object[] = [];
  const served = new Set<string>();
  for (const s of services.values()) {
    served.add(s.host);
    const vs = virtualServiceFor(index, s.host);
    const cluster = outboundClusterName(s.port, '', s.host);
    // An opaque TCP port is reached by CONNECT only; a port of undeclared protocol both ways (the
    // sidecar detects what the tunnel carries). VirtualService http routes do not apply to TCP.
    const routes =
      s.handling === 'tcp'
        ? [connectRoute(cluster)]
        : [...(vs ? httpRoutes(vs, s.port, services, scope) : [defaultRoute(cluster)]), ...(s.handling === 'detect' ? [connectRoute(cluster)] : [])];
    const domains = claim(domainsFor(s.host, s.port, scope.namespace));
    if (domains.length) virtualHosts.push({ name: `${s.host}:${s.port}`, domains, routes });
  }
  // A VirtualService for a host no workload serves yet still routes, so that traffic to it gets
  // "no healthy endpoint in cluster ..." rather than "no route".
  for (const [host, vs] of [...index.exact.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    if (served.has(host)) continue;
    for (const port of routedPorts(host, services)) {
      const domains = claim(domainsFor(host, port, scope.namespace));
      if (domains.length) virtualHosts.push({ name: `${host}:${port}`, domains, routes: httpRoutes(vs, port, services, scope) });
    }
  }
  return { name: OUTBOUND_ROUTE, virtual_hosts: virtualHosts };
}

/** CONNECT to the service's authority becomes an opaque tunnel to the cluster (Envoy's CONNECT termination). */
function connectRoute(cluster: string): object {
  return { name: 'connect', match: { connect_matcher: {} }, route: { cluster, upgrade_configs: [{ upgrade_type: 'CONNECT' }] } };
}

function defaultRoute(cluster: string): object {
  return { name: 'default', match: { prefix: '/' }, route: { cluster, timeout: { seconds: 0 } } };
}

/** Does a match apply to this proxy and port? Istio evaluates these when it builds a proxy's routes. */
function matchApplies(m: HTTPMatchRequest, port: number, scope: ProxyScope): boolean {
  if (m.port !== undefined && m.port !== 0 && m.port !== port) return false;
  if (m.sourceLabels && !labelsMatch(m.sourceLabels, scope.labels)) return false;
  if (m.sourceNamespace && m.sourceNamespace !== scope.namespace) return false;
  if (m.gateways && m.gateways.length > 0 && !m.gateways.includes('mesh')) return false;
  return true;
}

function httpRoutes(vs: VirtualService, port: number, services: ReadonlyMap<string, Service>, scope: ProxyScope): object[] {
  const out: object[] = [];
  (vs.spec.http ?? []).forEach((r: HTTPRoute, i: number) => {
    if (!r.route || r.route.length === 0) return; // redirect, directResponse, delegate: later issues
    const all = r.match && r.match.length > 0 ? r.match : undefined;
    const matches = all ? all.map((m, j) => ({ m, j })).filter(({ m }) => matchApplies(m, port, scope)) : [{ m: undefined, j: 0 }];
    if (matches.length === 0) return; // none of its matches is for this proxy
    const action = routeAction(vs, r, port, services);
    for (const { m, j } of matches) {
      out.push({ name: r.name ?? `${vs.metadata.namespace}/${vs.metadata.name}.http[${i}]${all && all.length > 1 ? `.match[${j}]` : ''}`, match: routeMatch(m), route: action });
    }
  });
  return out;
}

function routeAction(vs: VirtualService, r: HTTPRoute, port: number, services: ReadonlyMap<string, Service>): object {
  const dests = (r.route ?? []).map((d) => {
    const t = resolveDestination(vs, d.destination, port, services);
    // A subset no DestinationRule defines has no cluster: its traffic gets 503, as in Istio.
    return { name: outboundClusterName(t.port, t.subset, t.host), weight: d.weight ?? (r.route!.length === 1 ? 100 : 0) };
  });
  const action: Record<string, unknown> = {};
  if (dests.length === 1) action.cluster = dests[0].name;
  // weight is a google.protobuf.UInt32Value: {value: n}.
  else action.weighted_clusters = { clusters: dests.filter((d) => d.weight > 0).map((d) => ({ name: d.name, weight: { value: d.weight } })) };
  action.timeout = r.timeout ? duration(r.timeout) : { seconds: 0 };
  return action;
}

/** RE2 syntax for a literal string. */
function quoteRegex(s: string): string {
  return s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}

function routeMatch(m: HTTPMatchRequest | undefined): object {
  const out: Record<string, unknown> = {};
  const uri = m?.uri;
  if (uri?.exact !== undefined) out.path = uri.exact;
  else if (uri?.regex !== undefined) out.safe_regex = { regex: uri.regex };
  // Envoy's RouteMatch has no suffix: the whole path must end with it.
  else if (uri?.suffix !== undefined) out.safe_regex = { regex: `${m?.ignoreUriCase ? '(?i)' : ''}.*${quoteRegex(uri.suffix)}` };
  else out.prefix = uri?.prefix ?? '/';
  if (m?.ignoreUriCase) out.case_sensitive = { value: false }; // a BoolValue
  const headers: object[] = [];
  const header = (name: string, sm: StringMatch, invert = false) => {
    const h: Record<string, unknown> = { name };
    if (isPresence(sm)) h.present_match = true;
    else h.string_match = stringMatch(sm);
    if (invert) h.invert_match = true;
    headers.push(h);
  };
  if (m?.method) header(':method', m.method);
  if (m?.authority) header(':authority', m.authority);
  if (m?.scheme) header(':scheme', m.scheme);
  for (const [name, sm] of Object.entries(m?.headers ?? {})) header(name.toLowerCase(), sm);
  for (const [name, sm] of Object.entries(m?.withoutHeaders ?? {})) header(name.toLowerCase(), sm, true);
  if (headers.length) out.headers = headers;
  const query = Object.entries(m?.queryParams ?? {}).map(([name, sm]) => (isPresence(sm) ? { name, present_match: true } : { name, string_match: stringMatch(sm) }));
  if (query.length) out.query_parameters = query;
  return out;
}

/** An empty match (`{}`), and withoutHeaders' `regex: "*"`, test presence. */
function isPresence(sm: StringMatch): boolean {
  return (sm.exact === undefined && sm.prefix === undefined && sm.regex === undefined && sm.suffix === undefined) || sm.regex === '*';
}

function stringMatch(sm: StringMatch): object {
  if (sm.exact !== undefined) return { exact: sm.exact };
  if (sm.prefix !== undefined) return { prefix: sm.prefix };
  if (sm.suffix !== undefined) return { suffix: sm.suffix };
  return { safe_regex: { regex: sm.regex ?? '' } };
}
