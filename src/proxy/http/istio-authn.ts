// PURE: the dynamic metadata a verified JWT leaves for the layers after the JWT layer (authorization):
//   - 'envoy.filters.http.jwt_authn': { <payload_in_metadata>: payload }, Envoy's own (Istio sets
//     the key "payload"; AuthorizationPolicy's request.auth.* match there: translate/authz-match.ts);
//   - 'istio_authn': what Istio's authn filter derived from it (request.auth.principal iss/sub,
//     request.auth.audiences, request.auth.presenter, request.auth.claims, request.auth.raw_claims),
//     for matchers written against that older shape.

export const JWT_AUTHN_METADATA = 'envoy.filters.http.jwt_authn';
export const ISTIO_AUTHN_METADATA = 'istio_authn';

/** Filter name -> its Struct, as plain JSON (what authz/metadata-matcher.ts reads). */
export type DynamicMetadata = Record<string, Record<string, unknown>>;

/** Envoy's normalize_payload_in_metadata: the named claims, when strings, become lists of their space-delimited words. */
export function normalizePayload(payload: Record<string, unknown>, spaceDelimited: readonly string[]): Record<string, unknown> {
  if (!spaceDelimited.some((c) => typeof payload[c] === 'string')) return payload;
  const out = { ...payload };
  for (const c of spaceDelimited) {
    const v = out[c];
    if (typeof v === 'string') out[c] = v.split(' ').filter((w) => w !== '');
  }
  return out;
}

/**
 * Istio's authn attributes of a verified payload: the principal is "<iss>/<sub>" (only with both),
 * audiences the first audience, the presenter `azp`; claims keep nested objects and make every
 * string a one-item list (so that a list match reads a string claim and a list claim alike).
 */
export function istioAuthn(payload: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (typeof payload.iss === 'string' && typeof payload.sub === 'string') out['request.auth.principal'] = `${payload.iss}/${payload.sub}`;
  const aud = Array.isArray(payload.aud) ? payload.aud.find((a) => typeof a === 'string') : payload.aud;
  if (typeof aud === 'string') out['request.auth.audiences'] = aud;
  if (typeof payload.azp === 'string') out['request.auth.presenter'] = payload.azp;
  out['request.auth.claims'] = claims(payload);
  out['request.auth.raw_claims'] = JSON.stringify(payload);
  return out;
}

function claims(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (typeof v === 'string') out[k] = [v];
    else if (Array.isArray(v)) out[k] = v.filter((x) => typeof x === 'string');
    else if (v !== null && typeof v === 'object') out[k] = claims(v as Record<string, unknown>);
  }
  return out;
}
