// The one place where a failure inside the sidecar becomes an HTTP response. Every response the
// sidecar makes itself says why: in the `x-weft-error` header (a stable code) and a plain-words
// body, and it is counted under the cluster it concerns. A gRPC request gets a gRPC answer instead:
// HTTP 200 with grpc-status and grpc-message (a trailers-only response), as Envoy's local replies do.
import type { Downstream } from './http/types.ts';
import type { UpstreamError } from './http/types.ts';
import { isGrpc } from './http/grpc.ts';

/** node:http taken without an ESM import, which would load Node's bundled undici (src/proxy/sidecar.ts). */
const { STATUS_CODES } = process.getBuiltinModule('node:http');
const { constants: osConstants } = process.getBuiltinModule('node:os');
const { getSystemErrorMessage } = process.getBuiltinModule('node:util');

export type ProxyErrorCode =
  | 'no_route' // no virtual host or route matches the request
  | 'no_cluster' // the route names a cluster the sidecar does not have
  | 'no_healthy_endpoint' // the cluster has no endpoint that can take traffic
  | 'connect_refused' // the endpoint refused the connection
  | 'connect_failed' // the connection could not be made for another reason
  | 'upstream_timeout' // the route's timeout passed before the response was complete
  | 'upstream_reset' // the upstream closed the connection mid-request, or answered with garbage
  | 'overflow' // the cluster's circuit breakers are full (connections and queue, or requests under way)
  | 'stream_idle_timeout' // no bytes moved either way for the listener's stream_idle_timeout
  | 'bad_request' // the request cannot be proxied (no host, CONNECT, ...)
  | 'request_headers_too_large' // the request's header block is past the limit (60 KiB, 100 fields)
  | 'fault_abort' // a fault injection rule (Istio's fault.abort) answered instead of the upstream
  | 'rate_limited' // a LocalRateLimit's bucket for this route is empty
  | 'rbac_denied' // an AuthorizationPolicy (the listener's RBAC filters) denies the request
  | 'ext_authz_denied' // the external authorizer of a CUSTOM AuthorizationPolicy denied the request, or could not be asked (status_on_error)
  | 'jwt_authn_denied' // a token failed the JWT layer (RequestAuthentication); the message is Envoy's ("Jwt is expired")
  | 'no_config'; // the sidecar has no config for this listener yet

const STATUS: Record<ProxyErrorCode, number> = {
  no_route: 404,
  no_cluster: 503,
  no_healthy_endpoint: 503,
  connect_refused: 503,
  connect_failed: 503,
  upstream_timeout: 504,
  upstream_reset: 502,
  overflow: 503,
  stream_idle_timeout: 408,
  bad_request: 400,
  request_headers_too_large: 431,
  fault_abort: 503, // the rule's own status, when it gives one
  rate_limited: 429,
  rbac_denied: 403,
  ext_authz_denied: 403, // the authorizer's own status, or status_on_error
  jwt_authn_denied: 401, // 403 for "Audiences in Jwt are not allowed", as Envoy
  no_config: 503,
};

export class ProxyError extends Error {
  readonly code: ProxyErrorCode;
  readonly cluster: string | undefined;
  /** The status and gRPC status a rule asked for (fault aborts), instead of the code's own. */
  private readonly answer: ErrorAnswer | undefined;
  /**
   * Why the connection to the upstream failed, as Envoy's UPSTREAM_TRANSPORT_FAILURE_REASON says
   * it ("delayed_connect_error:_Connection_refused", "TLS_error:|...:TLS_error_end"), when it did.
   */
  transportFailure: string | undefined;
  constructor(code: ProxyErrorCode, message: string, cluster?: string, answer?: ErrorAnswer) {
    super(message);
    this.code = code;
    this.cluster = cluster;
    this.answer = answer;
    this.transportFailure = undefined;
  }
  get status(): number {
    return this.answer?.httpStatus ?? STATUS[this.code];
  }
  /** The gRPC status a gRPC client gets. */
  get grpcStatus(): number {
    return this.answer?.grpcStatus ?? grpcStatus(this);
  }
  /** The body (and grpc-message) Envoy's own local reply has, where clients match on it; else Weft's "weft: <message>". */
  get body(): string {
    return this.answer?.body ?? `weft: ${this.message}\n`;
  }
  /** An authorization denial's deciding policy id ('none': no ALLOW policy matched). */
  get authzPolicy(): string | undefined {
    return this.answer?.authzPolicy;
  }
  /** Headers the answer carries besides x-weft-error (the deciding policy of a denial). */
  get headers(): readonly string[] {
    return this.answer?.headers ?? NO_HEADERS;
  }
}

