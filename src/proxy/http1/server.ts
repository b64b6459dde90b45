// The downstream side of HTTP/1.1: a client connection, parsed by llhttp, one request at a time.
//
// The parser pauses at the end of each request head and at the end of each request. So a
// pipelined request waits, unparsed, until the one before it has been answered; a client that
// sends faster than it reads fills its own socket buffer, not the sidecar's memory. The request
// body flows only once the upstream is ready for it (Downstream.readBody), with backpressure.
//
// Every way a request can be wrong is answered here or in errors.ts, naming what is wrong; an
// answer that leaves the connection out of step with the client closes it.
import type net from 'node:net';
import type { BodySink, Downstream, HeaderList, RequestHead } from '../http/types.ts';
import { type PathOptions, canonicalPath, splitTarget, validAuthority } from '../http/path.ts';
import { FramingFields, HeaderCollector, MAX_HEADER_BYTES, MAX_HEADER_COUNT, endToEnd, headBytes, lastChunk, ownString, writeChunk, writeMessage } from './headers.ts';
import { OK, PAUSED, PAUSED_UPGRADE, Parser, TYPE_REQUEST } from './llhttp.ts';
import { rawHttp1Error } from '../errors.ts';
import { peerPrincipal, peerWorkload, requestedServerName } from '../tls/peer.ts';
import { type HostPorts, type HostPortsHolder, hostPortsOf } from '../net/addresses.ts';
import type { PeerMetadata } from '../http/peer-metadata.ts';
import type { TraceContext } from '../http/trace-context.ts';
import { type Refusal, RefusedRequest, refusedHead } from '../http/refused.ts';
import { READ_BUFFER, readAsStream, readInto } from '../net/read-buffer.ts';
import { flushAtReadEnd, readEnded, readStarted } from '../net/read-end.ts';

/** node:http without an ESM import, which would load Node's bundled undici (src/proxy/sidecar.ts). */
const STATUS_TEXT = process.getBuiltinModule('node:http').STATUS_CODES;

export interface Http1Options {
  /** A request head has arrived and is well formed. */
  onRequest(ds: Downstream): void;
  /** CONNECT host:port: the listener decides what the tunnel carries. `head`: bytes after the request. */
  onConnect(authority: string, socket: net.Socket, head: Buffer): void;
  /** A request the sidecar refuses before routing (a parse error, a limit, a head too slow): for telemetry. */
  onRejected?(r: Refusal): void;
  /** A bug in the sidecar met while serving this connection: it is closed, the sidecar goes on. */
  onBug(e: unknown): void;
  path: PathOptions;
  /** From the first byte of a request to the end of its head (slowloris). */
  headersTimeoutMs: number;
  /** A connection with no request in progress for this long is closed. */
  idleTimeoutMs: number;
  /** Checks both timeouts for the listener's connections. */
  sweeper: Sweeper;
}

// Where the parser stopped: after a head with a body to follow; after a whole request with no
// body; after the body of the request in progress; or at a limit.
// 'framing': a body whose end llhttp was expected to refuse to find, and did not (see onHeadersComplete).
type PauseReason = 'none' | 'headers' | 'complete' | 'message' | 'limit' | 'framing';

/** "HTTP/1.1 200 OK\r\n", made once per status code. */
const statusLines: string[] = [];
function statusLine(status: number): string {
  return (statusLines[status] ??= `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Unknown'}\r\n`);
}

/** The trailers of a request that has none (shared: never written to). */
const NO_TRAILERS: HeaderList = [];

/** How long a connection closed with a request unread keeps draining, so the answer is not lost to a reset. */
const LINGER_MS = 1000;

export function serveHttp1(socket: net.Socket, opts: Http1Options, initial?: Buffer): void {
  const conn = new ServerConnection(socket, opts);
  conn.armIdle();
  // The bytes already read come first, then any the socket's stream still held (see the constructor).
  if (initial && initial.length) conn.leftover = conn.leftover ? Buffer.concat([initial, conn.leftover]) : initial;
  conn.resumeParsing();
}

