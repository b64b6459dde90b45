// The telemetry phase's verdicts and section of docs/performance.md (bench/telemetry.ts).
import { cpuRatio, median, p99Ratio } from './paired.ts';
import type { Verdict } from './report.ts';
import { type InstructionCount, type Side, type SoakSample, type TelemetryResult, WARMUP_S } from './telemetry.ts';

export const TELEMETRY_TARGETS = {
  /** Each sidecar's CPU per request with telemetry on / off (paired rounds). */
  cpu: 1.1,
  /** p99 with telemetry on / off (paired rounds). */
  p99: 1.15,
  /** Each sidecar's RssAnon in the soak's last minute / in its second minute. */
  soakGrowth: 1.1,
};

const ratio = (x: number) => `${x.toFixed(2)}x`;
const cpu = (x: number) => `${x.toFixed(3)} ms`;
const mb = (x: number) => `${x.toFixed(1)} MB`;

/** The soak's two windows: its second minute and its last (for a short soak, its second and last sixths). */
export function soakWindows(s: TelemetryResult['soak']): { early: SoakSample[]; late: SoakSample[]; earlyLabel: string; lateLabel: string } {
  const w = s.seconds >= 360 ? 60 : s.seconds / 6;
  const early = s.samples.filter((x) => x.t >= w && x.t < 2 * w);
  const late = s.samples.filter((x) => x.t >= s.seconds - w);
  const label = (a: number, b: number) => `${Math.round(a)}-${Math.round(b)} s`;
  return { early, late, earlyLabel: label(w, 2 * w), lateLabel: label(s.seconds - w, s.seconds) };
}

function soakGrowth(s: TelemetryResult['soak'], i: number, key: 'anon' | 'pss' | 'rss'): { early: number; late: number; r: number } {
  const { early, late } = soakWindows(s);
  const e = median(early.map((x) => x.mem[i]![key]));
  const l = median(late.map((x) => x.mem[i]![key]));
  return { early: e, late: l, r: l / e };
}

/** The median ratio of process i's CPU among each pair's rounds, where the rounds name their pairs: "; pairs 1.22x (off first), 1.09x (on first)". */
function byPair(t: TelemetryResult, i: number): string {
  const pairs = [...new Set(t.paired.rounds.map((r) => r.pair).filter((p) => p !== undefined))];
  if (pairs.length < 2) return '';
  const of = (p: number) => t.paired.rounds.filter((r) => r.pair === p);
  return `; pairs ${pairs.map((p) => `${ratio(median(of(p).map((r) => r.b[i]! / r.a[i]!)))} (${of(p)[0]!.first ?? '?'} first)`).join(', ')}`;
}

export function telemetryVerdicts(t: TelemetryResult, rate: number): Verdict[] {
  const sides = t.paired.labels.map((label, i) => ({ label, c: cpuRatio(t.paired, i) }));
  const p = p99Ratio(t.paired);
  const w = soakWindows(t.soak);
  const growth = t.soak.labels.map((label, i) => ({ label, g: soakGrowth(t.soak, i, 'anon'), pss: soakGrowth(t.soak, i, 'pss') }));
  return [
    {
      target: `Telemetry on (Istio's metrics, an access log file, 1% tracing) adds at most ${Math.round((TELEMETRY_TARGETS.cpu - 1) * 100)}% to each sidecar's CPU per request at ${rate.toLocaleString('en-US')} rps (hey, mTLS), against telemetry off (the median of ${t.paired.rounds.length} paired rounds)`,
      actual: sides.map((s, i) => `${s.label.replace('Weft sidecar ', '')} ${cpu(s.c.b)} vs ${cpu(s.c.a)}: ${ratio(s.c.median)} (rounds ${s.c.lo.toFixed(2)}-${s.c.hi.toFixed(2)}x${byPair(t, i)})`).join('; '),
      status: sides.every((s) => s.c.median <= TELEMETRY_TARGETS.cpu) ? 'pass' : 'fail',
    },
    {
      target: `Telemetry on adds at most ${Math.round((TELEMETRY_TARGETS.p99 - 1) * 100)}% to p99 at ${rate.toLocaleString('en-US')} rps (the median of the paired rounds' ratios)`,
      actual: `p99 ${p.b.toFixed(2)} ms vs ${p.a.toFixed(2)} ms: ${ratio(p.median)} (rounds ${p.lo.toFixed(2)}-${p.hi.toFixed(2)}x)`,
      status: p.median <= TELEMETRY_TARGETS.p99 ? 'pass' : 'fail',
    },
    {
      target: `Memory stays flat over a ${Math.round(t.soak.seconds / 60)}-minute soak at ${t.soak.rate.toLocaleString('en-US')} rps across ${t.soak.paths} paths and ${t.soak.conns} client connections, telemetry on: each sidecar's RssAnon in ${w.lateLabel} at most ${ratio(TELEMETRY_TARGETS.soakGrowth)} that of ${w.earlyLabel}`,
      actual: growth.map((g) => `${g.label.replace('Weft sidecar ', '')} ${mb(g.g.late)} vs ${mb(g.g.early)}: ${ratio(g.g.r)} (PSS ${mb(g.pss.late)} vs ${mb(g.pss.early)})`).join('; '),
      status: w.early.length && w.late.length && growth.every((g) => g.g.r <= TELEMETRY_TARGETS.soakGrowth) ? 'pass' : 'fail',
    },
    instructionsVerdict('client', t.instructions.client),
    instructionsVerdict('server', t.instructions.server),
  ];
}

