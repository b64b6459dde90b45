// The sidecar's config snapshot for a mesh, as the sidecar builds it: the control plane's full
// translation for one proxy, encoded and decoded as on the wire (so a misspelt field is lost here
// as it would be there), then loaded type by type through the sidecar's own conversion (a NACK
// throws). For tests that run the request path's pure parts, or the request path in process.
import { checkResource } from '../src/api/index.ts';
import type { AuthorizationPolicy, DestinationRule, GatewayGRPCRoute, GatewayHTTPRoute, LocalRateLimit, PeerAuthentication, RequestAuthentication, ServiceEntry, Sidecar, Telemetry, VirtualService, WorkloadEntry } from '../src/api/types.ts';
import type { MeshSnapshot, Workload } from '../src/control/model/model.ts';
import { translate } from '../src/control/translate/translate.ts';
import { EMPTY_CONFIG, type RuntimeConfig, nextConfig } from '../src/proxy/config.ts';
import { ProxyError } from '../src/proxy/errors.ts';
import { connectTarget, decide, matchRoute, targetOf } from '../src/proxy/http/forward.ts';
import { healthyEndpoints } from '../src/proxy/upstream/choose.ts';
import { chainFor, pickTcpCluster } from '../src/proxy/xds-client/convert.ts';
import { localReply } from '../src/proxy/http/local-reply.ts';
import { faultOutcome } from '../src/proxy/http/fault.ts';
import { responseHeaders, upstreamHead } from '../src/proxy/http/edits.ts';
import type { Downstream, RequestHead } from '../src/proxy/http/types.ts';
import { type ResourceType, TYPE, decode, encode } from '../src/xds/protos.ts';

export function sidecarSnapshot(mesh: MeshSnapshot, proxy: Workload): RuntimeConfig {
  const x = translate(mesh, proxy);
  const wire = (type: ResourceType, rs: Record<string, object>) => Object.values(rs).map((r) => decode(type, encode(type, r)));
  let cfg = EMPTY_CONFIG;
  cfg = nextConfig(cfg, TYPE.listener, wire(TYPE.listener, x.listeners), '1');
  cfg = nextConfig(cfg, TYPE.cluster, wire(TYPE.cluster, x.clusters), '1');
  cfg = nextConfig(cfg, TYPE.route, wire(TYPE.route, x.routes), '1');
  cfg = nextConfig(cfg, TYPE.endpoint, wire(TYPE.endpoint, x.endpoints), '1');
  return cfg;
}

/** A mesh snapshot from Istio resources as a user writes them (validated as `weft apply` does) and workloads. */
export function meshOf(config: readonly object[], workloads: Workload[]): MeshSnapshot {
  const resources = config.map((r, i) => checkResource(r, `config[${i}]`));
  return {
    revision: 1,
    virtualServices: resources.filter((r) => r.kind === 'VirtualService') as VirtualService[],
    destinationRules: resources.filter((r) => r.kind === 'DestinationRule') as DestinationRule[],
    rateLimits: resources.filter((r) => r.kind === 'LocalRateLimit') as LocalRateLimit[],
    serviceEntries: resources.filter((r) => r.kind === 'ServiceEntry') as ServiceEntry[],
    workloadEntries: resources.filter((r) => r.kind === 'WorkloadEntry') as WorkloadEntry[],
    sidecars: resources.filter((r) => r.kind === 'Sidecar') as Sidecar[],
    httpRoutes: resources.filter((r) => r.kind === 'HTTPRoute') as GatewayHTTPRoute[],
    grpcRoutes: resources.filter((r) => r.kind === 'GRPCRoute') as GatewayGRPCRoute[],
    peerAuthentications: resources.filter((r) => r.kind === 'PeerAuthentication') as PeerAuthentication[],
    authorizationPolicies: resources.filter((r) => r.kind === 'AuthorizationPolicy') as AuthorizationPolicy[],
    requestAuthentications: resources.filter((r) => r.kind === 'RequestAuthentication') as RequestAuthentication[],
    telemetries: resources.filter((r) => r.kind === 'Telemetry') as Telemetry[],
    workloads,
  };
}

/** A workload serving `service` on port 80 (HTTP) whose sidecar's inbound listener is `port`; its sidecar a current Weft one (it runs Istio's TCP metadata exchange). */
export function workload(name: string, opts: Partial<Workload> & { port?: number } = {}): Workload {
  const { port = 41000, ...rest } = opts;
  return {
    proxyId: `${name}-id`,
    name,
    namespace: 'default',
    servicePort: 80,
    labels: {},
    address: '127.0.0.1',
    inboundPort: port,
    appPort: port + 1,
    outboundPort: port + 2,
    healthy: true,
    peerExchange: true,
    ...rest,
  };
}

/** A request as a downstream codec hands it to the request path; only the head matters to routing. */
/** A proven server (service account server-sa, app=server) with an http, a tcp and an undeclared (detected) port. */
export function provenServer(): Workload {
  return workload('server', {
    service: 'server',
    serviceAccount: 'server-sa',
    labels: { app: 'server' },
    ports: [
      { name: 'http', port: 80, inboundPort: 41000, appPort: 41001 },
      { name: 'tcp-db', port: 5432, inboundPort: 41010, appPort: 41011 },
      { name: 'legacy', port: 9000, inboundPort: 41020, appPort: 41021 },
    ],
  });
}

