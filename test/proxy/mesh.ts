// A two-hop mesh for request-path tests: a control plane in process, an app behind a real
// server-side sidecar process (inbound), and a real client-side sidecar process (outbound).
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { request } from 'undici';
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from '../../src/control/control-plane.ts';
import { translate } from '../../src/control/translate/translate.ts';
import { freePort } from '../../src/util/net.ts';
import { CLI, lineMatching, listen, tmpDir, waitFor } from '../helpers.ts';

export { listen };

export interface SidecarProc {
  proc: ChildProcess;
  admin: string;
  pid: number;
  stderr: () => string;
  /** What it wrote to stdout after WEFT_READY (an access log to /dev/stdout). */
  stdout: () => string;
}

/**
 * The credentials a sidecar for `args` (its --workload and --namespace) starts with, as `weft up`
 * hands them over: a join token in WEFT_JOIN_TOKEN, and --ca-cert, the control plane's root.
 */
export function sidecarCredentials(cp: ControlPlane, args: readonly string[], serviceAccount = 'default'): { args: string[]; env: NodeJS.ProcessEnv } {
  const flag = (f: string) => {
    const i = args.indexOf(f);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const { token } = cp.joinTokens.create({ workload: flag('--workload') ?? 'anonymous', namespace: flag('--namespace') ?? 'default', serviceAccount });
  return { args: ['--ca-cert', cp.rootCertFile], env: { WEFT_JOIN_TOKEN: token } };
}

/** `weft proxy --xds <cp> ARGS` with its credentials, stdout piped (for WEFT_READY), stderr as given. */
export function spawnProxy(cp: ControlPlane, args: string[], stderr: 'inherit' | 'pipe' = 'inherit'): ChildProcess {
  const creds = sidecarCredentials(cp, args);
  return spawn(process.execPath, [CLI, 'proxy', '--xds', cp.xdsAddress, ...creds.args, ...args], { stdio: ['ignore', 'pipe', stderr], env: { ...process.env, ...creds.env } });
}

export async function spawnSidecar(cp: ControlPlane, args: string[], env: NodeJS.ProcessEnv = {}, serviceAccount = 'default'): Promise<SidecarProc> {
  const creds = sidecarCredentials(cp, args, serviceAccount);
  const proc = spawn(process.execPath, [...(process.env.WEFT_TEST_SIDECAR_FLAGS ?? '').split(' ').filter(Boolean), CLI, 'proxy', '--xds', cp.xdsAddress, ...creds.args, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...creds.env, ...env } });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  let ready: string;
  try {
    ready = await lineMatching(proc, /^WEFT_READY /);
  } catch (e) {
    // Not ready in time: stop it (a process left running keeps the test file from ever ending)
    // and say what it printed.
    await stopProc(proc);
    throw new Error(`sidecar ${args.join(' ')}: ${(e as Error).message}; its stderr:\n${err.slice(-4000)}`);
  }
  // Kept flowing from here on (the ready line's reader paused it), and kept: an access log to /dev/stdout.
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stdout!.resume();
  return { proc, admin: JSON.parse(ready.slice('WEFT_READY '.length)).admin, pid: proc.pid!, stderr: () => err, stdout: () => out };
}

export async function stopProc(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    p.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    p.kill('SIGTERM');
  });
}

/** A test mesh's teardown: its sidecars stopped, its apps closed (with their connections), its control plane closed. */
export async function stopMesh(sidecars: readonly SidecarProc[], apps: readonly { close(): unknown; closeAllConnections(): void }[], cp: { close(): Promise<void> } | undefined): Promise<void> {
  await Promise.all(sidecars.map((s) => stopProc(s.proc)));
  for (const a of apps) {
    a.closeAllConnections();
    a.close();
  }
  await cp?.close();
}

/** Envoy HttpConnectionManager fields to set on every listener the sidecars get (shorter timeouts for tests). */
export type HcmOverrides = Record<string, unknown>;

/** Envoy Cluster fields to set on the named clusters, e.g. circuit_breakers on "inbound|80||". */
export type ClusterOverrides = Record<string, Record<string, unknown>>;

