// The control plane's admin HTTP API (JSON), used by the `weft` CLI. Every error is a JSON body
// { error: "<sentence naming the resource and field>", details?: [...] } with a 4xx/5xx status.
import http from 'node:http';
import https from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import { checkResource, formatProblem, manifestOf, parseConfig, warningsOf } from '../../api/index.ts';
import { type AuthorizationPolicy, ConfigError, type Resource, type Telemetry, describeKey } from '../../api/types.ts';
import type { MeshSnapshot } from '../model/model.ts';
import { customProviderWarnings } from '../translate/translate.ts';
import { telemetryProviderWarnings } from '../../api/telemetry-support.ts';
import type { AdsServer } from '../ads/server.ts';
import type { Registry } from '../registry/registry.ts';
import type { ConfigStore, StoredResource } from '../store/store.ts';
import { resolveKind } from '../../api/kinds.ts';
import { bearerMatches } from './token.ts';
import { serveSignals } from './signals.ts';
import type { Collector } from '../signals/collector.ts';
import { type JoinIdentity, JoinError, type JoinTokens } from '../ca/join.ts';
import { CaError, type CertificateAuthority } from '../ca/ca.ts';
import { ROOTCA } from '../../xds/types.ts';
import { analysisOf, serveDashboard } from '../dashboard/serve.ts';
import type { TraceStore } from '../traces/store.ts';
import { tracesRoute } from './traces.ts';

export interface AdminDeps {
  store: ConfigStore;
  registry: Registry;
  ads: AdsServer;
  version: string;
  /** What requests that change the mesh must carry (token.ts); reads need none. */
  token: string;
  /** Join tokens for workloads (ca/join.ts). */
  joinTokens?: JoinTokens;
  /** The CA, for its status and its root rotation (docs/ca.md). */
  ca?: CertificateAuthority;
  /** The mesh as the sidecars get it now: apply warns of a CUSTOM AuthorizationPolicy whose provider it cannot use. */
  snapshot?: () => MeshSnapshot;
  /** The golden signals the control plane collects from the sidecars (signals.ts). */
  signals?: Collector;
  /** The traces the built-in OTLP receiver keeps (admin/traces.ts). */
  traces?: TraceStore;
}

class HttpError extends Error {
  readonly status: number;
  readonly details: unknown;
  constructor(status: number, message: string, details?: unknown) {
    super(message);
    this.status = status;
    this.details = details;
  }
}

const MAX_BODY = 8 << 20;

/**
 * The admin API's server: plain HTTP, or HTTPS with `tls` (the control plane's own certificate,
 * which the CLI checks against the mesh root and the control plane's SPIFFE identity).
 */
export function createAdminServer(deps: AdminDeps, tls?: SecureContextOptions): http.Server | https.Server {
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    // A request line no URL parser takes ("GET //[ HTTP/1.1", "%ZZ"): a 400, never a thrown error
    // in the server's callback, which would end the control plane.
    try {
      if (serveDashboard(req, res)) return;
      if (serveSignals(deps, req, res)) return; // /api/v1/signals..., /api/v1/tap/... (signals.ts)
    } catch (e) {
      if (!res.headersSent) reply(res, 400, { error: `bad request ${JSON.stringify(req.url)}: ${(e as Error).message}` });
      else res.destroy();
      return;
    }
    handle(deps, req)
      .then(({ status, body }) => reply(res, status, body))
      .catch((e: unknown) => {
        if (e instanceof HttpError) reply(res, e.status, { error: e.message, ...(e.details ? { details: e.details } : {}) });
        else if (e instanceof ConfigError) reply(res, 400, { error: e.message, details: e.fields });
        else reply(res, 500, { error: `internal error: ${(e as Error).message}` });
      });
  };
  return tls ? https.createServer({ ...tls, handshakeTimeout: 10_000 }, handler) : http.createServer(handler);
}

