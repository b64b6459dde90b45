// `weft up DIR`: one command runs a whole mesh on this machine. It starts the control plane,
// applies the example's Istio config, then starts each workload's app and its sidecar as
// separate processes, and stops them all (no process left behind) on Ctrl-C.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import readline from 'node:readline';
import { type ChildProcess, spawn } from 'node:child_process';
import { CliError, READY_PREFIX, callAdmin, readUpState, untilSignal, weftHome, type UpState } from './common.ts';
import { parseConfig } from '../api/index.ts';
import { ConfigError } from '../api/types.ts';
import { parseMeshFile, portEnvName, type MeshWorkload } from './meshfile.ts';
import { selectProtocol } from '../control/model/protocol.ts';
import { PortAllocator, canConnect } from '../util/net.ts';
import { stopChild } from '../util/process.ts';

export interface UpOptions {
  adminPort: number;
  xdsPort: number;
  heartbeat?: string;
  /** Delete the stored config and apply the mesh file's again (otherwise a store that has config keeps it). */
  resetConfig?: boolean;
  /** The control plane's --ca-dir: a plugged-in CA. */
  caDir?: string;
  /** The control plane's --ca-intermediate. */
  caIntermediate?: boolean;
}

/**
 * Node flags for the sidecar processes: a small young generation keeps RSS low (docs/performance.md).
 * 1 MB semi-spaces: about 2 MB less at idle and under load than 2 MB ones, for no measured CPU cost
 * once a request's objects are no longer promoted.
 */
export const SIDECAR_NODE_FLAGS = ['--max-semi-space-size=1'];

/** The CLI's entry point, which turns on Node's compile cache before loading any TypeScript. */
export const WEFT_ENTRY = fileURLToPath(new URL('../../bin/weft.mjs', import.meta.url));

/**
 * The environment a sidecar runs with (docs/performance.md):
 * - one glibc malloc arena, since Node's helper threads otherwise each grow their own and RSS with them;
 * - allocations of 32 KiB and more in their own mmap, not in the malloc heap. V8's optimizing
 *   compilers (Maglev, TurboFan, and Turboshaft for llhttp's WebAssembly) take their working
 *   memory in 32 KiB zone segments; compiling the hot path when load starts grew the heap by about
 *   9 MB that, freed but fragmented, glibc never gave back. Each of those segments now goes back to
 *   the system when freed. The hot path allocates nothing that large per request (reads go into one
 *   shared buffer); on the HTTP/2 path, which does, CPU per request moved by under 3%.
 */
export function sidecarEnv(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { MALLOC_ARENA_MAX: '1', MALLOC_MMAP_THRESHOLD_: '32768', ...base };
}

interface Child {
  label: string;
  proc: ChildProcess;
}

/** Stop order, from a child's label: apps 0, sidecars 1, the control plane 2. */
function stage(label: string): number {
  return label === 'control' ? 2 : label.endsWith(' sidecar') ? 1 : 0;
}

