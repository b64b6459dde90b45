// Control plane scale: one real `weft control` process and N simulated proxies, each a raw ADS
// client on its own gRPC connection over loopback (as in test/control/ads.test.ts). Measured at
// N = 1 (the baseline, in the same run), at a big N (default 1,000) with every proxy in namespace
// `default` (one route scope), and at the biggest N again with the same mesh spread over 10
// namespaces (ten route scopes: the control plane translates and encodes routes once per scope):
//   - connect: from all N opening their streams at once to all N having ACKed their full
//     initial config (every service's endpoints, every virtual host);
//   - config change: from `POST /api/v1/apply` of a changed VirtualService (a weight change)
//     returning, to each proxy receiving (and ACKing) the RDS carrying the new weight; made
//     CONFIG_CHANGES times (the weight back and forth), the median reported;
//   - endpoint change: from one extra proxy of a service opening its stream, to each of the N
//     receiving (and ACKing) EDS with the new endpoint;
//   - the control plane's RSS (VmRSS) and CPU (utime + stime) for each phase.
//
// Usage: node bench/scale.ts [--proxies N[,N2...]] [--namespaces M] [--workers W] [--write] [--cpu-prof]
//   --namespaces  the namespaces of the scoped run at the biggest N (default 10; 1: no such run)
//   --write     also put the section into docs/performance.md (between its scale markers)
//   --cpu-prof  run the control plane of the biggest N under node --cpu-prof and print where its
//               CPU time went (stderr); the figures of that run are slower for it
// `npm run bench` (bench/run.ts) calls runScale() and renders the section with bench/report.ts.
//
// The simulated proxies run in worker threads of this process, never in the control plane's.
// Any NACK, stream error, proxy that never gets its config, or a proxy count in the admin API
// other than N fails the run (exit 1). Every process and worker started here is stopped again.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import { ADS_METHOD, type DiscoveryRequest, type DiscoveryResponse, type ResourceType, SHORT_NAME, TYPE, decode, decodeResponse, encodeRequest } from '../src/xds/protos.ts';
import { META } from '../src/xds/node-meta.ts';
import { WorkloadCertificates } from '../src/proxy/identity/workload-cert.ts';
import { type Named as Svc, adminCall, applyYaml, istioYaml, rememberAdminToken, versionSubsets } from './mesh.ts';
import { analyzeProfile } from './profile.ts';
import { BenchError, type Proc, cpuSeconds, launch, rssMB, running, sleep, stop, waitForLine } from './proc.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const CLI = path.join(ROOT, 'bin', 'weft.mjs');

// The simulated mesh.
export const SCALE_MESH = {
  services: 50, // each in 2 versions (labels app, version); serviceAt() names them
  versions: 2,
  routed: 10, // the first 10 have a VirtualService (90/10 split) and a DestinationRule (subsets v1, v2)
  clientEvery: 10, // every 10th proxy is a pure client (no service); the others serve one
  namespaces: 10, // the scoped run: the same services and proxies spread over ns-0 .. ns-9
};
export const DEFAULT_BIG_N = 1000;

/** Namespace j of a mesh over `namespaces`: `default` when there is one, else ns-0 .. ns-(M-1). */
const namespaceAt = (j: number, namespaces: number) => (namespaces === 1 ? 'default' : `ns-${j % namespaces}`);

/**
 * Service k (0 .. services-1): svc-k in `default` when there is one namespace; else
 * svc-(k div M) in namespace k mod M, so that each namespace has its own svc-0, svc-1, ... and the
 * first `routed` services (those with a VirtualService) are svc-0 of each namespace.
 */
function serviceAt(k: number, namespaces: number): Svc {
  return { name: `svc-${Math.floor(k / namespaces)}`, namespace: namespaceAt(k, namespaces) };
}

// The config change: service 0's VirtualService goes from 90/10 to 50/50, back to 90/10, ...
// CONFIG_CHANGES times (the median push is reported); the extra proxy joins service 0.
const CONFIG_CHANGES = 5;
const changedWeight = (i: number) => (i % 2 === 0 ? 50 : 90);
// Bounds: the whole scale phase should stay well under a minute. Connecting 1,000 proxies over
// mutual TLS (each simulated proxy makes its own handshake in a worker thread) took up to 69 s while
// pushes during the ramp queued responses on every connection; with one unanswered response per
// type and stream, and pushes paced in a storm (docs/config-lifecycle.md), it took 5-14 s on this
// 2-core machine shared with other processes (load 5), 20-34 s at load 15.
const CONNECT_TIMEOUT_MS = 40_000;
const CHANGE_TIMEOUT_MS = 15_000;

const now = () => performance.timeOrigin + performance.now(); // epoch ms, comparable across threads

// ---------------------------------------------------------------------------------------------
// Messages between the orchestrator (main thread) and the workers

interface ProxySpec {
  id: string;
  namespace: string;
  service?: string;
  version?: string;
  inboundPort?: number;
  appPort?: number;
  outboundPort: number;
}

/** What a proxy must hold to count as "has its full config". */
interface Expect {
  serving: number; // endpoints, summed over the default (subset-less) outbound clusters
  vhosts: number; // virtual hosts in the "outbound" route config
}

