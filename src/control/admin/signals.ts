// The admin API's golden signals (GET, read-only, JSON) and tap (NDJSON, admin token required):
//   /api/v1/signals?by=workload|service|edge&window=1m[&namespace=NS][&reporter=source|destination]
//   /api/v1/signals/series?by=workload|service[&name=NAME]
//   /api/v1/signals/splits?window=1m
//   /api/v1/signals/targets
//   /api/v1/tap/NAMESPACE/WORKLOAD
// Shapes: docs/observability.md ("Golden signals").
import http from 'node:http';
import type { DestinationRuleSpec, HTTPRoute, VirtualService } from '../../api/types.ts';
import { fqdn, labelsMatch } from '../../api/rules.ts';
import type { AdsServer } from '../ads/server.ts';
import type { Registry } from '../registry/registry.ts';
import type { ConfigStore } from '../store/store.ts';
import { type Collector, peerHost } from '../signals/collector.ts';
import { type By, type Reporter, defaultReporter, requestsByWorkload, seriesOver, signalsOver, windowOf } from '../signals/views.ts';
import { WINDOW_MS } from '../signals/window.ts';
import { bearerMatches } from './token.ts';
import { endpointName } from '../../util/net.ts';

export interface SignalsDeps {
  signals?: Collector;
  store: ConfigStore;
  registry: Registry;
  ads: AdsServer;
  token: string;
}

type Answer = { status: number; body: unknown };
const bad = (status: number, error: string): Answer => ({ status, body: { error } });

/**
 * Serves the request if it is one of the routes above: true when it took it (and answers it
 * itself), false to let the admin server go on.
 */
export function serveSignals(deps: SignalsDeps, req: http.IncomingMessage, res: http.ServerResponse): boolean {
  const url = new URL(req.url ?? '/', 'http://admin');
  const parts = url.pathname.split('/').filter(Boolean);
  if (parts[0] !== 'api' || parts[1] !== 'v1' || (parts[2] !== 'signals' && parts[2] !== 'tap')) return false;
  if (req.method !== 'GET') {
    reply(res, bad(405, `${req.method} ${url.pathname}: only GET is served here`));
    return true;
  }
  if (parts[2] === 'tap') {
    tap(deps, req, res, parts.slice(3));
    return true;
  }
  let answer: Answer;
  try {
    answer = signals(deps, parts[3], url.searchParams);
  } catch (e) {
    answer = bad(500, `internal error: ${(e as Error).message}`);
  }
  reply(res, answer);
  return true;
}

function reply(res: http.ServerResponse, { status, body }: Answer): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** "30s", "1m", "15m" as ms: at most the 15 minutes kept. */
export function windowMs(v: string | null): number | string {
  if (v === null) return 60_000;
  const m = /^(\d+)(s|m)$/.exec(v);
  const ms = m ? Number(m[1]) * (m[2] === 's' ? 1000 : 60_000) : NaN;
  if (!(ms > 0) || ms > WINDOW_MS) return `window "${v}": expected a duration like 30s or 5m, at most 15m`;
  return ms;
}

function signals(deps: SignalsDeps, what: string | undefined, q: URLSearchParams): Answer {
  const c = deps.signals;
  if (!c || c.intervalMs <= 0) return bad(503, 'the control plane collects no signals (weft control --scrape-interval 0)');
  const by = (q.get('by') ?? 'workload') as By;
  const now = c.now();
  if (what === 'targets') {
    // droppedSeries: label sets the last 15 minutes' records had no room for (window.ts MAX_RECORD_SERIES).
    const droppedSeries = c.rounds.records.reduce((n, r) => n + r.dropped, 0);
    return { status: 200, body: { intervalSeconds: c.intervalMs / 1000, rounds: c.roundCount, droppedSeries, targets: c.targetStatus() } };
  }
  const win = windowMs(q.get('window'));
  if (typeof win === 'string') return bad(400, win);
  if (what === 'splits') {
    const records = c.rounds.within(win, now);
    return { status: 200, body: { window: windowOf(records, win, now), items: splits(deps, requestsByWorkload(records)) } };
  }
  if (!['workload', 'service', 'edge'].includes(by) || (what === 'series' && by === 'edge')) return bad(400, `by "${by}": expected workload, service${what === 'series' ? '' : ' or edge'}`);
  const reporter = (q.get('reporter') ?? defaultReporter(by)) as Reporter;
  if (reporter !== 'source' && reporter !== 'destination') return bad(400, `reporter "${reporter}": expected source or destination`);
  if (what === 'series') {
    const name = q.get('name') ?? undefined;
    return { status: 200, body: { by, reporter, intervalSeconds: c.intervalMs / 1000, items: cachedSeries(c, `${by}\u0000${reporter}\u0000${name ?? ''}`, () => seriesOver(c.rounds.records, by, reporter, name)) } };
  }
  if (what !== undefined) return bad(404, `no such admin endpoint: GET /api/v1/signals/${what}; try /api/v1/signals, /api/v1/signals/series, /api/v1/signals/splits, /api/v1/signals/targets`);
  const records = c.rounds.within(win, now);
  const window = windowOf(records, win, now);
  return { status: 200, body: { by, reporter, window, items: signalsOver(records, by, reporter, window.covered, q.get('namespace') ?? undefined) } };
}