function reply(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, `request body is larger than ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function handle(deps: AdminDeps, req: http.IncomingMessage): Promise<{ status: number; body: unknown }> {
  const url = new URL(req.url ?? '/', 'http://admin');
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const method = req.method ?? 'GET';
  const { store, registry, ads } = deps;

  if (url.pathname === '/healthz') return { status: 200, body: { ok: true } };
  if (url.pathname === '/version') return { status: 200, body: { version: deps.version, revision: store.revision() } };
  if (parts[0] !== 'api' || parts[1] !== 'v1') throw new HttpError(404, `no such admin endpoint: ${method} ${url.pathname}`);
  // Every request that may change something needs the admin token; the token is never echoed.
  if (method !== 'GET' && method !== 'HEAD' && !bearerMatches(req.headers.authorization, deps.token)) {
    throw new HttpError(401, `${method} ${url.pathname} changes the mesh and needs the admin token (Authorization: Bearer <token>): the weft CLI reads it from the control plane's data directory (admin.token), or from WEFT_ADMIN_TOKEN`);
  }

  const what = parts[2];
  if (what === 'apply' && method === 'POST') {
    const text = await readBody(req);
    const source = url.searchParams.get('source') ?? 'request body';
    const resources = parseBody(text, source, req.headers['content-type'] ?? '');
    const results = store.apply(resources);
    // What each resource has that Weft accepts but does not apply yet (api/support.ts), and a CUSTOM
    // policy whose provider the mesh config does not give (its requests are denied: translate/authz.ts).
    const mesh = deps.snapshot?.();
    const warningsFor = (r: Resource) => [
      ...warningsOf(r).map(formatProblem),
      ...(mesh && r.kind === 'AuthorizationPolicy' ? customProviderWarnings(r as AuthorizationPolicy, mesh) : []),
      ...(mesh && r.kind === 'Telemetry' ? telemetryProviderWarnings(r as Telemetry, mesh.meshConfig) : []),
    ];
    const warnings = new Map(resources.map((r) => [describeKey({ kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name }), warningsFor(r)]));
    return { status: 200, body: { revision: store.revision(), results: results.map((r) => ({ resource: describeKey(r.key), ...r, warnings: warnings.get(describeKey(r.key)) ?? [] })) } };
  }
  if (what === 'resources') {
    const kind = parts[3] ? resolveKind(parts[3]) : undefined;
    if (parts[3] && !kind) throw new HttpError(404, `unknown kind "${parts[3]}"`);
    if (parts.length <= 5 && method === 'GET') {
      const items = store.list(kind, parts[4]);
      return { status: 200, body: { revision: store.revision(), items: items.map((r) => shown(r)) } };
    }
    if (parts.length === 6 && kind) {
      const key = { kind, namespace: parts[4], name: parts[5] };
      if (method === 'GET') {
        const stored = store.get(key);
        if (!stored) throw new HttpError(404, `${describeKey(key)} not found`);
        return { status: 200, body: shown(stored) };
      }
      if (method === 'DELETE') {
        const rev = store.delete(key);
        if (rev === undefined) throw new HttpError(404, `${describeKey(key)} not found`);
        return { status: 200, body: { resource: describeKey(key), revision: rev } };
      }
    }
  }
  // A join token for one workload identity (POST, so the admin token guards it); shown once, here.
  if (what === 'tokens' && method === 'POST' && deps.joinTokens) {
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(await readBody(req)) as Record<string, unknown>;
    } catch {
      throw new HttpError(400, 'the body must be JSON: {"workload": ..., "namespace": ..., "serviceAccount": ..., "ttlMs": ...}');
    }
    const id = { workload: body.workload, namespace: body.namespace ?? 'default', serviceAccount: body.serviceAccount ?? 'default' } as JoinIdentity;
    try {
      const { token, expiresAt } = deps.joinTokens.create(id, body.ttlMs === undefined ? undefined : Number(body.ttlMs));
      return { status: 201, body: { token, expiresAt: expiresAt.toISOString(), identity: id } };
    } catch (e) {
      if (e instanceof JoinError) throw new HttpError(400, e.message);
      throw e;
    }
  }
  // The CA: its roots and rotation (public facts; never a key), and the rotation's steps.
  if (what === 'ca' && deps.ca) {
    const ca = deps.ca;
    const status = () => ({ ...ca.status(), proxiesWithoutTrustBundle: ads.withoutSecret(ROOTCA) });
    if (parts.length === 3 && method === 'GET') return { status: 200, body: status() };
    const step = parts.length === 4 && method === 'POST' ? parts[3] : undefined;
    if (step === 'rotate-root' || step === 'finish-rotation') {
      let force = false;
      if (step === 'finish-rotation') {
        const text = await readBody(req);
        try {
          force = text.trim() ? (JSON.parse(text) as { force?: unknown }).force === true : false;
        } catch {
          throw new HttpError(400, 'the body must be JSON: {"force": true|false}');
        }
      }
      try {
        if (step === 'rotate-root') await ca.rotateRoot();
        else await ca.dropOldRoots(force);
      } catch (e) {
        if (e instanceof CaError) throw new HttpError(409, e.message);
        throw e;
      }
      return { status: 200, body: status() };
    }
  }
  // pushPending: a change is waiting for its (debounced) push; until it is sent and ACKed, no proxy is current.
  // stats: streams, pushes, responses sent and types held back since start (ads/server.ts AdsStats).
  if (what === 'proxies' && method === 'GET') {
    const stats = ads.stats();
    return { status: 200, body: { proxies: ads.proxies(), pushPending: stats.pushPending, stats } };
  }
  if (what === 'endpoints' && method === 'GET') return { status: 200, body: { workloads: registry.list() } };
  if (what === 'analysis' && method === 'GET') return { status: 200, body: analysisOf(store, registry) };
  if (what === 'traces' && deps.traces) return tracesRoute(deps.traces, method, parts, url.searchParams);
  throw new HttpError(404, `no such admin endpoint: ${method} ${url.pathname}`);
}

/**
 * A stored resource as the API shows it: as written (a ConfigMap's content under data), without its
 * `created` revision, with what it has that Weft accepts but does not apply yet (api/support.ts).
 */
function shown({ created: _c, ...r }: StoredResource): Record<string, unknown> & { warnings: string[] } {
  return { ...manifestOf(r), warnings: warningsOf(r).map(formatProblem) };
}

/** YAML (or JSON) text, or a JSON body {resources: [...]}. All items are checked before any is stored. */
function parseBody(text: string, source: string, contentType: string): Resource[] {
  if (contentType.includes('application/json')) {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      throw new HttpError(400, `${source}: invalid JSON: ${(e as Error).message}`);
    }
    const items = Array.isArray(body) ? body : (body as { resources?: unknown }).resources;
    if (!Array.isArray(items)) throw new HttpError(400, `${source}: expected a JSON array of resources or {"resources": [...]}`);
    const out: Resource[] = [];
    const errors: string[] = [];
    items.forEach((item, i) => {
      try {
        out.push(checkResource(item, `${source} item ${i}`));
      } catch (e) {
        if (e instanceof ConfigError) errors.push(e.message);
        else throw e;
      }
    });
    if (errors.length) throw new HttpError(400, errors.join('\n'));
    return out;
  }
  return parseConfig(text, source);
}
