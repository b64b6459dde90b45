// A Prometheus histogram with fixed bucket bounds: per-bucket counts (made cumulative only when
// written out), their sum and count. Observing is a short loop over the bounds and two additions.

/**
 * Envoy's default histogram buckets (source/common/stats/histogram_impl.cc, supportedBuckets), the
 * bounds every one of Istio's histograms has unless a pod's sidecar.istio.io/statsHistogramBuckets
 * annotation says otherwise: istio_request_duration_milliseconds, istio_request_bytes and
 * istio_response_bytes alike.
 */
export const ENVOY_BUCKETS: readonly number[] = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

export class Histogram {
  readonly bounds: readonly number[];
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last: above every bound (+Inf). */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[] = ENVOY_BUCKETS) {
    this.bounds = bounds;
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}
