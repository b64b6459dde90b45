// PURE: which Telemetries apply to a workload's sidecar, with Istio's precedence
// (pilot/pkg/model/telemetry.go, applicableTelemetries):
//   - the root namespace's (istio-system) Telemetry without a selector: the mesh's;
//   - the workload's namespace's Telemetry without a selector (none of its own in the root namespace);
//   - every Telemetry of the workload's namespace whose selector's labels are among the workload's,
//     in creation order (Istio 1.21 and later, whose loop has no break after the first match: the
//     pilot of 1.20 and before took only the first);
// listed in that order, later ones overriding earlier ones section by section (accessLogging,
// metrics, tracing: each section's merge is its translator's, e.g. control/translate/accesslog.ts).
// Of several Telemetries without a selector in one namespace, the oldest counts (Istio sorts by
// creation time and takes the first; `weft analyze` reports the others: IST0160). A Telemetry with
// targetRef(s) is for gateways, waypoints and services: never a sidecar's.
//
// A section's translator takes applicableTelemetries(mesh.telemetries, proxy) (forProxy in
// control/translate/translate.ts has them as `telemetries`), or applicableTelemetriesOfScope for
// what is translated per proxy scope, and then either sectionEntries(applying, 'tracing') (Istio's
// ct.Tracing / ct.Metrics: every entry, in precedence order) or the Telemetries themselves
// (access logging merges level by level: control/translate/telemetry-logs.ts).
import type { Telemetry, TelemetrySpec } from './types.ts';
import { ROOT_NAMESPACE, labelsMatch } from './rules.ts';
import type { PolicyTarget } from './policy-select.ts';

/** Where an applying Telemetry sits: its level decides its precedence (workload over namespace over root). */
export type TelemetryLevel = 'root' | 'namespace' | 'workload';

export interface ApplyingTelemetry {
  level: TelemetryLevel;
  telemetry: Telemetry;
}

const hasSelector = (t: Telemetry) => Object.keys(t.spec.selector?.matchLabels ?? {}).length > 0;
const hasTargetRefs = (t: Telemetry) => Boolean(t.spec.targetRef || t.spec.targetRefs?.length);

/** Istio's order: oldest first (creation), then namespace and name. */
export function telemetryOrder(a: Telemetry, b: Telemetry): number {
  const ca = a.created ?? Infinity;
  const cb = b.created ?? Infinity;
  if (ca !== cb) return ca < cb ? -1 : 1;
  if (a.metadata.namespace !== b.metadata.namespace) return a.metadata.namespace < b.metadata.namespace ? -1 : 1;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

/** The namespace-wide Telemetry of a namespace: the oldest without a selector or targetRefs. */
function namespaceWide(all: readonly Telemetry[], namespace: string): Telemetry | undefined {
  return all.find((t) => t.metadata.namespace === namespace && !hasSelector(t) && !hasTargetRefs(t));
}

/**
 * The Telemetries that apply to a workload, lowest precedence first: root, namespace, then the
 * workload's own (those whose selector matches its labels).
 */
export function applicableTelemetries(telemetries: readonly Telemetry[] | undefined, w: PolicyTarget, rootNamespace: string = ROOT_NAMESPACE): ApplyingTelemetry[] {
  return applicable(telemetries, w.namespace, (t) => labelsMatch(t.spec.selector?.matchLabels, w.labels), rootNamespace);
}

/** The same, for a proxy scope that names its workload Telemetries ("namespace/name", as workloadTelemetryKeys gives them). */
export function applicableTelemetriesOfScope(telemetries: readonly Telemetry[] | undefined, namespace: string, workloadKeys: readonly string[] = [], rootNamespace: string = ROOT_NAMESPACE): ApplyingTelemetry[] {
  return applicable(telemetries, namespace, (t) => workloadKeys.includes(keyOf(t)), rootNamespace);
}

/** "namespace/name" of the workload-level Telemetries that select a workload: what, beside its namespace, decides its telemetry. */
export function workloadTelemetryKeys(telemetries: readonly Telemetry[] | undefined, w: PolicyTarget, rootNamespace: string = ROOT_NAMESPACE): string[] {
  return applicableTelemetries(telemetries, w, rootNamespace)
    .filter((a) => a.level === 'workload')
    .map((a) => keyOf(a.telemetry));
}

/**
 * The entries of one section (tracing, metrics or accessLogging) of the applying Telemetries, in
 * precedence order (later entries override earlier ones), each with the Telemetry it is from.
 */
export function sectionEntries<K extends 'tracing' | 'metrics' | 'accessLogging'>(applying: readonly ApplyingTelemetry[], section: K): { entry: NonNullable<TelemetrySpec[K]>[number]; from: ApplyingTelemetry }[] {
  return applying.flatMap((a) => ((a.telemetry.spec[section] ?? []) as NonNullable<TelemetrySpec[K]>[number][]).filter((e) => e !== null && e !== undefined).map((entry) => ({ entry, from: a })));
}

const keyOf = (t: Telemetry) => `${t.metadata.namespace}/${t.metadata.name}`;

function applicable(telemetries: readonly Telemetry[] | undefined, namespace: string, selects: (t: Telemetry) => boolean, rootNamespace: string): ApplyingTelemetry[] {
  const all = [...(telemetries ?? [])].sort(telemetryOrder);
  const out: ApplyingTelemetry[] = [];
  const root = namespaceWide(all, rootNamespace);
  if (root) out.push({ level: 'root', telemetry: root });
  if (namespace !== rootNamespace) {
    const ns = namespaceWide(all, namespace);
    if (ns) out.push({ level: 'namespace', telemetry: ns });
  }
  for (const t of all) {
    if (t.metadata.namespace !== namespace || !hasSelector(t) || hasTargetRefs(t)) continue;
    if (selects(t)) out.push({ level: 'workload', telemetry: t });
  }
  return out;
}