class ServerConnection implements HostPortsHolder {
  readonly socket: net.Socket;
  /** Its ends as the access log writes them, once read (net/addresses.ts). */
  hostPorts: HostPorts | undefined = undefined;
  readonly opts: Http1Options;
  readonly parser: Parser;
  readonly headers = new HeaderCollector();
  /** The fields of the request head that frame and address it, found in one pass. */
  private readonly fields = new FramingFields();
  /** The last Host value found well formed on this connection. */
  private validHost: string | undefined;
  /**
   * The socket reads into the shared READ_BUFFER (net/read-buffer.ts): what outlives a read (body
   * bytes, bytes kept for later) is copied out of it.
   */
  private readonly shared: boolean;
  /** The bytes being parsed are READ_BUFFER's (copied where kept), not a Buffer of our own. */
  private borrowed = false;
  url = '';
  pauseReason: PauseReason = 'none';
  limitHit: 'bytes' | 'count' | undefined;
  /** Bytes read but not parsed yet (the parser paused before them). */
  leftover: Buffer | undefined;
  stream: Stream | undefined;
  closed = false;
  /** The sweeper's tick when the request head now arriving began, or 0. */
  private headersSince = 0;
  /** The sweeper's tick since when the connection has had no request in progress, or 0. */
  private idleSince = 0;
  private watched = false;
  inMessage = false;
  /** Whether the socket is paused by this connection (it arrives paused, from the listener's sniff). */
  private readingPaused = true;
  private upgradeRequested = false;
  private bodyExpected = false;
  /** Transfer-Encoding without chunked last: llhttp refuses it once the head is done (RFC 9112 6.3). */
  private framingRefused = false;

  constructor(socket: net.Socket, opts: Http1Options) {
    this.socket = socket;
    this.opts = opts;
    socket.setNoDelay(true);
    this.parser = new Parser(TYPE_REQUEST, {
      onMessageBegin: () => {
        this.inMessage = true;
        this.headers.reset();
        this.url = '';
        this.clearIdle();
        this.armHeadersTimer();
        return 0;
      },
      onUrl: (s) => {
        this.url = this.url ? this.url + s : s;
        return this.url.length > MAX_HEADER_BYTES ? this.limit('bytes') : 0;
      },
      onStatus: () => 0,
      onHeaderField: (b) => (this.collector().onField(b) ? 0 : this.limit('bytes')),
      onHeaderValue: (b) => (this.collector().onValue(b) ? 0 : this.limit('bytes')),
      onHeadersComplete: (_status, upgrade) => {
        this.clearHeadersTimer();
        if (this.stream) return 0; // trailers have no head of their own; never reached
        if (this.headers.bytes + this.url.length > MAX_HEADER_BYTES) return this.limit('bytes');
        if (!this.headers.finish()) return this.limit('count');
        this.upgradeRequested = upgrade;
        const h = this.headers.list;
        const f = this.fields;
        f.scan(h);
        const cl = f.contentLength;
        const te = f.transferEncoding;
        this.bodyExpected = te !== undefined || (cl !== undefined && cl !== '0');
        // Transfer-Encoding whose last coding is not chunked: where the body ends cannot be known,
        // and llhttp says so just after this callback. Not pausing here lets it say so before the
        // request is dispatched, so no byte of it goes upstream.
        this.framingRefused = te !== undefined && !chunkedLast(h);
        if (this.framingRefused) return 0;
        if (upgrade || !this.bodyExpected) return 0; // the request ends here: llhttp says so next
        this.pauseReason = 'headers';
        return PAUSED;
      },
      onBody: (b) => {
        if (!this.stream && this.framingRefused) return this.framing();
        this.stream?.onBody(this.borrowed ? Buffer.from(b) : b);
        return 0;
      },
      onMessageComplete: () => {
        if (!this.stream && this.framingRefused) return this.framing();
        this.inMessage = false;
        if (this.stream) {
          this.pauseReason = 'message';
          this.stream.onRequestComplete();
          return PAUSED;
        }
        if (this.upgradeRequested) return 0; // llhttp pauses for the upgrade next
        this.pauseReason = 'complete';
        return PAUSED;
      },
    });
    // Reads land in the shared READ_BUFFER where Node allows it, else come as 'data' events.
    this.shared = readInto(socket, (n) => {
      this.onRead(READ_BUFFER.subarray(0, n));
      return true;
    });
    if (this.shared) {
      // Bytes the listener's sniff left in the socket's stream buffer come first.
      for (let b: Buffer | null; (b = socket.read()) !== null; ) this.leftover = this.leftover ? Buffer.concat([this.leftover, b]) : b;
    } else this.own.data = (d: Buffer) => this.onRead(d);
    this.own.end = () => this.onClientEnd();
    this.own.error = () => this.onClose();
    this.own.close = () => this.onClose();
    this.own.drain = () => this.stream?.drained();
    for (const [ev, fn] of Object.entries(this.own)) socket.on(ev, fn);
  }

