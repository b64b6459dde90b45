// PURE: a workload's RequestAuthentications -> Envoy's jwt_authn filter for its inbound HCMs, as
// Istio builds it (pilot/pkg/security/authn/policy_applier.go, convertToEnvoyJwtConfig):
//   - the policies that apply to a sidecar are those of its namespace whose selector takes its
//     labels (no selector, or one without labels, takes every workload) and those without a selector
//     in the root namespace; a policy with targetRef(s) applies to gateways and waypoints only;
//   - all their jwtRules together, sorted by issuer (Istio does, so that the config is stable);
//   - rule i is provider "origins-<i>": issuer, audiences, key set, token locations, forward,
//     forward_payload_header, claim_to_headers, payload_in_metadata ("payload", what Istio's RBAC
//     filters read), normalize_payload_in_metadata (space-delimited claims: scope, permission and
//     the rule's own);
//   - one rule for every path ("/"): a token, if present, must verify; a request with none passes.
//     One provider: requires_any {provider, allow_missing}. Several: requires_any {each provider,
//     requires_all {each: requires_any {provider, allow_missing}}}; the outer OR lets providers that
//     share a location (the Authorization header, by default) each verify their own issuer's tokens.
//   - bypass_cors_preflight: a CORS preflight carries no credentials.
// Key sets: inline jwks as local_jwks; a jwksUri as remote_jwks, which the sidecar fetches, caches
// (Envoy's default, 10 min) and refreshes. istiod by default fetches the URI itself and inlines the
// keys; here the sidecar does (Istio's PILOT_JWT_ENABLE_REMOTE_JWKS=envoy), so a key rotation
// reaches it without a push and a JWKS the sidecar cannot reach fails requests with tokens as
// Envoy's "Jwks remote fetch is failed" (docs/config.md). A rule with neither names the key set
// its issuer's OpenID discovery document points to (jwks_uri), which the control plane finds
// (control/oidc.ts) and hands in as `discovered`; until then, or when it cannot, the rule gets a
// key set no token verifies against, so tokens of that issuer are refused (istiod's fake JWKS).
import type { JWTRule, RequestAuthentication } from '../../api/types.ts';
import { TYPE } from '../../xds/types.ts';
import { ROOT_NAMESPACE } from '../model/model.ts';
import { type PolicyTarget, requestAuthenticationApplies } from '../../api/policy-select.ts';
import { byPrecedence } from './services.ts';
import { duration } from './duration.ts';

const NONE_DISCOVERED: ReadonlyMap<string, string> = new Map();

export const JWT_AUTHN_FILTER = 'envoy.filters.http.jwt_authn';
/** Where every provider's verified payload goes in the filter's dynamic metadata. */
export const JWT_PAYLOAD_KEY = 'payload';

/** Istio's default for how long fetching a jwksUri may take (jwtRule.timeout). */
const DEFAULT_JWKS_TIMEOUT = '5s';

/**
 * The key set of a rule whose issuer's keys are not known (OpenID discovery not done, or failed):
 * one RSA-2048 public key whose private key was thrown away when it was made (as istiod's fake
 * JWKS), so every token of that issuer fails to verify (401) and none is let through unverified.
 */
export const UNRESOLVED_JWKS = JSON.stringify({
  keys: [
    {
      kty: 'RSA',
      kid: 'weft-unresolved-issuer',
      alg: 'RS256',
      use: 'sig',
      e: 'AQAB',
      n: '1OevHd5o5afcXoP3ASM80_BdX6govFnT-wMUNiJEgekujvQuhJRwAujr6VyySa4tDAwU_O0S1yKBBDaF2Aj_xv4mc8vohV1be_O3T4UYLtDZVgH7UrVGsulih4n7zlPKO8hVWGKEGaaAKEUpVjjPda3GYjyuZOOaXkMnluht2oi-K5V4XeXD2yLoMrMlr9edLbS2FjAIl3zxEr-oolesxssljlT84d65w75BuCZsJTK9SyPml_g-A_nXXARWTgSYM0d3gjFgPP922hqmZwZ5Eu-D9NVgCq3Q3uETfoXjipA4wYy68TED5CFHBTI7tVpHomTsDeSQRLg4l152qZJEzQ',
    },
  ],
});

/** Claims Istio always treats as space-delimited strings, before a rule's own spaceDelimitedClaims. */
const SPACE_DELIMITED = ['scope', 'permission'];

