// The service graph: workloads that call (left) and services (right), one arrow per live edge,
// labelled with its rate, error share, p99 and whether it runs over mutual TLS.
import { fmtMs, fmtPct, fmtRate, h, note, s, show } from './dom.js';
import { boxOf, liveEdges } from './signals.js';

const COL_W = 560;
/** The straight run into a box, under the edge's label. */
const LABEL_RUN = 250;
const ROW_H = 64;
const NODE_W = 180;
const NODE_H = 34;

/** @param {HTMLElement} el @param {Record<string, import('./api.js').Got>} src */
export function renderGraph(el, src) {
  const live = liveEdges(src);
  const edges = live.ok ? live.edges : [];
  // Nodes: every service and every workload that serves none (a pure client), and whatever an edge names.
  /** @type {Set<string>} */
  const names = new Set();
  const box = boxOf(src);
  if (src.endpoints?.ok) for (const w of src.endpoints.data.workloads) names.add(box(w.namespace, w.name));
  for (const e of edges) names.add(e.source).add(e.destination);
  if (!names.size) return show(el, note(src.endpoints?.ok ? 'No workload is registered.' : (src.endpoints?.error ?? 'loading…')));
  const col = columns([...names].sort(), edges);
  /** @type {Map<string, {x: number, y: number}>} */
  const at = new Map();
  /** @type {Map<number, number>} */
  const rowsIn = new Map();
  for (const n of [...names].sort()) {
    const c = col.get(n) ?? 0;
    const r = rowsIn.get(c) ?? 0;
    rowsIn.set(c, r + 1);
    at.set(n, { x: 20 + c * COL_W, y: 20 + r * ROW_H });
  }
  const width = 40 + Math.max(...[...col.values()]) * COL_W + NODE_W;
  const height = 40 + (Math.max(...rowsIn.values()) - 1) * ROW_H + NODE_H + 24;
  const svg = s(
    'svg',
    { viewBox: `0 0 ${width} ${height}`, width, height, class: 'graph', role: 'img', 'aria-label': 'service graph' },
    s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }))),
    ...edges.map((e, i) => edgeShape(e, /** @type {any} */ (at.get(e.source)), /** @type {any} */ (at.get(e.destination)), edges.slice(0, i).filter((o) => o.destination === e.destination).length)),
    ...[...at].map(([n, p]) => s('g', { class: `node ${isService(n, src) ? 'service' : 'workload'}`, 'data-node': n }, s('rect', { x: p.x, y: p.y, width: NODE_W, height: NODE_H, rx: 6 }), s('text', { x: p.x + NODE_W / 2, y: p.y + NODE_H / 2 + 5, 'text-anchor': 'middle' }, n))),
  );
  const rows = edges.flatMap((e) => [
    h('tr', { class: 'edge-row', 'data-edge': `${e.source} -> ${e.destination}` }, h('td', {}, `${e.source} -> ${e.destination}`), h('td', { class: 'num' }, fmtRate(e.rate)), errCell(e.errorRatio), h('td', { class: 'num' }, p99Text(e)), h('td', {}, mtlsPill(e.mtls))),
    // With several workloads behind the service, each one's own figures, exact.
    ...(e.parts.length > 1
      ? e.parts.map((p) => h('tr', { class: 'part' }, h('td', {}, ` to ${p.workload}`), h('td', { class: 'num' }, fmtRate(p.rate)), errCell(p.errorRatio), h('td', { class: 'num' }, p.p99Ms === null ? '–' : fmtMs(p.p99Ms)), h('td', {}, p.mtlsShare === null ? '' : `${fmtPct(p.mtlsShare)} mTLS`)))
      : []),
  ]);
  const table = h('table', { class: 'edges' }, h('thead', {}, h('tr', {}, h('th', {}, 'Edge'), h('th', {}, 'Rate'), h('th', {}, 'Errors'), h('th', {}, 'p99'), h('th', {}, 'mTLS'))), h('tbody', {}, ...rows));
  show(el, h('div', { class: 'graph-wrap' }, svg), live.ok ? (edges.length ? table : note('No requests in the last minute.')) : note(`No live edges: ${live.why}.`));
}