  /** This connection's own listeners on the socket: detach() removes these, and only these (the listener's connection count has its own). */
  private readonly own: Record<string, (...args: any[]) => void> = {};

  /** Where header fields go: the request head's, or, once a request is in progress, its trailers. */
  private collector(): HeaderCollector {
    const st = this.stream;
    return st ? (st.trailers ??= new HeaderCollector()) : this.headers;
  }

  private limit(what: 'bytes' | 'count'): number {
    this.limitHit = what;
    this.pauseReason = 'limit';
    return PAUSED;
  }

  /** llhttp accepted a body it was expected to refuse: refuse it here, with nothing sent upstream. */
  private framing(): number {
    this.pauseReason = 'framing';
    return PAUSED;
  }

  /** Bytes from the client; `d` may be READ_BUFFER, valid only until this returns. */
  private onRead(d: Buffer): void {
    readStarted();
    try {
      this.feed(d, this.shared);
    } catch (e) {
      // A bug, not bad input (bad input is answered in feed): this connection ends, nothing else.
      this.opts.onBug(e);
      this.onClose();
    } finally {
      readEnded();
    }
  }

  /** Parses what arrived; stops where the parser pauses, keeping the rest for later (copied: see shared). */
  feed(d: Buffer, borrowed: boolean): void {
    if (this.closed) return;
    const st = this.stream;
    if (st && (!st.bodyStarted || st.requestComplete)) {
      // Bytes the request path is not ready for (a body before its upstream, or the next
      // pipelined request): keep them, and stop reading until they are wanted.
      this.leftover = this.leftover ? Buffer.concat([this.leftover, d]) : borrowed ? Buffer.from(d) : d;
      this.pauseReading();
      return;
    }
    this.pauseReason = 'none';
    this.borrowed = borrowed;
    const ret = this.parser.execute(d);
    // The connection may have been closed from a callback (its parser freed once execute returned).
    if (this.closed) return;
    const consumed = this.parser.consumed;
    if (ret === OK) return;
    const rest = consumed < d.length ? (borrowed ? Buffer.from(d.subarray(consumed)) : d.subarray(consumed)) : undefined;
    if (ret === PAUSED) {
      const why = this.pauseReason as PauseReason;
      this.pauseReason = 'none';
      this.parser.resume();
      if (why === 'framing') {
        this.reject(400, 'bad_request', 'malformed HTTP request: Transfer-Encoding does not end in chunked, so where the body ends cannot be known', true);
        return;
      }
      if (why === 'limit') {
        if (this.stream) this.stream.clientBroke(`request trailers too large (the limit is ${MAX_HEADER_BYTES / 1024} KiB)`);
        else this.tooLarge();
        return;
      }
      // Bytes after the pause wait for the request in progress; without any, the socket keeps
      // flowing (pausing and resuming it for every request costs more than the request), and
      // bytes that come early are kept by the branch above.
      this.leftover = rest;
      if (rest) this.pauseReading();
      if (why === 'headers') this.dispatch(false, false, undefined);
      else if (why === 'complete') this.dispatch(true, false, undefined);
      else if (why === 'message') this.stream?.maybeNext();
      return;
    }
    if (ret === PAUSED_UPGRADE) {
      // The head of an Upgrade or CONNECT request is complete; what follows is not HTTP/1.1.
      this.pauseReading();
      this.dispatch(true, true, rest);
      return;
    }
    const { code, reason } = this.parser.errorText(ret);
    if (this.stream) {
      // The body broke its own framing (a bad chunk size): the exchange cannot complete.
      this.stream.clientBroke(`malformed request body (${code}): ${reason}`);
      return;
    }
    this.reject(400, 'bad_request', `malformed HTTP request (${code}): ${reason}`);
  }

