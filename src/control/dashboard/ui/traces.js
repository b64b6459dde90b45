// Recent traces, and the waterfall of the one selected.
import { note, show } from './dom.js';

/** @param {HTMLElement} el @param {Record<string, import('./api.js').Got>} src */
export function renderTraces(el, src) {
  void src;
  show(el, note('No traces: the control plane serves no traces yet.'));
}
