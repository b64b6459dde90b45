// What Weft applies of a Telemetry (telemetry.istio.io), field by field, and what it warns of
// (support.ts calls this; the rules are those of support.ts: nothing valid is dropped in silence).
// A Telemetry changes what is logged, measured and traced, never who may talk to whom: nothing of
// it is refused, what Weft cannot apply yet is accepted with a warning naming the field.
//   - accessLogging: applied by the sidecars' access logs (control/translate/telemetry-logs.ts):
//     providers, disabled, match.mode, filter.expression (CEL, as far as the sidecars evaluate it:
//     api/cel.ts; an expression outside that is not applied, and every exchange is logged);
//   - metrics: applied (control/translate/telemetry-metrics.ts, Istio's mergeMetrics; the sidecars'
//     Istio metrics by Istio's stats filter): providers (only prometheus providers are exported:
//     providers in scope that name none of them turn Istio's metrics off, as in Istio), overrides'
//     match (metric, ALL_METRICS, customMetric naming a standard metric, mode), disabled and
//     tagOverrides (REMOVE; UPSERT's value a CEL expression, as far as the sidecars evaluate it).
//     Warned: reportingInterval (no meaning for a Prometheus scrape), a customMetric that is none
//     of Istio's standard metrics, an UPSERT value the sidecars cannot evaluate (left out) or that
//     is no CEL (Envoy's stats filter leaves a standard label out, adds no other); with
//     the mesh config, telemetryProviderWarnings names providers that are not Prometheus ones;
//   - tracing: applied (control/translate/tracing.ts): providers (the first, an opentelemetry one),
//     match.mode, randomSamplingPercentage, disableSpanReporting, customTags (literal, environment,
//     header), enableIstioTags, useRequestIdForTraceSampling, disableContextPropagation; the rest
//     (formatter tags, a second provider) is warned;
//   - targetRef(s): for gateways, waypoints and services, never a sidecar (as in Istio): warned.
// With the mesh config at hand (`weft apply` against a control plane), telemetryProviderWarnings
// also names the providers the mesh does not have, or that log nothing in Weft.
import type { FieldError, Telemetry } from './types.ts';
import { field, index, isObject, type Obj } from './schema.ts';
import { celUnsupported } from './cel-support.ts';
import { celSyntaxError } from './cel.ts';
import { PROMETHEUS_METRIC } from './telemetry.ts';
import { findExtensionProvider, type MeshConfig } from './meshconfig.ts';

const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

export function telemetrySupport(spec: Obj, out: { warnings: FieldError[] }): void {
  const warn = (path: string, message: string) => out.warnings.push({ path, message });
  for (const k of ['targetRef', 'targetRefs']) {
    if (spec[k] !== undefined && spec[k] !== null) warn(`spec.${k}`, 'accepted, not applied: a Telemetry with a targetRef applies to Gateways, waypoints and services, never to sidecars (as in Istio); Weft has neither, so it applies to no workload');
  }
  list(spec.tracing).forEach((t, i) => {
    if (isObject(t)) tracingSupport(t, index('spec.tracing', i), warn);
  });
  // Metrics: applied (control/translate/telemetry-metrics.ts: Istio's stats filter on each side).
  list(spec.metrics).forEach((m, i) => {
    if (!isObject(m)) return;
    const p = index('spec.metrics', i);
    if (m.reportingInterval !== undefined && m.reportingInterval !== null) warn(field(p, 'reportingInterval'), "accepted, not applied: it has no meaning for Prometheus, which the sidecars export to: a scrape reads the counters as they are, an open connection's bytes counted up to the scrape itself");
    list(m.overrides).forEach((o, j) => {
      if (!isObject(o)) return;
      const op = index(field(p, 'overrides'), j);
      const custom = isObject(o.match) ? o.match.customMetric : undefined;
      if (typeof custom === 'string' && !Object.values(PROMETHEUS_METRIC).includes(custom)) warn(field(field(op, 'match'), 'customMetric'), `accepted, not applied: Weft's sidecars report Istio's standard metrics only (${Object.values(PROMETHEUS_METRIC).join(', ')}); there is no ${JSON.stringify(custom)} to change`);
      const tags = isObject(o.tagOverrides) ? o.tagOverrides : {};
      for (const [name, t] of Object.entries(tags)) {
        if (!isObject(t) || t.operation === 'REMOVE' || typeof t.value !== 'string') continue;
        const syntax = celSyntaxError(t.value);
        if (syntax) {
          warn(`${field(op, 'tagOverrides')}.${name}.value`, `not a CEL expression (${syntax}): as Envoy's stats filter does, a standard label is then left out and any other is not added`);
          continue;
        }
        const problem = celUnsupported(t.value);
        if (problem) warn(`${field(op, 'tagOverrides')}.${name}.value`, `accepted, not applied: Weft's sidecars cannot evaluate it (${problem}); the label is left as it is`);
      }
    });
  });
  list(spec.accessLogging).forEach((l, i) => {
    if (!isObject(l) || !isObject(l.filter)) return;
    const expression = l.filter.expression;
    const problem = typeof expression === 'string' ? celUnsupported(expression) : undefined;
    const p = field(index('spec.accessLogging', i), 'filter');
    // Istio's mergeLogs keeps a filter for the providers its own entry names, and no other.
    if (!list(l.providers).length) warn(p, 'accepted, not applied: a filter applies to the providers its own entry names, and this entry names none (the providers it inherits keep their own filter, as in Istio); name the providers beside it');
    else if (problem) warn(field(p, 'expression'), `accepted, not applied: Weft's sidecars cannot evaluate it (${problem}); these providers log every exchange`);
  });
}