type ToWorker =
  | { cmd: 'connect'; xds: string; creds: SimCreds; proxies: ProxySpec[]; expect: Expect }
  | { cmd: 'arm-rds'; vhost: string; weight: number }
  | { cmd: 'arm-eds'; serving: number }
  | { cmd: 'join'; proxy: ProxySpec }
  | { cmd: 'status' }
  | { cmd: 'close' };

type FromWorker =
  | { ev: 'opened'; at: number }
  | { ev: 'done'; phase: Phase; times: number[]; first: number[]; routeConfigs: string[] }
  | { ev: 'armed' }
  | { ev: 'joined'; at: number }
  | { ev: 'status'; lines: string[] }
  | { ev: 'fail'; message: string }
  | { ev: 'closed' };

type Phase = 'connect' | 'rds' | 'eds';

// ---------------------------------------------------------------------------------------------
// Worker: the simulated proxies

interface TypeState {
  names: string[];
  version: string;
  nonce: string;
  acked: boolean;
}

// The control plane sends the same bytes to many proxies: decode each distinct resource once per
// worker, so that the simulated proxies do not compete with the control plane for the CPUs more
// than they must (the bytes are still hashed, and every response is still decoded as a message).
const decodedCache = new Map<string, Record<string, any>>();
const digestOf = (bytes: Uint8Array) => crypto.createHash('sha1').update(bytes).digest('base64');
function decodeCached(type: string, bytes: Uint8Array): Record<string, any> {
  const key = `${type}\0${digestOf(bytes)}`;
  let d = decodedCache.get(key);
  if (!d) {
    if (decodedCache.size > 5000) decodedCache.clear();
    d = decode(type, bytes);
    decodedCache.set(key, d);
  }
  return d;
}

class SimProxy {
  readonly spec: ProxySpec;
  readonly client: grpc.Client;
  readonly call: grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  private readonly state = new Map<string, TypeState>();
  private sentNode = false;
  edsNames: string[] = [];
  claCount = 0;
  defaultEndpoints = 0;
  vhosts = 0;
  routeDoc: Record<string, any> | undefined;
  routeDigest = ''; // of the route config it holds: proxies of one route scope hold the same bytes
  readonly times = new Map<Phase, number>();
  firstAt: number | undefined; // when it first held (and had ACKed) all four types
  closing = false;

  constructor(spec: ProxySpec, xds: string, creds: SimCreds, hooks: { onChange: (p: SimProxy) => void; onFail: (m: string) => void }) {
    this.spec = spec;
    // Each proxy on its own HTTP/2 connection, as separate sidecars would be, over mutual TLS with
    // a workload certificate of its namespace (the control plane's is checked by its chain).
    const own = creds.byNamespace[spec.namespace];
    if (!own) throw new ScaleError(`no certificate for namespace ${spec.namespace}`);
    const tls = grpc.credentials.createSsl(Buffer.from(creds.ca), Buffer.from(own.key), Buffer.from(own.cert), { checkServerIdentity: () => undefined });
    this.client = new grpc.Client(xds, tls, { 'grpc.use_local_subchannel_pool': 1 });
    this.call = this.client.makeBidiStreamRequest(ADS_METHOD, encodeRequest, decodeResponse);
    this.call.on('data', (r: DiscoveryResponse) => {
      try {
        this.onResponse(r);
        hooks.onChange(this);
      } catch (e) {
        hooks.onFail(`proxy ${spec.id}: ${(e as Error).message}`);
      }
    });
    this.call.on('error', (e: grpc.ServiceError) => {
      if (!this.closing) hooks.onFail(`proxy ${spec.id}: stream failed: ${e.details || e.message}`);
    });
    this.call.on('end', () => {
      if (!this.closing) hooks.onFail(`proxy ${spec.id}: the control plane ended the stream`);
    });
    for (const t of [TYPE.cluster, TYPE.listener]) {
      this.state.set(t, { names: [], version: '', nonce: '', acked: false });
      this.send({ type_url: t, resource_names: [] });
    }
  }

  private send(req: DiscoveryRequest): void {
    if (!this.sentNode) {
      const s = this.spec;
      const metadata: Record<string, unknown> = {
        [META.workload]: s.id,
        [META.namespace]: s.namespace,
        [META.labels]: s.service ? { app: s.service, version: s.version } : { app: `client-${s.id}` },
        [META.outboundPort]: s.outboundPort,
      };
      if (s.service) Object.assign(metadata, { [META.service]: s.service, [META.inboundPort]: s.inboundPort, [META.appPort]: s.appPort });
      req.node = { id: s.id, metadata };
      this.sentNode = true;
    }
    this.call.write(req);
  }

