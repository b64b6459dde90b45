// The golden signals from the rounds' records: per workload, per service or per edge, over a
// window (admin API /api/v1/signals) or round by round (/api/v1/signals/series). Pure functions.
import { type Acc, type RoundRecord, dim } from './window.ts';

export type By = 'workload' | 'service' | 'edge';
export type Reporter = 'source' | 'destination';

export interface Latency {
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface Signals {
  requests: number;
  errors: number;
  rps: number;
  errorRatio: number | null;
  latencyMs: Latency | null;
  mtls: { requests: number; share: number | null };
}

export interface Item extends Signals {
  name: string;
  [k: string]: unknown;
}

/** By workload and service: what the server saw; by edge: what the client saw. */
export const defaultReporter = (by: By): Reporter => (by === 'edge' ? 'source' : 'destination');

const D = {
  reporter: dim('reporter'),
  sw: dim('source_workload'),
  sns: dim('source_workload_namespace'),
  dw: dim('destination_workload'),
  dns: dim('destination_workload_namespace'),
  svc: dim('destination_service'),
  code: dim('response_code'),
  grpc: dim('grpc_response_status'),
  sec: dim('connection_security_policy'),
};
const or = (s: string | undefined) => s || 'unknown';

/** The item an Acc belongs to: its name and its identifying fields. */
function itemOf(by: By, a: readonly string[]): { name: string; fields: Record<string, unknown>; namespaces: string[] } {
  if (by === 'workload') return { name: `${or(a[D.dns])}/${or(a[D.dw])}`, fields: { namespace: or(a[D.dns]), workload: or(a[D.dw]) }, namespaces: [or(a[D.dns])] };
  if (by === 'service') {
    const svc = or(a[D.svc]);
    return { name: svc, fields: { service: svc }, namespaces: [svc.split('.')[1] ?? 'unknown'] };
  }
  const src = { namespace: or(a[D.sns]), workload: or(a[D.sw]) };
  const dst = { service: or(a[D.svc]), namespace: or(a[D.dns]), workload: or(a[D.dw]) };
  return { name: `${src.namespace}/${src.workload} -> ${dst.service} (${dst.namespace}/${dst.workload})`, fields: { source: src, destination: dst }, namespaces: [src.namespace, dst.namespace] };
}

/** Whether an Acc's requests count as errors: 5xx, or a gRPC status other than OK where labelled. */
export function isError(a: readonly string[]): boolean {
  const code = Number(a[D.code]);
  if (code >= 500 && code <= 599) return true;
  const g = a[D.grpc];
  return g !== undefined && g !== '' && g !== '0';
}

/** Sums Accs into signals. */
class Sum {
  requests = 0;
  errors = 0;
  mtlsRequests = 0;
  mutual = 0;
  /** Bucket counts by bound, summed over label sets. */
  buckets = new Map<number, number>();
  add(a: Acc): void {
    this.requests += a.requests;
    if (isError(a.dims)) this.errors += a.requests;
    if (a.dims[D.reporter] === 'destination') {
      this.mtlsRequests += a.requests;
      if (a.dims[D.sec] === 'mutual_tls') this.mutual += a.requests;
    }
    if (a.les && a.buckets) for (let i = 0; i < a.les.length; i++) this.buckets.set(a.les[i]!, (this.buckets.get(a.les[i]!) ?? 0) + a.buckets[i]!);
  }
  signals(seconds: number): Signals {
    const les = [...this.buckets.keys()].sort((x, y) => x - y);
    const counts = les.map((le) => this.buckets.get(le)!);
    const q = (p: number) => histogramQuantile(p, les, counts);
    const p50 = q(0.5);
    return {
      requests: this.requests,
      errors: this.errors,
      rps: seconds > 0 ? round(this.requests / seconds) : 0,
      errorRatio: this.requests ? round(this.errors / this.requests) : null,
      latencyMs: p50 === null ? null : { p50, p95: q(0.95), p99: q(0.99) },
      mtls: { requests: this.mtlsRequests, share: this.mtlsRequests ? round(this.mutual / this.mtlsRequests) : null },
    };
  }
}

const round = (x: number) => Math.round(x * 1e6) / 1e6;

/**
 * Prometheus's histogram_quantile: the bucket the rank falls in, linearly interpolated between its
 * lower and upper bound (the first bucket from 0 when its bound is positive); a rank in the +Inf
 * bucket is the highest finite bound. null without observations or without a +Inf bucket.
 */
export function histogramQuantile(q: number, les: readonly number[], cumulative: readonly number[]): number | null {
  if (!les.length || les[les.length - 1] !== Infinity) return null;
  const total = cumulative[cumulative.length - 1]!;
  if (!(total > 0)) return null;
  const rank = q * total;
  let i = 0;
  while (i < cumulative.length - 1 && cumulative[i]! < rank) i++;
  if (les[i] === Infinity) return les.length >= 2 ? les[les.length - 2]! : null;
  let start = 0;
  let below = 0;
  if (i > 0) {
    start = les[i - 1]!;
    below = cumulative[i - 1]!;
  } else if (les[0]! <= 0) return les[0]!;
  const inBucket = cumulative[i]! - below;
  if (inBucket <= 0) return round(les[i]!);
  return round(start + (les[i]! - start) * ((rank - below) / inBucket));
}

function keep(by: By, reporter: Reporter, namespace: string | undefined) {
  return (a: Acc): ReturnType<typeof itemOf> | undefined => {
    if (a.dims[D.reporter] !== reporter) return undefined;
    const it = itemOf(by, a.dims);
    if (namespace && !it.namespaces.includes(namespace)) return undefined;
    return it;
  };
}

export interface WindowInfo {
  seconds: number;
  covered: number;
  from: string;
  to: string;
}

/**
 * The window's records (those that ended in it), and the time they cover: all of each, the oldest
 * included, which began before the window. Rates divide its counts by that time, so a window that
 * is not a whole number of rounds neither loses nor overstates a round (capping the divisor at the
 * window, as before, overstated rates: 16.7 rps for 10 over a 3 s window of 5 s rounds).
 */
export function windowOf(records: readonly RoundRecord[], windowMs: number, now: number): WindowInfo {
  const covered = records.reduce((s, r) => s + r.seconds, 0);
  return { seconds: windowMs / 1000, covered: round(covered), from: new Date(now - Math.max(windowMs, covered * 1000)).toISOString(), to: new Date(now).toISOString() };
}

/** The signals of each item over the records of a window. */
export function signalsOver(records: readonly RoundRecord[], by: By, reporter: Reporter, covered: number, namespace?: string): Item[] {
  const sel = keep(by, reporter, namespace);
  const sums = new Map<string, { fields: Record<string, unknown>; sum: Sum }>();
  for (const r of records) {
    for (const a of r.series.values()) {
      const it = sel(a);
      if (!it) continue;
      let s = sums.get(it.name);
      if (!s) sums.set(it.name, (s = { fields: it.fields, sum: new Sum() }));
      s.sum.add(a);
    }
  }
  return [...sums.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, { fields, sum }]) => ({ name, ...fields, ...sum.signals(covered) }));
}

