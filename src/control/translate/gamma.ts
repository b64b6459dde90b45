// PURE: the Gateway API's mesh routes ("GAMMA": HTTPRoute and GRPCRoute whose parentRefs name a
// Service) as the VirtualServices that do the same, as Istio itself converts them. Everything
// after that (scope, matches, actions, the sidecar) is the VirtualService path.
//
// The Gateway API's rules, as they map:
//   - a route binds to each Service parent (on one port if the parentRef names one); routes of
//     other parents (Gateways) attach to nothing here (support.ts warns);
//   - a route in the Service's namespace is a producer route and applies to every client; a route
//     in another namespace is a consumer route and applies to clients of its namespace only, where
//     it comes before the producer routes of that Service;
//   - all the rules of all the routes of one kind for one Service are merged into one table, each
//     match its own entry, in precedence order: an Exact path, then the longest PathPrefix, then a
//     RegularExpression path (the Gateway API leaves regexes to the implementation; this is
//     Istio's order); then a method match; then the most header matches; then the most query
//     parameter matches; then the oldest route (creation order, then namespace/name), rule and
//     match order. GRPCRoutes and HTTPRoutes are not merged: on a port where a Service's
//     GRPCRoutes have routes, its HTTPRoutes do not apply (GEP-1426);
//   - PathPrefix matches whole path segments ("/foo" and "/foo/" match "/foo" and "/foo/bar",
//     never "/foobar"); a rule with no backend (nor redirect), or whose backends all weigh 0,
//     answers 500, and a route with no rules is one such rule (the CRD's default);
//   - backends may be in any namespace: mesh routes need no ReferenceGrant (GEP-1294, as Istio).
import type {
  Destination,
  GatewayGRPCRoute,
  GatewayHTTPRoute,
  GatewayValueMatch,
  HTTPBackendRef,
  HTTPCORSFilter,
  HTTPHeaderFilter,
  HTTPMatchRequest,
  HTTPRoute,
  HTTPRouteFilter,
  HTTPRouteMatch,
  HTTPRouteRule,
  HeaderOperations,
  ParentReference,
  StringMatch,
  VirtualService,
} from '../../api/types.ts';
import { isService, parentGroupKind } from '../../api/gateway-common.ts';
import { mergeDelegates } from '../../api/delegation.ts';
import { DOMAIN_SUFFIX } from '../model/model.ts';
import { byPrecedence } from './services.ts';
import { quoteRegex } from './regex.ts';

/**
 * Is a parentRef a Service (the mesh), rather than a Gateway? Its group must say core: an absent
 * one is the Gateway API's own (the CRD's default). The validator's own test (support.ts warns of
 * the other parents), so that what it calls attached is what is translated.
 */
function isServiceParent(p: ParentReference): boolean {
  return isService(parentGroupKind(p as unknown as Record<string, unknown>));
}

/** A Service's host: its name is a DNS label (support.ts refuses others), so it cannot name another host. */
function serviceHost(name: string, namespace: string): string {
  return `${name}.${namespace}.${DOMAIN_SUFFIX}`;
}

/** One match of one rule, as a VirtualService http entry, with what orders it among the others. */
interface Entry {
  http: HTTPRoute;
  rank: readonly number[];
}