  private tooLarge(): void {
    if (this.limitHit === 'count') {
      this.reject(431, 'request_headers_too_large', `request has more than ${MAX_HEADER_COUNT} header fields (the limit is ${MAX_HEADER_COUNT})`);
      return;
    }
    const kib = Math.ceil((this.headers.bytes + this.url.length) / 1024);
    this.reject(431, 'request_headers_too_large', `request headers too large (${kib} KiB so far; the limit is ${MAX_HEADER_BYTES / 1024} KiB)`);
  }

  /** The request head is complete: check it and hand it to the request path. */
  private dispatch(complete: boolean, upgraded: boolean, upgradeHead: Buffer | undefined): void {
    const p = this.parser;
    const major = p.versionMajor;
    const minor = p.versionMinor;
    const method = p.method;
    if (major !== 1) {
      this.reject(major === 0 ? 400 : 505, 'bad_request', `request line "${method} ${this.url.slice(0, 100)}" has no HTTP/1.x version (HTTP/0.9 is not supported)`, true);
      return;
    }
    const raw = this.headers.list;
    const f = this.fields;
    if (f.hosts > 1) return this.reject(400, 'bad_request', 'request has more than one Host header', true);
    if (method === 'CONNECT') {
      if (!validAuthority(this.url)) return this.reject(400, 'bad_request', `CONNECT target "${this.url.slice(0, 200)}" is not host:port`, true);
      this.detach();
      this.opts.onConnect(this.url, this.socket, upgradeHead ?? Buffer.alloc(0));
      return;
    }
    const target = splitTarget(this.url);
    if (typeof target === 'string') return this.reject(400, 'bad_request', target, true);
    const authority = target.authority ?? f.host;
    if (!authority) return this.reject(400, 'bad_request', `${method} ${this.url.slice(0, 200)}: no Host header and no absolute URL, so there is no service to route to`, true);
    // A client sends the same Host on every request of its connection: it is checked once.
    if (authority !== this.validHost) {
      if (!validAuthority(authority)) return this.reject(400, 'bad_request', `Host "${authority.slice(0, 200)}" is not a valid host[:port]`, true);
      this.validHost = ownString(authority);
    }
    const path = canonicalPath(target.path, this.opts.path);
    if (path === undefined) return this.reject(400, 'bad_request', `path "${target.path.slice(0, 200)}" has a malformed percent-escape`, true);
    const expect = f.expect;
    if (expect !== undefined && expect.toLowerCase() !== '100-continue') return this.reject(417, 'bad_request', `Expect: ${expect.slice(0, 100)} is not supported (only 100-continue is)`, true);
    const cl = f.contentLength;
    const chunked = f.transferEncoding !== undefined;
    const contentLength = cl !== undefined ? Number(cl) : undefined;
    const upgrade = upgraded ? f.upgrade : undefined;
    const head: RequestHead = {
      method,
      authority,
      path,
      query: target.query,
      headers: endToEnd(raw),
      hasBody: chunked || (contentLength !== undefined && contentLength > 0),
      contentLength,
      protocol: minor === 0 ? 'HTTP/1.0' : 'HTTP/1.1',
      upgrade,
    };
    const keepAlive = p.keepAlive && !upgraded;
    const stream = new Stream(this, head, keepAlive, expect !== undefined && minor >= 1 && head.hasBody, upgradeHead);
    stream.requestComplete = complete;
    stream.bodyStarted = complete;
    this.stream = stream;
    this.opts.onRequest(stream);
  }