/**
 * The 15 minutes of series change only when a round is recorded, while every open dashboard polls
 * them (each panel, each few seconds): answers are kept until the next record, at most
 * MAX_CACHED_SERIES of them (by, reporter and name).
 */
const seriesCache = new WeakMap<Collector, { mark: number; answers: Map<string, unknown> }>();
const MAX_CACHED_SERIES = 256;

export function cachedSeries<T>(c: Collector, key: string, compute: () => T): T {
  const records = c.rounds.records;
  const mark = records.length ? records[records.length - 1]!.t : -1;
  let entry = seriesCache.get(c);
  if (!entry || entry.mark !== mark) seriesCache.set(c, (entry = { mark, answers: new Map() }));
  if (entry.answers.has(key)) return entry.answers.get(key) as T;
  const v = compute();
  if (entry.answers.size < MAX_CACHED_SERIES) entry.answers.set(key, v);
  return v;
}

/**
 * Each VirtualService's HTTP routes: per destination, its intended weight beside the requests its
 * workloads (the host's workloads that the DestinationRule's subset labels select) served.
 */
function splits(deps: SignalsDeps, served: Map<string, number>) {
  const workloads = deps.registry.list().filter((w) => w.service);
  const hostOf = (w: (typeof workloads)[number]) => fqdn(w.service!, w.namespace);
  const rules = deps.store.list('DestinationRule');
  const subsetLabels = (host: string, subset: string, vsNamespace: string) => {
    const matching = rules.filter((r) => fqdn((r.spec as DestinationRuleSpec).host, r.metadata.namespace) === host);
    const dr = matching.find((r) => r.metadata.namespace === vsNamespace) ?? matching[0];
    return (dr?.spec as DestinationRuleSpec | undefined)?.subsets?.find((s) => s.name === subset)?.labels;
  };
  return deps.store.list('VirtualService').map((r) => {
    const vs = r as unknown as VirtualService;
    const ns = vs.metadata.namespace!;
    return {
      virtualService: `${ns}/${vs.metadata.name}`,
      hosts: (vs.spec.hosts ?? []).map((h) => fqdn(h, ns)),
      routes: ((vs.spec.http ?? []) as HTTPRoute[]).map((route, i) => {
        const dests = (route.route ?? []).map((d) => {
          const host = fqdn(d.destination.host, ns);
          const labels = d.destination.subset ? subsetLabels(host, d.destination.subset, ns) : {};
          // A subset no DestinationRule defines selects nothing.
          const ws = labels === undefined ? [] : workloads.filter((w) => hostOf(w) === host && labelsMatch(labels, w.labels));
          const names = [...new Set(ws.map((w) => `${w.namespace}/${w.name}`))].sort();
          const requests = names.reduce((s, n) => s + (served.get(`${host}\u0000${n}`) ?? 0), 0);
          return { host, subset: d.destination.subset ?? null, weight: d.weight ?? (route.route!.length === 1 ? 100 : 0), requests, workloads: names };
        });
        const total = dests.reduce((s, d) => s + d.requests, 0);
        return { route: route.name ?? String(i), requests: total, destinations: dests.map((d) => ({ ...d, observedShare: total ? Math.round((d.requests / total) * 1e6) / 1e6 : null })) };
      }),
    };
  });
}

