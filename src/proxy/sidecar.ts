// The sidecar, assembled: xDS client -> runtime snapshot -> listeners -> forward -> pools.
// Configured only through xDS; its command-line options say who it is (the node) and where the
// control plane and its own admin endpoint are.
import type http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Node, ResourceType } from '../xds/protos.ts';
import { ROOTCA, TYPE } from '../xds/types.ts';
import { EMPTY_CONFIG, type RuntimeConfig, missing, nextConfig, settle, wantedNames } from './config.ts';
import { ActiveExchanges, type ForwardContext, connectTarget, forward, startIdleSweep } from './http/forward.ts';
import { JwksCache } from './http/jwks.ts';
import type { TcpContext } from './tcp/tcp.ts';
import { LiveTcpConnections } from './tcp/authz.ts';
import { ConnectionBudget, type ListenerLimits, createListener } from './listeners/listener.ts';
import { serveInternal } from './listeners/internal.ts';
import { Stats } from './stats.ts';
import { Telemetry, requestEvent } from './telemetry/events.ts';
import { AccessLogger } from './telemetry/access-log.ts';
import { IstioMetrics } from './telemetry/istio-metrics.ts';
import { Tap } from './telemetry/tap.ts';
import { Tracer } from './telemetry/tracer.ts';
import { HealthMetrics } from './telemetry/health-metrics.ts';
import { selfPeer } from './telemetry/istio-labels.ts';
import { PeerMetadataCache, ownMetadata as ownMetadataOf } from './http/peer-metadata.ts';
import { FRAME_HEADER, MAX_FRAME, ownFrame } from './tcp/peer-exchange.ts';
import { Pools, memberKey } from './upstream/pools.ts';
import { pruneRoundRobin } from './upstream/choose.ts';
import { XdsClient } from './xds-client/client.ts';
import { loadClusterFiles } from './tls/origination.ts';
import { WorkloadCertificates } from './identity/workload-cert.ts';
import { applyRoots } from './identity/roots.ts';
import { TlsStats } from './tls/stats.ts';
import type { ListenerConfig } from './xds-client/convert.ts';
import { META, META_PORTS, PEER_EXCHANGE_ALPN, type PortMeta, formatNodeId } from '../xds/node-meta.ts';
import { ConvertError } from './xds-client/convert.ts';
import { startHealth } from './health.ts';
import { wasmMemoryBytes } from './http1/llhttp.ts';
import { connectionLimit, loopBlockedLimitMs } from './limits.ts';

/** Asks for the largest accept queue; the kernel clamps it to net.core.somaxconn. */
const LISTEN_BACKLOG = 65535;
/** How long a route table waits for a new cluster's endpoints before it serves anyway (Envoy's initial_fetch_timeout). */
const WARMING_TIMEOUT_MS = 15_000;

export interface SidecarOptions {
  xds: string; // control plane host:port
  /** The mesh root the control plane's certificate must chain to, PEM. */
  rootPem: string;
  /** What buys the first workload certificate (weft token create); spent on first use. */
  joinToken: string;
  /** Seconds of life to ask for each workload certificate; unset: the CA's default (24 h). */
  certValidityS?: number;
  /** A new join token, if there is one, for when the certificate expired unrenewed (WorkloadCertOptions.rejoin). */
  rejoin?: () => string | undefined;
  workload: string;
  namespace: string;
  service?: string;
  servicePort: number;
  labels: Record<string, string>;
  address: string; // where the inbound listener binds, and what other sidecars dial
  inboundPort?: number;
  appPort?: number;
  /** Several service ports; when given, servicePort, inboundPort and appPort are its first. */
  ports?: PortMeta[];
  outboundPort?: number;
  adminHost: string;
  adminPort: number;
  /** false: keep no Istio standard metrics (weft proxy --no-istio-metrics). Default true. */
  istioMetrics?: boolean;
  /** How often to check that the app accepts connections (default 1000 ms). */
  probeIntervalMs?: number;
  log?: (msg: string) => void;
}

