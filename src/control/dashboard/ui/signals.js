// Reading the golden signals (docs/observability.md, "Admin API") into what the panels draw.

/** The window the live panels show. */
export const WINDOW = '1m';

/** What the page GETs for them (app.js adds these to its sources). */
export const SIGNAL_SOURCES = {
  edges: `/api/v1/signals?by=edge&window=${WINDOW}`,
  // The same edges as their servers reported them: only they know whether a request came over mTLS.
  edgesAtServer: `/api/v1/signals?by=edge&window=${WINDOW}&reporter=destination`,
  series: '/api/v1/signals/series?by=service',
  splits: `/api/v1/signals/splits?window=${WINDOW}`,
};

/**
 * One arrow of the graph: a client workload (or a service's workloads) calling a service, all the
 * called service's workloads together.
 * `p99Ms` is exact where one workload served the edge; with several it is the highest of theirs
 * (`p99Bound`), which the edge's p99 cannot exceed.
 * @typedef {{ source: string, destination: string, requests: number, rate: number, errorRatio: number | null, p99Ms: number | null, p99Bound: boolean, mtls: 'mutual_tls' | 'none' | 'mixed' | 'unknown', parts: Part[] }} Edge
 * @typedef {{ name: string, workload: string, rate: number, errorRatio: number | null, p99Ms: number | null, mtlsShare: number | null }} Part
 */

/** "my-backend-service.default.svc.cluster.local" -> "my-backend-service" (its namespace when it is not `default`). @param {string} host */
export function shortHost(host) {
  const m = /^([^.]+)\.([^.]+)\.svc\.cluster\.local$/.exec(host);
  return m ? (m[2] === 'default' ? m[1] : `${m[1]}.${m[2]}`) : host;
}

/** "default/client" -> "client"; other namespaces keep theirs. @param {string} ns @param {string} w */
export function shortWorkload(ns, w) {
  return ns === 'default' || ns === 'unknown' ? w : `${ns}/${w}`;
}

/**
 * The graph's box for a workload: its service, where it serves one (so that a service calling
 * another is one box with arrows in and out), else the workload itself (a client).
 * @param {Record<string, import('./api.js').Got>} src
 * @returns {(ns: string, workload: string) => string}
 */
export function boxOf(src) {
  /** @type {Map<string, string>} */
  const service = new Map();
  if (src.endpoints?.ok) {
    for (const w of src.endpoints.data.workloads) if (w.service) service.set(`${w.namespace}/${w.name}`, shortHost(w.service.includes('.') ? w.service : `${w.service}.${w.namespace}.svc.cluster.local`));
  }
  return (ns, workload) => service.get(`${ns}/${workload}`) ?? shortWorkload(ns, workload);
}

/**
 * The live edges over the window: who calls which service, how often, how many fail, how slow,
 * over what.
 * @param {Record<string, import('./api.js').Got>} src
 * @returns {{ ok: true, edges: Edge[] } | { ok: false, why: string }}
 */
export function liveEdges(src) {
  if (!src.edges?.ok) return { ok: false, why: unavailable(src.edges) };
  const box = boxOf(src);
  /** @param {any} it an edge item */
  const pairOf = (it) => {
    const source = box(it.source.namespace, it.source.workload);
    const destination = it.destination.service === 'unknown' ? shortWorkload(it.destination.namespace, it.destination.workload) : shortHost(it.destination.service);
    return { source, destination, key: `${source} -> ${destination}` };
  };
  // Whether requests came over mTLS only their servers know: the same edges, as the servers reported them.
  /** @type {Map<string, any>} */
  const atServer = new Map();
  /** @type {Map<string, { requests: number, mtls: number }>} */
  const serverPair = new Map();
  if (src.edgesAtServer?.ok) {
    for (const it of src.edgesAtServer.data.items) {
      atServer.set(it.name, it);
      const { key } = pairOf(it);
      const p = serverPair.get(key) ?? { requests: 0, mtls: 0 };
      p.requests += it.requests;
      p.mtls += it.mtls?.requests ?? 0;
      serverPair.set(key, p);
    }
  }
  /** @type {Map<string, Edge & { errors: number }>} */
  const byPair = new Map();
  for (const it of src.edges.data.items) {
    if (!it.requests) continue;
    const { source, destination, key } = pairOf(it);
    const e = byPair.get(key) ?? { source, destination, requests: 0, errors: 0, rate: 0, errorRatio: null, p99Ms: null, p99Bound: false, mtls: 'unknown', parts: [] };
    const server = atServer.get(it.name);
    e.parts.push({ name: it.name, workload: shortWorkload(it.destination.namespace, it.destination.workload), rate: it.rps, errorRatio: it.errorRatio, p99Ms: it.latencyMs?.p99 ?? null, mtlsShare: server ? server.mtls?.share ?? null : null });
    e.requests += it.requests;
    e.errors += it.errors;
    e.rate += it.rps;
    byPair.set(key, e);
  }
  const edges = [...byPair.entries()].map(([key, { errors, ...e }]) => {
    const p99s = e.parts.map((p) => p.p99Ms).filter((x) => x !== null);
    // None of the edge's requests reported by a server as from this source: they came without a
    // certificate naming it, in plain text.
    const seen = serverPair.get(key);
    const mtls = !src.edgesAtServer?.ok ? 'unknown' : !seen?.requests || !seen.mtls ? 'none' : seen.mtls === seen.requests ? 'mutual_tls' : 'mixed';
    return { ...e, errorRatio: e.requests ? errors / e.requests : null, p99Ms: p99s.length ? Math.max(...p99s) : null, p99Bound: p99s.length > 1, mtls: /** @type {Edge['mtls']} */ (mtls) };
  });
  return { ok: true, edges };
}

/**
 * Each VirtualService route's destinations, their weights and what they got.
 * @param {Record<string, import('./api.js').Got>} src
 * @returns {{ ok: true, window: number, items: any[] } | { ok: false, why: string }}
 */
export function observedSplits(src) {
  if (!src.splits?.ok) return { ok: false, why: unavailable(src.splits) };
  return { ok: true, window: src.splits.data.window.covered, items: src.splits.data.items };
}

/**
 * Each service's points over the last 15 minutes.
 * @param {Record<string, import('./api.js').Got>} src
 * @returns {{ ok: true, items: { name: string, points: any[] }[] } | { ok: false, why: string }}
 */
export function serviceSeries(src) {
  if (!src.series?.ok) return { ok: false, why: unavailable(src.series) };
  return { ok: true, items: src.series.data.items };
}

/** @param {import('./api.js').Got | undefined} got */
function unavailable(got) {
  if (!got) return 'loading…';
  if (got.ok) return '';
  return got.missing ? 'this control plane serves no golden signals (GET /api/v1/signals is not found)' : got.error;
}
