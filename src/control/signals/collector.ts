// The control plane's scraper: every interval, each connected sidecar's /stats/prometheus, at the
// address its xDS connection comes from and the admin port it announced (node metadata
// ADMIN_PORT), bounded in time, size and series; the deltas go into one record per round
// (window.ts). A target that fails gets its error by name; nothing it sends stops the others.
import http from 'node:http';
import { fqdn } from '../../api/rules.ts';
import type { ProxyStatus } from '../ads/server.ts';
import { parsePrometheusText } from './prom-text.ts';
import { endpointName } from '../../util/net.ts';
import { DURATION_BUCKET, RecordBuilder, REQUESTS, Rounds, TargetCounters, WANTED } from './window.ts';

export const SCRAPE_TIMEOUT_MS = 2000;
export const MAX_SCRAPE_BYTES = 4 << 20;
export const MAX_SCRAPE_SERIES = 20_000;
const CONCURRENCY = 8;

export interface TargetStatus {
  proxy: string;
  workload: string;
  url: string | null;
  lastScrape: string | null;
  ok: boolean;
  error: string | null;
  series: number;
  rejectedSeries: number;
  bytes: number;
  durationMs: number;
}

export interface CollectorOptions {
  proxies: () => ProxyStatus[];
  intervalMs: number;
  log?: (msg: string) => void;
  now?: () => number;
}

interface Target {
  counters: TargetCounters;
  status: TargetStatus;
  /** The error last logged, so that a target failing the same way is logged once. */
  logged?: string;
}

const DEPARTED_MS = 60 * 60_000;

export class Collector {
  readonly rounds = new Rounds();
  readonly intervalMs: number;
  roundCount = 0;
  private readonly opts: CollectorOptions;
  private readonly targets = new Map<string, Target>();
  /**
   * Proxies that went away (their xDS stream ended): when, by id. One that comes back (the same
   * process, reconnected) counts from zero only if its process started after that; else its
   * first scrape is a baseline, not its whole history again. Forgotten after an hour.
   */
  private readonly departed = new Map<string, number>();
  private readonly started: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private lastRound: number;
  private stopped = false;

  constructor(opts: CollectorOptions) {
    this.opts = opts;
    this.intervalMs = opts.intervalMs;
    this.started = this.now();
    this.lastRound = this.started;
  }

