// Whether this sidecar can forward, not only whether its process runs. Checked every probe
// interval; /ready reports every problem, and the health the sidecar reports to the control plane
// (so other sidecars stop choosing this endpoint) turns false on the problems that stop inbound
// traffic:
//   - the app does not accept connections (two failed TCP connects in a row);
//   - the inbound listener does not accept connections within a second (HTTP listeners: a probe
//     connection to a tcp_proxy listener would open a connection to the app);
//   - requests to the app have waited longer than STALL_MS for a connection (its pool is stuck or
//     saturated: the sidecar would only queue more);
//   - the event loop was blocked for longer than loopBlockedMs (default 1000 ms, limits.ts) in the
//     last interval.
// Stalls on outbound pools and an outbound listener that does not accept are reported by /ready
// but do not make this endpoint unhealthy: they stop the app's own calls, not traffic to it.
import { canConnect } from '../util/net.ts';
import type { PoolStats } from './http1/client.ts';

export const STALL_MS = 5000;
const LOOP_SAMPLE_MS = 200;

export interface HealthOptions {
  appPort?: number;
  /** The inbound listener's port, if the sidecar has one. */
  inboundPort: () => number | undefined;
  /** Every bound listener: name and port. */
  listeners: () => { name: string; address: string; port: number }[];
  pools: () => PoolStats[];
  probeIntervalMs: number;
  /** A blocked event loop longer than this within one interval makes the endpoint unhealthy. */
  loopBlockedMs: number;
  /** The reported health changed. */
  onChange(healthy: boolean, why: string): void;
}

export interface Health {
  /** What stops the sidecar from forwarding now; empty when it can. */
  problems(): string[];
  readonly healthy: boolean;
  stop(): void;
}

export async function startHealth(o: HealthOptions): Promise<Health> {
  let appOk = o.appPort === undefined ? true : await canConnect(o.appPort, 1000);
  let appFailures = 0;
  let listenerProblems: { name: string; port: number }[] = [];
  let loopBlockedMs = 0;
  // How late a 200 ms timer fires is how long the loop was blocked. Not monitorEventLoopDelay: its
  // reset() drops the next sample, so a block that ends as this check's timer fires (or any block,
  // when checks come more often than two samples) was never seen.
  let lastTick = performance.now();
  let lateMs = 0;
  const sampler = setInterval(() => {
    const now = performance.now();
    lateMs = Math.max(lateMs, now - lastTick - LOOP_SAMPLE_MS);
    lastTick = now;
  }, LOOP_SAMPLE_MS);
  sampler.unref();
  const appEndpoint = o.appPort === undefined ? undefined : `127.0.0.1:${o.appPort}`;

  const stalls = () => o.pools().filter((p) => (p.waitingMs ?? 0) > STALL_MS);
  const inboundProblems = (): string[] => {
    const out: string[] = [];
    if (!appOk) out.push(`the app on 127.0.0.1:${o.appPort} does not accept connections`);
    const inPort = o.inboundPort();
    for (const l of listenerProblems) if (l.port === inPort) out.push(`listener ${l.name} on port ${l.port} does not accept connections`);
    for (const p of stalls()) if (p.endpoint === appEndpoint) out.push(stallText(p));
    if (loopBlockedMs > o.loopBlockedMs) out.push(`the event loop was blocked for ${loopBlockedMs} ms`);
    return out;
  };
  const problems = (): string[] => {
    const out = inboundProblems();
    const inPort = o.inboundPort();
    for (const l of listenerProblems) if (l.port !== inPort) out.push(`listener ${l.name} on port ${l.port} does not accept connections`);
    for (const p of stalls()) if (p.endpoint !== appEndpoint) out.push(stallText(p));
    return out;
  };

  let healthy = inboundProblems().length === 0;
  const timer = setInterval(async () => {
    // A block that just ended, whose sample has not run yet, counts here (and not again there).
    const now = performance.now();
    loopBlockedMs = Math.round(Math.max(lateMs, now - lastTick - LOOP_SAMPLE_MS));
    lastTick = now;
    lateMs = 0;
    if (o.appPort !== undefined) {
      const ok = await canConnect(o.appPort, Math.min(1000, o.probeIntervalMs));
      appFailures = ok ? 0 : appFailures + 1;
      appOk = ok ? true : appFailures >= 2 ? false : appOk;
    }
    const checks = await Promise.all(o.listeners().map(async (l) => ({ l, ok: await canConnect(l.port, 1000, l.address) })));
    listenerProblems = checks.filter((c) => !c.ok).map((c) => c.l);
    const why = inboundProblems();
    const next = why.length === 0;
    if (next === healthy) return;
    healthy = next;
    o.onChange(next, next ? 'it can forward to its app again' : why.join('; '));
  }, o.probeIntervalMs);
  timer.unref();

  return {
    problems,
    get healthy() {
      return healthy;
    },
    stop() {
      clearInterval(timer);
      clearInterval(sampler);
    },
  };
}

function stallText(p: PoolStats): string {
  return `requests to ${p.endpoint} have waited ${p.waitingMs} ms for a connection (${p.pending} queued, ${p.busy} connections busy)`;
}
