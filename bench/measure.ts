// One path measured the same way whatever the protocol: warm-up, a fixed rate (latency, CPU and
// memory of the processes on the path), optionally the same rate again with an evenly paced
// generator, then maximum throughput.
import type { LoadResult } from './load.ts';
import { type Usage, type Watched, rssMB, watch } from './proc.ts';
import type { PathResult, ProcUsage } from './report.ts';

export const RATE = 1000; // requests/second, fixed-rate phase
export const CONNS = 16; // connections, fixed-rate phase
export const MAX_CONNS = 64; // connections (or calls in flight), max-throughput phase
export const WARMUP_S = 2;
export const FIXED_S = 10;
export const PACED_WARMUP_S = 1;
export const MAX_WARMUP_S = 1;
export const MAX_S = 6;
/**
 * Each measured run (each fixed-rate generator, and maximum throughput) is made this many times,
 * back to back: the figures are their medians, so that one window in which something else used
 * the machine, or a GC or JIT burst landed, does not decide a ratio (the design prototype took
 * medians of 5 repetitions).
 */
export const REPEATS = 3;

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

export interface Steps {
  /** Warm-up at the fixed rate, then the measured fixed rate. */
  warmup: () => Promise<unknown>;
  fixed: () => Promise<LoadResult>;
  /** The same rate from the evenly paced generator (HTTP/1.1: wrk), with its own warm-up. */
  paced?: { warmup: () => Promise<unknown>; run: () => Promise<LoadResult> };
  maxWarmup: () => Promise<unknown>;
  max: () => Promise<LoadResult>;
}

/** CPU seconds per 1,000 requests (= ms per request). */
export const per1k = (u: Usage, r: LoadResult) => (u.cpuS / r.ok) * 1000;

export async function measure(name: string, procs: Watched[], steps: Steps): Promise<PathResult> {
  const idle = new Map(procs.map((p) => [p.label, rssMB(p.pid)]));
  log(`${name}: warm-up ${WARMUP_S}s, then ${REPEATS} x ${FIXED_S}s at ${RATE} rps over ${CONNS} connections`);
  await steps.warmup();
  const fixed = await repeated(procs, steps.fixed);
  log(`${name}: p50 ${fixed.result.latencyMs['50'].toFixed(2)} ms, p99 ${fixed.result.latencyMs['99'].toFixed(2)} ms, ${fixed.result.rps.toFixed(0)} rps (medians of ${REPEATS})`);
  let paced: Watch | undefined;
  if (steps.paced) {
    await steps.paced.warmup();
    paced = await repeated(procs, steps.paced.run);
    log(`${name}: paced: p50 ${paced.result.latencyMs['50'].toFixed(2)} ms, p99 ${paced.result.latencyMs['99'].toFixed(2)} ms, ${paced.result.rps.toFixed(0)} rps (medians of ${REPEATS})`);
  }
  log(`${name}: now ${REPEATS} x ${MAX_S}s at max throughput over ${MAX_CONNS} connections`);
  await steps.maxWarmup();
  const max = await repeated(procs, steps.max);
  log(`${name}: max ${max.result.rps.toFixed(0)} rps (median of ${REPEATS})`);
  const usage: ProcUsage[] = procs.map((p) => {
    const f = fixed.usage.get(p.label)!;
    const m = max.usage.get(p.label)!;
    const pc = paced?.usage.get(p.label);
    return {
      label: p.label,
      idleRssMB: idle.get(p.label)!,
      fixedPeakRssMB: f.peakRssMB,
      fixedPeakAnonMB: f.peakAnonMB,
      fixedEndRssMB: f.endRssMB,
      fixedCpuPer1k: per1k(f, fixed.result),
      fixedCpuShare: f.cpuS / fixed.result.seconds,
      pacedCpuPer1k: pc && paced ? per1k(pc, paced.result) : undefined,
      maxPeakRssMB: m.peakRssMB,
      maxCpuPer1k: per1k(m, max.result),
    };
  });
  const otherCores = { fixed: fixed.otherCores, paced: paced?.otherCores, max: max.otherCores };
  const other = Math.max(otherCores.fixed, otherCores.paced ?? 0, otherCores.max);
  if (other > 0.1) log(`${name}: warning: other processes on this machine used up to ${other.toFixed(2)} cores during the measurement`);
  return { name, fixed: fixed.result, paced: paced?.result, max: max.result, usage, otherCores };
}

export type Watch = Awaited<ReturnType<typeof watch<LoadResult>>>;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** A record of numbers, each the median of its values over the runs. */
function medians(rs: Record<string, number>[]): Record<string, number> {
  return Object.fromEntries(Object.keys(rs[0]).map((k) => [k, median(rs.map((r) => r[k]))]));
}

/** REPEATS runs of `run`, back to back, as one (combine). */
async function repeated(procs: Watched[], run: () => Promise<LoadResult>): Promise<Watch> {
  const runs: Watch[] = [];
  for (let i = 0; i < REPEATS; i++) runs.push(await watch(procs, run));
  return combine(procs, runs);
}

/**
 * Runs of one measurement as one: each latency percentile, the rate, each process's CPU per
 * request and the other work on the machine are the medians over the runs; memory peaks are the
 * highest.
 */
export function combine(procs: Watched[], runs: Watch[]): Watch {
  const rs = runs.map((r) => r.result);
  const first = rs[0];
  const ok = median(rs.map((r) => r.ok));
  const result: LoadResult = {
    command: first.command,
    seconds: median(rs.map((r) => r.seconds)),
    rps: median(rs.map((r) => r.rps)),
    latencyMs: medians(rs.map((r) => r.latencyMs)),
    ok,
    resolutionMs: first.resolutionMs,
    pacing: first.pacing && {
      sent: median(rs.map((r) => r.pacing!.sent)),
      skipped: median(rs.map((r) => r.pacing!.skipped)),
      offsetUs: medians(rs.map((r) => r.pacing!.offsetUs)),
    },
  };
  const usage = new Map<string, Usage>();
  for (const p of procs) {
    const us = runs.map((r) => r.usage.get(p.label)!);
    usage.set(p.label, {
      peakRssMB: Math.max(...us.map((u) => u.peakRssMB)),
      peakAnonMB: Math.max(...us.map((u) => u.peakAnonMB)),
      endRssMB: us[us.length - 1].endRssMB,
      // The median CPU per request, scaled to the median request count (what per1k divides by).
      cpuS: median(us.map((u, i) => u.cpuS / rs[i].ok)) * ok,
    });
  }
  return { result, otherCores: median(runs.map((r) => r.otherCores)), usage };
}
