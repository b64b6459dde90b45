// The load generators, each run as a child process and read into one LoadResult:
//   hey        HTTP/1.1; a fixed rate as one ticker per connection (bursts), or no rate limit;
//   wrk        HTTP/1.1 at an even rate (bench/pace.lua), latency in microseconds;
//   h2load     HTTP/2 cleartext (prior knowledge), paced or not; latency from its per-request log;
//   grpc-load  gRPC unary calls with @grpc/grpc-js (bench/grpc-load.ts), paced or not.
// Any error or non-2xx response fails the run with a LoadError naming what failed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BenchError, describeExit, launch, output } from './proc.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

export interface LoadResult {
  /** Which generator and how, e.g. "hey -z 10s -c 16 -q 62.5". */
  command: string;
  seconds: number;
  rps: number;
  /** Percentile ("50", "90", "99", ...) -> milliseconds. */
  latencyMs: Record<string, number>;
  /** Successful (2xx) responses. */
  ok: number;
  /** The smallest latency step the generator reports, in ms. */
  resolutionMs: number;
  /** wrk paced: how long after its slot on the even schedule each request was sent (percentiles, us), and slots missed. */
  pacing?: { sent: number; skipped: number; offsetUs: Record<string, number> };
}

/** Requests through a path failed: connection errors or non-2xx responses. */
export class LoadError extends BenchError {
  readonly detail: string;
  constructor(label: string, detail: string) {
    super(`${label}: requests failed: ${detail}`);
    this.detail = detail;
  }
}

/** Runs a generator; its stdout if it exited 0, else a LoadError with its output. */
export async function run(label: string, bin: string, args: string[]): Promise<string> {
  const p = launch(label, bin, args);
  const { code, stdout } = await output(p);
  if (code !== 0) throw new LoadError(label, `${describeExit(p)}\n${stdout.trim().split('\n').slice(-8).join('\n')}`);
  return stdout;
}

function quantiles(sortedMs: number[], qs = ['50', '90', '99']): Record<string, number> {
  const out: Record<string, number> = {};
  for (const q of qs) out[q] = sortedMs[Math.min(sortedMs.length - 1, Math.max(0, Math.ceil((Number(q) / 100) * sortedMs.length) - 1))];
  return out;
}

// ---------------------------------------------------------------------------------------------
// hey

