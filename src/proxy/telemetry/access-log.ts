// The access log (Envoy's file access logger, as the HCMs' and tcp_proxies' access_log configure
// it): a subscriber to the request path's events (events.ts), never called from the path itself.
// One line per HTTP exchange, when it ends, in the format of each of its listener's loggers; one
// line per proxied TCP connection, when it closes. Lines go to the file's writer (log-file.ts),
// which buffers them and drops (and counts) rather than ever making the request path wait.
import type net from 'node:net';
import type { RuntimeConfig } from '../config.ts';
import { headerValue } from '../http/edits.ts';
import { unmapped } from '../http/authz.ts';
import { peerPrincipal } from '../tls/peer.ts';
import type { AccessLogConfig } from '../xds-client/convert-accesslog.ts';
import type { AuthzEvent, RequestEvent, TcpEvent, Telemetry } from './events.ts';
import { EXT_AUTHZ_POLICY } from '../errors.ts';
import { responseCodeDetails, responseFlags } from './flags.ts';
import { type LogEntry, render } from './format.ts';
import { LogFile } from './log-file.ts';
import { guarded } from './guarded.ts';

export interface AccessLoggerOptions {
  config: () => RuntimeConfig;
  /** This sidecar's own SPIFFE id (DOWNSTREAM_LOCAL_URI_SAN of an mTLS connection). */
  identity: () => string | undefined;
  log: (msg: string) => void;
}

export class AccessLogger {
  private readonly opts: AccessLoggerOptions;
  private readonly files = new Map<string, LogFile>();

  constructor(opts: AccessLoggerOptions) {
    this.opts = opts;
  }

  subscribe(t: Telemetry): void {
    // A subscriber that throws would surface as an uncaught exception (diagnostics_channel): never.
    t.request.subscribe(guarded((e) => this.onRequest(e), this.opts.log, 'access log'));
    t.tcp.subscribe(guarded((e) => this.onTcp(e), this.opts.log, 'access log'));
    t.authz.subscribe(guarded((e) => this.onAuthz(e), this.opts.log, 'access log'));
  }

  /** Lines written and dropped, by file. */
  stats(): { path: string; written: number; dropped: number; error?: string }[] {
    return [...this.files.values()].map((f) => ({ path: f.path, written: f.written, dropped: f.dropped, ...(f.failed ? { error: f.failed } : {}) }));
  }

  /**
   * After a config change: opens the files the listeners name (so that a path that cannot be
   * written is reported now, naming its listener) and closes those no listener names any more;
   * every file when `all` (the sidecar stops).
   */
  retain(all = false): void {
    const used = new Set<string>();
    if (!all) {
      for (const l of this.opts.config().listeners.values()) {
        const tcps = [l.tcp, ...(l.mtls?.chains ?? []).map((c) => c.tcp), ...(l.sni ? [...l.sni.exact.values(), ...l.sni.wildcard.values(), l.sni.fallback].map((c) => c?.tcp) : [])];
        for (const a of [...(l.accessLog ?? []), ...tcps.flatMap((t) => t?.accessLog ?? [])]) {
          used.add(a.path);
          this.file(a.path, l.name);
        }
      }
    }
    for (const [path, f] of this.files) {
      if (used.has(path)) continue;
      void f.close();
      this.files.delete(path);
    }
  }

  private file(path: string, listener: string): LogFile {
    let f = this.files.get(path);
    if (!f) this.files.set(path, (f = new LogFile(path, (p, message) => this.opts.log(`access log ${p} of listener ${listener} cannot be written (${message}): its lines are dropped and counted (/stats accessLog)`))));
    return f;
  }

  private onRequest(e: RequestEvent): void {
    const ds = e.ds;
    const name = ds?.listenerName;
    if (!ds || name === undefined) return;
    const logs = this.opts.config().listeners.get(name)?.accessLog;
    if (!logs) return;
    this.write(name, logs, requestLogEntry(e, ds, this.opts.identity));
  }

  private onTcp(e: TcpEvent): void {
    if (e.kind !== 'close') return;
    const logs = e.accessLog ?? (e.listener !== undefined ? this.opts.config().listeners.get(e.listener)?.accessLog : undefined);
    if (!logs) return;
    this.write(e.listener ?? '(tunnel)', logs, tcpLogEntry(e, this.opts.identity));
  }

  /**
   * A TCP connection its listener's authorization refused, before any tcp_proxy took it: a line, as
   * Envoy's tcp_proxy writes one for a connection its network RBAC filter closed, with the deciding
   * policy in CONNECTION_TERMINATION_DETAILS (an external authorizer's denial: the UAEX flag).
   */
  private onAuthz(e: AuthzEvent): void {
    if (e.protocol !== 'tcp' || e.effect !== 'denied' || !e.down) return;
    const l = this.opts.config().listeners.get(e.listener);
    if (!l) return;
    const logs = l.tcp?.accessLog ?? l.mtls?.chains.find((c) => c.tcp?.accessLog)?.tcp?.accessLog ?? l.accessLog;
    if (!logs) return;
    const ext = e.policy === EXT_AUTHZ_POLICY;
    this.write(e.listener, logs, {
      startMs: Date.now(),
      durationMs: 0,
      responseCode: 0,
      responseFlags: ext ? 'UAEX' : '-',
      ...(ext ? {} : { connectionTerminationDetails: `rbac_access_denied_matched_policy[${e.policy ?? 'none'}]` }),
      bytesReceived: 0,
      bytesSent: 0,
      ...downstreamOf(e.down, this.opts.identity),
    });
  }

