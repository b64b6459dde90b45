// Envoy's RBAC filters for the sidecar: compile the typed_config once per xDS update (a
// ConvertError is the NACK reason), then evaluate per request (HTTP) or per connection (network).
//
//   const f = compileRbacTypedConfig(`listener ${name}: http_filters[${i}].typed_config`, tc);
//   const d = evaluateRbac(f, { headers, destinationIp, destinationPort, sourceIp, peer, sni, metadata });
//
// As Envoy's filters act on the decision:
// - HTTP: several RBAC filters run in their order in http_filters (Istio: CUSTOM's shadow rules, then
//   DENY, then ALLOW, then AUDIT); the first with !d.allowed answers 403 "RBAC: access denied" with
//   rbacResponseDetails(d) as the response code details, and no later filter runs.
//   typed_per_filter_config['envoy.filters.http.rbac'] (compileHttpRbacPerRoute) replaces the
//   filter's config on that route.
// - Network: the filter decides on the connection's first bytes (enforcementType), before tcp_proxy
//   or HCM; denied: close without flushing (after delayDenyMs).
// - rbacDynamicMetadata(f, d) is what Envoy puts under 'envoy.filters.http.rbac' for the filters after
//   it (Istio's ext_authz runs only where istio_ext_authz_shadow_effective_policy_id is set);
//   d.log (LOG action) is Envoy's envoy.common access_log_hint; d.matchedPolicy and d.shadow are
//   the policy ids to log.
export {
  compileHttpRbac,
  compileHttpRbacPerRoute,
  compileNetworkRbac,
  compileRbac,
  compileRbacTypedConfig,
  RBAC_HTTP_PER_ROUTE_TYPE,
  RBAC_HTTP_TYPE,
  RBAC_NETWORK_TYPE,
  type CompiledPolicy,
  type CompiledRbac,
  type CompiledRbacFilter,
  type RbacAction,
  type RbacOutcome,
} from './rbac-config.ts';
export { evaluateRbac, rbacDynamicMetadata, rbacResponseDetails, type RbacDecision, type ShadowResult } from './rbac-engine.ts';
export { compileHeaderMatcher } from './header-matcher.ts';
export type { PeerCertificate, RbacRequest } from './request.ts';
export type { Metadata } from './metadata-matcher.ts';
