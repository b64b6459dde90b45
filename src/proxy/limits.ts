// The sidecar's own resource limits, derived from the process's file-descriptor limit, so that a
// flood of client connections is refused before the sidecar runs out of descriptors for the
// connections it already carries, its upstream sockets and its admin endpoint.
// Not an ESM import, which runs the module's lazy getters (see src/proxy/sidecar.ts).
const fs = process.getBuiltinModule('node:fs');

/** Descriptors kept back for the admin endpoint, the xDS stream, logs and the app probe. */
const RESERVED_FDS = 256;

/** The soft RLIMIT_NOFILE of this process, from /proc (Linux); 1024 where it cannot be read. */
export function fdLimit(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    if (m) return m[1] === 'unlimited' ? 1_048_576 : Number(m[1]);
  } catch {
    // not Linux
  }
  return 1024;
}

/**
 * How many client connections the sidecar accepts at once (all listeners together): each may
 * need an upstream connection too, so half of what is left after the reserve.
 * WEFT_MAX_CONNECTIONS overrides it.
 */
export function connectionLimit(env: NodeJS.ProcessEnv = process.env): number {
  return positiveInt(env.WEFT_MAX_CONNECTIONS) ?? Math.max(64, Math.floor((fdLimit() - RESERVED_FDS) / 2));
}

/**
 * How long the event loop may be blocked within one health interval before this endpoint reports
 * itself unhealthy (health.ts): 1000 ms, or WEFT_LOOP_BLOCKED_MS, for a sidecar run under a
 * profiler or valgrind, whose slowed loop is not a sign of a stuck proxy.
 */
export function loopBlockedLimitMs(env: NodeJS.ProcessEnv = process.env): number {
  return positiveInt(env.WEFT_LOOP_BLOCKED_MS) ?? 1000;
}

/** An environment variable's whole number above 0, or undefined when unset or anything else. */
function positiveInt(v: string | undefined): number | undefined {
  const n = Number(v);
  return v !== undefined && Number.isInteger(n) && n > 0 ? n : undefined;
}

export interface UpstreamLimits {
  /** Connections per cluster, across its endpoints (Envoy's circuit-breaker default: 1024). */
  maxConnections: number;
  /** Requests waiting for a connection or stream, per cluster (Envoy's default: 1024). */
  maxPending: number;
  /** Concurrent streams per HTTP/2 connection, under the server's own SETTINGS_MAX_CONCURRENT_STREAMS. */
  maxStreamsPerSession: number;
}

/**
 * The clusters' limits where their circuit_breakers set none (max_requests and max_retries have no
 * default here: Istio always sends them, as 2^32-1 where a DestinationRule sets none).
 * WEFT_UPSTREAM_MAX_CONNECTIONS, WEFT_UPSTREAM_MAX_PENDING and WEFT_UPSTREAM_MAX_STREAMS override
 * these defaults for the whole sidecar.
 */
export function upstreamLimits(env: NodeJS.ProcessEnv = process.env): UpstreamLimits {
  return {
    maxConnections: positiveInt(env.WEFT_UPSTREAM_MAX_CONNECTIONS) ?? 1024,
    maxPending: positiveInt(env.WEFT_UPSTREAM_MAX_PENDING) ?? 1024,
    maxStreamsPerSession: positiveInt(env.WEFT_UPSTREAM_MAX_STREAMS) ?? 1024,
  };
}