/** The VirtualServices that do what the mesh routes say, one per Service (and consumer namespace). */
export function meshRoutesAsVirtualServices(httpRoutes: readonly GatewayHTTPRoute[] = [], grpcRoutes: readonly GatewayGRPCRoute[] = []): VirtualService[] {
  // host and (for consumer routes) namespace -> entries, by route kind
  type Group = { host: string; namespace: string; producer: boolean; http: Entry[]; grpc: Entry[]; from: Set<string>; created?: number };
  const groups = new Map<string, Group>();
  const routes: { kind: 'HTTPRoute' | 'GRPCRoute'; r: GatewayHTTPRoute | GatewayGRPCRoute }[] = [
    ...byPrecedence(httpRoutes).map((r) => ({ kind: 'HTTPRoute' as const, r })),
    ...byPrecedence(grpcRoutes).map((r) => ({ kind: 'GRPCRoute' as const, r })),
  ];
  routes.forEach(({ kind, r }, routeOrder) => {
    const ns = r.metadata.namespace;
    for (const parent of r.spec.parentRefs ?? []) {
      if (!isServiceParent(parent)) continue;
      const serviceNs = parent.namespace ?? ns;
      const host = serviceHost(parent.name, serviceNs);
      const producer = serviceNs === ns;
      const key = `${host}|${producer ? '' : ns}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { host, namespace: ns, producer, http: [], grpc: [], from: new Set() }));
      g.from.add(`${kind} ${ns}/${r.metadata.name}`);
      // The derived VirtualService is as old as its oldest route, for precedence against VirtualServices.
      if (r.created !== undefined) g.created = Math.min(g.created ?? Infinity, r.created);
      if (kind === 'HTTPRoute') g.http.push(...httpEntries(r as GatewayHTTPRoute, parent, routeOrder));
      else g.grpc.push(...grpcEntries(r as GatewayGRPCRoute, parent, routeOrder));
    }
  });
  const out: VirtualService[] = [];
  for (const g of [...groups.values()].sort((a, b) => Number(a.producer) - Number(b.producer) || `${a.host}|${a.namespace}`.localeCompare(`${b.host}|${b.namespace}`))) {
    // One VirtualService per kind, the GRPCRoutes' first (same age, and "grpcroute" sorts before
    // "httproute"): on a port where the GRPCRoutes have routes they apply, and the HTTPRoutes only
    // where they have none, never merged into one table.
    for (const [kind, entries] of [['grpcroute', g.grpc], ['httproute', g.http]] as const) {
      if (!entries.length) continue;
      const http = [...entries].sort((a, b) => compareRank(a.rank, b.rank)).map((e) => e.http);
      const vs: VirtualService = {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: `${g.producer ? 'producer' : 'consumer'}.${kind}.${g.host}`, namespace: g.namespace, annotations: { [FROM_ANNOTATION]: [...g.from].join(', ') } },
        spec: { hosts: [g.host], exportTo: g.producer ? ['*'] : ['.'], http },
        ...(g.created !== undefined ? { created: g.created } : {}),
      };
      if (!g.producer) consumerRoutes.add(vs);
      out.push(vs);
    }
  }
  return out;
}

/** On a VirtualService made from mesh routes: the routes it was made from (for people reading config dumps). */
export const FROM_ANNOTATION = 'weft.io/from-routes';

/** The VirtualServices made from consumer routes: by identity, never by anything a user can write. */
const consumerRoutes = new WeakSet<VirtualService>();

/** A VirtualService made from consumer routes: for its namespace's clients, it comes before every other for its host. */
export function isConsumerRoutes(vs: VirtualService): boolean {
  return consumerRoutes.has(vs);
}

const derived = new WeakMap<object, readonly VirtualService[]>();

/**
 * The VirtualServices that make routes, made once per snapshot: the mesh's, with delegation merged
 * (api/delegation.ts: roots take their delegates' routes, delegates make none of their own), and
 * those its mesh routes make (which never delegate, as Istio's Gateway API routes do not).
 */
export function allVirtualServices(mesh: { virtualServices: readonly VirtualService[]; httpRoutes?: readonly GatewayHTTPRoute[]; grpcRoutes?: readonly GatewayGRPCRoute[] }): readonly VirtualService[] {
  let all = derived.get(mesh);
  if (!all) {
    const own = mergeDelegates(mesh.virtualServices).virtualServices;
    all = mesh.httpRoutes?.length || mesh.grpcRoutes?.length ? [...own, ...meshRoutesAsVirtualServices(mesh.httpRoutes, mesh.grpcRoutes)] : own;
    derived.set(mesh, all);
  }
  return all;
}

function compareRank(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
  return 0;
}

// Path kinds, in precedence order (Istio's).
const EXACT = 0;
const PREFIX = 1;
const REGEX = 2;

function httpEntries(r: GatewayHTTPRoute, parent: ParentReference, routeOrder: number): Entry[] {
  const out: Entry[] = [];
  // No rules: the CRD's default, one rule matching every path with no backend (a 500).
  const rules: HTTPRouteRule[] = r.spec.rules?.length ? r.spec.rules : [{}];
  rules.forEach((rule, i) => {
    const name = rule.name ? `${r.metadata.namespace}/${r.metadata.name}/${rule.name}` : `${r.metadata.namespace}/${r.metadata.name}.rules[${i}]`;
    const matches: HTTPRouteMatch[] = rule.matches?.length ? rule.matches : [{ path: { type: 'PathPrefix', value: '/' } }];
    matches.forEach((m, j) => {
      const type = m.path?.type ?? 'PathPrefix';
      const kind = type === 'Exact' ? EXACT : type === 'RegularExpression' ? REGEX : PREFIX;
      // A PathPrefix's trailing "/" is ignored: "/foo/" is "/foo".
      const value = kind === PREFIX ? (m.path?.value ?? '/').replace(/(.)\/+$/, '$1') : (m.path?.value ?? '/');
      const headerNames = new Set((m.headers ?? []).map((h) => h.name.toLowerCase())).size;
      const queryNames = new Set((m.queryParams ?? []).map((q) => q.name)).size;
      const rank = [kind, -value.length, m.method ? 0 : 1, -headerNames, -queryNames, routeOrder, i, j];
      const base: HTTPMatchRequest = { ...headerMatches(m.headers), ...queryMatches(m.queryParams), ...(m.method ? { method: { exact: m.method } } : {}), ...(parent.port ? { port: parent.port } : {}) };
      const entryName = `${name}${matches.length > 1 ? `.matches[${j}]` : ''}`;
      const entry = (uri: StringMatch, suffix: string, rewrite: PathKind) => out.push({ http: ruleAsHttp(rule, r.metadata.namespace, `${entryName}${suffix}`, [{ ...base, uri }], rewrite), rank });
      if (kind === EXACT) entry({ exact: value }, '', 'whole');
      else if (kind === REGEX) entry({ regex: value }, '', 'none');
      else if (value === '/') {
        // Everything: "/" itself (a prefix replacement is its whole path), and the rest after the slash.
        entry({ exact: '/' }, '', 'whole');
        entry({ prefix: '/' }, '.subpath', 'after-slash');
      } else {
        // Whole segments: the prefix itself, or it and a slash.
        entry({ exact: value }, '', 'whole');
        entry({ prefix: `${value}/` }, '.subpath', 'after-slash');
      }
    });
  });
  return out;
}

/** What an entry's path match leaves for a ReplacePrefixMatch: the whole path was the prefix, or the prefix and a slash were matched, or it is a regex (no prefix). */
type PathKind = 'whole' | 'after-slash' | 'none';

function grpcEntries(r: GatewayGRPCRoute, parent: ParentReference, routeOrder: number): Entry[] {
  const out: Entry[] = [];
  (r.spec.rules ?? []).forEach((rule, i) => {
    const name = rule.name ? `${r.metadata.namespace}/${r.metadata.name}/${rule.name}` : `${r.metadata.namespace}/${r.metadata.name}.rules[${i}]`;
    const matches = rule.matches?.length ? rule.matches : [{}];
    matches.forEach((m, j) => {
      const { service, method, type } = m.method ?? {};
      // gRPC's path is /<service>/<method>: a method match is a path match. Istio's order: exact,
      // then a service (a prefix), then regular expressions; then the longer service and method.
      let uri: StringMatch;
      let kind: number;
      if (type === 'RegularExpression') {
        uri = { regex: `/(?:${service || '[^/]+'})/(?:${method || '[^/]+'})` };
        kind = REGEX;
      } else if (service && method) {
        uri = { exact: `/${service}/${method}` };
        kind = EXACT;
      } else if (service) {
        uri = { prefix: `/${service}/` };
        kind = PREFIX;
      } else if (method) {
        uri = { regex: `/[^/]+/${quoteRegex(method)}` };
        kind = REGEX;
      } else {
        uri = { prefix: '/' };
        kind = PREFIX;
      }
      const headerNames = new Set((m.headers ?? []).map((h) => h.name.toLowerCase())).size;
      const rank = [kind, -(service?.length ?? 0), -(method?.length ?? 0), -headerNames, 0, routeOrder, i, j];
      const match: HTTPMatchRequest = { uri, ...headerMatches(m.headers), ...(parent.port ? { port: parent.port } : {}) };
      out.push({ http: ruleAsHttp(rule, r.metadata.namespace, `${name}${matches.length > 1 ? `.matches[${j}]` : ''}`, [match], 'none'), rank });
    });
  });
  return out;
}

/** Header matches by lower-case name; of two with one name, the first counts (the Gateway API's rule). */
function headerMatches(hs: readonly GatewayValueMatch[] | undefined): Pick<HTTPMatchRequest, 'headers'> {
  if (!hs?.length) return {};
  return { headers: firstByName(hs, (h) => h.name.toLowerCase()) };
}

function queryMatches(qs: readonly GatewayValueMatch[] | undefined): Pick<HTTPMatchRequest, 'queryParams'> {
  if (!qs?.length) return {};
  return { queryParams: firstByName(qs, (q) => q.name) };
}

function firstByName(ms: readonly GatewayValueMatch[], nameOf: (m: GatewayValueMatch) => string): Record<string, StringMatch> {
  const out: Record<string, StringMatch> = {};
  for (const m of ms) if (!Object.hasOwn(out, nameOf(m))) out[nameOf(m)] = valueMatch(m);
  return out;
}

function valueMatch(m: GatewayValueMatch): StringMatch {
  return m.type === 'RegularExpression' ? { regex: m.value } : { exact: m.value };
}

/** One rule as a VirtualService http entry with the given matches, whose path match is of `kind` (for ReplacePrefixMatch). */
function ruleAsHttp(rule: Pick<HTTPRouteRule, 'filters' | 'backendRefs' | 'timeouts' | 'retry'>, namespace: string, name: string, match: HTTPMatchRequest[], kind: PathKind): HTTPRoute {
  const filters: HTTPRouteFilter[] = rule.filters ?? [];
  const of = <K extends keyof HTTPRouteFilter>(type: HTTPRouteFilter['type'], key: K) => filters.find((f) => f.type === type)?.[key];
  const out: HTTPRoute = { name, match };
  const request = headerOps(of('RequestHeaderModifier', 'requestHeaderModifier'));
  const response = headerOps(of('ResponseHeaderModifier', 'responseHeaderModifier'));
  if (request || response) out.headers = { ...(request ? { request } : {}), ...(response ? { response } : {}) };
  const cors = of('CORS', 'cors');
  if (cors) out.corsPolicy = corsPolicyOf(cors);

  const redirect = of('RequestRedirect', 'requestRedirect');
  if (redirect) {
    out.redirect = {
      ...(redirect.scheme ? { scheme: redirect.scheme } : {}),
      ...(redirect.hostname ? { authority: redirect.hostname } : {}),
      ...(redirect.port ? { port: redirect.port } : redirect.scheme ? { derivePort: 'FROM_PROTOCOL_DEFAULT' as const } : {}),
      redirectCode: redirect.statusCode ?? 302,
      ...pathRewrite(redirect.path, kind),
    };
    if (redirect.port && !redirect.scheme) delete out.redirect.derivePort;
    return out;
  }
  const rewrite = of('URLRewrite', 'urlRewrite');
  if (rewrite) {
    const p = pathRewrite(rewrite.path, kind);
    out.rewrite = {
      ...(rewrite.hostname ? { authority: rewrite.hostname } : {}),
      ...(p.uri !== undefined ? { uriRegexRewrite: { match: '^.*$', rewrite: p.uri } } : {}),
      ...(p.prefixRewrite !== undefined ? { uri: p.prefixRewrite } : {}),
    };
  }
  const mirrors = filters
    .filter((f) => f.type === 'RequestMirror' && f.requestMirror)
    .map((f) => {
      const m = f.requestMirror!;
      const pct = m.percent ?? (m.fraction ? (100 * m.fraction.numerator) / (m.fraction.denominator ?? 100) : 100);
      return { destination: destinationOf(m.backendRef, namespace), percentage: { value: pct } };
    });
  if (mirrors.length) out.mirrors = mirrors;

  const backends = (rule.backendRefs ?? []).filter((b) => (b.weight ?? 1) > 0);
  if (backends.length === 0) {
    // The Gateway API: no backend to send to is a 500.
    out.directResponse = { status: 500, body: { string: `route ${name} has no backend with a weight above 0\n` } };
    delete out.mirrors;
    delete out.rewrite;
    return out;
  }
  out.route = backends.map((b) => ({ destination: destinationOf(b, namespace), weight: b.weight ?? 1, ...backendHeaders(b) }));
  if (rule.timeouts?.request) out.timeout = rule.timeouts.request;
  if (rule.retry || rule.timeouts?.backendRequest) {
    const codes = rule.retry?.codes ?? [];
    out.retries = {
      attempts: rule.retry?.attempts ?? 2,
      retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', ...(rule.retry ? codes.map(String) : ['503'])].join(','),
      ...(rule.timeouts?.backendRequest ? { perTryTimeout: rule.timeouts.backendRequest } : {}),
      // A back-off of 0 is Envoy's default (it takes none below 1 ms).
      ...(rule.retry?.backoff && !/^(?:0+(?:h|m|s|ms))+$/.test(rule.retry.backoff) ? { backoff: rule.retry.backoff } : {}),
    };
  }
  return out;
}

/**
 * A path modifier as a redirect's or rewrite's path: `uri` for the whole path, `prefixRewrite` for
 * the matched prefix. ReplacePrefixMatch keeps what follows the prefix: on an entry that matched
 * the prefix whole, the path becomes the replacement ("" is "/"); on one that matched the prefix
 * and a slash, the slash stays.
 */
function pathRewrite(p: { type: string; replaceFullPath?: string; replacePrefixMatch?: string } | undefined, kind: PathKind): { uri?: string; prefixRewrite?: string } {
  if (!p) return {};
  if (p.type === 'ReplaceFullPath') return { uri: p.replaceFullPath || '/' };
  const to = p.replacePrefixMatch || '/';
  if (kind === 'after-slash') return { prefixRewrite: to.endsWith('/') ? to : `${to}/` };
  return { uri: to };
}

/**
 * The CORS filter as Istio's corsPolicy (its createCorsFilter), and better: an origin with a
 * wildcard host ("https://*.example.com", "*" greedy to the left, dots too) matches as the
 * Gateway API says, where Istio takes it literally; "*" alone is any origin (Envoy's rule).
 * maxAge is 5 s when unset, the CRD's default.
 */
function corsPolicyOf(c: HTTPCORSFilter): Record<string, unknown> {
  const origin = (o: string) => (o !== '*' && o.includes('*') ? { regex: o.split('*').map(quoteRegex).join('.*') } : { exact: o });
  return {
    ...(c.allowOrigins?.length ? { allowOrigins: c.allowOrigins.filter((o) => o !== '').map(origin) } : {}),
    ...(c.allowMethods?.length ? { allowMethods: c.allowMethods } : {}),
    ...(c.allowHeaders?.length ? { allowHeaders: c.allowHeaders } : {}),
    ...(c.exposeHeaders?.length ? { exposeHeaders: c.exposeHeaders } : {}),
    ...(c.allowCredentials ? { allowCredentials: true } : {}),
    maxAge: `${c.maxAge ?? 5}s`,
  };
}

function headerOps(f: HTTPHeaderFilter | undefined): HeaderOperations | undefined {
  if (!f) return undefined;
  const ops: HeaderOperations = {};
  if (f.set?.length) ops.set = Object.fromEntries(f.set.map((h) => [h.name.toLowerCase(), h.value]));
  if (f.add?.length) ops.add = Object.fromEntries(f.add.map((h) => [h.name.toLowerCase(), h.value]));
  if (f.remove?.length) ops.remove = f.remove.map((n) => n.toLowerCase());
  return ops;
}

function backendHeaders(b: HTTPBackendRef): { headers?: HTTPRoute['headers'] } {
  const request = headerOps(b.filters?.find((f) => f.type === 'RequestHeaderModifier')?.requestHeaderModifier);
  const response = headerOps(b.filters?.find((f) => f.type === 'ResponseHeaderModifier')?.responseHeaderModifier);
  if (!request && !response) return {};
  return { headers: { ...(request ? { request } : {}), ...(response ? { response } : {}) } };
}

function destinationOf(b: { name: string; namespace?: string; port?: number }, namespace: string): Destination {
  return { host: serviceHost(b.name, b.namespace ?? namespace), ...(b.port ? { port: { number: b.port } } : {}) };
}
