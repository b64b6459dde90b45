// PURE: a proxy's Istio metrics by its Telemetries' metrics sections, as Istio's pilot makes them
// (pilot/pkg/model/telemetry.go mergeMetrics, generateStatsConfig, buildHTTPTelemetryFilter):
//   - the entries of the Telemetries that apply (api/telemetry-select.ts: root, namespace,
//     workload), in that order, later ones overriding earlier ones;
//   - the providers in scope are those of the last entry that names some (else the mesh config's
//     defaultProviders.metrics; Istio's default mesh config has [prometheus]); an entry without
//     providers applies to those of the entry before it;
//   - each override applies to the metrics its match names (ALL_METRICS, or none: every one; a
//     customMetric: that name) on the side its mode names (CLIENT: the outbound listeners, SERVER:
//     the inbound ones; CLIENT_AND_SERVER or none: both); a later override's disabled replaces an
//     earlier one's, its tag overrides are added to theirs (one per tag, the later wins);
//   - an override of every metric (ALL_METRICS, or no metric named) with disabled: true turns the
//     provider off on the side(s) its mode names, until a later override on that side turns it on
//     again: Istio's disabledAllMetricsProviders, kept per provider and side;
//   - a prometheus provider in scope becomes Istio's stats filter (istio.stats, a TypedStruct of
//     stats.PluginConfig) in each HCM's http_filters (before the router) and before each
//     tcp_proxy: {metrics: [{name, dimensions, tags_to_remove, drop}]}, one per metric overridden,
//     in the order of their names (requests_total, ...: Istio's metricToPrometheusMetric);
//   - no prometheus provider in scope (stackdriver only, a provider the mesh does not have, or all
//     disabled): no stats filter in Istio, so no Istio metrics. Weft's sidecars report without the
//     filter (a listener without it reports the defaults), so here the filter drops every metric.
// Where the result is Istio's defaults (a prometheus provider, nothing overridden on that side) no
// filter is sent: the sidecars report the defaults, on their fastest path.
// A tag override whose expression the sidecars cannot evaluate (api/cel-support.ts) is left out,
// as `weft apply` warns; one that does not parse is sent as it is (the stats filter then leaves a
// standard label out and adds nothing, as Envoy does).
import type { MeshConfig } from '../../api/meshconfig.ts';
import { findExtensionProvider } from '../../api/meshconfig.ts';
import type { ApplyingTelemetry } from '../../api/telemetry-select.ts';
import { sectionEntries } from '../../api/telemetry-select.ts';
import { ISTIO_METRICS, PROMETHEUS_METRIC } from '../../api/telemetry.ts';
import { celUnsupported } from '../../api/cel-support.ts';
import { TYPE } from '../../xds/types.ts';

export type MetricsSide = 'CLIENT' | 'SERVER';

export const ISTIO_STATS = 'istio.stats';
const STATS_PLUGIN_CONFIG = 'type.googleapis.com/stats.PluginConfig';

/** Every metric but ALL_METRICS, sorted (Istio's allMetrics). */
const ALL = ISTIO_METRICS.filter((m) => m !== 'ALL_METRICS').sort();

interface TagOverride {
  operation?: string;
  value?: string;
}

/** One metric's merged override on one side. */
export interface MetricOverride {
  name: string;
  disabled: boolean;
  /** By tag name, in the order of the names: remove, or upsert with a CEL expression. */
  tags: { name: string; remove: boolean; value: string }[];
}

export interface MergedMetrics {
  CLIENT: MetricOverride[];
  SERVER: MetricOverride[];
  /** The sides on which every metric is off (Istio then builds no stats filter for that side's listeners). */
  disabled: { CLIENT: boolean; SERVER: boolean };
}

interface Override {
  match?: { metric?: string; customMetric?: string; mode?: string } | null;
  disabled?: boolean | null;
  tagOverrides?: Record<string, TagOverride | null> | null;
}

const names = (ps: readonly ({ name?: string } | null)[] | null | undefined) => (ps ?? []).map((p) => p?.name).filter((n): n is string => !!n);
const modes = (mode: string | undefined): MetricsSide[] => (mode === 'CLIENT' || mode === 'SERVER' ? [mode] : ['CLIENT', 'SERVER']);
const matchesOf = (m: Override['match']): string[] => (m?.customMetric ? [m.customMetric] : !m?.metric || m.metric === 'ALL_METRICS' ? ALL : [m.metric]);

/** Istio's default providers of metrics: the mesh config's, else its default mesh config's (prometheus). */
export function defaultMetricsProviders(mc: MeshConfig | undefined): string[] {
  return mc?.defaultProviders?.metrics ?? ['prometheus'];
}