  private write(listener: string, logs: readonly AccessLogConfig[], entry: LogEntry): void {
    for (const a of logs) {
      const f = this.file(a.path, listener);
      try {
        // The CEL filter (a Telemetry's accessLogging filter): only what it is true of is logged.
        if (a.filter && !a.filter(entry)) continue;
        // A text line is written straight into the file's buffer.
        if (a.format.kind === 'text') f.writeText(a.format.parts, entry);
        else f.write(render(a.format, entry));
      } catch (err) {
        // A bug in an operator or the filter must not reach the request path: report it, drop the line.
        this.opts.log(`BUG: access log line of listener ${listener} could not be filtered or formatted: ${(err as Error)?.stack ?? err}`);
        f.dropped++;
      }
    }
  }
}

/** What an HTTP exchange offers an access log's operators and CEL expressions (also the metrics' tag overrides: istio-metrics.ts). */
export function requestLogEntry(e: RequestEvent, ds: NonNullable<RequestEvent['ds']>, identity: () => string | undefined): LogEntry {
  const h = ds.head;
  const local = ds.localAddress?.();
  const peer = ds.sourcePrincipal?.();
  const resp = e.responseHeaders;
  return {
    startMs: Date.now() - (e.durationMs ?? 0),
    durationMs: e.durationMs,
    method: h.method,
    path: h.path,
    query: h.query,
    authority: h.authority,
    protocol: h.protocol,
    reqHeader: (n) => headerValue(h.headers, n),
    respHeader: (n) => (resp ? headerValue(resp, n) : undefined),
    responseCode: e.status,
    responseFlags: responseFlags(e.reason),
    responseCodeDetails: responseCodeDetails(e.reason, e.cluster, e.authzPolicy, e.transportFailure),
    upstreamTransportFailureReason: e.transportFailure,
    bytesReceived: e.bytesReceived ?? 0,
    bytesSent: e.bytesSent ?? 0,
    upstreamHost: e.endpoint,
    upstreamCluster: e.cluster === '-' ? undefined : e.cluster,
    upstreamLocalAddress: e.upstreamLocal,
    downstreamLocalAddress: local ? hostPort(local.address, local.port) : undefined,
    downstreamRemoteAddress: hostPort(ds.remoteAddress(), ds.remotePort?.()),
    requestedServerName: ds.requestedServerName?.(),
    routeName: e.route,
    downstreamPeerUriSan: peer,
    downstreamLocalUriSan: peer ? identity() : undefined,
    upstreamPeerUriSan: e.upstreamPeer,
    dynamicMetadata: withAuthz(ds.dynamicMetadata, e.authzPolicy),
  };
}

/** What a proxied TCP connection offers them: at its close (or, for the metrics, its open: no bytes yet). */
export function tcpLogEntry(e: Extract<TcpEvent, { kind: 'open' | 'close' }>, identity: () => string | undefined): LogEntry {
  const { down, up } = e;
  const sni = (down as { servername?: unknown } | undefined)?.servername;
  const closed = e.kind === 'close' ? e : undefined;
  return {
    startMs: Date.now() - (closed?.durationMs ?? 0),
    durationMs: closed?.durationMs,
    responseCode: 0,
    responseFlags: '-',
    // From the client's side, as Envoy counts them: received from the client, sent to it.
    bytesReceived: closed?.bytesSent ?? 0,
    bytesSent: closed?.bytesReceived ?? 0,
    upstreamHost: e.endpoint,
    upstreamCluster: e.cluster,
    upstreamLocalAddress: up?.localAddress ? hostPort(up.localAddress, up.localPort) : undefined,
    ...downstreamOf(down, identity),
    requestedServerName: typeof sni === 'string' && sni ? sni : undefined,
    upstreamPeerUriSan: peerPrincipal(up),
  };
}

/** A TCP connection's client side: its addresses, and both SPIFFE ids where it came over mutual TLS. */
function downstreamOf(down: net.Socket | undefined, identity: () => string | undefined): Pick<LogEntry, 'downstreamLocalAddress' | 'downstreamRemoteAddress' | 'downstreamPeerUriSan' | 'downstreamLocalUriSan'> {
  const peer = peerPrincipal(down);
  return {
    downstreamLocalAddress: down?.localAddress ? hostPort(down.localAddress, down.localPort) : undefined,
    downstreamRemoteAddress: down?.remoteAddress ? hostPort(down.remoteAddress, down.remotePort) : undefined,
    downstreamPeerUriSan: peer,
    downstreamLocalUriSan: peer ? identity() : undefined,
  };
}

function hostPort(address: string, port: number | undefined): string {
  const a = unmapped(address);
  if (port === undefined) return a;
  return a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`;
}

/**
 * The request's dynamic metadata, with the authorization decision where one denied it, as Envoy's
 * RBAC filter writes it (envoy.filters.http.rbac: shadow_effective_policy_id / the enforced
 * policy id): %DYNAMIC_METADATA(envoy.filters.http.rbac:enforced_effective_policy_id)%.
 */
function withAuthz(md: Record<string, Record<string, unknown>> | undefined, policy: string | undefined): Record<string, Record<string, unknown>> | undefined {
  if (!policy) return md;
  return { ...md, 'envoy.filters.http.rbac': { ...md?.['envoy.filters.http.rbac'], enforced_effective_policy_id: policy, enforced_engine_result: 'denied' } };
}
