// What Envoy's access log and Istio's metrics call an exchange's outcome: its response flags
// (RESPONSE_FLAGS, the response_flags label) and response code details (RESPONSE_CODE_DETAILS),
// from the sidecar's own reason (an x-weft-error code, errors.ts) when it answered itself.

/** Envoy's short response flags, by the sidecar's reason. A reason not listed has none ("-"). */
const FLAGS: Readonly<Record<string, string>> = {
  no_route: 'NR',
  no_config: 'NR',
  no_cluster: 'NC',
  no_healthy_endpoint: 'UH',
  connect_refused: 'UF',
  connect_failed: 'UF',
  upstream_timeout: 'UT',
  upstream_reset: 'UR',
  overflow: 'UO',
  stream_idle_timeout: 'SI',
  downstream_closed: 'DC',
  fault_abort: 'FI',
  rate_limited: 'RL',
  ext_authz_denied: 'UAEX',
  // What the codec refuses (a malformed or oversized head: http/refused.ts), as Envoy's HCM flags a codec error.
  bad_request: 'DPE',
  request_headers_too_large: 'DPE',
};

/** Envoy's response code details, by the sidecar's reason. */
const DETAILS: Readonly<Record<string, string>> = {
  no_route: 'route_not_found',
  no_config: 'route_configuration_not_found',
  no_cluster: 'cluster_not_found',
  no_healthy_endpoint: 'no_healthy_upstream',
  connect_refused: 'upstream_reset_before_response_started{connection_refused}',
  connect_failed: 'upstream_reset_before_response_started{connection_failure}',
  upstream_timeout: 'response_timeout',
  upstream_reset: 'upstream_reset_before_response_started{remote_reset}',
  overflow: 'upstream_reset_before_response_started{overflow}',
  stream_idle_timeout: 'stream_idle_timeout',
  downstream_closed: 'downstream_remote_disconnect',
  fault_abort: 'fault_filter_abort',
  rate_limited: 'local_rate_limited',
  jwt_authn_denied: 'jwt_authn_access_denied',
  bad_request: 'bad_request',
  request_headers_too_large: 'request_headers_too_large',
  request_headers_timeout: 'request_header_timeout',
};

export function responseFlags(reason: string | undefined): string {
  return (reason !== undefined && FLAGS[reason]) || '-';
}

/**
 * Envoy's RESPONSE_CODE_DETAILS: "via_upstream" for the upstream's answer, the reason's details for
 * the sidecar's own, "rbac_access_denied_matched_policy[<policy id>]" for an authorization denial
 * (Istio's policy ids name the deciding policy; "none": no ALLOW policy matched), "direct_response"
 * for a route's own answer; a failed connection with its transport failure reason.
 */
export function responseCodeDetails(reason: string | undefined, cluster: string, authzPolicy: string | undefined, transportFailure?: string): string {
  if (reason === 'rbac_denied') return `rbac_access_denied_matched_policy[${authzPolicy ?? 'none'}]`;
  // A failed connection, as Envoy 1.2x says it: "{remote_connection_failure|<transport failure reason>}".
  if (transportFailure && (reason === 'connect_refused' || reason === 'connect_failed')) return `upstream_reset_before_response_started{remote_connection_failure|${transportFailure}}`;
  if (reason !== undefined) return DETAILS[reason] ?? reason;
  return cluster === '-' ? 'direct_response' : 'via_upstream';
}
