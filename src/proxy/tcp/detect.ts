// Protocol detection for ports whose protocol is not declared (Envoy's http_inspector, with the
// HTTP chain going to the HttpConnectionManager and the default chain to tcp_proxy).
//
// Envoy (and Istio) wait for the client's first bytes to decide, so a server-first protocol
// (MySQL, SMTP, a greeting banner) on an undeclared port stalls until a detection timeout, and
// Istio tells users to declare such ports. Weft does not wait: it dials the upstream at once and
// races the two sides.
//   - The upstream speaks first: it is a server-first protocol, so TCP, with what it said delivered.
//   - The client's first line is an HTTP/1.x request line (or the HTTP/2 preface): HTTP; the early
//     upstream connection is closed unused, and the HTTP path picks and pools its own.
//   - The client's bytes cannot be an HTTP request line: TCP over the connection already open.
// The cost is one connection opened and closed on the upstream for each HTTP connection on such
// a port; declaring the port (http-..., tcp-...) avoids it.
import type net from 'node:net';
import { ProxyError } from '../errors.ts';
import { type Dialed, type TcpContext, type TcpFrom, dial, pipeTcp } from './tcp.ts';
import { afterExchange } from './peer-exchange.ts';
import { timerMs } from '../../util/timer.ts';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'PRI', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'SEARCH', 'REPORT', 'PURGE']);
const REQUEST_LINE = /^([A-Z]+) [^\s]+ HTTP\/(1\.[01]|2\.0)$/;
const MAX_LINE = 8192;

/** PURE: whether the client's first bytes are HTTP, are not, or do not say yet. */
export function classify(buf: Buffer): 'http' | 'other' | 'more' {
  if (buf.length === 0) return 'more';
  const n = Math.min(buf.length, MAX_LINE);
  for (let i = 0; i < n; i++) {
    const c = buf[i];
    if (c === 0x0a || c === 0x0d) {
      const m = REQUEST_LINE.exec(buf.toString('latin1', 0, i));
      return m && METHODS.has(m[1]) ? 'http' : 'other';
    }
    // A request line is printable ASCII; the method is upper-case letters up to the first space.
    if (c < 0x20 || c > 0x7e) return 'other';
  }
  if (buf.length >= MAX_LINE) return 'other';
  const sp = buf.indexOf(0x20);
  const method = buf.toString('latin1', 0, sp < 0 ? n : sp);
  if (!/^[A-Z]*$/.test(method) || method.length > 16) return 'other';
  if (sp >= 0 && !METHODS.has(method)) return 'other';
  if (sp < 0 && ![...METHODS].some((m) => m.startsWith(method))) return 'other';
  return 'more';
}

/**
 * Decides what the connection carries, as above. onHttp gets the socket's bytes read so far (the
 * socket paused); TCP is proxied here. A connection on which nothing happens within
 * idleTimeoutMs is closed.
 */