  private onResponse(r: DiscoveryResponse): void {
    const type = r.type_url as ResourceType;
    let s = this.state.get(type);
    if (!s) throw new Error(`got ${r.type_url}, which it never asked for`);
    s.nonce = r.nonce;
    let decoded: Record<string, any>[];
    try {
      decoded = r.resources.map((x) => {
        if (x.type_url !== type) throw new Error(`resource of type ${x.type_url} in a ${SHORT_NAME[type]} response`);
        return decodeCached(type, x.value);
      });
    } catch (e) {
      const message = `could not decode ${SHORT_NAME[type]} version ${r.version_info}: ${(e as Error).message}`;
      this.send({ type_url: type, resource_names: s.names, version_info: s.version, response_nonce: r.nonce, error_detail: { code: 3, message } });
      throw new Error(`NACKed: ${message}`);
    }
    s.version = r.version_info;
    s.acked = true;
    // ACK: the version it now holds and the nonce of the response.
    this.send({ type_url: type, resource_names: s.names, version_info: s.version, response_nonce: r.nonce });
    if (type === TYPE.cluster) {
      this.edsNames = decoded.filter((c) => c.type === 'EDS').map((c) => c.eds_cluster_config?.service_name || c.name);
      this.resubscribe(TYPE.endpoint, this.edsNames);
    } else if (type === TYPE.listener) {
      const rds = decoded.map((l) => l.filter_chains?.[0]?.filters?.[0]?.typed_config?.rds?.route_config_name).filter((n): n is string => !!n);
      this.resubscribe(TYPE.route, rds);
    } else if (type === TYPE.endpoint) {
      this.claCount = decoded.length;
      let n = 0;
      for (const cla of decoded) {
        if (!/^outbound\|\d+\|\|/.test(cla.cluster_name)) continue; // subset clusters repeat the same endpoints
        for (const l of cla.endpoints ?? []) n += l.lb_endpoints?.length ?? 0;
      }
      this.defaultEndpoints = n;
    } else if (type === TYPE.route) {
      this.routeDoc = decoded[0];
      this.routeDigest = r.resources[0] ? digestOf(r.resources[0].value) : '';
      this.vhosts = decoded[0]?.virtual_hosts?.length ?? 0;
    }
  }

  private resubscribe(type: ResourceType, names: string[]): void {
    const sorted = [...new Set(names)].sort();
    let s = this.state.get(type);
    if (s && s.names.length === sorted.length && s.names.every((n, i) => n === sorted[i])) return;
    if (!s) {
      s = { names: [], version: '', nonce: '', acked: false };
      this.state.set(type, s);
    }
    s.names = sorted;
    this.send({ type_url: type, resource_names: sorted, version_info: s.version || undefined, response_nonce: s.nonce || undefined });
  }

  allAcked(): boolean {
    return [TYPE.cluster, TYPE.listener, TYPE.endpoint, TYPE.route].every((t) => this.state.get(t)?.acked);
  }

  weightOf(vhost: string): number | undefined {
    const vh = this.routeDoc?.virtual_hosts?.find((v: any) => v.name === vhost);
    return vh?.routes?.[0]?.route?.weighted_clusters?.clusters?.[0]?.weight?.value;
  }

  describe(): string {
    const t = [TYPE.cluster, TYPE.endpoint, TYPE.listener, TYPE.route]
      .map((x) => {
        const s = this.state.get(x);
        return `${SHORT_NAME[x]} ${s ? (s.acked ? `v${s.version}` : 'waiting') : 'not subscribed'}`;
      })
      .join(', ');
    return `${this.spec.id}: ${t}; ${this.claCount}/${this.edsNames.length} load assignments, ${this.defaultEndpoints} endpoints, ${this.vhosts} virtual hosts`;
  }

  close(): void {
    this.closing = true;
    this.call.end();
    this.client.close();
  }
}

