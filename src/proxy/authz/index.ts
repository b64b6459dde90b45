// Envoy's RBAC filters for the sidecar: compile the typed_config once per xDS update (a
// ConvertError is the NACK reason), then evaluate per request (HTTP) or per connection (network).
//
//   const f = compileRbacTypedConfig(`listener ${name}: http_filters[${i}].typed_config`, tc);
//   const d = evaluateRbac(f, { headers, destinationIp, destinationPort, sourceIp, peer, sni });
//   if (!d.allowed) -> 403 "RBAC: access denied" (HTTP) / close the connection (network),
//     with rbacResponseDetails(d) as the response code details;
//   d.matchedPolicy / d.shadow go to the access log; rbacDynamicMetadata(f, d) to the
//     'envoy.filters.http.rbac' dynamic metadata for the filters after it (Istio's CUSTOM ext_authz).
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
export type { PeerCertificate, RbacRequest } from './request.ts';
export type { Metadata } from './metadata-matcher.ts';