export async function runUp(dir: string, opts: UpOptions): Promise<number> {
  const meshPath = path.join(dir, 'weft.yaml');
  let meshText: string;
  try {
    meshText = fs.readFileSync(meshPath, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${meshPath}: ${(e as NodeJS.ErrnoException).code}. 'weft up' takes a directory with a weft.yaml mesh file, e.g. examples/canary`);
  }
  const mesh = parseMeshFile(meshText, meshPath);
  // Check the Istio config before starting anything.
  const configs = mesh.config.map((f) => {
    const file = path.join(dir, f);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new CliError(`${meshPath}: config: cannot read ${file}: ${(e as NodeJS.ErrnoException).code}`);
    }
    try {
      parseConfig(text, file);
    } catch (e) {
      if (e instanceof ConfigError) throw new CliError(e.message);
      throw e;
    }
    return { file, text };
  });

  const home = weftHome();
  fs.mkdirSync(home, { recursive: true });
  // One weft up per home: a second one says where the first runs and touches nothing of it.
  // (Its pid alive and its admin API answering: a stale up.json whose pid was reused is not a mesh.)
  const running = readUpState();
  if (running && alive(running.pid) && (await callAdmin(running.admin, 'GET', '/healthz').then(() => true, () => false))) {
    throw new CliError(`Weft is already running from ${home} (weft up pid ${running.pid}, admin API ${running.admin}); this weft up changed nothing. Stop that one first (Ctrl-C in its terminal, or kill ${running.pid}), or use another WEFT_HOME.`);
  }
  const children: Child[] = [];
  let stopping = false;
  const cli = WEFT_ENTRY;
  const say = (s: string) => process.stdout.write(s + '\n');

  // Weft's own components prefix their log lines themselves; apps get "[name] " here.
  const start = (label: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): ChildProcess => {
    const own = stage(label) > 0;
    const proc = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push({ label, proc });
    const prefix = (stream: NodeJS.ReadableStream | null, out: NodeJS.WriteStream) => {
      if (!stream) return;
      readline.createInterface({ input: stream }).on('line', (line) => {
        if (!line.startsWith(READY_PREFIX)) out.write(own ? `${line}\n` : `[${label}] ${line}\n`);
      });
    };
    prefix(proc.stderr, process.stderr);
    prefix(proc.stdout, process.stdout);
    proc.on('exit', (code, signal) => {
      if (stopping) return;
      process.stderr.write(`[weft up] ${label} exited (${signal ?? `code ${code}`})\n`);
      if (label === 'control') {
        process.stderr.write(`[weft up] the sidecars keep serving their last config. Restart the control plane with:\n  weft control ${controlArgs.join(' ')}\n`);
      }
    });
    return proc;
  };

  const stopAll = async () => {
    stopping = true;
    // Apps first, then sidecars, then the control plane, each stage at once: no app loses its
    // sidecar while it still runs, and no sidecar sees its control plane go before it stops.
    for (const n of [0, 1, 2]) await Promise.all(children.filter((c) => stage(c.label) === n).map((c) => stopChild(c.proc)));
    try {
      // Only the state this weft up wrote: never another one's.
      if (wroteState) fs.rmSync(path.join(home, 'up.json'));
    } catch {}
  };
  let wroteState = false;

  // Ctrl-C in a terminal reaches every process of the group at once; mark the stop before any
  // child's exit is seen, so that it is not reported as a crash.
  const markStopping = () => (stopping = true);
  process.once('SIGINT', markStopping);
  process.once('SIGTERM', markStopping);
  const signal = untilSignal();
  const controlArgsFor = (adminPort: number | string, xdsPort: number | string) => [
    '--data-dir', path.join(home, 'data'),
    '--admin-port', String(adminPort),
    '--xds-port', String(xdsPort),
    ...(opts.heartbeat ? ['--heartbeat', opts.heartbeat] : []),
    ...(opts.caDir ? ['--ca-dir', opts.caDir] : []),
    ...(opts.caIntermediate ? ['--ca-intermediate'] : []),
  ];
  let controlArgs = controlArgsFor(opts.adminPort, opts.xdsPort);
  try {
    const cpProc = start('control', process.execPath, [cli, 'control', ...controlArgs], { ...process.env, WEFT_UP_PID: String(process.pid) });
    const cp = await readyLine(cpProc, 'the control plane', 15_000);
    const admin = cp.admin as string;
    const xds = cp.xds as string;
    const rootCert = cp.rootCert as string;
    // From now on, a restart of `weft control` should come back on the same ports.
    controlArgs = controlArgsFor(new URL(admin).port, xds.slice(xds.lastIndexOf(':') + 1));

    // The mesh file's config goes into a new store only: a restart keeps what is stored, so a
    // change made with `weft apply` survives it (docs/config-lifecycle.md).
    const stored = (await callAdmin(admin, 'GET', '/api/v1/resources')).items as { kind: string; metadata: { namespace: string; name: string } }[];
    if (stored.length && opts.resetConfig) {
      for (const r of stored) await callAdmin(admin, 'DELETE', `/api/v1/resources/${r.kind}/${encodeURIComponent(r.metadata.namespace)}/${encodeURIComponent(r.metadata.name)}`);
      say(`[weft up] --reset-config: deleted the ${stored.length} stored resource(s)`);
    }
    if (stored.length && !opts.resetConfig) {
      const { revision } = await callAdmin(admin, 'GET', '/version');
      say(`[weft up] keeping the ${stored.length} resource(s) stored in ${path.join(home, 'data')} (revision ${revision}); the mesh file's config is not applied again (weft up --reset-config starts from it)`);
    } else {
      for (const c of configs) {
        const res = await callAdmin(admin, 'POST', `/api/v1/apply?source=${encodeURIComponent(c.file)}`, { text: c.text, type: 'application/yaml' });
        for (const r of res.results) {
          say(`[weft up] ${r.resource} ${r.action}`);
          for (const w of r.warnings ?? []) say(`[weft up] Warning: ${w}`);
        }
      }
    }

    const state: UpState = { admin, xds, pid: process.pid, controlPid: cpProc.pid!, controlArgs, workloads: [] };
    // Written now, so that a second weft up started meanwhile finds this one; again once all run.
    fs.writeFileSync(path.join(home, 'up.json'), JSON.stringify(state, null, 2));
    wroteState = true;
    const pending: Promise<void>[] = [];
    const allocator = new PortAllocator();
    for (const w of mesh.workloads) {
      pending.push(startWorkload(w, dir, admin, { xds, rootCert }, start, state, () => allocator.next()));
    }
    await Promise.all(pending);
    // Every sidecar holds the latest config (each workload's endpoint included) before the user
    // is told to send traffic: a registration's push is debounced, and a first request sent
    // before a client's sidecar has the endpoint would get a 503.
    await waitForSync(admin, mesh.workloads.length, 15_000, say);
    fs.writeFileSync(path.join(home, 'up.json'), JSON.stringify(state, null, 2));
    wroteState = true;
    printSummary(mesh.workloads, state, say);
  } catch (e) {
    await stopAll();
    throw e;
  }
  const s = await signal;
  say(`\n[weft up] ${s}: stopping ${children.length} processes`);
  await stopAll();
  say('[weft up] stopped');
  return 0;
}

