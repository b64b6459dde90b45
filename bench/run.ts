// `npm run bench` (node bench/run.ts [--only PHASE,...] [--profile] [--out FILE]): measures what
// the two-hop Weft path (client sidecar -> server sidecar) costs, next to a direct connection and
// to two haproxy hops, and writes docs/performance.md (regenerated whole on each run). Phases:
//
//   h1      HTTP/1.1: direct, Weft, haproxy (this file). Per path: 2 s warm-up, then 3 x 10 s at
//           a FIXED 1,000 requests/second over 16 connections with hey (latency, the proxies' RSS,
//           RssAnon and CPU; medians of the 3, bench/measure.ts); 1 s warm-up and 3 x 10 s at the
//           same rate with wrk paced evenly (bench/pace.lua); then 1 s warm-up and 3 x 6 s at
//           maximum throughput over 64 connections with hey.
//   routes  the Weft path again, with a route table of 1 VirtualService and of 1,000 in the client
//           sidecar, measured in turn at the fixed rate with wrk paced (bench/routes.ts).
//   h2      HTTP/2 cleartext through two sidecars against direct, with h2load (bench/protocols.ts).
//   grpc    gRPC unary through two sidecars against direct, with bench/grpc-load.ts.
//   memory  ten sidecars at once: Rss, Pss and RssAnon of each (bench/memory.ts).
//   instr   instructions per request in user space under callgrind: haproxy, the bare node:http
//           server and a Weft sidecar, one hop each (bench/instructions.ts); a figure that does not
//           move with what else the machine is doing.
//   mtls    mutual TLS between the sidecars against plain text, and against haproxy with TLS
//           between its two hops; new handshakes per second (bench/mtls.ts).
//   telemetry  Istio's metrics, access log and 1% tracing on against off, in paired rounds; then a
//           10-minute soak at 1,000 rps over 50 paths with telemetry on; then each sidecar's
//           instructions per request under callgrind, client side and server side, off and on
//           (bench/telemetry.ts).
//   scale   the control plane with N = 1 and N = 1,000 simulated proxies, and 1,000 over 10
//           namespaces (bench/scale.ts).
//
// --only h2 (or h1,memory, ...) runs those phases alone and writes the report to
// bench/out/performance.md (git-ignored) unless --out is given, so that docs/performance.md
// always holds a whole run. The tools (haproxy, hey, wrk, h2load from nghttp2-client) are
// installed with apt-get if missing (as root). Everything listens on 127.0.0.1 and every process
// started here is stopped again, also when the bench fails.
//
// --profile: also runs a third, CPU-profiled client sidecar (node --cpu-prof) through a
// max-throughput phase and writes its top self-time functions into the report. Without it, the
// profile section of the previous report is carried over.
//
// By hand, beside it: `npm run bench:functions` (bench/functions.ts) counts, under callgrind, the
// instructions each function of a sidecar adds with telemetry on against off.
//
// Exit code: 0 when the report was written (even if a target fails, or the sidecar cannot carry
// a protocol yet: the report says so), 1 when the bench itself broke (a tool missing, a process
// did not start, a request failed on a path that must work).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { SIDECAR_NODE_FLAGS } from '../src/cli/up.ts';
import { freePort } from '../src/util/net.ts';
import { type Tools, h1Steps, haproxyConfig } from './h1.ts';
import { hey } from './load.ts';
import { CONNS, FIXED_S, MAX_CONNS, MAX_S, MAX_WARMUP_S, PACED_WARMUP_S, RATE, REPEATS, WARMUP_S, measure } from './measure.ts';
import { runMemory } from './memory.ts';
import { runMtls } from './mtls.ts';
import { runTelemetry } from './telemetry.ts';
import { runInstructions } from './instructions.ts';
import { Mesh, checkOk, startServer } from './mesh.ts';
import { analyzeProfile, renderProfile, type ProfileSummary } from './profile.ts';
import { type Proc, BenchError, describeExit, launch, running, stop, stopAll, waitForPort } from './proc.ts';
import { runProtocol } from './protocols.ts';
import { runRoutes } from './routes.ts';
import { NODE_FLOOR_LABEL, renderReport, type BenchResult, type PathResult } from './report.ts';
import { ScaleError, runScale } from './scale.ts';
import { type Tool, ensureTools, packageVersion, PACKAGES } from './tools.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

export const PHASES = ['h1', 'routes', 'h2', 'grpc', 'memory', 'instr', 'mtls', 'telemetry', 'scale'] as const;
type Phase = (typeof PHASES)[number];
const TOOLS: Record<Phase, Tool[]> = { h1: ['haproxy', 'hey', 'wrk'], routes: ['wrk'], h2: ['h2load'], grpc: [], memory: ['hey'], instr: ['haproxy', 'hey', 'valgrind'], mtls: ['haproxy', 'hey', 'wrk'], telemetry: ['hey', 'wrk', 'valgrind'], scale: [] };

const PROFILE_SECONDS = 8;
const SERVICE = 'bench-server';

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    log(`${sig}: stopping ${running.size} processes`);
    Promise.all([...running].map((p) => stop(p))).finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1: the three paths

