// `weft analyze`: what a set of valid resources says together, as `istioctl analyze` reports it
// (with Istio's codes where one exists, ../shared/conformance/istio/analyzer-messages.yaml), plus
// what Weft accepts but does not apply yet. Pure: resources in, messages out.
import type { DestinationRule, Resource, VirtualService } from './types.ts';
import { describeKey } from './types.ts';
import { warningsOf } from './validate.ts';

export interface AnalysisMessage {
  code: string; // "IST0101", or "WEFT0001" for Weft's own
  level: 'Error' | 'Warning' | 'Info';
  resource: string; // "VirtualService default/reviews"
  path: string; // "spec.http[0].route[0].destination.subset"
  message: string;
}

/** A host as Istio resolves it in the namespace of the resource that names it. */
function resolveHost(host: string, namespace: string): string {
  return host.includes('.') || host.startsWith('*') ? host : `${host}.${namespace}.svc.cluster.local`;
}

const name = (r: Resource) => describeKey({ kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name });

export function analyze(resources: readonly Resource[]): AnalysisMessage[] {
  const out: AnalysisMessage[] = [];
  const vss = resources.filter((r) => r.kind === 'VirtualService') as VirtualService[];
  const drs = resources.filter((r) => r.kind === 'DestinationRule') as DestinationRule[];

  // IST0101: a route names a subset that no DestinationRule for its host defines.
  const subsets = new Map<string, Set<string>>();
  for (const dr of drs) {
    const host = resolveHost(dr.spec.host, dr.metadata.namespace);
    const s = subsets.get(host) ?? new Set<string>();
    for (const sub of dr.spec.subsets ?? []) s.add(sub.name);
    subsets.set(host, s);
  }
  for (const vs of vss) {
    (vs.spec.http ?? []).forEach((r, i) => {
      const dests = [...(r.route ?? []).map((d, j) => ({ d: d.destination, path: `spec.http[${i}].route[${j}].destination` })), ...(r.mirror ? [{ d: r.mirror, path: `spec.http[${i}].mirror` }] : [])];
      for (const { d, path } of dests) {
        if (!d.subset) continue;
        const host = resolveHost(d.host, vs.metadata.namespace);
        if (subsets.get(host)?.has(d.subset)) continue;
        out.push({ code: 'IST0101', level: 'Error', resource: name(vs), path: `${path}.subset`, message: `Referenced host+subset in destinationrule not found: "${host}+${d.subset}" (its traffic gets 503)` });
      }
    });
  }

  // IST0109: two VirtualServices bound to the mesh claim one host; only the first applies.
  const byHost = new Map<string, VirtualService[]>();
  for (const vs of vss) {
    const gw = vs.spec.gateways;
    if (gw && gw.length && !gw.includes('mesh')) continue;
    for (const h of vs.spec.hosts ?? []) {
      const host = resolveHost(h, vs.metadata.namespace);
      byHost.set(host, [...(byHost.get(host) ?? []), vs]);
    }
  }
  for (const [host, list] of byHost) {
    if (list.length < 2) continue;
    const names = list.map((v) => `${v.metadata.namespace}/${v.metadata.name}`).sort();
    for (const vs of list) {
      out.push({ code: 'IST0109', level: 'Error', resource: name(vs), path: 'spec.hosts', message: `The VirtualServices ${names.join(',')} associated with mesh gateway define the same host ${host} which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.` });
    }
  }

  // WEFT0001: accepted, not applied yet (api/support.ts).
  for (const r of resources) {
    for (const w of warningsOf(r)) out.push({ code: 'WEFT0001', level: 'Warning', resource: w.resource ?? name(r), path: w.path, message: w.message });
  }
  return out;
}