export interface Sidecar {
  adminUrl: string;
  nodeId: string;
  config(): RuntimeConfig;
  /** Resolves when every listener is bound and has its routes and endpoints. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

interface BoundListener {
  cfg: ListenerConfig;
  server: net.Server;
}

// node:http, node:crypto, node:fs and node:util are taken with process.getBuiltinModule, not an
// ESM import: importing a builtin as an ES module reads every export of it to build the namespace,
// and node:http's lazy WebSocket, CloseEvent and MessageEvent getters then load Node's bundled
// undici (about 1.5 MB of a sidecar's private memory; node:crypto's getters load webcrypto;
// node:fs's and node:util's cost about 1.7 MB in a bare process). No module the sidecar loads may
// import them as ES modules, or the namespace is built (and undici loaded) all the same.
const { createServer } = process.getBuiltinModule('node:http');
const { randomBytes } = process.getBuiltinModule('node:crypto');

export async function startSidecar(opts: SidecarOptions): Promise<Sidecar> {
  const log = opts.log ?? (() => {});
  // Unique per running sidecar, as a pod name is: several instances of one workload may share an
  // address (127.0.0.1), and the control plane keeps one stream per node id.
  // Who this sidecar is, proven: a certificate for the join token, before anything else. A token
  // that is refused ends the start here, saying why. The certificate's namespace and workload are
  // this sidecar's, whatever the options said (the control plane would overrule them anyway, and
  // refuse a node id in another namespace).
  const certs = new WorkloadCertificates({ server: opts.xds, rootPem: opts.rootPem, joinToken: opts.joinToken, validityS: opts.certValidityS, log, rejoin: opts.rejoin });
  const proven = await certs.start();
  const namespace = proven.namespace;
  const workload = proven.workload ?? opts.workload;
  if (namespace !== opts.namespace || workload !== opts.workload) {
    log(`its certificate is for workload ${namespace}/${workload}, not ${opts.namespace}/${opts.workload} as its options say: it is ${namespace}/${workload}`);
  }
  const pod = `${workload}-${instanceSuffix()}`;
  const nodeId = formatNodeId({ address: opts.address, pod, namespace });
  const node: Node = {
    id: nodeId,
    cluster: opts.service ?? workload,
    user_agent_name: 'weft',
    metadata: {
      [META.workload]: workload,
      [META.namespace]: namespace,
      [META.labels]: opts.labels,
      [META.address]: opts.address,
      ...(opts.service ? { [META.service]: opts.service, [META.servicePort]: opts.servicePort } : {}),
      ...(opts.inboundPort !== undefined ? { [META.inboundPort]: opts.inboundPort } : {}),
      ...(opts.appPort !== undefined ? { [META.appPort]: opts.appPort } : {}),
      ...(opts.outboundPort !== undefined ? { [META.outboundPort]: opts.outboundPort } : {}),
      ...(opts.ports?.length ? { [META_PORTS]: opts.ports.map((p) => ({ ...p })) } : {}),
    },
  };


  let current: RuntimeConfig = EMPTY_CONFIG;
  const stats = new Stats();
  const tlsStats = new TlsStats();
  const pools = new Pools(undefined, { secrets: certs, stats: tlsStats });
  const telemetry = new Telemetry();
  stats.subscribe(telemetry);
  // The access log (its HCMs' and tcp_proxies' access_log) and Istio's metrics: subscribers to the
  // request path's events, never called from it.
  const accessLog = new AccessLogger({ config: () => current, identity: () => certs.current().spiffeId, log });
  accessLog.subscribe(telemetry);
  // The service host it serves, as the mesh names it (<service>.<namespace>.svc.cluster.local).
  const selfService = opts.service ? (opts.service.includes('.') ? opts.service : `${opts.service}.${namespace}.svc.cluster.local`) : undefined;
  const istio = new IstioMetrics(() => current, {
    workload,
    namespace,
    labels: opts.labels,
    ...(selfService ? { service: selfService } : {}),
    principal: () => certs.current().spiffeId,
  }, log);
  if (opts.istioMetrics !== false) istio.subscribe(telemetry);
  // Where an inbound connection was headed: the service port its listener stands for. Envoy behind
  // iptables sees the original destination; Weft's sidecar is dialed on its inbound port instead,
  // so authorization (to.operation.ports, destination.port) gets the service port, as
  // PeerAuthentication's portLevelMtls keys ports.
  const servicePorts = new Map<number, number>();
  for (const p of opts.ports ?? []) servicePorts.set(p.inboundPort, p.port);
  if (opts.inboundPort !== undefined && !servicePorts.has(opts.inboundPort)) servicePorts.set(opts.inboundPort, opts.servicePort);
  const destinationPort = (listenerPort: number) => servicePorts.get(listenerPort) ?? listenerPort;
  // The JWT layer's key sets; a JWKS URI that cannot be fetched is logged when it starts failing and when it recovers.
  const jwks = new JwksCache(undefined, undefined, (uri, error) => log(error ? `JWKS ${uri} cannot be fetched: ${error}; requests with its tokens get 401 "Jwks remote fetch is failed"` : `JWKS ${uri} fetched again`));
  // Its own SPIFFE id: an external authorizer's CheckRequest names it as the destination principal.
  const localPrincipal = (): string | undefined => {
    try {
      return certs.current().spiffeId;
    } catch {
      return undefined;
    }
  };
  // Tap (/tap): the requests as they happen, while the control plane listens (it alone knows the token).
  const tapToken = randomBytes(24).toString('base64url');
  const tap = new Tap(telemetry, () => current, localPrincipal, log, tapToken);
  // What Istio's metadata exchange says of this workload (http/peer-metadata.ts), where a listener runs it.
  const self = selfPeer(workload, namespace, opts.labels);
  const ownMetadata = ownMetadataOf({ nodeId, name: pod, namespace, workload, cluster: self.cluster, labels: opts.labels, canonicalService: self.canonicalService, canonicalRevision: self.canonicalRevision });
  // Its TCP exchange frame, where its peers will take it (at most MAX_FRAME): a workload whose labels
  // make it larger runs no exchange, and says so to the control plane (its node leaves PEER_EXCHANGE out).
  const frame = ownFrame(ownMetadata);
  const exchangeFrame = frame.length - FRAME_HEADER <= MAX_FRAME ? frame : undefined;
  if (!exchangeFrame) log(`its metadata (labels) make a TCP metadata exchange frame of ${frame.length} bytes, over the ${MAX_FRAME} its peers take: it runs no TCP exchange (its TCP metrics' peer labels are unknown)`);
  else node.metadata = { ...node.metadata, [META.peerExchange]: PEER_EXCHANGE_ALPN };
  const ctx: ForwardContext = { config: () => current, ownMetadata, pools, telemetry, rr: new Map(), active: new ActiveExchanges(), destinationPort, jwks, localPrincipal, log, live: new LiveTcpConnections() };
  // Spans of the requests the tracing layer sampled, exported over OTLP/HTTP (telemetry/tracer.ts).
  const tracer = new Tracer({ config: () => current, calls: ctx, nodeId, ...(selfService ? { service: selfService } : {}), log });
  tracer.subscribe(telemetry);
  const sweep = startIdleSweep(ctx);
  const tcpCtx: TcpContext = {
    config: () => current,
    telemetry,
    balance: ctx,
    log,
    resources: (c) => pools.resourcesOf(c),
    tls: { secrets: certs, stats: tlsStats },
    destinationPort,
    extAuthz: ctx,
    live: ctx.live,
    // Istio's TCP metadata exchange (tcp/peer-exchange.ts): this workload's frame, the peers' metadata.
    ...(exchangeFrame ? { peerExchange: { frame: exchangeFrame, cache: new PeerMetadataCache(), log } } : {}),
  };
  const bound = new Map<string, BoundListener>();
  const budget = new ConnectionBudget(connectionLimit());
  let readyWaiters: (() => void)[] = [];

  const checkReady = () => {
    if (missing(current).length === 0 && readyWaiters.length) {
      for (const w of readyWaiters) w();
      readyWaiters = [];
    }
  };

  /** Opens new listeners and closes removed ones. All-or-nothing: a failed bind undoes the new ones. */
  const syncListeners = async (next: RuntimeConfig): Promise<void> => {
    const opened: BoundListener[] = [];
    for (const l of next.listeners.values()) {
      if (l.internal) continue; // no socket: CONNECT tunnels reach it (listeners/internal.ts)
      const have = bound.get(l.name);
      if (have && have.cfg.address === l.address && have.cfg.port === l.port) continue;
      const server = createListener(
        {
          onRequest: (ds) => {
            try {
              forward(ctx, l.name, ds);
            } catch (e) {
              log(`BUG: request ${ds.head.method} ${ds.head.authority}${ds.head.path} failed inside the sidecar: ${(e as Error)?.stack ?? e}`);
              ds.reset('internal error');
            }
          },
          connectTarget: (authority) => connectTarget(ctx.config(), l.name, authority, Math.random()),
          internal: (name, socket, head, authority) => serveInternal(tcpCtx, ctx.config(), name, socket, head, authority),
          tcp: tcpCtx,
          tls: { secrets: certs, stats: tlsStats },
          onRejected: (r) => {
            if (!telemetry.request.hasSubscribers) return;
            // Logged and counted as Envoy does a request its HCM answered itself: on this listener's access log and reporter.
            const ds = r.ds;
            ds.listenerName = l.name;
            telemetry.request.publish(requestEvent(r.cluster ?? '-', r.status, r.code, undefined, r.durationMs, ds.sourcePrincipal?.(), ds, undefined));
          },
          log,
        },
        () => listenerLimits(ctx.config().listeners.get(l.name) ?? l),
        budget,
      );
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          // The kernel's own limit for the queue of connections not yet accepted (net.core.somaxconn;
          // the kernel clamps a larger value to it), as Envoy's listeners use when tcp_backlog_size
          // is unset; Node's default of 511 drops handshakes under a burst of new connections.
          server.listen(l.port, l.address, LISTEN_BACKLOG, () => {
            server.off('error', reject);
            resolve();
          });
        });
      } catch (e) {
        for (const o of opened) o.server.close();
        throw new ConvertError(`listener ${l.name}: cannot listen on ${l.address}:${l.port}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      opened.push({ cfg: l, server });
    }
    for (const [name, b] of bound) {
      const l = next.listeners.get(name);
      if (l && !l.internal && l.address === b.cfg.address && l.port === b.cfg.port) continue;
      b.server.close();
      bound.delete(name);
    }
    for (const o of opened) {
      bound.set(o.cfg.name, o);
      const a = o.server.address() as AddressInfo;
      log(`listener ${o.cfg.name} on ${a.address}:${a.port}`);
    }
  };

  let warmingTimer: NodeJS.Timeout | undefined;
  const apply = async (type: ResourceType, resources: Record<string, any>[], version: string): Promise<string | undefined> => {
    if (type === TYPE.secret) return applyRoots(certs, resources);
    let next: RuntimeConfig;
    try {
      next = nextConfig(current, type, resources, version);
      if (type === TYPE.listener) await syncListeners(next);
      // TLS origination's files are read now, by this sidecar (as Istio's agent reads them for Envoy).
      if (type === TYPE.cluster) await loadClusterFiles(next.clusters.values());
    } catch (e) {
      if (e instanceof ConvertError) return e.message;
      throw e;
    }
    current = next;
    // New AuthorizationPolicies (or PeerAuthentications) reach the listeners: TCP connections
    // already open are decided again, and those now denied are closed.
    if (type === TYPE.listener) tcpCtx.live!.recheck(tcpCtx);
    if (type === TYPE.listener) accessLog.retain(); // files no listener names any more are closed
    // Route tables waiting for a warming cluster's endpoints wait at most WARMING_TIMEOUT_MS, as
    // Envoy's initial_fetch_timeout: then they serve, and that cluster answers no_healthy_endpoint.
    // The wait starts when a table starts waiting: a timer left from tables that were since
    // promoted would cut a later wait short.
    if (!current.pendingRoutes.size && warmingTimer) {
      clearTimeout(warmingTimer);
      warmingTimer = undefined;
    }
    if (current.pendingRoutes.size && !warmingTimer) {
      warmingTimer = setTimeout(() => {
        warmingTimer = undefined;
        if (!current.pendingRoutes.size) return;
        log(`route configurations ${[...current.pendingRoutes.keys()].join(', ')} waited ${WARMING_TIMEOUT_MS} ms for endpoints that did not come; they serve now`);
        current = settle(current, true);
        checkReady();
      }, WARMING_TIMEOUT_MS).unref();
    }
    if (type === TYPE.endpoint || type === TYPE.cluster) {
      const keep = new Set<string>();
      for (const c of current.clusters.values()) {
        for (const ep of c.staticEndpoints ?? current.endpoints.get(c.edsName!) ?? []) keep.add(memberKey(c.name, ep.address, ep.port));
      }
      pools.retain(keep, new Set(current.clusters.keys()));
      // Per-cluster state of the request path goes with the cluster.
      pruneRoundRobin(ctx.rr, current.clusters);
      ctx.slowStart?.retain(current.clusters);
    }
    checkReady();
    return undefined;
  };

  // What other sidecars should know of this one: whether it can forward to its app (health.ts).
  // The first check runs before registering, so the endpoint starts out right.
  let xds: XdsClient | undefined;
  const health = await startHealth({
    appPort: opts.appPort,
    inboundPort: () => opts.inboundPort,
    // HTTP listeners only: a probe connection to a tcp_proxy listener would open one to the app.
    listeners: () => [...bound.values()].filter((b) => b.cfg.kind === 'http').map((b) => ({ name: b.cfg.name, address: b.cfg.address, port: (b.server.address() as AddressInfo | null)?.port ?? b.cfg.port })),
    pools: () => pools.stats(),
    probeIntervalMs: opts.probeIntervalMs ?? 1000,
    loopBlockedMs: loopBlockedLimitMs(),
    onChange: (healthy, why) => {
      log(`endpoint ${healthy ? 'healthy' : 'marked unhealthy'}: ${why}`);
      xds?.setNode(withHealth());
    },
  });
  const withHealth = (): Node => ({ ...node, metadata: { ...node.metadata, [META.healthy]: health.healthy } });
  xds = new XdsClient({ server: opts.xds, tls: () => certs.tlsToControlPlane(), node: withHealth(), apply, wanted: () => wantedNames(current), secrets: [ROOTCA], log });
  // The sidecar's own health on /stats/prometheus (weft_*): read when scraped.
  const own = new HealthMetrics({
    xds: () => xds!.status(),
    certNotAfter: () => {
      try {
        return certs.current().notAfter;
      } catch {
        return undefined;
      }
    },
    downstreamConnections: () => budget.sockets.size,
    upstreamConnections: () => {
      let http = 0;
      for (const p of pools.stats()) http += p.idle + p.busy + p.connecting;
      let tcp = 0;
      for (const c of stats.tcpRows()) tcp += c.opened - c.closed;
      return { http, tcp };
    },
  });
  const admin = createServer((req, res) => adminHandler(req, res));
  const adminHandler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://admin');
    } catch {
      // A request line no URL parser takes ("GET //[ HTTP/1.1"): a 400, not a crashed sidecar.
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `bad request URL ${JSON.stringify(req.url)}` }) + '\n');
      return;
    }
    const json = (status: number, body: unknown) => {
      const text = JSON.stringify(body, null, 2) + '\n';
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(text);
    };
    switch (url.pathname) {
      case '/ready': {
        const m = [...missing(current), ...health.problems()];
        res.writeHead(m.length ? 503 : 200, { 'content-type': 'text/plain' });
        res.end(m.length ? `not ready: ${m.join('; ')}\n` : 'ready\n');
        return;
      }
      case '/config_dump':
        return json(200, {
          node: { ...node, metadata: { ...node.metadata, [META.tapToken]: node.metadata?.[META.tapToken] ? '(redacted)' : undefined } },
          xds: xds!.status(),
          versions: Object.fromEntries(Object.entries(current.versions).map(([t, v]) => [t.slice(t.lastIndexOf('.') + 1), v])),
          listeners: [...(current.raw[TYPE.listener]?.values() ?? [])],
          routes: [...(current.raw[TYPE.route]?.values() ?? [])],
          clusters: [...(current.raw[TYPE.cluster]?.values() ?? [])],
          endpoints: [...(current.raw[TYPE.endpoint]?.values() ?? [])],
          // Remote key sets of the JWT layer that cannot be fetched now, and why.
          jwksErrors: Object.fromEntries(jwks.lastError),
        });
      case '/stats':
        return json(200, { requests: stats.rows(), tcp: stats.tcpRows(), pools: pools.stats(), connections: { active: budget.sockets.size, limit: budget.limit, refused: budget.refused }, tls: tlsStats.json(), sources: Object.fromEntries(stats.sources), authz: stats.authz, accessLog: accessLog.stats(), istio: istio.json(), tracing: tracer.stats(), tap: tap.stats() });
      case '/certs': {
        // As Envoy's /certs: what this sidecar proves itself with, and until when (never its key).
        const c = certs.current();
        return json(200, { identity: c.spiffeId, notBefore: new Date(c.notBefore).toISOString(), notAfter: new Date(c.notAfter).toISOString(), certificate: c.certPem, roots: c.rootsPem });
      }
      case '/memory': {
        // The process's own view of its memory (bytes): where RSS goes, for the benchmark and for
        // anyone wondering why a sidecar is large.
        // ?gc=1 collects garbage first, when node runs with --expose-gc (to tell live from garbage).
        const gc = (globalThis as { gc?: () => void }).gc;
        if (url.searchParams.has('gc') && gc) gc();
        const mu = process.memoryUsage();
        return json(200, { ...mu, wasm: wasmMemoryBytes(), exchanges: ctx.active.size, connections: budget.sockets.size });
      }
      case '/stats/prometheus':
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(stats.prometheus() + accessLogPrometheus(accessLog) + istio.prometheus() + tracer.prometheus() + own.prometheus() + startTimePrometheus());
        return;
      case '/tap':
        return tap.serve(req, res);
      default:
        return json(404, { error: `no such admin endpoint ${url.pathname}; try /ready, /config_dump, /stats, /stats/prometheus, /certs, /memory, /tap` });
    }
  };
  await new Promise<void>((resolve, reject) => {
    admin.once('error', reject);
    admin.listen(opts.adminPort, opts.adminHost, () => resolve());
  });
  const aa = admin.address() as AddressInfo;
  // Where the control plane scrapes its metrics: this port, on the address its xDS stream comes
  // from; and what its /tap asks for, which only the control plane learns.
  node.metadata = { ...node.metadata, [META.adminPort]: aa.port, [META.tapToken]: tapToken };
  xds.setNode(withHealth());
  xds.start();

  return {
    adminUrl: `http://${aa.address}:${aa.port}`,
    nodeId,
    config: () => current,
    ready: () =>
      new Promise<void>((resolve) => {
        readyWaiters.push(resolve);
        checkReady();
      }),
    async close() {
      certs.stop();
      health.stop();
      own.stop();
      clearInterval(sweep);
      xds.stop();
      for (const b of bound.values()) b.server.close();
      for (const s of budget.sockets) s.destroy();
      bound.clear();
      tap.close();
      admin.closeAllConnections();
      admin.close();
      tracer.close();
      await pools.close();
      accessLog.retain(true);
    },
  };
}

