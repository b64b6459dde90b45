// `npm run bench` (node bench/run.ts [--profile] [--out FILE]): measures what the two-hop Weft
// path (client sidecar -> server sidecar) costs, next to a direct connection and to two haproxy
// hops, and how the control plane copes with many proxies (bench/scale.ts: N = 1 and N = 1,000
// simulated proxies), and writes docs/performance.md (regenerated whole on each run).
//
// Per path: a 2 s warm-up, then 10 s at a FIXED 1,000 requests/second over 16 connections
// (latency, sidecar RSS and CPU), then 1 s warm-up and 6 s at maximum throughput over 64
// connections. The load generator is `hey` for both; haproxy and hey are installed with apt-get
// if missing (as root). Everything listens on 127.0.0.1 and every process started here is
// stopped again, also when the bench fails.
//
// --profile: also runs a third, CPU-profiled client sidecar (node --cpu-prof) through a
// max-throughput phase and writes its top self-time functions into the report. Without it, the
// profile section of the previous report is carried over.
//
// Exit code: 0 when the report was written (even if a target fails: the report says so),
// 1 when the bench itself broke (a tool missing, a process did not start, a request failed).
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { SIDECAR_NODE_FLAGS, WEFT_ENTRY, sidecarEnv } from '../src/cli/up.ts';
import { freePort } from '../src/util/net.ts';
import { analyzeProfile, renderProfile, type ProfileSummary } from './profile.ts';
import { renderReport, type BenchResult, type PathResult, type ProcUsage } from './report.ts';
import { ScaleError, runScale } from './scale.ts';
import { BenchError, type Proc, benchCpuSeconds, cpuSeconds, describeExit, launch, machineCpuSeconds, memMB, rssMB, running, sleep, stop, stopAll, waitForLine, waitForPort } from './proc.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
// The entry point users run (it enables Node's compile cache), as `weft up` runs it.
const CLI = WEFT_ENTRY;

export const RATE = 1000; // requests/second, fixed-rate phase
export const CONNS = 16; // connections, fixed-rate phase
export const MAX_CONNS = 64; // connections, max-throughput phase
const WARMUP = '2s';
const FIXED = '10s';
const MAX_WARMUP = '1s';
const MAX = '6s';
const PROFILE_SECONDS = 8;
const SERVICE = 'bench-server';
const CLUSTER = `outbound|80||${SERVICE}.default.svc.cluster.local`;

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    log(`${sig}: stopping ${running.size} processes`);
    Promise.all([...running].map(stop)).finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------
// Tools

function which(cmd: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    if (!dir) continue;
    const f = path.join(dir, cmd);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch {}
  }
  return undefined;
}

function aptInstall(pkgs: string[]): boolean {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  return spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env }).status === 0;
}

/** haproxy and hey, installed with apt-get if missing. */
function ensureTools(): { haproxy: string; hey: string } {
  const wanted = ['haproxy', 'hey'];
  let missing = wanted.filter((t) => !which(t));
  if (missing.length) {
    if (process.getuid?.() !== 0) throw new BenchError(`${missing.join(' and ')} not installed, and the bench is not root so it cannot install them; run: sudo apt-get install -y ${missing.join(' ')}`);
    log(`installing ${missing.join(' ')} with apt-get`);
    if (!aptInstall(missing)) {
      log('apt-get install failed; running apt-get update and trying again');
      spawnSync('apt-get', ['update'], { stdio: 'inherit' });
      aptInstall(missing);
    }
    missing = wanted.filter((t) => !which(t));
    if (missing.length) throw new BenchError(`could not install ${missing.join(' and ')} with apt-get (see its output above)`);
  }
  return { haproxy: which('haproxy')!, hey: which('hey')! };
}

function packageVersion(pkg: string): string {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout ? r.stdout.trim() : 'unknown';
}

// ---------------------------------------------------------------------------------------------
// hey