export function request(authority: string, path = '/', headers: string[] = [], method = 'GET'): Downstream {
  const q = path.indexOf('?');
  const head: RequestHead = { method, authority, path: q < 0 ? path : path.slice(0, q), query: q < 0 ? '' : path.slice(q + 1), headers, hasBody: false, protocol: 'HTTP/1.1' };
  return { head } as Downstream;
}

/** Where a request from `proxy`'s app goes: the cluster, the error code (no_route, no_cluster, ...) of the answer, or "local <status>" for a route the sidecar answers itself. */
export function routeOf(cfg: RuntimeConfig, req: Downstream, rand = 0.5): string {
  try {
    const route = matchRoute(cfg, 'outbound', req.head);
    if (route.action.kind === 'direct') return `local ${route.action.status}`;
    if (route.action.kind !== 'forward') return `local ${route.action.kind}`;
    return decide(cfg, 'outbound', req, rand).clusterName;
  } catch (e) {
    if (e instanceof ProxyError) return `${e.status} ${e.code}`;
    throw e;
  }
}

/** What the request path does with one request, with no sockets: a local answer, or where it is forwarded and as what. */
export type Simulated =
  | { kind: 'local'; status: number; headers: Record<string, string>; body: string }
  | { kind: 'forward'; cluster: string; head: RequestHead; delayMs: number; responseHeaders: (upstream: string[]) => string[] }
  | { kind: 'error'; status: number; code: string; message: string };

/**
 * Runs the request path's pure layers on a request, as forward() does: route, fault (with the
 * given random numbers), local reply, target, rewrites and header edits.
 */
export function simulate(cfg: RuntimeConfig, req: Downstream, rand = { cluster: 0.5, delay: 0.5, abort: 0.5 }): Simulated {
  try {
    const route = matchRoute(cfg, 'outbound', req.head);
    const f = route.fault ? faultOutcome(route.fault, rand.delay, rand.abort) : { kind: 'none' as const };
    const abort = f.kind === 'abort' ? f : f.kind === 'delay' ? f.thenAbort : undefined;
    if (abort) {
      const e = new ProxyError('fault_abort', 'fault filter abort', undefined, abort);
      return { kind: 'error', status: e.status, code: e.code, message: e.message };
    }
    if (route.action.kind !== 'forward') {
      let status = 0;
      let headers: string[] = [];
      let body = '';
      const ds = { head: req.head, respond: (s: number, h: string[]) => ((status = s), (headers = h)), write: (b: Buffer) => ((body += b.toString()), true), end: () => {} } as unknown as Downstream;
      localReply(ds, route);
      return { kind: 'local', status, headers: toObject(headers), body };
    }
    const d = targetOf(cfg, route, rand.cluster, req.head.authority);
    return { kind: 'forward', cluster: d.clusterName, head: upstreamHead(req.head, route, d.target), delayMs: f.kind === 'delay' ? f.ms : 0, responseHeaders: (h) => responseHeaders(h, route, d.target) };
  } catch (e) {
    if (e instanceof ProxyError) return { kind: 'error', status: e.status, code: e.code, message: e.message };
    throw e;
  }
}

function toObject(h: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < h.length; i += 2) out[h[i]] = out[h[i]] === undefined ? h[i + 1] : `${out[h[i]]}, ${h[i + 1]}`;
  return out;
}

/**
 * Where a CONNECT to `authority` goes when the tunnel starts with a ClientHello for `serverName`
 * (undefined: none), as the sidecar decides it with no sockets: the CONNECT route, then, for an
 * internal listener, the chain the tls_inspector picks and its tcp_proxy's cluster (`rand` picks
 * among weighted ones). The cluster and its endpoints' ports, "closed" when no chain takes it, or
 * the CONNECT's answer.
 */
export function connectWithSni(cfg: RuntimeConfig, authority: string, serverName: string | undefined, rand = 0.5): { cluster: string; endpoints: string[]; chain?: string } | 'closed' | string {
  const t = connectTarget(cfg, 'outbound', authority, rand);
  if (typeof t === 'string') return t;
  if (t.kind === 'reply') return `reply ${t.status}`;
  if (t.kind === 'error') return `${t.error.status} ${t.error.code}`;
  if (t.kind === 'http') return 'http';
  let cluster = t.cluster;
  let chain: string | undefined;
  if (t.kind === 'internal') {
    const sni = cfg.listeners.get(t.listener)?.sni;
    if (!sni) return `internal listener ${t.listener} routes no TLS`;
    const c = chainFor(sni, serverName);
    if (!c) return 'closed';
    chain = c.name;
    cluster = pickTcpCluster(c.tcp, rand);
  }
  const cl = cfg.clusters.get(cluster);
  if (!cl) return `no cluster ${cluster}`;
  try {
    return { cluster, endpoints: healthyEndpoints(cfg, cluster, cl, authority, 0).map((e) => `${e.address}:${e.port}`), ...(chain ? { chain } : {}) };
  } catch (e) {
    if (e instanceof ProxyError) return { cluster, endpoints: [], ...(chain ? { chain } : {}) };
    throw e;
  }
}
