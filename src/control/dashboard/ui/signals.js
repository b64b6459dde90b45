// Reading the golden signals (docs/observability.md) into what the panels draw.

/**
 * @typedef {{ source: string, destination: string, rate: number, errorRatio: number, p99Ms: number | null, mtls: string }} Edge
 */

const NOT_SERVED = 'the control plane serves no golden signals yet';

/**
 * The live edges: who calls which service, how often, how many fail, how slow, over what.
 * @param {Record<string, import('./api.js').Got>} src
 * @returns {{ ok: true, edges: Edge[] } | { ok: false, why: string }}
 */
export function liveEdges(src) {
  void src;
  return { ok: false, why: NOT_SERVED };
}

/**
 * The observed split of one VirtualService rule: requests per destination (destKey of split.js).
 * @param {Record<string, import('./api.js').Got>} src
 * @returns {{ ok: true, window: string, of: (vs: any, rule: number) => Record<string, number> | undefined } | { ok: false, why: string }}
 */
export function observedSplit(src) {
  void src;
  return { ok: false, why: NOT_SERVED };
}
