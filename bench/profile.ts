// Reads a V8 .cpuprofile (node --cpu-prof) and sums self time per function and per area
// (a file of src/, a node_modules package, a node: builtin, GC), over a time window.
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number; // µs
  endTime: number; // µs
  samples: number[];
  timeDeltas: number[]; // µs
}

export interface Row {
  name: string;
  where: string;
  pct: number; // of all samples in the window
}

export interface ProfileSummary {
  windowS: number;
  samples: number;
  busyPct: number; // not (idle)
  functions: Row[];
  areas: Row[];
  rps?: number;
}

const SPECIAL = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

function shortUrl(url: string, root: string): string {
  if (!url) return '';
  let u = url.startsWith('file://') ? decodeURIComponent(new URL(url).pathname) : url;
  if (u.startsWith(root + path.sep)) u = path.relative(root, u);
  // node_modules may be a symlink to another checkout's: name the package path alone.
  const nm = u.indexOf('/node_modules/');
  if (nm >= 0) u = u.slice(nm + 1);
  return u;
}

/** node_modules/undici/lib/x.js -> "undici"; src/proxy/http/forward.ts -> itself; node:internal/http -> node:internal/http */
function areaOf(fn: CallFrame, root: string): string {
  if (SPECIAL.has(fn.functionName) && !fn.url) return fn.functionName;
  const u = shortUrl(fn.url, root);
  if (!u) return '(native / V8 builtins)';
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = u.slice(nm + 'node_modules/'.length).split('/');
    return `npm: ${rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (u.startsWith('node:')) return u.replace(/\.js$/, '');
  return u;
}

/**
 * Self time by function and by area over [endTime - fromEndMs, endTime - toEndMs]: the profile ends
 * when the process exits, which is the clock the caller knows.
 */
export function analyzeProfile(p: CpuProfile, window: { fromEndMs: number; toEndMs: number }, root: string): ProfileSummary {
  const from = p.endTime - window.fromEndMs * 1000;
  const to = p.endTime - window.toEndMs * 1000;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const counts = new Map<number, number>();
  let t = p.startTime;
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i];
    if (t < from || t > to) continue;
    counts.set(p.samples[i], (counts.get(p.samples[i]) ?? 0) + 1);
    total += 1;
  }
  if (total === 0) throw new Error('the CPU profile has no samples in the load window');
  const fns = new Map<string, Row>();
  const areas = new Map<string, Row>();
  let idle = 0;
  for (const [id, n] of counts) {
    const cf = byId.get(id)!.callFrame;
    if (cf.functionName === '(idle)') idle += n;
    const where = SPECIAL.has(cf.functionName) && !cf.url ? '' : `${shortUrl(cf.url, root) || '(native)'}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
    const name = cf.functionName || '(anonymous)';
    const key = `${name}\t${where}`;
    const row = fns.get(key) ?? { name, where, pct: 0 };
    row.pct += (n / total) * 100;
    fns.set(key, row);
    const a = areaOf(cf, root);
    const ar = areas.get(a) ?? { name: a, where: '', pct: 0 };
    ar.pct += (n / total) * 100;
    areas.set(a, ar);
  }
  const sorted = (m: Map<string, Row>) => [...m.values()].sort((a, b) => b.pct - a.pct);
  return {
    windowS: (to - from) / 1e6,
    samples: total,
    busyPct: 100 - (idle / total) * 100,
    functions: sorted(fns),
    areas: sorted(areas),
  };
}

const PROFILE_BEGIN = '<!-- profile:begin -->';
const PROFILE_END = '<!-- profile:end -->';

export function renderProfile(s: ProfileSummary, date: Date): string {
  const pct = (x: number) => `${x.toFixed(1)}%`;
  const ofBusy = (r: Row) => (r.name === '(idle)' ? '' : pct((r.pct / s.busyPct) * 100));
  const lines = [
    PROFILE_BEGIN,
    `Profile of ${date.toISOString().slice(0, 10)} (\`npm run bench -- --profile\`): the client-side sidecar under \`node --cpu-prof\`, ` +
      `${s.windowS.toFixed(1)} s of a max-throughput run (${MAX_CONNS_TEXT}${s.rps ? `, ${Math.round(s.rps)} rps while profiled` : ''}), ` +
      `${s.samples} samples; the process was busy (not idle) in ${pct(s.busyPct)} of them.`,
    '',
    'Top self time, by function ("of busy": share of the samples in which the process was not idle):',
    '',
    '| self | of busy | function | where |',
    '|---:|---:|---|---|',
    ...s.functions.slice(0, 12).map((r) => `| ${pct(r.pct)} | ${ofBusy(r)} | \`${r.name}\` | ${r.where ? `\`${r.where}\`` : ''} |`),
    '',
    'Self time by area (file of src/, npm package, node builtin module):',
    '',
    '| self | of busy | area |',
    '|---:|---:|---|',
    ...s.areas.slice(0, 12).map((r) => `| ${pct(r.pct)} | ${ofBusy(r)} | \`${r.name}\` |`),
    PROFILE_END,
  ];
  return lines.join('\n');
}

const MAX_CONNS_TEXT = 'hey, 64 connections';
