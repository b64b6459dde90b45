// Prometheus's text exposition format (version 0.0.4), written by hand: HELP and TYPE lines, one
// line per series, histograms as cumulative _bucket{le} lines with _sum and _count. Standard text,
// so that Prometheus and the control plane's aggregation read it as they read any exporter's.
import type { Histogram } from './histogram.ts';

/** A label value, escaped as the format requires (backslash, double quote, newline). */
export const escapeLabel = (s: string): string => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** `a="1",b="2"` for names and values in the same order. */
export function labelText(names: readonly string[], values: readonly string[]): string {
  let s = '';
  for (let i = 0; i < names.length; i++) s += `${i ? ',' : ''}${names[i]}="${escapeLabel(values[i]!)}"`;
  return s;
}

/** A number as Prometheus writes it: integers plainly, +Inf/-Inf/NaN by name. */
export function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export function header(out: string[], name: string, type: 'counter' | 'gauge' | 'histogram', help: string): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
}

/** One sample line; `labels` is already labelText(). */
export function sample(out: string[], name: string, labels: string, value: number): void {
  out.push(labels ? `${name}{${labels}} ${num(value)}` : `${name} ${num(value)}`);
}

/** A histogram's lines (without HELP/TYPE): cumulative buckets up to +Inf, then _sum and _count. */
export function histogramLines(out: string[], name: string, labels: string, h: Histogram): void {
  const sep = labels ? ',' : '';
  let cumulative = 0;
  for (let i = 0; i < h.bounds.length; i++) {
    cumulative += h.counts[i]!;
    out.push(`${name}_bucket{${labels}${sep}le="${num(h.bounds[i]!)}"} ${cumulative}`);
  }
  out.push(`${name}_bucket{${labels}${sep}le="+Inf"} ${h.count}`);
  const braces = labels ? `{${labels}}` : '';
  out.push(`${name}_sum${braces} ${num(h.sum)}`, `${name}_count${braces} ${h.count}`);
}
