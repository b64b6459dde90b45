// The upstream side of HTTP/1.1: one keep-alive pool of raw sockets per endpoint, each with its
// own llhttp response parser. The rule that keeps pools healthy: a connection goes back to the
// pool only after an exchange that completed cleanly both ways (request fully written, response
// fully read, keep-alive agreed, no stray bytes). Anything else destroys it, so a failed or odd
// request can never leave a connection busy or poisoned for the next one.
import net from 'node:net';
import { endpointName } from '../../util/net.ts';
import { type TlsOrigin, TLS_HANDSHAKE, connectTls } from '../tls/upstream.ts';
import { READ_BUFFER, readInto } from '../net/read-buffer.ts';
import { readEnded, readStarted } from '../net/read-end.ts';
import { type ConnectionMemo, type HeaderList, type ResponseHandler, type UpstreamCall, type UpstreamRequest, UpstreamError } from '../http/types.ts';

export { type ResponseHandler, type UpstreamCall, type UpstreamRequest, UpstreamError };
import { FramingFields, HeaderCollector, corkForThisTick, forHttp1, headBytes, lastChunk, ownString, writeChunk } from './headers.ts';
import { HC_CONTINUE, HC_SKIP_BODY, OK, PAUSED, PAUSED_UPGRADE, Parser, TYPE_RESPONSE } from './llhttp.ts';
import type { PoolOptions } from '../upstream/pools.ts';
import type { ClusterResources } from '../upstream/resources.ts';

/** How long an idle connection is kept when neither the cluster (idle_timeout) nor the upstream (Keep-Alive) says. */
export const POOL_IDLE_TIMEOUT_MS = 60_000;

export interface PoolStats {
  /** The cluster the pool belongs to. */
  cluster?: string;
  endpoint: string;
  idle: number;
  busy: number;
  connecting: number;
  pending: number;
  /** How long the oldest request still without a connection has waited (0: none waits). */
  waitingMs?: number;
  /** HTTP/2 only: streams open across the endpoint's connections. */
  streams?: number;
}

/** The trailers of a response that has none (shared: never written to). */
const NO_TRAILERS: HeaderList = [];

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** One exchange: a request and its response, on whichever connection the pool gives it. */
class Call implements UpstreamCall {
  readonly req: UpstreamRequest;
  readonly handler: ResponseHandler;
  conn: Connection | undefined;
  done = false;
  /** The request went out whole (head, body and its end). */
  requestDone = false;
  responseStarted = false;
  bodyBytes = 0;
  private drainCb: (() => void) | undefined;
  private endPending: HeaderList | undefined | null = null; // null: end() not called yet
  private readonly pool: EndpointPool;
  /** Tried on a reused connection that turned out to be closed: may be sent again, once. */
  retriedStale = false;
  /** When the call began to wait for a connection (performance.now()), for the pool's stats. */
  queuedAt = 0;
  /** Holds one of the cluster's request slots (max_requests) while on a connection. */
  private slot: ClusterResources | undefined;

  constructor(pool: EndpointPool, req: UpstreamRequest, handler: ResponseHandler) {
    this.pool = pool;
    this.req = req;
    this.handler = handler;
  }

  socket(): net.Socket | undefined {
    return this.conn?.socket;
  }

  memo(): ConnectionMemo | undefined {
    return this.conn;
  }

  write(chunk: Buffer): boolean {
    const c = this.conn;
    if (this.done || !c || chunk.length === 0) return !this.done;
    this.bodyBytes += chunk.length;
    if (this.req.body === 'chunked') return writeChunk(c.socket, chunk);
    return c.socket.write(chunk);
  }

  onDrain(cb: () => void): void {
    this.drainCb = cb;
  }

  drained(): void {
    const cb = this.drainCb;
    if (cb) cb();
  }

  end(trailers?: HeaderList): void {
    if (this.done || this.endPending !== null) return;
    this.endPending = trailers;
    const c = this.conn;
    if (!c) return;
    if (typeof this.req.body === 'number' && this.bodyBytes !== this.req.body) {
      this.fail(new UpstreamError('request_body_length', 'request', `the request body was ${this.bodyBytes} bytes, not the ${this.req.body} its Content-Length declared`));
      return;
    }
    if (this.req.body === 'chunked') c.socket.write(lastChunk(trailers), 'latin1');
    this.requestDone = true;
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    this.unclaim();
    if (this.conn) this.conn.destroy();
    else this.pool.dequeue(this);
  }

