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
//   - all the rules of all the routes for one Service are merged into one table, each match its
//     own entry, in the Gateway API's precedence: an Exact path, then a RegularExpression path,
//     then the longest PathPrefix; then a method match; then the most header matches; then the
//     most query parameter matches; then the oldest route (creation order, then
//     namespace/name), then rule and match order;
//   - PathPrefix matches whole path segments ("/foo" matches "/foo" and "/foo/bar", never
//     "/foobar"); a rule with no backend (nor redirect), or whose backends all weigh 0, answers 500;
//   - a backend (or mirror) in another namespace needs a ReferenceGrant there that lets this kind
//     of route from this namespace refer to that Service (api/referencegrant.ts); without one, its
//     share of requests goes to a cluster with no endpoints (503 naming it), and no copy is mirrored.
import type {
  Destination,
  GatewayGRPCRoute,
  GatewayHTTPRoute,
  GatewayValueMatch,
  HTTPBackendRef,
  HTTPHeaderFilter,
  HTTPMatchRequest,
  HTTPRoute,
  HTTPRouteFilter,
  HTTPRouteMatch,
  HTTPRouteRule,
  HeaderOperations,
  ParentReference,
  ReferenceGrant,
  StringMatch,
  VirtualService,
} from '../../api/types.ts';
import { referencePermitted } from '../../api/referencegrant.ts';
import { fqdn } from '../model/model.ts';
import { byPrecedence } from './services.ts';

/** Is a parentRef a Service (the mesh), rather than a Gateway? Its group must say core: an absent one is the Gateway API's own (the CRD's default). */
export function isServiceParent(p: ParentReference): boolean {
  return p.kind === 'Service' && (p.group === '' || p.group === 'core');
}

/** Where a route's references start from, and the grants that may let them cross namespaces. */
interface Refs {
  kind: 'HTTPRoute' | 'GRPCRoute';
  namespace: string;
  grants: readonly ReferenceGrant[];
}

/** One match of one rule, as a VirtualService http entry, with what orders it among the others. */
interface Entry {
  http: HTTPRoute;
  rank: readonly number[];
}

