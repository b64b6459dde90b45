// The one gRPC call a sidecar makes, the ADS stream, over node:http2 directly: a bidirectional
// stream of length-prefixed messages (gRPC over HTTP/2: a 1-byte compressed flag and a 4-byte
// big-endian length before each message; the status in the trailers). The sidecar loads node:http2
// for its listeners anyway; @grpc/grpc-js, its channels, resolvers and load balancers would cost
// every sidecar about 3.5 MB of private memory for this one call (docs/performance.md).
//
// What it keeps of grpc-js's client: HTTP/2 keepalive pings (also without calls), the 4 MB limit
// on a received message, status codes and messages from the trailers (or a trailers-only
// response), UNAVAILABLE when the connection cannot be made or is lost, and errors shaped as
// grpc-js's ServiceError ({ code, details, message }). Reconnecting is the caller's (XdsClient).
import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import type { PeerCertificate } from 'node:tls';

/** gRPC status codes by number, as grpc-js's `status` enum names them. */
export const STATUS_NAMES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
] as const;
export const STATUS = Object.fromEntries(STATUS_NAMES.map((n, i) => [n, i])) as { [K in (typeof STATUS_NAMES)[number]]: number };

/** A call's failure, shaped as grpc-js's ServiceError. */
export class GrpcError extends Error {
  readonly code: number;
  readonly details: string;
  constructor(code: number, details: string) {
    super(`${code} ${STATUS_NAMES[code] ?? 'UNKNOWN'}: ${details}`);
    this.code = code;
    this.details = details;
  }
}

/** grpc-js's default limit on one received message. */
const MAX_RECEIVE_BYTES = 4 * 1024 * 1024;

export interface GrpcChannelOptions {
  keepaliveTimeMs: number;
  keepaliveTimeoutMs: number;
  /** TLS to the server, read at each new connection (so that a renewed certificate is used from then on). */
  tls?: () => ChannelTls;
}

/** TLS 1.3 to a server whose certificate chains to `ca` and passes `checkServer`. */
export interface ChannelTls {
  /** The roots, PEM. */
  ca: string;
  /** This side's key and certificate, for mutual TLS; none for a first call that has none yet. */
  key?: string;
  cert?: string;
  /** Beyond the chain (checked first): an Error refuses the server's certificate. */
  checkServer: (cert: PeerCertificate) => Error | undefined;
}

/**
 * One bidirectional call. Events: 'data' (each decoded message), 'error' (a GrpcError: a non-OK
 * status, a lost connection), 'end' (the server closed the call with status OK). After cancel(),
 * none.
 */
export class BidiStream<Req, Res> extends EventEmitter {
  private stream: http2.ClientHttp2Stream | undefined;
  private done = false;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly encode: (r: Req) => Buffer;
  private readonly decode: (b: Buffer) => Res;

  constructor(encode: (r: Req) => Buffer, decode: (b: Buffer) => Res) {
    super();
    this.encode = encode;
    this.decode = decode;
  }

  /** @internal */
  attach(stream: http2.ClientHttp2Stream): void {
    this.stream = stream;
    let status: number | undefined;
    let message = '';
    const readStatus = (h: http2.IncomingHttpHeaders) => {
      const s = h['grpc-status'];
      if (s === undefined) return;
      status = Number(s);
      const m = h['grpc-message'];
      message = typeof m === 'string' ? decodeMessage(m) : '';
    };
    stream.on('response', (h) => {
      const code = Number(h[':status']);
      if (code !== 200) {
        // As grpc-js maps HTTP statuses of a non-gRPC answer.
        const mapped = code === 400 ? STATUS.INTERNAL : code === 401 ? STATUS.UNAUTHENTICATED : code === 403 ? STATUS.PERMISSION_DENIED : code === 404 ? STATUS.UNIMPLEMENTED : code === 429 || code === 502 || code === 503 || code === 504 ? STATUS.UNAVAILABLE : STATUS.UNKNOWN;
        return this.fail(mapped, `Received HTTP status code ${code}`);
      }
      readStatus(h); // a trailers-only response
    });
    stream.on('trailers', readStatus);
    stream.on('data', (chunk: Buffer) => this.onChunk(chunk));
    let streamError: Error | undefined;
    stream.on('error', (e) => (streamError = e)); // reported by 'close', with the reason below
    // The server's side ends with its status ('end', after the trailers); the stream closes once
    // both sides have, or when reset or its connection is lost ('close').
    const finish = () => {
      if (this.done) return;
      if (status === undefined) {
        // Cancelled before it began because the TLS handshake failed: the stream's error says why.
        const cause = (streamError as { cause?: NodeJS.ErrnoException } | undefined)?.cause;
        if (cause && isCertificateError(cause)) return this.fail(STATUS.UNAUTHENTICATED, `the server's certificate was refused: ${cause.message}`);
        const rst = stream.rstCode;
        if (rst !== undefined && rst !== http2.constants.NGHTTP2_NO_ERROR) {
          // As grpc-js maps a reset stream.
          if (rst === http2.constants.NGHTTP2_REFUSED_STREAM) return this.fail(STATUS.UNAVAILABLE, 'Stream refused by server');
          if (rst === http2.constants.NGHTTP2_CANCEL) return this.fail(STATUS.CANCELLED, 'Call cancelled');
          if (rst === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM) return this.fail(STATUS.RESOURCE_EXHAUSTED, 'Bandwidth exhausted or memory limit exceeded');
          return this.fail(STATUS.INTERNAL, `Received RST_STREAM with code ${rst}`);
        }
        return this.fail(lostCode, lostReason ?? 'Connection dropped');
      }
      if (this.pendingBytes) return this.fail(STATUS.INTERNAL, 'Stream ended within a message');
      if (status === STATUS.OK) {
        this.done = true;
        stream.close();
        this.emit('end');
      } else this.fail(status, message);
    };
    stream.on('end', finish);
    stream.on('close', finish);
    let lostReason: string | undefined;
    let lostCode: number = STATUS.UNAVAILABLE;
    this.lost = (why, code = STATUS.UNAVAILABLE) => {
      lostReason = why;
      lostCode = code;
    };
  }

