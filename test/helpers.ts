// Test harness: runs the real `weft` CLI as processes, on loopback, with ports picked from 0.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { UpState } from '../src/cli/common.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The CLI as users run it: bin/weft.mjs, which loads src/cli/main.ts. */
export const CLI = path.join(ROOT, 'bin/weft.mjs');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `weft ARGS...` to completion. */
export function weft(args: string[], env: NodeJS.ProcessEnv = {}, input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, cwd: ROOT });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    if (input !== undefined) p.stdin.end(input);
    else p.stdin.end();
  });
}

/** Listens on a free loopback port; resolves with it. */
export function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `weft-${prefix}-`));
}

export interface Up {
  proc: ChildProcess;
  home: string;
  env: NodeJS.ProcessEnv;
  state: UpState;
  output: () => string;
  /** Ctrl-C; resolves with the exit code. */
  stop: () => Promise<number | null>;
}

/** `weft up DIR` with a private WEFT_HOME (or `home`) and free ports; resolves once everything runs. */
export async function startUp(dir: string, extraArgs: string[] = [], home = tmpDir('home')): Promise<Up> {
  const env = { ...process.env, WEFT_HOME: home };
  const proc = spawn(process.execPath, [CLI, 'up', dir, '--admin-port', '0', '--xds-port', '0', ...extraArgs], { env, cwd: ROOT });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const stateFile = path.join(home, 'up.json');
  const deadline = Date.now() + 30_000;
  // up.json is written early (so that a second weft up finds this one) and again with every
  // workload; the summary comes after that.
  while (!out.includes('Weft is up.')) {
    if (proc.exitCode !== null) throw new Error(`weft up exited early (${proc.exitCode}):\n${out}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`weft up did not come up within 30s:\n${out}`);
    }
    await sleep(50);
  }
  const state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as UpState;
  const stop = () =>
    new Promise<number | null>((resolve) => {
      if (proc.exitCode !== null) return resolve(proc.exitCode);
      const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      proc.once('exit', (code) => {
        clearTimeout(t);
        resolve(code);
      });
      proc.kill('SIGINT');
    });
  return { proc, home, env: { WEFT_HOME: home }, state, output: () => out, stop };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 10_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ''}`);
    await sleep(everyMs);
  }
}

/**
 * How far a random split's observed share may stray from the configured one: five standard
 * deviations of the binomial count, n trials at probability p. A fair draw passes all but about
 * once in 1.7 million runs; a fixed bound such as "±3 points" is three deviations at n = 2,000 and
 * fails about once in 500, which a suite of many such tests turns into a flaky CI run.
 */
export function shareBound(n: number, p: number): number {
  return 5 * Math.sqrt((p * (1 - p)) / n);
}

/** Asserts that `hits` of `n` independent draws at probability `p` is a fair draw (shareBound). */
export function assertShare(hits: number, n: number, p: number, what: string): void {
  const share = hits / n;
  const bound = shareBound(n, p);
  assert.ok(Math.abs(share - p) <= bound, `${what}: ${hits} of ${n} (${(share * 100).toFixed(2)}%), want ${(p * 100).toFixed(1)}% ± ${(bound * 100).toFixed(1)} points (five binomial deviations)`);
}

export function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface LoadResult {
  total: number;
  status: Record<string, number>;
  bodies: Record<string, number>;
  errors: string[];
  samples: { t: number; status: number; body: string }[];
}

/**
 * Runs the load fixture as `weft exec WORKLOAD -- node test/fixtures/load.ts ...`: requests go
 * through that workload's sidecar exactly as a user's app's would (HTTP_PROXY).
 */
export async function loadThrough(env: NodeJS.ProcessEnv, workload: string, opts: { url: string; n?: number; rate?: number; durationMs?: number; concurrency?: number; startSignal?: string }): Promise<LoadResult> {
  const args = ['exec', workload, '--', process.execPath, path.join(ROOT, 'test/fixtures/load.ts'), '--url', opts.url];
  if (opts.n) args.push('--n', String(opts.n));
  if (opts.rate) args.push('--rate', String(opts.rate));
  if (opts.durationMs) args.push('--duration-ms', String(opts.durationMs));
  if (opts.concurrency) args.push('--concurrency', String(opts.concurrency));
  const r = await weft(args, env);
  if (r.code !== 0) throw new Error(`load generator failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as LoadResult;
}

/** Reads lines from a child's stdout until one matches. */
export function lineMatching(proc: ChildProcess, re: RegExp, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: proc.stdout! });
    const t = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms`)), timeoutMs);
    rl.on('line', (l) => {
      if (re.test(l)) {
        clearTimeout(t);
        rl.close();
        resolve(l);
      }
    });
  });
}
