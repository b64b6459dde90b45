// Request counts by cluster and status code (and, for the sidecar's own errors, the reason).
// The full Istio metric set comes with the observability issue.
export class Stats {
  private readonly counts = new Map<string, number>();

  count(cluster: string, status: number, reason?: string): void {
    const key = `${cluster}\t${status}\t${reason ?? ''}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  rows(): { cluster: string; code: number; reason?: string; count: number }[] {
    return [...this.counts.entries()]
      .map(([k, count]) => {
        const [cluster, code, reason] = k.split('\t');
        return { cluster, code: Number(code), ...(reason ? { reason } : {}), count };
      })
      .sort((a, b) => a.cluster.localeCompare(b.cluster) || a.code - b.code);
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
