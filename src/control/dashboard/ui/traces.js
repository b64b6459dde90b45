// Recent traces (GET /api/v1/traces), and the waterfall of the one selected (GET
// /api/v1/traces/<id>): the newest until one is clicked.
import { get } from './api.js';
import { fmtMs, h, note, s, show } from './dom.js';

export const TRACE_SOURCES = { traces: '/api/v1/traces?limit=12' };

/** Span and service names without the cluster's suffix: "hello.default.svc.cluster.local:80/*" -> "hello:80/*". @param {string} n */
const brief = (n) => n.replace(/\.([a-z0-9-]+)\.svc\.cluster\.local\b/g, (_, ns) => (ns === 'default' ? '' : `.${ns}`));

/** @type {string | undefined} the trace the user clicked */
let chosen;
/** @type {string | undefined} the span whose attributes are open */
let openSpan;

/** @param {HTMLElement} el @param {Record<string, import('./api.js').Got>} src */
export async function renderTraces(el, src) {
  const got = src.traces;
  if (!got?.ok) return show(el, note(!got ? 'loading…' : got.missing ? 'No traces: this control plane keeps none (GET /api/v1/traces is not found).' : got.error));
  const items = got.data.items;
  if (!items.length) return show(el, note('No traces yet. Sidecars report them when the mesh config (ConfigMap istio-system/istio) turns tracing on: enableTracing: true, and defaultConfig.tracing.sampling for the percent of requests sampled (1 by default).'));
  const selected = items.find((/** @type {any} */ t) => t.traceId === chosen)?.traceId ?? items[0].traceId;
  const detail = await get(`/api/v1/traces/${selected}`);
  const list = h(
    'table',
    { class: 'trace-list' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Trace'), h('th', { class: 'w-time' }, 'Started'), h('th', { class: 'w-num' }, 'Duration'), h('th', { class: 'w-num' }, 'Spans'))),
    h(
      'tbody',
      {},
      ...items.map((/** @type {any} */ t) => {
        const row = h(
          'tr',
          { class: t.traceId === selected ? 'sel' : '', 'data-trace': t.traceId, title: t.traceId },
          h('td', { title: `${t.rootService} ${t.operation}` }, h('div', {}, `${t.rootService} `, h('b', {}, brief(t.operation))), h('div', { class: 'sub' }, t.services.join(' → '))),
          h('td', { class: 'num' }, new Date(t.start).toLocaleTimeString()),
          h('td', { class: 'num' }, fmtMs(t.durationMs)),
          h('td', { class: 'num' }, t.spanCount, t.error ? h('span', { class: 'pill bad' }, 'error') : null),
        );
        row.addEventListener('click', () => {
          chosen = t.traceId;
          openSpan = undefined;
          renderTraces(el, src);
        });
        return row;
      }),
    ),
  );
  show(el, h('div', { class: 'traces' }, h('div', {}, list, h('p', { class: 'note' }, `${got.data.traces} trace(s), ${got.data.spans} span(s) kept; the newest ${items.length} shown.`)), detail.ok ? waterfall(detail.data, el, src) : note(detail.error)));
}

/**
 * The spans of one trace as bars on its time line, each under its parent.
 * @param {{ traceId: string, summary: any, spans: any[] }} trace
 * @param {HTMLElement} el
 * @param {Record<string, import('./api.js').Got>} src
 */
function waterfall(trace, el, src) {
  const t0 = trace.spans.reduce((m, sp) => (BigInt(sp.startUnixNano) < m ? BigInt(sp.startUnixNano) : m), BigInt(trace.spans[0].startUnixNano));
  const total = Math.max(trace.summary.durationMs, 0.001);
  const ids = new Set(trace.spans.map((sp) => sp.spanId));
  /** @type {Map<string, any[]>} */
  const children = new Map();
  for (const sp of trace.spans) {
    const parent = sp.parentSpanId && ids.has(sp.parentSpanId) ? sp.parentSpanId : '';
    children.set(parent, [...(children.get(parent) ?? []), sp]);
  }
  /** @type {{ sp: any, depth: number }[]} */
  const rows = [];
  /** @param {string} parent @param {number} depth */
  const walk = (parent, depth) => {
    for (const sp of children.get(parent) ?? []) {
      rows.push({ sp, depth });
      walk(sp.spanId, depth + 1);
    }
  };
  walk('', 0);
  return h(
    'div',
    { class: 'waterfall', 'data-trace': trace.traceId },
    h('h3', {}, `${trace.summary.rootService} ${brief(trace.summary.operation)}`, h('small', {}, ` ${fmtMs(trace.summary.durationMs)} · trace ${trace.traceId}`)),
    ...rows.flatMap(({ sp, depth }) => {
      const offset = (Number(BigInt(sp.startUnixNano) - t0) / 1e6 / total) * 100;
      const width = Math.max((sp.durationMs / total) * 100, 0.4);
      const row = h(
        'div',
        { class: `span${sp.spanId === openSpan ? ' open' : ''}`, 'data-span': sp.spanId, title: 'attributes' },
        h('div', { class: 'lbl' }, h('span', { class: 'indent' }, '\u2003'.repeat(depth)), h('span', { class: `kind ${sp.kind}` }, sp.kind === 'SERVER' ? 'server' : sp.kind === 'CLIENT' ? 'client' : sp.kind.toLowerCase()), ` ${sp.service} `, h('b', { title: sp.name }, brief(sp.name))),
        h('div', { class: 'track' }, s('svg', { viewBox: '0 0 100 10', preserveAspectRatio: 'none' }, s('rect', { x: 0, y: 0, width: 100, height: 10, class: 'track' }), s('rect', { x: Math.min(offset, 99.6), y: 0, width: Math.min(width, 100 - Math.min(offset, 99.6)), height: 10, class: `sp${sp.error ? ' err' : ''}` })), h('span', { class: 'dur' }, fmtMs(sp.durationMs))),
      );
      row.addEventListener('click', () => {
        openSpan = openSpan === sp.spanId ? undefined : sp.spanId;
        renderTraces(el, src);
      });
      const attrs = sp.spanId === openSpan ? h('table', { class: 'attrs' }, h('tbody', {}, ...Object.entries(sp.attributes).sort().map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, String(v)))))) : null;
      return [row, attrs];
    }),
  );
}
