// Envoy's CORS filter (envoy.filters.http.cors), per route: Istio's corsPolicy. A request whose
// Origin the policy allows is a CORS request: a preflight (OPTIONS with
// Access-Control-Request-Method) is answered here, with the allowed methods, headers and max age;
// any other gets Access-Control-Allow-Origin (and credentials, exposed headers) on its response.
// A request from another origin, or with none, passes as if there were no policy (a preflight from
// another origin goes on to the upstream unless the policy says otherwise).
import type { Cors } from '../xds-client/convert-route.ts';
import type { Downstream, HeaderList, RequestHead } from './types.ts';

export type CorsOutcome = { kind: 'none' } | { kind: 'preflight'; headers: HeaderList } | { kind: 'actual'; headers: HeaderList };

const NONE: CorsOutcome = { kind: 'none' };

function header(h: HeaderList, name: string): string | undefined {
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
  return undefined;
}

/** PURE: what the policy does with a request. */
export function corsOutcome(c: Cors, head: RequestHead): CorsOutcome {
  const origin = header(head.headers, 'origin');
  if (origin === undefined) return NONE;
  const preflight = head.method === 'OPTIONS' && header(head.headers, 'access-control-request-method') !== undefined;
  // As Envoy's isOriginAllowed: a matcher that matches "*" itself allows every origin.
  const allowed = c.origins.some((m) => m('*') || m(origin));
  if (!allowed) return preflight && !c.forwardUnmatchedPreflights ? { kind: 'preflight', headers: [] } : NONE;
  const h: HeaderList = ['access-control-allow-origin', origin];
  if (c.allowCredentials) h.push('access-control-allow-credentials', 'true');
  if (preflight) {
    if (c.allowMethods) h.push('access-control-allow-methods', c.allowMethods);
    if (c.allowHeaders) h.push('access-control-allow-headers', c.allowHeaders);
    if (c.maxAge) h.push('access-control-max-age', c.maxAge);
    return { kind: 'preflight', headers: h };
  }
  if (c.exposeHeaders) h.push('access-control-expose-headers', c.exposeHeaders);
  return { kind: 'actual', headers: h };
}

/** Answers a preflight: 200, no body. */
export function answerPreflight(ds: Downstream, headers: HeaderList): void {
  ds.respond(200, headers, 0, true);
}

/** A response's headers with the CORS ones set (replacing any the upstream sent). */
export function withCors(h: HeaderList, cors: HeaderList): HeaderList {
  // Headers another layer adds beside CORS's (an external authorizer's) leave the upstream's CORS headers alone.
  if (!cors.some((n, i) => i % 2 === 0 && n.startsWith('access-control-'))) return h.concat(cors);
  const out: HeaderList = [];
  for (let i = 0; i < h.length; i += 2) if (!h[i].startsWith('access-control-')) out.push(h[i], h[i + 1]);
  return out.concat(cors);
}