/** @param {string} n @param {Record<string, import('./api.js').Got>} src */
function isService(n, src) {
  const box = boxOf(src);
  return src.endpoints?.ok && src.endpoints.data.workloads.some((/** @type {any} */ w) => w.service && box(w.namespace, w.name) === n);
}

/**
 * Each node's column: a node nothing calls is in column 0, any other one column right of its
 * furthest caller (cycles stop at the number of nodes).
 * @param {string[]} names
 * @param {import('./signals.js').Edge[]} edges
 */
function columns(names, edges) {
  /** @type {Map<string, number>} */
  const col = new Map(names.map((n) => [n, 0]));
  for (let i = 0; i < names.length; i++) {
    let moved = false;
    for (const e of edges) {
      const want = (col.get(e.source) ?? 0) + 1;
      if (e.source !== e.destination && (col.get(e.destination) ?? 0) < want && want < names.length) {
        col.set(e.destination, want);
        moved = true;
      }
    }
    if (!moved) break;
  }
  // A service no one calls still goes right of the clients, where services are.
  return col;
}

/**
 * An arrow from a's right side to b's left side, its figures written just before the arrowhead,
 * over the line: edges into different boxes never share a label's place, and edges into one box
 * stack theirs (nth: how many edges into b came before this one).
 * @param {import('./signals.js').Edge} e
 * @param {{x: number, y: number}} a
 * @param {{x: number, y: number}} b
 * @param {number} nth
 */
function edgeShape(e, a, b, nth) {
  const x1 = a.x + NODE_W;
  const y1 = a.y + NODE_H / 2;
  const x2 = b.x;
  const y2 = b.y + NODE_H / 2;
  // A bend from a, then a straight run into b under the label (where the boxes leave room for it).
  const bx = x2 - x1 > LABEL_RUN + 60 ? x2 - LABEL_RUN : x2;
  const mx = (x1 + bx) / 2;
  const err = e.errorRatio ?? 0;
  const cls = `edge ${err > 0.05 ? 'bad' : err > 0 ? 'warn' : 'ok'} ${e.mtls === 'mutual_tls' ? 'mtls' : 'plain'}`;
  return s(
    'g',
    { class: cls, 'data-edge': `${e.source} -> ${e.destination}` },
    s('title', {}, `${e.source} -> ${e.destination}`),
    s('path', { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${bx},${y2} L${x2},${y2}`, 'marker-end': 'url(#arrow)' }),
    s('text', { x: x2 - 12, y: y2 - 7 - nth * 14, 'text-anchor': 'end', class: 'label' }, `${fmtRate(e.rate)} · ${e.errorRatio === null ? '–' : fmtPct(e.errorRatio)} errors · p99 ${p99Text(e)} · ${MTLS_TEXT[e.mtls]}`),
  );
}

const MTLS_TEXT = { mutual_tls: 'mTLS', mixed: 'partly mTLS', none: 'plain text', unknown: 'mTLS unknown' };

/** @param {import('./signals.js').Edge['mtls']} m */
function mtlsPill(m) {
  return h('span', { class: `pill ${m === 'mutual_tls' ? 'ok' : m === 'unknown' ? '' : 'warn'}` }, MTLS_TEXT[m]);
}

/** @param {import('./signals.js').Edge} e */
function p99Text(e) {
  return e.p99Ms === null ? '–' : `${e.p99Bound ? '≤ ' : ''}${fmtMs(e.p99Ms)}`;
}

/** @param {number | null} r */
function errCell(r) {
  return h('td', { class: `num ${r ? 'bad' : ''}` }, r === null ? '–' : fmtPct(r));
}
