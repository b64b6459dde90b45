// The dashboard (docs/dashboard.md): its page and assets, served by the admin API from the files
// in ./ui (no CDN, no external font: the page loads nothing from anywhere but the control plane),
// and GET /api/v1/analysis, the stored config's validation state. Read-only: GET and HEAD only.
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type AnalysisMessage, analyze, liveMeshOf } from '../../api/index.ts';
import type { ConfigStore } from '../store/store.ts';
import type { Registry } from '../registry/registry.ts';

// Not an ESM import, which runs the module's lazy getters (see src/proxy/sidecar.ts).
const fs = process.getBuiltinModule('node:fs');

const UI_DIR = fileURLToPath(new URL('./ui/', import.meta.url));
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};
// The browser may load and call nothing but this origin: a page that tried would be blocked, and say so in its console.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * Serves `/` (a redirect), `/dashboard/` and its files; answers false for any other path. Only the
 * files ./ui holds are served, by name: nothing else on disk is reachable from a URL.
 */
export function serveDashboard(req: http.IncomingMessage, res: http.ServerResponse): boolean {
  const { pathname } = new URL(req.url ?? '/', 'http://admin');
  if (pathname === '/' || pathname === '/dashboard') {
    res.writeHead(302, { location: '/dashboard/', 'content-length': 0 });
    res.end();
    return true;
  }
  if (!pathname.startsWith('/dashboard/')) return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, 405, 'text/plain; charset=utf-8', `the dashboard is read-only: ${req.method} ${pathname} is not allowed (GET only)\n`, { allow: 'GET, HEAD' });
    return true;
  }
  const name = pathname.slice('/dashboard/'.length) || 'index.html';
  const type = TYPES[path.extname(name)];
  const files = fs.readdirSync(UI_DIR);
  if (!type || !files.includes(name)) {
    send(res, 404, 'text/plain; charset=utf-8', `the dashboard has no file ${pathname}\n`);
    return true;
  }
  const body = fs.readFileSync(path.join(UI_DIR, name));
  send(res, 200, type, req.method === 'HEAD' ? '' : body, { 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'cache-control': 'no-cache' }, body.length);
  return true;
}

function send(res: http.ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}, length = Buffer.byteLength(body)): void {
  res.writeHead(status, { 'content-type': type, 'content-length': length, ...headers });
  res.end(body);
}

/**
 * GET /api/v1/analysis: what `weft analyze` says of the running mesh (its stored config with its
 * workloads), each message naming its resource and field, with the revision it was made for.
 * Made again only when the config or the workloads changed: every open dashboard asks for it.
 */
export function analysisOf(store: ConfigStore, registry: Registry): Analysis {
  const key = `${store.revision()}/${registry.version()}`;
  const hit = lastAnalysis.get(store);
  if (hit?.key === key) return hit.analysis;
  const analysis = { revision: store.revision(), messages: analyze(store.list(), liveMeshOf(registry.list())) };
  lastAnalysis.set(store, { key, analysis });
  return analysis;
}

type Analysis = { revision: number; messages: AnalysisMessage[] };
const lastAnalysis = new WeakMap<ConfigStore, { key: string; analysis: Analysis }>();
