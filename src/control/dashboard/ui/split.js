// The traffic split: each VirtualService route with more than one destination, its weights as
// written beside the share of requests each destination got.
import { fmtPct, h, note, s, show } from './dom.js';
import { observedSplit } from './signals.js';

/** @param {HTMLElement} el @param {Record<string, import('./api.js').Got>} src */
export function renderSplit(el, src) {
  if (!src.resources?.ok) return show(el, note(src.resources ? src.resources.error : 'loading…'));
  const vss = src.resources.data.items.filter((/** @type {any} */ r) => r.kind === 'VirtualService');
  const observed = observedSplit(src);
  const blocks = [];
  for (const vs of vss) {
    const ns = vs.metadata.namespace;
    (vs.spec.http ?? []).forEach((/** @type {any} */ rule, /** @type {number} */ i) => {
      const route = rule.route ?? [];
      if (route.length < 2) return;
      const seen = observed.ok ? observed.of(vs, i) : undefined;
      const total = seen ? Object.values(seen).reduce((a, b) => a + b, 0) : 0;
      const rows = route.map((/** @type {any} */ d) => {
        const label = `${d.destination.host}${d.destination.subset ? ` ${d.destination.subset}` : ''}${d.destination.port?.number ? `:${d.destination.port.number}` : ''}`;
        const want = d.weight ?? 0;
        const got = seen && total ? (seen[destKey(d.destination)] ?? 0) / total : undefined;
        return h(
          'tr',
          { 'data-destination': label },
          h('td', {}, label),
          h('td', { class: 'num intended' }, `${want}%`),
          h('td', { class: 'bar' }, bars(want / 100, got)),
          h('td', { class: 'num observed' }, got === undefined ? '–' : fmtPct(got)),
        );
      });
      blocks.push(
        h(
          'div',
          { class: 'split', 'data-vs': `${ns}/${vs.metadata.name}`, 'data-rule': i },
          h('h3', {}, `VirtualService ${ns}/${vs.metadata.name}`, h('small', {}, ` http[${i}]${rule.name ? ` ${rule.name}` : ''}`)),
          h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Destination'), h('th', {}, 'Intended'), h('th', {}, ''), h('th', {}, 'Observed'))), h('tbody', {}, ...rows)),
          h('p', { class: 'note' }, seen ? `observed over ${total.toLocaleString()} requests in the last ${observed.window}` : observed.ok ? 'no requests seen yet' : observed.why),
        ),
      );
    });
  }
  if (!blocks.length) return show(el, note('No VirtualService splits traffic between destinations.'));
  show(el, ...blocks);
}

/** @param {any} d an Istio Destination */
export function destKey(d) {
  return `${d.host}|${d.subset ?? ''}|${d.port?.number ?? ''}`;
}

/**
 * Two bars, one over the other: the intended share, and the observed one where there is one.
 * @param {number} want 0..1
 * @param {number | undefined} got 0..1
 */
function bars(want, got) {
  const w = (/** @type {number} */ r) => Math.max(0, Math.min(100, r * 100));
  return s(
    'svg',
    { viewBox: '0 0 100 14', preserveAspectRatio: 'none', class: 'bars' },
    s('rect', { x: 0, y: 1, width: 100, height: 5, class: 'track' }),
    s('rect', { x: 0, y: 1, width: w(want), height: 5, class: 'intended' }),
    s('rect', { x: 0, y: 8, width: 100, height: 5, class: 'track' }),
    got === undefined ? null : s('rect', { x: 0, y: 8, width: w(got), height: 5, class: 'observed' }),
  );
}