export function detect(
  ctx: TcpContext,
  clusterName: string,
  down: net.Socket,
  initial: Buffer,
  idleTimeoutMs: number,
  onHttp: (first: Buffer) => void,
  authority?: string,
  maxDurationMs?: number,
  hashSource?: boolean,
  /** The TCP chain's network RBAC (tcp/authz.ts): false closes the client (it did); asked only when the connection goes TCP. */
  allowTcp?: () => boolean | Promise<boolean>,
  /** The tcp_proxy's listener and access log, for telemetry. */
  from?: TcpFrom,
): void {
  down.allowHalfOpen = true;
  let buf = initial;
  const upChunks: Buffer[] = [];
  let up: Dialed | undefined;
  let upEnded = false;
  let dialErr: ProxyError | undefined;
  let decided = false;
  const timer = idleTimeoutMs > 0 ? setTimeout(() => finish() && (down.destroy(), up?.socket.destroy()), timerMs(idleTimeoutMs)) : undefined;
  timer?.unref();

  const finish = (): boolean => {
    if (decided) return false;
    decided = true;
    if (timer) clearTimeout(timer);
    down.off('data', onDown);
    down.off('end', onDownEnd);
    down.off('close', onDownClose);
    down.pause();
    if (up) {
      up.socket.off('data', onUp);
      up.socket.off('end', onUpEnd);
      up.socket.pause();
    }
    return true;
  };
  const goTcp = () => {
    if (!finish()) return;
    const verdict = allowTcp ? allowTcp() : true;
    if (verdict === true) pipe();
    else if (verdict === false) up?.socket.destroy(); // what the server may have said first never reaches a denied client
    else verdict.then((ok) => (ok ? pipe() : up?.socket.destroy()), () => up?.socket.destroy());
  };
  const pipe = () => {
    // The upstream may have gone while an external authorizer was asked (its listeners were off):
    // the client is closed, not joined to a dead socket (found by review).
    if (up!.socket.destroyed || down.destroyed) {
      up!.socket.destroy();
      down.destroy();
      return;
    }
    pipeTcp(ctx, clusterName, down, up!, buf, Buffer.concat(upChunks), idleTimeoutMs, maxDurationMs, from);
    // Ends seen before the pipe: pass them on, as the pipe would have.
    if (upEnded) down.end();
    if (downEnded) up!.socket.end();
  };
  const decide = () => {
    if (decided) return;
    const c = classify(buf);
    if (c === 'http') {
      if (!finish()) return;
      c2.cancel();
      up?.socket.destroy();
      down.allowHalfOpen = false; // as for any HTTP connection
      onHttp(buf);
    } else if (c === 'other' || downEnded) {
      if (up) goTcp();
      else if (dialErr) {
        finish();
        ctx.log(`TCP connection from ${down.remoteAddress}:${down.remotePort} closed: ${dialErr.message}`);
        down.destroy();
      }
    }
  };
  let downEnded = false;
  const onDown = (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    decide();
  };
  const onDownEnd = () => {
    downEnded = true;
    decide();
  };
  const onDownClose = () => {
    if (!finish()) return;
    c2.cancel();
    up?.socket.destroy();
  };
  const onUp = (d: Buffer) => {
    upChunks.push(d);
    goTcp(); // the server spoke first
  };
  const onUpEnd = () => {
    upEnded = true;
    goTcp();
  };
  down.on('data', onDown);
  down.on('end', onDownEnd);
  down.on('close', onDownClose);
  const c2 = dial(ctx, clusterName, (err, d) => {
    if (decided) {
      d?.socket.destroy();
      return;
    }
    if (err) {
      dialErr = err;
      decide();
      return;
    }
    // Istio's metadata exchange first, where the dial left it to run (tcp/peer-exchange.ts): what
    // the server said after its frame is what it said first.
    afterExchange(d!.socket, ctx.peerExchange, () => `TCP connection to ${d!.endpoint} in cluster ${clusterName}`, idleTimeoutMs, (rest) => {
      if (decided) {
        d!.socket.destroy();
        return;
      }
      up = d;
      if (rest.length) upChunks.push(rest);
      up!.socket.on('data', onUp);
      up!.socket.on('end', onUpEnd);
      up!.socket.on('error', () => {});
      // A socket the exchange paused flows again.
      up!.socket.resume();
      if (rest.length) goTcp();
      decide();
    }, (why) => {
      // Counted as a connection that could not be made, as pipeTcp counts it (unless the client went first).
      if (!decided && ctx.telemetry.tcp.hasSubscribers) ctx.telemetry.tcp.publish({ kind: 'connect_failed', cluster: clusterName, endpoint: d!.endpoint, code: 'metadata_exchange' });
      dialErr = new ProxyError('connect_failed', `the metadata exchange with ${d!.endpoint} in cluster ${clusterName} failed: ${why}`, clusterName);
      decide();
    });
  }, authority, hashSource ? down.remoteAddress : undefined);
  down.resume();
  if (buf.length) queueMicrotask(decide);
}