/** What a ProxyError's answer has instead of its code's defaults. */
export interface ErrorAnswer {
  httpStatus?: number;
  grpcStatus?: number;
  body?: string;
  headers?: readonly string[];
  authzPolicy?: string;
}

const NO_HEADERS: readonly string[] = Object.freeze([]);

/**
 * An AuthorizationPolicy's denial, as Envoy's RBAC filter answers: 403 with the body
 * "RBAC: access denied" (what clients and Istio's docs match on), PERMISSION_DENIED for gRPC; the
 * deciding policy (Istio's id, "ns[foo]-policy[deny-all]-rule[0]", or "none" when no ALLOW policy
 * matched) in x-weft-authz-policy, and in the detail with the filter and listener.
 */
export function rbacDenied(policy: string | undefined, filter: string, listener: string): ProxyError {
  const id = policy ?? 'none';
  const why = policy === undefined ? 'no ALLOW policy matches' : `policy ${policy} matches`;
  return new ProxyError('rbac_denied', `RBAC: access denied: ${why} (filter ${filter} of listener ${listener})`, undefined, {
    body: RBAC_DENIED_BODY,
    headers: [AUTHZ_POLICY_HEADER, id],
    authzPolicy: id,
  });
}

export const RBAC_DENIED_BODY = 'RBAC: access denied';

/**
 * A CUSTOM AuthorizationPolicy's denial, as Envoy's ext_authz filter answers: the authorizer's
 * status, body and headers (those the filter lets through), or status_on_error with no body when
 * it could not be asked. x-weft-authz-policy says "ext_authz" and the detail names the filter.
 */
export function extAuthzDenied(filter: string, listener: string, status: number, headers: readonly string[], body: string, why: string): ProxyError {
  return new ProxyError('ext_authz_denied', `external authorization denied the request: ${why} (filter ${filter} of listener ${listener})`, undefined, {
    httpStatus: status,
    body,
    headers: [...headers, AUTHZ_POLICY_HEADER, EXT_AUTHZ_POLICY],
    authzPolicy: EXT_AUTHZ_POLICY,
  });
}

/** The deciding "policy" of an external authorizer's denial, in x-weft-authz-policy and telemetry. */
export const EXT_AUTHZ_POLICY = 'ext_authz';
export const AUTHZ_POLICY_HEADER = 'x-weft-authz-policy';

/** A failed exchange with an endpoint, in plain words. */
export function upstreamError(err: UpstreamError, cluster: string, endpoint: string): ProxyError {
  const code = err.code;
  if (err.phase === 'connect') {
    // Istio's name for where hosts the mesh does not know go: say so, since the user asked for no such cluster.
    const where = cluster === 'PassthroughCluster' ? `${cluster} (no service of the mesh has that name, so the request went where it named: outbound traffic policy ALLOW_ANY)` : cluster;
    if (code === 'ECONNREFUSED') return withTransport(new ProxyError('connect_refused', `connection refused by ${endpoint} in cluster ${where}`, cluster), `delayed_connect_error: ${systemMessage(code)}`);
    // The cluster's circuit breakers: limits across all of its endpoints, so the cluster is named first.
    if (code === 'overflow') return new ProxyError('overflow', `too many requests to cluster ${cluster}: ${err.message} (at endpoint ${endpoint})`, cluster);
    if (code === 'ETIMEDOUT') return new ProxyError('connect_failed', `could not connect to ${endpoint} in cluster ${where}: ${err.message}`, cluster);
    // TLS to the endpoint failed (mesh mTLS or TLS origination: tls/upstream.ts): the message says why ("upstream TLS: ...").
    if (code === 'tls_handshake') return withTransport(new ProxyError('connect_failed', `could not connect to ${endpoint} in cluster ${where}: ${err.message}`, cluster), `TLS_error:|${err.message}:TLS_error_end`);
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new ProxyError('connect_failed', `could not connect to ${endpoint} in cluster ${where}: DNS has no address for that name (${code})`, cluster);
    const failed = new ProxyError('connect_failed', `could not connect to ${endpoint} in cluster ${where}: ${code}${err.message ? ` (${err.message})` : ''}`, cluster);
    return /^E[A-Z]+$/.test(code) ? withTransport(failed, `delayed_connect_error: ${systemMessage(code)}`) : failed;
  }
  return new ProxyError('upstream_reset', `upstream ${endpoint} in cluster ${cluster} ${err.message}`, cluster);
}