  now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  start(): void {
    if (this.intervalMs <= 0) return;
    const tick = () => {
      if (this.stopped) return;
      // A round still running means this one is skipped: rounds never overlap. A round that
      // fails is logged; it never ends the control plane.
      this.running ??= this.round()
        .catch((e: Error) => this.opts.log?.(`BUG: signals round failed: ${e.stack ?? e}`))
        .finally(() => {
          this.running = undefined;
        });
      this.timer = setTimeout(tick, this.intervalMs);
      this.timer.unref();
    };
    this.timer = setTimeout(tick, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  targetStatus(): TargetStatus[] {
    return [...this.targets.values()].map((t) => t.status).sort((a, b) => a.workload.localeCompare(b.workload) || a.proxy.localeCompare(b.proxy));
  }

  /** One round: every connected sidecar scraped (at most CONCURRENCY at once), one record. */
  async round(): Promise<void> {
    const proxies = this.opts.proxies();
    const live = new Set(proxies.map((p) => p.id));
    const now = this.now();
    for (const id of this.targets.keys()) {
      if (live.has(id)) continue;
      this.targets.delete(id);
      this.departed.set(id, now);
    }
    for (const [id, at] of this.departed) if (now - at > DEPARTED_MS || live.has(id) && this.targets.has(id)) this.departed.delete(id);
    const builder = new RecordBuilder(proxies.length);
    const queue = [...proxies];
    const worker = async () => {
      for (let p = queue.shift(); p; p = queue.shift()) await this.scrapeOne(p, builder);
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, queue.length) }, worker));
    const t = this.now();
    // A round in which every sidecar scraped was only a baseline (the first round after the control
    // plane restarted, beside sidecars running since before) holds no traffic of anyone: recorded,
    // it would make every rate over a window that holds it read low by its share (about 8% over a
    // minute). It is left out; the next round counts from these baselines, as Prometheus's rate() does.
    if (!(builder.targets > 0 && builder.baselines === builder.targets)) this.rounds.push(builder.build(t, (t - this.lastRound) / 1000));
    this.lastRound = t;
    this.roundCount++;
  }

  private async scrapeOne(p: ProxyStatus, builder: RecordBuilder): Promise<void> {
    let t = this.targets.get(p.id);
    const workload = `${p.workload.namespace}/${p.workload.name}`;
    if (!t) {
      t = { counters: new TargetCounters(this.departed.get(p.id) ?? this.started), status: { proxy: p.id, workload, url: null, lastScrape: null, ok: false, error: null, series: 0, rejectedSeries: 0, bytes: 0, durationMs: 0 } };
      this.targets.set(p.id, t);
    }
    const st = t.status;
    const host = peerHost(p.peer);
    const port = p.workload.adminPort;
    const began = this.now();
    st.lastScrape = new Date(began).toISOString();
    const fail = (error: string, quiet = false) => {
      st.ok = false;
      st.error = error;
      if (t.logged !== error && !quiet) this.opts.log?.(`signals: sidecar ${p.id} (${workload}): ${error}`);
      t.logged = error;
    };
    if (!p.workload.serviceAccount) {
      st.url = null;
      // On the plain-text xDS port nothing is proved: its numbers could claim any workload's name.
      return fail('it proved no identity (plain-text xDS port): not scraped', true);
    }
    if (!port || !host) {
      st.url = null;
      // No admin port is no fault: Envoy and proxyless gRPC clients announce none. Not logged.
      return fail(!port ? 'it announced no admin port (node metadata ADMIN_PORT): not scraped' : `its connection's address ${p.peer} is not an IP address: not scraped`, !port);
    }
    st.url = `http://${endpointName(host, port)}/stats/prometheus`;
    let text: string;
    try {
      text = await fetchBounded(st.url, SCRAPE_TIMEOUT_MS, MAX_SCRAPE_BYTES);
    } catch (e) {
      st.durationMs = this.now() - began;
      return fail(`scrape of ${st.url} failed: ${(e as Error).message}`);
    }
    st.durationMs = this.now() - began;
    st.bytes = Buffer.byteLength(text);
    const parsed = parsePrometheusText(text, { want: (n) => WANTED.has(n), maxSeries: MAX_SCRAPE_SERIES });
    // A sidecar reports its own end only: the workload its certificate proves and, as the
    // destination, the service it registered (or none).
    const { name, namespace } = p.workload;
    const service = p.workload.service ? fqdn(p.workload.service, namespace) : 'unknown';
    const own = (l: Record<string, string>) =>
      l.reporter === 'destination'
        ? l.destination_workload === name && l.destination_workload_namespace === namespace && (l.destination_service === service || l.destination_service === 'unknown')
        : l.reporter === 'source' && l.source_workload === name && l.source_workload_namespace === namespace;
    const { deltas, rejected, baseline } = t.counters.ingest(parsed.samples, own);
    builder.add(deltas);
    builder.targets++;
    if (baseline) builder.baselines++;
    st.series = parsed.samples.filter((s) => s.name === REQUESTS || s.name === DURATION_BUCKET).length;
    st.rejectedSeries = rejected;
    const problems = [
      parsed.bad ? `${parsed.bad} line(s) did not parse (${parsed.firstError})` : '',
      parsed.truncated ? `more than ${MAX_SCRAPE_SERIES} series: the rest were left out` : '',
    ].filter(Boolean);
    if (problems.length) fail(problems.join('; '));
    else {
      st.ok = true;
      st.error = null;
      if (t.logged) this.opts.log?.(`signals: sidecar ${p.id} (${workload}) scraped again`);
      t.logged = undefined;
    }
  }
}

/** The host of a gRPC peer string ("127.0.0.1:5000", "ipv4:...", "[::1]:5000"), if it is an IP address. */
export function peerHost(peer: string): string | undefined {
  const s = peer.replace(/^ipv[46]:/, '');
  const m = /^\[([0-9a-fA-F:.]+)\]:\d+$/.exec(s) ?? /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(s);
  return m?.[1];
}

/** GET url as text: status 200, within timeoutMs overall and maxBytes, else an error saying which. */
export function fetchBounded(url: string, timeoutMs: number, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { accept: 'text/plain' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return done(new Error(`status ${res.statusCode}`));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) return done(new Error(`larger than ${maxBytes} bytes`));
        chunks.push(c);
      });
      res.on('end', () => done(undefined, Buffer.concat(chunks).toString('utf8')));
      res.on('error', (e) => done(e));
    });
    const timer = setTimeout(() => done(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => done(new Error(e.code ?? e.message)));
    let finished = false;
    function done(e: Error | undefined, text?: string) {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      req.destroy();
      if (e) reject(e);
      else resolve(text!);
    }
  });
}
