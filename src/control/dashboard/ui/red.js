// Per-service RED charts: request rate, error share and p99 duration over the last 15 minutes,
// one point per scrape round (GET /api/v1/signals/series?by=service).
import { fmtMs, fmtPct, fmtRate, h, note, s, show } from './dom.js';
import { serviceSeries, shortHost } from './signals.js';

const SPAN_MS = 15 * 60_000;

/** @param {HTMLElement} el @param {Record<string, import('./api.js').Got>} src */
export function renderRed(el, src) {
  const series = serviceSeries(src);
  if (!series.ok) return show(el, note(`No series: ${series.why}.`));
  if (!series.items.length) return show(el, note('No service has had requests in the last 15 minutes.'));
  const end = Math.max(...series.items.flatMap((it) => it.points.map((p) => Date.parse(p.t))));
  const roundMs = (src.series?.ok ? src.series.data.intervalSeconds : 5) * 1000;
  show(
    el,
    ...series.items.map((it) => {
      const pts = it.points.map((p) => ({ t: Date.parse(p.t), rps: p.rps, err: p.errorRatio, p99: p.latencyMs?.p99 ?? null }));
      // The figure beside each chart: the latest round with requests.
      const last = [...pts].reverse().find((p) => p.rps > 0);
      return h(
        'div',
        { class: 'red', 'data-service': shortHost(it.name) },
        h('div', { class: 'name' }, shortHost(it.name)),
        chart('rate', last ? fmtRate(last.rps) : '–', pts.map((p) => [p.t, p.rps]), end, '', 0, fmtRate, roundMs),
        chart('errors', last?.err == null ? '–' : fmtPct(last.err), pts.map((p) => [p.t, p.err]), end, 'err', 0.01, fmtPct, roundMs),
        chart('p99', last?.p99 == null ? '–' : fmtMs(last.p99), pts.map((p) => [p.t, p.p99]), end, '', 0, fmtMs, roundMs),
      );
    }),
    h('p', { class: 'note' }, `Last 15 minutes, to ${new Date(end).toLocaleTimeString()}: one bar per ${roundMs / 1000} s round; none where a round had no requests.`),
  );
}

/**
 * A small bar chart over the last 15 minutes: one bar per scrape round, ending at its time; a
 * round without a value (no requests) has none.
 * @param {string} title
 * @param {string} now
 * @param {[number, number | null][]} values [time ms, value]
 * @param {number} end
 * @param {string} cls
 * @param {number} minMax the y axis reaches at least this
 * @param {(v: number) => string} fmt
 * @param {number} roundMs
 */
function chart(title, now, values, end, cls, minMax, fmt, roundMs) {
  const max = Math.max(minMax, ...values.map(([, v]) => v ?? 0)) || 1;
  const x = (/** @type {number} */ t) => ((t - (end - SPAN_MS)) / SPAN_MS) * 300;
  const w = Math.max((roundMs / SPAN_MS) * 300, 2);
  const bars = values.filter(([t, v]) => v !== null && t > end - SPAN_MS).map(([t, v]) => {
    const hgt = Math.max(((v ?? 0) / max) * 38, v ? 1 : 0.5);
    return s('rect', { x: (x(t) - w).toFixed(2), y: (38 - hgt).toFixed(2), width: w.toFixed(2), height: hgt.toFixed(2) });
  });
  return h(
    'div',
    { class: `chart ${cls}`, 'data-chart': title },
    h('div', { class: 'head' }, h('span', {}, `${title} `, h('b', {}, now)), h('span', { class: 'peak' }, `top ${fmt(max)}`)),
    s('svg', { viewBox: '0 0 300 40', preserveAspectRatio: 'none' }, s('line', { x1: 0, y1: 38, x2: 300, y2: 38, class: 'base' }), ...bars),
  );
}