export interface HeyResult {
  seconds: number;
  rps: number;
  latencyMs: Record<string, number>; // "10", "25", "50", "75", "90", "95", "99" -> ms
  ok: number;
  statuses: Record<string, number>;
  errors: string[];
}

export function parseHey(out: string): HeyResult {
  const num = (re: RegExp) => {
    const m = re.exec(out);
    return m ? Number(m[1]) : NaN;
  };
  const latencyMs: Record<string, number> = {};
  for (const m of out.matchAll(/^\s*(\d+)%+ in ([\d.]+) secs/gm)) latencyMs[m[1]] = Number(m[2]) * 1000;
  const statuses: Record<string, number> = {};
  let ok = 0;
  for (const m of out.matchAll(/^\s*\[(\d{3})\]\s+(\d+) responses/gm)) {
    statuses[m[1]] = Number(m[2]);
    if (m[1].startsWith('2')) ok += Number(m[2]);
  }
  const errors: string[] = [];
  const e = out.indexOf('Error distribution:');
  if (e >= 0) for (const m of out.slice(e).matchAll(/^\s*\[(\d+)\]\s+(.+)$/gm)) errors.push(`${m[1]} x ${m[2]}`);
  return { seconds: num(/Total:\s+([\d.]+) secs/), rps: num(/Requests\/sec:\s+([\d.]+)/), latencyMs, ok, statuses, errors };
}

