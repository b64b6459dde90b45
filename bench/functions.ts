// By hand, not part of `npm run bench`: where telemetry's instructions go, function by function.
//
//   npm run bench:functions -- [server|client] [rows]     (node bench/functions.ts ...)
//
// Starts the telemetry phase's two meshes in turn (bench/telemetry.ts startPath: off, then on),
// one side's sidecar under callgrind with --dump-instr=yes and node's --perf-basic-prof (the map
// that names V8's generated code), counts bench/instructions.ts's windows, and reads the lowest
// window of each mesh (the one least disturbed by a major collection or a compilation). Prints
// each function's instructions per request off and on, the largest differences first: native
// functions by callgrind's own names, JavaScript by the map's (V8's tier marks: * TurboFan's
// code, + Maglev's, ^ Sparkplug's, ~ the interpreter's, a trailing ' code specialized to its
// context; an inlined function counts in the one it was inlined into). A figure moves by a few
// hundred instructions between runs, as V8 compiles differently; what it is for is telling the
// parts of a difference of thousands apart.
//
// WEFT_FUNCTIONS_CALLERS=name,name...: then, for each function whose name starts with one of those
// (a builtin such as Builtins_LoadIC_Megamorphic), who called it and what those calls cost
// inclusively, off and on. That is how the megamorphic property loads telemetry added were found
// in node's Socket._write (http/types.ts ConnectionMemo).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stop } from './proc.ts';
import { REQUESTS, callgrindCommand, count, dumps } from './instructions.ts';
import { SERVICE, type Side, startPath } from './telemetry.ts';
import { startServer } from './mesh.ts';
import { ensureTools } from './tools.ts';

/**
 * Reads one callgrind dump made with --dump-instr=yes: `self(name, ir)` for each cost line of a
 * function's own instructions, and `call(callee, ir, caller)` for each call's inclusive cost (its
 * callee's own instructions and what that called), which is not the caller's own. A function is
 * named as callgrind names it (without its object file), generated code by the map at the
 * address of the cost (`caller()` names the function the call was made from).
 */
function readDump(dump: string, map: PerfMap, self: (name: string, ir: number) => void, call?: (callee: string, ir: number, caller: () => string) => void): void {
  const names = new Map<string, string>();
  let fn = '';
  let callee = '';
  let pos = 0;
  let columns = 1;
  let inCall = false;
  const named = () => (fn !== '' && !fn.startsWith('0x') && !fn.startsWith('???') ? fn : map.nameAt(pos));
  for (const line of fs.readFileSync(dump, 'utf8').split('\n')) {
    if (line.startsWith('positions:')) {
      columns = line.split(/\s+/).length - 1;
      continue;
    }
    // fn=(id) name defines a compressed name, fn=(id) uses it; a cfn= line may define it first.
    const def = /^c?fn=\((\d+)\)(?: (.*))?$/.exec(line);
    if (def) {
      if (def[2] !== undefined) names.set(def[1]!, def[2].replace(/ \[\/[^\]]*\]$/, ''));
      if (line.startsWith('fn=')) fn = names.get(def[1]!) ?? '';
      else callee = names.get(def[1]!) ?? '';
      continue;
    }
    if (line.startsWith('calls=')) {
      // The next cost line is the call's inclusive cost.
      inCall = true;
      continue;
    }
    const c = line.charCodeAt(0);
    const isCost = (c >= 48 && c <= 57) || c === 43 || c === 45 || c === 42; // digit + - *
    if (!isCost) continue;
    const parts = line.split(' ');
    const p = parts[0]!;
    pos = p.startsWith('0x') ? parseInt(p, 16) : p[0] === '+' ? pos + parseInt(p.slice(1), 10) : p[0] === '-' ? pos - parseInt(p.slice(1), 10) : p === '*' ? pos : parseInt(p, 10);
    const ir = Number(parts[columns] ?? 0);
    if (inCall) {
      inCall = false;
      if (ir && call) call(callee, ir, named);
    } else if (ir) self(named(), ir);
  }
}

/** Self instructions per function name in one callgrind dump made with --dump-instr=yes. */
export function functionsOf(dump: string, map: PerfMap): Map<string, number> {
  const out = new Map<string, number>();
  readDump(dump, map, (name, ir) => out.set(name, (out.get(name) ?? 0) + ir));
  return out;
}

/**
 * Who calls the functions whose names start with one of `targets`, in one dump: per target, the
 * instructions its calls cost inclusively (its own and what it called), by caller (a native
 * function by callgrind's name, generated code by the map's name of the call's address).
 */
export function callersOf(dump: string, map: PerfMap, targets: ReadonlySet<string>): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  readDump(
    dump,
    map,
    () => {},
    (callee, ir, caller) => {
      let target: string | undefined;
      for (const t of targets) {
        if (!callee.startsWith(t)) continue;
        target = t;
        break;
      }
      if (target === undefined) return;
      let by = out.get(target);
      if (!by) out.set(target, (by = new Map()));
      const from = caller();
      by.set(from, (by.get(from) ?? 0) + ir);
    },
  );
  return out;
}

/** Node's /tmp/perf-<pid>.map (--perf-basic-prof): where each piece of generated code was, by start address. */
export class PerfMap {
  private readonly starts: number[] = [];
  private readonly entries: { start: number; size: number; name: string }[] = [];

