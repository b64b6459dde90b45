// The one place where a failure inside the sidecar becomes an HTTP response. Every response the
// sidecar makes itself says why: in the `x-weft-error` header (a stable code) and a plain-words
// body, and it is counted under the cluster it concerns.
import type http from 'node:http';

export type ProxyErrorCode =
  | 'no_route' // no virtual host or route matches the request
  | 'no_cluster' // the route names a cluster the sidecar does not have
  | 'no_healthy_endpoint' // the cluster has no endpoint that can take traffic
  | 'connect_refused' // the endpoint refused the connection
  | 'connect_failed' // the connection could not be made for another reason
  | 'upstream_timeout' // the route's timeout passed before the response headers came
  | 'upstream_reset' // the upstream closed the connection mid-request
  | 'bad_request' // the request cannot be proxied (no host, CONNECT, ...)
  | 'no_config'; // the sidecar has no config for this listener yet

const STATUS: Record<ProxyErrorCode, number> = {
  no_route: 404,
  no_cluster: 503,
  no_healthy_endpoint: 503,
  connect_refused: 503,
  connect_failed: 503,
  upstream_timeout: 504,
  upstream_reset: 502,
  bad_request: 400,
  no_config: 503,
};

export class ProxyError extends Error {
  readonly code: ProxyErrorCode;
  readonly cluster: string | undefined;
  constructor(code: ProxyErrorCode, message: string, cluster?: string) {
    super(message);
    this.code = code;
    this.cluster = cluster;
  }
  get status(): number {
    return STATUS[this.code];
  }
}

/** An error from undici while talking to an endpoint, in plain words. */
export function upstreamError(err: unknown, cluster: string, endpoint: string, timedOut: boolean): ProxyError {
  const e = err as { code?: string; message?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code;
  if (timedOut) return new ProxyError('upstream_timeout', `upstream ${endpoint} in cluster ${cluster} did not answer within the route timeout`, cluster);
  if (code === 'ECONNREFUSED') return new ProxyError('connect_refused', `connection refused by ${endpoint} in cluster ${cluster}`, cluster);
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH')
    return new ProxyError('connect_failed', `could not connect to ${endpoint} in cluster ${cluster}: ${code}`, cluster);
  return new ProxyError('upstream_reset', `upstream ${endpoint} in cluster ${cluster} failed: ${code ?? e.message ?? 'unknown error'}`, cluster);
}

/** Writes the error response, unless headers already went out (then the stream is cut). */
export function sendError(res: http.ServerResponse, err: ProxyError): void {
  if (res.headersSent) {
    res.destroy(err);
    return;
  }
  const body = `weft: ${err.message}\n`;
  res.writeHead(err.status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'x-weft-error': err.code,
    'x-weft-error-detail': err.message.replace(/[^\x20-\x7e]/g, '?').slice(0, 512),
  });
  res.end(body);
}

/**
 * A request too malformed for the HTTP parser: there is no request object to answer, so the
 * answer is written to the socket as raw HTTP/1.1 and the connection closed. The body names what
 * the parser rejected (for example HPE_INVALID_METHOD).
 */
export function malformedRequest(err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: import('node:stream').Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
  const body = `weft: malformed HTTP request (${err.code ?? 'parse error'}): ${String(err.message).replace(/[^\x20-\x7e]/g, '?')}\n`;
  socket.end(
    `HTTP/1.1 ${status}\r\ncontent-type: text/plain; charset=utf-8\r\nx-weft-error: bad_request\r\n` +
      `connection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
