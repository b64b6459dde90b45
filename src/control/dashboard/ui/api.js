// Reading the admin API: GET only, same origin.

/**
 * @typedef {{ ok: true, data: any } | { ok: false, missing: boolean, error: string }} Got
 */

/**
 * GET a JSON path of the admin API. A 404 is `missing` (this control plane does not serve it);
 * any other failure is an error with the server's own sentence where it gave one.
 * @param {string} path
 * @returns {Promise<Got>}
 */
export async function get(path) {
  let res;
  try {
    res = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' });
  } catch (e) {
    return { ok: false, missing: false, error: `cannot reach the control plane (${/** @type {Error} */ (e).message})` };
  }
  let body;
  try {
    body = await res.json();
  } catch {
    return { ok: false, missing: res.status === 404, error: `GET ${path}: status ${res.status}, not JSON` };
  }
  if (!res.ok) return { ok: false, missing: res.status === 404, error: `GET ${path}: ${body?.error ?? `status ${res.status}`}` };
  return { ok: true, data: body };
}