  /** @internal Why the connection went, if it did, for the status of a call that had none. */
  lost: (why: string, code?: number) => void = () => {};

  /** @internal The connection could not be made. */
  fail(code: number, details: string): void {
    if (this.done) return;
    this.done = true;
    this.stream?.close(http2.constants.NGHTTP2_CANCEL);
    this.emit('error', new GrpcError(code, details));
  }

  /** Half-closes the call: no more messages from this side. */
  end(): void {
    if (!this.done) this.stream?.end();
  }

  write(msg: Req): void {
    if (this.done || !this.stream || this.stream.destroyed) return;
    const body = this.encode(msg);
    const head = Buffer.allocUnsafe(5);
    head[0] = 0;
    head.writeUInt32BE(body.length, 1);
    this.stream.write(Buffer.concat([head, body]));
  }

  /** Ends the call from this side; no events follow. */
  cancel(): void {
    if (this.done) return;
    this.done = true;
    this.stream?.close(http2.constants.NGHTTP2_CANCEL);
  }

  private onChunk(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    while (!this.done && this.pendingBytes >= 5) {
      // The 5-byte prefix, joined only if it arrived in pieces.
      if (this.pending[0].length < 5) this.pending = [Buffer.concat(this.pending, this.pendingBytes)];
      const first = this.pending[0];
      const compressed = first[0];
      const len = first.readUInt32BE(1);
      if (compressed) return this.fail(STATUS.INTERNAL, 'Received a compressed message, but no compression was negotiated');
      if (len > MAX_RECEIVE_BYTES) return this.fail(STATUS.RESOURCE_EXHAUSTED, `Received message larger than max (${len} vs. ${MAX_RECEIVE_BYTES})`);
      // Wait for the whole message before joining its pieces: once, not once per chunk.
      if (this.pendingBytes < 5 + len) return;
      const buf = this.pending.length === 1 ? first : Buffer.concat(this.pending, this.pendingBytes);
      const msg = buf.subarray(5, 5 + len);
      const rest = buf.subarray(5 + len);
      this.pending = rest.length ? [rest] : [];
      this.pendingBytes = rest.length;
      let res: Res;
      try {
        res = this.decode(msg);
      } catch (e) {
        return this.fail(STATUS.INTERNAL, `Response message parsing error: ${(e as Error).message}`);
      }
      this.emit('data', res);
    }
  }
}

/** The control plane's address: one HTTP/2 connection at a time, made when a call needs one. */
export class GrpcChannel {
  private readonly authority: string;
  private readonly opts: GrpcChannelOptions;
  private session: http2.ClientHttp2Session | undefined;
  private readonly calls = new Set<BidiStream<any, any>>();
  private closed = false;

  constructor(target: string, opts: GrpcChannelOptions) {
    this.authority = target;
    this.opts = opts;
  }

  bidiStream<Req, Res>(method: string, encode: (r: Req) => Buffer, decode: (b: Buffer) => Res, metadata: Record<string, string> = {}): BidiStream<Req, Res> {
    const call = new BidiStream<Req, Res>(encode, decode);
    if (this.closed) {
      process.nextTick(() => call.fail(STATUS.UNAVAILABLE, 'Channel has been shut down'));
      return call;
    }
    const session = this.connect();
    this.calls.add(call);
    const stream = session.request(
      { ...metadata, ':method': 'POST', ':path': method, ':scheme': this.opts.tls ? 'https' : 'http', 'content-type': 'application/grpc', te: 'trailers', 'user-agent': 'weft-xds' },
      { endStream: false },
    );
    stream.on('close', () => this.calls.delete(call));
    call.attach(stream);
    return call;
  }

