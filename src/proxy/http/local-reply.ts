// Routes the sidecar answers itself, without an upstream: direct_response (Istio's
// directResponse) and redirect (Istio's redirect). Not errors: errors.ts makes those.
import type { Redirect, RouteEntry } from '../xds-client/convert-route.ts';
import { applyEdits, rewritePath } from './edits.ts';
import type { Downstream, HeaderList, RequestHead } from './types.ts';

/** Answers a direct_response or redirect route (with the CORS layer's headers, if any); returns the status sent. */
export function localReply(ds: Downstream, route: RouteEntry, cors: HeaderList = []): number {
  const a = route.action;
  if (a.kind === 'direct') {
    const headers = applyEdits(a.body?.length ? ['content-type', 'text/plain', ...cors] : cors, route.response);
    ds.respond(a.status, headers, a.body?.length ?? 0, !a.body?.length || ds.head.method === 'HEAD');
    if (a.body?.length && ds.head.method !== 'HEAD') {
      ds.write(a.body);
      ds.end();
    }
    return a.status;
  }
  if (a.kind === 'redirect') {
    const headers = applyEdits(['location', location(ds.head, route, a.redirect), ...cors], route.response);
    ds.respond(a.redirect.status, headers, 0, true);
    return a.redirect.status;
  }
  throw new Error(`route ${route.name} forwards; it has no local reply`);
}

const DEFAULT_PORT: Record<string, string> = { http: '80', https: '443' };

/** Envoy's redirect URL: each part the redirect sets replaces the request's. */
export function location(h: RequestHead, route: RouteEntry, r: Redirect): string {
  const fromScheme = 'http'; // what a sidecar's listeners accept today (TLS comes with the security issue)
  const scheme = r.scheme ?? fromScheme;
  let host = r.host ?? h.authority;
  if (r.port !== undefined) host = `${hostname(host)}:${r.port}`;
  else if (r.host === undefined && scheme !== fromScheme) host = hostname(host); // the old port does not fit the new scheme
  if (host.endsWith(`:${DEFAULT_PORT[scheme]}`)) host = hostname(host);
  let path = h.path;
  let query = r.stripQuery ? '' : h.query;
  if (r.path !== undefined) {
    const q = r.path.indexOf('?');
    path = q < 0 ? r.path : r.path.slice(0, q);
    if (q >= 0) query = r.path.slice(q + 1);
  } else path = rewritePath(h.path, route, r.prefixRewrite, r.regexRewrite);
  return `${scheme}://${host}${path}${query ? `?${query}` : ''}`;
}

/** "host:port" or "[v6]:port" -> the host part. */
export function hostname(authority: string): string {
  const close = authority.lastIndexOf(']');
  const colon = authority.lastIndexOf(':');
  return colon > close ? authority.slice(0, colon) : authority;
}
