// Paired rounds: how two setups of the same path compare, measured so that drift does not decide
// the ratio. Both setups stay up; each round loads both at once, each for FIXED_S at RATE (hey,
// CONNS connections), and each side's CPU is counted over the same seconds. A target takes the
// median round. Used by the mtls phase (plain text against mTLS) and the telemetry phase (off
// against on).
//
// Until 2026-12-07 a round ran one setup and then the other, the order alternating from round to
// round. This machine's speed moves from one ten-second window to the next by more than a 10%
// target (a shared host): two identical meshes of telemetry off, measured in turn, gave round
// ratios of 0.75-1.31x (median 0.87x) in six rounds; loaded together, 0.94-1.19x (median 0.97x)
// in eight. The mtls phase's rounds (client side, by hand): in turn 1.07-1.43x, together 1.12-1.23x.
import { hey } from './load.ts';
import { CONNS, FIXED_S, RATE } from './measure.ts';
import { watch } from './proc.ts';

export interface PairedSide {
  name: string;
  url: string;
  /** The Host header. */
  host?: string;
  /** The processes whose CPU is counted, in the same order on both sides (client side, server side). */
  watched: { label: string; pid: number }[];
}

export interface PairedRound {
  /** CPU ms per 1,000 requests of each watched process, in `watched` order. */
  a: number[];
  b: number[];
  /** p99 latency, ms. */
  aP99: number;
  bP99: number;
  /** Where a caller measured several pairs of setups: the round's pair, and which setup of it was started first. */
  pair?: number;
  first?: string;
}

export interface PairedResult {
  a: string;
  b: string;
  /** The processes' labels, in order. */
  labels: string[];
  rounds: PairedRound[];
}

/** Seven since 2026-12-06 (tenth session): with five, the median moved by a tenth between runs of the same code. */
export const PAIRED_ROUNDS = 7;

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

/** `warmupS`: a warm-up of each side at the rate first (JIT, pools), for sides not loaded before. */
export async function pairedRounds(heyBin: string, a: PairedSide, b: PairedSide, rounds = PAIRED_ROUNDS, warmupS = 0): Promise<PairedResult> {
  const warm = (p: PairedSide) => hey(heyBin, `${p.name} warm-up`, p.url, { duration: `${warmupS}s`, conns: CONNS, rate: RATE, host: p.host });
  if (warmupS > 0) await Promise.all([warm(a), warm(b)]);
  const one = async (p: PairedSide) => {
    const w = await watch(p.watched, () => hey(heyBin, `${p.name} paired round`, p.url, { duration: `${FIXED_S}s`, conns: CONNS, rate: RATE, host: p.host }));
    return { cpu: p.watched.map((x) => (w.usage.get(x.label)!.cpuS / w.result.ok) * 1000), p99: w.result.latencyMs['99']! };
  };
  log(`paired rounds: ${rounds} x ${FIXED_S}s of ${a.name} and ${b.name} at once, each at ${RATE} rps over ${CONNS} connections`);
  const out: PairedRound[] = [];
  for (let i = 0; i < rounds; i++) {
    const [x, y] = await Promise.all([one(a), one(b)]);
    out.push({ a: x.cpu, b: y.cpu, aP99: x.p99, bP99: y.p99 });
    log(`paired round ${i + 1}: CPU ${y.cpu.map((c, j) => `${(c / x.cpu[j]!).toFixed(2)}x (${c.toFixed(3)} vs ${x.cpu[j]!.toFixed(3)} ms)`).join(', ')}; p99 ${y.p99.toFixed(2)} vs ${x.p99.toFixed(2)} ms`);
  }
  return { a: a.name, b: b.name, labels: a.watched.map((w) => w.label), rounds: out };
}

/** The median of the rounds' ratios b/a of process i's CPU, with their range. */
export function cpuRatio(r: PairedResult, i: number): { median: number; lo: number; hi: number; a: number; b: number } {
  const ratios = r.rounds.map((x) => x.b[i]! / x.a[i]!);
  return { median: median(ratios), lo: Math.min(...ratios), hi: Math.max(...ratios), a: median(r.rounds.map((x) => x.a[i]!)), b: median(r.rounds.map((x) => x.b[i]!)) };
}

/** The median of the rounds' p99 ratios b/a, with their range. */
export function p99Ratio(r: PairedResult): { median: number; lo: number; hi: number; a: number; b: number } {
  const ratios = r.rounds.map((x) => x.bP99 / x.aP99);
  return { median: median(ratios), lo: Math.min(...ratios), hi: Math.max(...ratios), a: median(r.rounds.map((x) => x.aP99)), b: median(r.rounds.map((x) => x.bP99)) };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
