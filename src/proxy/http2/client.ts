// The upstream side of HTTP/2 (cleartext, prior knowledge), for clusters whose protocol options
// say HTTP/2: requests become streams on a few long-lived sessions per endpoint, as Envoy does.
// Same contract as http1/client.ts: request(UpstreamRequest, ResponseHandler) -> UpstreamCall.
//
// A session is used once the server's SETTINGS have arrived, for at most as many streams as they
// allow; a full session makes the pool open another, up to the limits below. A session that fails
// to connect fails the calls waiting for it with phase 'connect' (forward.ts retries them on
// another endpoint). A GOAWAY takes the session out of use (its open streams finish; it closes
// after them); streams the server never processed (REFUSED_STREAM, or above the GOAWAY's
// last-stream-id) are sent again once on another session if no body byte had gone out. Any other
// reset, or the session dying, fails the call: before the response as 'request', after as 'response'.
import http2 from 'node:http2';
import net from 'node:net';
import { endpointName } from '../../util/net.ts';
import { type TlsOrigin, connectTls } from '../tls/upstream.ts';
import { type ConnectionMemo, type HeaderList, type ResponseHandler, type UpstreamCall, UpstreamError, type UpstreamRequest } from '../http/types.ts';
import { toObject } from './server.ts';
import { MAX_HEADER_BYTES, get } from '../http1/headers.ts';
import { type PoolStats, keepAlive } from '../http1/client.ts';
import type { PoolOptions } from '../upstream/pools.ts';
import type { ClusterResources } from '../upstream/resources.ts';

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, NGHTTP2_NO_ERROR } = http2.constants;

/** Fields HTTP/2 forbids (RFC 9113 8.2.2); the request path already drops most of them. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);

/** How long an HTTP/2 connection with no stream is kept when the cluster sets no idle_timeout (Envoy's default). */
export const H2_IDLE_TIMEOUT_MS = 3_600_000;

class Call implements UpstreamCall {
  readonly req: UpstreamRequest;
  readonly handler: ResponseHandler;
  stream: http2.ClientHttp2Stream | undefined;
  /** The session the stream is on. */
  private session: Session | undefined;
  done = false;
  responseStarted = false;
  private drainCb: (() => void) | undefined;
  private trailersOut: HeaderList | undefined;
  private endPending = false;
  private readonly pool: Http2Pool;
  /** Refused by the server (REFUSED_STREAM, or above a GOAWAY's last-stream-id): sent again, once. */
  private retried = false;
  /** Request body bytes handed to the stream: a refused stream is sent again only if none were. */
  private bodyBytes = 0;

  constructor(pool: Http2Pool, req: UpstreamRequest, handler: ResponseHandler) {
    this.pool = pool;
    this.req = req;
    this.handler = handler;
  }

  socket(): net.Socket | undefined {
    // node:http2 hands out a proxy of the session's socket, which throws on any read once the
    // session has let its socket go (ERR_HTTP2_SOCKET_UNBOUND): probe it once here.
    try {
      const s = this.stream?.session?.socket as net.Socket | undefined;
      return s && s.localPort !== undefined ? s : undefined;
    } catch {
      return undefined;
    }
  }

  memo(): ConnectionMemo | undefined {
    return this.session;
  }

  write(chunk: Buffer): boolean {
    const s = this.stream;
    if (this.done || !s || chunk.length === 0) return !this.done;
    this.bodyBytes += chunk.length;
    return s.write(chunk);
  }

  onDrain(cb: () => void): void {
    this.drainCb = cb;
  }