export function parseHey(out: string) {
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

export async function hey(bin: string, label: string, url: string, opts: { duration: string; conns: number; rate?: number; host?: string }): Promise<LoadResult> {
  const args = ['-z', opts.duration, '-c', String(opts.conns), '-t', '10'];
  if (opts.rate) args.push('-q', String(opts.rate / opts.conns)); // -q is per worker
  const command = `hey ${args.join(' ')}`;
  if (opts.host) args.push('-host', opts.host);
  args.push(url);
  const r = parseHey(await run(`hey (${label})`, bin, args));
  const non2xx = Object.entries(r.statuses).filter(([s]) => !s.startsWith('2'));
  if (r.errors.length || non2xx.length || r.ok === 0 || Number.isNaN(r.rps)) {
    throw new LoadError(
      label,
      `(hey ${args.join(' ')})` +
        (non2xx.length ? `\n  non-2xx responses: ${non2xx.map(([s, n]) => `${n} x ${s}`).join(', ')}` : '') +
        (r.errors.length ? `\n  errors:\n    ${r.errors.join('\n    ')}` : '') +
        (r.ok === 0 ? '\n  no successful response at all' : ''),
    );
  }
  return { command, seconds: r.seconds, rps: r.rps, latencyMs: r.latencyMs, ok: r.ok, resolutionMs: 0.1 };
}

// ---------------------------------------------------------------------------------------------
// wrk, paced by bench/pace.lua

export const PACE_SCRIPT = path.join(ROOT, 'bench', 'pace.lua');

export async function wrkPaced(bin: string, label: string, url: string, opts: { duration: string; conns: number; rate: number; host?: string; paths?: number }): Promise<LoadResult> {
  // One thread per connection: bench/pace.lua sleeps in a thread until its connection's slot.
  const args = [`-t${opts.conns}`, `-c${opts.conns}`, `-d${opts.duration}`, '--timeout', '10s', '-s', PACE_SCRIPT];
  if (opts.host) args.push('-H', `Host: ${opts.host}`);
  args.push(url, '--', String(opts.rate), String(opts.conns), ...(opts.paths ? [String(opts.paths)] : []));
  const out = await run(`wrk (${label})`, bin, args);
  const m = /^WRK_RESULT (.*)$/m.exec(out);
  if (!m) throw new BenchError(`${label}: wrk printed no WRK_RESULT line (bench/pace.lua's done()):\n${out}`);
  const r = JSON.parse(m[1]);
  const errs = Object.entries(r.errors as Record<string, number>).filter(([, n]) => n > 0);
  const ok = r.requests - r.errors.status;
  if (errs.length || ok <= 0) throw new LoadError(label, `(wrk ${args.join(' ')}): ${errs.map(([k, n]) => `${n} x ${k === 'status' ? 'status >= 400' : `${k} error`}`).join(', ') || 'no response at all'}`);
  const ms = (us: number) => us / 1000;
  return {
    command: `wrk -t${opts.conns} -c${opts.conns} -d${opts.duration} -s bench/pace.lua -- ${opts.rate} ${opts.conns}${opts.paths ? ` ${opts.paths}` : ''}`,
    seconds: r.duration_us / 1e6,
    rps: r.requests / (r.duration_us / 1e6),
    latencyMs: { '50': ms(r.latency_us['50']), '90': ms(r.latency_us['90']), '99': ms(r.latency_us['99']), max: ms(r.latency_us.max) },
    ok,
    resolutionMs: 0.001,
    pacing: r.pacing,
  };
}

// ---------------------------------------------------------------------------------------------
// h2load: HTTP/2 over cleartext with prior knowledge (http:// URLs)

/**
 * Paced (rate given): `-c` connections opened 1 ms apart (`-r 1 --rate-period 1ms`), each sending
 * rate/conns requests a second (`--rps`), so that their tickers do not fire together; `-n` is
 * rate x seconds. Unpaced: `-D seconds` with a warm-up. Latency percentiles come from the
 * per-request log (`--log-file`, microseconds).
 */
export async function h2load(bin: string, label: string, url: string, opts: { seconds: number; conns: number; rate?: number; warmupS?: number; authority?: string }): Promise<LoadResult> {
  const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'weft-h2load-')), 'requests.tsv');
  const args = ['-t1', `-c${opts.conns}`, '-m1', `--log-file=${log}`];
  if (opts.rate) args.push('-r1', '--rate-period=1ms', `--rps=${opts.rate / opts.conns}`, `-n${Math.round(opts.rate * opts.seconds)}`);
  else args.push(`-D${opts.seconds}`, ...(opts.warmupS ? [`--warm-up-time=${opts.warmupS}`] : []));
  if (opts.authority) args.push('-H', `:authority: ${opts.authority}`);
  args.push(url);
  try {
    const out = await run(`h2load (${label})`, bin, args);
    const counts = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
    const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
    const finished = /finished in ([\d.]+)(m?s), ([\d.]+) req\/s/.exec(out);
    if (!counts || !codes || !finished) throw new BenchError(`${label}: cannot read h2load's output:\n${out}`);
    const [total, , done, succeeded, failed, errored, timeout] = counts.slice(1).map(Number);
    const [ok2xx, c3, c4, c5] = codes.slice(1).map(Number);
    const bad = [
      failed && `${failed} failed`,
      errored && `${errored} errored`,
      timeout && `${timeout} timed out`,
      total - done && `${total - done} not done`,
      c3 + c4 + c5 && `status codes ${c3} 3xx, ${c4} 4xx, ${c5} 5xx`,
    ].filter(Boolean);
    if (bad.length || ok2xx === 0) {
      const why = out.split('\n').filter((l) => /error|fail|refused|reset|protocol|GOAWAY/i.test(l) && !/^requests:/.test(l)).slice(0, 3);
      throw new LoadError(label, `(h2load ${args.join(' ')}): ${bad.join(', ') || 'no 2xx response'} of ${total}${why.length ? `; h2load said: ${why.join(' | ')}` : ''}`);
    }
    // start (us since epoch) \t status \t us until end of response
    const lat = fs
      .readFileSync(log, 'utf8')
      .split('\n')
      .map((l) => l.split('\t'))
      .filter((f) => f.length >= 3 && f[1] === '200')
      .map((f) => Number(f[2]) / 1000)
      .sort((a, b) => a - b);
    const seconds = Number(finished[1]) / (finished[2] === 'ms' ? 1000 : 1);
    return {
      command: `h2load ${args.filter((a) => !a.startsWith('--log-file') && a !== url).join(' ')}`,
      seconds,
      rps: opts.rate ? succeeded / seconds : Number(finished[3]),
      latencyMs: quantiles(lat),
      ok: succeeded,
      resolutionMs: 0.001,
    };
  } finally {
    fs.rmSync(path.dirname(log), { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// gRPC unary, with bench/grpc-load.ts

export const GRPC_LOAD = path.join(ROOT, 'bench', 'grpc-load.ts');

export async function grpcLoad(label: string, target: string, opts: { seconds: number; conns: number; rate?: number; inflight?: number; warmupS?: number; authority?: string }): Promise<LoadResult> {
  const args = [GRPC_LOAD, '--target', target, '--conns', String(opts.conns), '--seconds', String(opts.seconds), '--warmup', String(opts.warmupS ?? 0)];
  if (opts.rate) args.push('--rate', String(opts.rate));
  if (opts.inflight) args.push('--inflight', String(opts.inflight));
  if (opts.authority) args.push('--authority', opts.authority);
  const out = await run(`grpc-load (${label})`, process.execPath, args);
  const m = /^GRPC_LOAD_RESULT (.*)$/m.exec(out);
  if (!m) throw new BenchError(`${label}: bench/grpc-load.ts printed no result line:\n${out}`);
  const r = JSON.parse(m[1]);
  if (r.failed > 0 || r.ok === 0) {
    const errs = Object.entries(r.errors as Record<string, number>).map(([e, n]) => `${n} x ${e}`);
    throw new LoadError(label, `(node ${args.slice(1).join(' ')}): ${r.failed} of ${r.ok + r.failed} calls failed${errs.length ? `: ${errs.slice(0, 3).join('; ')}` : ''}`);
  }
  return {
    command: `node bench/grpc-load.ts --conns ${opts.conns} ${opts.rate ? `--rate ${opts.rate}` : `--inflight ${opts.inflight}`} --seconds ${opts.seconds}`,
    seconds: r.seconds,
    rps: r.ok / r.seconds,
    latencyMs: r.latencyMs,
    ok: r.ok,
    resolutionMs: 0.001,
  };
}
