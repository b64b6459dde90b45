// Request counts by cluster and status code (and, for the sidecar's own errors, the reason).
// The full Istio metric set comes with the observability issue.
export class Stats {
  // cluster -> "status" or "status reason" -> count. Nested maps: no key string built per request.
  private readonly counts = new Map<string, Map<number | string, number>>();

  count(cluster: string, status: number, reason?: string): void {
    let byCode = this.counts.get(cluster);
    if (!byCode) this.counts.set(cluster, (byCode = new Map()));
    const key = reason ? `${status} ${reason}` : status;
    byCode.set(key, (byCode.get(key) ?? 0) + 1);
  }

  rows(): { cluster: string; code: number; reason?: string; count: number }[] {
    const out: { cluster: string; code: number; reason?: string; count: number }[] = [];
    for (const [cluster, byCode] of this.counts) {
      for (const [key, count] of byCode) {
        if (typeof key === 'number') out.push({ cluster, code: key, count });
        else {
          const i = key.indexOf(' ');
          out.push({ cluster, code: Number(key.slice(0, i)), reason: key.slice(i + 1), count });
        }
      }
    }
    return out.sort((a, b) => a.cluster.localeCompare(b.cluster) || a.code - b.code);
  }

  prometheus(): string {
    const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
    const lines = ['# HELP weft_requests_total Requests through this sidecar by cluster and response code.', '# TYPE weft_requests_total counter'];
    for (const r of this.rows()) {
      lines.push(`weft_requests_total{cluster="${esc(r.cluster)}",code="${r.code}"${r.reason ? `,reason="${esc(r.reason)}"` : ''}} ${r.count}`);
    }
    return lines.join('\n') + '\n';
  }
}
