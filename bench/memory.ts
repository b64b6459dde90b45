// Ten sidecars at once (`--only memory`): what each costs in memory when several run on one
// machine, as `weft up` runs them. Each Node process maps the same node binary; VmRSS counts
// those shared pages in full in every process, PSS (proportional set size) splits each shared page
// between the processes that map it, and RssAnon is what each one has to itself.
//
// Ten sidecars, each serving a service mem-i whose app is a fresh bench h1 server (the Node floor),
// in a ring: a little traffic goes into sidecar i's outbound listener, addressed to mem-(i+1), so
// that every sidecar has carried requests both ways. Then, after a second of idle, Rss, Pss and
// RssAnon of each sidecar and of the bench server are read from /proc.
import fs from 'node:fs';
import path from 'node:path';
import { hey } from './load.ts';
import { Mesh, startServer, waitForEndpoints } from './mesh.ts';
import { memMB, sleep, smapsMB, stop } from './proc.ts';
import { type MemoryResult, type MemoryRow, NODE_FLOOR_LABEL } from './report.ts';

export const SIDECARS = 10;
const TRAFFIC = { duration: '2s', conns: 2, rate: 100 }; // per sidecar: 200 requests over 2 s

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

function row(label: string, pid: number): MemoryRow {
  const s = smapsMB(pid);
  const m = memMB(pid);
  return { label, rssMB: s.rss, anonMB: m.anon, pssMB: s.pss, pssAnonMB: s.pssAnon, pssFileMB: s.pssFile };
}

/** How many processes run the same node binary as this one (they share its file-backed pages). */
function sameBinary(): number {
  let n = 0;
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/exe`) === process.execPath) n++;
    } catch {} // gone, or not ours to read
  }
  return n;
}

export async function runMemory(heyBin: string, tmp: string): Promise<MemoryResult> {
  const app = await startServer('h1');
  const server = { port: app.port, pid: app.proc.proc.pid!, label: NODE_FLOOR_LABEL };
  const mesh = await Mesh.start(path.join(tmp, 'control-memory'));
  try {
    await mesh.warmCompileCache();
    log(`memory: starting ${SIDECARS} sidecars`);
    const services = Array.from({ length: SIDECARS }, (_, i) => `mem-${i}`);
    const sidecars = await Promise.all(
      services.map(async (svc, i) => ({ ...(await mesh.serverSidecar(`weft sidecar ${svc}`, svc, svc, server.port)), svc, next: services[(i + 1) % SIDECARS] })),
    );
    for (const sc of sidecars) await waitForEndpoints(sc, [sc.next]);
    log(`memory: ${SIDECARS} x ${TRAFFIC.rate} rps for ${TRAFFIC.duration}, each sidecar's outbound to the next one's service`);
    const results = await Promise.all(sidecars.map((sc) => hey(heyBin, `memory ${sc.svc} -> ${sc.next}`, `http://${sc.outbound}/`, { ...TRAFFIC, host: sc.next })));
    await sleep(1000);
    return {
      nodeProcs: sameBinary(),
      n: SIDECARS,
      requests: results.reduce((a, r) => a + r.ok, 0),
      traffic: `${TRAFFIC.rate} rps for ${TRAFFIC.duration} into each sidecar (hey -c ${TRAFFIC.conns})`,
      sidecars: sidecars.map((sc) => row(sc.proc.label, sc.proc.proc.pid!)),
      floor: row(server.label, server.pid),
      controlPlane: row('weft control', mesh.procs[0].proc.pid!),
    };
  } finally {
    await mesh.stop();
    await stop(app.proc);
  }
}
