// The downstream side of HTTP/2 (cleartext, prior knowledge): node:http2 does the framing, flow
// control and HPACK; each stream becomes a Downstream and takes the same request path as HTTP/1.1.
//
// The listener (listeners/listener.ts) recognises the connection preface and hands the socket over
// with the bytes it already read. One Http2Server object per listener carries its sessions.
import http2 from 'node:http2';
import type net from 'node:net';
import { peerPrincipal, peerWorkload, requestedServerName } from '../tls/peer.ts';
import { type HostPorts, type HostPortsHolder, hostPortsOf } from '../net/addresses.ts';
import type { PeerMetadata } from '../http/peer-metadata.ts';
import type { TraceContext } from '../http/trace-context.ts';
import type { BodySink, Downstream, HeaderList, RequestHead } from '../http/types.ts';
import { type PathOptions, canonicalPath, splitTarget, validAuthority } from '../http/path.ts';
import { MAX_HEADER_BYTES, MAX_HEADER_COUNT, endToEnd, get } from '../http1/headers.ts';
import { ProxyError, sendError } from '../errors.ts';
import type { Refusal } from '../http/refused.ts';

export interface Http2Options {
  onRequest(ds: Downstream): void;
  /** A stream refused before routing (headers too large, a malformed head): for telemetry, the stream itself its request. */
  onRejected?(r: Refusal): void;
  /** Read per stream, so that a config update applies to the next request. */
  limits(): { path: PathOptions; idleTimeoutMs: number };
}

const { NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } = http2.constants;

export interface Http2Downstream {
  /** Takes over a connection whose first bytes (`initial`, already read) are the HTTP/2 preface. */
  serve(socket: net.Socket, initial: Buffer): void;
}

export function createHttp2Downstream(opts: Http2Options): Http2Downstream {
  const server = http2.createServer({
    // Envoy's defaults: 60 KiB of request headers, 100 header fields; HTTP/2 streams are many.
    // nghttp2 takes blocks up to twice the limit, so that one a little past it gets a 431 naming
    // the limit (onStream); past that nghttp2 itself refuses it.
    maxHeaderListPairs: MAX_HEADER_COUNT + 4,
    maxSendHeaderBlockLength: MAX_HEADER_BYTES * 2,
    maxSessionMemory: 64,
    settings: { maxHeaderListSize: MAX_HEADER_BYTES * 2, maxConcurrentStreams: 1024 },
  });
  server.on('session', (session) => {
    session.on('error', () => {});
    session.setTimeout(opts.limits().idleTimeoutMs, () => session.close());
  });
  server.on('sessionError', () => {});
  server.on('stream', (stream, headers, _flags, rawHeaders) => {
    stream.on('error', () => {});
    onStream(opts, stream, headers, rawHeaders as unknown as string[]);
  });
  return {
    serve(socket, initial) {
      // node:http2 feeds itself the bytes left in the socket's buffer, then reads the socket itself
      // (resuming the socket here would spill them as 'data' events instead).
      if (initial.length) socket.unshift(initial);
      server.emit('connection', socket);
    },
  };
}