async function startWorkload(
  w: MeshWorkload,
  dir: string,
  admin: string,
  control: { xds: string; rootCert: string },
  start: (label: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string) => ChildProcess,
  state: UpState,
  freePort: () => Promise<number>,
): Promise<void> {
  // Workloads start at once: ports come from one allocator, so no two get the same one.
  const outboundPort = await freePort();
  const serves = w.service !== undefined;
  // Each service port gets its own app port and its own sidecar inbound listener.
  const ports: { name: string; port: number; appProtocol?: string; inboundPort: number; appPort: number }[] = [];
  if (serves) for (const p of w.ports) ports.push({ ...p, appPort: await freePort(), inboundPort: await freePort() });
  const appPort = ports[0]?.appPort;
  const inboundPort = ports[0]?.inboundPort;
  // Each sidecar proves who it is with a join token of its own, made for it here (good once, for
  // ten minutes), handed over in its environment, not its command line (which others can read).
  const { token } = await callAdmin(admin, 'POST', '/api/v1/tokens', { text: JSON.stringify({ workload: w.name, namespace: w.namespace, serviceAccount: w.serviceAccount }), type: 'application/json' });
  const args = [
    WEFT_ENTRY, 'proxy',
    '--xds', control.xds,
    '--ca-cert', control.rootCert,
    '--workload', w.name,
    '--namespace', w.namespace,
    '--outbound-port', String(outboundPort),
    ...Object.entries(w.labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
    ...(serves ? ['--service', w.service!, ...ports.flatMap((p) => ['--port', `${p.name}:${p.port}:${p.inboundPort}:${p.appPort}${p.appProtocol ? `:${p.appProtocol}` : ''}`])] : []),
  ];
  const sidecar = start(`${w.name} sidecar`, process.execPath, [...SIDECAR_NODE_FLAGS, ...args], sidecarEnv({ ...process.env, WEFT_UP_PID: String(process.pid), WEFT_JOIN_TOKEN: token as string }));
  let appProc: ChildProcess | undefined;
  if (w.command) {
    const proxy = `http://127.0.0.1:${outboundPort}`;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...w.env,
      // $PORT is the first port's; $PORT_<NAME> each port's own (http-web -> $PORT_HTTP_WEB).
      ...(appPort !== undefined ? { PORT: String(appPort) } : {}),
      ...Object.fromEntries(ports.map((p) => [portEnvName(p.name), String(p.appPort)])),
      HTTP_PROXY: proxy,
      http_proxy: proxy,
      NODE_USE_ENV_PROXY: '1',
      NO_PROXY: 'localhost,127.0.0.1,::1',
      no_proxy: 'localhost,127.0.0.1,::1',
      WEFT_WORKLOAD: w.name,
    };
    const [cmd, ...cargs] = w.command;
    appProc = start(w.name, cmd === 'node' ? process.execPath : cmd, cargs, env, path.resolve(dir));
    appProc.on('error', (e) => process.stderr.write(`[weft up] cannot start ${w.name}: ${e.message}\n`));
  }
  const ready = await readyLine(sidecar, `the sidecar of ${w.name}`, 15_000);
  if (appPort !== undefined) {
    for (const p of ports) await waitForPort(p.appPort, `the app of ${w.name} (${portEnvName(p.name)}=${p.appPort})`, 15_000, appProc);
    await waitForHealthy(admin, w, 15_000);
  }
  state.workloads.push({
    name: w.name,
    namespace: w.namespace,
    service: w.service,
    outbound: `127.0.0.1:${outboundPort}`,
    inbound: inboundPort !== undefined ? `127.0.0.1:${inboundPort}` : undefined,
    app: appPort !== undefined ? `127.0.0.1:${appPort}` : undefined,
    ...(ports.length ? { ports: ports.map((p) => ({ name: p.name, port: p.port, protocol: selectProtocol(p), inbound: `127.0.0.1:${p.inboundPort}`, app: `127.0.0.1:${p.appPort}` })) } : {}),
    admin: ready.admin as string,
    sidecarPid: sidecar.pid,
    appPid: appProc?.pid,
  });
}