  /** Takes one of the cluster's request slots; false when max_requests are under way. */
  claim(res: ClusterResources): boolean {
    if (this.slot) return true;
    if (!res.takeRequest()) return false;
    this.slot = res;
    return true;
  }

  /** Gives the request slot back: the call is off its connection (done, or sent again on another). */
  unclaim(): void {
    if (!this.slot) return;
    this.slot.requests--;
    this.slot = undefined;
  }

  resume(): void {
    this.conn?.resumeReading();
  }

  fail(err: UpstreamError): void {
    if (this.done) return;
    this.done = true;
    this.unclaim();
    this.conn?.destroy();
    this.handler.onError(err);
  }

  /** The connection is ours: write the head and let the body flow. */
  attach(conn: Connection): void {
    this.conn = conn;
    const r = this.req;
    let tail = r.upgrade ? `connection: upgrade\r\nupgrade: ${r.upgrade}\r\n` : '';
    if (r.body === 'chunked') tail += 'transfer-encoding: chunked\r\n';
    else if (typeof r.body === 'number') tail += `content-length: ${r.body}\r\n`;
    const head = headBytes(`${r.method} ${r.target} HTTP/1.1\r\nhost: ${r.authority}\r\n`, forHttp1(r.headers), tail);
    // A head alone is one write; a body that follows in the same tick joins it in one writev.
    if (r.body === 'none') {
      conn.socket.write(head);
      this.requestDone = true;
    } else {
      corkForThisTick(conn.socket);
      conn.socket.write(head);
    }
    this.handler.onRequestSent(this);
    // end() may have come before the connection did (a body that was all there at once).
    if (this.endPending !== null && !this.requestDone && !this.done) {
      const t = this.endPending;
      this.endPending = null;
      this.end(t);
    }
  }
}

class Connection implements ConnectionMemo {
  readonly socket: net.Socket;
  upstreamSide: unknown = undefined;
  private readonly pool: EndpointPool;
  private readonly parser: Parser;
  private readonly headers = new HeaderCollector();
  private readonly fields = new FramingFields();
  call: Call | undefined;
  /** Exchanges completed on this connection: a reused one may have been closed by the upstream. */
  uses = 0;
  /** Past max_connection_duration: takes no new request, and closes once the one on it ends. */
  expired = false;
  private durationTimer: NodeJS.Timeout | undefined;
  connected = false;
  private status = 0;
  private messageDone = false;
  private keepAliveMs: number | undefined;
  /** The last Keep-Alive field read (an upstream sends the same one every time). */
  private keepAliveHint: string | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Since when the connection has been idle in the pool (performance.now()), or 0 while in use. */
  private idleSince = 0;
  private idleMs = 0;
  private readingPaused = false;
  destroyed = false;

  /**
   * `shared`: the socket reads into READ_BUFFER (net's onread), which the next read overwrites, so
   * body bytes are copied before they leave onRead. Otherwise (a request that may upgrade, whose
   * socket is handed over as a plain stream) it reads through 'data' events.
   */
  readonly shared: boolean;

  constructor(pool: EndpointPool, socket: net.Socket, shared: boolean) {
    this.pool = pool;
    this.socket = socket;
    this.shared = shared;
    socket.setNoDelay(true);
    this.parser = new Parser(TYPE_RESPONSE, {
      onMessageBegin: () => {
        this.headers.reset();
        this.status = 0;
        return 0;
      },
      onUrl: () => 0,
      onStatus: () => 0,
      onHeaderField: (b) => (this.headers.onField(b) ? 0 : PAUSED),
      onHeaderValue: (b) => (this.headers.onValue(b) ? 0 : PAUSED),
      onHeadersComplete: (status) => this.onHeadersComplete(status),
      onBody: (b) => {
        const call = this.call;
        if (call && !call.done && !call.handler.onData(this.shared ? Buffer.from(b) : b)) this.pauseReading();
        return 0;
      },
      onMessageComplete: () => this.onMessageComplete(),
    });
    if (!shared) socket.on('data', (d: Buffer) => this.onRead(d));
    socket.on('end', () => this.onEnd());
    socket.on('error', (e: NodeJS.ErrnoException) => this.onSocketError(e));
    socket.on('close', () => this.onSocketError(undefined));
    socket.on('drain', () => this.call?.drained());
  }