/**
 * The workload's requests as they happen: each of its sidecars' /tap, merged into one NDJSON
 * stream with the sidecar's id on every line, until the client leaves. Tap reveals request paths
 * and identities, so it needs the admin token even though it changes nothing.
 */
function tap(deps: SignalsDeps, req: http.IncomingMessage, res: http.ServerResponse, parts: string[]): void {
  if (!bearerMatches(req.headers.authorization, deps.token)) {
    return reply(res, bad(401, "GET /api/v1/tap shows requests as they happen and needs the admin token (Authorization: Bearer <token>): the weft CLI reads it from the control plane's data directory (admin.token), or from WEFT_ADMIN_TOKEN"));
  }
  if (parts.length !== 2) return reply(res, bad(404, 'tap: expected /api/v1/tap/NAMESPACE/WORKLOAD'));
  const [namespace, workload] = parts.map(decodeURIComponent) as [string, string];
  // Proxies that proved their identity only: one on the plain-text xDS port could take any name.
  const proxies = deps.ads.proxies().filter((p) => p.workload.serviceAccount && p.workload.namespace === namespace && p.workload.name === workload);
  if (!proxies.length) {
    const connected = deps.ads.proxies().map((p) => `${p.workload.namespace}/${p.workload.name}`);
    return reply(res, bad(404, `no sidecar of workload ${namespace}/${workload} is connected (connected: ${[...new Set(connected)].sort().join(', ') || 'none'})`));
  }
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
  res.flushHeaders();
  const upstreams: http.ClientRequest[] = [];
  let open = proxies.length;
  const write = (obj: Record<string, unknown>) => {
    if (!res.destroyed) res.write(JSON.stringify(obj) + '\n');
  };
  const ended = () => {
    if (--open === 0) res.end();
  };
  for (const p of proxies) {
    const host = peerHost(p.peer);
    const port = p.workload.adminPort;
    if (!host || !port) {
      write({ type: 'error', proxy: p.id, error: port ? `its connection's address ${p.peer} is not an IP address` : 'it announced no admin port (node metadata ADMIN_PORT)' });
      ended();
      continue;
    }
    const url = `http://${endpointName(host, port)}/tap`;
    let answered = false;
    let done = false;
    const finish = (error: string) => {
      if (done) return;
      done = true;
      write({ type: 'error', proxy: p.id, error });
      ended();
    };
    const token = deps.ads.tapToken(p.id);
    const up = http.get(url, { agent: false, headers: token ? { authorization: `Bearer ${token}` } : {} }, (ur) => {
      answered = true;
      if (ur.statusCode !== 200) {
        ur.resume();
        return finish(`its admin endpoint ${url} answered ${ur.statusCode}`);
      }
      write({ type: 'listening', proxy: p.id });
      ur.setEncoding('utf8');
      let partial = '';
      ur.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop()!;
        // A line longer than this is no tap line: the sidecar is not one of ours.
        if (partial.length > 1 << 20) return up.destroy(new Error('a line longer than 1 MiB'));
        for (const l of lines) {
          if (!l) continue;
          try {
            const obj = JSON.parse(l) as Record<string, unknown>;
            if (obj && typeof obj === 'object' && !Array.isArray(obj)) write({ ...obj, proxy: p.id });
          } catch {
            // not JSON: left out
          }
        }
        // The client is slow: the sidecar's stream waits (and the sidecar drops, counting).
        if (res.writableNeedDrain) {
          ur.pause();
          res.once('drain', () => ur.resume());
        }
      });
      ur.on('end', () => finish('its tap ended (the sidecar stopped?)'));
      ur.on('error', (e) => finish(`its tap broke off: ${e.message}`));
    });
    up.setTimeout(5000, () => {
      // Only the connection and the response head are timed: once the stream flows it may be quiet.
      if (!answered) up.destroy(new Error('no answer within 5 s'));
    });
    up.on('error', (e: NodeJS.ErrnoException) => finish(`cannot reach its admin endpoint ${url}: ${e.code ?? e.message}`));
    upstreams.push(up);
  }
  res.on('close', () => {
    for (const u of upstreams) u.destroy();
  });
}