  constructor(text: string) {
    // Code is moved and its space reused: the last entry at an address is the one that counts.
    const byStart = new Map<number, { start: number; size: number; name: string }>();
    for (const line of text.split('\n')) {
      const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line);
      if (m) byStart.set(parseInt(m[1]!, 16), { start: parseInt(m[1]!, 16), size: parseInt(m[2]!, 16), name: m[3]!.replace(/file:\/\/\/\S*?\/(src|bench|node_modules)\//, '$1/') });
    }
    this.entries = [...byStart.values()].sort((a, b) => a.start - b.start);
    this.starts = this.entries.map((e) => e.start);
  }

  nameAt(addr: number): string {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid]! <= addr) lo = mid + 1;
      else hi = mid - 1;
    }
    for (let i = hi; i >= 0 && i > hi - 16; i--) {
      const e = this.entries[i]!;
      if (addr < e.start + e.size) return e.name;
    }
    return '(unnamed generated code)';
  }
}

/** One mesh's `side` sidecar under callgrind: its lowest window's instructions a request and its functions' (totals of the window). */
async function lowestWindow(serverPort: number, tmp: string, side: Side, on: boolean, hey: string, targets: ReadonlySet<string>): Promise<{ perRequest: number; functions: Map<string, number>; callers: Map<string, Map<string, number>> }> {
  const dir = path.join(tmp, on ? 'on' : 'off');
  const out = path.join(dir, 'callgrind.weft');
  const p = await startPath(serverPort, dir, on, { side, command: [...callgrindCommand(out), '--dump-instr=yes'], env: { NODE_OPTIONS: '--perf-basic-prof' } });
  // Node writes its perf map to /tmp whatever TMPDIR says.
  const mapFile = `/tmp/perf-${p.procs[side].proc.pid!}.map`;
  try {
    process.stderr.write(`[functions] the ${side}-side sidecar under callgrind, telemetry ${on ? 'on' : 'off'}\n`);
    const windows = await count(p.procs[side], out, hey, p.url, SERVICE);
    const files = dumps(out).sort((a, b) => Number(a.split('.').pop()) - Number(b.split('.').pop()));
    const i = windows.indexOf(Math.min(...windows));
    process.stderr.write(`[functions] windows ${windows.map((w) => `${(w / 1000).toFixed(1)}k`).join(', ')}; the lowest read\n`);
    const map = new PerfMap(fs.readFileSync(mapFile, 'utf8'));
    return { perRequest: windows[i]!, functions: functionsOf(files[i]!, map), callers: targets.size ? callersOf(files[i]!, map, targets) : new Map() };
  } finally {
    await p.mesh.stop();
    fs.rmSync(mapFile, { force: true });
  }
}

async function main(): Promise<void> {
  const side = (process.argv[2] ?? 'server') as Side;
  if (side !== 'server' && side !== 'client') throw new Error('usage: npm run bench:functions -- [server|client] [rows]');
  const rows = Number(process.argv[3] ?? 40);
  // Functions whose callers to list (callgrind's names, comma-separated): where a builtin's cost comes from.
  const targets = new Set((process.env.WEFT_FUNCTIONS_CALLERS ?? '').split(',').filter(Boolean));
  const tools = ensureTools(['hey', 'valgrind']);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-functions-'));
  const server = await startServer('h1');
  let off;
  let on;
  try {
    off = await lowestWindow(server.port, tmp, side, false, tools.hey, targets);
    on = await lowestWindow(server.port, tmp, side, true, tools.hey, targets);
  } finally {
    await stop(server.proc);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const k = (n: number) => `${(n / REQUESTS / 1000).toFixed(2)}k`;
  console.log(`The ${side}-side sidecar, instructions a request in its lowest window: telemetry off ${(off.perRequest / 1000).toFixed(1)}k, on ${(on.perRequest / 1000).toFixed(1)}k`);
  console.log('| on - off | off | on | function |\n|---|---|---|---|');
  const names = [...new Set([...off.functions.keys(), ...on.functions.keys()])];
  const delta = (n: string) => (on.functions.get(n) ?? 0) - (off.functions.get(n) ?? 0);
  const row = (d: number, a: number, b: number, n: string) => console.log(`| ${d >= 0 ? '+' : ''}${k(d)} | ${k(a)} | ${k(b)} | ${n.slice(0, 140).replaceAll('|', '\\|')} |`);
  for (const n of names.sort((a, b) => delta(b) - delta(a)).slice(0, rows)) row(delta(n), off.functions.get(n) ?? 0, on.functions.get(n) ?? 0, n);
  for (const t of targets) {
    const a = off.callers.get(t) ?? new Map<string, number>();
    const b = on.callers.get(t) ?? new Map<string, number>();
    const d = (n: string) => (b.get(n) ?? 0) - (a.get(n) ?? 0);
    console.log(`\nThe callers of ${t} (its calls' inclusive instructions a request):\n| on - off | off | on | caller |\n|---|---|---|---|`);
    for (const n of [...new Set([...a.keys(), ...b.keys()])].sort((x, y) => Math.abs(d(y)) - Math.abs(d(x))).slice(0, 12)) row(d(n), a.get(n) ?? 0, b.get(n) ?? 0, n);
  }
}

if (import.meta.main) await main();