  end(trailers?: HeaderList): void {
    if (this.done || this.endPending) return;
    this.endPending = true;
    this.trailersOut = trailers;
    if (this.stream && this.req.body !== 'none') this.stream.end();
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    if (this.stream && !this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
    else this.pool.dequeue(this);
  }

  resume(): void {
    this.stream?.resume();
  }

  fail(err: UpstreamError): void {
    if (this.done) return;
    this.done = true;
    if (this.stream && !this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
    this.handler.onError(err);
  }

  /** Opens the stream on a ready session; `closed` runs once when the stream is gone. */
  start(on: Session, closed: () => void): void {
    const session = on.s;
    const r = this.req;
    if (r.upgrade) {
      closed();
      this.fail(new UpstreamError('upgrade_over_http2', 'request', `cannot carry an Upgrade: ${r.upgrade} request over HTTP/2`));
      return;
    }
    const h = toObject(fieldsForHttp2(r.headers));
    h[':method'] = r.method;
    h[':path'] = r.target;
    h[':authority'] = r.authority;
    h[':scheme'] = 'http';
    if (typeof r.body === 'number') h['content-length'] = String(r.body);
    const noBody = r.body === 'none';
    let s: http2.ClientHttp2Stream;
    try {
      s = session.request(h, { endStream: noBody, waitForTrailers: r.body === 'chunked' });
    } catch (e) {
      closed();
      this.fail(new UpstreamError((e as NodeJS.ErrnoException).code ?? 'ERR_HTTP2', 'connect', (e as Error).message));
      return;
    }
    const first = this.stream === undefined;
    this.stream = s;
    this.session = on;
    let trailers: HeaderList = [];
    s.on('wantTrailers', () => {
      const t = this.trailersOut;
      try {
        s.sendTrailers(t && t.length ? toObject(t) : {});
      } catch {
        s.close(NGHTTP2_CANCEL);
      }
    });
    s.on('response', (headers, flags, raw: string[]) => {
      if (this.done) return;
      const status = Number(headers[':status']);
      const list = fromRaw(raw);
      this.responseStarted = true;
      const cl = get(list, 'content-length');
      const endStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      const bodyless = endStream || r.method === 'HEAD' || status === 204 || status === 304;
      this.handler.onResponse(status, list, cl !== undefined ? Number(cl) : undefined, bodyless);
    });
    s.on('trailers', (_h, _f, raw: string[]) => {
      trailers = fromRaw(raw);
    });
    s.on('data', (chunk: Buffer) => {
      if (this.done) return;
      if (!this.handler.onData(chunk)) s.pause();
    });
    s.on('end', () => {
      if (this.done) return;
      if (!this.responseStarted) return; // closed without a response: 'close' says why
      // node:http2 ends the readable side on RST_STREAM too: that is a failure, 'close' says so.
      if (s.rstCode !== undefined && s.rstCode !== NGHTTP2_NO_ERROR) return;
      this.done = true;
      this.handler.onEnd(trailers);
    });
    s.on('drain', () => this.drainCb?.());
    s.on('error', () => {}); // 'close' reports it
    s.on('close', () => {
      closed();
      if (this.done) return;
      const code = s.rstCode ?? NGHTTP2_NO_ERROR;
      if (code === NGHTTP2_REFUSED_STREAM && !this.responseStarted) {
        // Never processed (RFC 9113 8.7): safe to send again if no body byte has gone out yet.
        // (A body still flowing would have nowhere to go meanwhile: that case fails below.)
        if (!this.retried && this.bodyBytes === 0 && (this.req.body === 'none' || this.endPending)) {
          this.retried = true;
          this.stream = undefined;
          this.pool.enqueue(this);
          return;
        }
        if (this.req.body === 'none') {
          this.fail(new UpstreamError('refused_stream', 'connect', 'refused the stream (it was not processed)'));
          return;
        }
      }
      const phase = this.responseStarted ? 'response' : 'request';
      const what = this.responseStarted ? 'reset the stream in the middle of the response' : 'reset the stream before answering';
      this.fail(new UpstreamError(code === NGHTTP2_NO_ERROR ? 'ECONNRESET' : `h2_error_${code}`, phase, `${what} (HTTP/2 error code ${code})`));
    });
    if (first) this.handler.onRequestSent(this);
    if (this.endPending && !noBody && !this.done) s.end();
  }
}

function fieldsForHttp2(h: HeaderList): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i < h.length; i += 2) {
    const n = h[i];
    if (n.charCodeAt(0) === 58 || CONNECTION_SPECIFIC.has(n)) continue;
    if (n === 'te' && h[i + 1].trim().toLowerCase() !== 'trailers') continue;
    out.push(n, h[i + 1]);
  }
  return out;
}