/** The VirtualServices that do what the mesh routes say, one per Service (and consumer namespace). */
export function meshRoutesAsVirtualServices(httpRoutes: readonly GatewayHTTPRoute[] = [], grpcRoutes: readonly GatewayGRPCRoute[] = [], grants: readonly ReferenceGrant[] = []): VirtualService[] {
  // host -> (route namespace, or "" for producer routes) -> entries
  const groups = new Map<string, { host: string; namespace: string; producer: boolean; entries: Entry[]; from: Set<string> }>();
  const routes: { kind: 'HTTPRoute' | 'GRPCRoute'; r: GatewayHTTPRoute | GatewayGRPCRoute }[] = [
    ...byPrecedence(httpRoutes).map((r) => ({ kind: 'HTTPRoute' as const, r })),
    ...byPrecedence(grpcRoutes).map((r) => ({ kind: 'GRPCRoute' as const, r })),
  ];
  routes.forEach(({ kind, r }, routeOrder) => {
    const ns = r.metadata.namespace;
    for (const parent of r.spec.parentRefs ?? []) {
      if (!isServiceParent(parent)) continue;
      const serviceNs = parent.namespace ?? ns;
      const host = fqdn(parent.name, serviceNs);
      const producer = serviceNs === ns;
      const key = `${host}|${producer ? '' : ns}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { host, namespace: ns, producer, entries: [], from: new Set() }));
      g.from.add(`${kind} ${ns}/${r.metadata.name}`);
      const refs: Refs = { kind, namespace: ns, grants };
      const entries = kind === 'HTTPRoute' ? httpEntries(r as GatewayHTTPRoute, parent, routeOrder, refs) : grpcEntries(r as GatewayGRPCRoute, parent, routeOrder, refs);
      g.entries.push(...entries);
    }
  });
  const out: VirtualService[] = [];
  for (const g of [...groups.values()].sort((a, b) => Number(a.producer) - Number(b.producer) || `${a.host}|${a.namespace}`.localeCompare(`${b.host}|${b.namespace}`))) {
    const http = [...g.entries].sort((a, b) => compareRank(a.rank, b.rank)).map((e) => e.http);
    out.push({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: `${g.producer ? 'producer' : 'consumer'}.${g.host}`, namespace: g.namespace, annotations: { [FROM_ANNOTATION]: [...g.from].join(', ') } },
      spec: { hosts: [g.host], exportTo: g.producer ? ['*'] : ['.'], http },
    });
  }
  return out;
}

/** On a VirtualService made from mesh routes: the routes it was made from. */
export const FROM_ANNOTATION = 'weft.io/from-routes';

/** A VirtualService made from consumer routes: for its namespace's clients, it comes before every other for its host. */
export function isConsumerRoutes(vs: VirtualService): boolean {
  return vs.metadata.annotations?.[FROM_ANNOTATION] !== undefined && vs.metadata.name.startsWith('consumer.');
}

const derived = new WeakMap<object, VirtualService[]>();

/** The mesh's VirtualServices and those its mesh routes make, made once per snapshot. */
export function allVirtualServices(mesh: { virtualServices: readonly VirtualService[]; httpRoutes?: readonly GatewayHTTPRoute[]; grpcRoutes?: readonly GatewayGRPCRoute[]; referenceGrants?: readonly ReferenceGrant[] }): readonly VirtualService[] {
  if (!mesh.httpRoutes?.length && !mesh.grpcRoutes?.length) return mesh.virtualServices;
  let all = derived.get(mesh);
  if (!all) derived.set(mesh, (all = [...mesh.virtualServices, ...meshRoutesAsVirtualServices(mesh.httpRoutes, mesh.grpcRoutes, mesh.referenceGrants)]));
  return all;
}

function compareRank(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
  return 0;
}

// Path kinds, in precedence order.
const EXACT = 0;
const REGEX = 1;
const PREFIX = 2;

function httpEntries(r: GatewayHTTPRoute, parent: ParentReference, routeOrder: number, refs: Refs): Entry[] {
  const out: Entry[] = [];
  (r.spec.rules ?? []).forEach((rule, i) => {
    const name = rule.name ? `${r.metadata.namespace}/${r.metadata.name}/${rule.name}` : `${r.metadata.namespace}/${r.metadata.name}.rules[${i}]`;
    const matches: HTTPRouteMatch[] = rule.matches?.length ? rule.matches : [{ path: { type: 'PathPrefix', value: '/' } }];
    matches.forEach((m, j) => {
      const type = m.path?.type ?? 'PathPrefix';
      const value = m.path?.value ?? '/';
      const kind = type === 'Exact' ? EXACT : type === 'RegularExpression' ? REGEX : PREFIX;
      const rank = [kind, -value.length, m.method ? 0 : 1, -(m.headers?.length ?? 0), -(m.queryParams?.length ?? 0), routeOrder, i, j];
      const base: HTTPMatchRequest = { ...headerMatches(m.headers), ...queryMatches(m.queryParams), ...(m.method ? { method: { exact: m.method } } : {}), ...(parent.port ? { port: parent.port } : {}) };
      const entryName = `${name}${matches.length > 1 ? `.matches[${j}]` : ''}`;
      if (kind !== PREFIX || value === '/' || value.endsWith('/')) {
        const uri: StringMatch = kind === EXACT ? { exact: value } : kind === REGEX ? { regex: value } : { prefix: value };
        out.push({ http: ruleAsHttp(rule, refs, entryName, [{ ...base, uri }], kind === PREFIX ? value : undefined), rank });
        return;
      }
      // A PathPrefix is whole segments: the path itself, or it and a slash. Two entries, each with
      // its own prefix rewrite (a replacePrefixMatch keeps what follows the prefix).
      out.push({ http: ruleAsHttp(rule, refs, entryName, [{ ...base, uri: { exact: value } }], value, 'exact'), rank });
      out.push({ http: ruleAsHttp(rule, refs, `${entryName}.subpath`, [{ ...base, uri: { prefix: `${value}/` } }], `${value}/`), rank });
    });
  });
  return out;
}

function grpcEntries(r: GatewayGRPCRoute, parent: ParentReference, routeOrder: number, refs: Refs): Entry[] {
  const out: Entry[] = [];
  (r.spec.rules ?? []).forEach((rule, i) => {
    const name = rule.name ? `${r.metadata.namespace}/${r.metadata.name}/${rule.name}` : `${r.metadata.namespace}/${r.metadata.name}.rules[${i}]`;
    const matches = rule.matches?.length ? rule.matches : [{}];
    matches.forEach((m, j) => {
      const { service, method, type } = m.method ?? {};
      // gRPC's path is /<service>/<method>: a method match is a path match.
      let uri: StringMatch;
      let kind: number;
      if (type === 'RegularExpression') {
        uri = { regex: `/${service || '[^/]+'}/${method || '[^/]+'}` };
        kind = REGEX;
      } else if (service && method) {
        uri = { exact: `/${service}/${method}` };
        kind = EXACT;
      } else if (service) {
        uri = { prefix: `/${service}/` };
        kind = PREFIX;
      } else if (method) {
        uri = { regex: `/[^/]+/${escapeRegex(method)}` };
        kind = REGEX;
      } else {
        uri = { prefix: '/' };
        kind = PREFIX;
      }
      const rank = [kind, -((service?.length ?? 0) + (method?.length ?? 0)), 1, -(m.headers?.length ?? 0), 0, routeOrder, i, j];
      const match: HTTPMatchRequest = { uri, ...headerMatches(m.headers), ...(parent.port ? { port: parent.port } : {}) };
      out.push({ http: ruleAsHttp(rule, refs, `${name}${matches.length > 1 ? `.matches[${j}]` : ''}`, [match], undefined), rank });
    });
  });
  return out;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
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

/**
 * One rule as a VirtualService http entry with the given matches. `matchedPrefix` is the prefix
 * the entry matches (for replacePrefixMatch); `exact` says the entry matches that path whole.
 */
function ruleAsHttp(rule: Pick<HTTPRouteRule, 'filters' | 'backendRefs' | 'timeouts' | 'retry'>, refs: Refs, name: string, match: HTTPMatchRequest[], matchedPrefix: string | undefined, exact?: 'exact'): HTTPRoute {
  const filters: HTTPRouteFilter[] = rule.filters ?? [];
  const of = <K extends keyof HTTPRouteFilter>(type: HTTPRouteFilter['type'], key: K) => filters.find((f) => f.type === type)?.[key];
  const out: HTTPRoute = { name, match };
  const request = headerOps(of('RequestHeaderModifier', 'requestHeaderModifier'));
  const response = headerOps(of('ResponseHeaderModifier', 'responseHeaderModifier'));
  if (request || response) out.headers = { ...(request ? { request } : {}), ...(response ? { response } : {}) };

  const redirect = of('RequestRedirect', 'requestRedirect');
  if (redirect) {
    out.redirect = {
      ...(redirect.scheme ? { scheme: redirect.scheme } : {}),
      ...(redirect.hostname ? { authority: redirect.hostname } : {}),
      ...(redirect.port ? { port: redirect.port } : redirect.scheme ? { derivePort: 'FROM_PROTOCOL_DEFAULT' as const } : {}),
      redirectCode: redirect.statusCode ?? 302,
      ...pathRewrite(redirect.path, matchedPrefix, exact),
    };
    if (redirect.port && !redirect.scheme) delete out.redirect.derivePort;
    return out;
  }
  const rewrite = of('URLRewrite', 'urlRewrite');
  if (rewrite) {
    const p = pathRewrite(rewrite.path, matchedPrefix, exact);
    out.rewrite = {
      ...(rewrite.hostname ? { authority: rewrite.hostname } : {}),
      ...(p.uri !== undefined ? { uriRegexRewrite: { match: '^.*$', rewrite: p.uri } } : {}),
      ...(p.prefixRewrite !== undefined ? { uri: p.prefixRewrite } : {}),
    };
  }
  const mirrors = filters
    .filter((f) => f.type === 'RequestMirror' && f.requestMirror && permitted(refs, f.requestMirror.backendRef))
    .map((f) => {
      const m = f.requestMirror!;
      const pct = m.percent ?? (m.fraction ? (100 * m.fraction.numerator) / (m.fraction.denominator ?? 100) : 100);
      return { destination: destinationOf(m.backendRef, refs.namespace), percentage: { value: pct } };
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
  out.route = backends.map((b) => ({ destination: permitted(refs, b) ? destinationOf(b, refs.namespace) : refused(b, refs.namespace), weight: b.weight ?? 1, ...backendHeaders(b) }));
  if (rule.timeouts?.request) out.timeout = rule.timeouts.request;
  if (rule.retry || rule.timeouts?.backendRequest) {
    const codes = rule.retry?.codes ?? [];
    out.retries = {
      attempts: rule.retry?.attempts ?? 2,
      retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', ...(rule.retry ? codes.map(String) : ['503'])].join(','),
      ...(rule.timeouts?.backendRequest ? { perTryTimeout: rule.timeouts.backendRequest } : {}),
      ...(rule.retry?.backoff ? { backoff: rule.retry.backoff } : {}),
    };
  }
  return out;
}

/**
 * A path modifier as a redirect's or rewrite's path: `uri` for the whole path, `prefixRewrite` for
 * the matched prefix. ReplacePrefixMatch keeps what follows the prefix; on the entry that matched
 * "<prefix>/", the slash stays.
 */
function pathRewrite(p: { type: string; replaceFullPath?: string; replacePrefixMatch?: string } | undefined, matchedPrefix: string | undefined, exact?: 'exact'): { uri?: string; prefixRewrite?: string } {
  if (!p) return {};
  if (p.type === 'ReplaceFullPath') return { uri: p.replaceFullPath ?? '/' };
  const to = p.replacePrefixMatch ?? '/';
  // The path was the prefix itself: it becomes the replacement.
  if (exact || matchedPrefix === undefined) return { uri: to };
  // The entry matched "<prefix>/" (or "/"): the slash before what follows stays.
  return { prefixRewrite: to.endsWith('/') ? to : `${to}/` };
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

/** May the route refer to this backend? (Its own namespace, or a ReferenceGrant in the backend's.) */
function permitted(refs: Refs, b: { name: string; namespace?: string }): boolean {
  return referencePermitted(refs.grants, { kind: refs.kind, namespace: refs.namespace }, { namespace: b.namespace ?? refs.namespace, name: b.name });
}

/** Where the share of a backend no ReferenceGrant permits goes: a host nothing serves, whose name says why (503 naming it). */
function refused(b: { name: string; namespace?: string; port?: number }, namespace: string): Destination {
  return { host: `no-referencegrant-for.${fqdn(b.name, b.namespace ?? namespace)}`, ...(b.port ? { port: { number: b.port } } : {}) };
}

function destinationOf(b: { name: string; namespace?: string; port?: number }, namespace: string): Destination {
  return { host: fqdn(b.name, b.namespace ?? namespace), ...(b.port ? { port: { number: b.port } } : {}) };
}