function workerMain(): void {
  const port = parentPort!;
  let xdsAddress = '';
  let creds: SimCreds | undefined;
  const post = (m: FromWorker) => port.postMessage(m);
  let proxies: SimProxy[] = [];
  const extra: SimProxy[] = [];
  let expect: Expect = { serving: 0, vhosts: 0 };
  let phase: Phase = 'connect';
  let armed: { vhost?: string; weight?: number; serving?: number } = {};
  let pending = 0;
  let failed = false;
  const fail = (message: string) => {
    if (failed) return;
    failed = true;
    post({ ev: 'fail', message });
  };
  const reached = (p: SimProxy): boolean => {
    if (!p.allAcked()) return false;
    if (phase === 'connect') return p.defaultEndpoints === expect.serving && p.claCount === p.edsNames.length && p.vhosts === expect.vhosts;
    if (phase === 'rds') return p.weightOf(armed.vhost!) === armed.weight;
    return p.defaultEndpoints === armed.serving;
  };
  const onChange = (p: SimProxy) => {
    if (p.firstAt === undefined && p.allAcked()) p.firstAt = now();
    if (extra.includes(p) || p.times.has(phase) || !reached(p)) return;
    p.times.set(phase, now());
    pending -= 1;
    if (pending === 0) {
      const routeConfigs = [...new Set(proxies.map((x) => x.routeDigest))];
      post({ ev: 'done', phase, times: proxies.map((x) => x.times.get(phase)!), first: proxies.map((x) => x.firstAt!), routeConfigs });
    }
  };
  const startPhase = (ph: Phase) => {
    phase = ph;
    pending = proxies.length;
    for (const p of proxies) p.times.delete(ph); // the config change is made several times
    for (const p of proxies) onChange(p); // already there (cannot be, but then it counts at once)
  };
  port.on('message', (m: ToWorker) => {
    try {
      switch (m.cmd) {
        case 'connect':
          expect = m.expect;
          phase = 'connect';
          pending = m.proxies.length;
          xdsAddress = m.xds;
          creds = m.creds;
          proxies = m.proxies.map((s) => new SimProxy(s, m.xds, m.creds, { onChange, onFail: fail }));
          post({ ev: 'opened', at: now() });
          break;
        case 'arm-rds':
          armed = { vhost: m.vhost, weight: m.weight };
          startPhase('rds');
          post({ ev: 'armed' });
          break;
        case 'arm-eds':
          armed = { serving: m.serving };
          startPhase('eds');
          post({ ev: 'armed' });
          break;
        case 'join': {
          const at = now();
          extra.push(new SimProxy(m.proxy, xdsAddress, creds!, { onChange, onFail: fail }));
          post({ ev: 'joined', at });
          break;
        }
        case 'status': {
          const missing = proxies.filter((p) => !p.times.has(phase));
          post({ ev: 'status', lines: [`${missing.length} of ${proxies.length} not there yet`, ...missing.slice(0, 5).map((p) => p.describe())] });
          break;
        }
        case 'close':
          for (const p of [...proxies, ...extra]) p.close();
          post({ ev: 'closed' });
          setImmediate(() => port.close());
          break;
      }
    } catch (e) {
      fail(`worker: ${(e as Error).stack}`);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Orchestrator: processes, /proc, the admin API

/** The scale bench broke or found a failure (NACK, a proxy without config, a wrong count). */
export class ScaleError extends Error {}

const log = (s: string) => process.stderr.write(`[scale] ${s}\n`);

const stopProc = (p: Proc) => stop(p, 5000);

async function waitReady(p: Proc, timeoutMs: number): Promise<{ admin: string; xds: string; rootCert: string; pid: number }> {
  return JSON.parse((await waitForLine(p, /^WEFT_READY (.*)$/, timeoutMs))[1]);
}

/** The mesh root, and a workload key and certificate per namespace, which the simulated proxies of that namespace share. */
interface SimCreds {
  ca: string;
  byNamespace: Record<string, { key: string; cert: string }>;
}

/**
 * Bought as a sidecar buys its own: a join token from the admin API, spent on the certificate API.
 * One certificate per namespace is enough here: a proxy's config depends on its namespace and
 * labels, not on its workload name (which the certificate's CN sets, the same for all of them).
 */
async function simCredentials(ready: { admin: string; xds: string; rootCert: string }, namespaces: string[]): Promise<SimCreds> {
  const ca = fs.readFileSync(ready.rootCert, 'utf8');
  const byNamespace: SimCreds['byNamespace'] = {};
  for (const ns of namespaces) {
    const { token } = await adminCall(`${ready.admin}/api/v1/tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ workload: `sim-${ns}`, namespace: ns, serviceAccount: 'default' }) });
    const certs = new WorkloadCertificates({ server: ready.xds, rootPem: ca, joinToken: token });
    const c = await certs.start(10_000);
    certs.stop();
    byNamespace[ns] = { key: c.keyPem, cert: c.certPem };
  }
  return { ca, byNamespace };
}

/** A 90/10 (or other) split of service `s` over its subsets v1 and v2. */
function virtualService(s: Svc, v1Weight: number): string {
  return istioYaml(
    'VirtualService',
    s,
    `  hosts: [${s.name}]
  http:
  - route:
    - destination: {host: ${s.name}, subset: v1}
      weight: ${v1Weight}
    - destination: {host: ${s.name}, subset: v2}
      weight: ${100 - v1Weight}
`,
  );
}

const fqdn = (s: Svc) => `${s.name}.${s.namespace}.svc.cluster.local`;

/**
 * Proxy i: every clientEvery-th a pure client (in namespace i mod M), the others spread over the
 * services and versions, each in its service's namespace.
 */
function plan(n: number, namespaces: number): ProxySpec[] {
  const out: ProxySpec[] = [];
  let served = 0;
  for (let i = 0; i < n; i++) {
    const spec: ProxySpec = { id: `sim-${i}`, namespace: namespaceAt(i, namespaces), outboundPort: 15001 };
    if (i % SCALE_MESH.clientEvery !== SCALE_MESH.clientEvery - 1) {
      const svc = serviceAt(served % SCALE_MESH.services, namespaces);
      spec.namespace = svc.namespace;
      spec.service = svc.name;
      spec.version = `v${(Math.floor(served / SCALE_MESH.services) % SCALE_MESH.versions) + 1}`;
      spec.inboundPort = 10_000 + i; // fake and unique: nothing dials them
      spec.appPort = 40_000 + (i % 20_000);
      served += 1;
    }
    out.push(spec);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Workers, from the orchestrator's side

class Workers {
  private readonly ws: Worker[];
  private readonly inbox: FromWorker[][];
  private readonly waiters: (() => void)[] = [];
  failure: string | undefined;

  constructor(count: number) {
    this.ws = [];
    this.inbox = [];
    for (let i = 0; i < count; i++) {
      const w = new Worker(new URL(import.meta.url), { workerData: { role: 'weft-scale-worker' } });
      const box: FromWorker[] = [];
      w.on('message', (m: FromWorker) => {
        if (m.ev === 'fail') this.failure ??= m.message;
        else box.push(m);
        this.wake();
      });
      w.on('error', (e) => {
        this.failure ??= `worker ${i} crashed: ${e.stack}`;
        this.wake();
      });
      this.ws.push(w);
      this.inbox.push(box);
    }
  }

  get size(): number {
    return this.ws.length;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  send(i: number, m: ToWorker): void {
    this.ws[i].postMessage(m);
  }

  broadcast(m: ToWorker): void {
    for (const w of this.ws) w.postMessage(m);
  }

  /** The next message of type `ev` from worker i; throws on a failure anywhere, or on timeout. */
  async take<E extends FromWorker['ev']>(i: number, ev: E, timeoutMs: number, what: string): Promise<Extract<FromWorker, { ev: E }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.failure) throw new ScaleError(this.failure);
      const k = this.inbox[i].findIndex((m) => m.ev === ev);
      if (k >= 0) return this.inbox[i].splice(k, 1)[0] as Extract<FromWorker, { ev: E }>;
      const left = deadline - Date.now();
      if (left <= 0) throw new ScaleError(`${what}: not done within ${timeoutMs / 1000}s`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /**
   * All workers' `done` for a phase (when each proxy got there, and how many distinct route
   * configs they hold); on timeout, what the missing proxies hold.
   */
  async phase(ph: Phase, timeoutMs: number, what: string): Promise<{ times: number[]; first: number[]; routeConfigs: number }> {
    const times: number[] = [];
    const first: number[] = [];
    const routeConfigs = new Set<string>();
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < this.ws.length; i++) {
      try {
        const m = await this.take(i, 'done', Math.max(0, deadline - Date.now()), what);
        if (m.phase !== ph) throw new ScaleError(`worker ${i} finished phase ${m.phase}, expected ${ph}`);
        times.push(...m.times);
        first.push(...m.first);
        for (const r of m.routeConfigs) routeConfigs.add(r);
      } catch (e) {
        if (this.failure) throw e;
        const lines: string[] = [];
        for (let j = 0; j < this.ws.length; j++) {
          this.send(j, { cmd: 'status' });
          const st = await this.take(j, 'status', 5000, 'status').catch(() => undefined);
          lines.push(`worker ${j}: ${st ? st.lines.join('\n      ') : 'no answer'}`);
        }
        throw new ScaleError(`${(e as Error).message}; some proxies never got it:\n    ${lines.join('\n    ')}`);
      }
    }
    return { times, first, routeConfigs: routeConfigs.size };
  }

  async close(): Promise<void> {
    this.broadcast({ cmd: 'close' });
    await Promise.all(this.ws.map((_, i) => this.take(i, 'closed', 5000, 'closing the simulated proxies').catch(() => undefined)));
    await Promise.all(this.ws.map((w) => w.terminate()));
  }
}

// ---------------------------------------------------------------------------------------------
// One run: a fresh control plane and N proxies

export interface Spread {
  p50: number;
  p99: number;
  max: number;
}

export interface ScaleRun {
  n: number;
  namespaces: number; // the proxies and services spread over this many (1: all in `default`)
  routeConfigs: number; // distinct route configs the N proxies hold after connecting: one per route scope
  adminProxies: number; // GET /api/v1/proxies count after connect (must be N)
  adminProxiesAfterJoin: number; // ... after the extra proxy joined (must be N + 1)
  serving: number; // proxies that serve a service
  services: number;
  clusters: number; // CDS resources one proxy holds (incl. its inbound cluster)
  connect: { allMs: number; openedMs: number; perProxy: Spread; first: Spread };
  config: { applyMs: number; allMs: number; perProxy: Spread; changesMs: number[] }; // the median of CONFIG_CHANGES changes, and each one's allMs
  endpoint: { allMs: number; perProxy: Spread };
  rss: { idleMB: number; peakMB: number; afterMB: number };
  cpu: { connectS: number; configS: number; endpointS: number };
  loadGenCpuS: number; // this process (orchestrator + workers) over the three phases
}

export interface ScaleResult {
  date: Date;
  mesh: typeof SCALE_MESH;
  workers: number;
  nproc: number;
  runs: ScaleRun[]; // runs[0] is N = 1; then each big N in one namespace; then the scoped run, if any
  durationS: number;
  profile?: string;
}

function spread(xs: number[]): Spread {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
  return { p50: q(50), p99: q(99), max: s[s.length - 1] };
}

function checkAcked(proxies: any[], n: number, when: string): void {
  if (proxies.length !== n) throw new ScaleError(`${when}: GET /api/v1/proxies lists ${proxies.length} proxies, expected ${n}`);
  for (const p of proxies) {
    for (const t of p.types) {
      if (t.nack) throw new ScaleError(`${when}: proxy ${p.id} NACKed ${t.type} version ${t.nack.version}: ${t.nack.reason}`);
    }
    const types = p.types.map((t: any) => t.type).sort().join(',');
    if (types !== 'CDS,EDS,LDS,RDS') throw new ScaleError(`${when}: proxy ${p.id} subscribed to ${types}, expected CDS,EDS,LDS,RDS`);
  }
}

/** Polls the admin API until every proxy ACKed what it was last sent (or fails after timeoutMs). */
async function allAckedInAdmin(adminUrl: string, n: number, when: string, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { proxies } = await adminCall(`${adminUrl}/api/v1/proxies`);
    checkAcked(proxies, n, when);
    const behind = proxies.filter((p: any) => p.types.some((t: any) => t.sent !== t.acked));
    if (behind.length === 0) return proxies.length;
    if (Date.now() > deadline) {
      throw new ScaleError(`${when}: ${behind.length} proxies have not ACKed what they were sent, e.g. ${JSON.stringify(behind[0].types)}`);
    }
    await sleep(200);
  }
}

async function warmUp(xds: string, adminUrl: string, creds: SimCreds): Promise<void> {
  let failure: string | undefined;
  const p = new SimProxy({ id: 'sim-warmup', namespace: 'default', outboundPort: 15001 }, xds, creds, { onChange: () => {}, onFail: (m) => (failure ??= m) });
  try {
    const deadline = Date.now() + 10_000;
    while (!p.allAcked()) {
      if (failure) throw new ScaleError(`warm-up: ${failure}`);
      if (Date.now() > deadline) throw new ScaleError(`warm-up: no full config within 10s: ${p.describe()}`);
      await sleep(20);
    }
  } finally {
    p.close();
  }
  for (const deadline = Date.now() + 10_000; ; await sleep(50)) {
    if ((await adminCall(`${adminUrl}/api/v1/proxies`)).proxies.length === 0) break;
    if (Date.now() > deadline) throw new ScaleError('warm-up: the control plane still lists the warm-up proxy 10s after it left');
  }
  await sleep(500); // the push for its leaving, and the debounce
}

/** One config change: apply sent (a0) and returned (a1), when each proxy had it, the control plane's CPU for it. */
interface Change {
  a0: number;
  a1: number;
  times: number[];
  cpuS: number;
  allMs: number;
}

/** Epoch-ms windows of the phases, and when the control plane exited: to cut its CPU profile. */
interface Windows {
  phases: [string, number, number][];
  spawnAt: number; // the profile starts as the process starts (the file is written as it exits, which takes a while)
}

/** "N=1000", or "N=1000 in 10 namespaces": how the log and the errors name a run. */
const runName = (n: number, namespaces: number) => `N=${n}${namespaces > 1 ? ` in ${namespaces} namespaces` : ''}`;

async function runAt(n: number, namespaces: number, workers: Workers, tmp: string, cpuProf: string | undefined, windows?: Windows): Promise<ScaleRun> {
  const dataDir = fs.mkdtempSync(path.join(tmp, `control-${n}-${namespaces}-`));
  const nodeFlags = cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${cpuProf}`] : [];
  const N = runName(n, namespaces);
  if (windows) windows.spawnAt = now();
  const cp = launch(`weft control (${N})`, process.execPath, [...nodeFlags, CLI, 'control', '--data-dir', dataDir, '--admin-port', '0', '--xds-port', '0']);
  try {
    const ready = await waitReady(cp, 30_000);
    rememberAdminToken(ready.admin, dataDir);
    const pid = cp.proc.pid!;
    if (ready.pid !== pid) log(`note: WEFT_READY says pid ${ready.pid}, the process started is ${pid}; measuring ${ready.pid}`);
    const cpPid = ready.pid;

    // Config first: a VirtualService and a DestinationRule for the routed services, each in its
    // service's namespace (so, over several namespaces, each namespace's own).
    const routed = Array.from({ length: SCALE_MESH.routed }, (_, k) => serviceAt(k, namespaces));
    await applyYaml(ready.admin, routed.flatMap((s) => [virtualService(s, 90), versionSubsets(s)]).join('---\n'));

    // Warm-up: one pure client connects, gets its config and leaves, so that the one-time costs
    // (loading the Envoy descriptor, compiling the hot paths) are not charged to N = 1.
    const proxies = plan(n, namespaces);
    const creds = await simCredentials(ready, [...new Set(['default', ...proxies.map((p) => p.namespace)])]);
    await warmUp(ready.xds, ready.admin, creds);

    const servedSet = new Set(proxies.filter((p) => p.service).map((p) => fqdn({ name: p.service!, namespace: p.namespace })));
    const serving = proxies.filter((p) => p.service).length;
    // One virtual host per host served or routed, and the catch-all for hosts the mesh does not know.
    const vhosts = new Set([...servedSet, ...routed.map(fqdn)]).size + 1;
    const expect: Expect = { serving, vhosts };
    await sleep(300);
    const idleMB = rssMB(cpPid);
    let peakMB = idleMB;
    const sampler = setInterval(() => {
      try {
        peakMB = Math.max(peakMB, rssMB(cpPid));
      } catch {}
    }, 100);
    try {
      const self0 = cpuSeconds('self');
      // Connect: all N at once, split over the workers.
      const cpu0 = cpuSeconds(cpPid);
      const t0 = now();
      for (let i = 0; i < workers.size; i++) {
        workers.send(i, { cmd: 'connect', xds: ready.xds, creds, proxies: proxies.filter((_, k) => k % workers.size === i), expect });
      }
      let opened = t0;
      for (let i = 0; i < workers.size; i++) opened = Math.max(opened, (await workers.take(i, 'opened', 10_000, 'opening streams')).at);
      // Bounded: 40 s at N <= 1,000; more for a bigger N given by hand (handshakes and first configs grow with N, pushes too).
      const connectTimeout = CONNECT_TIMEOUT_MS * Math.max(1, (n / 1000) ** 2);
      const { times: connectTimes, first: firstTimes, routeConfigs } = await workers.phase('connect', connectTimeout, `${N}: all proxies holding their full initial config`);
      const connectDone = Math.max(...connectTimes);
      const cpu1 = cpuSeconds(cpPid);
      log(`${N}: all ${n} have their config ${((connectDone - t0) / 1000).toFixed(2)}s after connecting (${routeConfigs} distinct route configs); control plane CPU ${(cpu1 - cpu0).toFixed(2)}s`);
      const adminProxies = await allAckedInAdmin(ready.admin, n, `${N} after connect`);
      const listed = await adminCall(`${ready.admin}/api/v1/proxies`);
      const clusters = listed.proxies[0].types.find((t: any) => t.type === 'CDS').resources;
      const st = listed.stats;
      if (st) log(`${N}: since the control plane started: ${st.pushes} pushes, ${st.responses} responses sent, ${st.held} held back (flow control)`);
      const afterConnectMB = rssMB(cpPid);

      // Config change, CONFIG_CHANGES times: the VirtualService of service 0 to 50/50, back to
      // 90/10, ...; each push seen by every proxy, and ACKed, before the next apply.
      const changed = serviceAt(0, namespaces);
      const changes: Change[] = [];
      for (let c = 0; c < CONFIG_CHANGES; c++) {
        workers.broadcast({ cmd: 'arm-rds', vhost: `${fqdn(changed)}:80`, weight: changedWeight(c) });
        for (let i = 0; i < workers.size; i++) await workers.take(i, 'armed', 5000, 'arming');
        const cpu2 = cpuSeconds(cpPid);
        const a0 = now();
        await applyYaml(ready.admin, virtualService(changed, changedWeight(c)));
        const a1 = now();
        const { times } = await workers.phase('rds', CHANGE_TIMEOUT_MS, `${N}: all proxies holding the changed route (change ${c + 1})`);
        changes.push({ a0, a1, times, cpuS: cpuSeconds(cpPid) - cpu2, allMs: Math.max(...times) - a1 });
        await allAckedInAdmin(ready.admin, n, `${N} after config change ${c + 1}`);
      }
      // The median change by its slowest proxy (CONFIG_CHANGES is odd).
      const config = [...changes].sort((a, b) => a.allMs - b.allMs)[(CONFIG_CHANGES - 1) / 2];
      log(`${N}: config change at all ${n} ${changes.map((c) => c.allMs.toFixed(0)).join(', ')} ms after apply returned (median ${config.allMs.toFixed(0)})`);

      // Endpoint change: one more proxy of service 0 (version v2) joins.
      workers.broadcast({ cmd: 'arm-eds', serving: serving + 1 });
      for (let i = 0; i < workers.size; i++) await workers.take(i, 'armed', 5000, 'arming');
      const cpu4 = cpuSeconds(cpPid);
      const extra = { id: 'sim-extra', namespace: changed.namespace, service: changed.name, version: 'v2', inboundPort: 9999, appPort: 9998, outboundPort: 15001 };
      workers.send(0, { cmd: 'join', proxy: extra });
      const j0 = (await workers.take(0, 'joined', 5000, 'joining')).at;
      const { times: edsTimes } = await workers.phase('eds', CHANGE_TIMEOUT_MS, `${N}: all proxies holding the new endpoint`);
      const cpu5 = cpuSeconds(cpPid);
      const adminProxiesAfterJoin = await allAckedInAdmin(ready.admin, n + 1, `${N} after the extra proxy joined`);
      log(`${N}: new endpoint at all ${n} ${(Math.max(...edsTimes) - j0).toFixed(0)} ms after it connected`);
      const self1 = cpuSeconds('self');
      if (windows) {
        windows.phases.push(['connect', t0, connectDone], ['config change', config.a0, config.a1 + config.allMs], ['endpoint change', j0, Math.max(...edsTimes)]);
      }

      return {
        n,
        namespaces,
        routeConfigs,
        adminProxies,
        adminProxiesAfterJoin,
        serving,
        services: servedSet.size,
        clusters,
        connect: { allMs: connectDone - t0, openedMs: opened - t0, perProxy: spread(connectTimes.map((t) => t - t0)), first: spread(firstTimes.map((t) => t - t0)) },
        config: { applyMs: config.a1 - config.a0, allMs: config.allMs, perProxy: spread(config.times.map((t) => t - config.a1)), changesMs: changes.map((c) => c.allMs) },
        endpoint: { allMs: Math.max(...edsTimes) - j0, perProxy: spread(edsTimes.map((t) => t - j0)) },
        rss: { idleMB, peakMB, afterMB: afterConnectMB },
        cpu: { connectS: cpu1 - cpu0, configS: config.cpuS, endpointS: cpu5 - cpu4 },
        loadGenCpuS: self1 - self0,
      };
    } finally {
      clearInterval(sampler);
    }
  } catch (e) {
    if (cp.proc.exitCode !== null || cp.proc.signalCode !== null) {
      throw new ScaleError(`${(e as Error).message}\n  (${cp.label} exited: ${cp.proc.signalCode ?? `code ${cp.proc.exitCode}`}; last stderr: ${cp.stderrTail.slice(-5).join(' | ')})`);
    }
    throw e;
  } finally {
    await stopProc(cp);
  }
}

export interface ScaleOptions {
  bigN?: number[];
  /** The namespaces of the scoped run at the biggest N (default SCALE_MESH.namespaces; 1: none). */
  namespaces?: number;
  workers?: number;
  cpuProf?: boolean;
}

/**
 * N = 1, then each big N in one namespace, then the biggest N over several namespaces, each
 * against a fresh control plane. Throws ScaleError on any failure.
 */
export async function runScale(opts: ScaleOptions = {}): Promise<ScaleResult> {
  const started = Date.now();
  const bigN = opts.bigN ?? [DEFAULT_BIG_N];
  const namespaces = opts.namespaces ?? SCALE_MESH.namespaces;
  const plans: [n: number, namespaces: number][] = [[1, 1], ...bigN.map((n) => [n, 1] as [number, number])];
  if (namespaces > 1) plans.push([Math.max(...bigN), namespaces]);
  const nWorkers = opts.workers ?? Math.min(4, Math.max(2, os.availableParallelism()));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-scale-'));
  const runs: ScaleRun[] = [];
  let profile: string | undefined;
  try {
    for (const [n, ns] of plans) {
      const profDir = opts.cpuProf && n === Math.max(...bigN) && ns === 1 ? path.join(tmp, 'cpuprofile') : undefined;
      if (profDir) fs.mkdirSync(profDir);
      // Fresh workers per run: nothing from the previous run's streams lingers in them.
      const workers = new Workers(Math.min(nWorkers, n));
      try {
        log(`${runName(n, ns)}: ${n} simulated proxies in ${workers.size} worker thread(s)`);
        const windows: Windows = { phases: [], spawnAt: 0 };
        runs.push(await runAt(n, ns, workers, tmp, profDir, windows));
        if (profDir) profile = summarizeProfile(profDir, windows);
      } finally {
        await workers.close();
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return { date: new Date(), mesh: SCALE_MESH, workers: nWorkers, nproc: os.availableParallelism(), runs, durationS: (Date.now() - started) / 1000, profile };
}

/** The control plane's profile cut into the phases (the profile ends when the process exits). */
function summarizeProfile(dir: string, w: Windows): string {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length !== 1) return `(expected one .cpuprofile in ${dir}, found ${files.length})`;
  const data = JSON.parse(fs.readFileSync(path.join(dir, files[0]), 'utf8'));
  const out: string[] = [];
  for (const [name, a, b] of w.phases) {
    let s;
    try {
      const lengthMs = (data.endTime - data.startTime) / 1000;
      s = analyzeProfile(data, { fromEndMs: lengthMs - (a - w.spawnAt), toEndMs: lengthMs - (b - w.spawnAt) }, ROOT);
    } catch (e) {
      out.push(`${name}: ${(e as Error).message}`);
      continue;
    }
    const ofBusy = (pct: number) => `${((pct / s.busyPct) * 100).toFixed(1).padStart(5)}%`;
    out.push(
      `control plane profile, ${name}: ${s.samples} samples over ${s.windowS.toFixed(2)} s, busy ${s.busyPct.toFixed(1)}%`,
      '  top self time by function (% of busy):',
      ...s.functions.filter((r) => r.name !== '(idle)').slice(0, 18).map((r) => `  ${ofBusy(r.pct)}  ${r.name}  ${r.where}`),
      '  by area:',
      ...s.areas.filter((r) => r.name !== '(idle)').slice(0, 10).map((r) => `  ${ofBusy(r.pct)}  ${r.name}`),
    );
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Standalone: node bench/scale.ts

async function cliMain(): Promise<number> {
  const { values } = parseArgs({
    options: {
      proxies: { type: 'string' },
      namespaces: { type: 'string' },
      workers: { type: 'string' },
      write: { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      out: { type: 'string', default: path.join(ROOT, 'docs', 'performance.md') },
    },
  });
  const bigN = values.proxies ? values.proxies.split(',').map((x) => Number(x.trim())) : undefined;
  if (bigN && bigN.some((x) => !Number.isInteger(x) || x < 1)) throw new ScaleError(`--proxies: expected a positive whole number (or a list, comma-separated), got ${values.proxies}`);
  const namespaces = values.namespaces ? Number(values.namespaces) : undefined;
  if (namespaces !== undefined && (!Number.isInteger(namespaces) || namespaces < 1)) throw new ScaleError(`--namespaces: expected a positive whole number`);
  const workers = values.workers ? Number(values.workers) : undefined;
  if (workers !== undefined && (!Number.isInteger(workers) || workers < 1)) throw new ScaleError(`--workers: expected a positive whole number`);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      log(`${sig}: stopping ${running.size} processes`);
      Promise.all([...running].map(stopProc)).finally(() => process.exit(130));
    });
  }
  const result = await runScale({ bigN, namespaces, workers, cpuProf: values['cpu-prof'] });
  const { renderScale, spliceScale } = await import('./report.ts');
  const section = renderScale(result);
  process.stdout.write(section + '\n');
  if (result.profile) process.stderr.write(result.profile + '\n');
  if (values.write) {
    const out = values.out!;
    const text = fs.readFileSync(out, 'utf8');
    fs.writeFileSync(out, spliceScale(text, section));
    log(`wrote the section into ${path.relative(process.cwd(), out)}`);
  }
  return 0;
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === 'weft-scale-worker') {
  workerMain();
} else if (isMainThread && import.meta.main) {
  try {
    process.exitCode = await cliMain();
  } catch (e) {
    process.stderr.write(`[scale] FAILED: ${e instanceof ScaleError || e instanceof BenchError ? e.message : ((e as Error).stack ?? e)}\n`);
    process.exitCode = 1;
  }
}