function fromRaw(raw: string[]): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i].charCodeAt(0) !== 58) out.push(raw[i].toLowerCase(), raw[i + 1]);
  return out;
}

/** One HTTP/2 connection to the endpoint and the streams it carries. */
class Session implements ConnectionMemo {
  readonly s: http2.ClientHttp2Session;
  upstreamSide: unknown = undefined;
  /** Usable: connected, and the server's SETTINGS (its stream limit) have arrived. */
  ready = false;
  /** Takes no new streams (GOAWAY, an error, the pool closing, its age or its share of requests); closed once its streams end. */
  draining = false;
  streams = 0;
  /** Streams started on it, for max_requests_per_connection. */
  started = 0;
  /** Timers: idle (no stream for idle_timeout), max_connection_duration, and keepalive PINGs. */
  idleTimer: NodeJS.Timeout | undefined;
  durationTimer: NodeJS.Timeout | undefined;
  pingTimer: NodeJS.Timeout | undefined;
  constructor(s: http2.ClientHttp2Session) {
    this.s = s;
  }
  clearTimers(): void {
    for (const t of [this.idleTimer, this.durationTimer, this.pingTimer]) if (t) clearTimeout(t);
    this.idleTimer = this.durationTimer = this.pingTimer = undefined;
  }
}

/**
 * The HTTP/2 connections to one endpoint of a cluster. Requests become streams on a ready session
 * with room (under both the server's SETTINGS_MAX_CONCURRENT_STREAMS and the cluster's
 * max_concurrent_streams); when every session is full another is opened, while the cluster's
 * circuit breakers (shared by all its pools: upstream/resources.ts) allow a connection; beyond that
 * requests wait, as many as max_pending_requests allows across the cluster, and past it fail with
 * 'overflow'. A stream also needs one of the cluster's request slots (max_requests).
 */
export class Http2Pool {
  readonly address: string;
  readonly port: number;
  /** "address:port", made once: every request names its endpoint. */
  readonly name: string;
  private opts: PoolOptions;
  private res: ClusterResources;
  private readonly sessions = new Set<Session>();
  private readonly queue: Call[] = [];
  private closed = false;
  /** TLS to this endpoint (mutual TLS between sidecars), if its transport socket says so. */
  private readonly tls: TlsOrigin | undefined;

  constructor(address: string, port: number, opts: PoolOptions, tls?: TlsOrigin) {
    this.address = address;
    this.port = port;
    this.name = endpointName(address, port);
    this.opts = opts;
    this.res = opts.resources;
    this.tls = tls;
  }

  configure(o: PoolOptions): void {
    this.opts = o;
    if (o.resources !== this.res) {
      // The cluster was replaced by one of the same name: what this pool holds moves to its counters.
      this.res.handOver(o.resources, this.sessions.size, this.queue.length);
      this.res = o.resources;
    }
    this.dispatch(); // a higher stream limit may make room
  }

  request(req: UpstreamRequest, handler: ResponseHandler): UpstreamCall {
    const call = new Call(this, req, handler);
    this.enqueue(call);
    return call;
  }

  /** Starts the call on a session with room, or queues it (opening a session if none is coming). */
  enqueue(call: Call): void {
    if (this.closed) {
      queueMicrotask(() => call.fail(new UpstreamError('pool_closed', 'connect', 'the endpoint left the cluster')));
      return;
    }
    const s = this.queue.length === 0 ? this.available() : undefined;
    if (s) {
      this.startOn(s, call);
      return;
    }
    if (this.res.pending >= this.res.limits.maxPending) {
      let streams = 0;
      let each = this.opts.maxStreamsPerSession;
      for (const x of this.sessions) {
        streams += x.streams;
        if (x.ready) each = Math.min(each, this.capacity(x));
      }
      const msg = this.res.pendingOverflow(`${this.res.connections} connections open to the cluster's endpoints, ${this.sessions.size} of them HTTP/2 to this one with ${streams} streams (at most ${each} each)`);
      queueMicrotask(() => call.fail(new UpstreamError('overflow', 'connect', msg)));
      return;
    }
    this.queue.push(call);
    this.res.pending++;
    this.grow();
  }

  dequeue(call: Call): void {
    const i = this.queue.indexOf(call);
    if (i < 0) return;
    this.queue.splice(i, 1);
    this.res.pending--;
  }