/** Istio's mergeMetrics: provider name -> its overrides per side. */
export function mergeMetrics(applying: readonly ApplyingTelemetry[], mc: MeshConfig | undefined): Map<string, MergedMetrics> {
  type Merged = { disabled?: boolean; tags: Map<string, TagOverride> };
  const providers = new Map<string, Record<MetricsSide, Map<string, Merged>>>();
  const entries = sectionEntries(applying, 'metrics').map((e) => e.entry);
  const defaults = defaultMetricsProviders(mc);
  if (!entries.length) for (const d of defaults) providers.set(d, { CLIENT: new Map(), SERVER: new Map() });
  let inScope = defaults;
  for (const m of entries) if (names(m.providers).length) inScope = names(m.providers);
  let parent = defaults;
  /** "provider/side" (Istio's metricProviderModeKey). */
  const disabledAll = new Set<string>();
  for (const m of entries) {
    const named = names(m.providers);
    const ps = named.length ? named : parent;
    parent = ps;
    for (const p of ps) {
      if (!inScope.includes(p)) continue;
      if (!providers.has(p)) providers.set(p, { CLIENT: new Map(), SERVER: new Map() });
      const mp = providers.get(p)!;
      for (const o of (m.overrides ?? []) as (Override | null)[]) {
        if (!o) continue;
        // Istio's isAllMetrics: ALL_METRICS, or no metric match at all (a customMetric is one metric).
        const all = !o.match?.customMetric && (!o.match?.metric || o.match.metric === 'ALL_METRICS');
        if (all && o.disabled === true) {
          for (const side of modes(o.match?.mode)) disabledAll.add(`${p}/${side}`);
          continue;
        }
        for (const side of modes(o.match?.mode)) {
          disabledAll.delete(`${p}/${side}`);
          for (const metric of matchesOf(o.match)) {
            const cur: Merged = mp[side].get(metric) ?? { tags: new Map() };
            if (o.disabled !== undefined && o.disabled !== null) cur.disabled = o.disabled;
            for (const [k, v] of Object.entries(o.tagOverrides ?? {})) if (v) cur.tags.set(k, v);
            mp[side].set(metric, cur);
          }
        }
      }
    }
  }
  const out = new Map<string, MergedMetrics>();
  for (const [p, sides] of providers) {
    const off = { CLIENT: disabledAll.has(`${p}/CLIENT`), SERVER: disabledAll.has(`${p}/SERVER`) };
    const side = (s: MetricsSide): MetricOverride[] =>
      [...sides[s]]
        .map(([name, o]) => ({
          name,
          disabled: o.disabled === true,
          tags: [...o.tags]
            .map(([tag, t]) => ({ name: tag, remove: t.operation === 'REMOVE', value: t.operation === 'REMOVE' ? '' : (t.value ?? '') }))
            .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
        }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    out.set(p, { CLIENT: off.CLIENT ? [] : side('CLIENT'), SERVER: off.SERVER ? [] : side('SERVER'), disabled: off });
  }
  return out;
}

/**
 * Istio's stats filter for a proxy's listeners of one side, as an HTTP filter (its network filter
 * has the same name and config); undefined where the sidecars' defaults are what it would say.
 */
export function istioStatsFilter(applying: readonly ApplyingTelemetry[], mc: MeshConfig | undefined, side: MetricsSide): object | undefined {
  const merged = mergeMetrics(applying, mc);
  // Istio builds a filter per provider, in the order of their names; Weft reports to Prometheus
  // only: the first prometheus provider's config is the one applied.
  const prometheus = [...merged.keys()].sort().find((p) => findExtensionProvider(mc, p)?.prometheus !== undefined);
  let metrics: object[];
  // No prometheus provider, or every metric off on this side: Istio sends no stats filter, so no
  // Istio metrics; Weft's sidecars report the defaults without one, so this filter drops them all.
  if (prometheus === undefined || merged.get(prometheus)!.disabled[side]) metrics = Object.values(PROMETHEUS_METRIC).sort().map((name) => ({ name, drop: true }));
  else {
    const overrides = merged.get(prometheus)![side];
    if (!overrides.length) return undefined;
    metrics = overrides.map((o) => {
      const dimensions: Record<string, string> = {};
      const remove: string[] = [];
      for (const t of o.tags) {
        if (t.remove) remove.push(t.name);
        else if (!celUnsupported(t.value)) dimensions[t.name] = t.value;
      }
      return {
        name: PROMETHEUS_METRIC[o.name] ?? o.name,
        ...(Object.keys(dimensions).length ? { dimensions } : {}),
        ...(remove.length ? { tags_to_remove: remove } : {}),
        ...(o.disabled ? { drop: true } : {}),
      };
    });
  }
  return { name: ISTIO_STATS, typed_config: { '@type': TYPE.typedStruct, type_url: STATS_PLUGIN_CONFIG, value: { metrics } } };
}

/** The stats filter in every HCM of a listener (before its router) and before every tcp_proxy. */
export function withStats(listener: object, filter: object | undefined): object {
  if (!filter) return listener;
  type Filter = { typed_config?: Record<string, any> };
  type Chain = { filters?: Filter[] };
  const chain = (c: Chain): Chain => ({
    ...c,
    filters: (c.filters ?? []).flatMap((f): Filter[] => {
      const t = f.typed_config?.['@type'];
      if (t === TYPE.tcpProxy) return [filter, f];
      if (t !== TYPE.hcm) return [f];
      const http: Filter[] = f.typed_config!.http_filters ?? [];
      const router = http.findIndex((h) => h.typed_config?.['@type'] === TYPE.router);
      const at = router < 0 ? http.length : router;
      return [{ ...f, typed_config: { ...f.typed_config, http_filters: [...http.slice(0, at), filter, ...http.slice(at)] } }];
    }),
  });
  const l = listener as { filter_chains?: Chain[]; default_filter_chain?: Chain };
  return { ...listener, ...(l.filter_chains ? { filter_chains: l.filter_chains.map(chain) } : {}), ...(l.default_filter_chain ? { default_filter_chain: chain(l.default_filter_chain) } : {}) };
}
