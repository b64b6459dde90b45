// The traffic split: each VirtualService route, its destinations' weights as written beside the
// share of requests each one got (GET /api/v1/signals/splits). Without the golden signals, the
// weights alone, from the stored VirtualServices.
import { fmtPct, h, note, s, show } from './dom.js';
import { observedSplits, shortHost } from './signals.js';

/**
 * @typedef {{ vs: string, route: string, requests: number | undefined, destinations: { label: string, weight: number, share: number | undefined, requests: number | undefined, workloads: string[] }[] }} Split
 */

/** @param {HTMLElement} el @param {Record<string, import('./api.js').Got>} src */
export function renderSplit(el, src) {
  const observed = observedSplits(src);
  /** @type {Split[]} */
  let splits;
  if (observed.ok) splits = observed.items.flatMap(fromSignals);
  else if (src.resources?.ok) splits = src.resources.data.items.filter((/** @type {any} */ r) => r.kind === 'VirtualService').flatMap(fromResource);
  else return show(el, note(src.resources ? src.resources.error : 'loading…'));
  if (!splits.length) return show(el, note('No VirtualService routes HTTP traffic.'));
  const window = observed.ok ? `the last ${Math.round(observed.window)} s` : '';
  show(
    el,
    ...splits.map((sp) =>
      h(
        'div',
        { class: 'split', 'data-vs': sp.vs, 'data-route': sp.route, 'data-requests': sp.requests },
        h('h3', {}, `VirtualService ${sp.vs}`, h('small', {}, ` route ${sp.route}`)),
        h(
          'table',
          {},
          h('thead', {}, h('tr', {}, h('th', {}, 'Destination'), h('th', {}, 'Intended'), h('th', {}, 'Observed'), h('th', { class: 'legend' }, legend()))),
          h(
            'tbody',
            {},
            ...sp.destinations.map((d) =>
              h(
                'tr',
                { 'data-destination': d.label, title: d.workloads.length ? `served by ${d.workloads.join(', ')}` : '' },
                h('td', {}, d.label),
                h('td', { class: 'num intended' }, `${d.weight}%`),
                h('td', { class: 'num observed' }, d.share === undefined ? '–' : fmtPct(d.share)),
                h('td', { class: 'bar' }, bars(d.weight / 100, d.share)),
              ),
            ),
          ),
        ),
        h('p', { class: 'note' }, !observed.ok ? `Observed: unknown, ${observed.why}.` : !observed.window ? 'Observed: nothing yet, the sidecars have not been scraped since the control plane started (every few seconds).' : sp.requests ? `Observed over ${sp.requests.toLocaleString()} requests in ${window}.` : `No requests in ${window}.`),
      ),
    ),
  );
}

/** @param {any} item an item of /api/v1/signals/splits @returns {Split[]} */
function fromSignals(item) {
  return item.routes.map((/** @type {any} */ r) => ({
    vs: item.virtualService,
    route: r.route,
    requests: r.requests,
    destinations: r.destinations.map((/** @type {any} */ d) => ({
      label: `${shortHost(d.host)}${d.subset ? ` ${d.subset}` : ''}`,
      weight: d.weight,
      share: r.requests ? d.observedShare ?? 0 : undefined,
      requests: d.requests,
      workloads: d.workloads ?? [],
    })),
  }));
}

/** @param {any} vs a stored VirtualService @returns {Split[]} */
function fromResource(vs) {
  const ns = vs.metadata.namespace;
  return (vs.spec.http ?? []).map((/** @type {any} */ rule, /** @type {number} */ i) => ({
    vs: `${ns}/${vs.metadata.name}`,
    route: rule.name ?? String(i),
    requests: undefined,
    destinations: (rule.route ?? []).map((/** @type {any} */ d) => ({
      label: `${shortHost(d.destination.host.includes('.') ? d.destination.host : `${d.destination.host}.${ns}.svc.cluster.local`)}${d.destination.subset ? ` ${d.destination.subset}` : ''}`,
      // One destination without a weight takes everything (Istio).
      weight: d.weight ?? (rule.route.length === 1 ? 100 : 0),
      share: undefined,
      requests: undefined,
      workloads: [],
    })),
  }));
}

function legend() {
  return h('span', {}, h('i', { class: 'key intended' }), 'intended ', h('i', { class: 'key observed' }), 'observed');
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