  private onHeadersComplete(status: number): number {
    // Called once per message, for its head; a chunked body's trailers come as header fields
    // after the body, collected in the same HeaderCollector (reset below).
    this.headers.finish();
    this.status = status;
    const call = this.call;
    if (!call || call.done) return HC_CONTINUE;
    // 100 Continue, 102, 103 are interim; a 101 is handed over once the parser pauses for it.
    if (status < 200) return HC_CONTINUE;
    const h = this.headers.list;
    const f = this.fields;
    f.scan(h);
    const ka = f.keepAlive;
    const cl = f.contentLength;
    if (ka && ka !== this.keepAliveHint) {
      this.keepAliveHint = ownString(ka); // kept while the connection lives
      const m = /timeout=(\d+)/i.exec(ka);
      if (m) this.keepAliveMs = Number(m[1]) * 1000;
    }
    const bodyless = call.req.method === 'HEAD' || status === 204 || status === 304;
    call.responseStarted = true;
    call.handler.onResponse(status, h, cl !== undefined ? Number(cl) : undefined, bodyless);
    this.headers.reset();
    return call.req.method === 'HEAD' ? HC_SKIP_BODY : HC_CONTINUE;
  }

  private onMessageComplete(): number {
    // An interim response: the real one follows. A 101: llhttp pauses for the upgrade next.
    if (this.status < 200) return 0;
    this.messageDone = true;
    return PAUSED;
  }

  /** Bytes from the upstream; `d` may be READ_BUFFER, valid only until this returns. */
  onRead(d: Buffer): void {
    readStarted();
    try {
      this.onData(d);
    } catch (e) {
      // A bug, not bad input: the exchange fails with a 502 naming it, and the sidecar goes on.
      const call = this.call;
      if (call) call.fail(new UpstreamError('internal_error', call.responseStarted ? 'response' : 'request', `failed inside the sidecar: ${(e as Error)?.message ?? e}`));
      else this.destroy();
    } finally {
      readEnded(); // the response head and body this read brought leave now, in one write
    }
  }

  private onData(d: Buffer): void {
    const call = this.call;
    if (!call) {
      // Bytes from an upstream with no request outstanding: it is out of step; never reuse it.
      this.destroy();
      return;
    }
    const ret = this.parser.execute(d);
    // A handler may have given up on the exchange from a callback (a retry), destroying this
    // connection: nothing more to do with what the read brought.
    if (this.destroyed) return;
    const consumed = this.parser.consumed;
    if (ret === OK) return;
    if (ret === PAUSED && this.messageDone) {
      this.messageDone = false;
      this.parser.resume();
      const stray = consumed < d.length;
      this.headers.finish();
      const trailers = this.headers.list.length ? this.headers.list : NO_TRAILERS; // reset() starts a new list
      this.headers.reset();
      this.finishCall(call, trailers, !stray && this.parser.keepAlive);
      return;
    }
    if (ret === PAUSED_UPGRADE) {
      this.headers.finish();
      const h = this.headers.list.slice();
      this.detach();
      call.done = true;
      call.unclaim();
      call.handler.onUpgrade(this.status, h, this.socket, d.subarray(consumed));
      return;
    }
    if (ret === PAUSED) {
      call.fail(new UpstreamError('response_headers_too_large', 'response', `the response headers are larger than ${this.headers.bytes} bytes`));
      return;
    }
    const { code, reason } = this.parser.errorText(ret);
    call.fail(new UpstreamError(code, call.responseStarted ? 'response' : 'request', `malformed HTTP response (${code}: ${reason})`));
  }