/** The RequestAuthentications that apply to a workload's sidecar, oldest first. */
export function jwtPoliciesFor(all: readonly RequestAuthentication[] | undefined, w: PolicyTarget, rootNamespace: string = ROOT_NAMESPACE): RequestAuthentication[] {
  return byPrecedence(all ?? []).filter((ra) => requestAuthenticationApplies(ra, w, rootNamespace));
}

/** The jwt_authn HTTP filter for a workload, or undefined when no rule applies to it. */
export function jwtAuthnFilter(all: readonly RequestAuthentication[] | undefined, w: PolicyTarget, rootNamespace: string = ROOT_NAMESPACE, discovered: ReadonlyMap<string, string> = NONE_DISCOVERED): object | undefined {
  const rules = jwtPoliciesFor(all, w, rootNamespace).flatMap((ra) => ra.spec.jwtRules ?? []);
  if (!rules.length) return undefined;
  // A stable sort: rules with one issuer keep their policies' order.
  rules.sort((a, b) => ((a.issuer ?? '') < (b.issuer ?? '') ? -1 : (a.issuer ?? '') > (b.issuer ?? '') ? 1 : 0));
  const providers: Record<string, object> = {};
  rules.forEach((r, i) => (providers[`origins-${i}`] = provider(r, discovered)));
  const names = Object.keys(providers);
  const optional = (name: string) => ({ requires_any: { requirements: [{ provider_name: name }, { allow_missing: {} }] } });
  const requires = names.length === 1 ? optional(names[0]!) : { requires_any: { requirements: [...names.map((n) => ({ provider_name: n })), { requires_all: { requirements: names.map(optional) } }] } };
  return {
    name: JWT_AUTHN_FILTER,
    typed_config: { '@type': TYPE.jwtAuthn, providers, rules: [{ match: { prefix: '/' }, requires }], bypass_cors_preflight: true },
  };
}

function provider(r: JWTRule, discovered: ReadonlyMap<string, string>): object {
  const p: Record<string, unknown> = { issuer: r.issuer };
  if (r.audiences?.length) p.audiences = r.audiences;
  const uri = r.jwksUri ?? r.jwks_uri ?? (r.jwks === undefined && r.issuer ? discovered.get(r.issuer) : undefined);
  // A URI that is no URL (only a discovered one can be: a written one is checked at apply) gets
  // the key set no token verifies against, as one not found, rather than stopping the push.
  const cluster = uri === undefined ? undefined : jwksCluster(uri);
  if (r.jwks !== undefined) p.local_jwks = { inline_string: r.jwks };
  else if (uri === undefined || cluster === undefined) p.local_jwks = { inline_string: UNRESOLVED_JWKS };
  else p.remote_jwks = { http_uri: { uri, cluster, timeout: duration(r.timeout ?? DEFAULT_JWKS_TIMEOUT) } };
  if (r.forwardOriginalToken) p.forward = true;
  if (r.fromHeaders?.length) p.from_headers = r.fromHeaders.map((h) => ({ name: h.name, ...(h.prefix ? { value_prefix: h.prefix } : {}) }));
  if (r.fromParams?.length) p.from_params = r.fromParams;
  if (r.fromCookies?.length) p.from_cookies = r.fromCookies;
  if (r.outputPayloadToHeader) p.forward_payload_header = r.outputPayloadToHeader;
  if (r.outputClaimToHeaders?.length) p.claim_to_headers = r.outputClaimToHeaders.map((c) => ({ header_name: c.header, claim_name: c.claim }));
  // Istio's EnvoyJwtFilterPayload: AuthorizationPolicy's request.auth.* read the payload there
  // (translate/authz-match.ts), whichever provider verified the token.
  p.payload_in_metadata = JWT_PAYLOAD_KEY;
  p.normalize_payload_in_metadata = { space_delimited_claims: [...new Set([...SPACE_DELIMITED, ...(r.spaceDelimitedClaims ?? [])])] };
  return p;
}

/**
 * Istio's name for the cluster a remote JWKS is fetched through (outbound|<port>||<host>): Envoy
 * requires one. Weft's sidecar fetches the URI directly (proxy/http/jwks.ts), not through it.
 */
function jwksCluster(uri: string): string | undefined {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return undefined;
  }
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  return `outbound|${port}||${u.hostname}`;
}
