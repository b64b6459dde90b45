// The key a RING_HASH or MAGLEV cluster hashes a request by: Envoy's route hash_policy, the first
// policy the request has a value for. A cookie policy with a TTL gives a request that has no such
// cookie a new one (Set-Cookie on its response), so that the client sticks from then on.
import type { HashPolicy } from '../xds-client/convert-route.ts';
import { hash32 } from '../upstream/hash.ts';
import { headerValue } from './edits.ts';
import type { HeaderList, RequestHead } from './types.ts';

export interface HashKey {
  key: number;
  /** A Set-Cookie value for the response, when the key is a cookie made for this request. */
  setCookie?: string;
}

function cookie(h: HeaderList, name: string): string | undefined {
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] !== 'cookie') continue;
    for (const part of h[i + 1].split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    }
  }
  return undefined;
}

/** The request's hash key, or undefined when no policy applies (the cluster then picks at random, as Envoy does). */
export function hashKeyOf(policies: readonly HashPolicy[], head: RequestHead, random: () => number = Math.random, remoteAddress?: () => string): HashKey | undefined {
  for (const p of policies) {
    if (p.kind === 'source_ip') {
      // A sidecar's client is its app: every request of one client sidecar hashes alike, as in Istio.
      const v = remoteAddress?.();
      if (v) return { key: hash32(v) };
    } else if (p.kind === 'header') {
      const v = p.name === ':authority' ? head.authority : p.name === ':path' ? head.path : headerValue(head.headers, p.name);
      if (v !== undefined) return { key: hash32(v) };
    } else if (p.kind === 'query') {
      if (!head.query) continue;
      const v = new URLSearchParams(head.query).get(p.name);
      if (v !== null) return { key: hash32(v) };
    } else {
      const v = cookie(head.headers, p.name);
      if (v !== undefined) return { key: hash32(v) };
      if (p.ttlSeconds === undefined) continue;
      const made = Math.floor(random() * 2 ** 52).toString(16).padStart(13, '0');
      const attrs = [`${p.name}="${made}"`, ...(p.ttlSeconds > 0 ? [`Max-Age=${p.ttlSeconds}`] : []), ...(p.path ? [`Path=${p.path}`] : []), ...(p.attributes ?? []), 'HttpOnly'];
      return { key: hash32(made), setCookie: attrs.join('; ') };
    }
  }
  return undefined;
}
