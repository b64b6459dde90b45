// What an RBAC rule can look at: one request (HTTP filter) or one connection (network filter), in
// the terms of Envoy's Network::Connection, RequestHeaderMap and StreamInfo. Built by the caller
// per request; read, never kept or changed, by the matchers.
import type { Metadata } from './metadata-matcher.ts';
import { headerValue as listHeaderValue } from '../http/edits.ts';

/** The client's verified certificate, as Envoy's Ssl::ConnectionInfo gives it to RBAC. */
export interface PeerCertificate {
  readonly uriSans: readonly string[];
  readonly dnsSans?: readonly string[];
  /** RFC 2253 subject, e.g. "CN=foo,O=bar"; '' if not known. */
  readonly subject?: string;
}

export interface RbacRequest {
  /**
   * Request headers as a flat list [name, value, name, value, ...], names in lower case, with the
   * pseudo-headers :method, :authority (Host, for HTTP/1) and :path (with its query string), as
   * Envoy's header map has them. Empty (or absent) for the network filter.
   */
  readonly headers?: readonly string[];
  /**
   * :path as received, query included, after the connection manager's path normalization (the path
   * routing sees); read from `headers` when absent. A `header` rule on ':path' reads `headers` only.
   */
  readonly path?: string;
  /** The local (destination) address and port of the downstream connection. */
  readonly destinationIp: string;
  readonly destinationPort: number;
  /** The connection's remote address (Envoy's source_ip / connection remote). */
  readonly sourceIp: string;
  /** The socket's peer, before any proxy protocol: defaults to sourceIp. */
  readonly directRemoteIp?: string;
  /** The client as the HTTP connection manager resolved it (x-forwarded-for): defaults to sourceIp. */
  readonly remoteIp?: string;
  /**
   * The peer's certificate when the connection is TLS with a verified client certificate: a string
   * is shorthand for a certificate whose only SAN is that URI (Weft's SPIFFE ids), its subject not
   * consulted (Istio's rules match the URI; Weft's subject CN is the workload name). Undefined when
   * the connection is not TLS: then no `authenticated` principal matches. (Envoy's test is "is TLS":
   * for TLS without a client certificate pass { uriSans: [] }, which an `authenticated` with no
   * principal_name still matches, as in Envoy.)
   */
  readonly peer?: string | PeerCertificate;
  /** The SNI the client sent; '' or undefined if none. */
  readonly sni?: string;
  /** Dynamic metadata (filter name -> Struct as JSON), e.g. from the JWT filter. */
  readonly metadata?: Metadata;
  /**
   * The matched route's metadata (filter_metadata), for sourced_metadata with metadata_source ROUTE:
   * undefined when no route matched (Envoy: no match), {} for a route without metadata.
   */
  readonly routeMetadata?: Metadata;
}

/**
 * The value of header `name` (lower case) in a flat list; several fields are joined with ",", as
 * Envoy's getAllOfHeaderAsString does before matching (http/edits.ts's headerValue, which the
 * route's and the access log's reads use too). Undefined if absent. Allocates only to join.
 */
export function headerValue(headers: readonly string[] | undefined, name: string): string | undefined {
  return headers === undefined ? undefined : listHeaderValue(headers, name);
}

export function hasHeader(headers: readonly string[] | undefined, name: string): boolean {
  if (headers === undefined) return false;
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) return true;
  return false;
}

/** Envoy's PathUtil::removeQueryAndFragment. */
export function stripQuery(path: string): string {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x3f || c === 0x23) return path.slice(0, i);
  }
  return path;
}
