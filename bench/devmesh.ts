// For measuring by hand (`node bench/devmesh.ts`): starts the bench's HTTP/1.1 Weft path (bench
// server, weft control, a server-side and a client-side sidecar, as the h1 phase does) and keeps it
// up until SIGINT or SIGTERM. Prints one JSON line: the client sidecar's URL (send Host:
// bench-server), and the pids, for /proc/PID/stat, perf or a profiler.
//   DEV_FLAGS="..."     node flags for the client sidecar (--cpu-prof, --perf-basic-prof, ...)
//   DEV_FLAGS2="..."    a second client sidecar with these flags (url2, client2), to compare two
//                       settings on the same mesh, load alternating between them
//   DEV_VALGRIND=FILE   a third client sidecar under callgrind, counting off (vg, vgUrl); count a
//                       window with callgrind_control -z / -i on / -i off / -d PID
//   DEV_VGFLAGS="..."   node flags for that one
//   DEV_MTLS=1          mutual TLS between the sidecars, as the mesh comes (else plain text, as the h1 phase)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Mesh, checkOk, startServer } from './mesh.ts';
import { stop } from './proc.ts';
import { callgrindCommand } from './instructions.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-dev-'));
const server = await startServer('h1');
const mesh = await Mesh.start(path.join(tmp, 'control-data'), { mtls: process.env.DEV_MTLS === '1' });
await mesh.warmCompileCache();
const ss = await mesh.serverSidecar('server side', 'bench-server', 'bench-server', server.port);
const flags = (process.env.DEV_FLAGS ?? '').split(' ').filter(Boolean);
const cs = await mesh.clientSidecar('client side', 'bench-client', ['bench-server'], flags);
await checkOk(`http://${cs.outbound}/`, 'bench-server', 'path');
let second: { url: string; pid: number } | undefined;
if (process.env.DEV_FLAGS2 !== undefined) {
  const c2 = await mesh.clientSidecar('client side 2', 'bench-client2', ['bench-server'], process.env.DEV_FLAGS2.split(' ').filter(Boolean));
  await checkOk(`http://${c2.outbound}/`, 'bench-server', 'path 2');
  second = { url: `http://${c2.outbound}/`, pid: c2.proc.proc.pid! };
}
let vg: number | undefined;
let vgUrl: string | undefined;
if (process.env.DEV_VALGRIND) {
  // A third client sidecar under callgrind (collection off until callgrind_control -i on).
  const flags = (process.env.DEV_VGFLAGS ?? '').split(' ').filter(Boolean);
  const v = await mesh.clientSidecar('valgrind client', 'bench-client-vg', ['bench-server'], flags, { wrap: callgrindCommand(process.env.DEV_VALGRIND), readyMs: 300_000 });
  vg = v.proc.proc.pid;
  vgUrl = `http://${v.outbound}/`;
}
console.log(JSON.stringify({ url: `http://${cs.outbound}/`, client: cs.proc.proc.pid, server: ss.proc.proc.pid, app: server.proc.proc.pid, appPort: server.port, vg, vgUrl, url2: second?.url, client2: second?.pid }));
const done = async () => {
  await mesh.stop();
  await stop(server.proc);
  process.exit(0);
};
process.on('SIGINT', done);
process.on('SIGTERM', done);
setInterval(() => {}, 1 << 30);
