// Route table size (`--only routes`): what a big route table costs a request in the client
// sidecar, against a table of one VirtualService, in the same run.
//
// One `weft control`, a server sidecar for bench-server (in front of bench/server.ts) and a client
// sidecar, as in the h1 phase. Two tables, measured in turn, A B A B ..., so that the machine's
// drift hits both alike:
//   A  one VirtualService, for bench-server (a prefix match: the route every request takes);
//   B  the same, plus VIRTUAL_SERVICES - 1 VirtualServices for other hosts, svc-1 ... svc-999,
//      each with header and prefix matches and weighted splits over the subsets of a
//      DestinationRule; no workload serves those hosts (Weft routes VirtualService-only hosts),
//      so the client sidecar holds their virtual hosts, routes and subset clusters.
// From A to B the 999 are applied through the admin API in one request; from B back to A they are
// applied again with `gateways: [bench-parked]`, which takes them out of every sidecar's config
// (they no longer apply to the mesh) in one request, where deleting them would take 999. The bench
// checks that the client sidecar then holds exactly the table it had in A (virtual hosts, routes,
// clusters). After each switch it waits until every sidecar has ACKed the new config revision
// (GET /api/v1/proxies); the time from the apply to the client sidecar's ACK is reported.
//
// Each window: WARMUP_S of wrk paced at the h1 phase's fixed rate (RATE over CONNS connections,
// bench/pace.lua), then FIXED_S measured, with the client sidecar's CPU and RssAnon sampled
// (bench/proc.ts watch). Before the first, FIXED_S of the same load with table A and FIXED_S with
// table B warm the fresh sidecars up. A and B are each the medians of their WINDOWS windows
// (bench/measure.ts combine); the verdict compares B's p99 with A's.
import path from 'node:path';
import { type LoadResult, wrkPaced } from './load.ts';
import { CONNS, FIXED_S, RATE, WARMUP_S, type Watch, combine, per1k } from './measure.ts';
import { Mesh, type Named, type Sidecar, applyYaml, checkOk, getJson, istioYaml, startServer, versionSubsets, waitForRevision } from './mesh.ts';
import { BenchError, stop, watch } from './proc.ts';

/** The VirtualServices of table B, bench-server's included. */
export const VIRTUAL_SERVICES = 1000;
/** Measured windows of each table: p99 moves by up to 2x from one 10 s window to the next here. */
export const WINDOWS = 5;
const SERVICE = 'bench-server';
const CLIENT = 'bench-client';
const NS = 'default';
/** The gateway the other VirtualServices are parked on for table A: they then apply to no sidecar. */
const PARKED = 'bench-parked';

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

/** What the client sidecar holds: its outbound route config's size, and its clusters. */
export interface RouteTable {
  virtualHosts: number;
  routes: number;
  clusters: number;
}

export interface RoutesCase {
  table: RouteTable;
  /** Medians over the case's windows (combine). */
  result: LoadResult;
  /** The client sidecar's CPU per request (ms), the median over the windows. */
  cpuPer1k: number;
  otherCores: number;
}

export interface RoutesResult {
  virtualServices: number;
  a: RoutesCase;
  b: RoutesCase;
  /**
   * RssAnon peaks in the warm-up: with table A, before the sidecar had ever held table B, and with
   * table B, applied for the first time. (Back on table A, the sidecar keeps most of what it grew.)
   */
  warmupAnonMB: { a: number; b: number };
  /** Every window in the order measured. */
  windows: { table: 'A' | 'B'; p50: number; p99: number; rps: number; cpuPer1k: number; peakAnonMB: number; otherCores: number }[];
  /** Each switch: the apply request, and from its answer to the client sidecar's ACK of the revision (ms). */
  toB: { applyMs: number; ackMs: number }[];
  toA: { applyMs: number; ackMs: number }[];
  /** The YAML of the first switch to B (the VirtualServices and their DestinationRules), bytes. */
  applyBytes: number;
}

/** bench-server's VirtualService, in both tables: one route, a prefix match. */
function benchServerRoute(): string {
  return istioYaml(
    'VirtualService',
    { name: SERVICE, namespace: NS },
    `  hosts: [${SERVICE}]
  http:
  - match:
    - uri: {prefix: /}
    route:
    - destination: {host: ${SERVICE}}
`,
  );
}

/**
 * The VirtualService of svc-i: a canary by header, an API prefix (or a beta group's header)
 * split 80/20, and the rest split 90/10 with retries; parked on PARKED when `parked`.
 */
function otherRoute(s: Named, parked: boolean): string {
  return istioYaml(
    'VirtualService',
    s,
    `  hosts: [${s.name}]
${parked ? `  gateways: [${PARKED}]\n` : ''}  http:
  - name: canary
    match:
    - headers: {x-canary: {exact: always}}
    route:
    - destination: {host: ${s.name}, subset: v2}
  - name: api
    match:
    - uri: {prefix: /api/v2/}
    - uri: {prefix: /api/}
      headers: {x-user-group: {prefix: beta}}
    route:
    - destination: {host: ${s.name}, subset: v1}
      weight: 80
    - destination: {host: ${s.name}, subset: v2}
      weight: 20
    timeout: 5s
  - name: default
    route:
    - destination: {host: ${s.name}, subset: v1}
      weight: 90
    - destination: {host: ${s.name}, subset: v2}
      weight: 10
    retries: {attempts: 3, perTryTimeout: 2s}
`,
  );
}

const others = Array.from({ length: VIRTUAL_SERVICES - 1 }, (_, i) => ({ name: `svc-${i + 1}`, namespace: NS }));

