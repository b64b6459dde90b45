// PURE: the mesh's extension providers (Istio's meshConfig.extensionProviders, as written in its
// YAML) -> the Envoy ext_authz filter configs a CUSTOM AuthorizationPolicy delegates to, as
// Istio's pilot/pkg/security/authz/builder/extauthz.go builds them. A provider with any problem
// (unknown service, bad port or status, a lone "*" header pattern, ...) yields an error instead:
// the builder then denies what the CUSTOM policy would have sent to it (failing closed).
import { duration } from './duration.ts';
import { outboundClusterName } from '../model/model.ts';
import type { Obj } from './authz-match.ts';

export interface ExtAuthzRequestBody {
  maxRequestBytes?: number;
  allowPartialMessage?: boolean;
  packAsBytes?: boolean;
}

/** envoyExtAuthzHttp: an HTTP authorization service. */
export interface ExtAuthzHttpProvider {
  service: string; // "namespace/hostname", or a hostname that is unique in the mesh
  port: number;
  timeout?: string; // "10s"; 600s when absent
  failOpen?: boolean;
  statusOnError?: string; // "403"
  pathPrefix?: string;
  includeRequestHeadersInCheck?: string[];
  /** Deprecated: only read when includeRequestHeadersInCheck is empty. */
  includeHeadersInCheck?: string[];
  includeAdditionalHeadersInCheck?: Record<string, string>;
  includeRequestBodyInCheck?: ExtAuthzRequestBody;
  headersToUpstreamOnAllow?: string[];
  headersToDownstreamOnDeny?: string[];
  headersToDownstreamOnAllow?: string[];
}

/** envoyExtAuthzGrpc: a gRPC authorization service (the only kind a TCP chain can use). */
export interface ExtAuthzGrpcProvider {
  service: string;
  port: number;
  timeout?: string;
  failOpen?: boolean;
  statusOnError?: string;
  includeRequestBodyInCheck?: ExtAuthzRequestBody;
}

/** One of meshConfig.extensionProviders. Providers of other kinds (tracing, logging) are not authorizers. */
export interface ExtensionProvider {
  name: string;
  envoyExtAuthzHttp?: ExtAuthzHttpProvider;
  envoyExtAuthzGrpc?: ExtAuthzGrpcProvider;
  [other: string]: unknown;
}

/** A service of the mesh, for providers to name. */
export interface MeshService {
  hostname: string;
  namespace: string;
}

/** The built filter configs of a provider (tcp only for gRPC providers), or what is wrong with it. */
export type BuiltExtAuthz = { http: Obj; tcp?: Obj } | { error: string };

const EXT_AUTHZ_HTTP = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz';
const EXT_AUTHZ_TCP = 'type.googleapis.com/envoy.extensions.filters.network.ext_authz.v3.ExtAuthz';

/** processExtensionProvider: the authorizers of the mesh by name (a name used twice: an error). */
export function resolveProviders(providers: readonly ExtensionProvider[], services: readonly MeshService[]): Map<string, BuiltExtAuthz> {
  const resolved = new Map<string, BuiltExtAuthz>();
  providers.forEach((p, i) => {
    const errors: string[] = [];
    if (!p.name) errors.push(`extension provider name must not be empty (index ${i})`);
    else if (resolved.has(p.name)) errors.push(`extension provider name must be unique, found duplicate: ${p.name}`);
    if (p.name && !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(p.name)) errors.push(`invalid provider name "${p.name}": lower-case letters, digits and "-", at most 63`);
    let built: BuiltExtAuthz;
    if (p.envoyExtAuthzHttp) built = buildHttp(p.envoyExtAuthzHttp, services);
    else if (p.envoyExtAuthzGrpc) built = buildGrpc(p.envoyExtAuthzGrpc, services);
    else return; // not an authorizer: a CUSTOM policy naming it finds no such provider
    if ('error' in built) errors.push(`failed to parse extension provider "${p.name}": ${built.error}`);
    resolved.set(p.name, errors.length ? { error: errors.join('; ') } : built);
  });
  return resolved;
}

/** The checks Istio makes of both kinds: port, service (found in the mesh), status on error. */
function common(c: ExtAuthzHttpProvider | ExtAuthzGrpcProvider, services: readonly MeshService[], errors: string[]): { hostname: string; cluster: string; status?: Obj } | undefined {
  const portOk = Number.isInteger(c.port) && c.port >= 1 && c.port <= 65535;
  if (!portOk) errors.push(`port must be in the range [1, 65535], found: ${c.port}`);
  const found = lookupService(c.service, services);
  if ('error' in found) errors.push(found.error);
  const { status, error } = statusOnError(c.statusOnError);
  if (error) errors.push(error);
  if (!portOk || 'error' in found || error) return undefined;
  return { hostname: found.hostname, cluster: outboundClusterName(c.port, '', found.hostname), ...(status ? { status } : {}) };
}