function printSummary(workloads: MeshWorkload[], state: UpState, say: (s: string) => void): void {
  say('');
  say(`Weft is up. Control plane: admin API ${state.admin}, xDS ${state.xds}`);
  say('');
  const rows = [['WORKLOAD', 'SERVICE', 'APP', 'SIDECAR IN', 'SIDECAR OUT (HTTP_PROXY)', 'SIDECAR ADMIN', 'SERVICE PORT']];
  for (const w of workloads) {
    const s = state.workloads.find((x) => x.name === w.name && x.namespace === w.namespace)!;
    const ps = s.ports ?? [];
    const first = ps[0];
    const portCol = (p: (typeof ps)[number]) => `${p.port} ${p.name} (${p.protocol === 'Unsupported' ? 'detected' : p.protocol})`;
    rows.push([workloads.some((x) => x.name === w.name && x !== w) ? `${w.namespace}/${w.name}` : w.name, w.service ?? '-', s.app ?? '-', s.inbound ?? '-', s.outbound ?? '-', s.admin ?? '-', first ? portCol(first) : '-']);
    for (const p of ps.slice(1)) rows.push(['', '', p.app, p.inbound, '', '', portCol(p)]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) say('  ' + r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
  say('');
  const weft = path.relative(process.cwd(), path.join(path.dirname(WEFT_ENTRY), 'weft')) || 'weft';
  say('Send traffic (in another terminal, from this directory):');
  const hint = trafficHint(workloads, state);
  if (hint) say(`  ${weft} exec ${hint}`);
  say(`  ${weft} get proxies        # the config revision each sidecar has ACKed, and whether it is current`);
  say(`  ${weft} apply -f FILE      # change routing live`);
  say('Ctrl-C stops everything.');
}

/**
 * A command that sends one request through the mesh, from the mesh file's own services: from a
 * workload that serves nothing (else the first one) to the first service with an HTTP port, on
 * that port, in the caller's namespace or by "name.namespace".
 */
export function trafficHint(workloads: MeshWorkload[], state: Pick<UpState, 'workloads'>): string | undefined {
  const client = workloads.find((w) => !w.service) ?? workloads[0];
  for (const w of workloads) {
    if (!w.service || w === client) continue;
    const ports = state.workloads.find((x) => x.name === w.name && x.namespace === w.namespace)?.ports ?? [];
    const http = ports.find((p) => ['HTTP', 'HTTP2', 'Unsupported'].includes(p.protocol)) ?? (ports.length ? undefined : { port: 80 });
    if (!http || !client) continue;
    const host = w.namespace === client.namespace ? w.service : `${w.service}.${w.namespace}`;
    const who = workloads.some((x) => x.name === client.name && x !== client) ? `${client.namespace}/${client.name}` : client.name;
    return `${who} -- curl -s http://${host}${http.port === 80 ? '' : `:${http.port}`}/`;
  }
  return undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Waits for the child's WEFT_READY line; fails with what it printed if it exits first. */
function readyLine(proc: ChildProcess, what: string, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: proc.stdout! });
    const timer = setTimeout(() => reject(new CliError(`${what} did not become ready within ${timeoutMs / 1000}s`)), timeoutMs);
    rl.on('line', (line) => {
      if (!line.startsWith(READY_PREFIX)) return;
      clearTimeout(timer);
      resolve(JSON.parse(line.slice(READY_PREFIX.length)));
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new CliError(`${what} exited with code ${code} before it was ready (see its output above)`));
    });
  });
}

async function waitForPort(port: number, what: string, timeoutMs: number, proc?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: number | null | undefined;
  proc?.once('exit', (code) => (exited = code));
  for (;;) {
    if (exited !== undefined) throw new CliError(`${what} exited with code ${exited} before it listened`);
    if (await canConnect(port)) return;
    if (Date.now() > deadline) throw new CliError(`${what} did not listen on 127.0.0.1:${port} within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until `n` proxies are connected, no push is pending, and every proxy has ACKed the latest config. */
async function waitForSync(admin: string, n: number, timeoutMs: number, say: (s: string) => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const data = await callAdmin(admin, 'GET', '/api/v1/proxies');
    if (!data.pushPending && data.proxies.length >= n && data.proxies.every((p: any) => p.current)) return;
    if (Date.now() > deadline) {
      say(`[weft up] not every sidecar has ACKed the latest config after ${timeoutMs / 1000}s; see weft get proxies`);
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until the control plane lists the workload as a healthy endpoint (its sidecar probes the app). */
async function waitForHealthy(admin: string, w: MeshWorkload, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const data = await callAdmin(admin, 'GET', '/api/v1/endpoints');
    if (data.workloads.some((x: any) => x.name === w.name && x.namespace === w.namespace && x.healthy)) return;
    if (Date.now() > deadline) throw new CliError(`${w.name} did not become a healthy endpoint within ${timeoutMs / 1000}s (its sidecar cannot reach the app)`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