/** This process's pid and random hex: `4711-3f9a2c`. The pid says which process; the random part
 * keeps a reused pid, or a second sidecar in the same process, from taking an id still connected. */
function instanceSuffix(): string {
  return `${process.pid}-${randomBytes(3).toString('hex')}`;
}


/** A listener's timeouts and path handling: what its HttpConnectionManager says, or Envoy's defaults. */
function listenerLimits(l: ListenerConfig): ListenerLimits {
  return { name: l.name, path: l.path, headersTimeoutMs: l.requestHeadersTimeoutMs, idleTimeoutMs: l.idleTimeoutMs, kind: l.kind, tcp: l.tcp, sni: l.sni, mtls: l.mtls };
}

/** When this process started, as Prometheus clients export it: a scraper tells a restart by it. */
function startTimePrometheus(): string {
  const t = Math.floor(performance.timeOrigin) / 1000; // fixed for the process's life
  return `# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds ${t}\n`;
}

/** The access log's own counters: lines written and dropped (a slow or unwritable file), by file. */
function accessLogPrometheus(a: AccessLogger): string {
  const files = a.stats();
  if (!files.length) return '';
  const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  const lines = ['# HELP weft_access_log_lines_total Access log lines by file and outcome (dropped: the file was slow or could not be written).', '# TYPE weft_access_log_lines_total counter'];
  for (const f of files) lines.push(`weft_access_log_lines_total{path="${esc(f.path)}",outcome="written"} ${f.written}`, `weft_access_log_lines_total{path="${esc(f.path)}",outcome="dropped"} ${f.dropped}`);
  return lines.join('\n') + '\n';
}
