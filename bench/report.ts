// PURE: the bench's figures -> docs/performance.md (Markdown), and the verdict on each target.
import type { LoadResult } from './load.ts';
import type { ScaleResult, ScaleRun, Spread } from './scale.ts';
import type { InstrResult } from './instructions.ts';
import type { RoutesResult } from './routes.ts';
import type { MtlsResult } from './mtls.ts';
import { cpuRatio } from './paired.ts';
import { renderTelemetry, telemetryVerdicts } from './telemetry-report.ts';
import type { TelemetryResult } from './telemetry.ts';

export interface ProcUsage {
  label: string;
  idleRssMB: number;
  fixedPeakRssMB: number;
  fixedPeakAnonMB: number; // RssAnon: private memory, without the node binary's file-backed pages
  fixedEndRssMB: number;
  fixedCpuPer1k: number; // CPU seconds per 1,000 requests at the fixed rate (= ms per request)
  fixedCpuShare: number; // CPU seconds per second (1.0 = one core) at the fixed rate
  pacedCpuPer1k?: number; // the same, under the evenly paced generator
  maxPeakRssMB: number;
  maxCpuPer1k: number;
}

export interface PathResult {
  name: string;
  /** The fixed rate: hey for HTTP/1.1, h2load or grpc-load for the other protocols. */
  fixed: LoadResult;
  /** HTTP/1.1 only: the same rate from wrk, paced evenly. */
  paced?: LoadResult;
  max: LoadResult;
  usage: ProcUsage[];
  /** CPU cores used by processes outside the bench during each phase. */
  otherCores: { fixed: number; paced?: number; max: number };
}

export interface ProtoResult {
  proto: 'h2' | 'grpc';
  direct: PathResult;
  weft: PathResult | { notMeasured: string };
}

export interface MemoryRow {
  label: string;
  rssMB: number;
  anonMB: number; // RssAnon (/proc/PID/status)
  pssMB: number; // Pss (/proc/PID/smaps_rollup)
  pssAnonMB: number;
  pssFileMB: number;
}

export interface MemoryResult {
  n: number;
  /** Processes running the same node binary when memory was read (the bench's and any other). */
  nodeProcs: number;
  requests: number;
  traffic: string;
  sidecars: MemoryRow[];
  floor: MemoryRow;
  controlPlane: MemoryRow;
}

export interface BenchResult {
  date: Date;
  machine: {
    nproc: number;
    cpu: string;
    memGB: number;
    kernel: string;
    node: string;
    /** Tool -> its Debian package's version. */
    tools: Record<string, string>;
    sidecarFlags: string;
    loadavg: number;
    busyBefore: number;
    env: string[];
  };
  setup: { rate: number; conns: number; maxConns: number; warmupS: number; fixedS: number; repeats: number; pacedWarmupS: number; maxWarmupS: number; maxS: number };
  /** The phases run, when not all of them (--only). */
  only?: string[];
  /** Phases that stopped with an error (bench/run.ts): their figures are missing. */
  failed?: { phase: string; message: string }[];
  h1?: { direct: PathResult; weft: PathResult; haproxy: PathResult };
  /** Route table size: 1 VirtualService against 1,000 (bench/routes.ts). */
  routes?: RoutesResult;
  h2?: ProtoResult;
  grpc?: ProtoResult;
  memory?: MemoryResult;
  /** Instructions per request under callgrind (bench/instructions.ts). */
  instr?: InstrResult;
  /** The control plane with many proxies (bench/scale.ts). */
  scale?: ScaleResult;
  /** mTLS between the sidecars against plain text, and against haproxy with TLS (bench/mtls.ts). */
  mtls?: MtlsResult;
  /** Telemetry on against off, and the soak (bench/telemetry.ts). */
  telemetry?: TelemetryResult;
  durationS: number;
}

export interface Verdict {
  target: string;
  actual: string;
  /** reported: measured, with no target set; not measured: the path cannot carry it yet. */
  status: 'pass' | 'fail' | 'reported' | 'not measured';
}

/** Targets (the issue "the data plane core"); each a ratio against a baseline measured in the same run. */
export const TARGETS = {
  /** Sidecar CPU per request / haproxy's (the haproxy process on the same side). */
  cpuFixedVsHaproxy: { max: 2, aim: 1.5 },
  cpuMaxVsHaproxy: { max: 1.5, aim: 1.2 },
  p99VsHaproxy: 2,
  throughputVsHaproxy: 0.8,
  /** Sidecar RssAnon / the bare node:http server's, at the fixed rate. */
  privateMemVsFloor: 1.25,
  /** The client sidecar's p99 with 1,000 VirtualServices / with 1 (bench/routes.ts). */
  routeTableP99: 1.1,
  /** A config push to N proxies over 10 namespaces / to N in one namespace (bench/scale.ts). */
  scopedPushVsSingle: 1.5,
  /** Each sidecar's CPU per request with mTLS / in plain text, on reused connections (bench/mtls.ts). */
  mtlsCpuVsPlain: 1.3,
};
/**
 * The added p99 (path minus direct) is compared only when haproxy's is at least this many of the
 * load generator's steps (hey: 0.1 ms): each p99 is rounded to a step, so the ratio is then off by
 * at most about a tenth. Below it (haproxy's added p99 is sometimes ~0 or negative here), the
 * whole path's p99 is compared instead.
 */
export const CLEAR_STEPS = 10;

/** The bench server's row in the memory tables. */
export const NODE_FLOOR_LABEL = 'node:http server alone (bench/server.ts, run as the sidecars are): the Node floor';

const ratio = (x: number) => `${x.toFixed(2)}x`;
const int = (x: number) => Math.round(x).toLocaleString('en-US');
const mb = (x: number) => `${x.toFixed(1)} MB`;
const signedMB = (x: number) => `${x >= 0 ? '+' : '-'}${mb(Math.abs(x))}`;
/** Milliseconds, to the generator's resolution: hey's 0.1 ms steps, or microseconds. */
const msr = (x: number, res: number) => `${x.toFixed(res >= 0.1 ? 1 : 2)} ms`;
const signed = (x: number, res: number) => `${x >= 0 ? '+' : '-'}${msr(Math.abs(x), res)}`;
const cpu = (x: number) => `${x.toFixed(3)} ms`;

const addedQ = (p: LoadResult, direct: LoadResult, q: string) => p.latencyMs[q] - direct.latencyMs[q];

/** Which p99 the two-hop target compares, and why (see CLEAR_STEPS). */
export function p99Comparison(weft: LoadResult, haproxy: LoadResult, direct: LoadResult, tool: string) {
  const res = weft.resolutionMs;
  const weftAdded = addedQ(weft, direct, '99');
  const haAdded = addedQ(haproxy, direct, '99');
  const clear = CLEAR_STEPS * res;
  if (haAdded >= clear) {
    return {
      basis: 'added' as const,
      ratio: weftAdded / haAdded,
      text: `Weft ${signed(weftAdded, res)}, haproxy ${signed(haAdded, res)} (added: path minus direct, ${tool}): ${ratio(weftAdded / haAdded)}`,
      why: `added latency, because haproxy's added p99 (${signed(haAdded, res)}) is at least ${msr(clear, res)}, ${CLEAR_STEPS} of ${tool}'s ${msr(res, res)} steps`,
    };
  }
  const w = weft.latencyMs['99'];
  const h = haproxy.latencyMs['99'];
  return {
    basis: 'whole' as const,
    ratio: w / h,
    text: `Weft ${msr(w, res)}, haproxy ${msr(h, res)} (whole path, ${tool}): ${ratio(w / h)}`,
    why: `the whole path's p99, because haproxy's added p99 (${signed(haAdded, res)}) is under ${msr(clear, res)} (${CLEAR_STEPS} of ${tool}'s ${msr(res, res)} steps): too close to the resolution, or below zero, for a ratio of added latencies`,
  };
}

