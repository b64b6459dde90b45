// The control plane's memory of the mesh's traffic: per sidecar, the counters of its last scrape
// (to turn the next into deltas, with counter resets handled as Prometheus's rate() handles them),
// and one record per scrape round, summed over all sidecars, for 15 minutes. Only the labels the
// golden signals need are kept (dimensions), so a record grows with the mesh's edges and codes.
import { createHash } from 'node:crypto';
import { type Sample, parseLe } from './prom-text.ts';

export const REQUESTS = 'istio_requests_total';
export const DURATION_BUCKET = 'istio_request_duration_milliseconds_bucket';
export const START_TIME = 'process_start_time_seconds';
export const WANTED = new Set([REQUESTS, DURATION_BUCKET, START_TIME]);

/** The labels a record keeps, in this order. */
export const DIMS = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'destination_workload',
  'destination_workload_namespace',
  'destination_service',
  'response_code',
  'grpc_response_status',
  'connection_security_policy',
] as const;
export type Dim = (typeof DIMS)[number];
export const dim = (d: Dim): number => DIMS.indexOf(d);

/** One label set's traffic in one round: requests, and the duration histogram's cumulative bucket counts. */
export interface Acc {
  dims: readonly string[];
  requests: number;
  /** Bucket upper bounds, ascending (shared between Accs with the same bounds), and their counts. */
  les?: readonly number[];
  buckets?: Float64Array;
}

export interface RoundRecord {
  /** When the round ended (ms). */
  t: number;
  /** The time it stands for: since the previous round ended. */
  seconds: number;
  series: Map<string, Acc>;
  /** Label sets left out: the record was full. */
  dropped: number;
}

export const WINDOW_MS = 15 * 60_000;
/** Series values kept per sidecar between scrapes. */
export const MAX_KEPT = 20_000;
export const MAX_RECORD_SERIES = 2000;
/** A target's share of the record is at least this many label sets, however many targets there are. */
export const MIN_SHARE = 50;

/** The rounds of the last 15 minutes, oldest first. */
export class Rounds {
  readonly records: RoundRecord[] = [];
  push(r: RoundRecord): void {
    this.records.push(r);
    while (this.records.length && this.records[0]!.t <= r.t - WINDOW_MS) this.records.shift();
  }
  /** The records that ended within the last `ms` before `now`. */
  within(ms: number, now: number): RoundRecord[] {
    return this.records.filter((r) => r.t > now - ms && r.t <= now);
  }
}

/** A scrape's samples, as deltas of one target. */
export interface Delta {
  dims: string[];
  requests: number;
  /** For a bucket sample: its bound. */
  le?: number;
}

/**
 * One sidecar's last values. ingest() turns a scrape into deltas: a counter that went down, or a
 * changed process start time, means the sidecar restarted and counts from zero.
 */
export class TargetCounters {
  private prev = new Map<string, number>();
  private startTime: number | undefined;
  private scraped = false;
  /** Counting from zero on the first scrape: the sidecar started after the collector did. */
  private readonly collectorStart: number;
  constructor(collectorStart: number) {
    this.collectorStart = collectorStart;
  }

  /**
   * The deltas since the previous scrape, keeping only series the sidecar reports of its own end
   * (`own(labels)`); the others are counted in `rejected`.
   */
  ingest(samples: readonly Sample[], own: (labels: Record<string, string>) => boolean): { deltas: Delta[]; rejected: number; restarted: boolean; baseline: boolean } {
    const start = samples.find((s) => s.name === START_TIME)?.value;
    let restarted = false;
    let fromZero = false;
    if (!this.scraped) {
      // The first scrape: counting from zero only if the sidecar started after the collector (else
      // its counters hold traffic from before, and are only a baseline).
      fromZero = start !== undefined && Number.isFinite(start) && start * 1000 >= this.collectorStart;
    } else if (start !== undefined && this.startTime !== undefined && start !== this.startTime) {
      restarted = true;
      this.prev.clear();
      fromZero = true;
    }
    const first = !this.scraped;
    this.scraped = true;
    if (start !== undefined) this.startTime = start;
    const next = new Map<string, number>();
    const deltas: Delta[] = [];
    let rejected = 0;
    for (const s of samples) {
      if (s.name === START_TIME) continue;
      if (!Number.isFinite(s.value) || s.value < 0) {
        rejected++;
        continue;
      }
      if (!own(s.labels)) {
        rejected++;
        continue;
      }
      let le: number | undefined;
      if (s.name === DURATION_BUCKET) {
        le = parseLe(s.labels.le);
        if (le === undefined) {
          rejected++;
          continue;
        }
      }
      const key = seriesKey(s);
      next.set(key, s.value);
      const before = this.prev.get(key);
      let d: number;
      if (before === undefined) d = first && !fromZero ? 0 : s.value;
      else if (s.value < before) {
        d = s.value; // reset
        restarted = true;
      } else d = s.value - before;
      // Bucket deltas of 0 too: a histogram's lower bounds are what its interpolation starts from.
      if (d > 0 || le !== undefined) deltas.push({ dims: DIMS.map((k) => s.labels[k] ?? ''), requests: d, ...(le !== undefined ? { le } : {}) });
    }
    // A series missing from this scrape (left out past the series bound, say) keeps its value: when
    // it is back, only what it grew by since counts. Bounded: at most MAX_KEPT values per sidecar.
    if (!restarted) {
      for (const [k, v] of this.prev) {
        if (next.size >= MAX_KEPT) break;
        if (!next.has(k)) next.set(k, v);
      }
    }
    this.prev = next;
    // A first scrape of a sidecar that was running before the collector: its counters are a baseline, no deltas.
    return { deltas, rejected, restarted, baseline: first && !fromZero };
  }
}