  /** Parses the bytes kept back, then reads from the socket again, unless the parser pauses again. */
  resumeParsing(): void {
    const rest = this.leftover;
    this.leftover = undefined;
    if (rest) this.feed(rest, false);
    if (this.closed || this.leftover !== undefined) return;
    // Stay paused while the request in progress wants no bytes: its body is not asked for yet,
    // is paused, or is complete (the next request waits for this one's answer).
    const s = this.stream;
    if (s && (!s.bodyStarted || s.requestComplete || s.bodyPaused)) return;
    this.resumeReading();
  }

  pauseReading(): void {
    if (this.readingPaused) return;
    this.readingPaused = true;
    this.socket.pause();
  }

  resumeReading(): void {
    if (!this.readingPaused) return;
    this.readingPaused = false;
    this.socket.resume();
  }

  /** The exchange is over and the connection stays: go on with the next request, if any. */
  next(): void {
    this.stream = undefined;
    // An idle connection keeps nothing of its last request (its header text holds the read's).
    this.headers.reset();
    this.url = '';
    if (this.closed) return;
    this.armIdle();
    // A client that sends requests but does not read the answers: take no new request until what
    // was written has drained, so its answers wait in its socket, not in the sidecar's memory.
    if (this.socket.writableNeedDrain) {
      this.socket.once('drain', () => this.next());
      return;
    }
    // Nothing kept back and the socket flowing: the next request is read when it comes.
    if (this.leftover === undefined && !this.readingPaused) return;
    // Not from inside a parser callback (the response may end in one): a fresh call stack.
    queueMicrotask(() => {
      if (!this.closed && !this.stream) this.resumeParsing();
    });
  }

  /**
   * Answers a request that never reached the request path, and closes the connection. `complete`:
   * its head was read whole (its headers go with the refusal). A request already on the path
   * (clientBroke) is reported by its exchange, not here.
   */
  reject(status: number, code: string, message: string, complete = false): void {
    if (this.opts.onRejected && !this.stream) this.opts.onRejected(this.refusal(status, code, complete));
    if (this.closed) return;
    this.socket.write(rawHttp1Error(status, code, message), 'latin1');
    this.closeAfterFlush();
  }

  /**
   * The refused request: its request line and headers where its head was read whole, else only its
   * connection (as Envoy's HTTP/1 codec, which makes a request's headers when its head is done).
   */
  private refusal(status: number, code: string, complete: boolean): Refusal {
    const p = this.parser;
    const url = this.url;
    const protocol = p.versionMajor === 1 && p.versionMinor === 0 ? 'HTTP/1.0' : 'HTTP/1.1';
    let head: RequestHead;
    if (!complete) head = refusedHead('', '', '', '', protocol);
    else if (p.method === 'CONNECT') head = refusedHead('CONNECT', url, '', '', protocol); // its target is its authority
    else {
      const t = splitTarget(url);
      const q = url.indexOf('?');
      head = typeof t === 'object' ? refusedHead(p.method, t.authority ?? this.fields.host ?? '', t.path, t.query, protocol) : refusedHead(p.method, this.fields.host ?? '', q < 0 ? url : url.slice(0, q), q < 0 ? '' : url.slice(q + 1), protocol);
      head.headers = endToEnd(this.headers.list);
    }
    // A head that never came whole waited the headers timeout; any other refusal is answered as it is read.
    return { status, code, durationMs: status === 408 ? this.opts.headersTimeoutMs : 0, ds: new RefusedRequest(this.socket, head, this) };
  }

  /** Ends our side once the answer is out, then drains what the client still sends for a while. */
  closeAfterFlush(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearIdle();
    this.clearHeadersTimer();
    this.stream = undefined;
    const s = this.socket;
    s.removeAllListeners('data');
    s.on('data', () => {});
    s.end();
    s.resume();
    setTimeout(() => s.destroy(), LINGER_MS).unref();
  }

  private detach(): void {
    this.closed = true;
    this.clearIdle();
    this.clearHeadersTimer();
    this.parser.destroy();
    for (const [ev, fn] of Object.entries(this.own)) this.socket.off(ev, fn);
    // Whoever takes the socket over reads it as a stream ('data', pipe).
    if (this.shared) readAsStream(this.socket);
  }

  /** Hands the socket over after a 101 (WebSocket): from here on it is a byte stream. */
  upgrade(): net.Socket {
    this.detach();
    return this.socket;
  }

