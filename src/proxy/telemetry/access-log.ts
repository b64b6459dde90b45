// The access log (Envoy's file access logger, as the HCMs' and tcp_proxies' access_log configure
// it): a subscriber to the request path's events (events.ts), never called from the path itself.
// One line per HTTP exchange, when it ends, in the format of each of its listener's loggers; one
// line per proxied TCP connection, when it closes. Lines go to the file's writer (log-file.ts),
// which buffers them and drops (and counts) rather than ever making the request path wait.
import type net from 'node:net';
import type { RuntimeConfig } from '../config.ts';
import { headerValue } from '../http/edits.ts';
import { hostPort } from '../net/addresses.ts';
import { peerPrincipal, requestedServerName } from '../tls/peer.ts';
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
  /** The file the last line went to, by the access log config that named it (none after retain()). */
  private lastLog: AccessLogConfig | undefined;
  private lastFile: LogFile | undefined;

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
    this.lastLog = this.lastFile = undefined;
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
    // The access log of the tcp_proxy of the chain the connection came on (none: no line, as Envoy's).
    const logs = e.accessLog;
    if (!logs) return;
    const ext = e.policy === EXT_AUTHZ_POLICY;
    const startMs = e.startMs ?? Date.now();
    // Read now, while the connection is open (its addresses and peer); written when it closes, as
    // Envoy writes the line (after the filter's delay_deny, if any), with the time until then.
    const entry: Omit<LogEntry, 'durationMs'> = {
      startMs,
      responseCode: 0,
      responseFlags: ext ? 'UAEX' : '-',
      ...(ext ? {} : { connectionTerminationDetails: `rbac_access_denied_matched_policy[${e.policy ?? 'none'}]` }),
      bytesReceived: 0,
      bytesSent: 0,
      ...downstreamOf(e.down, this.opts.identity),
    };
    const listener = e.listener;
    const write = () => this.write(listener, logs, { ...entry, durationMs: Date.now() - startMs });
    if (e.down.destroyed) write();
    else e.down.once('close', write);
  }

  private write(listener: string, logs: readonly AccessLogConfig[], entry: LogEntry): void {
    for (let i = 0; i < logs.length; i++) {
      const a = logs[i]!;
      // Most lines go to the file the last one went to: found by its config object (a pointer's
      // compare, where two listeners' equal paths are two strings to compare).
      let f = this.lastFile;
      if (a !== this.lastLog || !f) {
        f = this.file(a.path, listener);
        this.lastLog = a;
        this.lastFile = f;
      }
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

/**
 * What an HTTP exchange offers an access log's operators and CEL expressions (also the metrics' tag
 * overrides: istio-metrics.ts): read from the event as they are asked for, so that an entry is one
 * small object, not two dozen fields (and two closures) made for every request whether a format
 * reads them or not.
 */
export function requestLogEntry(e: RequestEvent, ds: NonNullable<RequestEvent['ds']>, identity: () => string | undefined): LogEntry {
  return new HttpEntry(e, ds, identity);
}

class HttpEntry implements LogEntry {
  private readonly e: RequestEvent;
  private readonly ds: NonNullable<RequestEvent['ds']>;
  private readonly identity: () => string | undefined;
  readonly startMs: number;

  constructor(e: RequestEvent, ds: NonNullable<RequestEvent['ds']>, identity: () => string | undefined) {
    this.e = e;
    this.ds = ds;
    this.identity = identity;
    // The start is read now: the entry may be read a little later than the event came.
    this.startMs = Date.now() - (e.durationMs ?? 0);
  }
  get durationMs(): number | undefined {
    return this.e.durationMs;
  }
  get method(): string {
    return this.ds.head.method;
  }
  get path(): string {
    return this.ds.head.path;
  }
  get query(): string {
    return this.ds.head.query;
  }
  get authority(): string {
    return this.ds.head.authority;
  }
  get protocol(): string {
    return this.ds.head.protocol;
  }
  reqHeader(n: string): string | undefined {
    return headerValue(this.ds.head.headers, n);
  }
  respHeader(n: string): string | undefined {
    const r = this.e.responseHeaders;
    return r ? headerValue(r, n) : undefined;
  }
  get responseCode(): number {
    return this.e.status;
  }
  get responseFlags(): string {
    return responseFlags(this.e.reason);
  }
  get responseCodeDetails(): string | undefined {
    const e = this.e;
    return responseCodeDetails(e.reason, e.cluster, e.authzPolicy, e.transportFailure);
  }
  get upstreamTransportFailureReason(): string | undefined {
    return this.e.transportFailure;
  }
  get bytesReceived(): number {
    return this.e.bytesReceived ?? 0;
  }
  get bytesSent(): number {
    return this.e.bytesSent ?? 0;
  }
  get upstreamHost(): string | undefined {
    return this.e.endpoint;
  }
  get upstreamCluster(): string | undefined {
    return this.e.cluster === '-' ? undefined : this.e.cluster;
  }
  get upstreamLocalAddress(): string | undefined {
    return this.e.upstreamLocal;
  }
  get downstreamLocalAddress(): string | undefined {
    const ds = this.ds;
    if (ds.hostPorts) return ds.hostPorts().local;
    const local = ds.localAddress?.();
    return local ? hostPort(local.address, local.port) : undefined;
  }
  get downstreamRemoteAddress(): string {
    const ds = this.ds;
    return ds.hostPorts ? ds.hostPorts().remote : hostPort(ds.remoteAddress(), ds.remotePort?.());
  }
  get requestedServerName(): string | undefined {
    return this.ds.requestedServerName?.();
  }
  get routeName(): string | undefined {
    return this.e.route;
  }
  get downstreamPeerUriSan(): string | undefined {
    return this.ds.sourcePrincipal?.();
  }
  get downstreamLocalUriSan(): string | undefined {
    return this.ds.sourcePrincipal?.() ? this.identity() : undefined;
  }
  get upstreamPeerUriSan(): string | undefined {
    return this.e.upstreamPeer;
  }
  get dynamicMetadata(): Record<string, Record<string, unknown>> | undefined {
    return withAuthz(this.ds.dynamicMetadata, this.e.authzPolicy);
  }
}

/** What a proxied TCP connection offers them: at its close (or, for the metrics, its open: no bytes yet). */
export function tcpLogEntry(e: Extract<TcpEvent, { kind: 'open' | 'close' }>, identity: () => string | undefined): LogEntry {
  const { down, up } = e;
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
    requestedServerName: requestedServerName(down),
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

/**
 * The request's dynamic metadata, with the authorization decision where one denied it, as Envoy's
 * RBAC filter writes it (envoy.filters.http.rbac: shadow_effective_policy_id / the enforced
 * policy id): %DYNAMIC_METADATA(envoy.filters.http.rbac:enforced_effective_policy_id)%.
 */
function withAuthz(md: Record<string, Record<string, unknown>> | undefined, policy: string | undefined): Record<string, Record<string, unknown>> | undefined {
  if (!policy) return md;
  return { ...md, 'envoy.filters.http.rbac': { ...md?.['envoy.filters.http.rbac'], enforced_effective_policy_id: policy, enforced_engine_result: 'denied' } };
}