  private capacity(s: Session): number {
    const remote = s.s.remoteSettings?.maxConcurrentStreams;
    return Math.min(this.opts.maxStreamsPerSession, remote === undefined ? Infinity : remote);
  }

  private available(): Session | undefined {
    for (const s of this.sessions) if (s.ready && !s.draining && s.streams < this.capacity(s)) return s;
    return undefined;
  }

  private startOn(s: Session, call: Call): void {
    const res = this.res;
    if (!res.takeRequest()) {
      const msg = res.requestOverflow();
      queueMicrotask(() => call.fail(new UpstreamError('overflow', 'connect', msg)));
      return;
    }
    s.streams++;
    s.started++;
    this.busy(s);
    call.start(s, () => {
      res.requests--;
      s.streams--;
      if (s.draining && s.streams === 0) this.closeSession(s);
      else {
        if (s.streams === 0) this.idled(s);
        this.dispatch();
      }
    });
    // max_requests_per_connection: its last stream started; it closes once its streams end.
    const max = this.opts.maxRequestsPerConnection;
    if (max !== undefined && s.started >= max) this.drain(s);
  }

  /** A stream started: the session is not idle. */
  private busy(s: Session): void {
    if (s.idleTimer) clearTimeout(s.idleTimer);
    s.idleTimer = undefined;
  }

  /** No stream left on a ready session: it closes after the cluster's idle_timeout unless one starts. */
  private idled(s: Session): void {
    const ms = this.opts.idleTimeoutMs ?? H2_IDLE_TIMEOUT_MS;
    if (ms === 0 || s.idleTimer || s.draining) return;
    s.idleTimer = setTimeout(() => {
      s.idleTimer = undefined;
      if (s.streams === 0) this.drain(s); // GOAWAY, then closed
    }, ms);
    s.idleTimer.unref();
  }

  /** Queued requests onto sessions with room; a new session if they still wait and none is coming. */
  private dispatch(): void {
    while (this.queue.length) {
      const s = this.available();
      if (!s) break;
      const call = this.queue.shift()!;
      this.res.pending--;
      if (!call.done) this.startOn(s, call);
    }
    this.grow();
  }

  private grow(): void {
    if (!this.queue.length || this.closed) return;
    for (const s of this.sessions) if (!s.ready && !s.draining) return; // one is on its way
    if (this.res.canConnect(this.sessions.size === 0)) this.connect();
  }