  private onClientEnd(): void {
    // The client half-closed. A request in progress whose body is complete still gets its answer
    // (then the connection closes); otherwise there is nobody to answer.
    const s = this.stream;
    if (s && s.requestComplete && !s.responseDone) {
      s.keepAlive = false;
      return;
    }
    if (s && !s.requestComplete) s.clientBroke('the client closed the connection before the request was complete');
    this.onClose();
  }

  onClose(): void {
    if (!this.closed) {
      this.closed = true;
      this.clearIdle();
      this.clearHeadersTimer();
    }
    const st = this.stream;
    this.stream = undefined;
    st?.aborted();
    this.parser.destroy();
    this.socket.destroy();
  }

  /** A request head is arriving: it must be complete within the headers timeout. */
  private armHeadersTimer(): void {
    this.headersSince = this.opts.sweeper.tick;
    this.watch();
  }

  /** Once per connection: the sweeper keeps it until it is closed. */
  private watch(): void {
    if (this.watched) return;
    this.watched = true;
    this.opts.sweeper.watch(this);
  }

  private clearHeadersTimer(): void {
    this.headersSince = 0;
  }

  /** No request in progress: the connection is closed if it stays so for the idle timeout. */
  armIdle(): void {
    this.idleSince = this.opts.sweeper.tick;
    this.watch();
  }

  clearIdle(): void {
    this.idleSince = 0;
  }

  /** Called by the sweeper: acts on a timeout that has passed. Returns false once nothing is left to watch. */
  sweep(sw: Sweeper): boolean {
    if (this.closed) return false;
    if (this.headersSince && this.inMessage && !this.stream && sw.passed(this.headersSince, this.opts.headersTimeoutMs)) {
      this.reject(408, 'request_headers_timeout', `the request headers did not arrive within ${this.opts.headersTimeoutMs} ms`);
      return false;
    }
    if (this.idleSince && !this.stream && !this.inMessage && sw.passed(this.idleSince, this.opts.idleTimeoutMs)) {
      this.closeAfterFlush();
      return false;
    }
    return true;
  }
}

/**
 * The timeouts of a listener's connections (request headers, idle), checked four times a second
 * for all of them at once: a timer set and cleared for every request costs more than the proxying.
 * Time is counted in the sweeper's ticks, not read from a clock for every request: a connection
 * notes the tick when a wait starts, and a wait has lasted at least (ticks since - 1) periods
 * (an interval timer fires late, never early), so a timeout fires at most one period late.
 */
export class Sweeper {
  static readonly PERIOD_MS = 250;
  private readonly conns = new Set<{ sweep(s: Sweeper): boolean }>();
  private timer: NodeJS.Timeout | undefined;
  /** Runs so far, plus one (0 means "not waiting" to the connections). */
  tick = 1;

  watch(c: { sweep(s: Sweeper): boolean }): void {
    this.conns.add(c);
    if (!this.timer) {
      this.timer = setInterval(() => this.run(), Sweeper.PERIOD_MS);
      this.timer.unref();
    }
  }

  /** Whether a wait that began at tick `since` has surely lasted more than `ms`. */
  passed(since: number, ms: number): boolean {
    return (this.tick - since - 1) * Sweeper.PERIOD_MS >= ms;
  }

  private run(): void {
    this.tick++;
    for (const c of this.conns) if (!c.sweep(this)) this.conns.delete(c);
    if (this.conns.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

/** Whether the last transfer coding of the request (over every Transfer-Encoding field) is chunked. */
function chunkedLast(h: HeaderList): boolean {
  let last = '';
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] !== 'transfer-encoding') continue;
    const codings = h[i + 1].split(',');
    last = codings[codings.length - 1].trim().toLowerCase();
  }
  return last === 'chunked';
}

