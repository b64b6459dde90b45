// Per-service RED charts: rate, errors and duration over the last 15 minutes.
import { note, show } from './dom.js';

/** @param {HTMLElement} el @param {Record<string, import('./api.js').Got>} src */
export function renderRed(el, src) {
  void src;
  show(el, note('No series: the control plane serves no golden signals yet.'));
}
