// The config panel: every stored resource with its validation state (what `weft analyze` says of
// it, and what it has that Weft accepts without applying yet), and which config revision each
// proxy has ACKed, type by type, with any NACK's reason.
import { h, note, show } from './dom.js';

/**
 * @param {HTMLElement} el
 * @param {{ version?: import('./api.js').Got, resources?: import('./api.js').Got, analysis?: import('./api.js').Got, proxies?: import('./api.js').Got }} src
 */
export function renderConfig(el, src) {
  const latest = src.version?.ok ? src.version.data.revision : undefined;
  show(el, h('div', { class: 'cols' }, resourcesTable(src.resources, src.analysis), proxiesTable(src.proxies, latest)));
}

/** @param {any} r */
const keyOf = (r) => `${r.kind} ${r.metadata.namespace}/${r.metadata.name}`;

/**
 * @param {import('./api.js').Got | undefined} resources
 * @param {import('./api.js').Got | undefined} analysis
 */
function resourcesTable(resources, analysis) {
  const box = h('div', { id: 'resources' }, h('h3', {}, 'Resources'));
  if (!resources?.ok) return append(box, note(resources ? resources.error : 'loading…'));
  /** @type {Map<string, any[]>} */
  const byResource = new Map();
  if (analysis?.ok) for (const m of analysis.data.messages) byResource.set(m.resource, [...(byResource.get(m.resource) ?? []), m]);
  const items = resources.data.items;
  if (!items.length) return append(box, note('No resources are stored: weft apply -f FILE adds some.'));
  const rows = items.map((/** @type {any} */ r) => {
    const messages = byResource.get(keyOf(r)) ?? [];
    const errors = messages.filter((m) => m.level === 'Error');
    const state = errors.length ? ['bad', `${errors.length} error${errors.length > 1 ? 's' : ''}`] : messages.length || r.warnings.length ? ['warn', 'warnings'] : ['ok', 'valid'];
    return h(
      'tr',
      { 'data-resource': keyOf(r) },
      h('td', {}, r.kind),
      h('td', {}, `${r.metadata.namespace}/${r.metadata.name}`),
      h('td', { class: 'num' }, r.revision),
      h('td', {}, h('span', { class: `pill ${state[0]}` }, state[1])),
      h(
        'td',
        { class: 'msgs' },
        ...messages.map((m) => h('div', { class: m.level === 'Error' ? 'bad' : 'warn' }, `${m.level} [${m.code}] ${m.path}: ${m.message}`)),
        ...r.warnings.map((/** @type {string} */ w) => h('div', { class: 'warn' }, `Warning: ${w}`)),
      ),
    );
  });
  if (!analysis?.ok) box.append(note(`Validation unknown: ${analysis ? analysis.error : 'loading…'}`));
  return append(box, h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Kind'), h('th', {}, 'Name'), h('th', {}, 'Revision'), h('th', {}, 'State'), h('th', {}, 'Messages'))), h('tbody', {}, ...rows)));
}

/**
 * @param {import('./api.js').Got | undefined} proxies
 * @param {number | undefined} latest
 */
function proxiesTable(proxies, latest) {
  const box = h('div', { id: 'proxies' }, h('h3', {}, `Proxies${latest === undefined ? '' : ` (config revision ${latest})`}`));
  if (!proxies?.ok) return append(box, note(proxies ? proxies.error : 'loading…'));
  const list = proxies.data.proxies;
  if (!list.length) return append(box, note('No sidecar is connected.'));
  if (proxies.data.pushPending) box.append(note('A change is waiting to be pushed.'));
  const rows = list.map((/** @type {any} */ p) => {
    const nacks = p.types.filter((/** @type {any} */ t) => t.nack);
    const state = nacks.length ? ['bad', 'NACKed'] : p.current ? ['ok', 'current'] : ['warn', `syncing to ${latest ?? '?'}`];
    return h(
      'tr',
      { 'data-proxy': `${p.workload.namespace}/${p.workload.name}` },
      h('td', {}, `${p.workload.namespace}/${p.workload.name}`),
      h('td', { class: 'num' }, p.revision ?? '–'),
      h('td', {}, h('span', { class: `pill ${state[0]}` }, state[1])),
      // Each xDS type with the version it ACKed, and the one on its way where they differ.
      h('td', { class: 'types' }, ...p.types.map((/** @type {any} */ t) => h('span', { class: `type ${t.nack ? 'bad' : t.acked === t.sent ? 'ok' : 'warn'}`, 'data-type': t.type, title: `${t.type}: version ${t.sent ?? '–'} sent, ${t.acked ?? 'none'} ACKed${t.nack ? `, ${t.nack.version} NACKed` : ''}; ${t.resources} resource(s)${t.held ? '; a newer one is held back until this one is answered' : ''}` }, `${t.type} ${t.acked ?? '–'}${t.acked === t.sent ? '' : ` → ${t.sent ?? '–'}`}`))),
      h('td', { class: 'msgs' }, ...nacks.map((/** @type {any} */ t) => h('div', { class: 'bad' }, `${t.type} NACK of ${t.nack.version}: ${t.nack.reason}`))),
    );
  });
  return append(box, h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Workload'), h('th', {}, 'ACKed revision'), h('th', {}, 'State'), h('th', {}, 'ACKed version of each type'), h('th', {}, 'NACK reasons'))), h('tbody', {}, ...rows)));
}

/** @param {HTMLElement} el @param {...Node} kids */
function append(el, ...kids) {
  el.append(...kids);
  return el;
}