/**
 * LookupCluster: "namespace/hostname" names one service; a bare hostname must be unique across
 * namespaces. (Istio also checks the name's syntax first; a name of bad syntax is found nowhere.)
 */
export function lookupService(service: string, services: readonly MeshService[]): MeshService | { error: string } {
  if (!service) return { error: 'service must not be empty' };
  const parts = service.split('/');
  if (parts.length === 2) {
    const svc = services.find((s) => s.namespace === parts[0] && s.hostname === parts[1]);
    if (svc) return svc;
  } else {
    const matches = services.filter((s) => s.hostname === service);
    if (matches.length === 1) return matches[0];
    if (matches.length > 1) return { error: `found ${service} in multiple namespaces, specify the namespace explicitly as <Namespace>/<Hostname>` };
  }
  return { error: `could not find service ${service} in the mesh` };
}

/** Envoy's StatusCode enum (envoy/type/v3/http_status.proto): the codes statusOnError may name. */
const STATUS_NAMES: Record<number, string> = {
  0: 'Empty', 100: 'Continue', 200: 'OK', 201: 'Created', 202: 'Accepted', 203: 'NonAuthoritativeInformation', 204: 'NoContent', 205: 'ResetContent',
  206: 'PartialContent', 207: 'MultiStatus', 208: 'AlreadyReported', 226: 'IMUsed', 300: 'MultipleChoices', 301: 'MovedPermanently', 302: 'Found',
  303: 'SeeOther', 304: 'NotModified', 305: 'UseProxy', 307: 'TemporaryRedirect', 308: 'PermanentRedirect', 400: 'BadRequest', 401: 'Unauthorized',
  402: 'PaymentRequired', 403: 'Forbidden', 404: 'NotFound', 405: 'MethodNotAllowed', 406: 'NotAcceptable', 407: 'ProxyAuthenticationRequired',
  408: 'RequestTimeout', 409: 'Conflict', 410: 'Gone', 411: 'LengthRequired', 412: 'PreconditionFailed', 413: 'PayloadTooLarge', 414: 'URITooLong',
  415: 'UnsupportedMediaType', 416: 'RangeNotSatisfiable', 417: 'ExpectationFailed', 421: 'MisdirectedRequest', 422: 'UnprocessableEntity', 423: 'Locked',
  424: 'FailedDependency', 426: 'UpgradeRequired', 428: 'PreconditionRequired', 429: 'TooManyRequests', 431: 'RequestHeaderFieldsTooLarge',
  500: 'InternalServerError', 501: 'NotImplemented', 502: 'BadGateway', 503: 'ServiceUnavailable', 504: 'GatewayTimeout', 505: 'HTTPVersionNotSupported',
  506: 'VariantAlsoNegotiates', 507: 'InsufficientStorage', 508: 'LoopDetected', 510: 'NotExtended', 511: 'NetworkAuthenticationRequired',
};

/** "403" -> { code: 'Forbidden' }; undefined when unset. (Empty, 0, is the enum's default: no code written.) */
function statusOnError(status: string | undefined): { status?: Obj; error?: string } {
  if (!status) return {};
  if (!/^[+-]?[0-9]+$/.test(status)) return { error: `invalid statusOnError "${status}"` };
  const name = STATUS_NAMES[Number(status)];
  if (!name) return { error: `unsupported statusOnError ${status}` };
  return { status: name === 'Empty' ? {} : { code: name } };
}