async function hey(heyBin: string, label: string, url: string, opts: { duration: string; conns: number; rate?: number; host?: string }): Promise<HeyResult> {
  const args = ['-z', opts.duration, '-c', String(opts.conns), '-t', '10'];
  if (opts.rate) args.push('-q', String(opts.rate / opts.conns)); // -q is per worker
  if (opts.host) args.push('-host', opts.host);
  args.push(url);
  const p = launch(`hey (${label})`, heyBin, args);
  let out = '';
  p.proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((resolve) => p.proc.once('exit', (c) => resolve(c)));
  if (code !== 0) throw new BenchError(`${describeExit(p)}\n${out}`);
  const r = parseHey(out);
  const non2xx = Object.entries(r.statuses).filter(([s]) => !s.startsWith('2'));
  if (r.errors.length || non2xx.length || r.ok === 0 || Number.isNaN(r.rps)) {
    throw new BenchError(
      `${label}: requests failed (hey ${args.join(' ')}):` +
        (non2xx.length ? `\n  non-2xx responses: ${non2xx.map(([s, n]) => `${n} x ${s}`).join(', ')}` : '') +
        (r.errors.length ? `\n  errors:\n    ${r.errors.join('\n    ')}` : '') +
        (r.ok === 0 ? '\n  no successful response at all' : ''),
    );
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// /proc sampling: RSS (peak of samples) and CPU time (utime + stime) of the proxies

interface Watched {
  label: string;
  pid: number;
}

/** Runs `fn` while sampling the processes' RSS every 200 ms; CPU seconds are the delta over `fn`. */
async function watch<T>(procs: Watched[], fn: () => Promise<T>): Promise<{ result: T; otherCores: number; usage: Map<string, { peakRssMB: number; peakAnonMB: number; endRssMB: number; cpuS: number }> }> {
  const machine0 = machineCpuSeconds();
  const bench0 = benchCpuSeconds();
  const t0 = performance.now();
  const peak = new Map(procs.map((p) => [p.label, rssMB(p.pid)]));
  const peakAnon = new Map(procs.map((p) => [p.label, memMB(p.pid).anon]));
  const cpu0 = new Map(procs.map((p) => [p.label, cpuSeconds(p.pid)]));
  const sample = () => {
    for (const p of procs) {
      const m = memMB(p.pid);
      peak.set(p.label, Math.max(peak.get(p.label)!, m.rss));
      peakAnon.set(p.label, Math.max(peakAnon.get(p.label)!, m.anon));
    }
  };
  const timer = setInterval(sample, 200);
  let result: T;
  try {
    result = await fn();
  } finally {
    clearInterval(timer);
  }
  sample();
  // Other work on the machine during the phase, in cores: it competes with the bench for the CPUs.
  const otherCores = Math.max(0, machineCpuSeconds() - machine0 - (benchCpuSeconds() - bench0)) / ((performance.now() - t0) / 1000);
  const usage = new Map(procs.map((p) => [p.label, { peakRssMB: peak.get(p.label)!, peakAnonMB: peakAnon.get(p.label)!, endRssMB: rssMB(p.pid), cpuS: cpuSeconds(p.pid) - cpu0.get(p.label)! }]));
  return { result, otherCores, usage };
}

// ---------------------------------------------------------------------------------------------
// One path: warm-up, fixed rate, max throughput

async function measure(heyBin: string, name: string, url: string, host: string | undefined, procs: Watched[]): Promise<PathResult> {
  const idle = new Map(procs.map((p) => [p.label, rssMB(p.pid)]));
  log(`${name}: warm-up ${WARMUP}, then ${FIXED} at ${RATE} rps over ${CONNS} connections`);
  await hey(heyBin, `${name} warm-up`, url, { duration: WARMUP, conns: CONNS, rate: RATE, host });
  const fixed = await watch(procs, () => hey(heyBin, `${name} fixed rate`, url, { duration: FIXED, conns: CONNS, rate: RATE, host }));
  log(`${name}: p50 ${fixed.result.latencyMs['50'].toFixed(1)} ms, p99 ${fixed.result.latencyMs['99'].toFixed(1)} ms, ${fixed.result.rps.toFixed(0)} rps; now ${MAX} at max throughput over ${MAX_CONNS} connections`);
  await hey(heyBin, `${name} max warm-up`, url, { duration: MAX_WARMUP, conns: MAX_CONNS, host });
  const max = await watch(procs, () => hey(heyBin, `${name} max throughput`, url, { duration: MAX, conns: MAX_CONNS, host }));
  log(`${name}: max ${max.result.rps.toFixed(0)} rps`);
  const usage: ProcUsage[] = procs.map((p) => {
    const f = fixed.usage.get(p.label)!;
    const m = max.usage.get(p.label)!;
    return {
      label: p.label,
      idleRssMB: idle.get(p.label)!,
      fixedPeakRssMB: f.peakRssMB,
      fixedPeakAnonMB: f.peakAnonMB,
      fixedEndRssMB: f.endRssMB,
      fixedCpuPer1k: (f.cpuS / fixed.result.ok) * 1000,
      fixedCpuShare: f.cpuS / fixed.result.seconds,
      maxPeakRssMB: m.peakRssMB,
      maxCpuPer1k: (m.cpuS / max.result.ok) * 1000,
    };
  });
  const other = Math.max(fixed.otherCores, max.otherCores);
  if (other > 0.1) log(`${name}: warning: other processes on this machine used up to ${other.toFixed(2)} cores during the measurement`);
  return { name, fixed: fixed.result, max: max.result, usage, otherCores: { fixed: fixed.otherCores, max: max.otherCores } };
}

// ---------------------------------------------------------------------------------------------
// The three paths

/**
 * The upstream server of all three paths. It runs as the sidecars do (same Node flags and
 * environment, compile cache on), so that its memory is the floor of any Node process serving
 * HTTP here: the baseline for the sidecars' RSS.
 */
async function startServer(): Promise<{ proc: Proc; port: number }> {
  const env = sidecarEnv({ ...process.env, NODE_COMPILE_CACHE: path.join(os.tmpdir(), 'node-compile-cache') });
  const start = async () => {
    const proc = launch('bench server', process.execPath, [...SIDECAR_NODE_FLAGS, path.join(ROOT, 'bench', 'server.ts'), '0'], { env });
    const m = await waitForLine(proc, /^BENCH_SERVER_READY (\d+)$/, 15_000);
    return { proc, port: Number(m[1]) };
  };
  await stop((await start()).proc); // the first start fills the compile cache
  return start();
}

async function directPath(heyBin: string, serverPort: number, serverPid: number): Promise<PathResult> {
  return measure(heyBin, 'direct', `http://127.0.0.1:${serverPort}/`, undefined, [{ label: NODE_FLOOR_LABEL, pid: serverPid }]);
}

/** The bench server's row in the memory table. */
export const NODE_FLOOR_LABEL = 'node:http server alone (bench/server.ts, run as the sidecars are): the Node floor';

function haproxyConfig(listenPort: number, backendPort: number): string {
  return `# written by bench/run.ts
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
frontend in
    bind 127.0.0.1:${listenPort}
    default_backend out
backend out
    server s1 127.0.0.1:${backendPort}
`;
}

async function haproxyPath(haproxyBin: string, heyBin: string, serverPort: number, tmp: string): Promise<PathResult> {
  const procs: Proc[] = [];
  try {
    const inner = await freePort(); // server side: -> bench server
    const outer = await freePort(); // client side: -> inner haproxy
    for (const [label, listen, backend] of [['haproxy (server side)', inner, serverPort], ['haproxy (client side)', outer, inner]] as const) {
      const cfg = path.join(tmp, `${label.includes('server') ? 'server' : 'client'}.haproxy.cfg`);
      fs.writeFileSync(cfg, haproxyConfig(listen, backend));
      const p = launch(label, haproxyBin, ['-db', '-f', cfg]);
      procs.push(p);
      await waitForPort(listen, p, 10_000);
    }
    await checkOk(`http://127.0.0.1:${outer}/`, undefined, 'the haproxy path');
    return await measure(heyBin, 'haproxy', `http://127.0.0.1:${outer}/`, undefined, procs.map((p) => ({ label: p.label, pid: p.proc.pid! })).reverse());
  } finally {
    await stopAll(procs);
  }
}

/** One GET through the path must answer 200 before it is measured. */
async function checkOk(url: string, host: string | undefined, what: string): Promise<void> {
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

async function getJson(url: string): Promise<any> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return res.json();
}

interface Mesh {
  procs: Proc[];
  xds: string;
}

async function startControlPlane(tmp: string): Promise<Mesh> {
  const cp = launch('weft control', process.execPath, [CLI, 'control', '--data-dir', path.join(tmp, 'control-data'), '--admin-port', '0', '--xds-port', '0']);
  const m = await waitForLine(cp, /^WEFT_READY (.*)$/, 30_000);
  return { procs: [cp], xds: JSON.parse(m[1]).xds };
}

/** A sidecar process; resolves once it printed WEFT_READY. */
async function startSidecar(mesh: Mesh, label: string, args: string[], nodeFlags: string[] = []): Promise<{ proc: Proc; admin: string }> {
  const p = launch(label, process.execPath, [...SIDECAR_NODE_FLAGS, ...nodeFlags, CLI, 'proxy', '--xds', mesh.xds, ...args, '--admin-port', '0'], { env: sidecarEnv(process.env) });
  mesh.procs.push(p);
  const m = await waitForLine(p, /^WEFT_READY (.*)$/, 30_000);
  return { proc: p, admin: JSON.parse(m[1]).admin };
}

/** A client-side sidecar, ready once its config_dump has the bench-server endpoint and a request gets 200. */
async function startClientSidecar(mesh: Mesh, workload: string, nodeFlags: string[] = []): Promise<{ proc: Proc; url: string }> {
  const port = await freePort();
  const sc = await startSidecar(mesh, `weft sidecar (${workload})`, ['--workload', workload, '--outbound-port', String(port)], nodeFlags);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const dump = await getJson(`${sc.admin}/config_dump`).catch(() => undefined);
    const cla = dump?.endpoints?.find((e: any) => e.cluster_name === CLUSTER);
    if (cla?.endpoints?.some((l: any) => l.lb_endpoints?.length > 0)) break;
    if (Date.now() > deadline) throw new BenchError(`the client sidecar's config_dump (${sc.admin}/config_dump) has no endpoint for ${CLUSTER} after 30s`);
    await sleep(100);
  }
  const url = `http://127.0.0.1:${port}/`;
  await checkOk(url, SERVICE, `the Weft path (${workload})`);
  return { proc: sc.proc, url };
}

async function weftPath(heyBin: string, serverPort: number, tmp: string, profile: boolean): Promise<{ result: PathResult; profile?: ProfileSummary }> {
  let mesh: Mesh | undefined;
  try {
    mesh = await startControlPlane(tmp);
    // Measure sidecars as they run after their first start: bin/weft.mjs turns on Node's compile
    // cache, and a sidecar whose code is not in it yet (the first start after an install or an
    // edit) loads Node's TypeScript stripper, about 20 MB more RSS (docs/performance.md). One
    // throwaway sidecar fills the cache.
    const warm = await startSidecar(mesh, 'weft sidecar (compile-cache warm-up)', ['--workload', 'warm-up', '--outbound-port', String(await freePort())]);
    await stop(warm.proc);
    const inbound = await freePort();
    const outbound = await freePort();
    const server = await startSidecar(mesh, 'weft sidecar (server side)', [
      '--workload', 'bench-server', '--service', SERVICE, '--inbound-port', String(inbound), '--app-port', String(serverPort), '--outbound-port', String(outbound),
    ]);
    const client = await startClientSidecar(mesh, 'bench-client');
    const watched = [
      { label: 'Weft sidecar (client side)', pid: client.proc.proc.pid! },
      { label: 'Weft sidecar (server side)', pid: server.proc.proc.pid! },
    ];
    const result = await measure(heyBin, 'Weft', client.url, SERVICE, watched);
    if (!profile) return { result };

    // A separate client sidecar under --cpu-prof, so profiling does not slow the figures above.
    await stop(client.proc);
    const profDir = path.join(tmp, 'cpuprofile');
    fs.mkdirSync(profDir, { recursive: true });
    const prof = await startClientSidecar(mesh, 'bench-client-prof', ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
    log(`profile: ${PROFILE_SECONDS}s at max throughput through a --cpu-prof client sidecar`);
    await hey(heyBin, 'profile warm-up', prof.url, { duration: '1s', conns: MAX_CONNS, host: SERVICE });
    const t0 = performance.now();
    const run = await hey(heyBin, 'profile', prof.url, { duration: `${PROFILE_SECONDS}s`, conns: MAX_CONNS, host: SERVICE });
    const t1 = performance.now();
    await stop(prof.proc);
    const t2 = performance.now();
    if (prof.proc.proc.exitCode !== 0) throw new BenchError(`the profiled sidecar did not exit cleanly (${describeExit(prof.proc)}), so it wrote no profile`);
    const files = fs.readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
    if (files.length !== 1) throw new BenchError(`expected one .cpuprofile in ${profDir}, found ${files.length}`);
    const data = JSON.parse(fs.readFileSync(path.join(profDir, files[0]), 'utf8'));
    // The profile ends when the process exits (~t2): keep the samples from the load phase only,
    // trimmed by 0.5 s on both sides.
    const summary = analyzeProfile(data, { fromEndMs: t2 - t0 - 500, toEndMs: t2 - t1 + 500 }, ROOT);
    summary.rps = run.rps;
    return { result, profile: summary };
  } finally {
    if (mesh) await stopAll(mesh.procs);
  }
}

// ---------------------------------------------------------------------------------------------

/** How busy the machine's CPUs are (0..1 of all of them), over `ms`, before the bench starts anything. */
async function cpuBusy(ms: number): Promise<number> {
  const read = () => {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + (f[4] ?? 0); // idle + iowait
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  };
  const a = read();
  await sleep(ms);
  const b = read();
  return b.total > a.total ? 1 - (b.idle - a.idle) / (b.total - a.total) : 0;
}

function machine(haproxyBin: string): BenchResult['machine'] {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const mem = /MemTotal:\s+(\d+) kB/.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
  const hv = spawnSync(haproxyBin, ['-v'], { encoding: 'utf8' }).stdout?.split('\n')[0] ?? '';
  return {
    nproc: Number(spawnSync('nproc', [], { encoding: 'utf8' }).stdout?.trim()) || os.availableParallelism(),
    cpu: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    memGB: mem ? Number(mem[1]) / 1024 / 1024 : os.totalmem() / 2 ** 30,
    kernel: os.release(),
    node: process.version,
    haproxy: /HAProxy version (\S+)/.exec(hv)?.[1] ?? packageVersion('haproxy'),
    hey: packageVersion('hey'),
    sidecarFlags: SIDECAR_NODE_FLAGS.join(' '),
    loadavg: os.loadavg()[0],
    busyBefore: 0,
    env: ['NODE_COMPILE_CACHE', 'MALLOC_ARENA_MAX'].filter((k) => process.env[k]).map((k) => `${k}=${process.env[k]}`),
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { profile: { type: 'boolean', default: false }, out: { type: 'string', default: path.join(ROOT, 'docs', 'performance.md') } } });
  const started = Date.now();
  const tools = ensureTools();
  const host = machine(tools.haproxy);
  host.busyBefore = await cpuBusy(1000);
  if (host.busyBefore > 0.1) log(`warning: the CPUs were ${(host.busyBefore * 100).toFixed(0)}% busy before the bench started: other work on this machine will skew the figures`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-'));
  let server: { proc: Proc; port: number } | undefined;
  try {
    server = await startServer();
    await checkOk(`http://127.0.0.1:${server.port}/`, undefined, 'the bench server');
    const direct = await directPath(tools.hey, server.port, server.proc.proc.pid!);
    const weft = await weftPath(tools.hey, server.port, tmp, values.profile!);
    const haproxy = await haproxyPath(tools.haproxy, tools.hey, server.port, tmp);
    // The control plane with many simulated proxies (bench/scale.ts): fails the bench on a NACK
    // or a proxy that never gets its config.
    const scale = await runScale().catch((e: unknown) => {
      throw e instanceof ScaleError ? new BenchError(`control plane scale: ${e.message}`) : e;
    });
    const result: BenchResult = {
      date: new Date(),
      machine: host,
      setup: { rate: RATE, conns: CONNS, maxConns: MAX_CONNS, warmup: WARMUP, fixed: FIXED, maxWarmup: MAX_WARMUP, max: MAX },
      direct,
      weft: weft.result,
      haproxy,
      scale,
      durationS: (Date.now() - started) / 1000,
    };
    const out = values.out!;
    const previous = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
    const profileSection = weft.profile ? renderProfile(weft.profile, result.date) : carriedOverProfile(previous);
    const handWritten = fs.readFileSync(path.join(ROOT, 'bench', 'where-the-time-goes.md'), 'utf8');
    const { text, verdicts } = renderReport(result, handWritten, profileSection);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, text);
    log(`wrote ${path.relative(process.cwd(), out)} in ${result.durationS.toFixed(0)}s`);
    for (const v of verdicts) log(`${v.pass ? 'PASS' : 'FAIL'}  ${v.target}: ${v.actual}`);
    return 0;
  } finally {
    if (server) await stop(server.proc);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

const PROFILE_BEGIN = '<!-- profile:begin -->';
const PROFILE_END = '<!-- profile:end -->';

function carriedOverProfile(previous: string): string {
  const a = previous.indexOf(PROFILE_BEGIN);
  const b = previous.indexOf(PROFILE_END);
  if (a >= 0 && b > a) return previous.slice(a, b + PROFILE_END.length);
  return `${PROFILE_BEGIN}\n_No profile yet: run \`npm run bench -- --profile\`._\n${PROFILE_END}`;
}

try {
  process.exitCode = await main();
} catch (e) {
  process.stderr.write(`[bench] FAILED: ${e instanceof BenchError ? e.message : ((e as Error).stack ?? e)}\n`);
  process.exitCode = 1;
}
