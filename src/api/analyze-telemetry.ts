// `weft analyze` for Telemetry, with the codes and texts of Istio's telemetry analyzers
// (pkg/config/analysis/analyzers/telemetry; ../shared/conformance/istio/analyzer-messages.yaml).
// Pure: resources in, messages out.
//   - IST0133 SchemaWarning: Istio's webhook warnings (more than one tracing entry, or provider);
//   - IST0157 InvalidTelemetryProvider: an accessLogging entry, not disabled, that names no
//     provider while the mesh config has no defaultProviders.accessLogging: it logs nothing.
//   - IST0160 MultipleTelemetriesWithoutWorkloadSelectors: more than one Telemetry of a namespace
//     without a selector; the oldest applies (api/telemetry-select.ts), the others do not.
// With the running mesh (its workloads: namespace and labels):
//   - IST0101 ReferencedResourceNotFound, "selector": a selector that selects no workload;
//   - IST0159 ConflictingTelemetryWorkloadSelectors: a workload two Telemetries with selectors select.
import type { Resource, Telemetry } from './types.ts';
import { describeKey } from './types.ts';
import type { AnalysisMessage } from './analyze.ts';
import { labelsMatch } from './rules.ts';
import type { PolicyTarget } from './policy-select.ts';
import { meshConfigOf } from './meshconfig-support.ts';
import { MESH_CONFIGMAP } from './meshconfig.ts';

const nameOf = (r: Resource) => describeKey({ kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name });
/** Go's %v of a []string: "[a b c]". */
const goList = (items: readonly string[]) => `[${items.join(' ')}]`;
const selectorOf = (t: Telemetry) => t.spec.selector?.matchLabels ?? {};
const selectorText = (t: Telemetry) => Object.entries(selectorOf(t)).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join(',');

/** A workload of the running mesh: its namespace, labels and, for messages, its name. */
export interface TelemetryWorkload extends PolicyTarget {
  name?: string;
}

export function telemetryMessages(resources: readonly Resource[], workloads?: readonly TelemetryWorkload[]): AnalysisMessage[] {
  const telemetries = resources.filter((r) => r.kind === 'Telemetry') as Telemetry[];
  if (!telemetries.length) return [];
  const cm = resources.find((r) => r.kind === 'ConfigMap' && r.metadata.namespace === MESH_CONFIGMAP.namespace && r.metadata.name === MESH_CONFIGMAP.name);
  const defaults = (cm ? meshConfigOf(cm.spec).defaultProviders?.accessLogging : undefined) ?? [];
  return [...telemetries.flatMap(schemaWarnings), ...(defaults.length ? [] : telemetries.flatMap(noProvider)), ...withoutSelectors(telemetries), ...(workloads ? selectors(telemetries, workloads) : [])];
}

/** IST0133: the warnings of Istio's webhook (validateTelemetryTracing): only the first tracing entry's first provider is used per mode. */
function schemaWarnings(t: Telemetry): AnalysisMessage[] {
  const out: AnalysisMessage[] = [];
  const warn = (path: string, warning: string) => out.push({ code: 'IST0133', level: 'Warning', resource: nameOf(t), path, message: `Schema validation warning: ${warning}` });
  const tracing = t.spec.tracing ?? [];
  if (tracing.length > 1) warn('spec.tracing', 'multiple tracing is not currently supported');
  tracing.forEach((tr, i) => {
    if ((tr?.providers ?? []).length > 1) warn(`spec.tracing[${i}].providers`, 'multiple providers is not currently supported');
  });
  return out;
}

function noProvider(t: Telemetry): AnalysisMessage[] {
  return (t.spec.accessLogging ?? []).flatMap((l, i) =>
    l && l.disabled !== true && !(l.providers ?? []).length
      ? [{ code: 'IST0157', level: 'Warning' as const, resource: nameOf(t), path: `spec.accessLogging[${i}].providers`, message: `The Telemetry ${t.metadata.name} in namespace "${t.metadata.namespace}" with empty providers will be ignored.` }]
      : [],
  );
}

function withoutSelectors(all: readonly Telemetry[]): AnalysisMessage[] {
  const byNs = new Map<string, Telemetry[]>();
  // Istio's test is `selector == nil`: a selector without labels is one.
  for (const t of all) if (t.spec.selector === undefined || t.spec.selector === null) byNs.set(t.metadata.namespace, [...(byNs.get(t.metadata.namespace) ?? []), t]);
  return [...byNs].flatMap(([ns, ts]) => {
    if (ts.length < 2) return [];
    const names = goList(ts.map((t) => t.metadata.name).sort());
    return ts.map((t) => ({ code: 'IST0160', level: 'Error' as const, resource: nameOf(t), path: 'spec', message: `The Telemetries ${names} in namespace "${ns}" have no workload selector, which can lead to undefined behavior.` }));
  });
}

function selectors(all: readonly Telemetry[], workloads: readonly TelemetryWorkload[]): AnalysisMessage[] {
  const out: AnalysisMessage[] = [];
  const byWorkload = new Map<TelemetryWorkload, Telemetry[]>();
  for (const t of all) {
    if (!Object.keys(selectorOf(t)).length) continue;
    const selected = workloads.filter((w) => w.namespace === t.metadata.namespace && labelsMatch(selectorOf(t), w.labels));
    if (!selected.length) out.push({ code: 'IST0101', level: 'Error', resource: nameOf(t), path: 'spec.selector', message: `Referenced selector not found: "${selectorText(t)}"` });
    for (const w of selected) byWorkload.set(w, [...(byWorkload.get(w) ?? []), t]);
  }
  for (const [w, ts] of byWorkload) {
    if (ts.length < 2) continue;
    const names = goList(ts.map((t) => t.metadata.name).sort());
    for (const t of ts) {
      out.push({ code: 'IST0159', level: 'Error', resource: nameOf(t), path: 'spec.selector', message: `The Telemetries ${names} in namespace "${w.namespace}" select the same workload pod "${w.name?.split('/').pop() ?? selectorText(t)}", which can lead to undefined behavior.` });
    }
  }
  return out;
}
