// The processes a benchmark starts: launched with their stderr's tail kept for error messages,
// tracked so that every one is killed when the bench exits, however it exits; and what /proc
// says about them (CPU time, RSS, private memory, PSS).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { canConnect } from '../src/util/net.ts';
import { stopChild } from '../src/util/process.ts';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/** The bench itself broke (a tool missing, a process that did not start): its message is the report. */
export class BenchError extends Error {}

export interface Proc {
  label: string;
  proc: ChildProcess;
  stderrTail: string[];
}

/** Every process launched and not yet exited. */
export const running = new Set<Proc>();
process.on('exit', () => {
  for (const p of running) p.proc.kill('SIGKILL');
});

export function launch(label: string, cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Proc {
  const proc = spawn(cmd, args, { cwd: ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const p: Proc = { label, proc, stderrTail: [] };
  running.add(p);
  readline.createInterface({ input: proc.stderr! }).on('line', (line) => {
    p.stderrTail.push(line);
    if (p.stderrTail.length > 30) p.stderrTail.shift();
  });
  proc.on('error', (e) => p.stderrTail.push(`spawn error: ${e.message}`));
  proc.on('exit', () => running.delete(p));
  return p;
}

/** SIGTERM, then SIGKILL after graceMs. */
export function stop(p: Proc, graceMs = 3000): Promise<void> {
  return stopChild(p.proc, graceMs);
}

/** Stops the processes one by one, the last started first. */
export async function stopAll(ps: Proc[]): Promise<void> {
  for (const p of [...ps].reverse()) await stop(p);
}

export const exited = (p: Proc) => p.proc.exitCode !== null || p.proc.signalCode !== null;

/** "label exited (code 1); its last stderr lines: ..." */
export function describeExit(p: Proc): string {
  const tail = p.stderrTail.length ? `; its last stderr lines:\n    ${p.stderrTail.join('\n    ')}` : '';
  return `${p.label} exited (${p.proc.signalCode ?? `code ${p.proc.exitCode}`})${tail}`;
}

/** Resolves with the process's exit code and all it printed on stdout. */
export function output(p: Proc): Promise<{ code: number | null; stdout: string }> {
  let stdout = '';
  p.proc.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  return new Promise((resolve) => p.proc.once('close', (code) => resolve({ code, stdout })));
}

/** Resolves with the first stdout line matching `re`; fails if the process exits first. */
export function waitForLine(p: Proc, re: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: p.proc.stdout! });
    const done = () => {
      clearTimeout(timer);
      p.proc.off('exit', onExit);
    };
    const onExit = () => {
      done();
      reject(new BenchError(`${describeExit(p)} before it was ready`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new BenchError(`${p.label} did not print its ready line within ${timeoutMs / 1000}s; last stderr:\n    ${p.stderrTail.join('\n    ')}`));
    }, timeoutMs);
    rl.on('line', (line) => {
      const m = re.exec(line);
      if (m) {
        done();
        resolve(m);
      }
    });
    p.proc.once('exit', onExit);
  });
}

export async function waitForPort(port: number, p: Proc, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited(p)) throw new BenchError(`${describeExit(p)} before it listened on ${port}`);
    if (await canConnect(port)) return;
    if (Date.now() > deadline) throw new BenchError(`${p.label} did not listen on 127.0.0.1:${port} within ${timeoutMs / 1000}s`);
    await sleep(50);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// /proc

export const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  return Number(r.stdout?.trim()) || 100;
})();

/** utime + stime of a process, in seconds (in ticks of 1/CLK_TCK s). */
export function cpuSeconds(pid: number | 'self'): number {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
  return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14 utime, 15 stime
}

/** VmRSS, and RssAnon: the process's private memory, without the file-backed pages of the node binary. */
export function memMB(pid: number): { rss: number; anon: number } {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (re: RegExp) => Number(re.exec(s)?.[1] ?? NaN) / 1024;
  return { rss: kb(/VmRSS:\s+(\d+) kB/), anon: kb(/RssAnon:\s+(\d+) kB/) };
}

export const rssMB = (pid: number) => memMB(pid).rss;

/**
 * From /proc/PID/smaps_rollup: Rss, and Pss, the process's proportional share (each page shared
 * by k processes counts 1/k in each). Pss_Anon and Pss_File are given on Linux >= 5.x.
 */
export function smapsMB(pid: number): { rss: number; pss: number; pssAnon: number; pssFile: number } {
  const s = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) / 1024;
  return { rss: kb('Rss'), pss: kb('Pss'), pssAnon: kb('Pss_Anon'), pssFile: kb('Pss_File') };
}

/** CPU seconds used by the whole machine (all CPUs, not idle or iowait). */
export function machineCpuSeconds(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  return (f.reduce((a, b) => a + b, 0) - f[3] - f[4]) / CLK_TCK;
}

/** CPU seconds of the bench: this process, its finished children, and those still running. */
export function benchCpuSeconds(): number {
  const s = fs.readFileSync('/proc/self/stat', 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  let total = (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK; // utime stime cutime cstime
  for (const p of running) {
    try {
      total += cpuSeconds(p.proc.pid!);
    } catch {} // exited a moment ago
  }
  return total;
}

export interface Watched {
  label: string;
  pid: number;
}

export interface Usage {
  peakRssMB: number;
  peakAnonMB: number;
  endRssMB: number;
  cpuS: number;
}

/**
 * Runs `fn` while sampling the processes' RSS and RssAnon every 200 ms (the peaks are kept); CPU
 * seconds are the delta over `fn`. otherCores: CPU used meanwhile by processes the bench did not
 * start, in cores (they compete with the bench for the CPUs).
 */
export async function watch<T>(procs: Watched[], fn: () => Promise<T>): Promise<{ result: T; otherCores: number; usage: Map<string, Usage> }> {
  const machine0 = machineCpuSeconds();
  const bench0 = benchCpuSeconds();
  const t0 = performance.now();
  const peak = new Map(procs.map((p) => [p.label, memMB(p.pid)]));
  const cpu0 = new Map(procs.map((p) => [p.label, cpuSeconds(p.pid)]));
  const sample = () => {
    for (const p of procs) {
      const m = memMB(p.pid);
      const q = peak.get(p.label)!;
      peak.set(p.label, { rss: Math.max(q.rss, m.rss), anon: Math.max(q.anon, m.anon) });
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
  const otherCores = Math.max(0, machineCpuSeconds() - machine0 - (benchCpuSeconds() - bench0)) / ((performance.now() - t0) / 1000);
  const usage = new Map(
    procs.map((p) => [p.label, { peakRssMB: peak.get(p.label)!.rss, peakAnonMB: peak.get(p.label)!.anon, endRssMB: rssMB(p.pid), cpuS: cpuSeconds(p.pid) - cpu0.get(p.label)! }]),
  );
  return { result, otherCores, usage };
}