/**
 * A sample's identity: its name and every label, in a stable order, hashed: Istio's full label
 * set makes a series' text a kilobyte or more, kept per series per sidecar between scrapes.
 */
function seriesKey(s: Sample): string {
  const names = Object.keys(s.labels).sort();
  return createHash('sha1').update(s.name + '\u0000' + names.map((n) => `${n}\u0001${s.labels[n]}`).join('\u0000')).digest('base64');
}

/**
 * Sums deltas into a round's record, bounded: MAX_RECORD_SERIES label sets in all, and each target
 * (a sidecar's scrape) may bring at most its share of new ones, so that one sidecar reporting many
 * label sets (its own series, however many) cannot leave the others out of the round.
 */
export class RecordBuilder {
  readonly series = new Map<string, Acc>();
  dropped = 0;
  /** Targets scraped this round, and how many of them were only a baseline (a first scrape of a sidecar older than the collector). */
  targets = 0;
  baselines = 0;
  private readonly lesByKey = new Map<string, number[]>();
  private readonly pendingBuckets = new Map<string, { dims: readonly string[]; counts: Map<number, number> }>();
  /** Label sets left out this round, and those let in (MAX_RECORD_SERIES at most). */
  private readonly refused = new Set<string>();
  private readonly admitted = new Set<string>();
  /** New label sets one target may bring: an equal share of the record (at least MIN_SHARE). */
  readonly share: number;

  /** `targets`: how many sidecars this round scrapes. */
  constructor(targets = 1) {
    this.share = Math.max(MIN_SHARE, Math.floor(MAX_RECORD_SERIES / Math.max(1, targets)));
  }

  /** One target's deltas (call once per target and round). */
  add(deltas: readonly Delta[]): void {
    // Only label sets with traffic this round take room (review defect: a sidecar's idle series,
    // whose bucket deltas are all 0, used up its share and the record's before its active ones).
    const keys = deltas.map((d) => d.dims.join('\u0000'));
    const active = new Set<string>();
    deltas.forEach((d, i) => d.requests !== 0 && active.add(keys[i]!));
    let left = this.share;
    for (let i = 0; i < deltas.length; i++) {
      const d = deltas[i]!;
      const key = keys[i]!;
      if (!active.has(key) || this.refused.has(key)) continue;
      if (!this.admitted.has(key)) {
        // Each label set once, whether it comes as a count, as buckets or both (review defect: counted twice).
        if (left <= 0 || this.admitted.size >= MAX_RECORD_SERIES) {
          this.refused.add(key);
          this.dropped++;
          continue;
        }
        left--;
        this.admitted.add(key);
      }
      if (d.le === undefined) this.acc(key, d.dims).requests += d.requests;
      else {
        let b = this.pendingBuckets.get(key);
        if (!b) this.pendingBuckets.set(key, (b = { dims: d.dims, counts: new Map() }));
        b.counts.set(d.le, (b.counts.get(d.le) ?? 0) + d.requests);
      }
    }
  }

  /** A label set's sums (only admitted label sets get here: add() keeps the record's bound). */
  private acc(key: string, dims: readonly string[]): Acc {
    let acc = this.series.get(key);
    if (!acc) this.series.set(key, (acc = { dims, requests: 0 }));
    return acc;
  }

  build(t: number, seconds: number): RoundRecord {
    for (const [key, { dims, counts: b }] of this.pendingBuckets) {
      if (![...b.values()].some((v) => v > 0)) continue; // no request ended in this round
      const acc = this.acc(key, dims);
      const les = [...b.keys()].sort((x, y) => x - y);
      const lk = les.join(',');
      let shared = this.lesByKey.get(lk);
      if (!shared) this.lesByKey.set(lk, (shared = les));
      acc.les = shared;
      acc.buckets = Float64Array.from(les.map((le) => b.get(le)!));
    }
    return { t, seconds, series: this.series, dropped: this.dropped };
  }
}
