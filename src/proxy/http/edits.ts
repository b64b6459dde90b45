// PURE: the router's changes to a forwarded request and to its response: header edits (Envoy's
// *_headers_to_add and *_headers_to_remove: removals first, then additions in order) and the
// path and authority rewrites. The codec's own lists are never changed: edits make copies.
import type { HeaderEdits, RouteEntry, Target } from '../xds-client/convert-route.ts';
import type { HeaderList, RequestHead } from './types.ts';

/** All values of a header, joined as one (RFC 9110 5.3), for matching and hashing; `name` in lower case. */
export function headerValue(h: readonly string[], name: string): string | undefined {
  let v: string | undefined;
  // By length and first character first: a name that came off the wire is a string of its own,
  // and comparing it with another is a call into V8 even where the lengths differ, and names of
  // one length are common (content-type and x-request-id).
  const n = name.length;
  const c = name.charCodeAt(0);
  for (let i = 0; i < h.length; i += 2) {
    const k = h[i]!;
    // (An empty name has no first character to compare: NaN.)
    if (k.length === n && (n === 0 || k.charCodeAt(0) === c) && k === name) v = v === undefined ? h[i + 1] : `${v},${h[i + 1]}`;
  }
  return v;
}

export function applyEdits(h: HeaderList, e: HeaderEdits | undefined): HeaderList {
  if (!e) return h;
  let out: HeaderList = [];
  for (let i = 0; i < h.length; i += 2) if (!e.remove.includes(h[i])) out.push(h[i], h[i + 1]);
  for (const a of e.add) {
    const has = out.some((v, i) => i % 2 === 0 && v === a.name);
    if (a.action === 'add_if_absent' && has) continue;
    if (a.action === 'overwrite_if_exists' && !has) continue;
    if (a.action !== 'append' && has) out = without(out, a.name);
    out.push(a.name, a.value);
  }
  return out;
}

function without(h: HeaderList, name: string): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i < h.length; i += 2) if (h[i] !== name) out.push(h[i], h[i + 1]);
  return out;
}

/** The path after a prefix_rewrite or regex_rewrite (Envoy: the query string is kept as it was). */
export function rewritePath(path: string, route: Pick<RouteEntry, 'prefixLength'>, prefix: string | undefined, regex: { replaceAll(v: string): string } | undefined): string {
  if (prefix !== undefined) return route.prefixLength === undefined ? prefix : prefix + path.slice(route.prefixLength);
  if (regex) return regex.replaceAll(path);
  return path;
}

/** The request as the upstream gets it: the route's rewrites, then the chosen cluster's and the route's header edits. */
export function upstreamHead(h: RequestHead, route: RouteEntry, target: Target): RequestHead {
  const rw = route.rewrite;
  if (!rw && !target.request && !route.request && target.host === undefined) return h;
  let headers = applyEdits(h.headers, target.request);
  headers = applyEdits(headers, route.request);
  return {
    ...h,
    headers,
    path: rw ? rewritePath(h.path, route, rw.prefix, rw.regex) : h.path,
    authority: target.host ?? rw?.host ?? h.authority,
  };
}

/** The response headers after the chosen cluster's and the route's edits. */
export function responseHeaders(h: HeaderList, route: RouteEntry, target: Target | undefined): HeaderList {
  return applyEdits(applyEdits(h, target?.response), route.response);
}