/** What a tracing entry has that the sidecars do not apply. */
function tracingSupport(t: Obj, p: string, warn: (path: string, message: string) => void): void {
  if (list(t.providers).length > 1) warn(`${p}.providers`, 'accepted, only the first provider is applied (as in Istio: one provider per mode)');
  const tags = isObject(t.customTags) ? t.customTags : {};
  for (const [name, tag] of Object.entries(tags)) {
    if (isObject(tag) && tag.formatter != null) warn(`${p}.customTags.${name}.formatter`, 'accepted, not applied yet: the tag is not written (literal, environment and header tags are)');
  }
}

/** Where a provider is named that the mesh config does not have, or that logs or traces nothing in Weft: what Istio does with it (nothing), said. */
export function telemetryProviderWarnings(t: Telemetry, mc: MeshConfig | undefined): string[] {
  const name = `Telemetry ${t.metadata.namespace}/${t.metadata.name}`;
  const out: string[] = [];
  (t.spec.accessLogging ?? []).forEach((l, i) => {
    (l?.providers ?? []).forEach((p, j) => {
      const found = findExtensionProvider(mc, p.name);
      const path = `spec.accessLogging[${i}].providers[${j}]`;
      if (!found) out.push(`${name}: ${path}: provider ${JSON.stringify(p.name)} is not among the mesh config's extensionProviders (nor Istio's built-in envoy, prometheus, stackdriver): it logs nothing, as in Istio`);
      else if (!isObject(found.envoyFileAccessLog)) {
        const kind = Object.keys(found).find((k) => k !== 'name') ?? 'unknown';
        out.push(`${name}: ${path}: provider ${JSON.stringify(p.name)} is a ${kind} provider: Weft's sidecars write access logs to files only (envoyFileAccessLog), so it logs nothing`);
      }
    });
  });
  // Metrics: the sidecars export to Prometheus only (control/translate/telemetry-metrics.ts).
  (t.spec.metrics ?? []).forEach((m, i) => {
    (m?.providers ?? []).forEach((p, j) => {
      const found = findExtensionProvider(mc, p.name);
      const path = `spec.metrics[${i}].providers[${j}]`;
      if (!found) out.push(`${name}: ${path}: provider ${JSON.stringify(p.name)} is not among the mesh config's extensionProviders (nor Istio's built-in prometheus, stackdriver): it reports nothing, as in Istio; where the providers in scope name no prometheus provider, the workloads report no Istio metrics`);
      else if (!isObject(found.prometheus)) {
        const kind = Object.keys(found).find((k) => k !== 'name') ?? 'unknown';
        out.push(`${name}: ${path}: provider ${JSON.stringify(p.name)} is a ${kind} provider: Weft's sidecars export metrics to Prometheus only (/stats/prometheus), so it gets none; where the providers in scope name no prometheus provider, the workloads report no Istio metrics (as in Istio, where only a prometheus provider makes the stats filter)`);
      }
    });
  });
  // Tracing: the first provider of an entry is the one applied (control/translate/tracing.ts).
  (t.spec.tracing ?? []).forEach((tr, i) => {
    const p = tr?.providers?.[0];
    if (!p) return;
    const found = findExtensionProvider(mc, p.name);
    const path = `spec.tracing[${i}].providers[0]`;
    if (!found) out.push(`${name}: ${path}: provider ${JSON.stringify(p.name)} is not among the mesh config's extensionProviders: the workloads it applies to report no spans, as in Istio`);
    else if (!isObject(found.opentelemetry)) {
      const kind = Object.keys(found).find((k) => k !== 'name') ?? 'unknown';
      out.push(`${name}: ${path}: provider ${JSON.stringify(p.name)} is a ${kind} provider: Weft's sidecars report spans to opentelemetry providers only, so the workloads it applies to report none`);
    }
  });
  return out;
}
