// VirtualService delegation, as Istio merges it (pilot/pkg/model: virtualservice_controller.go
// mergeVirtualServices, virtualservice.go MergeHTTPRoutes and the functions it calls). PURE.
//
// A VirtualService without hosts is a delegate: it makes no routes of its own. A root route (one
// with `delegate`) is replaced by the delegate's http routes, in their order, each
//   - with its matches narrowed by the root route's: every match of the delegate route must fit
//     (not conflict with) at least one match of the root route, and is merged with each it fits;
//     a delegate route one of whose matches fits none is left out;
//   - with what it leaves unset taken from the root route: rewrite, directResponse, timeout,
//     retries, fault, mirror(s) and their percentages, corsPolicy, headers; names joined
//     ("root-delegate");
//   - with its destinations' short names resolved in the delegate's namespace.
// A root route whose delegate does not exist, has hosts (so is no delegate) or is not exported to
// the root's namespace is left out; the root's other routes stay. The delegate's namespace
// defaults to the root's.
//
// It lives here, beside validation, because both translate (the routes) and `weft analyze` (why a
// root route made fewer routes than its delegate has) need it, and api/ imports nothing of ours.
import type { Destination, HTTPMatchRequest, HTTPRoute, StringMatch, VirtualService } from './types.ts';
import { fqdn } from './rules.ts';

/** Why a root route makes fewer routes than its delegate has, or why a delegate makes none. */
export interface DelegationNote {
  /** The resource the note is about: the root, or (for a delegate no root names) the delegate. */
  vs: VirtualService;
  path: string;
  message: string;
}

export interface Delegation {
  /** The VirtualServices that make routes: roots with their delegates merged in, the others as they were. Delegates are left out. */
  virtualServices: readonly VirtualService[];
  notes: DelegationNote[];
}

const keyOf = (namespace: string, name: string) => `${namespace}/${name}`;

/** Protobuf semantics: "" is unset. */
const str = (v: string | undefined | null): string | undefined => (v === undefined || v === null || v === '' ? undefined : v);
const isDelegate = (vs: VirtualService) => !vs.spec.hosts?.length;
const isRoot = (vs: VirtualService) => (vs.spec.http ?? []).some((r) => r.delegate);

export function mergeDelegates(all: readonly VirtualService[]): Delegation {
  if (!all.some((vs) => isDelegate(vs) || isRoot(vs))) return { virtualServices: all, notes: [] };
  const byKey = new Map(all.map((vs) => [keyOf(vs.metadata.namespace, vs.metadata.name), vs]));
  const named = new Set<string>();
  const resolved = new Map<VirtualService, HTTPRoute[]>();
  const routesOf = (d: VirtualService) => {
    let rs = resolved.get(d);
    if (!rs) resolved.set(d, (rs = (d.spec.http ?? []).map((r) => resolveShortNames(r, d.metadata.namespace))));
    return rs;
  };
  const notes: DelegationNote[] = [];
  const out: VirtualService[] = [];
  for (const vs of all) {
    if (isDelegate(vs)) continue;
    if (!isRoot(vs)) {
      out.push(vs);
      continue;
    }
    const ns = vs.metadata.namespace;
    const http: HTTPRoute[] = [];
    (vs.spec.http ?? []).forEach((root, i) => {
      if (!root.delegate) {
        http.push(root);
        return;
      }
      const path = `spec.http[${i}].delegate`;
      const dKey = keyOf(str(root.delegate.namespace) ?? ns, root.delegate.name ?? '');
      named.add(dKey);
      const d = byKey.get(dKey);
      const leftOut = (why: string) => notes.push({ vs, path, message: `${why}: this route is left out, as in Istio (its requests go to the routes after it)` });
      if (!d) return leftOut(`VirtualService ${dKey} does not exist`);
      if (!isDelegate(d)) return leftOut(`VirtualService ${dKey} has hosts, so it is not a delegate (a delegate VirtualService has none)`);
      if (!exportedTo(d, ns)) return leftOut(`VirtualService ${dKey} is not exported to namespace ${ns} (its exportTo: ${(d.spec.exportTo ?? []).join(', ')})`);
      routesOf(d).forEach((sub, j) => {
        const merged = mergeHTTPRoute(root, sub);
        if (!merged) {
          notes.push({ vs, path, message: `http[${j}] of VirtualService ${dKey} is left out, as in Istio: one of its matches narrows none of this route's matches` });
          return;
        }
        if (merged.name === undefined) defaultNames.set(merged, `${keyOf(ns, vs.metadata.name)}.http[${i}]/${dKey}.http[${j}]`);
        http.push(merged);
      });
    });
    out.push({ ...vs, spec: { ...vs.spec, http } });
  }
  for (const d of all) {
    if (isDelegate(d) && !named.has(keyOf(d.metadata.namespace, d.metadata.name))) {
      notes.push({ vs: d, path: 'spec.hosts', message: 'no hosts, and no VirtualService delegates to it: it makes no routes' });
    }
  }
  return { virtualServices: out, notes };
}