  private connect(): void {
    const session = http2.connect(`http://${this.name}`, {
      // Over TLS, node:http2 waits for the handshake (secureConnect) before it speaks; a failed one
      // is the session's error, a connect failure (tls/upstream.ts says why).
      createConnection: () => {
        const socket = this.tls ? connectTls(this.address, this.port, this.tls, 'http2') : net.connect({ host: this.address, port: this.port, noDelay: true });
        keepAlive(socket, this.opts.tcpKeepalive);
        return socket;
      },
      maxSessionMemory: 64,
      settings: { maxHeaderListSize: MAX_HEADER_BYTES * 2, enablePush: false },
    });
    const s = new Session(session);
    this.sessions.add(s);
    this.res.connections++;
    let connected = false;
    const timer = setTimeout(() => {
      if (s.ready) return;
      this.lost(s, new UpstreamError('ETIMEDOUT', 'connect', `no connection within the connect timeout of ${this.opts.connectTimeoutMs} ms`));
    }, this.opts.connectTimeoutMs);
    session.once('connect', () => {
      connected = true;
      // max_connection_duration counts from the connection: then no new streams, closed after the last.
      const max = this.opts.maxConnectionDurationMs;
      if (max) {
        s.durationTimer = setTimeout(() => this.drain(s), max);
        s.durationTimer.unref();
      }
    });
    // The server's first SETTINGS say how many streams it takes: only then is the session used.
    session.once('remoteSettings', () => {
      clearTimeout(timer);
      if (s.draining) return;
      s.ready = true;
      if (this.opts.h2Keepalive) this.keepalive(s, this.opts.h2Keepalive);
      if (s.streams === 0) this.idled(s);
      this.dispatch();
    });
    session.on('remoteSettings', () => this.dispatch());
    session.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      this.lost(s, new UpstreamError(e.code ?? 'ECONNRESET', 'connect', connected ? `the HTTP/2 connection failed before it was ready (${e.message})` : e.message));
    });
    // No new streams on it; streams above its last-stream-id close as REFUSED_STREAM and are retried.
    session.on('goaway', () => this.drain(s));
    session.on('close', () => {
      clearTimeout(timer);
      s.clearTimers();
      this.lost(s, new UpstreamError('ECONNRESET', 'connect', 'connection closed while connecting'));
    });
    // An idle session does not keep the sidecar alive; it is closed by the upstream, its idle timeout or close().
    session.unref();
  }

  /**
   * connection_keepalive: a PING every interval (plus a random part of it, up to the jitter); one not
   * answered within the timeout means the connection is dead: it is destroyed, and its streams fail.
   */
  private keepalive(s: Session, ka: NonNullable<PoolOptions['h2Keepalive']>): void {
    const schedule = () => {
      s.pingTimer = setTimeout(ping, ka.intervalMs + Math.floor((Math.random() * ka.jitterPercent * ka.intervalMs) / 100));
      s.pingTimer.unref();
    };
    const ping = () => {
      s.pingTimer = undefined;
      if (s.s.destroyed || s.s.closed) return;
      let answered = false;
      const deadline = setTimeout(() => {
        if (answered || s.s.destroyed) return;
        this.lost(s, new UpstreamError('ETIMEDOUT', 'connect', `no answer to an HTTP/2 PING within ${ka.timeoutMs} ms`));
      }, ka.timeoutMs);
      deadline.unref();
      s.pingTimer = deadline;
      try {
        s.s.ping((err) => {
          answered = true;
          clearTimeout(deadline);
          if (!err && !s.s.destroyed) schedule();
        });
      } catch {
        clearTimeout(deadline); // closing: no more PINGs
      }
    };
    schedule();
  }

  /** The session is gone or failed: forget it; if it never became ready, the queue learns why. */
  private lost(s: Session, err: UpstreamError): void {
    if (!this.forget(s)) return;
    const wasReady = s.ready;
    s.draining = true;
    s.clearTimers();
    if (!s.s.destroyed) s.s.destroy();
    // Requests waiting for this session fail as connect failures (forward.ts may retry them on
    // another endpoint) unless another session is on its way or has room.
    if (!wasReady && this.queue.length) {
      let another = false;
      for (const o of this.sessions) if (!o.draining) another = true;
      if (!another) {
        for (const c of this.queue.splice(0)) {
          this.res.pending--;
          c.fail(err);
        }
      }
    }
    this.dispatch();
  }

  private forget(s: Session): boolean {
    if (!this.sessions.delete(s)) return false;
    this.res.connections--;
    return true;
  }

  /** Takes the session out of use; it closes once its streams end. */
  private drain(s: Session): void {
    if (s.draining) return;
    s.draining = true;
    if (s.streams === 0) this.closeSession(s);
    this.dispatch();
  }

  private closeSession(s: Session): void {
    this.forget(s);
    s.clearTimers();
    if (!s.s.closed && !s.s.destroyed) s.s.close();
  }

  stats(): PoolStats {
    let idle = 0;
    let busy = 0;
    let connecting = 0;
    let streams = 0;
    for (const s of this.sessions) {
      streams += s.streams;
      if (!s.ready) connecting++;
      else if (s.streams) busy++;
      else idle++;
    }
    return { cluster: this.res.cluster, endpoint: this.name, idle, busy, connecting, pending: this.queue.length, streams };
  }

  /** Stops taking requests; sessions close once their streams end. */
  close(): void {
    this.closed = true;
    for (const c of this.queue.splice(0)) {
      this.res.pending--;
      c.fail(new UpstreamError('pool_closed', 'connect', 'the endpoint left the cluster'));
    }
    for (const s of [...this.sessions]) this.drain(s);
  }

  destroy(): void {
    this.close();
    for (const s of [...this.sessions]) {
      this.forget(s);
      s.clearTimers();
      s.s.destroy();
    }
  }
}
