// PURE: Envoy's ext_authz filters (Istio's CUSTOM AuthorizationPolicy: translate/authz-extauthz.ts)
// -> what the sidecar's external authorization layer runs (proxy/ext-authz/). Compiled once per
// xDS update; a field the sidecar does not apply is a ConvertError naming it (a NACK), never
// dropped: an authorizer skipped would let through what it denies. Where they sit:
//   - HTTP: envoy.filters.http.ext_authz among the HCM's authorization filters, after the RBAC
//     filter whose shadow rules mark the requests it checks (filter_enabled_metadata);
//   - TCP: envoy.filters.network.ext_authz among a chain's network filters, gRPC service only.
import { bool, fields, int, list, oneOf, str } from '../authz/fields.ts';
import { compileMetadataMatcher, type Metadata } from '../authz/metadata-matcher.ts';
import { compileStringMatcher, type StringMatch } from '../authz/string-matcher.ts';
import { protoRoot } from '../../xds/protos.ts';
import { duration, fail } from './convert-util.ts';

/** The stat prefix of the shadow rules with which Istio marks the requests a CUSTOM policy's authorizer checks (not dry-run results). */
export const EXT_AUTHZ_MARKS = 'istio_ext_authz_';

/** The authorization service, as the filter names it: an HTTP one or envoy.service.auth.v3.Authorization over gRPC. */
export type ExtAuthzService =
  | {
      readonly kind: 'http';
      /** The cluster the check goes to (Istio: outbound|port||host). */
      readonly cluster: string;
      readonly pathPrefix: string;
      /** Headers added to every check request (includeAdditionalHeadersInCheck). */
      readonly headersToAdd: readonly (readonly [string, string])[];
      /** Headers of an OK answer copied to the upstream request (headersToUpstreamOnAllow); none when unset. */
      readonly upstreamOnAllow?: readonly StringMatch[];
      /** Headers of a denial sent to the client (headersToDownstreamOnDeny); all but Host when unset. */
      readonly clientOnDeny?: readonly StringMatch[];
      /** Headers of an OK answer added to the client's response (headersToDownstreamOnAllow); none when unset. */
      readonly clientOnAllow?: readonly StringMatch[];
    }
  | { readonly kind: 'grpc'; readonly cluster: string; readonly authority: string };

export interface ExtAuthzConfig {
  readonly service: ExtAuthzService;
  /** The check's timeout (ms); Infinity when 0 (none: a client that leaves still cancels it). */
  readonly timeoutMs: number;
  /** failure_mode_allow: an authorizer that cannot answer lets the request through. */
  readonly failOpen: boolean;
  /** The status of a request denied because the authorizer could not answer (403 unless set). */
  readonly statusOnError: number;
  /** Request headers sent in the check besides the ones always sent; undefined: HTTP sends only those, gRPC all. */
  readonly allowedHeaders?: readonly StringMatch[];
  /** with_request_body: the request body goes with the check, up to maxBytes. */
  readonly body?: { readonly maxBytes: number; readonly allowPartial: boolean; readonly packAsBytes: boolean };
  /** filter_enabled_metadata: the check runs only for requests whose dynamic metadata matches (Istio's CUSTOM marks). */
  readonly enabled?: (md: Metadata | undefined) => boolean;
}

/** One ext_authz filter of a chain, by its name in the config. */
export interface ExtAuthzFilterConfig {
  readonly name: string;
  readonly extAuthz: ExtAuthzConfig;
}

/** envoy.type.v3.StatusCode by name (or number) -> the HTTP status. */
function statusCode(where: string, v: unknown): number {
  if (v === undefined) return 403;
  const values = protoRoot().lookupEnum('envoy.type.v3.StatusCode').values;
  const n = typeof v === 'number' ? v : values[str(where, v)];
  if (n === undefined || (typeof v === 'number' && !Object.values(values).includes(v))) fail(where, `unknown status code ${JSON.stringify(v)}`);
  return n === 0 ? 403 : n; // Empty: the default
}