async function routeTable(sc: Sidecar): Promise<RouteTable> {
  const dump = await getJson(`${sc.admin}/config_dump`);
  const vhs: any[] = dump.routes?.find((r: any) => r.name === 'outbound')?.virtual_hosts ?? [];
  return { virtualHosts: vhs.length, routes: vhs.reduce((a, vh) => a + (vh.routes?.length ?? 0), 0), clusters: dump.clusters?.length ?? 0 };
}

const describeTable = (t: RouteTable) => `${t.virtualHosts} virtual hosts, ${t.routes} routes, ${t.clusters} clusters`;

export async function runRoutes(wrk: string, tmp: string): Promise<RoutesResult> {
  const app = await startServer('h1');
  const mesh = await Mesh.start(path.join(tmp, 'control-routes'));
  try {
    await mesh.warmCompileCache();
    const first = await applyYaml(mesh.admin, benchServerRoute());
    await mesh.serverSidecar('weft sidecar (server side)', 'bench-server', SERVICE, app.port);
    const client = await mesh.clientSidecar('weft sidecar (client side)', CLIENT, [SERVICE]);
    await waitForRevision(mesh.admin, first, CLIENT);
    const url = `http://${client.outbound}/`;
    await checkOk(url, SERVICE, 'the Weft path (bench-client)');
    const tableA = await routeTable(client);
    log(`routes: table A: ${describeTable(tableA)}`);

    const watched = [{ label: client.proc.label, pid: client.proc.proc.pid! }];
    const runs: Record<'A' | 'B', Watch[]> = { A: [], B: [] };
    const windows: RoutesResult['windows'] = [];
    const switches: Record<'A' | 'B', RoutesResult['toB']> = { A: [], B: [] };
    let tableB: RouteTable | undefined;
    let applyBytes = 0;
    const load = (label: string, seconds: number) => wrkPaced(wrk, label, url, { duration: `${seconds}s`, conns: CONNS, rate: RATE, host: SERVICE });

    /** Applies the other VirtualServices (table B) or parks them (table A); checks what the client sidecar then holds. */
    const switchTo = async (t: 'A' | 'B') => {
      // The first switch to B also brings the DestinationRules, which stay.
      const yaml = [...others.map((s) => otherRoute(s, t === 'A')), ...(applyBytes ? [] : others.map(versionSubsets))].join('---\n');
      applyBytes ||= Buffer.byteLength(yaml);
      const t0 = performance.now();
      const rev = await applyYaml(mesh.admin, yaml);
      const t1 = performance.now();
      const acked = await waitForRevision(mesh.admin, rev, CLIENT);
      switches[t].push({ applyMs: t1 - t0, ackMs: acked - t1 });
      const held = await routeTable(client);
      log(`routes: table ${t} (${describeTable(held)}): apply ${(t1 - t0).toFixed(0)} ms, then the client sidecar's ACK ${(acked - t1).toFixed(0)} ms later`);
      if (t === 'A' && describeTable(held) !== describeTable(tableA)) {
        throw new BenchError(`routes: with the other VirtualServices parked, the client sidecar holds ${describeTable(held)}, not table A's ${describeTable(tableA)}`);
      }
      if (t === 'B' && held.virtualHosts < VIRTUAL_SERVICES) throw new BenchError(`routes: table B has ${held.virtualHosts} virtual hosts, expected at least ${VIRTUAL_SERVICES}`);
      if (t === 'B') tableB = held;
    };

    // Warm-up, not measured: table A, then table B, so that the windows find both sidecars' code
    // compiled and heap grown for both tables (before this, the first two or three windows had 2x
    // the p99). The client sidecar's RssAnon is kept: with table A it has not held B yet, and
    // with B it has held it once.
    const usage = (w: Watch) => w.usage.get(client.proc.label)!;
    const warmA = await watch(watched, () => load('warm-up, table A', FIXED_S));
    await switchTo('B');
    const warmB = await watch(watched, () => load('warm-up, table B', FIXED_S));
    for (let i = 0; i < WINDOWS; i++) {
      for (const t of ['A', 'B'] as const) {
        await switchTo(t);
        await load(`table ${t} warm-up`, WARMUP_S);
        const w = await watch(watched, () => load(`table ${t}`, FIXED_S));
        runs[t].push(w);
        const [p50, p99] = [w.result.latencyMs['50'], w.result.latencyMs['99']];
        windows.push({ table: t, p50, p99, rps: w.result.rps, cpuPer1k: per1k(usage(w), w.result), peakAnonMB: usage(w).peakAnonMB, otherCores: w.otherCores });
        log(`routes: table ${t}, window ${i + 1}: p50 ${p50.toFixed(3)} ms, p99 ${p99.toFixed(3)} ms, ${w.result.rps.toFixed(0)} rps, other work ${w.otherCores.toFixed(2)} cores`);
      }
    }

    const summarize = (t: 'A' | 'B', table: RouteTable): RoutesCase => {
      const c = combine(watched, runs[t]);
      return { table, result: c.result, cpuPer1k: per1k(usage(c), c.result), otherCores: c.otherCores };
    };
    const a = summarize('A', tableA);
    const b = summarize('B', tableB!);
    log(`routes: p99 A ${a.result.latencyMs['99'].toFixed(3)} ms, B ${b.result.latencyMs['99'].toFixed(3)} ms (medians of ${WINDOWS}): B/A ${(b.result.latencyMs['99'] / a.result.latencyMs['99']).toFixed(2)}x`);
    return {
      virtualServices: VIRTUAL_SERVICES,
      a,
      b,
      warmupAnonMB: { a: usage(warmA).peakAnonMB, b: usage(warmB).peakAnonMB },
      windows,
      toB: switches.B,
      toA: switches.A,
      applyBytes,
    };
  } finally {
    await mesh.stop();
    await stop(app.proc);
  }
}
