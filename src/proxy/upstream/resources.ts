// A cluster's circuit breakers (Envoy's circuit_breakers thresholds, DEFAULT priority), counted as
// Envoy counts them: per cluster, across every endpoint's pool and both protocols, not per endpoint
// (Envoy's "Circuit breaking" overview: "the maximum number of connections that Envoy will establish
// to all hosts in an upstream cluster"). The pools (http1/client.ts, http2/client.ts), the TCP path
// (tcp/tcp.ts) and the retry layer (http/forward.ts) take from these counters and give back.

export interface Thresholds {
  /** Connections open or opening to the cluster's endpoints. */
  maxConnections: number;
  /** Requests waiting for a connection (HTTP/1.1) or a stream (HTTP/2). */
  maxPending: number;
  /** Requests under way on a connection or stream: max_requests (Istio's http2MaxRequests). */
  maxRequests: number;
  /** Retries under way: max_retries (Istio's maxRetries). */
  maxRetries: number;
  /**
   * retry_budget (Istio's retryBudget), in place of max_retries: retries under way at most
   * `percent`% of the requests under way and waiting, never fewer than `minConcurrency`.
   */
  retryBudget?: { percent: number; minConcurrency: number };
}

export class ClusterResources {
  readonly cluster: string;
  limits: Thresholds;
  connections = 0;
  pending = 0;
  requests = 0;
  retries = 0;
  /** Opaque TCP connections (tcp/tcp.ts). */
  readonly tcp: TcpSlots;

  constructor(cluster: string, limits: Thresholds) {
    this.cluster = cluster;
    this.limits = limits;
    this.tcp = new TcpSlots(this);
  }

  /**
   * May a pool open another connection? Under max_connections, yes; past it only a pool that has
   * none at all, as Envoy does ("Envoy will ensure that a host selected by cluster load balancing
   * has at least one connection allocated"), so that requests waiting for an endpoint are never
   * stuck behind another endpoint's idle connections. The cluster's connections stay under
   * max_connections plus one per endpoint.
   */
  canConnect(poolHasNone: boolean): boolean {
    return this.connections < this.limits.maxConnections || poolHasNone;
  }

  /** Why a request cannot wait (max_pending_requests reached); `what` says what is busy. */
  pendingOverflow(what: string): string {
    return `${what} and ${this.pending} ${this.pending === 1 ? 'request' : 'requests'} waiting (the limits are max_connections ${show(this.limits.maxConnections)} and max_pending_requests ${show(this.limits.maxPending)})`;
  }

  /** A pool's connections and waiting requests move to `to`'s counters (its cluster was replaced by one of the same name). */
  handOver(to: ClusterResources, connections: number, pending: number): void {
    this.connections -= connections;
    this.pending -= pending;
    to.connections += connections;
    to.pending += pending;
  }

  /** Takes a request slot (max_requests); false when the cluster has none left. */
  takeRequest(): boolean {
    if (this.requests >= this.limits.maxRequests) return false;
    this.requests++;
    return true;
  }

  requestOverflow(): string {
    return `${this.requests} requests under way (the limit is max_requests ${show(this.limits.maxRequests)})`;
  }

  /** How many retries may be under way now: max_retries, or the retry budget's share of the requests (Envoy's RetryBudget). */
  retryLimit(): number {
    const b = this.limits.retryBudget;
    if (!b) return this.limits.maxRetries;
    return Math.max(b.minConcurrency, Math.floor((b.percent / 100) * (this.requests + this.pending)));
  }

  /** Takes a retry slot (max_retries, or the retry budget); false when as many retries are under way as the cluster allows. */
  takeRetry(): boolean {
    if (this.retries >= this.retryLimit()) return false;
    this.retries++;
    return true;
  }
}

/**
 * The TCP side of a cluster's circuit breakers (tcp/tcp.ts): opaque TCP connections count against
 * max_connections like any other, with Envoy's exception per endpoint; one that finds the cluster
 * full waits (as many as max_pending_requests allows) until one of the cluster's TCP connections
 * closes, as Envoy's TCP pool queues it.
 */
export class TcpSlots {
  private readonly res: ClusterResources;
  private readonly byEndpoint = new Map<string, number>();
  private readonly waiters: (() => void)[] = [];

  constructor(res: ClusterResources) {
    this.res = res;
  }

  /** Takes a connection slot to `endpoint` if the cluster has one (or the endpoint has no TCP connection yet). */
  take(endpoint: string): boolean {
    const mine = this.byEndpoint.get(endpoint) ?? 0;
    if (!this.res.canConnect(mine === 0)) return false;
    this.byEndpoint.set(endpoint, mine + 1);
    this.res.connections++;
    return true;
  }

  /** A TCP connection taken with take() is closed: its slot goes to the first waiter. */
  give(endpoint: string): void {
    const mine = (this.byEndpoint.get(endpoint) ?? 1) - 1;
    if (mine > 0) this.byEndpoint.set(endpoint, mine);
    else this.byEndpoint.delete(endpoint);
    this.res.connections--;
    this.waiters.shift()?.();
  }

  /** Waits for a slot, if the cluster's queue has room: `wake` runs when a TCP connection of the cluster closes; the result cancels the wait. Undefined: max_pending_requests reached. */
  wait(wake: () => void): (() => void) | undefined {
    if (this.res.pending >= this.res.limits.maxPending) return undefined;
    this.res.pending++;
    let waiting = true;
    const w = () => {
      if (!waiting) return;
      waiting = false;
      this.res.pending--;
      wake();
    };
    this.waiters.push(w);
    return () => {
      if (!waiting) return;
      waiting = false;
      this.res.pending--;
      const i = this.waiters.indexOf(w);
      if (i >= 0) this.waiters.splice(i, 1);
    };
  }

  overflow(): string {
    return this.res.pendingOverflow(`${this.res.connections} connections open to the cluster's endpoints`);
  }
}

/** A limit for messages: "unlimited" rather than Infinity. */
function show(n: number): string {
  return Number.isFinite(n) ? String(n) : 'unlimited';
}