function onStream(opts: Http2Options, stream: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders, raw: string[]): void {
  const method = String(h[':method'] ?? '');
  const fields: HeaderList = [];
  const cookies: string[] = [];
  let bytes = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i].toLowerCase();
    bytes += n.length + raw[i + 1].length + 32; // RFC 9113 6.5.2: the size of a header list
    if (n.charCodeAt(0) === 58) continue; // pseudo-headers
    if (n === 'cookie') cookies.push(raw[i + 1]);
    else fields.push(n, raw[i + 1]);
  }
  // HTTP/2 may split Cookie into one field per crumb; the next hop (maybe HTTP/1.1) wants one.
  if (cookies.length) fields.push('cookie', cookies.join('; '));
  const cl = get(fields, 'content-length');
  const limits = opts.limits();
  const authority = String(h[':authority'] ?? get(fields, 'host') ?? '');
  const target = splitTarget(String(h[':path'] ?? ''));
  const path = typeof target === 'string' ? undefined : canonicalPath(target.path, limits.path);
  const head: RequestHead = {
    method,
    authority,
    // A path refused below is logged as it came (http/refused.ts).
    path: path ?? (typeof target === 'string' ? String(h[':path'] ?? '') : target.path),
    query: typeof target === 'string' ? '' : target.query,
    // "te: trailers" is the one TE an HTTP/2 request may carry; gRPC needs it on the next hop.
    headers: endToEnd(fields, 'te'),
    hasBody: !stream.endAfterHeaders,
    contentLength: cl !== undefined ? Number(cl) : undefined,
    protocol: 'HTTP/2',
  };
  const ds = new Stream(stream, head);
  if (bytes > MAX_HEADER_BYTES) {
    opts.onRejected?.({ status: 431, code: 'request_headers_too_large', durationMs: 0, ds });
    sendError(ds, new ProxyError('request_headers_too_large', `request headers too large (${Math.ceil(bytes / 1024)} KiB; the limit is ${MAX_HEADER_BYTES / 1024} KiB)`));
    return;
  }
  let bad: string | undefined;
  if (method === 'CONNECT') bad = 'CONNECT inside an HTTP/2 connection is not supported (open the tunnel with HTTP/1.1 CONNECT)';
  else if (!authority) bad = `${method} ${String(h[':path'] ?? '').slice(0, 200)}: no :authority and no Host, so there is no service to route to`;
  else if (!validAuthority(authority)) bad = `:authority "${authority.slice(0, 200)}" is not a valid host[:port]`;
  else if (typeof target === 'string') bad = target;
  else if (path === undefined) bad = `path "${target.path.slice(0, 200)}" has a malformed percent-escape`;
  if (bad !== undefined) {
    opts.onRejected?.({ status: 400, code: 'bad_request', durationMs: 0, ds });
    sendError(ds, new ProxyError('bad_request', bad));
    return;
  }
  opts.onRequest(ds);
}

/** A session's ends' text (net/addresses.ts): node:http2 makes the session object, so it is kept under a symbol. */
const HOST_PORTS = Symbol('weft.hostPorts');

/** One HTTP/2 stream as the request path sees it. */
class Stream implements Downstream {
  readonly head: RequestHead;
  private readonly s: http2.ServerHttp2Stream;
  /** Set by forward.ts (declared here so that every stream has the same shape). */
  listenerName: string | undefined = undefined;
  /** Set by forward.ts's metadata exchange: the client's metadata, and what goes with whatever answer goes. */
  peerMetadata: PeerMetadata | undefined = undefined;
  responseMetadata: HeaderList | undefined = undefined;
  /**
   * Set by the layers that have them (tracing, JWT authentication, an external authorizer):
   * declared so that a stream that gets one keeps its shape. Added later, each moved the stream to
   * another hidden class, and the code that reads streams saw two.
   */
  trace: TraceContext | undefined = undefined;
  dynamicMetadata: Record<string, Record<string, unknown>> | undefined = undefined;
  responseHeadersToAdd: HeaderList | undefined = undefined;
  responseStarted = false;
  private finished = false;
  private trailersIn: HeaderList = [];
  private trailersOut: HeaderList | undefined;
  private abortCb: (() => void) | undefined;
  private bodyStarted = false;
  /** The client's END_STREAM arrived (or the request had no body). */
  private bodyEnded = false;

  remoteAddress(): string {
    return this.s.session?.socket?.remoteAddress ?? '';
  }

  remotePort(): number {
    try {
      return this.s.session?.socket?.remotePort ?? 0;
    } catch {
      return 0; // the session let its socket go (ERR_HTTP2_SOCKET_UNBOUND)
    }
  }

  peerWorkload(): string | undefined {
    try {
      return peerWorkload(this.s.session?.socket);
    } catch {
      return undefined; // the session let its socket go (ERR_HTTP2_SOCKET_UNBOUND)
    }
  }

  sourcePrincipal(): string | undefined {
    return peerPrincipal(this.s.session?.socket);
  }

  localAddress(): { address: string; port: number } {
    const s = this.s.session?.socket;
    return { address: s?.localAddress ?? '', port: s?.localPort ?? 0 };
  }

  hostPorts(): HostPorts {
    // Kept per session: its socket is a proxy, which it may have let go (ERR_HTTP2_SOCKET_UNBOUND).
    const session = this.s.session as (http2.ServerHttp2Session & { [HOST_PORTS]?: HostPortsHolder }) | undefined;
    if (!session) return hostPortsOf({ hostPorts: undefined }, undefined);
    const holder = (session[HOST_PORTS] ??= { hostPorts: undefined });
    try {
      return hostPortsOf(holder, session.socket);
    } catch {
      return hostPortsOf({ hostPorts: undefined }, undefined);
    }
  }