const side = (us: ProcUsage[], s: 'client' | 'server') => us.find((u) => u.label.includes(`${s} side`))!;

function cpuVerdict(h1: NonNullable<BenchResult['h1']>, rate: number, at: 'fixed' | 'max'): Verdict {
  const t = at === 'fixed' ? TARGETS.cpuFixedVsHaproxy : TARGETS.cpuMaxVsHaproxy;
  const get = (u: ProcUsage) => (at === 'fixed' ? u.fixedCpuPer1k : u.maxCpuPer1k);
  const sides = (['client', 'server'] as const).map((s) => ({ s, weft: side(h1.weft.usage, s), ha: side(h1.haproxy.usage, s) }));
  const rows = sides.map(({ s, weft, ha }) => ({ s, w: get(weft), h: get(ha), r: get(weft) / get(ha) }));
  const worst = Math.max(...rows.map((x) => x.r));
  // At the fixed rate, the same ratio under wrk's even stream, for reference: hey's bursts let
  // haproxy serve several requests per wake-up, which halves its CPU per request.
  const even = at === 'fixed' && sides.every((x) => x.weft.pacedCpuPer1k && x.ha.pacedCpuPer1k)
    ? `; under wrk's even stream (not judged): ${sides.map((x) => `${x.s} side ${ratio(x.weft.pacedCpuPer1k! / x.ha.pacedCpuPer1k!)}`).join(', ')}`
    : '';
  return {
    target: `CPU per request per sidecar ${at === 'fixed' ? `at ${int(rate)} rps (hey)` : 'at maximum throughput'} at most ${t.max}x haproxy's (per haproxy process; aim ${t.aim}x)`,
    actual: rows.map((x) => `${x.s} side ${cpu(x.w)} vs ${cpu(x.h)}: ${ratio(x.r)}`).join('; ') + `; aim ${t.aim}x ${worst <= t.aim ? 'met' : 'not met'}${even}`,
    status: worst <= t.max ? 'pass' : 'fail',
  };
}

function protoVerdict(p: ProtoResult, rate: number): Verdict {
  const name = p.proto === 'h2' ? 'HTTP/2 (cleartext)' : 'gRPC (unary)';
  const target = `${name} through two sidecars: p99 at ${int(rate)} rps, max throughput and CPU per request, against direct (no target set)`;
  if ('notMeasured' in p.weft) return { target, actual: p.weft.notMeasured, status: 'not measured' };
  const w = p.weft;
  const d = p.direct;
  const res = w.fixed.resolutionMs;
  const floor = d.usage[0].fixedCpuPer1k;
  return {
    target,
    actual:
      `p99 ${msr(w.fixed.latencyMs['99'], res)} vs ${msr(d.fixed.latencyMs['99'], res)} direct (${ratio(w.fixed.latencyMs['99'] / d.fixed.latencyMs['99'])}, added ${signed(addedQ(w.fixed, d.fixed, '99'), res)}); ` +
      `max ${int(w.max.rps)} vs ${int(d.max.rps)} rps (${ratio(w.max.rps / d.max.rps)}); ` +
      `CPU per request ${(['client', 'server'] as const).map((s) => `${s} side ${cpu(side(w.usage, s).fixedCpuPer1k)}`).join(', ')} vs the server's ${cpu(floor)} direct (${(['client', 'server'] as const).map((s) => ratio(side(w.usage, s).fixedCpuPer1k / floor)).join(', ')})`,
    status: 'reported',
  };
}

export function verdicts(r: BenchResult): Verdict[] {
  const out: Verdict[] = [];
  const rate = r.setup.rate;
  if (r.h1) {
    const { direct, weft, haproxy } = r.h1;
    out.push(cpuVerdict(r.h1, rate, 'fixed'), cpuVerdict(r.h1, rate, 'max'));
    const p = p99Comparison(weft.fixed, haproxy.fixed, direct.fixed, 'hey');
    const even = weft.paced && haproxy.paced && direct.paced ? p99Comparison(weft.paced, haproxy.paced, direct.paced, 'wrk') : undefined;
    out.push({
      target: `two-hop p99 at ${int(rate)} rps (hey) at most ${TARGETS.p99VsHaproxy}x haproxy's (added latency, or the whole path's where haproxy adds too little to divide by)`,
      actual: `${p.text}; compared: ${p.why}${even ? `; under wrk's even stream (not judged): ${even.text}` : ''}`,
      status: p.ratio <= TARGETS.p99VsHaproxy ? 'pass' : 'fail',
    });
    const tput = weft.max.rps / haproxy.max.rps;
    out.push({
      target: `maximum throughput of the whole path at least ${TARGETS.throughputVsHaproxy}x haproxy's`,
      actual: `Weft ${int(weft.max.rps)} rps, haproxy ${int(haproxy.max.rps)} rps: ${ratio(tput)}`,
      status: tput >= TARGETS.throughputVsHaproxy ? 'pass' : 'fail',
    });
    // The baseline: the bench's own node:http server, run like the sidecars, at the same rate.
    const floor = direct.usage[0];
    const mem = (['client', 'server'] as const).map((s) => ({ s, u: side(weft.usage, s) }));
    out.push({
      target: `private memory (RssAnon) of each sidecar at ${int(rate)} rps at most ${TARGETS.privateMemVsFloor}x a bare node:http server's`,
      actual: mem.map(({ s, u }) => `${s} side ${mb(u.fixedPeakAnonMB)}: ${ratio(u.fixedPeakAnonMB / floor.fixedPeakAnonMB)}`).join('; ') + ` (the server: ${mb(floor.fixedPeakAnonMB)}; peaks at ${int(rate)} rps)`,
      status: mem.every(({ u }) => u.fixedPeakAnonMB <= TARGETS.privateMemVsFloor * floor.fixedPeakAnonMB) ? 'pass' : 'fail',
    });
  }
  if (r.h2) out.push(protoVerdict(r.h2, rate));
  if (r.grpc) out.push(protoVerdict(r.grpc, rate));
  if (r.routes) out.push(routesVerdict(r.routes));
  const scoped = r.scale && scopedPushVerdict(r.scale);
  if (scoped) out.push(scoped);
  for (const f of r.failed ?? []) out.push({ target: `the ${f.phase} phase runs to its end`, actual: f.message.replace(/\s+/g, ' ').slice(0, 400), status: 'fail' });
  if (r.mtls) out.push(...mtlsVerdicts(r.mtls, rate));
  if (r.telemetry) out.push(...telemetryVerdicts(r.telemetry, rate));
  return out;
}

function mtlsVerdicts(m: MtlsResult, rate: number): Verdict[] {
  // The target is judged on the paired rounds (bench/paired.ts): each round's ratio, the median
  // round. The unpaired figures (the table's two runs, minutes apart) are shown beside them.
  const rows = (['client', 'server'] as const).map((s, i) => {
    const c = cpuRatio(m.paired, i);
    const unpaired = side(m.weftMtls.usage, s).fixedCpuPer1k / side(m.weftPlain.usage, s).fixedCpuPer1k;
    return { s, r: c.median, lo: c.lo, hi: c.hi, w: c.b, p: c.a, unpaired };
  });
  const res = m.weftMtls.fixed.resolutionMs;
  return [
    {
      target: `mTLS between the sidecars adds at most ${TARGETS.mtlsCpuVsPlain}x to each sidecar's plain-text CPU per request at ${int(rate)} rps (hey), on reused connections (the median of ${m.paired.rounds.length} paired rounds)`,
      actual: rows.map((x) => `${x.s} side ${cpu(x.w)} vs ${cpu(x.p)}: ${ratio(x.r)} (rounds ${x.lo.toFixed(2)}-${x.hi.toFixed(2)}x; unpaired runs ${ratio(x.unpaired)})`).join('; '),
      status: rows.every((x) => x.r <= TARGETS.mtlsCpuVsPlain) ? 'pass' : 'fail',
    },
    {
      target: `mTLS: p99 at ${int(rate)} rps (hey), maximum throughput and new handshakes per second, against Weft in plain text and haproxy with TLS between its hops (no target set)`,
      actual:
        `p99 ${msr(m.weftMtls.fixed.latencyMs['99'], res)} vs ${msr(m.weftPlain.fixed.latencyMs['99'], res)} plain (${ratio(m.weftMtls.fixed.latencyMs['99'] / m.weftPlain.fixed.latencyMs['99'])}), haproxy TLS ${msr(m.haproxyTls.fixed.latencyMs['99'], res)}; ` +
        `max ${int(m.weftMtls.max.rps)} vs ${int(m.weftPlain.max.rps)} rps plain (${ratio(m.weftMtls.max.rps / m.weftPlain.max.rps)}), haproxy TLS ${int(m.haproxyTls.max.rps)} rps (${ratio(m.weftMtls.max.rps / m.haproxyTls.max.rps)}); ` +
        `a handshake per request: ${int(m.handshakes.weft.rps)} vs haproxy's ${int(m.handshakes.haproxy.rps)} per second (${ratio(m.handshakes.weft.rps / m.handshakes.haproxy.rps)})`,
      status: 'reported',
    },
  ];
}