/** One request/response exchange on a client connection. */
class Stream implements Downstream {
  readonly head: RequestHead;
  keepAlive: boolean;
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
  /** The request's trailers (a chunked body), made when the first trailer field arrives. */
  trailers: HeaderCollector | undefined;
  private readonly conn: ServerConnection;
  private readonly expectContinue: boolean;
  private upgradeHead: Buffer | undefined;
  private sink: BodySink | undefined;
  private abortCb: (() => void) | undefined;
  private drainCb: (() => void) | undefined;
  bodyStarted = false;
  bodyPaused = false;
  requestComplete = false;
  /** Bytes of the response are on the wire: an error can only cut it now. */
  responseStarted = false;
  /** The response head and the body bytes that came in the same tick, not yet written (see respond). */
  private pending: (string | Buffer)[] | undefined;
  responseDone = false;
  private chunked = false;
  private bodyless = false;
  private closeAfter = false;
  private finished = false;

  constructor(conn: ServerConnection, head: RequestHead, keepAlive: boolean, expectContinue: boolean, upgradeHead: Buffer | undefined) {
    this.conn = conn;
    this.head = head;
    this.keepAlive = keepAlive;
    this.expectContinue = expectContinue;
    this.upgradeHead = upgradeHead;
  }

  remoteAddress(): string {
    return this.conn.socket.remoteAddress ?? '';
  }

  remotePort(): number {
    return this.conn.socket?.remotePort ?? 0;
  }

  peerWorkload(): string | undefined {
    return peerWorkload(this.conn.socket);
  }

  sourcePrincipal(): string | undefined {
    return peerPrincipal(this.conn.socket);
  }

  localAddress(): { address: string; port: number } {
    const s = this.conn.socket;
    return { address: s?.localAddress ?? '', port: s?.localPort ?? 0 };
  }

  hostPorts(): HostPorts {
    return hostPortsOf(this.conn, this.conn.socket);
  }

  requestedServerName(): string | undefined {
    return requestedServerName(this.conn.socket);
  }

  readBody(sink: BodySink): void {
    this.sink = sink;
    if (!this.head.hasBody) {
      sink.end([]);
      return;
    }
    if (this.bodyStarted) return;
    this.bodyStarted = true;
    // Envoy answers Expect: 100-continue itself, once the request has somewhere to go.
    if (this.expectContinue && !this.responseStarted) this.conn.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
    this.conn.resumeParsing();
  }

  onBody(b: Buffer): void {
    if (!this.sink) return;
    if (!this.sink.data(b) && !this.bodyPaused) {
      this.bodyPaused = true;
      this.conn.pauseReading();
    }
  }

  resumeBody(): void {
    if (!this.bodyPaused) return;
    this.bodyPaused = false;
    if (!this.requestComplete && !this.conn.closed) this.conn.resumeParsing();
  }

  onRequestComplete(): void {
    this.requestComplete = true;
    const t = this.trailers;
    if (t) t.finish();
    this.sink?.end(t ? t.list : NO_TRAILERS);
  }

  /** The parser paused at the end of this request: wait for the response to finish. */
  maybeNext(): void {
    if (this.finished) this.conn.next();
  }

  /**
   * Decides the response head. It leaves when the upstream read that brought it has been handled
   * (net/read-end.ts; else at the end of this tick), or at end(), in one write with the body bytes
   * written meanwhile: one system call per message. Until then a failure (a malformed upstream
   * body in the same read) can still replace it with the sidecar's own answer (responseStarted is
   * still false).
   */
  respond(status: number, headers: HeaderList, contentLength: number | undefined, end: boolean): void {
    if (this.responseStarted || this.conn.closed || this.finished) return;
    this.chunked = false;
    this.closeAfter = false;
    // A request still arriving when its answer starts (an early 401 or 413): the connection cannot
    // carry another request, so say so now, as Envoy does.
    if (!this.requestComplete) this.keepAlive = false;
    const m = this.head.method;
    this.bodyless = m === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
    let tail = '';
    if (this.bodyless) {
      if (m === 'HEAD' && contentLength !== undefined) tail = `content-length: ${contentLength}\r\n`;
    } else if (contentLength !== undefined) tail = `content-length: ${contentLength}\r\n`;
    else if (end) tail = 'content-length: 0\r\n';
    else if (this.head.protocol === 'HTTP/1.1') {
      tail = 'transfer-encoding: chunked\r\n';
      this.chunked = true;
    } else this.keepAlive = false; // HTTP/1.0 without a length: the close ends the body
    if (!this.keepAlive) {
      tail += 'connection: close\r\n';
      this.closeAfter = true;
    } else if (this.head.protocol === 'HTTP/1.0') tail += 'connection: keep-alive\r\n';
    const extra = this.responseMetadata;
    if (extra) for (let i = 0; i < extra.length; i += 2) tail += `${extra[i]}: ${extra[i + 1]}\r\n`;
    const first = this.pending === undefined;
    // A second respond() in the same tick (the upstream failed right after its head) replaces
    // the first answer whole, body bytes included.
    this.pending = [headBytes(statusLine(status), headers, tail)];
    if (end) this.end();
    else if (first) flushAtReadEnd(this);
  }