  requestedServerName(): string | undefined {
    return requestedServerName(this.s.session?.socket);
  }

  constructor(s: http2.ServerHttp2Stream, head: RequestHead) {
    this.s = s;
    this.head = head;
    s.on('close', () => {
      if (this.finished) return;
      this.finished = true;
      const cb = this.abortCb;
      this.abortCb = undefined;
      cb?.();
    });
    s.on('wantTrailers', () => {
      const t = this.trailersOut;
      try {
        s.sendTrailers(t && t.length ? toObject(t) : {});
      } catch {
        s.close(NGHTTP2_INTERNAL_ERROR);
      }
    });
  }

  readBody(sink: BodySink): void {
    if (this.bodyStarted) return;
    this.bodyStarted = true;
    const s = this.s;
    if (!this.head.hasBody) {
      sink.end([]);
      return;
    }
    s.on('trailers', (_h, _f, raw: string[]) => {
      for (let i = 0; i < raw.length; i += 2) if (raw[i].charCodeAt(0) !== 58) this.trailersIn.push(raw[i].toLowerCase(), raw[i + 1]);
    });
    s.on('data', (chunk: Buffer) => {
      if (!sink.data(chunk)) s.pause();
    });
    s.on('end', () => {
      this.bodyEnded = true;
      sink.end(this.trailersIn);
    });
    if (s.readableEnded) {
      this.bodyEnded = true;
      sink.end(this.trailersIn);
    }
  }

  resumeBody(): void {
    this.s.resume();
  }

  respond(status: number, headers: HeaderList, contentLength: number | undefined, end: boolean): void {
    if (this.responseStarted || this.finished || this.s.destroyed) return;
    this.responseStarted = true;
    const h = toObject(headers);
    h[':status'] = status;
    const extra = this.responseMetadata;
    if (extra) for (let i = 0; i < extra.length; i += 2) h[extra[i]!] = extra[i + 1]!;
    const bodyless = this.head.method === 'HEAD' || status === 204 || status === 304;
    if (contentLength !== undefined && (!bodyless || this.head.method === 'HEAD')) h['content-length'] = String(contentLength);
    // Trailers can follow only a body of unknown length (gRPC's, or a chunked HTTP/1.1 one).
    // (With none, node:http2 ends such a stream with an empty DATA frame: see the todo test.)
    const endNow = end || bodyless;
    try {
      this.s.respond(h, { endStream: endNow, waitForTrailers: !endNow && contentLength === undefined });
    } catch {
      this.s.close(NGHTTP2_INTERNAL_ERROR);
      return;
    }
    if (endNow) this.finished = true;
  }

  write(chunk: Buffer): boolean {
    if (this.finished || this.s.destroyed || chunk.length === 0) return true;
    return this.s.write(chunk);
  }

  onDrain(cb: () => void): void {
    this.s.on('drain', cb);
  }

  end(trailers?: HeaderList): void {
    if (this.finished) return;
    this.finished = true;
    if (this.s.destroyed) return;
    this.trailersOut = trailers;
    this.s.end();
    // An answer complete before the request (an error, an early response): the client's half of
    // the stream is closed too, once the answer is flushed (RST_STREAM NO_ERROR, RFC 9113 8.1).
    if (this.head.hasBody && !this.bodyEnded) this.s.close(NGHTTP2_NO_ERROR);
  }

  reset(_reason: string): void {
    if (this.finished) return;
    this.finished = true;
    // Not close(): it flushes and ends the stream cleanly before its RST_STREAM, and the client
    // would take a cut answer for a whole one. destroy() resets it as it is (INTERNAL_ERROR).
    if (!this.s.destroyed) this.s.destroy(new Error(`weft: ${_reason}`));
  }

  onAbort(cb: () => void): void {
    this.abortCb = cb;
  }

  upgradeTo(): undefined {
    return undefined;
  }
}

/** A HeaderList as node:http2 takes it: repeated names become arrays. */
export function toObject(h: HeaderList): Record<string, string | string[] | number> {
  const o: Record<string, string | string[] | number> = Object.create(null);
  for (let i = 0; i < h.length; i += 2) {
    const n = h[i];
    const v = h[i + 1];
    const cur = o[n];
    if (cur === undefined) o[n] = v;
    else if (Array.isArray(cur)) cur.push(v);
    else o[n] = [String(cur), v];
  }
  return o;
}