/** Envoy writes transport failure reasons with spaces as underscores. */
function withTransport(e: ProxyError, reason: string): ProxyError {
  e.transportFailure = reason.replace(/ /g, '_');
  return e;
}

/** The system's words for an errno code ("Connection refused"), as strerror gives them to Envoy. */
function systemMessage(code: string): string {
  const n = (osConstants.errno as Record<string, number>)[code];
  if (n === undefined) return code;
  const m = getSystemErrorMessage(-n);
  return m ? m[0]!.toUpperCase() + m.slice(1) : code;
}

const TEXT_PLAIN = 'text/plain; charset=utf-8';

/**
 * The gRPC status for an error: Envoy's HTTP-to-gRPC mapping of the HTTP status the error would
 * have had (Grpc::Utility::httpToGrpcStatus), except that a timeout is DEADLINE_EXCEEDED.
 */
export function grpcStatus(err: ProxyError): number {
  if (err.code === 'upstream_timeout') return 4; // DEADLINE_EXCEEDED
  switch (err.status) {
    case 400:
      return 13; // INTERNAL
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 12; // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14; // UNAVAILABLE
    default:
      return 2; // UNKNOWN
  }
}

/** grpc-message is percent-encoded (gRPC over HTTP/2): anything but printable ASCII, and '%'. */
function grpcMessage(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** Writes the error response, unless the response already started (then the stream is cut). */
export function sendError(ds: Downstream, err: ProxyError): void {
  if (ds.responseStarted) {
    ds.reset(err.message);
    return;
  }
  if (isGrpc(ds.head.headers)) {
    const message = err.body.trimEnd();
    ds.respond(200, ['content-type', 'application/grpc', 'grpc-status', String(err.grpcStatus), 'grpc-message', grpcMessage(message), 'x-weft-error', err.code, ...err.headers.filter((_, i, hs) => hs[i - (i % 2)] !== 'content-type')], undefined, true);
    return;
  }
  const body = Buffer.from(err.body);
  // An answer with its own content type (an external authorizer's denial) keeps it.
  const type = err.headers.some((h, i) => i % 2 === 0 && h === 'content-type') ? [] : ['content-type', TEXT_PLAIN];
  ds.respond(err.status, [...type, 'x-weft-error', err.code, 'x-weft-error-detail', err.message.replace(/[^\x20-\x7e]/g, '?').slice(0, 512), ...err.headers], body.length, false);
  ds.write(body);
  ds.end();
}

/** A response the config asks for (a direct_response to a CONNECT), as raw HTTP/1.1; the connection closes after it. */
export function rawHttp1Reply(status: number, body: Buffer | undefined): string {
  const text = body ? body.toString('latin1') : '';
  const type = text ? `content-type: ${TEXT_PLAIN}\r\n` : '';
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n${type}connection: close\r\ncontent-length: ${text.length}\r\n\r\n${text}`;
}

/**
 * The answer to a request refused before it became a Downstream (a parse error, a limit, a
 * timeout waiting for its head), as raw HTTP/1.1 bytes: the connection closes after it.
 */
export function rawHttp1Error(status: number, code: string, message: string): string {
  const body = `weft: ${message.replace(/[^\x20-\x7e]/g, '?')}\n`;
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: ${TEXT_PLAIN}\r\nx-weft-error: ${code}\r\n` +
    `connection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}
