// PURE: which DestinationRule applies to a host for a client, as Istio looks it up:
//   - rules are merged per namespace, host and exportTo (oldest first: the first traffic policy
//     set, and the subsets of all, an older subset winning over a later one of the same name);
//     rules exported differently stay apart, and a client takes the oldest it may see;
//   - a host's rule is searched in the client's namespace, then the service's namespace, then the
//     root namespace, and taken from the first that has one exported to the client's namespace;
//   - in a namespace, a rule for the exact host comes before the most specific wildcard host.
//   - a rule with a workloadSelector applies only to the workloads of its namespace it selects,
//     and for them comes before the rules of their namespace without one (not merged with them);
// The rule every proxy shares unless its own namespace changes it (the "default view") is searched
// in the service's namespace, then the root namespace, among rules exported everywhere.
import type { DestinationRule } from '../../api/types.ts';
import { DOMAIN_SUFFIX, ROOT_NAMESPACE, exportedTo, fqdn, hostMatches } from '../model/model.ts';
import { byPrecedence } from './services.ts';

interface PerNamespace {
  /** Per host, the merged rules of each exportTo, oldest first. */
  exact: Map<string, DestinationRule[]>;
  /** Wildcard hosts, the most specific (longest) first. */
  wildcard: { pattern: string; drs: DestinationRule[] }[];
}

const KUBE_HOST = new RegExp(`^[^.]+\\.([^.]+)\\.${DOMAIN_SUFFIX.replaceAll('.', '\\.')}$`);

/** "namespace/name": how a scope names the rules whose workloadSelector selects its proxies. */
export function ruleKey(dr: DestinationRule): string {
  return `${dr.metadata.namespace}/${dr.metadata.name}`;
}

export class DestinationRuleIndex {
  private readonly byNamespace = new Map<string, PerNamespace>();
  private readonly defaults = new Map<string, DestinationRule | undefined>();
  /** The rules with a workloadSelector, oldest first: each applies alone, to the workloads it selects. */
  private readonly selecting: DestinationRule[];

  constructor(all: readonly DestinationRule[]) {
    this.selecting = byPrecedence(all.filter((dr) => dr.spec.workloadSelector));
    const rules = all.filter((dr) => !dr.spec.workloadSelector);
    // namespace -> host -> exportTo -> the merged rule (Maps keep the order of the oldest rule).
    const merged = new Map<string, Map<string, Map<string, DestinationRule>>>();
    for (const dr of byPrecedence(rules)) {
      const ns = dr.metadata.namespace;
      const host = fqdn(dr.spec.host, ns);
      const exportKey = JSON.stringify([...new Set(dr.spec.exportTo?.length ? dr.spec.exportTo : ['*'])].sort());
      let m = merged.get(ns);
      if (!m) merged.set(ns, (m = new Map()));
      let byExport = m.get(host);
      if (!byExport) m.set(host, (byExport = new Map()));
      const first = byExport.get(exportKey);
      byExport.set(exportKey, first ? merge(first, dr) : dr);
    }
    for (const [ns, m] of merged) {
      const exact = new Map<string, DestinationRule[]>();
      const wildcard: PerNamespace['wildcard'] = [];
      for (const [host, byExport] of m) {
        const drs = [...byExport.values()];
        if (host.startsWith('*')) wildcard.push({ pattern: host, drs });
        else exact.set(host, drs);
      }
      wildcard.sort((a, b) => b.pattern.length - a.pattern.length || a.pattern.localeCompare(b.pattern));
      this.byNamespace.set(ns, { exact, wildcard });
    }
  }

  /**
   * The rule for `host` as a client in `clientNamespace` sees it; undefined `clientNamespace`: the
   * default view. `serviceNamespace` defaults to the namespace of a Kubernetes-style name.
   * `selected`: the keys of the rules whose workloadSelector selects the client.
   */
  lookup(host: string, clientNamespace: string | undefined, serviceNamespace = KUBE_HOST.exec(host)?.[1], selected: readonly string[] = []): DestinationRule | undefined {
    if (selected.length) {
      const own = this.selecting.filter((dr) => selected.includes(ruleKey(dr)));
      const exact = own.find((dr) => fqdn(dr.spec.host, dr.metadata.namespace) === host);
      if (exact) return exact;
      const wild = own
        .filter((dr) => fqdn(dr.spec.host, dr.metadata.namespace).startsWith('*') && hostMatches(fqdn(dr.spec.host, dr.metadata.namespace), host))
        .sort((a, b) => fqdn(b.spec.host, b.metadata.namespace).length - fqdn(a.spec.host, a.metadata.namespace).length)[0];
      if (wild) return wild;
    }
    if (clientNamespace === undefined) {
      if (!this.defaults.has(host)) this.defaults.set(host, this.search(host, [serviceNamespace, ROOT_NAMESPACE], (dr) => everywhere(dr)));
      return this.defaults.get(host);
    }
    return this.search(host, [clientNamespace, serviceNamespace, ROOT_NAMESPACE], (dr) => exportedTo(dr.spec.exportTo, dr.metadata.namespace, clientNamespace));
  }

  private search(host: string, namespaces: readonly (string | undefined)[], visible: (dr: DestinationRule) => boolean): DestinationRule | undefined {
    for (const ns of new Set(namespaces)) {
      if (ns === undefined) continue;
      const per = this.byNamespace.get(ns);
      if (!per) continue;
      const exact = per.exact.get(host)?.find(visible);
      if (exact) return exact;
      for (const w of per.wildcard) {
        const dr = hostMatches(w.pattern, host) ? w.drs.find(visible) : undefined;
        if (dr) return dr;
      }
    }
    return undefined;
  }
}

/** Seen by every namespace: exportTo unset, empty, or "*". */
function everywhere(dr: DestinationRule): boolean {
  const e = dr.spec.exportTo;
  return !e || e.length === 0 || e.includes('*');
}

/** Istio's merge of a later rule for the same host into an older one. */
function merge(first: DestinationRule, later: DestinationRule): DestinationRule {
  const names = new Set((first.spec.subsets ?? []).map((s) => s.name));
  const subsets = [...(first.spec.subsets ?? []), ...(later.spec.subsets ?? []).filter((s) => !names.has(s.name))];
  const trafficPolicy = first.spec.trafficPolicy ?? later.spec.trafficPolicy;
  return { ...first, spec: { ...first.spec, ...(trafficPolicy !== undefined ? { trafficPolicy } : {}), subsets } };
}

/** The rule of a host, for code that asks by host alone. */
export type DrLookup = (host: string) => DestinationRule | undefined;
