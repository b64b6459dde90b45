// Where connections come in. A listener accepts, enforces the sidecar's connection limit, and
// looks at the first bytes to decide what the connection carries before handing it to a codec:
// HTTP/2 with prior knowledge (http2/server.ts) when they are the HTTP/2 connection preface,
// HTTP/1.1 (http1/server.ts) otherwise; a TLS handshake is refused with a log line saying why.
// CONNECT tunnels come back here, so that what a tunnel carries is decided the same way.
import net from 'node:net';
import type { PathOptions } from '../http/path.ts';
import type { Downstream } from '../http/types.ts';
import { serveHttp1 } from '../http1/server.ts';
import { type Http2Downstream, createHttp2Downstream } from '../http2/server.ts';
import { rawHttp1Error } from '../errors.ts';

export interface ListenerHandlers {
  onRequest(ds: Downstream): void;
  /** Whether a CONNECT to this authority has somewhere to go; a string says why not. */
  connectAllowed(authority: string): true | string;
  onRejected(status: number, code: string): void;
  log(msg: string): void;
}

export interface ListenerLimits {
  path: PathOptions;
  headersTimeoutMs: number;
  idleTimeoutMs: number;
}

/** Counts every client connection of the sidecar, across listeners, against one limit. */
export class ConnectionBudget {
  readonly limit: number;
  readonly sockets = new Set<net.Socket>();
  refused = 0;
  constructor(limit: number) {
    this.limit = limit;
  }
}

export function createListener(handlers: ListenerHandlers, limits: () => ListenerLimits, budget: ConnectionBudget): net.Server {
  const server = net.createServer({ noDelay: true });
  const h2 = createHttp2Downstream({
    onRequest: (ds) => handlers.onRequest(ds),
    onRejected: (status, code) => handlers.onRejected(status, code),
    limits: () => limits(),
  });
  server.on('connection', (socket: net.Socket) => {
    if (budget.sockets.size >= budget.limit) {
      // Refused before any byte is read, so the sidecar keeps file descriptors for the traffic it
      // already carries and for its admin endpoint.
      budget.refused++;
      if (budget.refused === 1 || budget.refused % 1000 === 0) handlers.log(`connection limit of ${budget.limit} reached: refused ${budget.refused} connection(s) so far`);
      socket.destroy();
      return;
    }
    budget.sockets.add(socket);
    socket.once('close', () => budget.sockets.delete(socket));
    socket.on('error', () => {}); // errors are handled by the codec once it has the socket
    sniff(socket, handlers, limits(), h2);
  });
  return server;
}

/** Waits for the first bytes and hands the connection to the codec they belong to. */
function sniff(socket: net.Socket, handlers: ListenerHandlers, limits: ListenerLimits, h2: Http2Downstream, initial?: Buffer): void {
  const go = (first: Buffer) => {
    if (first.length >= PREFACE.length && first.subarray(0, PREFACE.length).equals(PREFACE)) {
      h2.serve(socket, first);
      return;
    }
    if (first.length > 0 && first[0] === 0x16) {
      handlers.log(`connection from ${socket.remoteAddress}:${socket.remotePort} started a TLS handshake; Weft's sidecar takes plain HTTP here (use http:// and let the mesh add TLS)`);
      socket.destroy();
      return;
    }
    serveHttp1(
      socket,
      {
        onRequest: handlers.onRequest,
        onRejected: handlers.onRejected,
        onConnect: (authority, s, head) => {
          const ok = handlers.connectAllowed(authority);
          if (ok !== true) {
            handlers.onRejected(404, 'no_route');
            s.end(rawHttp1Error(404, 'no_route', ok), 'latin1');
            return;
          }
          s.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          // What the tunnel carries is decided like any new connection; requests inside it are
          // routed by their own Host.
          sniff(s, handlers, limits, h2, head);
        },
        path: limits.path,
        headersTimeoutMs: limits.headersTimeoutMs,
        idleTimeoutMs: limits.idleTimeoutMs,
      },
      first,
    );
  };
  let got = initial && initial.length ? initial : undefined;
  if (got && !isPrefaceStart(got)) {
    go(got);
    return;
  }
  // A connection that never says anything is closed at the idle timeout.
  const timer = setTimeout(() => socket.destroy(), limits.idleTimeoutMs);
  timer.unref();
  const onData = (d: Buffer) => {
    got = got ? Buffer.concat([got, d]) : d;
    // The HTTP/2 preface may arrive in pieces: wait for all 24 bytes before deciding.
    if (isPrefaceStart(got)) return;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.pause();
    go(got);
  };
  socket.on('data', onData);
  socket.once('close', () => clearTimeout(timer));
  socket.resume();
}

/** The HTTP/2 connection preface (RFC 9113 3.4): a client with prior knowledge starts with it. */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** A strict beginning of the preface: more bytes are needed to tell HTTP/2 from HTTP/1.1. */
function isPrefaceStart(b: Buffer): boolean {
  return b.length < PREFACE.length && PREFACE.subarray(0, b.length).equals(b);
}
