// Instructions per request (`--only instr`): what one process executes in user space to serve a
// request, counted by valgrind's callgrind. Unlike CPU time, the count does not depend on what
// else the machine is doing, so it compares commits even on a busy machine; GC and JIT make it
// move from window to window (a window with a major GC counts about twice as much), which is why
// several windows are counted and the median and range are reported; medians of the Weft sidecar
// moved by 10-20% from run to run on the same code. It leaves out the kernel's share
// (the socket reads and writes, about the same for every proxy here), so it says how much work a
// proxy adds around the system calls, not its whole cost.
//
// Three processes, each under callgrind with counting off until the load is warm:
//   - haproxy, one hop (mode http, keep-alive to the server), as in the h1 phase;
//   - the bare node:http server (bench/server.ts), the Node floor: a Node process that answers;
//   - a Weft client-side sidecar, one hop, forwarding to a server-side sidecar (not counted).
// Each gets a warm-up of WARMUP requests (JIT, pools), then WINDOWS windows of REQUESTS requests
// over 16 connections (hey -n -c 16, as fast as valgrind lets them go): zero the counters,
// count, stop, dump, read the total.
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { SIDECAR_NODE_FLAGS, sidecarEnv } from '../src/cli/up.ts';
import { Mesh, checkOk, startServer } from './mesh.ts';
import { type Proc, BenchError, launch, stop, waitForLine, waitForPort } from './proc.ts';
import { freePort } from '../src/util/net.ts';
import { parseHey, run } from './load.ts';

const exec = promisify(execFile);
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

export const WARMUP = 6000;
export const REQUESTS = 8000;
export const WINDOWS = 5;
const CONNS = 16;

export interface InstrRow {
  label: string;
  /** Instructions per request, one figure per window. */
  perRequest: number[];
}

export interface InstrResult {
  rows: InstrRow[];
  warmup: number;
  requests: number;
  windows: number;
}

/** hey -n: the number of 2xx answers; any error or other answer fails the bench. */
async function heyN(heyBin: string, url: string, n: number, host: string | undefined): Promise<number> {
  const args = ['-n', String(n), '-c', String(CONNS), '-t', '30'];
  if (host) args.push('-host', host);
  args.push(url);
  const out = await run(`hey -n ${n} (callgrind)`, heyBin, args);
  const r = parseHey(out);
  const other = Object.entries(r.statuses).filter(([s]) => !s.startsWith('2'));
  if (r.errors.length || other.length || r.ok === 0) throw new BenchError(`hey -n ${n} against ${url} under callgrind: ${r.ok === 0 ? 'no answer' : 'errors or non-2xx answers'}:\n${out.slice(-1500)}`);
  return r.ok;
}

/**
 * Instructions per request outside V8's optimizing compilers (TurboFan/Turboshaft, Maglev: their
 * threads' work, which callgrind's slow run spreads over fewer requests than a real one does), from
 * a dump's per-function counts (callgrind_annotate).
 */
async function outsideCompilers(file: string, total: number): Promise<number> {
  const { stdout } = await exec('callgrind_annotate', ['--inclusive=no', '--threshold=100', file], { maxBuffer: 256 * 1024 * 1024 });
  let compilers = 0;
  for (const line of stdout.split('\n')) {
    const m = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$/.exec(line);
    if (m && /v8::internal::(compiler|maglev)::/.test(m[2]!)) compilers += Number(m[1]!.replaceAll(',', ''));
  }
  if (compilers >= total) throw new BenchError(`callgrind_annotate of ${file}: ${compilers} instructions in the compilers of ${total}`);
  return total - compilers;
}

/**
 * Counts `windows` windows of `n` requests in the callgrind process `p`; returns instructions per
 * request. `apart`, where given, gets each window's instructions per request outside V8's
 * optimizing compilers.
 */