/** The steady counterpart of the CPU ratio: one side's sidecar's user-space instructions per request, on / off. */
function instructionsVerdict(side: Side, x: InstructionCount): Verdict {
  const off = median(x.off);
  const on = median(x.on);
  const offApart = median(x.offApart);
  const onApart = median(x.onApart);
  const k = (n: number) => `${(n / 1000).toFixed(1)}k`;
  return {
    target: `Telemetry on against off in instructions per request in user space (the ${side}-side sidecar under callgrind, the median of its windows; no target of its own: the steady counterpart of the CPU ratio above, without the kernel's share)`,
    actual: `${k(on)} vs ${k(off)}: ${ratio(on / off)} (+${k(on - off)} a request; windows off ${x.off.map(k).join(', ')}, on ${x.on.map(k).join(', ')}); outside V8's optimizing compilers ${k(onApart)} vs ${k(offApart)}: ${ratio(onApart / offApart)}`,
    status: 'reported',
  };
}

export function renderTelemetry(t: TelemetryResult, add: (...l: string[]) => void): void {
  const n = t.paired.labels.length;
  const perMinute = t.soak.samples.filter((s, i) => i === 0 || i === t.soak.samples.length - 1 || Math.floor(s.t / 60) !== Math.floor(t.soak.samples[i - 1]!.t / 60));
  add(
    '## Telemetry: on against off',
    '',
    'The HTTP/1.1 two-hop path with mTLS between the sidecars (the mesh as it comes), in two meshes side by side (several such pairs in turn, where the rounds name their pair):',
    "telemetry off (sidecars run with --no-istio-metrics; no access log, no tracing) and telemetry",
    "on (Istio's metrics, an access log file in Istio's default format, tracing at Istio's default 1% sampling to the control",
    `plane's receiver, and the control plane scraping the sidecars every 5 s). After a ${WARMUP_S} s warm-up of both at once (V8 optimizes a sidecar's code for a minute or two; bench/telemetry.ts), paired rounds at the fixed rate,`,
    "both meshes loaded at once in each round, each at the rate, and each sidecar's CPU counted over the same seconds (this machine's speed moves between ten-second windows by more than the target; bench/paired.ts). CPU per request (client side / server side) and p99:",
    '',
    `Evidence that the runs are what they say: ${t.evidence}.`,
    '',
    '| round | pair (started first) | off | on | on / off | p99 off | p99 on |',
    '|---|---|---|---|---|---|---|',
    ...t.paired.rounds.map((x, i) => `| ${i + 1} | ${x.pair ?? '-'} (${x.first ?? '-'}) | ${x.a.map(cpu).join(' / ')} | ${x.b.map(cpu).join(' / ')} | ${x.b.map((b, j) => ratio(b / x.a[j]!)).join(' / ')} | ${x.aP99.toFixed(2)} ms | ${x.bP99.toFixed(2)} ms |`),
    '',
    `The soak: ${t.soak.seconds} s at ${t.soak.rate.toLocaleString('en-US')} rps (wrk, paced) over ${t.soak.conns} connections and ${t.soak.paths} paths, telemetry on; it ran at ${Math.round(t.soak.rps).toLocaleString('en-US')} rps with a p99 of ${t.soak.p99Ms.toFixed(2)} ms. Each sidecar's memory, read every few seconds (shown once a minute):`,
    '',
    `| time | ${t.paired.labels.slice(0, n).map((l) => `${l.replace('Weft sidecar ', '')} RssAnon / PSS / RSS`).join(' | ')} |`,
    `|---|${t.paired.labels.map(() => '---|').join('')}`,
    ...perMinute.map((s) => `| ${Math.round(s.t)} s | ${s.mem.map((m) => `${mb(m.anon)} / ${mb(m.pss)} / ${mb(m.rss)}`).join(' | ')} |`),
    '',
    "Instructions per request in user space: each mesh's client-side sidecar once more under callgrind, then its server-side sidecar (bench/instructions.ts's windows after its warm-up). The count does not move with the machine's other work, as the CPU ratio's rounds do; it moves with where full garbage collections and JIT compilations fall among the windows, and periodic work (the control plane's scrape every 5 s, the log's and the tracer's flushes) weighs more per request at callgrind's slower rate, so it overstates the cost somewhat:",
    '',
    '| sidecar | telemetry | windows | median | outside V8\'s optimizing compilers: windows | median |',
    '|---|---|---|---|---|---|',
    ...(['client', 'server'] as const).flatMap((side) =>
      (['off', 'on'] as const).map((k) => {
        const all = t.instructions[side][k];
        const apart = t.instructions[side][k === 'off' ? 'offApart' : 'onApart'];
        const f = (n: number) => `${(n / 1000).toFixed(1)}k`;
        return `| ${side} side | ${k} | ${all.map(f).join(', ')} | ${f(median(all))} | ${apart.map(f).join(', ')} | ${f(median(apart))} |`;
      }),
    ),
    '',
  );
}
