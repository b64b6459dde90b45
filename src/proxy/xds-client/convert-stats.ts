// PURE: Istio's stats filter config (istio.stats: a TypedStruct of type_url
// type.googleapis.com/stats.PluginConfig, as Istio's pilot puts it in each HCM's http_filters and
// before each tcp_proxy; istio/proxy source/extensions/filters/http/istio_stats) -> what the
// sidecar's Istio metrics (telemetry/istio-metrics.ts) do on that listener. Of PluginConfig,
// `metrics` is applied ({name, dimensions, tags_to_remove, drop}, in order, with the filter's
// semantics below); any other field is refused, naming it.
//   - drop: the metric is not reported;
//   - tags_to_remove: a standard label is left out (a name that is not one is ignored, as Envoy does);
//   - dimensions: label -> CEL expression: a standard label's value is replaced in place, any other
//     label is added after the standard ones (in the order of their names); the value is the
//     expression's, printed as Envoy prints it, "unknown" when it errs; an expression that does not
//     parse leaves a standard label out and adds nothing (Envoy logs it and goes on);
//   - a metric entry without a name applies its labels to every metric (its drop to none, as the filter's lookup finds no metric named "").
// A listener without the filter reports Istio's defaults (what Istio's default Telemetry does).
import { TYPE } from '../../xds/types.ts';
import { CelFilterError, compileCelValue } from '../telemetry/cel-filter.ts';
import type { LogEntry } from '../telemetry/format.ts';
import { REQUEST_LABELS, TCP_LABELS } from '../telemetry/istio-labels.ts';
import { fail } from './convert-util.ts';

export const ISTIO_STATS_FILTER = 'istio.stats';
export const STATS_PLUGIN_CONFIG = 'type.googleapis.com/stats.PluginConfig';
const TYPED_STRUCTS = new Set([TYPE.typedStruct, 'type.googleapis.com/xds.type.v3.TypedStruct']);

/** Istio's metric names as the stats filter knows them (istio_ + name), HTTP then TCP; each one's bit. */
export const HTTP_METRICS = ['requests_total', 'request_duration_milliseconds', 'request_bytes', 'response_bytes', 'request_messages_total', 'response_messages_total'] as const;
export const TCP_METRICS = ['tcp_connections_opened_total', 'tcp_connections_closed_total', 'tcp_sent_bytes_total', 'tcp_received_bytes_total'] as const;
const ALL_METRICS: readonly string[] = [...HTTP_METRICS, ...TCP_METRICS];

/** Metrics that share their labels: one series (of every metric in `mask`) per label set. */
export interface StatsGroup {
  /** Bits of HTTP_METRICS or TCP_METRICS (1 << index). */
  mask: number;
  /** The label names, in order; `standard`: exactly the metric's own (REQUEST_LABELS / TCP_LABELS). */
  names: readonly string[];
  standard: boolean;
  /** Per label: its index among the standard labels' values, or ~i for expression i's value. */
  from: readonly number[];
  /** names joined: which series index a group's series are in. */
  namesKey: string;
  /** The names and where each value comes from (an expression by its text): equal groups, of any listener or config, are equal. */
  key: string;
  /** The expressions it reads (indices into IstioStatsConfig.exprs), in order. */
  reads: readonly number[];
}

export interface IstioStatsConfig {
  /** The expressions of the dimensions, each evaluated once per exchange where some group uses one. */
  exprs: readonly ((e: LogEntry) => string)[];
  http: readonly StatsGroup[];
  tcp: readonly StatsGroup[];
  /** Whether some HTTP / TCP group reads an expression: the exchange's values are evaluated only then. */
  httpReads: boolean;
  tcpReads: boolean;
}

/**
 * A tag name as a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*), as Envoy's Prometheus output
 * sanitizes tag names: any other character becomes "_", and a name that starts with a digit gets
 * one in front. (Left as it came, "x-user" would make the whole scrape unparseable.)
 */
export function labelName(tag: string): string {
  const s = tag.replace(/[^a-zA-Z0-9_]/g, '_');
  return /^[0-9]/.test(s) || s === '' ? `_${s}` : s;
}

/** Is this HTTP or network filter Istio's stats filter? */
export function isIstioStats(f: any): boolean {
  const tc = f?.typed_config;
  return TYPED_STRUCTS.has(tc?.['@type']) && tc?.type_url === STATS_PLUGIN_CONFIG;
}

