// The processes under test, started as `weft up` starts them: the bench's upstream servers, a
// `weft control`, and sidecars (same Node flags, environment and entry point as `weft up`); and
// config for the control plane, applied through its admin API as `weft apply` sends it.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { SIDECAR_NODE_FLAGS, WEFT_ENTRY, sidecarEnv } from '../src/cli/up.ts';
import { PortAllocator } from '../src/util/net.ts';
import { BenchError, type Proc, launch, sleep, stop, stopAll, waitForLine } from './proc.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

const MESH_WIDE_DISABLE = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: DISABLE}
`;

/** The outbound cluster a client sidecar uses for `service` (default namespace, port 80). */
export const clusterOf = (service: string) => `outbound|80||${service}.default.svc.cluster.local`;

/** Node's compile cache for everything the bench starts (as bin/weft.mjs uses by default). */
const compileCacheEnv = () => ({ ...process.env, NODE_COMPILE_CACHE: path.join(os.tmpdir(), 'node-compile-cache') });

/**
 * An upstream server (bench/server.ts). It runs as the sidecars do (same Node flags and
 * environment, compile cache on), so that the h1 server's memory is the floor of any Node process
 * serving HTTP here: the baseline for the sidecars' memory. The first start fills the compile cache
 * and is thrown away.
 */
export async function startServer(proto: 'h1' | 'h2' | 'grpc' = 'h1'): Promise<{ proc: Proc; port: number }> {
  const env = sidecarEnv(compileCacheEnv());
  const start = async () => {
    const proc = launch(`bench server (${proto})`, process.execPath, [...SIDECAR_NODE_FLAGS, path.join(ROOT, 'bench', 'server.ts'), '0', '--proto', proto], { env });
    const m = await waitForLine(proc, /^BENCH_SERVER_READY (\d+)$/, 15_000);
    return { proc, port: Number(m[1]) };
  };
  await stop((await start()).proc);
  return start();
}

/** One GET through a path must answer 200 before it is measured. */
export async function checkOk(url: string, host: string | undefined, what: string): Promise<void> {
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.get(url, { headers: host ? { host } : {}, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out after 5s')));
    req.on('error', reject);
  }).catch((e: Error) => {
    throw new BenchError(`${what}: GET ${url} failed: ${e.message}`);
  });
  if (status !== 200) throw new BenchError(`${what}: GET ${url} answered ${status}: ${body.slice(0, 300)}`);
}

export async function getJson(url: string): Promise<any> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return res.json();
}

/** How a sidecar process is run: under a wrapper command (valgrind ...), given longer to get ready. */
export interface SidecarRun {
  wrap?: string[];
  readyMs?: number;
  /** More environment for the sidecar's process. */
  env?: NodeJS.ProcessEnv;
}

export interface Sidecar {
  proc: Proc;
  admin: string;
  /** The outbound listener, for a client. */
  outbound?: string;
}

/** A `weft control` and the sidecars started against it; stop() stops them all, sidecars first. */
export class Mesh {
  readonly procs: Proc[] = [];
  readonly xds: string;
  /** The control plane's admin API, http://127.0.0.1:PORT. */
  readonly admin: string;
  private readonly ports = new PortAllocator();
  /** The mesh's root, which sidecars trust the control plane by. */
  readonly rootCert: string;
  /** Arguments every sidecar of this mesh gets beside its own (Mesh.start's sidecarArgs). */
  private readonly sidecarArgs: string[];
  private constructor(ready: { xds: string; admin: string; rootCert: string }, sidecarArgs: string[] = []) {
    this.sidecarArgs = sidecarArgs;
    this.xds = ready.xds;
    this.admin = ready.admin;
    this.rootCert = ready.rootCert;
  }

  /** Automatic mTLS between the sidecars, as the mesh comes: the plain-text policy of start() deleted (before any sidecar starts). */
  async enableMtls(): Promise<void> {
    await adminCall(`${this.admin}/api/v1/resources/PeerAuthentication/istio-system/default`, { method: 'DELETE' });
  }

  /** A free port not yet handed out by this mesh (sidecars start at once). */
  port(): Promise<number> {
    return this.ports.next();
  }

  /**
   * A mesh whose sidecars speak plain text to each other (PeerAuthentication DISABLE mesh-wide):
   * every phase but mtls measures the plain two-hop path, against haproxy in plain text. The mtls
   * phase takes the policy away again (enableMtls), for the mesh as it comes.
   */
  /**
   * `mtls`: leave the mesh as it comes (automatic mTLS between the sidecars); else plain text
   * mesh-wide. `sidecarArgs`: `weft proxy` arguments every sidecar gets (e.g. --no-istio-metrics).
   */
  static async start(dataDir: string, o: { mtls?: boolean; sidecarArgs?: string[] } = {}): Promise<Mesh> {
    const cp = launch('weft control', process.execPath, [WEFT_ENTRY, 'control', '--data-dir', dataDir, '--admin-port', '0', '--xds-port', '0']);
    try {
      const m = await waitForLine(cp, /^WEFT_READY (.*)$/, 30_000);
      const mesh = new Mesh(JSON.parse(m[1]), o.sidecarArgs);
      mesh.procs.push(cp);
      rememberAdminToken(mesh.admin, dataDir);
      if (!o.mtls) await applyYaml(mesh.admin, MESH_WIDE_DISABLE);
      return mesh;
    } catch (e) {
      await stop(cp);
      throw e;
    }
  }

  /** A sidecar process as `weft up` starts it; resolves once it printed WEFT_READY. */
  async sidecar(label: string, args: string[], nodeFlags: string[] = [], o: SidecarRun = {}): Promise<Sidecar> {
    // Its join token, as weft up hands one over.
    const workload = args[args.indexOf('--workload') + 1];
    const { token } = await adminCall(`${this.admin}/api/v1/tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ workload, namespace: 'default', serviceAccount: 'default' }) });
    const argv = [...SIDECAR_NODE_FLAGS, ...nodeFlags, WEFT_ENTRY, 'proxy', '--xds', this.xds, '--ca-cert', this.rootCert, ...args, ...this.sidecarArgs, '--admin-port', '0'];
    const [cmd, ...rest] = [...(o.wrap ?? []), process.execPath, ...argv];
    const p = launch(label, cmd, rest, { env: sidecarEnv({ ...process.env, ...o.env, WEFT_JOIN_TOKEN: token }) });
    this.procs.push(p);
    const m = await waitForLine(p, /^WEFT_READY (.*)$/, o.readyMs ?? 30_000);
    return { proc: p, admin: JSON.parse(m[1]).admin };
  }

  /**
   * Measure sidecars as they run after their first start: bin/weft.mjs turns on Node's compile
   * cache, and a sidecar whose code is not in it yet (the first start after an install or an
   * edit) loads Node's TypeScript stripper, about 20 MB more RSS (docs/performance.md). One
   * throwaway sidecar fills the cache.
   */
  async warmCompileCache(): Promise<void> {
    const warm = await this.sidecar('weft sidecar (compile-cache warm-up)', ['--workload', 'warm-up', '--outbound-port', String(await this.port())]);
    await stop(warm.proc);
  }

  /**
   * A server-side sidecar: inbound -> the app on appPort, registered as `service` on port 80; it
   * has an outbound listener too. `appProtocol` (http2, grpc) declares the port's protocol, as a
   * Kubernetes Service's appProtocol does, so that the sidecars speak HTTP/2 to the app.
   */
  async serverSidecar(label: string, workload: string, service: string, appPort: number, appProtocol?: string, o: SidecarRun = {}): Promise<Sidecar & { outbound: string }> {
    const outbound = await this.port();
    const inbound = String(await this.port());
    const ports = appProtocol ? ['--port', `${appProtocol}:80:${inbound}:${appPort}:${appProtocol}`] : ['--inbound-port', inbound, '--app-port', String(appPort)];
    const sc = await this.sidecar(label, ['--workload', workload, '--service', service, ...ports, '--outbound-port', String(outbound)], [], o);
    return { ...sc, outbound: `127.0.0.1:${outbound}` };
  }

  /** A client-side sidecar; ready once its config_dump has an endpoint for each of `services`. */
  async clientSidecar(label: string, workload: string, services: string[], nodeFlags: string[] = [], o: SidecarRun = {}): Promise<Sidecar & { outbound: string }> {
    const port = await this.port();
    const sc = await this.sidecar(label, ['--workload', workload, '--outbound-port', String(port)], nodeFlags, o);
    await waitForEndpoints(sc, services, o.readyMs);
    return { ...sc, outbound: `127.0.0.1:${port}` };
  }

  async stop(): Promise<void> {
    await stopAll(this.procs);
  }
}

