// PURE: which mTLS mode a workload's sidecar takes on each port, by the PeerAuthentications of the
// mesh, with Istio's precedence (pilot/pkg/model/authentication.go, ComposePeerAuthentication):
//   - the policies that can apply to a workload are those of its namespace whose selector matches
//     its labels (no selector, or one without labels, matches every workload), and those without a
//     selector in the root namespace;
//   - of each level, the oldest wins: workload (a selector with labels, in the workload's namespace;
//     such policies in the root namespace apply to no one), namespace (no selector, in its
//     namespace), mesh (no selector, in the root namespace);
//   - starting from PERMISSIVE, mesh, then namespace, then workload replace the mode unless theirs
//     is UNSET (or absent): UNSET inherits from the level above;
//   - the workload policy's portLevelMtls then sets single ports (an UNSET one takes the workload's
//     mode). Istio keys them by container port; Weft by the service port (WorkloadPort.port), as
//     its model has no other.
import type { MtlsMode, PeerAuthentication } from './types.ts';
import { ROOT_NAMESPACE, labelsMatch } from './rules.ts';
import type { PolicyTarget } from './policy-select.ts';

/** A mode a port ends up with: UNSET never survives composition. */
export type EffectiveMode = Exclude<MtlsMode, 'UNSET'>;

/** The mode of a workload's ports: one for all, and the ports a workload policy sets apart. */
export interface WorkloadMtls {
  mode: EffectiveMode;
  perPort: ReadonlyMap<number, EffectiveMode>;
}

/** Istio's default when no policy says otherwise: both plaintext and mTLS are taken. */
export const DEFAULT_MTLS_MODE: EffectiveMode = 'PERMISSIVE';

export type { PolicyTarget } from './policy-select.ts';

/** Istio's order among policies of one level: oldest first (creation), then name, then namespace. */
function older(a: PeerAuthentication, b: PeerAuthentication): boolean {
  const ca = a.created ?? Infinity;
  const cb = b.created ?? Infinity;
  if (ca !== cb) return ca < cb;
  if (a.metadata.name !== b.metadata.name) return a.metadata.name < b.metadata.name;
  return a.metadata.namespace < b.metadata.namespace;
}

function hasSelector(pa: PeerAuthentication): boolean {
  return Object.keys(pa.spec.selector?.matchLabels ?? {}).length > 0;
}

/** A mode as set: undefined for UNSET or none, which inherit. */
function setMode(m: { mode?: MtlsMode } | undefined): EffectiveMode | undefined {
  return m?.mode === undefined || m.mode === 'UNSET' ? undefined : m.mode;
}

/**
 * Whether the policy can apply to the workload (the oldest of a level is the one that does): one
 * without a selector (or with one without labels) of its namespace or of the root namespace; one
 * with a selector of its namespace, not the root namespace, whose labels are among its.
 */
export function peerAuthenticationApplies(pa: PeerAuthentication, w: PolicyTarget, rootNamespace: string = ROOT_NAMESPACE): boolean {
  const ns = pa.metadata.namespace;
  if (!hasSelector(pa)) return ns === w.namespace || ns === rootNamespace;
  return ns === w.namespace && ns !== rootNamespace && labelsMatch(pa.spec.selector?.matchLabels, w.labels);
}

/** The modes of a workload's ports, by the policies of the mesh. */
export function workloadMtls(policies: readonly PeerAuthentication[] | undefined, w: PolicyTarget, rootNamespace: string = ROOT_NAMESPACE): WorkloadMtls {
  let mesh: PeerAuthentication | undefined;
  let namespace: PeerAuthentication | undefined;
  let workload: PeerAuthentication | undefined;
  for (const pa of policies ?? []) {
    if (!peerAuthenticationApplies(pa, w, rootNamespace)) continue;
    if (!hasSelector(pa)) {
      if (pa.metadata.namespace === rootNamespace) {
        if (!mesh || older(pa, mesh)) mesh = pa;
      } else if (!namespace || older(pa, namespace)) namespace = pa;
    } else if (!workload || older(pa, workload)) workload = pa;
  }
  let mode = DEFAULT_MTLS_MODE;
  for (const level of [mesh, namespace, workload]) mode = setMode(level?.spec.mtls) ?? mode;
  const perPort = new Map<number, EffectiveMode>();
  for (const [port, m] of Object.entries(workload?.spec.portLevelMtls ?? {})) perPort.set(Number(port), setMode(m) ?? mode);
  return { mode, perPort };
}

/** The mode of one port of a workload (its service port number). */
export function portMtlsMode(m: WorkloadMtls, port: number): EffectiveMode {
  return m.perPort.get(port) ?? m.mode;
}
