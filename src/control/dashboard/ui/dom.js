// Small DOM helpers: elements are built, never parsed from strings, so no name in the mesh's
// config can inject markup.

/**
 * An HTML element: h('td', {class: 'num'}, 'text', child, ...). Null and false children are skipped.
 * @param {string} tag
 * @param {Record<string, string | number | boolean | undefined | null>} [attrs]
 * @param {...(Node | string | number | null | undefined | false)} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * An SVG element, as h() makes HTML ones.
 * @param {string} tag
 * @param {Record<string, string | number | boolean | undefined | null>} [attrs]
 * @param {...(Node | string | number | null | undefined | false)} children
 * @returns {SVGElement}
 */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** @param {Element} el @param {Record<string, any>} attrs */
function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? '' : String(v));
}

/** @param {Element} el @param {any[]} children */
function append(el, children) {
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(typeof c === 'object' ? c : String(c));
}

/**
 * Replaces what `el` shows.
 * @param {Element} el
 * @param {...(Node | string | null | undefined | false)} children
 */
export function show(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** A note in place of a panel's content: why there is nothing to show. @param {string} text */
export function note(text) {
  return h('p', { class: 'note' }, text);
}

/** @param {number} n requests per second */
export function fmtRate(n) {
  return n >= 100 ? `${n.toFixed(0)}/s` : n >= 10 ? `${n.toFixed(1)}/s` : `${n.toFixed(2)}/s`;
}

/** @param {number} ratio 0..1 */
export function fmtPct(ratio) {
  const p = ratio * 100;
  return p === 0 ? '0%' : p < 0.1 ? '<0.1%' : p < 10 ? `${p.toFixed(1)}%` : `${p.toFixed(0)}%`;
}

/** @param {number} ms */
export function fmtMs(ms) {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : ms >= 10 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`;
}
