// The life of one proxied HTTP request, inbound or outbound (docs/request-lifecycle.md):
//   authority -> virtual host -> route -> weighted cluster -> endpoint (round robin) -> undici pool.
// Failures become ProxyErrors, and errors.ts alone turns them into responses.
import type http from 'node:http';
import type { RuntimeConfig } from '../config.ts';
import { ProxyError, sendError, upstreamError } from '../errors.ts';
import type { ListenerConfig, RouteTable } from '../xds-client/convert.ts';
import type { Pools } from '../upstream/pools.ts';
import type { Dispatcher } from 'undici';
import { findRoute, findVirtualHost, pickCluster } from './router.ts';
import type { Stats } from '../stats.ts';

// Hop-by-hop headers (RFC 9110 7.6.1) and proxy-only ones never cross the sidecar.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-authorization', 'proxy-authenticate', 'host']);

/** Istio's default retry: a request that never reached an app (connect failure) is tried again, up to twice. */
const CONNECT_RETRIES = 2;

export interface ForwardContext {
  config: () => RuntimeConfig;
  pools: Pools;
  stats: Stats;
  rr: Map<string, number>;
}

export function handleRequest(ctx: ForwardContext, listenerName: string, req: http.IncomingMessage, res: http.ServerResponse): void {
  const cfg = ctx.config();
  forward(ctx, cfg, listenerName, req, res).catch((e: unknown) => {
    if (res.destroyed) {
      // The client went away first; nobody is left to answer. Counted as Envoy and nginx do.
      ctx.stats.count(e instanceof ProxyError ? (e.cluster ?? '-') : '-', 499, 'downstream_closed');
      return;
    }
    const err = e instanceof ProxyError ? e : new ProxyError('upstream_reset', `internal error: ${(e as Error).message}`);
    ctx.stats.count(err.cluster ?? '-', err.status, err.code);
    sendError(res, err);
  });
}

function routeTableFor(cfg: RuntimeConfig, l: ListenerConfig | undefined, listenerName: string): RouteTable {
  if (!l) throw new ProxyError('no_config', `listener ${listenerName} has no config`);
  if (l.inlineRoutes) return l.inlineRoutes;
  const t = cfg.routes.get(l.rdsName!);
  if (!t) throw new ProxyError('no_config', `route configuration ${l.rdsName} of listener ${listenerName} has not arrived from the control plane`);
  return t;
}

async function forward(ctx: ForwardContext, cfg: RuntimeConfig, listenerName: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const target = requestTarget(req);
  const table = routeTableFor(cfg, cfg.listeners.get(listenerName), listenerName);
  const vh = findVirtualHost(table, target.authority);
  if (!vh) throw new ProxyError('no_route', `no route for host "${target.authority}": no service or VirtualService in the mesh has that name`);
  const route = findRoute(vh, {
    path: target.path,
    query: target.query,
    header: (n) => (n === ':method' ? req.method : n === ':authority' ? target.authority : n === ':scheme' ? 'http' : headerValue(req.headers[n])),
  });
  if (!route) throw new ProxyError('no_route', `no route of ${vh.name} matches ${req.method} ${target.path}`);
  const clusterName = pickCluster(route, Math.random());
  const cluster = cfg.clusters.get(clusterName);
  if (!cluster) throw new ProxyError('no_cluster', `route ${route.name} points at cluster ${clusterName}, which the sidecar does not have`, clusterName);
  const all = cluster.staticEndpoints ?? cfg.endpoints.get(cluster.edsName!) ?? [];
  const healthy = all.filter((e) => e.healthy);
  if (healthy.length === 0) throw new ProxyError('no_healthy_endpoint', `no healthy endpoint in cluster ${clusterName}`, clusterName);

  const headers: Record<string, string | string[]> = {};
  // Headers named in Connection are hop-by-hop too; "keep-alive" and "close" name none.
  const conn = req.headers.connection;
  const connectionTokens = conn && conn !== 'keep-alive' && conn !== 'close' ? new Set(conn.toLowerCase().split(',').map((s) => s.trim())) : undefined;
  for (const k in req.headers) {
    const v = req.headers[k];
    if (v === undefined || HOP_BY_HOP.has(k) || connectionTokens?.has(k)) continue;
    headers[k] = v;
  }
  headers.host = target.authority;
  const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
  const path = target.query ? `${target.path}?${target.query}` : target.path;

  let attempt = 0;
  for (;;) {
    const i = ctx.rr.get(clusterName) ?? 0;
    ctx.rr.set(clusterName, (i + 1) % 1_000_000_007);
    const ep = healthy[i % healthy.length];
    const pool = ctx.pools.get(ep.address, ep.port, cluster.connectTimeoutMs);
    const outcome = await exchange(pool, { path, method: req.method ?? 'GET', headers, body: hasBody ? req : null }, res, route.timeoutMs);
    if (outcome.ok) {
      ctx.stats.count(clusterName, outcome.status);
      return;
    }
    const err = upstreamError(outcome.error, clusterName, `${ep.address}:${ep.port}`, outcome.timedOut);
    const retriable = (err.code === 'connect_refused' || err.code === 'connect_failed') && !hasBody && attempt < CONNECT_RETRIES && healthy.length > 1;
    if (!retriable) throw err;
    attempt += 1;
  }
}