/** A ListStringMatcher: { patterns: [...] }. */
function patterns(where: string, v: unknown): StringMatch[] | undefined {
  if (v === undefined) return undefined;
  const f = fields(where, v, ['patterns']);
  return list(`${where}.patterns`, f.patterns).map((p, i) => compileStringMatcher(`${where}.patterns[${i}]`, p));
}

function grpcService(where: string, v: unknown): { service: ExtAuthzService; timeoutMs: number } {
  const g = fields(where, v, ['envoy_grpc', 'timeout', 'initial_metadata']);
  if (g.envoy_grpc === undefined) fail(`${where}.envoy_grpc`, 'required (google_grpc is not supported)');
  if (list(`${where}.initial_metadata`, g.initial_metadata).length) fail(`${where}.initial_metadata`, 'not supported');
  const e = fields(`${where}.envoy_grpc`, g.envoy_grpc, ['cluster_name', 'authority']);
  const cluster = str(`${where}.envoy_grpc.cluster_name`, e.cluster_name);
  if (!cluster) fail(`${where}.envoy_grpc.cluster_name`, 'must not be empty');
  const ms = duration(`${where}.timeout`, g.timeout);
  return { service: { kind: 'grpc', cluster, authority: e.authority === undefined ? cluster : str(`${where}.envoy_grpc.authority`, e.authority) }, timeoutMs: ms === 0 ? Infinity : ms };
}

function httpService(where: string, v: unknown): { service: ExtAuthzService; timeoutMs: number; allowedHeaders?: StringMatch[] } {
  const h = fields(where, v, ['server_uri', 'path_prefix', 'authorization_request', 'authorization_response']);
  const u = fields(`${where}.server_uri`, h.server_uri, ['uri', 'cluster', 'timeout']);
  const cluster = str(`${where}.server_uri.cluster`, u.cluster);
  if (!cluster) fail(`${where}.server_uri.cluster`, 'must not be empty');
  const ms = duration(`${where}.server_uri.timeout`, u.timeout);
  const pathPrefix = h.path_prefix === undefined ? '' : str(`${where}.path_prefix`, h.path_prefix);
  const reqAt = `${where}.authorization_request`;
  const req = h.authorization_request === undefined ? {} : fields(reqAt, h.authorization_request, ['allowed_headers', 'headers_to_add']);
  const headersToAdd = list(`${reqAt}.headers_to_add`, req.headers_to_add).map((x, i) => {
    const kv = fields(`${reqAt}.headers_to_add[${i}]`, x, ['key', 'value']);
    return [str(`${reqAt}.headers_to_add[${i}].key`, kv.key).toLowerCase(), kv.value === undefined ? '' : str(`${reqAt}.headers_to_add[${i}].value`, kv.value)] as const;
  });
  const resAt = `${where}.authorization_response`;
  const res = h.authorization_response === undefined ? {} : fields(resAt, h.authorization_response, ['allowed_upstream_headers', 'allowed_client_headers', 'allowed_client_headers_on_success']);
  const upstreamOnAllow = patterns(`${resAt}.allowed_upstream_headers`, res.allowed_upstream_headers);
  const clientOnDeny = patterns(`${resAt}.allowed_client_headers`, res.allowed_client_headers);
  const clientOnAllow = patterns(`${resAt}.allowed_client_headers_on_success`, res.allowed_client_headers_on_success);
  const allowedHeaders = patterns(`${reqAt}.allowed_headers`, req.allowed_headers);
  return {
    service: { kind: 'http', cluster, pathPrefix, headersToAdd, ...(upstreamOnAllow ? { upstreamOnAllow } : {}), ...(clientOnDeny ? { clientOnDeny } : {}), ...(clientOnAllow ? { clientOnAllow } : {}) },
    timeoutMs: ms === 0 ? Infinity : ms,
    ...(allowedHeaders ? { allowedHeaders } : {}),
  };
}