export function istioStatsConfig(where: string, f: any): IstioStatsConfig {
  const tc = f.typed_config;
  for (const k of Object.keys(tc)) if (k !== '@type' && k !== 'type_url' && k !== 'value') fail(`${where}.typed_config.${k}`, 'not supported');
  const value = tc.value ?? {};
  for (const k of Object.keys(value)) if (k !== 'metrics') fail(`${where}.typed_config.value.${k}`, 'not supported (metrics is)');
  const metrics: any[] = value.metrics ?? [];
  if (!Array.isArray(metrics)) fail(`${where}.typed_config.value.metrics`, 'must be a list');
  const exprs: ((e: LogEntry) => string)[] = [];
  const texts: string[] = [];
  const exprIds = new Map<string, number | undefined>();
  const expression = (w: string, text: string): number | undefined => {
    if (exprIds.has(text)) return exprIds.get(text);
    let fn: ((e: LogEntry) => string) | undefined;
    try {
      fn = compileCelValue(text);
    } catch (e) {
      if (e instanceof CelFilterError) fail(w, `${JSON.stringify(text)} ${e.message}`);
      throw e;
    }
    const id = fn ? exprs.push(fn) - 1 : undefined;
    if (fn) texts.push(text);
    exprIds.set(text, id);
    return id;
  };
  const drop = new Set<string>();
  // metric -> standard label -> expression id (undefined: left out)
  const overrides = new Map<string, Map<string, number | undefined>>();
  // metric -> added label -> expression id (a later entry's wins, as the filter's dimensions map)
  const additions = new Map<string, Map<string, number>>();
  const std = new Set<string>(REQUEST_LABELS);
  metrics.forEach((m, i) => {
    const mw = `${where}.typed_config.value.metrics[${i}]`;
    if (m === null || typeof m !== 'object' || Array.isArray(m)) fail(mw, 'must be an object ({name, dimensions, tags_to_remove, drop})');
    for (const k of Object.keys(m ?? {})) if (!['name', 'dimensions', 'tags_to_remove', 'drop'].includes(k)) fail(`${mw}.${k}`, 'not supported (name, dimensions, tags_to_remove and drop are)');
    const name = m?.name ?? '';
    if (typeof name !== 'string') fail(`${mw}.name`, 'must be a string');
    const targets = name === '' ? ALL_METRICS : ALL_METRICS.includes(name) ? [name] : [];
    if (m.drop === true) {
      // Only a metric named: the filter looks the name up, and "" is none.
      if (name !== '') drop.add(name);
      return;
    }
    const of = (t: string) => overrides.get(t) ?? (overrides.set(t, new Map()), overrides.get(t)!);
    const remove = m.tags_to_remove ?? [];
    if (!Array.isArray(remove) || remove.some((t: unknown) => typeof t !== 'string')) fail(`${mw}.tags_to_remove`, 'must be a list of label names');
    for (const tag of remove) {
      if (!std.has(tag)) continue;
      for (const t of targets) of(t).set(tag, undefined);
    }
    const dims = m.dimensions ?? {};
    if (typeof dims !== 'object' || Array.isArray(dims)) fail(`${mw}.dimensions`, 'must be a map of label to CEL expression');
    for (const key of Object.keys(dims).sort()) {
      const text = dims[key];
      if (typeof text !== 'string') fail(`${mw}.dimensions.${key}`, 'must be a string (a CEL expression)');
      const id = expression(`${mw}.dimensions.${key}`, text);
      // As a Prometheus label name, as Envoy's exposition writes a tag's name: "x-user" is x_user.
      const tag = labelName(key);
      for (const t of targets) {
        if (std.has(tag)) of(t).set(tag, id);
        else if (id !== undefined) (additions.get(t) ?? (additions.set(t, new Map()), additions.get(t)!)).set(tag, id);
      }
    }
  });
  const groups = (names: readonly string[], labels: readonly string[]): StatsGroup[] => {
    const out = new Map<string, StatsGroup>();
    names.forEach((metric, bit) => {
      if (drop.has(metric)) return;
      const o = overrides.get(metric);
      const outNames: string[] = [];
      const from: number[] = [];
      labels.forEach((l, i) => {
        if (!o?.has(l)) return void (outNames.push(l), from.push(i));
        const id = o.get(l);
        if (id !== undefined) outNames.push(l), from.push(~id);
      });
      for (const [tag, id] of [...(additions.get(metric) ?? [])].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) outNames.push(tag), from.push(~id);
      const key = `${outNames.join(',')}|${from.join(',')}`;
      const g = out.get(key);
      if (g) g.mask |= 1 << bit;
      else {
        const standard = from.length === labels.length && from.every((x, i) => x === i);
        const reads = from.filter((x) => x < 0).map((x) => ~x);
        const stable = `${outNames.join(',')}|${from.map((x) => (x >= 0 ? x : JSON.stringify(texts[~x]))).join(',')}`;
        out.set(key, { mask: 1 << bit, names: Object.freeze(outNames), standard, from: Object.freeze(from), namesKey: outNames.join(','), key: stable, reads: Object.freeze(reads) });
      }
    });
    return [...out.values()];
  };
  const http = groups(HTTP_METRICS, REQUEST_LABELS);
  const tcp = groups(TCP_METRICS, TCP_LABELS);
  const reads = (gs: StatsGroup[]) => gs.some((g) => g.reads.length > 0);
  return Object.freeze({ exprs: Object.freeze(exprs), http: Object.freeze(http), tcp: Object.freeze(tcp), httpReads: reads(http), tcpReads: reads(tcp) });
}