const STATUS = { pass: '**PASS**', fail: '**FAIL**', reported: 'reported', 'not measured': '**NOT MEASURED**' };
const cores = (x: number | undefined) => (x === undefined ? '-' : `${x.toFixed(2)} cores${x > 0.1 ? ' (!)' : ''}`);

function renderInstr(ins: InstrResult, add: (...l: string[]) => void): void {
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const ha = ins.rows.find((r) => r.label.startsWith('haproxy'));
  const k = (x: number) => `${(x / 1000).toFixed(1)}k`;
  add(
    '## Instructions per request (callgrind)',
    '',
    `What each process executes in user space per request, counted by valgrind's callgrind (its version under Machine): a count, not a`,
    `time, so it hardly moves with other work on the machine, but GC and JIT windows move a median by 10-20% from run to run. It leaves out the`,
    `kernel's share (the socket reads and writes, about the same for each proxy), so it measures the work a proxy adds around`,
    `its system calls. Each process: ${int(ins.warmup)} requests of warm-up, then ${ins.windows} windows of ${int(ins.requests)} requests (hey -n, 16`,
    `connections) counted one by one; GC and the JIT make a window differ from the next, so the median and the range are shown.`,
    '',
    '| process | instructions per request (median) | range | against haproxy |',
    '|---|---:|---:|---:|',
    ...ins.rows.map((r) => `| ${r.label} | ${k(med(r.perRequest))} | ${k(Math.min(...r.perRequest))} - ${k(Math.max(...r.perRequest))} | ${ha ? `${(med(r.perRequest) / med(ha.perRequest)).toFixed(2)}x` : '-'} |`),
    '',
  );
}

export function renderReport(r: BenchResult, handWritten: string, profileSection: string): { text: string; verdicts: Verdict[] } {
  const m = r.machine;
  const v = verdicts(r);
  const L: string[] = [];
  const add = (...lines: string[]) => L.push(...lines);
  const routesDisturbed = r.routes && Math.max(r.routes.a.otherCores, r.routes.b.otherCores) > 0.1 ? ['route table'] : [];
  const allPaths = [...(r.h1 ? [r.h1.direct, r.h1.weft, r.h1.haproxy] : []), ...[r.h2, r.grpc].flatMap((p) => (p ? [p.direct, ...('notMeasured' in p.weft ? [] : [p.weft])] : []))];
  const disturbed = [...allPaths.filter((p) => Math.max(p.otherCores.fixed, p.otherCores.paced ?? 0, p.otherCores.max) > 0.1).map((p) => p.name), ...routesDisturbed];

  add(
    '# Performance',
    '',
    `<!-- Generated by \`npm run bench\` (bench/run.ts); each run rewrites this file whole. The text of`,
    `     "Where the time goes" comes from bench/where-the-time-goes.md; the profile tables from the last`,
    `     \`npm run bench -- --profile\`. Edit those, not this file. -->`,
    '',
    `What two Weft sidecars (client side, outbound -> server side, inbound) add to a request, next to`,
    `a direct connection and to two haproxy hops, measured on ${r.date.toISOString().replace(/\.\d+Z$/, 'Z')}.`,
    ...(r.only ? ['', `**Partial run** (\`--only ${r.only.join(',')}\`): only those phases were measured.`] : []),
    ...(r.failed ? ['', `**Phases that failed:** ${r.failed.map((f) => f.phase).join(', ')} (the targets table says why); their figures are missing, the other phases' are below.`] : []),
    '',
    '## Targets',
    '',
    'Each target is a ratio against a baseline measured in the same run.',
    '',
    '| target | measured | result |',
    '|---|---|---|',
    ...v.map((x) => `| ${x.target} | ${x.actual} | ${STATUS[x.status]} |`),
    '',
    ...(disturbed.length
      ? [`**Warning:** other processes used CPU during the ${disturbed.join(', ')} measurement (see "other work on the machine" below); the comparison is skewed. Run again on a quiet machine.`, '']
      : []),
    '## Machine',
    '',
    `- ${m.nproc} CPUs (\`nproc\`), ${m.cpu}, ${m.memGB.toFixed(1)} GB memory, Linux ${m.kernel}`,
    `- Node ${m.node}; sidecars run with \`node ${m.sidecarFlags}\` (\`SIDECAR_NODE_FLAGS\` in src/cli/up.ts) and \`MALLOC_ARENA_MAX=1\` (\`sidecarEnv\`), through bin/weft.mjs, as \`weft up\` runs them; a throwaway sidecar first fills Node's compile cache, so the figures are those of every start after the first`,
    `- ${Object.entries(m.tools).map(([t, ver]) => `${t} ${ver}`).join(', ')} (Debian packages)`,
    `- Before the bench started anything, the CPUs were ${(m.busyBefore * 100).toFixed(0)}% busy (over 1 s; load average ${m.loadavg.toFixed(2)})` +
      (m.busyBefore > 0.1 ? ' -- other work was running on the machine, and these figures are skewed by it' : ''),
    ...(m.env.length ? [`- Environment: \`${m.env.join(' ')}\` (inherited by every process the bench starts)`] : []),
    `- The load generator, both proxies and the server share these ${m.nproc} CPUs: at maximum throughput they compete for them,`,
    `  so the throughput figures are those of the whole machine, not of one proxy alone.`,
    `- Whole run: ${r.durationS.toFixed(0)} s.`,
    '',
  );
  if (r.h1) renderH1(r, r.h1, add);
  if (r.routes) renderRoutes(r, r.routes, add);
  if (r.memory) renderMemory(r.memory, add);
  if (r.instr) renderInstr(r.instr, add);
  for (const p of [r.h2, r.grpc]) if (p) renderProto(r, p, add);
  if (r.mtls) renderMtls(r.mtls, add);
  if (r.telemetry) renderTelemetry(r.telemetry, add);
  if (r.scale) add(renderScale(r.scale), '');
  add('## Where the time goes', '', handWritten.trim(), '', profileSection.trim(), '');
  return { text: L.join('\n'), verdicts: v };
}

// ---------------------------------------------------------------------------------------------
// mTLS