const HTTP_FIELDS = ['@type', 'grpc_service', 'http_service', 'transport_api_version', 'failure_mode_allow', 'status_on_error', 'with_request_body', 'allowed_headers', 'filter_enabled_metadata', 'stat_prefix'];

/** envoy.extensions.filters.http.ext_authz.v3.ExtAuthz. */
export function httpExtAuthzFilter(where: string, i: number, f: any): ExtAuthzFilterConfig {
  const at = `${where}: http_filters[${i}].typed_config`;
  const c = fields(at, f.typed_config, HTTP_FIELDS);
  const kind = oneOf(at, c, ['grpc_service', 'http_service']);
  const svc: { service: ExtAuthzService; timeoutMs: number; allowedHeaders?: StringMatch[] } = kind === 'grpc_service' ? grpcService(`${at}.grpc_service`, c.grpc_service) : httpService(`${at}.http_service`, c.http_service);
  const top = patterns(`${at}.allowed_headers`, c.allowed_headers);
  if (top && svc.allowedHeaders) fail(`${at}.allowed_headers`, 'given twice (here and in http_service.authorization_request)');
  const allowedHeaders = top ?? svc.allowedHeaders;
  let body: ExtAuthzConfig['body'];
  if (c.with_request_body !== undefined) {
    const b = fields(`${at}.with_request_body`, c.with_request_body, ['max_request_bytes', 'allow_partial_message', 'pack_as_bytes']);
    body = Object.freeze({
      maxBytes: positive(`${at}.with_request_body.max_request_bytes`, int(`${at}.with_request_body.max_request_bytes`, b.max_request_bytes)),
      allowPartial: bool(`${at}.with_request_body.allow_partial_message`, b.allow_partial_message),
      packAsBytes: bool(`${at}.with_request_body.pack_as_bytes`, b.pack_as_bytes),
    });
  }
  return Object.freeze({ name: String(f.name ?? `http_filters[${i}]`), extAuthz: Object.freeze(common(at, c, svc.service, svc.timeoutMs, allowedHeaders, body)) });
}

/** envoy.extensions.filters.network.ext_authz.v3.ExtAuthz (gRPC only): checks each connection once. */
export function networkExtAuthzFilter(where: string, f: any): ExtAuthzFilterConfig {
  const c = fields(where, f.typed_config, ['@type', 'stat_prefix', 'grpc_service', 'failure_mode_allow', 'transport_api_version', 'filter_enabled_metadata']);
  if (c.grpc_service === undefined) fail(`${where}.grpc_service`, 'required');
  const svc = grpcService(`${where}.grpc_service`, c.grpc_service);
  return Object.freeze({ name: String(f.name ?? 'envoy.filters.network.ext_authz'), extAuthz: Object.freeze(common(where, c, svc.service, svc.timeoutMs, undefined, undefined)) });
}

function positive(where: string, n: number): number {
  if (n <= 0) fail(where, 'must be more than 0');
  return n;
}

function common(at: string, c: Record<string, any>, service: ExtAuthzService, timeoutMs: number, allowedHeaders: StringMatch[] | undefined, body: ExtAuthzConfig['body']): ExtAuthzConfig {
  if (c.transport_api_version !== undefined && c.transport_api_version !== 'V3' && c.transport_api_version !== 2) fail(`${at}.transport_api_version`, 'only V3 is supported');
  let statusOnError = 403;
  if (c.status_on_error !== undefined) statusOnError = statusCode(`${at}.status_on_error.code`, fields(`${at}.status_on_error`, c.status_on_error, ['code']).code);
  const enabled = c.filter_enabled_metadata === undefined ? undefined : compileMetadataMatcher(`${at}.filter_enabled_metadata`, c.filter_enabled_metadata);
  return {
    service,
    timeoutMs,
    failOpen: bool(`${at}.failure_mode_allow`, c.failure_mode_allow),
    statusOnError,
    ...(allowedHeaders ? { allowedHeaders } : {}),
    ...(body ? { body } : {}),
    ...(enabled ? { enabled } : {}),
  };
}