function buildHttp(c: ExtAuthzHttpProvider, services: readonly MeshService[]): BuiltExtAuthz {
  const errors: string[] = [];
  const target = common(c, services, errors);
  if (c.pathPrefix) {
    if (/%(?![0-9a-fA-F]{2})|[\x00-\x1f\x7f ]/.test(c.pathPrefix)) errors.push(`invalid pathPrefix "${c.pathPrefix}"`);
    if (!c.pathPrefix.startsWith('/')) errors.push(`pathPrefix must begin with "/", found: "${c.pathPrefix}"`);
  }
  // A lone "*" would be an empty prefix or suffix, which Envoy refuses.
  const lists = { includeRequestHeadersInCheck: c.includeRequestHeadersInCheck, includeHeadersInCheck: c.includeHeadersInCheck, headersToDownstreamOnDeny: c.headersToDownstreamOnDeny, headersToDownstreamOnAllow: c.headersToDownstreamOnAllow, headersToUpstreamOnAllow: c.headersToUpstreamOnAllow };
  for (const [name, list] of Object.entries(lists)) {
    if (list?.includes('*')) errors.push(`a single wildcard ("*") is not supported, change it to either prefix or suffix match: ${name}`);
  }
  if (errors.length || !target) return { error: errors.join('; ') };

  const service: Obj = {
    ...(c.pathPrefix ? { path_prefix: c.pathPrefix } : {}),
    // The URI is required but not used: the cluster is what is dialled.
    server_uri: { uri: `http://${target.hostname}`, cluster: target.cluster, timeout: timeoutOf(c.timeout) },
  };
  const additional = Object.keys(c.includeAdditionalHeadersInCheck ?? {}).sort();
  if (additional.length) service.authorization_request = { headers_to_add: additional.map((key) => ({ key, value: c.includeAdditionalHeadersInCheck![key] })) };
  if (c.headersToUpstreamOnAllow?.length || c.headersToDownstreamOnDeny?.length || c.headersToDownstreamOnAllow?.length) {
    service.authorization_response = {
      ...listMatcher('allowed_upstream_headers', c.headersToUpstreamOnAllow),
      ...listMatcher('allowed_client_headers', c.headersToDownstreamOnDeny),
      ...listMatcher('allowed_client_headers_on_success', c.headersToDownstreamOnAllow),
    };
  }
  const allowed = c.includeRequestHeadersInCheck?.length ? c.includeRequestHeadersInCheck : c.includeHeadersInCheck;
  return {
    http: {
      '@type': EXT_AUTHZ_HTTP,
      ...(target.status ? { status_on_error: target.status } : {}),
      ...(c.failOpen ? { failure_mode_allow: true } : {}),
      transport_api_version: 'V3',
      http_service: service,
      ...withBody(c.includeRequestBodyInCheck),
      ...listMatcher('allowed_headers', allowed),
    },
  };
}

function buildGrpc(c: ExtAuthzGrpcProvider, services: readonly MeshService[]): BuiltExtAuthz {
  const errors: string[] = [];
  const target = common(c, services, errors);
  if (errors.length || !target) return { error: errors.join('; ') };
  const grpc = { envoy_grpc: { cluster_name: target.cluster, authority: target.hostname }, timeout: timeoutOf(c.timeout) };
  const failOpen = c.failOpen ? { failure_mode_allow: true } : {};
  return {
    http: { '@type': EXT_AUTHZ_HTTP, ...(target.status ? { status_on_error: target.status } : {}), ...failOpen, grpc_service: grpc, transport_api_version: 'V3', ...withBody(c.includeRequestBodyInCheck) },
    // The network filter has no status to send, and reads no body.
    tcp: { '@type': EXT_AUTHZ_TCP, stat_prefix: 'tcp.', ...failOpen, transport_api_version: 'V3', grpc_service: grpc },
  };
}

const timeoutOf = (t: string | undefined): Obj => (t ? duration(t) : { seconds: 600 });

function withBody(b: ExtAuthzRequestBody | undefined): Obj {
  if (!b) return {};
  return {
    with_request_body: {
      ...(b.maxRequestBytes ? { max_request_bytes: b.maxRequestBytes } : {}),
      ...(b.allowPartialMessage ? { allow_partial_message: true } : {}),
      ...(b.packAsBytes ? { pack_as_bytes: true } : {}),
    },
  };
}

/** Header patterns, case-insensitive: "*suffix", "prefix*", else exact. */
function listMatcher(name: string, headers: readonly string[] | undefined): Obj {
  if (!headers?.length) return {};
  const patterns = headers.map((h) => {
    if (h.startsWith('*')) return { suffix: h.slice(1), ignore_case: true };
    if (h.endsWith('*')) return { prefix: h.slice(0, -1), ignore_case: true };
    return { exact: h, ignore_case: true };
  });
  return { [name]: { patterns } };
}

/** The ext_authz filter runs only where the RBAC filter's shadow rules matched a policy of this provider. */
export function enabledFor(rbacFilter: string, provider: string): Obj {
  return {
    filter: rbacFilter,
    path: [{ key: 'istio_ext_authz_shadow_effective_policy_id' }],
    value: { string_match: { prefix: `istio-ext-authz-${provider}` } },
  };
}