  /** Puts what respond() and write() held back on the wire, in one writev. */
  flush(): void {
    const p = this.pending;
    if (p === undefined) return;
    this.pending = undefined;
    if (this.conn.closed) return;
    this.responseStarted = true;
    try {
      writeMessage(this.conn.socket, p);
    } catch (e) {
      // A bug, not bad input: this connection ends, and the read that flushed it goes on.
      this.conn.opts.onBug(e);
      this.conn.onClose();
    }
  }

  write(chunk: Buffer): boolean {
    if (this.finished || this.bodyless || chunk.length === 0 || this.conn.closed) return true;
    const p = this.pending;
    if (p) {
      if (this.chunked) p.push(`${chunk.length.toString(16)}\r\n`, chunk, '\r\n');
      else p.push(chunk);
      return true;
    }
    return this.chunked ? writeChunk(this.conn.socket, chunk) : this.conn.socket.write(chunk);
  }

  onDrain(cb: () => void): void {
    this.drainCb = cb;
  }

  drained(): void {
    this.drainCb?.();
  }

  end(trailers?: HeaderList): void {
    if (this.finished) return;
    this.finished = true;
    this.responseDone = true;
    if (this.conn.closed) return;
    if (this.chunked && !this.bodyless) {
      if (this.pending) this.pending.push(lastChunk(trailers));
      else this.conn.socket.write(lastChunk(trailers), 'latin1');
    }
    this.flush();
    if (this.closeAfter || !this.keepAlive || !this.requestComplete) {
      this.conn.closeAfterFlush();
      return;
    }
    // The parser is paused at the end of this request: the next one can be read now.
    this.conn.next();
  }

  reset(_reason: string): void {
    if (this.finished) return;
    this.finished = true;
    this.conn.socket.destroy();
  }

  onAbort(cb: () => void): void {
    this.abortCb = cb;
  }

  /** The client went away before the response ended. */
  aborted(): void {
    if (this.finished) return;
    this.finished = true;
    this.pending = undefined;
    const cb = this.abortCb;
    this.abortCb = undefined;
    cb?.();
  }

  /** The client broke the request (bad body framing, or closed early): the exchange ends here. */
  clientBroke(why: string): void {
    const started = this.responseStarted;
    this.aborted();
    if (!started && !this.conn.closed) this.conn.reject(400, 'bad_request', why);
    else this.conn.onClose();
  }

  upgradeTo(status: number, headers: HeaderList): { socket: net.Socket; head: Buffer } | undefined {
    if (this.responseStarted || this.pending !== undefined || this.conn.closed || !this.head.upgrade) return undefined;
    this.responseStarted = true;
    this.finished = true;
    this.responseDone = true;
    // What the client sent after the request head: the parser's rest, and what arrived while
    // reading was paused (a TLS socket hands over every record of a read, even after a pause).
    const early = [this.upgradeHead, this.conn.leftover].filter((b): b is Buffer => b !== undefined && b.length > 0);
    this.upgradeHead = undefined;
    this.conn.leftover = undefined;
    const socket = this.conn.upgrade();
    const extra = this.responseMetadata;
    socket.write(headBytes(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Switching Protocols'}\r\n`, extra ? [...headers, ...extra] : headers, `connection: upgrade\r\nupgrade: ${this.head.upgrade}\r\n`));
    return { socket, head: early.length === 1 ? early[0]! : Buffer.concat(early) };
  }
}
