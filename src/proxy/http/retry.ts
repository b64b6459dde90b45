// Retries, as Envoy's router does them (a route's retry_policy), and a retry budget, as Linkerd's:
// which outcomes of a try may be retried, how long to wait before the next, and whether the
// cluster's budget has room. The Exchange (forward.ts) asks; this file decides. PURE but for the
// budget's counters.
import type { RetryPolicy } from '../xds-client/convert-route.ts';
import type { HeaderList } from './types.ts';

/** How a try failed without a response head to look at. */
export type TryFailure = 'connect' | 'reset' | 'refused' | 'timeout';

const GRPC_CONDITIONS: Record<string, string> = { '1': 'cancelled', '4': 'deadline-exceeded', '8': 'resource-exhausted', '13': 'internal', '14': 'unavailable' };

/** Does the policy retry a response with this status (and, for a gRPC request, grpc-status in its head)? */
export function retriableResponse(p: RetryPolicy, status: number, headers: HeaderList, grpcRequest = true): boolean {
  if (status < p.lowestStatus && !grpcRequest) return false; // the common case: a status no condition names
  const on = p.on;
  if (status >= 500 && on.has('5xx')) return true;
  if ((status === 502 || status === 503 || status === 504) && on.has('gateway-error')) return true;
  if (status === 409 && on.has('retriable-4xx')) return true;
  if (on.has('retriable-status-codes') && p.retriableStatusCodes.has(status)) return true;
  // Headers are read only where they can matter: grpc-status on a gRPC answer (HTTP 200), and
  // x-envoy-ratelimited on a 429. Most responses cost no scan.
  if (!p.readsHeaders || !((grpcRequest && status === 200) || (status === 429 && on.has('envoy-ratelimited')))) return false;
  let grpc: string | undefined;
  let ratelimited = false;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] === 'grpc-status') grpc = headers[i + 1];
    else if (headers[i] === 'x-envoy-ratelimited') ratelimited = true;
  }
  if (ratelimited && on.has('envoy-ratelimited')) return true;
  const cond = grpc === undefined ? undefined : GRPC_CONDITIONS[grpc.trim()];
  return cond !== undefined && on.has(cond);
}

/** Does the policy retry a try that failed this way (Envoy: 5xx and gateway-error cover no answer at all too)? */
export function retriableFailure(p: RetryPolicy, f: TryFailure): boolean {
  const on = p.on;
  if (on.has('5xx') || on.has('gateway-error')) return true;
  switch (f) {
    case 'connect':
      return on.has('connect-failure') || on.has('reset') || on.has('reset-before-request');
    case 'refused':
      return on.has('refused-stream') || on.has('reset');
    case 'reset':
    case 'timeout':
      return on.has('reset');
  }
}

/** Envoy's back-off: full jitter over an interval that doubles each retry, up to the maximum. `rand` in [0, 1). */
export function backoffMs(p: RetryPolicy, retry: number, rand: number): number {
  const ceiling = Math.min(p.backoffMaxMs, p.backoffBaseMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(rand * ceiling);
}

/**
 * A retry budget per cluster, as Linkerd's: over the last 10 s, retries may add at most 20% to
 * the cluster's requests, plus 10 a second, whatever the routes' policies say. A failing upstream
 * never sees a retry storm: at 200 requests a second to a cluster that fails every one, it gets at
 * most 250 a second.
 */
export class RetryBudgets {
  static readonly RATIO = 0.2;
  static readonly FLOOR_PER_SECOND = 10;
  static readonly WINDOW_SECONDS = 10;
  private readonly clusters = new Map<string, Window>();

  /** A request to the cluster started (its first try). */
  request(cluster: string, nowMs: number): void {
    this.window(cluster, nowMs).requests[slot(nowMs)]++;
  }

  /** Takes one retry from the cluster's budget, if it has room. */
  tryRetry(cluster: string, nowMs: number): boolean {
    const w = this.window(cluster, nowMs);
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < RetryBudgets.WINDOW_SECONDS; i++) {
      requests += w.requests[i];
      retries += w.retries[i];
    }
    if (retries >= RetryBudgets.RATIO * requests + RetryBudgets.FLOOR_PER_SECOND * RetryBudgets.WINDOW_SECONDS) return false;
    w.retries[slot(nowMs)]++;
    return true;
  }

  private window(cluster: string, nowMs: number): Window {
    let w = this.clusters.get(cluster);
    if (!w) this.clusters.set(cluster, (w = { second: Math.floor(nowMs / 1000), requests: new Array(RetryBudgets.WINDOW_SECONDS).fill(0), retries: new Array(RetryBudgets.WINDOW_SECONDS).fill(0) }));
    // Seconds that passed since the window last moved are emptied.
    const now = Math.floor(nowMs / 1000);
    for (let s = w.second + 1; s <= now && s <= w.second + RetryBudgets.WINDOW_SECONDS; s++) {
      w.requests[s % RetryBudgets.WINDOW_SECONDS] = 0;
      w.retries[s % RetryBudgets.WINDOW_SECONDS] = 0;
    }
    w.second = Math.max(w.second, now);
    return w;
  }
}

interface Window {
  second: number;
  requests: number[];
  retries: number[];
}

function slot(nowMs: number): number {
  return Math.floor(nowMs / 1000) % RetryBudgets.WINDOW_SECONDS;
}