  private finishCall(call: Call, trailers: HeaderList, keep: boolean): void {
    this.uses++;
    if (!call.done) {
      call.done = true;
      call.unclaim();
      call.handler.onEnd(trailers);
    }
    // A response that ended before the request did (an early 404 or 413): the upstream reads no
    // more of this request, so the connection cannot carry another one (as Envoy does).
    if (!keep || !call.requestDone) {
      this.destroy();
      return;
    }
    this.call = undefined;
    this.pool.release(this);
  }

  private onEnd(): void {
    const call = this.call;
    if (call && !call.done && call.responseStarted && this.parser.needsEof) {
      const ret = this.parser.finish();
      if (ret === OK || ret === PAUSED) {
        this.finishCall(call, [], false);
        return;
      }
    }
    this.onSocketError(undefined);
  }

  private onSocketError(e: NodeJS.ErrnoException | undefined): void {
    if (this.destroyed) return;
    const call = this.call;
    this.destroy();
    if (!call || call.done) return;
    const code = e?.code ?? 'ECONNRESET';
    if (!this.connected) {
      call.fail(new UpstreamError(code, 'connect', e?.message ?? 'connection closed while connecting'));
      return;
    }
    // A reused connection the upstream had closed, found out before any byte of the answer: most
    // likely the request was never processed. Send it again on a new connection, once, if it had
    // no body and is idempotent (RFC 9110 9.2.2), as undici does: a POST may have been acted on.
    if (this.uses > 0 && !call.responseStarted && call.req.body === 'none' && IDEMPOTENT.has(call.req.method) && !call.retriedStale) {
      call.retriedStale = true;
      call.conn = undefined;
      call.unclaim();
      this.pool.enqueue(call, true);
      return;
    }
    const phase = call.responseStarted ? 'response' : 'request';
    const what = call.responseStarted ? 'closed the connection in the middle of the response' : 'closed the connection before answering';
    call.fail(new UpstreamError(code, phase, `${what} (${code})`));
  }

  pauseReading(): void {
    if (!this.readingPaused) {
      this.readingPaused = true;
      this.socket.pause();
    }
  }

  resumeReading(): void {
    if (this.readingPaused) {
      this.readingPaused = false;
      this.socket.resume();
    }
  }

  /** Hands the socket over (an upgrade): it is no longer the pool's. */
  private detach(): void {
    if (this.durationTimer) clearTimeout(this.durationTimer);
    this.durationTimer = undefined;
    this.pool.forget(this);
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('end');
    this.socket.removeAllListeners('error');
    this.socket.removeAllListeners('close');
    this.socket.removeAllListeners('drain');
    this.call = undefined;
    this.destroyed = true;
    this.parser.destroy();
  }

  /** `clusterMs`: the cluster's idle_timeout (Infinity: none), if it sets one. */
  startIdle(clusterMs: number | undefined): void {
    this.resumeReading();
    // Leave a second of margin under the upstream's own keep-alive timeout, so that the pool gives
    // up a connection before the upstream closes it under a new request; the cluster's idle
    // timeout, where it sets one, closes it sooner still.
    const hint = this.keepAliveMs !== undefined ? Math.max(0, this.keepAliveMs - 1000) : undefined;
    this.idleMs = clusterMs === undefined ? (hint ?? POOL_IDLE_TIMEOUT_MS) : Math.min(clusterMs, hint ?? Infinity);
    this.idleSince = performance.now();
    // One timer per connection, not one per request: when it fires, it closes the connection if it
    // has idled long enough, else waits again for what is left.
    if (!this.idleTimer && Number.isFinite(this.idleMs)) this.armIdleTimer(this.idleMs);
  }

  /** max_connection_duration from now (its connect): then it takes no new request, and closes if idle. */
  limitDuration(ms: number): void {
    this.durationTimer = setTimeout(() => {
      this.durationTimer = undefined;
      this.expired = true;
      if (!this.call) this.destroy();
    }, ms);
    this.durationTimer.unref();
  }


  private armIdleTimer(ms: number): void {
    this.idleTimer = setTimeout(() => this.idleCheck(), ms);
    this.idleTimer.unref();
  }

