// The dashboard's loop: every 1.5 s, GET what each panel shows from the admin API, then redraw
// the panels. No reload; a source the control plane does not serve leaves its panel saying so.
import { get } from './api.js';
import { show } from './dom.js';
import { renderConfig } from './config.js';
import { renderSplit } from './split.js';
import { renderGraph } from './graph.js';
import { renderRed } from './red.js';
import { TRACE_SOURCES, renderTraces } from './traces.js';
import { SIGNAL_SOURCES } from './signals.js';

const POLL_MS = 1500;

/** What the page reads, by name. */
const SOURCES = {
  version: '/version',
  resources: '/api/v1/resources',
  analysis: '/api/v1/analysis',
  proxies: '/api/v1/proxies',
  endpoints: '/api/v1/endpoints',
  ...SIGNAL_SOURCES,
  ...TRACE_SOURCES,
};

/** @param {string} id */
const byId = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** @type {Date | undefined} when the control plane last answered */
let lastGood;

async function tick() {
  const names = Object.keys(SOURCES);
  const got = await Promise.all(names.map((n) => get(SOURCES[/** @type {keyof SOURCES} */ (n)])));
  /** @type {Record<string, import('./api.js').Got>} */
  const src = Object.fromEntries(names.map((n, i) => [n, got[i]]));
  const status = byId('status');
  if (!src.version.ok) {
    // The control plane is away: keep what it last said on screen, and say since when.
    status.className = 'status down';
    document.body.classList.add('stale');
    show(status, `${src.version.error}; showing what it said at ${lastGood?.toLocaleTimeString() ?? '—'}`);
    return;
  }
  document.body.classList.remove('stale');
  lastGood = new Date();
  byId('cp').textContent = `control plane ${src.version.data.version}, config revision ${src.version.data.revision}`;
  status.className = 'status live';
  show(status, `live · ${lastGood.toLocaleTimeString()}`);
  const panels = [
    () => renderGraph(byId('graph'), src),
    () => renderSplit(byId('split'), src),
    () => renderRed(byId('red'), src),
    () => renderTraces(byId('traces'), src),
    () => renderConfig(byId('config'), src),
  ];
  // One panel's bug must not blank the others.
  for (const p of panels) {
    try {
      await p();
    } catch (e) {
      console.error(e);
    }
  }
}

async function loop() {
  await tick();
  setTimeout(loop, POLL_MS);
}
loop();