export interface Point {
  t: string;
  seconds: number;
  requests: number;
  rps: number;
  errorRatio: number | null;
  latencyMs: Latency | null;
}

/** Each item's signals round by round (every item gets every round's point), for RED charts. */
export function seriesOver(records: readonly RoundRecord[], by: By, reporter: Reporter, name?: string): { name: string; points: Point[] }[] {
  const sel = keep(by, reporter, undefined);
  const names = new Set<string>();
  const perRound = records.map((r) => {
    const sums = new Map<string, Sum>();
    for (const a of r.series.values()) {
      const it = sel(a);
      if (!it || (name !== undefined && it.name !== name)) continue;
      names.add(it.name);
      let s = sums.get(it.name);
      if (!s) sums.set(it.name, (s = new Sum()));
      s.add(a);
    }
    return sums;
  });
  return [...names].sort().map((n) => ({
    name: n,
    points: records.map((r, i) => {
      const s = (perRound[i]!.get(n) ?? new Sum()).signals(r.seconds);
      return { t: new Date(r.t).toISOString(), seconds: round(r.seconds), requests: s.requests, rps: s.rps, errorRatio: s.errorRatio, latencyMs: s.latencyMs };
    }),
  }));
}

/** Destination-reported requests per destination workload ("ns/name") and service host, over records. */
export function requestsByWorkload(records: readonly RoundRecord[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of records) {
    for (const a of r.series.values()) {
      if (a.dims[D.reporter] !== 'destination') continue;
      const key = `${or(a.dims[D.svc])}\u0000${or(a.dims[D.dns])}/${or(a.dims[D.dw])}`;
      out.set(key, (out.get(key) ?? 0) + a.requests);
    }
  }
  return out;
}