export async function count(p: Proc, outFile: string, heyBin: string, url: string, host: string | undefined, apart?: number[]): Promise<number[]> {
  const pid = String(p.proc.pid);
  const ctl = (...a: string[]) => exec('callgrind_control', [...a, pid]);
  await heyN(heyBin, url, WARMUP, host);
  const out: number[] = [];
  for (let w = 0; w < WINDOWS; w++) {
    await ctl('-z');
    await ctl('-i', 'on');
    const ok = await heyN(heyBin, url, REQUESTS, host);
    await ctl('-i', 'off');
    const before = new Set(dumps(outFile));
    await ctl('-d');
    const file = dumps(outFile).find((f) => !before.has(f));
    if (!file) throw new BenchError(`callgrind wrote no dump for ${p.label}`);
    const total = Number(/^totals:\s+(\d+)/m.exec(fs.readFileSync(file, 'utf8'))?.[1]);
    if (!total) throw new BenchError(`no totals line in ${file}`);
    out.push(total / ok);
    if (apart) apart.push((await outsideCompilers(file, total)) / ok);
  }
  return out;
}

/** The dump files callgrind has written for `base` so far (base.1, base.2, ...). */
export function dumps(base: string): string[] {
  const dir = path.dirname(base);
  const name = path.basename(base);
  return fs.readdirSync(dir).filter((f) => f.startsWith(`${name}.`)).map((f) => path.join(dir, f));
}

/** The command that runs a program under callgrind, counting off until callgrind_control -i on. */
export const callgrindCommand = (outFile: string): string[] => ['valgrind', '--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${outFile}`];

function callgrind(label: string, tmp: string, tag: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): { proc: Proc; out: string } {
  const out = path.join(tmp, `callgrind.${tag}`);
  const [valgrind, ...vargs] = callgrindCommand(out);
  const proc = launch(label, valgrind, [...vargs, cmd, ...args], env ? { env } : {});
  return { proc, out };
}

export async function runInstructions(tools: { haproxy: string; hey: string; valgrind: string }, tmp: string, haproxyConfig: (listen: number, backend: number) => string): Promise<InstrResult> {
  const rows: InstrRow[] = [];
  const server = await startServer('h1');
  const procs: Proc[] = [];
  try {
    // haproxy, one hop to the server.
    {
      const port = await freePort();
      const cfg = path.join(tmp, 'instr.haproxy.cfg');
      fs.writeFileSync(cfg, haproxyConfig(port, server.port));
      const h = callgrind('haproxy (callgrind)', tmp, 'haproxy', tools.haproxy, ['-db', '-f', cfg]);
      procs.push(h.proc);
      await waitForPort(port, h.proc, 120_000);
      const url = `http://127.0.0.1:${port}/`;
      await checkOk(url, undefined, 'haproxy under callgrind');
      log('instructions: haproxy');
      rows.push({ label: 'haproxy (one hop)', perRequest: await count(h.proc, h.out, tools.hey, url, undefined) });
      await stop(h.proc);
    }
    // The bare node:http server: the Node floor.
    {
      const n = callgrind('bench server (callgrind)', tmp, 'server', process.execPath, [...SIDECAR_NODE_FLAGS, path.join(import.meta.dirname, 'server.ts'), '0', '--proto', 'h1'], sidecarEnv(process.env));
      procs.push(n.proc);
      const m = await waitForLine(n.proc, /^BENCH_SERVER_READY (\d+)$/, 300_000);
      const url = `http://127.0.0.1:${m[1]}/`;
      log('instructions: the bare node:http server');
      rows.push({ label: 'node:http server alone (the Node floor; it answers, no upstream)', perRequest: await count(n.proc, n.out, tools.hey, url, undefined) });
      await stop(n.proc);
    }
    // A Weft client sidecar, one hop to a server-side sidecar.
    const mesh = await Mesh.start(path.join(tmp, 'instr-control'));
    try {
      await mesh.serverSidecar('weft sidecar (server side)', 'bench-server', 'bench-server', server.port);
      const out = path.join(tmp, 'callgrind.weft');
      const w = await mesh.clientSidecar('weft sidecar (client side, callgrind)', 'bench-client', ['bench-server'], [], { wrap: callgrindCommand(out), readyMs: 300_000 });
      const url = `http://${w.outbound}/`;
      await checkOk(url, 'bench-server', 'the Weft sidecar under callgrind');
      log('instructions: the Weft client sidecar');
      rows.push({ label: 'Weft sidecar (client side, one hop)', perRequest: await count(w.proc, out, tools.hey, url, 'bench-server') });
      await stop(w.proc);
    } finally {
      await mesh.stop();
    }
  } finally {
    for (const p of procs) await stop(p);
    await stop(server.proc);
  }
  return { rows, warmup: WARMUP, requests: REQUESTS, windows: WINDOWS };
}
