// The upstream side of HTTP/2 (cleartext, prior knowledge), for clusters whose protocol options
// say HTTP/2: one session per endpoint carries every request to it as a stream, as Envoy does.
// Same contract as http1/client.ts: request(UpstreamRequest, ResponseHandler) -> UpstreamCall.
//
// A session that fails to connect fails the calls waiting for it with phase 'connect'; a GOAWAY
// takes the session out of use (its open streams finish) and streams it refused fail with phase
// 'connect' (they never reached the app); a reset stream fails its call.
import http2 from 'node:http2';
import net from 'node:net';
import { type HeaderList, type ResponseHandler, type UpstreamCall, UpstreamError, type UpstreamRequest } from '../http/types.ts';
import { toObject } from './server.ts';
import { MAX_HEADER_BYTES, get } from '../http1/headers.ts';
import type { PoolStats } from '../http1/client.ts';

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, NGHTTP2_NO_ERROR } = http2.constants;

/** Fields HTTP/2 forbids (RFC 9113 8.2.2); the request path already drops most of them. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);

export interface Http2PoolOptions {
  connectTimeoutMs: number;
}

class Call implements UpstreamCall {
  readonly req: UpstreamRequest;
  readonly handler: ResponseHandler;
  stream: http2.ClientHttp2Stream | undefined;
  done = false;
  responseStarted = false;
  private drainCb: (() => void) | undefined;
  private trailersOut: HeaderList | undefined;
  private endPending = false;
  private readonly pool: Http2Pool;

  constructor(pool: Http2Pool, req: UpstreamRequest, handler: ResponseHandler) {
    this.pool = pool;
    this.req = req;
    this.handler = handler;
  }

  write(chunk: Buffer): boolean {
    const s = this.stream;
    if (this.done || !s || chunk.length === 0) return !this.done;
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

  /** Opens the stream on a connected session. */
  start(session: http2.ClientHttp2Session): void {
    const r = this.req;
    if (r.upgrade) {
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
      this.fail(new UpstreamError((e as NodeJS.ErrnoException).code ?? 'ERR_HTTP2', 'connect', (e as Error).message));
      return;
    }
    this.stream = s;
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
      this.done = true;
      this.handler.onEnd(trailers);
    });
    s.on('drain', () => this.drainCb?.());
    s.on('error', () => {}); // 'close' reports it
    s.on('close', () => {
      if (this.done) return;
      const code = s.rstCode ?? NGHTTP2_NO_ERROR;
      if (code === NGHTTP2_REFUSED_STREAM && this.req.body === 'none') {
        this.fail(new UpstreamError('refused_stream', 'connect', 'refused the stream (it was not processed)'));
        return;
      }
      const phase = this.responseStarted ? 'response' : 'request';
      const what = this.responseStarted ? 'reset the stream in the middle of the response' : 'reset the stream before answering';
      this.fail(new UpstreamError(code === NGHTTP2_NO_ERROR ? 'ECONNRESET' : `h2_error_${code}`, phase, `${what} (HTTP/2 error code ${code})`));
    });
    this.handler.onRequestSent(this);
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

/** The HTTP/2 connection to one endpoint (a new one when it fails or is told to go away). */
export class Http2Pool {
  readonly address: string;
  readonly port: number;
  private readonly opts: Http2PoolOptions;
  private session: http2.ClientHttp2Session | undefined;
  private connected = false;
  private readonly waiting: Call[] = [];
  /** Sessions draining after GOAWAY or close(): closed once their streams end. */
  private readonly old = new Set<http2.ClientHttp2Session>();
  private closed = false;

  constructor(address: string, port: number, opts: Http2PoolOptions) {
    this.address = address;
    this.port = port;
    this.opts = opts;
  }

  get name(): string {
    return this.address.includes(':') ? `[${this.address}]:${this.port}` : `${this.address}:${this.port}`;
  }

  request(req: UpstreamRequest, handler: ResponseHandler): UpstreamCall {
    const call = new Call(this, req, handler);
    if (this.closed) {
      queueMicrotask(() => call.fail(new UpstreamError('pool_closed', 'connect', 'the endpoint left the cluster')));
      return call;
    }
    const s = this.session ?? this.connect();
    if (this.connected) call.start(s);
    else this.waiting.push(call);
    return call;
  }

  dequeue(call: Call): void {
    const i = this.waiting.indexOf(call);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  private connect(): http2.ClientHttp2Session {
    this.connected = false;
    const session = http2.connect(`http://${this.name}`, {
      createConnection: () => net.connect({ host: this.address, port: this.port, noDelay: true }),
      maxSessionMemory: 64,
      settings: { maxHeaderListSize: MAX_HEADER_BYTES * 2, enablePush: false },
    });
    this.session = session;
    const timer = setTimeout(() => {
      if (this.session !== session || this.connected) return;
      this.failWaiting(new UpstreamError('ETIMEDOUT', 'connect', `no connection within the connect timeout of ${this.opts.connectTimeoutMs} ms`));
      this.drop(session);
      session.destroy();
    }, this.opts.connectTimeoutMs);
    session.once('connect', () => {
      clearTimeout(timer);
      if (this.session !== session) return;
      this.connected = true;
      for (const c of this.waiting.splice(0)) if (!c.done) c.start(session);
    });
    session.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (this.session === session && !this.connected) {
        this.failWaiting(new UpstreamError(e.code ?? 'ECONNRESET', 'connect', e.message));
      }
      this.drop(session);
    });
    session.on('goaway', () => this.drop(session));
    session.on('close', () => {
      clearTimeout(timer);
      if (this.session === session && !this.connected) this.failWaiting(new UpstreamError('ECONNRESET', 'connect', 'connection closed while connecting'));
      this.drop(session);
      this.old.delete(session);
    });
    // An idle session does not keep the sidecar alive; it is closed by the upstream or by close().
    session.unref();
    return session;
  }

  /** The session takes no new streams; the next request opens another. */
  private drop(session: http2.ClientHttp2Session): void {
    if (this.session !== session) return;
    this.session = undefined;
    this.connected = false;
    this.old.add(session);
    if (!session.closed && !session.destroyed) session.close();
  }

  private failWaiting(err: UpstreamError): void {
    for (const c of this.waiting.splice(0)) c.fail(err);
  }

  stats(): PoolStats {
    // One multiplexed connection: counted as busy while it is up.
    const s = this.session;
    return { endpoint: this.name, idle: 0, busy: s && this.connected ? 1 : 0, connecting: s && !this.connected ? 1 : 0, pending: this.waiting.length };
  }

  /** Stops taking requests; the session closes once its streams end. */
  close(): void {
    this.closed = true;
    this.failWaiting(new UpstreamError('pool_closed', 'connect', 'the endpoint left the cluster'));
    if (this.session) this.drop(this.session);
  }

  destroy(): void {
    this.close();
    for (const s of this.old) s.destroy();
    this.old.clear();
  }
}