  /** One request, one response, within timeoutMs (sent as grpc-timeout too). */
  unary<Req, Res>(method: string, encode: (r: Req) => Buffer, decode: (b: Buffer) => Res, req: Req, metadata: Record<string, string>, timeoutMs: number): Promise<Res> {
    return new Promise((resolve, reject) => {
      const call = this.bidiStream(method, encode, decode, { ...metadata, 'grpc-timeout': `${Math.ceil(timeoutMs)}m` });
      let res: Res | undefined;
      const timer = setTimeout(() => {
        call.cancel();
        reject(new GrpcError(STATUS.DEADLINE_EXCEEDED, `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      call.on('data', (r: Res) => (res ??= r));
      call.on('error', (e: GrpcError) => {
        clearTimeout(timer);
        reject(e);
      });
      call.on('end', () => {
        clearTimeout(timer);
        if (res === undefined) reject(new GrpcError(STATUS.INTERNAL, 'the server ended the call without a response'));
        else resolve(res);
      });
      call.write(req);
      call.end();
    });
  }

  close(): void {
    this.closed = true;
    this.session?.destroy();
    this.session = undefined;
  }

  private connectTls(tls: ChannelTls): http2.ClientHttp2Session {
    return http2.connect(`https://${this.authority}`, {
      ca: tls.ca,
      ...(tls.key && tls.cert ? { key: tls.key, cert: tls.cert } : {}),
      minVersion: 'TLSv1.3',
      // No host name to check: the server proves itself by its chain and checkServer (a SPIFFE id).
      servername: '',
      checkServerIdentity: (_host, cert) => {
        const e: NodeJS.ErrnoException | undefined = tls.checkServer(cert);
        if (e) e.code = CHECK_SERVER_REFUSED;
        return e;
      },
    });
  }

  private connect(): http2.ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const session = this.opts.tls ? this.connectTls(this.opts.tls()) : http2.connect(`http://${this.authority}`);
    this.session = session;
    let connected = false;
    let pingTimer: NodeJS.Timeout | undefined;
    const gone = (why: string, code?: number) => {
      if (this.session === session) this.session = undefined;
      clearInterval(pingTimer);
      for (const c of this.calls) c.lost(why, code);
    };
    session.on('connect', () => {
      connected = true;
      // Keepalive, with or without calls (grpc.keepalive_permit_without_calls): a ping unanswered
      // for keepaliveTimeoutMs ends the connection, and its calls fail with UNAVAILABLE.
      pingTimer = setInterval(() => {
        if (session.destroyed) return;
        const timeout = setTimeout(() => {
          gone('Keepalive timeout');
          session.destroy();
        }, this.opts.keepaliveTimeoutMs);
        timeout.unref();
        try {
          session.ping(() => clearTimeout(timeout));
        } catch {
          clearTimeout(timeout);
        }
      }, this.opts.keepaliveTimeMs);
      pingTimer.unref();
    });
    // A GOAWAY: calls already open go on; new ones need a new connection.
    session.on('goaway', () => {
      if (this.session === session) this.session = undefined;
    });
    session.on('error', (e: NodeJS.ErrnoException) => {
      // A server certificate refused is no passing trouble: UNAUTHENTICATED, not UNAVAILABLE.
      if (!connected && this.opts.tls && isCertificateError(e)) return gone(`the server's certificate was refused: ${e.message}`, STATUS.UNAUTHENTICATED);
      gone(connected ? `Connection dropped: ${e.message}` : `No connection established. Last error: ${e.message}`);
    });
    session.on('close', () => gone('Connection dropped'));
    return session;
  }
}

/** OpenSSL's verification failures (UNABLE_TO_VERIFY_LEAF_SIGNATURE, CERT_HAS_EXPIRED, ...), and checkServer's refusals. */
function isCertificateError(e: NodeJS.ErrnoException): boolean {
  return e.code === CHECK_SERVER_REFUSED || /CERT|SIGNATURE|ISSUER|SELF_SIGNED|ALTNAME/.test(e.code ?? '');
}
const CHECK_SERVER_REFUSED = 'ERR_WEFT_SERVER_REFUSED';

/** grpc-message is percent-encoded (gRPC over HTTP/2). */
function decodeMessage(m: string): string {
  try {
    return decodeURIComponent(m);
  } catch {
    return m;
  }
}