const defaultNames = new WeakMap<HTTPRoute, string>();

/** For a merged route without a name: "root-ns/root.http[i]/delegate-ns/delegate.http[j]", where it came from (for config dumps and error messages). */
export function delegatedRouteName(r: HTTPRoute): string | undefined {
  return defaultNames.get(r);
}

/** Istio's exportTo check for a delegate: unset is every namespace (Istio's default defaultVirtualServiceExportTo). */
function exportedTo(d: VirtualService, ns: string): boolean {
  const e = d.spec.exportTo;
  if (!e?.length) return true;
  return e.includes('*') || e.includes(ns) || (e.includes('.') && d.metadata.namespace === ns);
}

/** A delegate's route with its destinations' and mirrors' hosts resolved in the delegate's namespace, as Istio does before merging. */
function resolveShortNames(r: HTTPRoute, namespace: string): HTTPRoute {
  const dest = <D extends Destination | undefined>(d: D): D => (d && typeof d.host === 'string' ? { ...d, host: fqdn(d.host, namespace) } : d);
  const out: HTTPRoute = { ...r };
  if (r.route) out.route = r.route.map((x) => ({ ...x, destination: dest(x.destination) }));
  if (r.mirror) out.mirror = dest(r.mirror);
  if (r.mirrors) out.mirrors = r.mirrors.map((m) => ({ ...m, destination: dest(m.destination) }));
  return out;
}

/** A name joined as Istio joins them: the delegate's, else the root's, both as "root-delegate". */
function joinNames(root: string | undefined, delegate: string | undefined): string | undefined {
  if (!str(delegate)) return str(root);
  return str(root) ? `${root}-${delegate}` : delegate;
}

/** What a delegate route leaves unset and takes from its root route (Istio's mergeHTTPRoute). */
const INHERITED = ['rewrite', 'directResponse', 'timeout', 'retries', 'fault', 'mirror', 'mirrorPercent', 'mirrorPercentage', 'corsPolicy', 'headers'] as const;

/** A delegate route merged with its root route, or undefined where their matches conflict. */
export function mergeHTTPRoute(root: HTTPRoute, delegate: HTTPRoute): HTTPRoute | undefined {
  const match = mergeMatches(root.match, delegate.match);
  if (match === CONFLICT) return undefined;
  const out: Record<string, unknown> = { ...delegate };
  if (match) out.match = match;
  const name = joinNames(root.name, delegate.name);
  if (name !== undefined) out.name = name;
  else delete out.name;
  for (const k of INHERITED) if ((out[k] ?? undefined) === undefined && root[k] !== undefined && root[k] !== null) out[k] = root[k];
  // A list: empty is unset.
  if (!delegate.mirrors?.length && root.mirrors?.length) out.mirrors = root.mirrors;
  return out as HTTPRoute;
}

const CONFLICT = Symbol('conflict');

/** Istio's mergeHTTPMatchRequests: each delegate match merged with every root match it fits; one that fits none is a conflict. */
function mergeMatches(root: HTTPMatchRequest[] | undefined, delegate: HTTPMatchRequest[] | undefined): HTTPMatchRequest[] | undefined | typeof CONFLICT {
  if (!root?.length) return delegate;
  if (!delegate?.length) return root;
  const out: HTTPMatchRequest[] = [];
  for (const sub of delegate) {
    const fits = root.filter((m) => !hasConflict(m, sub));
    if (!fits.length) return CONFLICT;
    for (const m of fits) out.push(mergeMatch(m, sub));
  }
  return out;
}

