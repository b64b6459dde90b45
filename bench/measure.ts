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

const per1k = (u: Usage, r: LoadResult) => (u.cpuS / r.ok) * 1000;

export async function measure(name: string, procs: Watched[], steps: Steps): Promise<PathResult> {
  const idle = new Map(procs.map((p) => [p.label, rssMB(p.pid)]));
  log(`${name}: warm-up ${WARMUP_S}s, then ${FIXED_S}s at ${RATE} rps over ${CONNS} connections`);
  await steps.warmup();
  const fixed = await watch(procs, steps.fixed);
  log(`${name}: p50 ${fixed.result.latencyMs['50'].toFixed(2)} ms, p99 ${fixed.result.latencyMs['99'].toFixed(2)} ms, ${fixed.result.rps.toFixed(0)} rps`);
  let paced: Awaited<ReturnType<typeof watch<LoadResult>>> | undefined;
  if (steps.paced) {
    await steps.paced.warmup();
    paced = await watch(procs, steps.paced.run);
    log(`${name}: paced: p50 ${paced.result.latencyMs['50'].toFixed(2)} ms, p99 ${paced.result.latencyMs['99'].toFixed(2)} ms, ${paced.result.rps.toFixed(0)} rps`);
  }
  log(`${name}: now ${MAX_S}s at max throughput over ${MAX_CONNS} connections`);
  await steps.maxWarmup();
  const max = await watch(procs, steps.max);
  log(`${name}: max ${max.result.rps.toFixed(0)} rps`);
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