  private idleCheck(): void {
    this.idleTimer = undefined;
    if (this.destroyed) return;
    if (this.idleSince === 0) return; // in use: startIdle arms it again
    if (!Number.isFinite(this.idleMs)) return;
    const left = this.idleMs - (performance.now() - this.idleSince);
    if (left <= 0) this.destroy();
    else this.armIdleTimer(left);
  }

  clearIdle(): void {
    this.idleSince = 0;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.durationTimer) clearTimeout(this.durationTimer);
    this.durationTimer = undefined;
    this.pool.forget(this);
    this.call?.unclaim();
    this.call = undefined;
    this.socket.destroy();
    this.parser.destroy();
  }
}

/**
 * The connections to one endpoint of a cluster. The cluster's circuit breakers (shared by all of its
 * pools: upstream/resources.ts) bound its connections, the requests waiting for one, and the
 * requests under way; past them a request fails with 'overflow'.
 */
export class EndpointPool {
  readonly address: string;
  readonly port: number;
  /** "address:port", made once: every request names its endpoint. */
  readonly name: string;
  private opts: PoolOptions;
  private res: ClusterResources;
  private readonly idle: Connection[] = [];
  private readonly all = new Set<Connection>();
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
      this.res.handOver(o.resources, this.all.size, this.queue.length);
      this.res = o.resources;
    }
  }

  request(req: UpstreamRequest, handler: ResponseHandler): UpstreamCall {
    const call = new Call(this, req, handler);
    // A request that may upgrade needs a connection that reads as a plain stream (see connect).
    this.enqueue(call, req.upgrade !== undefined);
    return call;
  }

  /** `fresh`: on a new connection, not an idle one (a retry after a stale connection). */
  enqueue(call: Call, fresh = false): void {
    if (this.closed) {
      queueMicrotask(() => call.fail(new UpstreamError('pool_closed', 'connect', 'the endpoint left the cluster')));
      return;
    }
    while (!fresh && this.idle.length) {
      const c = this.idle.pop()!;
      if (c.destroyed) continue;
      c.clearIdle();
      this.assign(c, call);
      return;
    }
    call.queuedAt = performance.now();
    if (this.res.canConnect(this.all.size === 0)) {
      this.connect(call);
      return;
    }
    if (this.res.pending >= this.res.limits.maxPending) {
      const msg = this.res.pendingOverflow(`${this.res.connections} connections open to the cluster's endpoints (${this.all.size} to this one)`);
      queueMicrotask(() => call.fail(new UpstreamError('overflow', 'connect', msg)));
      return;
    }
    this.queue.push(call);
    this.res.pending++;
  }

  /** The call goes on the connection, if the cluster has a request slot for it (max_requests). */
  private assign(conn: Connection, call: Call): void {
    if (!call.claim(this.res)) {
      const msg = this.res.requestOverflow();
      queueMicrotask(() => call.fail(new UpstreamError('overflow', 'connect', msg)));
      this.release(conn); // it serves the next request, or idles
      return;
    }
    conn.call = call;
    call.attach(conn);
  }

  dequeue(call: Call): void {
    const i = this.queue.indexOf(call);
    if (i < 0) return;
    this.queue.splice(i, 1);
    this.res.pending--;
  }

  private shift(): Call | undefined {
    const c = this.queue.shift();
    if (c) this.res.pending--;
    return c;
  }

  private connect(call: Call): void {
    // A request that may upgrade gets a socket of its own that reads as a plain stream, since it
    // is handed over to a byte pipe after a 101; every other connection reads into READ_BUFFER:
    // plain text through net's onread, TLS (whose connect has no onread) through readInto.
    let shared = call.req.upgrade === undefined;
    let conn: Connection | undefined;
    let socket: net.Socket;
    const onRead = (n: number) => (conn!.onRead(READ_BUFFER.subarray(0, n)), true);
    try {
      if (this.tls) {
        socket = connectTls(this.address, this.port, this.tls, 'http1');
        shared &&= readInto(socket, onRead);
      } else {
        socket = shared ? net.connect({ host: this.address, port: this.port, onread: { buffer: READ_BUFFER, callback: onRead } }) : net.connect({ host: this.address, port: this.port });
      }
    } catch (e) {
      // No workload certificate to make TLS with: a connect failure that says so.
      queueMicrotask(() => call.fail(new UpstreamError((e as NodeJS.ErrnoException).code ?? TLS_HANDSHAKE, 'connect', (e as Error).message)));
      return;
    }
    keepAlive(socket, this.opts.tcpKeepalive);
    conn = new Connection(this, socket, shared);
    conn.call = call;
    call.conn = undefined;
    this.all.add(conn);
    this.res.connections++;
    const timer = setTimeout(() => {
      if (conn.connected) return;
      const c = conn.call;
      conn.call = undefined;
      conn.destroy();
      c?.fail(new UpstreamError('ETIMEDOUT', 'connect', `no connection within the connect timeout of ${this.opts.connectTimeoutMs} ms`));
      this.next();
    }, this.opts.connectTimeoutMs);
    // Over TLS the connection is made once the server is verified.
    socket.once(this.tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      conn.connected = true;
      if (this.opts.maxConnectionDurationMs) conn.limitDuration(this.opts.maxConnectionDurationMs);
      const c = conn.call;
      conn.call = undefined;
      if (!c || c.done) {
        this.release(conn);
        return;
      }
      this.assign(conn, c);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      this.next();
    });
  }

  /** An exchange completed cleanly: the connection serves the next waiting request or idles, unless it has served its share. */
  release(conn: Connection): void {
    if (conn.destroyed) return;
    const max = this.opts.maxRequestsPerConnection;
    if (conn.expired || (max !== undefined && conn.uses >= max)) {
      // max_connection_duration passed, or max_requests_per_connection reached: closed, and a
      // waiting request gets a new connection (next() runs on its close).
      conn.destroy();
      return;
    }
    const next = this.shift();
    if (next && next.req.upgrade !== undefined && conn.shared) {
      // It needs a plain-stream connection: this one makes room for it (next() runs on its close).
      this.queue.unshift(next);
      this.res.pending++;
      conn.destroy();
      return;
    }
    if (next) {
      this.assign(conn, next);
      return;
    }
    if (this.closed) {
      conn.destroy();
      return;
    }
    const idle = this.opts.idleTimeoutMs;
    conn.startIdle(idle === 0 ? Infinity : idle);
    this.idle.push(conn);
  }

  /** A connection is gone: a waiting request may now open a new one. */
  forget(conn: Connection): void {
    if (!this.all.delete(conn)) return;
    this.res.connections--;
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
  }

  private next(): void {
    while (this.queue.length && this.res.canConnect(this.all.size === 0)) {
      const call = this.shift()!;
      if (!call.done) this.connect(call);
    }
  }

  stats(): PoolStats {
    let busy = 0;
    let connecting = 0;
    let oldest = Infinity;
    for (const c of this.all) {
      if (!c.connected) {
        connecting++;
        if (c.call && !c.call.done) oldest = Math.min(oldest, c.call.queuedAt);
      } else if (c.call) busy++;
    }
    for (const q of this.queue) if (!q.done) oldest = Math.min(oldest, q.queuedAt);
    const waitingMs = oldest === Infinity ? 0 : Math.round(performance.now() - oldest);
    return { cluster: this.res.cluster, endpoint: this.name, idle: this.idle.length, busy, connecting, pending: this.queue.length, waitingMs };
  }

  /** Stops taking requests; idle connections close now, busy ones when their exchange ends. */
  close(): void {
    this.closed = true;
    for (const c of this.idle.splice(0)) c.destroy();
    for (const call of this.queue.splice(0)) {
      this.res.pending--;
      call.fail(new UpstreamError('pool_closed', 'connect', 'the endpoint left the cluster'));
    }
  }

  destroy(): void {
    this.close();
    for (const c of [...this.all]) c.destroy();
  }
}

/**
 * SO_KEEPALIVE on an upstream socket, as the cluster's tcp_keepalive asks: with a time, probes start
 * after that many idle seconds (Node then probes every second, 10 times: libuv's fixed values);
 * without, the OS's own settings apply.
 */
export function keepAlive(socket: net.Socket, ka: { timeS?: number } | undefined): void {
  if (ka) socket.setKeepAlive(true, (ka.timeS ?? 0) * 1000);
}