function renderMtls(m: MtlsResult, add: (...l: string[]) => void): void {
  const paths = [m.weftPlain, m.weftMtls, m.haproxyTls];
  const res = m.weftMtls.fixed.resolutionMs;
  add(
    '## mTLS between the hops',
    '',
    'The HTTP/1.1 two-hop path again (hey and wrk to the client-side proxy, plain text), with the hop between the proxies',
    'in plain text (Weft: PeerAuthentication DISABLE mesh-wide), in mutual TLS (Weft as it comes: automatic mTLS), and',
    'haproxy with TLS 1.3 and client certificates between its hops (P-256, as the mesh\'s certificates). Fixed rate medians;',
    'CPU per request per process. The handshake rows make a new connection between the hops for every request (Weft: a',
    'DestinationRule maxRequestsPerConnection 1; haproxy: http-server-close), so their rate is new handshakes per second.',
    '',
    `Evidence that the runs are what they say: ${m.evidence}.`,
    '',
    '| path | p50 | p99 | max rps | client side CPU/req | server side CPU/req |',
    '|---|---|---|---|---|---|',
    ...paths.map((p) => `| ${p.name} | ${msr(p.fixed.latencyMs['50'], res)} | ${msr(p.fixed.latencyMs['99'], res)} | ${int(p.max.rps)} | ${cpu(side(p.usage, 'client').fixedCpuPer1k)} | ${cpu(side(p.usage, 'server').fixedCpuPer1k)} |`),
    `| Weft (mTLS), a handshake per request | | | ${int(m.handshakes.weft.rps)} | | |`,
    `| haproxy (TLS), a handshake per request | | | ${int(m.handshakes.haproxy.rps)} | | |`,
    '',
    `The CPU target is judged on paired rounds: both meshes stay up, and each round loads the plain-text path and the mTLS path at once, each at the`,
    "fixed rate, so that both sides of a round's ratio are counted over the same seconds (this machine's speed moves from one ten-second window to",
    'the next: two identical meshes measured in turn differed by up to 1.31x a round). CPU per request (client side / server side):',
    '',
    '| round | plain text | mTLS | mTLS / plain |',
    '|---|---|---|---|',
    ...m.paired.rounds.map((x, i) => `| ${i + 1} | ${cpu(x.a[0]!)} / ${cpu(x.a[1]!)} | ${cpu(x.b[0]!)} / ${cpu(x.b[1]!)} | ${ratio(x.b[0]! / x.a[0]!)} / ${ratio(x.b[1]! / x.a[1]!)} |`),
    '',
  );
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1

function renderH1(r: BenchResult, h1: NonNullable<BenchResult['h1']>, add: (...l: string[]) => void): void {
  const s = r.setup;
  const paths = [h1.direct, h1.weft, h1.haproxy];
  const label = (p: PathResult) =>
    p === h1.direct ? 'direct (client -> server)' : p === h1.weft ? 'Weft (client -> sidecar -> sidecar -> server)' : 'haproxy (client -> haproxy -> haproxy -> server)';
  const q = ['50', '90', '99'];
  const heyP99 = p99Comparison(h1.weft.fixed, h1.haproxy.fixed, h1.direct.fixed, 'hey');
  const paced = h1.direct.paced && h1.weft.paced && h1.haproxy.paced ? { direct: h1.direct.paced, weft: h1.weft.paced, haproxy: h1.haproxy.paced } : undefined;
  const perConn = s.rate / s.conns;

  add(
    '## Method (HTTP/1.1)',
    '',
    `- One HTTP/1.1 server (bench/server.ts, node:http, \`GET /\` -> 200 with a 28-byte body) behind all three paths; all on 127.0.0.1.`,
    `- Two load generators at the same fixed rate, one after the other on each path:`,
    `  - \`hey\`: ${s.warmupS} s warm-up, then \`${h1.direct.fixed.command}\` (-q is per connection: ${perConn} x ${s.conns} =`,
    `    ${int(s.rate)} requests/second in all). hey's rate limit is a ticker per connection, and the ${s.conns} tickers start together:`,
    `    the load arrives as bursts of ${s.conns} requests every ${(1000 / perConn).toFixed(0)} ms, not as an even stream. A proxy that handles one`,
    `    request at a time makes the last of a burst wait for the other ${s.conns - 1}, so latency under hey grows with the CPU cost of one`,
    `    request. hey reports latency in steps of 0.1 ms.`,
    ...(paced
      ? [
          `  - \`wrk\` with bench/pace.lua: ${s.pacedWarmupS} s warm-up, then \`${paced.direct.command}\`: one schedule for all ${s.conns} connections,`,
          `    a request every ${(1000 / s.rate).toFixed(1)} ms in all, the connections taking turns (each every ${((1000 / s.rate) * s.conns).toFixed(0)} ms, ${(1000 / s.rate).toFixed(1)} ms after the one before it).`,
          `    wrk's event loop only times events in whole milliseconds, so each connection has a thread of its own, wakes about`,
          `    2 ms early and sleeps (clock_nanosleep) until its slot; wrk starts the request's clock after that. Latency in`,
          `    microseconds, from the request being written to the end of its response. Checked by hand at a server that timed`,
          `    each arrival (6 s at ${int(s.rate)} rps, direct): with wrk and pace.lua the gaps between successive arrivals were 0.95 ms`,
          `    at p10 and 1.04 ms at p90; with hey, 89% of the gaps were under 0.2 ms (bursts of ${s.conns}); h2load's \`--rps\`, over connections`,
          `    opened 1 ms apart (\`-r 1 --rate-period 1ms\`), gave gaps of 1.14 ms at p50 and 2.15 ms at p90 (pairs), and a single-threaded`,
          `    wrk with the same schedule 0.08 ms at p10 and 1.3 ms at p90. Each run's own figures, how close to its slot each request`,
          `    was sent, are under the latency table.`,
        ]
      : []),
    `- Throughput: ${s.maxWarmupS} s warm-up, then \`${h1.direct.max.command}\` with no rate limit. Any non-2xx response or error fails the bench.`,
    `- Each measured run (hey's and wrk's at the fixed rate, and the throughput run) is made ${s.repeats} times back to back after its`,
    `  warm-up, and every figure of it is the median over the ${s.repeats}: each latency percentile, the rate, each process's CPU per`,
    `  request, the other work on the machine; memory peaks are the highest of the ${s.repeats}. One window in which something else used`,
    `  the machine, or a GC or JIT burst landed, does not decide a ratio. The machine's speed still moves between whole runs.`,
    `- Weft: \`weft control\`, a server-side sidecar (inbound -> the server) and a client-side sidecar (outbound, addressed`,
    `  with \`Host: bench-server\`), configured over xDS as \`weft up\` does; measured after the client sidecar has the`,
    `  bench-server endpoint and one request through it answered 200.`,
    `- haproxy: two processes, \`mode http\`, \`http-reuse always\` (keep-alive to the next hop), \`nbthread 1\` each so that`,
    `  each haproxy, like each Node sidecar, uses one thread for traffic. The CPU targets compare each sidecar with the`,
    `  haproxy process in the same place (client side with client side, server side with server side).`,
    `- RSS and RssAnon (private memory): from /proc/<pid>/status, sampled every 200 ms during the ${s.fixedS} s fixed-rate runs (hey)`,
    `  and at their end; the peak is reported. CPU: utime + stime from /proc/<pid>/stat, the delta over a run, per request`,
    `  served (in ticks of 10 ms over the run).`,
    `- "Other work on the machine": CPU used during a phase by processes the bench did not start (all CPU time in /proc/stat`,
    `  minus the bench's own processes), in cores. Above 0.1 core (marked "(!)") that path's figures are skewed by it.`,
    '',
    `## HTTP/1.1: latency at ${int(s.rate)} requests/second (${s.conns} connections; medians of ${s.repeats} runs)`,
    '',
    `The p99 target is judged on hey's figures; compared: ${heyP99.why}.`,
    '',
    '| path | generator | p50 | p90 | p99 | achieved rps | requests | other work on the machine |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  );
  for (const p of paths) {
    add(`| ${label(p)} | hey (bursts) | ${q.map((x) => msr(p.fixed.latencyMs[x], p.fixed.resolutionMs)).join(' | ')} | ${int(p.fixed.rps)} | ${int(p.fixed.ok)} | ${cores(p.otherCores.fixed)} |`);
    if (p.paced) add(`| | wrk (even) | ${q.map((x) => msr(p.paced!.latencyMs[x], p.paced!.resolutionMs)).join(' | ')} | ${int(p.paced.rps)} | ${int(p.paced.ok)} | ${cores(p.otherCores.paced)} |`);
  }
  add('', '### Added latency of the two hops (path minus direct)', '', '| | generator | p50 | p90 | p99 |', '|---|---|---:|---:|---:|');
  const addedRows = (gen: string, get: (p: PathResult) => LoadResult) => {
    const d = get(h1.direct);
    const res = d.resolutionMs;
    const w = get(h1.weft);
    const h = get(h1.haproxy);
    add(
      `| Weft | ${gen} | ${q.map((x) => signed(addedQ(w, d, x), res)).join(' | ')} |`,
      `| haproxy | ${gen} | ${q.map((x) => signed(addedQ(h, d, x), res)).join(' | ')} |`,
      `| Weft added / haproxy added | ${gen} | ${q.map((x) => ratioOrDash(addedQ(w, d, x), addedQ(h, d, x), CLEAR_STEPS * res)).join(' | ')} |`,
      `| Weft / haproxy, whole path | ${gen} | ${q.map((x) => ratio(w.latencyMs[x] / h.latencyMs[x])).join(' | ')} |`,
    );
  };
  addedRows('hey', (p) => p.fixed);
  if (paced) addedRows('wrk', (p) => p.paced!);
  if (paced) {
    const pc = (p: PathResult) => {
      const g = p.paced!.pacing!;
      const o = (q: string) => (g.offsetUs[q] > 2000 ? 'over 2 ms' : `${(g.offsetUs[q] / 1000).toFixed(2)} ms`);
      return `${label(p).split(' (')[0]} ${o('50')} / ${o('90')} / ${o('99')}${g.skipped ? ` (${int(g.skipped)} slots missed)` : ''}`;
    };
    add(
      '',
      `wrk's stream as sent: how long after its slot on the even schedule each request went out, p50 / p90 / p99 (to 0.01 ms):`,
      `${paths.map(pc).join('; ')}. The gap between two successive requests is the interval (${(1000 / s.rate).toFixed(1)} ms) plus the difference`,
      `of their offsets. A request goes out late when its thread did not get a CPU at once, or its connection's previous response`,
      `came back after the slot; a slot is missed (not sent at all) when that was more than a whole period (${((1000 / s.rate) * s.conns).toFixed(0)} ms) late.`,
    );
  }
  add(
    '',
    `## HTTP/1.1: maximum throughput (hey, ${s.maxConns} connections, ${s.repeats} x ${s.maxS} s, medians)`,
    '',
    '| path | requests/second | p50 | p99 | other work on the machine |',
    '|---|---:|---:|---:|---:|',
    ...paths.map((p) => `| ${label(p)} | ${int(p.max.rps)} | ${msr(p.max.latencyMs['50'], 0.1)} | ${msr(p.max.latencyMs['99'], 0.1)} | ${cores(p.otherCores.max)} |`),
    '',
    `Weft / direct: ${ratio(h1.weft.max.rps / h1.direct.max.rps)}; Weft / haproxy: ${ratio(h1.weft.max.rps / h1.haproxy.max.rps)}; haproxy / direct: ${ratio(h1.haproxy.max.rps / h1.direct.max.rps)}.`,
    '',
    '## HTTP/1.1: proxy memory and CPU',
    '',
    `CPU per request is in milliseconds of CPU time (utime + stime) per request served.`,
    '',
    `| process | RSS idle | peak RSS at ${int(s.rate)} rps | peak private (RssAnon) at ${int(s.rate)} rps | RSS at end of it | CPU at ${int(s.rate)} rps | CPU per request at ${int(s.rate)} rps (hey) | CPU per request at ${int(s.rate)} rps (wrk, even) | peak RSS at max | CPU per request at max |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...[...h1.direct.usage, ...h1.weft.usage, ...h1.haproxy.usage].map(
      (u) =>
        `| ${u.label} | ${mb(u.idleRssMB)} | ${mb(u.fixedPeakRssMB)} | ${mb(u.fixedPeakAnonMB)} | ${mb(u.fixedEndRssMB)} | ${(u.fixedCpuShare * 100).toFixed(0)}% of a core | ${cpu(u.fixedCpuPer1k)} | ${u.pacedCpuPer1k === undefined ? '-' : cpu(u.pacedCpuPer1k)} | ${mb(u.maxPeakRssMB)} | ${cpu(u.maxCpuPer1k)} |`,
    ),
    '',
  );
}

function ratioOrDash(a: number, b: number, clear: number): string {
  return b >= clear ? ratio(a / b) : `- (haproxy adds ${b < 0 ? 'less than nothing' : `under ${clear < 0.1 ? clear.toFixed(2) : clear.toFixed(1)} ms`})`;
}

// ---------------------------------------------------------------------------------------------
// Route table size (bench/routes.ts)

function routesVerdict(rt: RoutesResult): Verdict {
  const [a, b] = [rt.a.result, rt.b.result];
  const x = b.latencyMs['99'] / a.latencyMs['99'];
  return {
    target: `p99 through the client sidecar with a route table of ${int(rt.virtualServices)} VirtualServices at most ${TARGETS.routeTableP99}x with a table of 1 (wrk paced, interleaved windows)`,
    actual: `${msr(b.latencyMs['99'], b.resolutionMs)} vs ${msr(a.latencyMs['99'], a.resolutionMs)}: ${ratio(x)} (p50 ${msr(b.latencyMs['50'], b.resolutionMs)} vs ${msr(a.latencyMs['50'], a.resolutionMs)}, ${ratio(b.latencyMs['50'] / a.latencyMs['50'])})`,
    status: x <= TARGETS.routeTableP99 ? 'pass' : 'fail',
  };
}

function renderRoutes(r: BenchResult, rt: RoutesResult, add: (...l: string[]) => void): void {
  const s = r.setup;
  const { a, b } = rt;
  const res = a.result.resolutionMs;
  const q = ['50', '90', '99'];
  const table = (t: RoutesResult['a']['table']) => `${int(t.virtualHosts)} virtual hosts, ${int(t.routes)} routes, ${int(t.clusters)} clusters`;
  // RssAnon from the warm-up (each table applied once): what the sidecar grows for table B stays after it.
  const anon = rt.warmupAnonMB;
  const row = (label: string, c: RoutesResult['a'], anonMB: number) =>
    `| ${label} | ${table(c.table)} | ${q.map((k) => msr(c.result.latencyMs[k], res)).join(' | ')} | ${int(c.result.rps)} | ${cpu(c.cpuPer1k)} | ${mb(anonMB)} | ${cores(c.otherCores)} |`;
  const switches = (xs: RoutesResult['toB']) => xs.map((x) => `${secs(x.applyMs)} + ${secs(x.ackMs)}`).join(', ');
  const peaks = (t: 'A' | 'B') => rt.windows.filter((w) => w.table === t).map((w) => mb(w.peakAnonMB)).join(', ');
  add(
    `## Route table size: 1 VirtualService against ${int(rt.virtualServices)}`,
    '',
    `The Weft path of the HTTP/1.1 phase (bench/server.ts behind a server sidecar and a client sidecar, one \`weft control\`),`,
    `with two route tables in the client sidecar (bench/routes.ts). **A**: one VirtualService, for bench-server (a prefix`,
    `match; every request takes it). **B**: the same, plus ${int(rt.virtualServices - 1)} VirtualServices for other hosts (svc-1 ... svc-${rt.virtualServices - 1}), each with`,
    `three routes (a header match, two prefix matches one of them with a header, a catch-all), weighted splits over the`,
    `subsets of a DestinationRule, a timeout and retries; no workload serves those hosts, so the client sidecar holds their`,
    `virtual hosts, routes and subset clusters. After a warm-up (${s.fixedS} s with table A, then ${s.fixedS} s with table B), the tables alternate, A B A B ..., ${rt.windows.length / 2} windows each:`,
    `${s.warmupS} s of warm-up and ${s.fixedS} s measured with \`${a.result.command}\`, as in the HTTP/1.1 phase; each figure is the median of a table's windows,`,
    `RssAnon the highest sampled (every 200 ms). From A to B the ${int(rt.virtualServices - 1)} are applied in one \`POST /api/v1/apply\``,
    `(the first time with their DestinationRules, ${(rt.applyBytes / 1024).toFixed(0)} KB of YAML); from B to A they are applied again with`,
    `\`gateways: [bench-parked]\`, which takes them out of every sidecar's config in one request; the bench checks that the`,
    `client sidecar then holds exactly table A again. Each window starts once every sidecar has ACKed the new config revision.`,
    '',
    `| table | the client sidecar holds | p50 | p90 | p99 | achieved rps | client sidecar CPU per request | client sidecar RssAnon, peak in the warm-up | other work on the machine |`,
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
    row('A: 1 VirtualService', a, anon.a),
    row(`B: ${int(rt.virtualServices)} VirtualServices`, b, anon.b),
    `| B / A | | ${q.map((k) => ratio(b.result.latencyMs[k] / a.result.latencyMs[k])).join(' | ')} | | ${ratio(b.cpuPer1k / a.cpuPer1k)} | ${signedMB(anon.b - anon.a)} | |`,
    '',
    `Each window in the order measured: ${rt.windows
      .map((w) => `${w.table} p99 ${msr(w.p99, res)} (p50 ${msr(w.p50, res)}, ${cpu(w.cpuPer1k)} CPU, ${mb(w.peakAnonMB)}${w.otherCores > 0.1 ? `, other work ${cores(w.otherCores)}` : ''})`)
      .join('; ')}.`,
    '',
    `- The client sidecar's RssAnon (peaks): in the warm-up, ${mb(anon.a)} with table A, before it had ever held table B, and ${mb(anon.b)} with`,
    `  table B applied once (${signedMB(anon.b - anon.a)}). In the measured windows, after more switches: A ${peaks('A')}; B ${peaks('B')}:`,
    `  what the sidecar grew for table B is mostly kept when it goes back to A.`,
    `- From the apply to the client sidecar holding the new table: the apply request, then its ACK of that revision (polled every`,
    `  20 ms): to B ${switches(rt.toB)}${rt.toA.length ? `; back to A ${switches(rt.toA)}` : ''}. The first switch to B also creates the DestinationRules.`,
    '',
  );
}

// ---------------------------------------------------------------------------------------------
// Ten sidecars at once

function renderMemory(mem: MemoryResult, add: (...l: string[]) => void): void {
  const sum = (f: (x: MemoryRow) => number) => mem.sidecars.reduce((a, x) => a + f(x), 0);
  const mean = (f: (x: MemoryRow) => number) => sum(f) / mem.sidecars.length;
  const row = (x: MemoryRow, extra = '') =>
    `| ${x.label}${extra} | ${mb(x.rssMB)} | ${mb(x.pssMB)} | ${mb(x.pssAnonMB)} | ${mb(x.pssFileMB)} | ${mb(x.anonMB)} | ${ratio(x.anonMB / mem.floor.anonMB)} | ${ratio(x.pssMB / mem.floor.pssMB)} |`;
  add(
    `## Memory with ${mem.n} sidecars at once`,
    '',
    `${mem.n} sidecar processes started as \`weft up\` starts them, each serving a service whose app is a bare node:http server`,
    `(bench/server.ts, the Node floor; one server for all), against one \`weft control\`. Traffic: ${mem.traffic}, each`,
    `addressed to the next sidecar's service, so every sidecar carried requests out and in (${int(mem.requests)} requests in all);`,
    `then a second of idle, and each process's memory read from /proc: Rss, Pss, Pss_Anon and Pss_File from`,
    `/proc/<pid>/smaps_rollup, RssAnon from /proc/<pid>/status. PSS (proportional set size) counts each page shared by k`,
    `processes as 1/k in each, so the PSS of all processes adds up to the memory they use together; RSS counts shared pages`,
    `in full in every process. The node binary's file-backed pages are shared by every process running that binary at the time:`,
    `${mem.nodeProcs} of them (the ${mem.n} sidecars, the server, the control plane, the bench itself, and any other on the machine),`,
    `so PSS file shrinks as more Node processes run; PSS anon does not.`,
    '',
    '| process | RSS | PSS | PSS anon | PSS file | private (RssAnon) | RssAnon / the server\'s | PSS / the server\'s |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...mem.sidecars.map((x) => row(x)),
    `| **mean of the ${mem.n} sidecars** | ${mb(mean((x) => x.rssMB))} | ${mb(mean((x) => x.pssMB))} | ${mb(mean((x) => x.pssAnonMB))} | ${mb(mean((x) => x.pssFileMB))} | ${mb(mean((x) => x.anonMB))} | ${ratio(mean((x) => x.anonMB) / mem.floor.anonMB)} | ${ratio(mean((x) => x.pssMB) / mem.floor.pssMB)} |`,
    row(mem.floor),
    row(mem.controlPlane, ' (for reference)'),
    '',
    `The ${mem.n} sidecars together: ${mb(sum((x) => x.pssMB))} of PSS (what they cost the machine), against ${mb(sum((x) => x.rssMB))} summed RSS.`,
    '',
  );
}

// ---------------------------------------------------------------------------------------------
// HTTP/2 and gRPC

function renderProto(r: BenchResult, p: ProtoResult, add: (...l: string[]) => void): void {
  const s = r.setup;
  const name = p.proto === 'h2' ? 'HTTP/2 (cleartext, prior knowledge)' : 'gRPC (unary)';
  const d = p.direct;
  const q = ['50', '90', '99'];
  const res = d.fixed.resolutionMs;
  const how =
    p.proto === 'h2'
      ? [
          `A node:http2 server (bench/server.ts --proto h2, \`GET /\` -> 200, the same body), loaded by h2load over cleartext with prior`,
          `knowledge. Fixed rate: ${s.warmupS} s warm-up, then \`${d.fixed.command}\` ${s.repeats} times (medians): ${s.conns} connections opened 1 ms apart, each at`,
          `${s.rate / s.conns} requests/second, so that their tickers do not fire together. That stream is less even than wrk's: by hand`,
          `(HTTP/1.1, at a server timing each arrival) its gaps were 1.1 ms at p50 and 2.2 ms at p90, often two requests together.`,
          `Latency from h2load's per-request log, in microseconds. Throughput: \`${d.max.command}\` ${s.repeats} times (medians) after a ${s.maxWarmupS} s warm-up.`,
        ]
      : [
          `A grpc-js server (bench/server.ts --proto grpc, unary \`/weft.bench.Bench/Hello\` answering the same bytes), loaded by`,
          `bench/grpc-load.ts (grpc-js clients, one HTTP/2 connection each). Fixed rate: ${s.warmupS} s warm-up, then`,
          `\`${d.fixed.command}\` ${s.repeats} times (medians): one even schedule, a call every ${(1000 / s.rate).toFixed(1)} ms, the clients taking turns; latency in the`,
          `client, in microseconds. Throughput: \`${d.max.command}\` ${s.repeats} times (medians) after a ${s.maxWarmupS} s warm-up. The load generator is Node`,
          `itself, on the same 2 CPUs, so the throughput figures are lower than HTTP/1.1's for that alone.`,
        ];
  add(
    `## ${name} through two sidecars`,
    '',
    ...how,
    `The Weft path: a server-side sidecar (inbound -> that server, as service \`bench-${p.proto}\`) and a client-side sidecar, whose`,
    `outbound listener the load generator connects to with \`:authority: bench-${p.proto}\`. One request through it must succeed`,
    `before anything is measured; the baseline is the direct connection in the same run.`,
    '',
  );
  const rows = [d, ...('notMeasured' in p.weft ? [] : [p.weft])];
  add(
    `| path | p50 at ${int(s.rate)} rps | p90 | p99 | achieved rps | max requests/second | CPU per request at ${int(s.rate)} rps | other work on the machine |`,
    '|---|---:|---:|---:|---:|---:|---|---:|',
    ...rows.map(
      (x) =>
        `| ${x === d ? 'direct (client -> server)' : 'Weft (client -> sidecar -> sidecar -> server)'} | ${q.map((k) => msr(x.fixed.latencyMs[k], res)).join(' | ')} | ${int(x.fixed.rps)} | ${int(x.max.rps)} | ${x.usage.map((u) => `${u.label}: ${cpu(u.fixedCpuPer1k)}`).join('; ')} | ${cores(Math.max(x.otherCores.fixed, x.otherCores.max))} |`,
    ),
    '',
  );
  if ('notMeasured' in p.weft) {
    add(`**Weft: ${p.weft.notMeasured}.**`, '');
  } else {
    const w = p.weft;
    add(
      `Weft / direct: p50 ${q.map((k) => `${k === '50' ? '' : `p${k} `}${ratio(w.fixed.latencyMs[k] / d.fixed.latencyMs[k])}`).join(', ')} (added ${q.map((k) => signed(addedQ(w.fixed, d.fixed, k), res)).join(' / ')}); ` +
        `max throughput ${ratio(w.max.rps / d.max.rps)}; sidecar peak RSS at ${int(s.rate)} rps ${w.usage.map((u) => `${mb(u.fixedPeakRssMB)} (private ${mb(u.fixedPeakAnonMB)})`).join(', ')}.`,
      '',
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Control plane: many proxies (bench/scale.ts)

export const SCALE_BEGIN = '<!-- scale:begin -->';
export const SCALE_END = '<!-- scale:end -->';

/** Replaces the scale section of a generated report (or puts it before "Where the time goes"). */
export function spliceScale(doc: string, section: string): string {
  const a = doc.indexOf(SCALE_BEGIN);
  const b = doc.indexOf(SCALE_END);
  if (a >= 0 && b > a) return doc.slice(0, a) + section + doc.slice(b + SCALE_END.length);
  const w = doc.indexOf('## Where the time goes');
  if (w >= 0) return `${doc.slice(0, w)}${section}\n\n${doc.slice(w)}`;
  return `${doc.trimEnd()}\n\n${section}\n`;
}

const secs = (msv: number) => (msv >= 1000 ? `${(msv / 1000).toFixed(2)} s` : `${Math.round(msv)} ms`);
const times = (a: number, b: number) => (b > 0 ? `${a / b >= 10 ? Math.round(a / b) : (a / b).toFixed(1)}x` : '-');
const spreadText = (s: Spread) => `${secs(s.p50)} / ${secs(s.p99)} / ${secs(s.max)}`;

/** The scoped run (N proxies over several namespaces) and the run in one namespace at the same N. */
function scopedPair(s: ScaleResult): { single: ScaleRun; scoped: ScaleRun } | undefined {
  const scoped = s.runs.find((r) => r.namespaces > 1);
  const single = scoped && s.runs.find((r) => r.n === scoped.n && r.namespaces === 1);
  return single && scoped ? { single, scoped } : undefined;
}

export function scopedPushVerdict(s: ScaleResult): Verdict | undefined {
  const pair = scopedPair(s);
  if (!pair) return undefined;
  const { single, scoped } = pair;
  const x = scoped.config.allMs / single.config.allMs;
  const p50 = (r: ScaleRun) => r.config.perProxy.p50;
  return {
    target: `a config push (one VirtualService weight) to ${int(scoped.n)} simulated proxies in ${scoped.namespaces} namespaces, with per-scope route configs, at most ${TARGETS.scopedPushVsSingle}x the push to ${int(single.n)} in one namespace (until all ${int(scoped.n)} ACKed)`,
    actual:
      `${secs(scoped.config.allMs)} vs ${secs(single.config.allMs)}: ${ratio(x)} (p50 per proxy ${secs(p50(scoped))} vs ${secs(p50(single))}, ${ratio(p50(scoped) / p50(single))}; ` +
      `medians of ${scoped.config.changesMs.length} pushes; ${scoped.routeConfigs} distinct route configs against ${single.routeConfigs})`,
    status: x <= TARGETS.scopedPushVsSingle ? 'pass' : 'fail',
  };
}

const runLabel = (r: ScaleRun) => `N = ${int(r.n)}${r.namespaces > 1 ? `, ${r.namespaces} namespaces` : ''}`;

export function renderScale(s: ScaleResult): string {
  const base = s.runs[0];
  const big = s.runs.slice(1);
  const m = s.mesh;
  const pair = scopedPair(s);
  const verdict = scopedPushVerdict(s);
  const L: string[] = [];
  const add = (...lines: string[]) => L.push(...lines);
  const head = `| | N = 1 | ${big.map((r) => `${runLabel(r)} | ${int(r.n)} vs 1`).join(' | ')} |`;
  const rule = `|---|---:|${big.map(() => '---:|---:').join('|')}|`;
  const row = (label: string, f: (r: ScaleRun) => number, fmt: (x: number) => string, ratio = true) =>
    `| ${label} | ${fmt(f(base))} | ${big.map((r) => `${fmt(f(r))} | ${ratio ? times(f(r), f(base)) : ''}`).join(' | ')} |`;
  const spreadRow = (label: string, f: (r: ScaleRun) => Spread) =>
    `| ${label} | ${spreadText(f(base))} | ${big.map((r) => `${spreadText(f(r))} | ${times(f(r).p50, f(base).p50)} / ${times(f(r).p99, f(base).p99)} / ${times(f(r).max, f(base).max)}`).join(' | ')} |`;
  const perProxyKB = (r: ScaleRun) => ((r.rss.afterMB - r.rss.idleMB) * 1024) / r.n;

  add(
    SCALE_BEGIN,
    '## Control plane: many proxies',
    '',
    `One \`weft control\` process, and N simulated proxies (bench/scale.ts): raw ADS clients, each on its own gRPC`,
    `connection over loopback, that subscribe to CDS and LDS (wildcard), then to EDS and RDS by the names they get, and`,
    `ACK every response. They run in ${s.workers} worker threads of the bench process, not in the control plane's.`,
    `${int(m.clientEvery - 1)} in ${m.clientEvery} serve a service (${m.services} services x ${m.versions} versions, labels app and version);`,
    `the others are pure clients. ${m.routed} services have a VirtualService (90/10 over subsets v1 and v2) and a DestinationRule,`,
    `applied through the admin API before the proxies connect. Each N runs against a fresh control plane; N = 1 is the`,
    `baseline (one proxy serving one service, so its config is also smaller). ${s.nproc} CPUs, shared by the control plane`,
    `and the simulated proxies; whole scale run ${s.durationS.toFixed(0)} s.`,
    ...(pair
      ? [
          '',
          `The scoped run (${runLabel(pair.scoped)}) has the same services, proxies and config spread over namespaces ns-0 ...`,
          `ns-${pair.scoped.namespaces - 1}: each proxy in its service's namespace (pure clients round-robin), each namespace with its own svc-0,`,
          `svc-1, ..., and svc-0 of each namespace with its own VirtualService and DestinationRule (so ${m.routed} of them in all, as in one`,
          `namespace). Every namespace is a route scope of its own: short names differ, so its proxies get a route config of their`,
          `own, which the control plane translates and encodes once per scope and push (src/control/push/cache.ts). The config change`,
          `is the same one weight change, of svc-0 in ns-0, which every proxy sees; it is compared with the run in one namespace at`,
          `the same N, in the same bench invocation.`,
        ]
      : []),
    '',
    ...(verdict ? [`**Target:** ${verdict.target}: ${verdict.actual}: ${STATUS[verdict.status]}.`, ''] : []),
    ...big.map(
      (r) =>
        `- ${runLabel(r)}: a config push to all ${int(r.n)} proxies took ${times(r.config.allMs, base.config.allMs)} the time of a push to 1 ` +
        `(${secs(r.config.allMs)} vs ${secs(base.config.allMs)}); an endpoint change reached all ${int(r.n)} in ${times(r.endpoint.allMs, base.endpoint.allMs)} the time ` +
        `(${secs(r.endpoint.allMs)} vs ${secs(base.endpoint.allMs)}); bringing all ${int(r.n)} up took ${times(r.connect.allMs, base.connect.allMs)} the time ` +
        `(${secs(r.connect.allMs)} vs ${secs(base.connect.allMs)}), with ${r.cpu.connectS.toFixed(1)} s of control plane CPU; ` +
        `the control plane held ${mb(r.rss.afterMB)} with them connected (${mb(r.rss.idleMB)} idle).`,
    ),
    '',
    head,
    rule,
    row('GET /api/v1/proxies: proxies listed after connecting (must be N)', (r) => r.adminProxies, int, false),
    row('route scopes: distinct route configs the N proxies hold', (r) => r.routeConfigs, int, false),
    `| services served / CDS resources per proxy | ${base.services} / ${base.clusters} | ${big.map((r) => `${r.services} / ${r.clusters} | `).join(' | ')} |`,
    `| **initial config**: all N connect at once -> all N ACKed their full config | ${secs(base.connect.allMs)} | ${big.map((r) => `${secs(r.connect.allMs)} | ${times(r.connect.allMs, base.connect.allMs)}`).join(' | ')} |`,
    spreadRow('  per proxy, p50 / p99 / max', (r) => r.connect.perProxy),
    spreadRow('  first complete config (any version, all four types ACKed), p50 / p99 / max', (r) => r.connect.first),
    row('  control plane CPU for it', (r) => r.cpu.connectS, (x) => `${x.toFixed(2)} s`),
    row('  ... per proxy', (r) => (r.cpu.connectS / r.n) * 1000, (x) => `${x.toFixed(1)} ms`, false),
    `| **config change** (VirtualService weight, the median of ${base.config.changesMs.length}): apply returned -> all N have the new RDS | ${secs(base.config.allMs)} | ${big.map((r) => `${secs(r.config.allMs)} | ${times(r.config.allMs, base.config.allMs)}`).join(' | ')} |`,
    spreadRow('  per proxy, p50 / p99 / max', (r) => r.config.perProxy),
    `|   each change, all N | ${base.config.changesMs.map(secs).join(', ')} | ${big.map((r) => `${r.config.changesMs.map(secs).join(', ')} | `).join(' | ')} |`,
    row('  the apply request itself', (r) => r.config.applyMs, secs),
    row('  control plane CPU for it', (r) => r.cpu.configS, (x) => `${x.toFixed(2)} s`),
    row('  ... per proxy', (r) => (r.cpu.configS / r.n) * 1000, (x) => `${x.toFixed(2)} ms`, false),
    `| **endpoint change** (one more proxy joins a service): its stream opens -> all N have the new EDS | ${secs(base.endpoint.allMs)} | ${big.map((r) => `${secs(r.endpoint.allMs)} | ${times(r.endpoint.allMs, base.endpoint.allMs)}`).join(' | ')} |`,
    spreadRow('  per proxy, p50 / p99 / max', (r) => r.endpoint.perProxy),
    row('  control plane CPU for it', (r) => r.cpu.endpointS, (x) => `${x.toFixed(2)} s`),
    row('  ... per proxy', (r) => (r.cpu.endpointS / r.n) * 1000, (x) => `${x.toFixed(2)} ms`, false),
    row('control plane RSS, idle (config applied, no proxy)', (r) => r.rss.idleMB, mb, false),
    row('control plane RSS with N proxies connected', (r) => r.rss.afterMB, mb),
    row('control plane peak RSS (sampled every 100 ms)', (r) => r.rss.peakMB, mb),
    row('  RSS per proxy ((connected - idle) / N)', perProxyKB, (x) => `${x.toFixed(0)} KB`, false),
    row('load generator CPU (bench process, all phases)', (r) => r.loadGenCpuS, (x) => `${x.toFixed(2)} s`, false),
    '',
    'Times are wall clock, from the event to the moment each simulated proxy had decoded the response (it ACKs at once).',
    '"All N" is the slowest proxy. An endpoint change includes the control plane\'s debounce (50 ms quiet, 300 ms at most).',
    `The config change is made ${base.config.changesMs.length} times (the weight to 50/50, back to 90/10, ...), each after every proxy ACKed the one before;`,
    'its figures are those of the median change by its slowest proxy.',
    'CPU is utime + stime of the control plane process over the phase, in 10 ms ticks (so the N = 1 CPU figures, and ratios',
    'against them, are mostly rounding); RSS is VmRSS. The run fails on a NACK, a stream',
    'error, a proxy that does not get its config in time, or a proxy count in the admin API other than N.',
    '',
    SCALE_DOMINATES.trim(),
    SCALE_END,
  );
  return L.join('\n');
}

/** Written from a `node bench/scale.ts --cpu-prof` run; update it when src/control/ads or translate change. */
const SCALE_DOMINATES = `
### What dominates

From \`node bench/scale.ts --proxies 1000 --cpu-prof\` (the control plane under \`--cpu-prof\`, its samples cut into the
three phases), 2026-11-25, after the changes below. Shares are of the samples in which the control plane was busy.

- **What was fixed, with the figures before and after** (N = 1,000):
  - Bringing all proxies up went from 8-29 s to 4.4 s, and control plane CPU from 7-25 s to 3 s.
  - RSS with 1,000 proxies connected went from 451 MB to about 290 MB.
  - The changes:
    - the registry file is written at most every 500 ms, not on every registration;
    - the store revision is kept in memory, not queried per proxy;
    - a new stream is answered from the last push's snapshot, instead of translating afresh for each
      registration;
    - each resource is encoded once, as the ready-made bytes of an \`Any\` field, and each proxy's
      DiscoveryResponse is assembled from those bytes;
    - "unchanged" is decided by comparing cached per-resource digests, not by hashing a combined digest for
      every proxy.
- **What is left is per-proxy work on shared bytes.** For each proxy, a push still:
  - builds its own listeners and copies the shared resources' bytes into one response buffer
    (\`Buffer.concat\`, \`_copyActual\`);
  - encodes its listeners with protobufjs;
  - passes through grpc-js and HTTP/2 framing.

  That is about 0.4-0.5 ms of control plane CPU per proxy per push. A push to 1,000 proxies reaches the
  last one about half a second after the apply, including the 50 ms debounce.
- **Pushes during the ramp are bounded.** Every registration schedules a push, and each push walks every
  connected proxy. Unbounded, connecting N proxies cost about N x (ramp time / 300 ms) proxy-pushes, and a
  ramp stretched by TLS handshakes on a busy machine fed on itself (69 s and 4.2 GB at N = 1,000). Now:
  - a stream has at most one unanswered response per type: a push that finds one outstanding holds that
    type back, and the proxy's ACK brings it the latest at once. A proxy slower than the pushes gets fewer,
    newer responses, not a queue of stale ones on its socket (\`stats.held\` in /api/v1/proxies counts them);
  - while changes keep coming (the 300 ms bound forces the push), the next push waits four times as long as
    the last one took, and at least 300 ms doubled per push of the storm up to 5 s, so that pushes take at
    most a fifth of the control plane's time and their number grows with the ramp's length only slowly; a
    storm quiet for a second gets its last push then.
- **Memory is about 180 KB per connected proxy** (VmRSS, not yet broken down with a heap snapshot). It holds:
  - one HTTP/2 session and gRPC call per proxy;
  - its \`Connection\` and subscriptions;
  - at most one unanswered response per type on its socket (flow control, above).
- The simulated proxies share the machine's CPUs with the control plane, so wall-clock times include some waiting
  for a CPU. Each worker thread decodes each distinct resource once, to keep that small.
`;