type Map_<T> = Record<string, T> | undefined;
const own = <T>(m: Map_<T> | null, k: string): T | undefined => (m && Object.hasOwn(m, k) ? m[k] : undefined);
const entries = <T>(m: Map_<T> | null): [string, T][] => (m ? Object.entries(m) : []);
/** Both maps' entries, the delegate's winning; unset when both are empty. */
function mergeMaps<T>(root: Map_<T> | null, delegate: Map_<T> | null): Record<string, T> | undefined {
  const out = Object.fromEntries([...entries(root), ...entries(delegate)]);
  return Object.keys(out).length ? out : undefined;
}

/** Istio's mergeHTTPMatchRequest: the delegate's match, with what it leaves unset taken from the root's. */
function mergeMatch(root: HTTPMatchRequest, delegate: HTTPMatchRequest): HTTPMatchRequest {
  const out: HTTPMatchRequest = { ...delegate };
  const set = <K extends keyof HTTPMatchRequest>(k: K, v: HTTPMatchRequest[K] | undefined) => {
    if (v === undefined || v === null) delete out[k];
    else out[k] = v;
  };
  set('name', joinNames(root.name, delegate.name));
  for (const k of ['uri', 'scheme', 'method', 'authority'] as const) set(k, delegate[k] ?? root[k]);
  for (const k of ['headers', 'withoutHeaders', 'queryParams'] as const) set(k, mergeMaps(root[k], delegate[k]));
  set('sourceLabels', mergeMaps(root.sourceLabels, delegate.sourceLabels));
  if (!delegate.port) set('port', root.port);
  if (!str(delegate.sourceNamespace)) set('sourceNamespace', root.sourceNamespace);
  if (!delegate.gateways?.length) set('gateways', root.gateways);
  if (!str(delegate.statPrefix)) set('statPrefix', root.statPrefix);
  return out;
}

/** Istio's hasConflict: a delegate match that could take a request its root match would not. */
function hasConflict(root: HTTPMatchRequest, leaf: HTTPMatchRequest): boolean {
  for (const k of ['uri', 'scheme', 'method', 'authority'] as const) if (stringMatchConflict(root[k], leaf[k])) return true;
  for (const k of ['headers', 'withoutHeaders', 'queryParams'] as const) {
    for (const [name, m] of entries(leaf[k])) if (stringMatchConflict(own(root[k], name), m)) return true;
  }
  if (!!root.ignoreUriCase !== !!leaf.ignoreUriCase) return true;
  if (root.port && leaf.port && root.port !== leaf.port) return true;
  if (str(root.sourceNamespace) && (leaf.sourceNamespace ?? '') !== root.sourceNamespace) return true;
  for (const [k, v] of entries(leaf.sourceLabels)) {
    const r = own(root.sourceLabels, k);
    if (r !== undefined && r !== v) return true;
  }
  const rg = root.gateways ?? [];
  const lg = leaf.gateways ?? [];
  if (rg.length && lg.length && (rg.length < lg.length || lg.some((g) => !rg.includes(g)))) return true;
  return false;
}

/**
 * Istio's stringMatchConflict: none where either is unset; a regex fits only where the other has
 * no exact, prefix or regex; an exact root takes only the same exact; a prefix root takes exacts
 * and prefixes that start with it; anything else conflicts.
 */
function stringMatchConflict(root: StringMatch | undefined | null, leaf: StringMatch | undefined | null): boolean {
  if (!root || !leaf) return false;
  const some = (m: StringMatch) => str(m.regex) !== undefined || str(m.prefix) !== undefined || str(m.exact) !== undefined;
  if (str(root.regex) !== undefined && some(leaf)) return true;
  if (str(leaf.regex) !== undefined && some(root)) return true;
  const exact = str(root.exact);
  if (exact !== undefined) return str(leaf.prefix) !== undefined || (leaf.exact ?? '') !== exact;
  const prefix = str(root.prefix);
  if (prefix !== undefined) {
    const lp = str(leaf.prefix);
    if (lp !== undefined) return !lp.startsWith(prefix);
    const le = str(leaf.exact);
    if (le !== undefined) return !le.startsWith(prefix);
  }
  return true;
}
