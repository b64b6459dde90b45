// `weft analyze` against the running mesh: a DestinationRule whose TLS mode its host's workloads
// refuse, by their PeerAuthentications (WEFT0005, an error). Pure: resources and workloads in,
// messages out.
//   - tls.mode DISABLE sends plaintext; a workload port whose mode is STRICT takes only mTLS, so it
//     closes those connections;
//   - tls.mode ISTIO_MUTUAL sends mTLS; a workload port whose mode is DISABLE takes only plaintext,
//     so those handshakes fail.
// Istio's analyzers once said this (IST0113 MTLSPolicyConflict, for its old Policy kind) and no
// longer do; the catalogue has no code for it, so the code is Weft's.
//
// Each cluster of the rule is checked: the host's (every workload) and each subset's (the
// workloads with its labels), on each port of those workloads. Its mode is the last layer that sets
// tls, in the order control/translate/policy.ts's effectivePolicy layers them: the rule's, its
// port-level entry for the port, the subset's, the subset's port-level entry. The workload's mode
// on the port is peer-auth.ts's, as its sidecar's inbound listener takes it.

import type { DestinationRule, PeerAuthentication, Resource } from './types.ts';
import { describeKey } from './types.ts';
import type { AnalysisMessage } from './analyze.ts';
import { fqdn, labelsMatch } from './rules.ts';
import { portMtlsMode, workloadMtls, type EffectiveMode } from './peer-auth.ts';
import type { PolicyTarget } from './policy-select.ts';

/** A workload of the running mesh, with what a DestinationRule reaches it by: its service's host and ports. */
export interface ServedWorkload extends PolicyTarget {
  /** "namespace/name", as messages name it. */
  readonly name?: string;
  /** Its service's host ("reviews.default.svc.cluster.local"); none for a pure client. */
  readonly host?: string;
  /** Its service ports (the ports clients call). */
  readonly ports?: readonly number[];
}

type Obj = Record<string, unknown>;
const asObj = (v: unknown): Obj | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined);

/** The client's TLS mode for (subset, port), and the field that sets it. */
function tlsMode(dr: DestinationRule, subsetIndex: number | undefined, port: number): { mode: string; path: string } | undefined {
  let found: { mode: string; path: string } | undefined;
  const layer = (tp: unknown, path: string) => {
    const policy = asObj(tp);
    if (!policy) return;
    const set = (o: Obj | undefined, p: string) => {
      // A tls without a mode is automatic mTLS (as translate/mtls.ts's clusterTls reads it): no conflict.
      if (o && asObj(o.tls)) found = { mode: String(asObj(o.tls)!.mode ?? ''), path: `${p}.tls.mode` };
    };
    set(policy, path);
    const levels = Array.isArray(policy.portLevelSettings) ? policy.portLevelSettings : [];
    const k = levels.findIndex((pl) => asObj(asObj(pl)?.port)?.number === port);
    if (k >= 0) set(asObj(levels[k]), `${path}.portLevelSettings[${k}]`);
  };
  layer(dr.spec.trafficPolicy, 'spec.trafficPolicy');
  if (subsetIndex !== undefined) layer(dr.spec.subsets?.[subsetIndex]?.trafficPolicy, `spec.subsets[${subsetIndex}].trafficPolicy`);
  return found;
}

/** What each client mode cannot reach: the workload mode that refuses it, and what happens. */
const CONFLICT: Readonly<Record<string, { refusedBy: EffectiveMode; sends: string; takes: string; effect: string }>> = {
  DISABLE: { refusedBy: 'STRICT', sends: 'plaintext', takes: 'only mTLS', effect: 'they close those connections' },
  ISTIO_MUTUAL: { refusedBy: 'DISABLE', sends: 'mTLS', takes: 'only plaintext', effect: 'those handshakes fail' },
};

export function mtlsConflicts(resources: readonly Resource[], workloads: readonly ServedWorkload[]): AnalysisMessage[] {
  const pas = resources.filter((r) => r.kind === 'PeerAuthentication') as PeerAuthentication[];
  const modes = new Map(workloads.map((w) => [w, workloadMtls(pas, w)]));
  const out: AnalysisMessage[] = [];
  for (const dr of resources.filter((r) => r.kind === 'DestinationRule') as DestinationRule[]) {
    const host = fqdn(dr.spec.host, dr.metadata.namespace);
    const served = workloads.filter((w) => w.host !== undefined && (host.startsWith('*') ? w.host.endsWith(host.slice(1)) : w.host === host));
    const clusters: { subset?: number; members: ServedWorkload[] }[] = [
      { members: served },
      ...(dr.spec.subsets ?? []).map((s, i) => ({ subset: i, members: served.filter((w) => labelsMatch(s.labels, w.labels)) })),
    ];
    // One message per field and port: the workloads it cannot reach there.
    const found = new Map<string, { path: string; port: number; mode: string; subset?: number; names: Set<string> }>();
    for (const { subset, members } of clusters) {
      for (const w of members) {
        for (const port of w.ports ?? []) {
          const tls = tlsMode(dr, subset, port);
          const conflict = tls && CONFLICT[tls.mode];
          if (!conflict || portMtlsMode(modes.get(w)!, port) !== conflict.refusedBy) continue;
          const key = `${tls.path} ${port}`;
          const entry = found.get(key) ?? { path: tls.path, port, mode: tls.mode, subset, names: new Set<string>() };
          entry.names.add(w.name ?? w.namespace);
          found.set(key, entry);
        }
      }
    }
    for (const { path, port, mode, subset, names } of found.values()) {
      const c = CONFLICT[mode]!;
      const to = subset === undefined ? host : `subset "${dr.spec.subsets![subset]!.name}" of ${host}`;
      out.push({
        code: 'WEFT0005',
        level: 'Error',
        resource: describeKey({ kind: dr.kind, namespace: dr.metadata.namespace, name: dr.metadata.name }),
        path,
        message: `${mode} sends ${c.sends} to ${to} on port ${port}, but its workload(s) ${[...names].sort().join(', ')} take ${c.takes} there (PeerAuthentication ${c.refusedBy}): ${c.effect}`,
      });
    }
  }
  return out;
}