async function haproxyPath(tools: Tools, serverPort: number, tmp: string): Promise<PathResult> {
  const procs: Proc[] = [];
  try {
    const inner = await freePort(); // server side: -> bench server
    const outer = await freePort(); // client side: -> inner haproxy
    for (const [label, listen, backend] of [['haproxy (server side)', inner, serverPort], ['haproxy (client side)', outer, inner]] as const) {
      const cfg = path.join(tmp, `${label.includes('server') ? 'server' : 'client'}.haproxy.cfg`);
      fs.writeFileSync(cfg, haproxyConfig(listen, backend));
      const p = launch(label, tools.haproxy, ['-db', '-f', cfg]);
      procs.push(p);
      await waitForPort(listen, p, 10_000);
    }
    const url = `http://127.0.0.1:${outer}/`;
    await checkOk(url, undefined, 'the haproxy path');
    return await measure('haproxy', procs.map((p) => ({ label: p.label, pid: p.proc.pid! })).reverse(), h1Steps(tools, 'haproxy', url, undefined));
  } finally {
    await stopAll(procs);
  }
}

async function weftPath(tools: Tools, serverPort: number, tmp: string, profile: boolean): Promise<{ result: PathResult; profile?: ProfileSummary }> {
  const mesh = await Mesh.start(path.join(tmp, 'control-data'));
  try {
    await mesh.warmCompileCache();
    const server = await mesh.serverSidecar('weft sidecar (server side)', 'bench-server', SERVICE, serverPort);
    const client = await mesh.clientSidecar('weft sidecar (client side)', 'bench-client', [SERVICE]);
    const url = `http://${client.outbound}/`;
    await checkOk(url, SERVICE, 'the Weft path (bench-client)');
    const watched = [
      { label: 'Weft sidecar (client side)', pid: client.proc.proc.pid! },
      { label: 'Weft sidecar (server side)', pid: server.proc.proc.pid! },
    ];
    const result = await measure('Weft', watched, h1Steps(tools, 'Weft', url, SERVICE));
    if (!profile) return { result };

    // A separate client sidecar under --cpu-prof, so profiling does not slow the figures above.
    await stop(client.proc);
    const profDir = path.join(tmp, 'cpuprofile');
    fs.mkdirSync(profDir, { recursive: true });
    const prof = await mesh.clientSidecar('weft sidecar (profiled client)', 'bench-client-prof', [SERVICE], ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
    const profUrl = `http://${prof.outbound}/`;
    await checkOk(profUrl, SERVICE, 'the Weft path (bench-client-prof)');
    log(`profile: ${PROFILE_SECONDS}s at max throughput through a --cpu-prof client sidecar`);
    await hey(tools.hey, 'profile warm-up', profUrl, { duration: '1s', conns: MAX_CONNS, host: SERVICE });
    const t0 = performance.now();
    const run = await hey(tools.hey, 'profile', profUrl, { duration: `${PROFILE_SECONDS}s`, conns: MAX_CONNS, host: SERVICE });
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
    await mesh.stop();
  }
}

async function runH1(tools: Tools, tmp: string, profile: boolean): Promise<{ h1: NonNullable<BenchResult['h1']>; profile?: ProfileSummary }> {
  const server = await startServer('h1');
  try {
    const url = `http://127.0.0.1:${server.port}/`;
    await checkOk(url, undefined, 'the bench server');
    const direct = await measure('direct', [{ label: NODE_FLOOR_LABEL, pid: server.proc.proc.pid! }], h1Steps(tools, 'direct', url, undefined));
    const weft = await weftPath(tools, server.port, tmp, profile);
    const haproxy = await haproxyPath(tools, server.port, tmp);
    return { h1: { direct, weft: weft.result, haproxy }, profile: weft.profile };
  } finally {
    await stop(server.proc);
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
  await new Promise((r) => setTimeout(r, ms));
  const b = read();
  return b.total > a.total ? 1 - (b.idle - a.idle) / (b.total - a.total) : 0;
}

function machine(tools: Partial<Record<Tool, string>>): BenchResult['machine'] {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const mem = /MemTotal:\s+(\d+) kB/.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
  const hv = tools.haproxy ? (spawnSync(tools.haproxy, ['-v'], { encoding: 'utf8' }).stdout?.split('\n')[0] ?? '') : '';
  return {
    nproc: Number(spawnSync('nproc', [], { encoding: 'utf8' }).stdout?.trim()) || os.availableParallelism(),
    cpu: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    memGB: mem ? Number(mem[1]) / 1024 / 1024 : os.totalmem() / 2 ** 30,
    kernel: os.release(),
    node: process.version,
    tools: Object.fromEntries(
      (Object.keys(tools) as Tool[]).map((t) => [t, t === 'haproxy' ? (/HAProxy version (\S+)/.exec(hv)?.[1] ?? packageVersion(PACKAGES[t])) : packageVersion(PACKAGES[t])]),
    ),
    sidecarFlags: SIDECAR_NODE_FLAGS.join(' '),
    loadavg: os.loadavg()[0],
    busyBefore: 0,
    env: ['NODE_COMPILE_CACHE', 'MALLOC_ARENA_MAX'].filter((k) => process.env[k]).map((k) => `${k}=${process.env[k]}`),
  };
}

function parsePhases(only: string | undefined): Phase[] {
  if (!only) return [...PHASES];
  const asked = only.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = asked.filter((p) => !(PHASES as readonly string[]).includes(p));
  if (unknown.length || !asked.length) throw new BenchError(`--only: expected one or more of ${PHASES.join(', ')} (comma-separated), got ${JSON.stringify(only)}`);
  return PHASES.filter((p) => asked.includes(p));
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { profile: { type: 'boolean', default: false }, out: { type: 'string' }, only: { type: 'string' } } });
  const phases = parsePhases(values.only);
  if (values.profile && !phases.includes('h1')) throw new BenchError('--profile profiles the HTTP/1.1 client sidecar: it needs the h1 phase');
  const whole = phases.length === PHASES.length;
  const out = values.out ?? (whole ? path.join(ROOT, 'docs', 'performance.md') : path.join(ROOT, 'bench', 'out', 'performance.md'));
  const started = Date.now();
  const tools = ensureTools([...new Set(phases.flatMap((p) => TOOLS[p]))]) as Partial<Record<Tool, string>>;
  const host = machine(tools);
  host.busyBefore = await cpuBusy(1000);
  if (host.busyBefore > 0.1) log(`warning: the CPUs were ${(host.busyBefore * 100).toFixed(0)}% busy before the bench started: other work on this machine will skew the figures`);
  log(`phases: ${phases.join(', ')}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-'));
  try {
    const result: BenchResult = {
      date: new Date(),
      machine: host,
      setup: { rate: RATE, conns: CONNS, maxConns: MAX_CONNS, warmupS: WARMUP_S, fixedS: FIXED_S, repeats: REPEATS, pacedWarmupS: PACED_WARMUP_S, maxWarmupS: MAX_WARMUP_S, maxS: MAX_S },
      only: whole ? undefined : phases,
      durationS: 0,
    };
    let profile: ProfileSummary | undefined;
    // A phase that fails (a BenchError: a proxy that never got its config, a mesh that is not what
    // it claims) is reported as failed, and the others still run and are written: one phase's
    // failure late in a whole run no longer throws away the figures of the rest. The exit code
    // says so. Anything else (a bug in the bench) still stops it.
    const failed: { phase: Phase; message: string }[] = [];
    const run = async <T,>(phase: Phase, measure: () => Promise<T>): Promise<T | undefined> => {
      if (!phases.includes(phase)) return undefined;
      try {
        return await measure();
      } catch (e) {
        if (!(e instanceof BenchError || e instanceof ScaleError)) throw e;
        failed.push({ phase, message: e.message });
        process.stderr.write(`[bench] FAILED: ${phase}: ${e.message}\n[bench] going on with the other phases\n`);
        // Whatever the phase left running would weigh on the next ones.
        await stopAll([...running]);
        return undefined;
      }
    };
    ({ h1: result.h1, profile } = (await run('h1', () => runH1(tools as Tools, tmp, values.profile!))) ?? {});
    result.routes = await run('routes', () => runRoutes(tools.wrk!, tmp));
    result.h2 = await run('h2', () => runProtocol('h2', tools.h2load, tmp));
    result.grpc = await run('grpc', () => runProtocol('grpc', undefined, tmp));
    result.memory = await run('memory', () => runMemory(tools.hey!, tmp));
    result.mtls = await run('mtls', () => runMtls(tools as Tools, tmp));
    result.telemetry = await run('telemetry', () => runTelemetry(tools as { hey: string; wrk: string }, tmp));
    result.instr = await run('instr', () => runInstructions(tools as { haproxy: string; hey: string; valgrind: string }, tmp, haproxyConfig));
    // The control plane with many simulated proxies (bench/scale.ts): fails on a NACK or a proxy
    // that never gets its config.
    result.scale = await run('scale', () => runScale());
    if (failed.length) result.failed = failed;
    result.durationS = (Date.now() - started) / 1000;
    const docs = path.join(ROOT, 'docs', 'performance.md');
    const previous = [out, docs].filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f, 'utf8')).find((t) => t.includes(PROFILE_BEGIN)) ?? '';
    const profileSection = profile ? renderProfile(profile, result.date) : carriedOverProfile(previous);
    const handWritten = fs.readFileSync(path.join(ROOT, 'bench', 'where-the-time-goes.md'), 'utf8');
    const { text, verdicts } = renderReport(result, handWritten, profileSection);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, text);
    log(`wrote ${path.relative(process.cwd(), out)} in ${result.durationS.toFixed(0)}s`);
    for (const v of verdicts) log(`${v.status.toUpperCase().padEnd(12)}  ${v.target}: ${v.actual}`);
    return failed.length ? 1 : 0;
  } finally {
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