/** Waits until the sidecar's config_dump has an endpoint for each service. */
export async function waitForEndpoints(sc: Sidecar, services: string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dump = await getJson(`${sc.admin}/config_dump`).catch(() => undefined);
    const missing = services.filter((s) => {
      const cla = dump?.endpoints?.find((e: any) => e.cluster_name === clusterOf(s));
      return !cla?.endpoints?.some((l: any) => l.lb_endpoints?.length > 0);
    });
    if (!missing.length) return;
    if (Date.now() > deadline) throw new BenchError(`${sc.proc.label}: its config_dump (${sc.admin}/config_dump) has no endpoint for ${missing.map(clusterOf).join(', ')} after ${timeoutMs / 1000}s`);
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------------------------
// The control plane's admin API

/** Admin tokens by admin URL origin: what changes through the admin API needs its control plane's token. */
const adminTokens = new Map<string, string>();

/** Remembers the admin token of the control plane at `adminUrl`, from its data directory. */
export function rememberAdminToken(adminUrl: string, dataDir: string): void {
  adminTokens.set(new URL(adminUrl).origin, fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim());
}

/** A JSON call to the admin API; a BenchError (method, URL, status, body) unless it answered 2xx. */
export async function adminCall(url: string, init?: RequestInit): Promise<any> {
  const token = adminTokens.get(new URL(url).origin);
  const headers = { ...(init?.headers as Record<string, string> | undefined), ...(token && init?.method && init.method !== 'GET' ? { authorization: `Bearer ${token}` } : {}) };
  const res = await fetch(url, { ...init, headers, signal: AbortSignal.timeout(20_000) });
  const text = await res.text();
  if (!res.ok) throw new BenchError(`${init?.method ?? 'GET'} ${url}: ${res.status} ${text.slice(0, 500)}`);
  return JSON.parse(text);
}

/** `POST /api/v1/apply` of YAML documents; resolves with the config revision they made. */
export async function applyYaml(adminUrl: string, yaml: string): Promise<number> {
  return (await adminCall(`${adminUrl}/api/v1/apply`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: yaml })).revision;
}