export function generateWith(hcm: HcmOverrides, clusters: ClusterOverrides = {}): ControlPlaneOptions['generate'] {
  return (mesh, proxy) => {
    const t = translate(mesh, proxy);
    const r = { ...t, clusters: { ...t.clusters } };
    for (const [name, extra] of Object.entries(clusters)) if (r.clusters[name]) r.clusters[name] = { ...r.clusters[name], ...extra };
    const listeners: Record<string, object> = {};
    for (const [name, l] of Object.entries(r.listeners) as [string, any][]) {
      const copy = structuredClone(l);
      for (const fc of copy.filter_chains ?? []) for (const f of fc.filters ?? []) if (f.typed_config?.stat_prefix !== undefined) Object.assign(f.typed_config, hcm);
      listeners[name] = copy;
    }
    return { ...r, listeners };
  };
}

export interface Mesh {
  cp: ControlPlane;
  app: http.Server;
  appPort: number;
  server: SidecarProc;
  inbound: number;
  client: SidecarProc;
  outbound: number;
  /** Stats of a sidecar's admin endpoint. */
  stats(admin: string): Promise<any>;
  close(): Promise<void>;
}

/** service "app" (the given handler) behind a server sidecar; a client sidecar to reach it. */
export async function startMesh(
  handler: http.RequestListener,
  opts: { hcm?: HcmOverrides; clusters?: ClusterOverrides; clientEnv?: NodeJS.ProcessEnv; serverEnv?: NodeJS.ProcessEnv; clientArgs?: string[] } = {},
): Promise<Mesh> {
  const generate = opts.hcm || opts.clusters ? generateWith(opts.hcm ?? {}, opts.clusters) : undefined;
  const cp = await startControlPlane({ dataDir: tmpDir('cp'), adminPort: 0, xdsPort: 0, heartbeatMs: 2000, generate });
  // The app takes headers as large as the sidecar does (Node's own default is 16 KiB).
  const app = http.createServer({ maxHeaderSize: 80 * 1024 }, handler);
  let server: SidecarProc | undefined;
  let client: SidecarProc | undefined;
  const close = async () => {
    await Promise.all([stopProc(client?.proc), stopProc(server?.proc)]);
    app.closeAllConnections();
    app.close();
    await cp.close();
  };
  let appPort: number, inbound: number, outbound: number;
  try {
    appPort = await listen(app);
    inbound = await freePort();
    server = await spawnSidecar(cp, ['--workload', 'app-1', '--service', 'app', '--inbound-port', String(inbound), '--app-port', String(appPort)], opts.serverEnv);
    outbound = await freePort();
    client = await spawnSidecar(cp, ['--workload', 'client', '--outbound-port', String(outbound), ...(opts.clientArgs ?? [])], opts.clientEnv);
    // The client's routes reach the app once its endpoint is in the client's config.
    await waitFor('the client sidecar to route to app', async () => {
      const r = await request(`http://127.0.0.1:${outbound}/`, { headers: { host: 'app' } }).catch(() => undefined);
      if (!r) return false;
      await r.body.dump();
      return r.statusCode < 500 && r.headers['x-weft-error'] === undefined;
    });
  } catch (e) {
    // Whatever did start is stopped: the caller gets no Mesh to close.
    await close();
    throw e;
  }
  return {
    cp,
    app,
    appPort,
    server,
    inbound,
    client,
    outbound,
    stats: async (admin) => (await (await request(`${admin}/stats`)).body.json()) as any,
    close,
  };
}

/** Writes raw bytes to a port and collects everything until the peer closes (or `untilMs`). */
export function raw(port: number, bytes: string | Buffer, untilMs = 10_000): Promise<{ data: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    let data = '';
    const t = setTimeout(() => {
      s.destroy();
      resolve({ data, closed: false });
    }, untilMs);
    s.on('data', (d) => (data += d.toString('latin1')));
    s.on('close', () => {
      clearTimeout(t);
      resolve({ data, closed: true });
    });
    s.on('error', () => {});
  });
}

/** A sidecar process's private memory (RssAnon) and RSS in MB. */
export function memoryOf(pid: number): { rssAnonMB: number; rssMB: number } {
  const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(st)?.[1] ?? 0);
  return { rssAnonMB: kb('RssAnon') / 1024, rssMB: kb('VmRSS') / 1024 };
}

/** Count of busy upstream connections across a sidecar's pools: 0 when nothing is in flight. */
export async function busyUpstreams(admin: string): Promise<number> {
  const s = (await (await request(`${admin}/stats`)).body.json()) as { pools: { busy: number; connecting: number; pending: number }[] };
  return s.pools.reduce((n, p) => n + p.busy + p.connecting + p.pending, 0);
}