type Outcome = { ok: true; status: number } | { ok: false; error: unknown; timedOut: boolean };

interface Controller {
  abort(reason: Error): void;
  pause(): void;
  resume(): void;
}

/**
 * One request/response exchange with an upstream, streamed straight between the downstream
 * response and undici's dispatcher (no intermediate streams), with backpressure both ways.
 * Resolves { ok: false } only if nothing was sent downstream yet, so that the caller may retry or
 * answer with an error; a failure after the response started cuts the downstream connection.
 */
function exchange(
  pool: Dispatcher,
  opts: { path: string; method: string; headers: Record<string, string | string[]>; body: http.IncomingMessage | null },
  res: http.ServerResponse,
  timeoutMs: number,
): Promise<Outcome> {
  return new Promise((resolve) => {
    let controller: Controller | undefined;
    let started = false;
    let timedOut = false;
    let done = false;
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            controller?.abort(new Error('route timeout'));
          }, timeoutMs)
        : undefined;
    // The downstream went away before the response finished: stop the upstream request.
    const onDownstreamClose = () => {
      if (!res.writableFinished) controller?.abort(new Error('downstream closed'));
    };
    const finish = (o: Outcome) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      res.off('close', onDownstreamClose);
      resolve(o);
    };
    res.on('close', onDownstreamClose);
    const handler = {
      onRequestStart(c: Controller) {
        controller = c;
      },
      onResponseStart(c: Controller, statusCode: number, headers: Record<string, string | string[] | undefined>) {
        if (statusCode < 200) return; // 1xx: the final response follows
        started = true;
        if (timer) clearTimeout(timer);
        const out: Record<string, string | string[]> = {};
        for (const k in headers) {
          const v = headers[k];
          if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
        }
        // Headers, a small body and the end usually arrive in one tick: cork so that they leave in
        // one write (a syscall per response is most of a proxy's cost; docs/performance.md).
        res.cork();
        process.nextTick(uncork, res);
        res.writeHead(statusCode, out);
        res.on('drain', () => c.resume());
      },
      onResponseData(c: Controller, chunk: Buffer) {
        if (!res.write(chunk)) c.pause();
      },
      onResponseEnd() {
        res.end();
        finish({ ok: true, status: res.statusCode });
      },
      onResponseError(_c: Controller, err: Error) {
        if (started) {
          res.destroy(err);
          finish({ ok: true, status: res.statusCode });
        } else finish({ ok: false, error: err, timedOut });
      },
    };
    pool.dispatch(
      { path: opts.path, method: opts.method as Dispatcher.HttpMethod, headers: opts.headers, body: opts.body, headersTimeout: 0, bodyTimeout: 0 },
      handler as unknown as Dispatcher.DispatchHandler,
    );
  });
}

function uncork(res: http.ServerResponse): void {
  res.uncork();
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

/** Absolute-form (`GET http://svc/path`, what HTTP_PROXY clients send) or origin-form with Host. */
function requestTarget(req: http.IncomingMessage): { authority: string; path: string; query: string } {
  const raw = req.url ?? '/';
  let authority: string;
  let pathAndQuery: string;
  if (raw.startsWith('/')) {
    authority = req.headers.host ?? '';
    pathAndQuery = raw;
  } else {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new ProxyError('bad_request', `request target "${raw.slice(0, 200)}" is neither a path nor an absolute URL`);
    }
    if (u.protocol !== 'http:') throw new ProxyError('bad_request', `${u.protocol} URLs are not supported by the outbound proxy; use http://`);
    authority = u.host;
    pathAndQuery = u.pathname + u.search;
  }
  if (!authority) throw new ProxyError('bad_request', `${req.method} ${raw.slice(0, 200)}: no Host header and no absolute URL, so there is no service to route to`);
  const q = pathAndQuery.indexOf('?');
  return q < 0 ? { authority, path: pathAndQuery, query: '' } : { authority, path: pathAndQuery.slice(0, q), query: pathAndQuery.slice(q + 1) };
}
