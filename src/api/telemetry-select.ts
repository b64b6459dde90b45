// PURE: which Telemetries apply to a workload's sidecar, with Istio's precedence
// (pilot/pkg/model/telemetry.go, applicableTelemetries):
//   - the root namespace's (istio-system) Telemetry without a selector: the mesh's;
//   - the workload's namespace's Telemetry without a selector (none of its own in the root namespace);
//   - every Telemetry of the workload's namespace whose selector's labels are among the workload's,
//     in creation order;
// listed in that order, later ones overriding earlier ones section by section (accessLogging,
// metrics, tracing: each section's merge is its translator's, e.g. control/translate/accesslog.ts).
// Of several Telemetries without a selector in one namespace, the oldest counts (Istio sorts by
// creation time and takes the first; `weft analyze` reports the others: IST0160). A Telemetry with
// targetRef(s) is for gateways, waypoints and services: never a sidecar's.
import type { Telemetry } from './types.ts';
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
 * workload's own (those whose selector matches its labels). Only `namespace` and, for workload
 * Telemetries, `labels` are read.
 */
export function applicableTelemetries(telemetries: readonly Telemetry[] | undefined, w: PolicyTarget, rootNamespace: string = ROOT_NAMESPACE): ApplyingTelemetry[] {
  const all = [...(telemetries ?? [])].sort(telemetryOrder);
  const out: ApplyingTelemetry[] = [];
  const root = namespaceWide(all, rootNamespace);
  if (root) out.push({ level: 'root', telemetry: root });
  if (w.namespace !== rootNamespace) {
    const ns = namespaceWide(all, w.namespace);
    if (ns) out.push({ level: 'namespace', telemetry: ns });
  }
  for (const t of all) {
    if (t.metadata.namespace !== w.namespace || !hasSelector(t) || hasTargetRefs(t)) continue;
    if (labelsMatch(t.spec.selector?.matchLabels, w.labels)) out.push({ level: 'workload', telemetry: t });
  }
  return out;
}

/** "namespace/name" of each applying Telemetry, in order: what a proxy's telemetry depends on (its push-cache key). */
export function telemetryKeys(applying: readonly ApplyingTelemetry[]): string[] {
  return applying.map((a) => `${a.telemetry.metadata.namespace}/${a.telemetry.metadata.name}`);
}