/**
 * Waits until every proxy the control plane lists has ACKed all it was sent, of config revision
 * `rev` or later; a NACK fails at once. Resolves with when (performance.now()) the proxy of
 * workload `workload` was first seen there (polled every 20 ms).
 */
export async function waitForRevision(adminUrl: string, rev: number, workload: string, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let at: number | undefined;
  for (;;) {
    const { proxies } = await adminCall(`${adminUrl}/api/v1/proxies`);
    const seen = performance.now();
    let all = true;
    for (const p of proxies) {
      const nack = p.types.find((t: any) => t.nack);
      if (nack) throw new BenchError(`proxy ${p.id} NACKed ${nack.type} version ${nack.nack.version}: ${nack.nack.reason}`);
      const there = p.revision >= rev && p.types.every((t: any) => t.sent === t.acked);
      if (there && p.workload.name === workload) at ??= seen;
      all &&= there;
    }
    if (all && at !== undefined) return at;
    if (Date.now() > deadline) {
      const behind = proxies.filter((p: any) => !(p.revision >= rev)).map((p: any) => `${p.id} at revision ${p.revision}: ${JSON.stringify(p.types)}`);
      throw new BenchError(`config revision ${rev} not ACKed by every proxy (and ${workload}) within ${timeoutMs / 1000}s: ${behind.join('; ') || 'none behind'}`);
    }
    await sleep(20);
  }
}

export interface Named {
  name: string;
  namespace: string;
}

/** An Istio networking resource as YAML; `spec` holds its lines, indented by two spaces. */
export function istioYaml(kind: 'VirtualService' | 'DestinationRule', m: Named, spec: string): string {
  return `apiVersion: networking.istio.io/v1beta1
kind: ${kind}
metadata: {name: ${m.name}, namespace: ${m.namespace}}
spec:
${spec}`;
}

/** A DestinationRule for service `s` with subsets v1 and v2 (labels app: NAME, version: v1 / v2). */
export function versionSubsets(s: Named): string {
  return istioYaml(
    'DestinationRule',
    s,
    `  host: ${s.name}
  subsets:
  - name: v1
    labels: {app: ${s.name}, version: v1}
  - name: v2
    labels: {app: ${s.name}, version: v2}
`,
  );
}
