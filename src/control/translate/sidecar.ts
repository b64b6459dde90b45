// PURE: Istio's Sidecar resource, as it shapes one proxy's outbound config:
//   - which Sidecar applies: one in the proxy's namespace whose workloadSelector selects it, else
//     the one of its namespace without a selector, else the mesh default (the root namespace's,
//     without a selector); oldest (namespace/name order) first where several could;
//   - egress.hosts ("namespace/dnsName") limits the services and VirtualServices the proxy sees,
//     and so the routes and clusters it is sent;
//   - outboundTrafficPolicy: what the proxy does with a host the mesh does not know. ALLOW_ANY
//     (Istio's default) passes it through to where the app asked; REGISTRY_ONLY answers 502.
import type { Sidecar } from '../../api/types.ts';
import { type Workload, ROOT_NAMESPACE, hostMatches, labelsMatch } from '../model/model.ts';
import { byPrecedence } from './services.ts';

/** The key of a Sidecar: "namespace/name". */
export function sidecarKey(sc: Sidecar): string {
  return `${sc.metadata.namespace}/${sc.metadata.name}`;
}

/** The Sidecar that applies to a proxy, if any. */
export function sidecarFor(all: readonly Sidecar[] | undefined, proxy: Pick<Workload, 'namespace' | 'labels'>): Sidecar | undefined {
  if (!all?.length) return undefined;
  const sorted = byPrecedence(all);
  const selector = (sc: Sidecar) => sc.spec.workloadSelector?.labels;
  return (
    sorted.find((sc) => sc.metadata.namespace === proxy.namespace && selector(sc) && Object.keys(selector(sc)!).length > 0 && labelsMatch(selector(sc), proxy.labels)) ??
    sorted.find((sc) => sc.metadata.namespace === proxy.namespace && !selector(sc)) ??
    sorted.find((sc) => sc.metadata.namespace === ROOT_NAMESPACE && !selector(sc))
  );
}

export type OutboundPolicy = 'ALLOW_ANY' | 'REGISTRY_ONLY';

/** What one proxy may reach: the egress hosts of its Sidecar (none: everything), and what happens to unknown hosts. */
export interface Egress {
  /** "namespace/dnsName" pairs, "." resolved; undefined when the proxy sees every service. */
  hosts?: readonly { namespace: string; host: string }[];
  policy: OutboundPolicy;
}

export const OPEN_EGRESS: Egress = { policy: 'ALLOW_ANY' };

/**
 * The egress of a Sidecar for a proxy in `proxyNamespace`. "." is the Sidecar's namespace, or, in
 * the mesh default (root namespace), the proxy's; "~" is no namespace (those hosts are dropped).
 */
export function egressOf(sc: Sidecar | undefined, proxyNamespace: string): Egress {
  if (!sc) return OPEN_EGRESS;
  const policy = sc.spec.outboundTrafficPolicy?.mode ?? 'ALLOW_ANY';
  const listener = sc.spec.egress?.[0];
  if (!listener) return { policy };
  const own = sc.metadata.namespace === ROOT_NAMESPACE ? proxyNamespace : sc.metadata.namespace;
  const hosts: { namespace: string; host: string }[] = [];
  for (const h of listener.hosts) {
    const slash = h.indexOf('/');
    const ns = slash < 0 ? '*' : h.slice(0, slash);
    const host = slash < 0 ? h : h.slice(slash + 1);
    if (ns === '~') continue;
    hosts.push({ namespace: ns === '.' ? own : ns, host });
  }
  return { hosts, policy };
}

/** Does the egress let a proxy see `host`, declared in namespace `namespace`? */
export function egressAllows(e: Egress, namespace: string, host: string): boolean {
  if (!e.hosts) return true;
  return e.hosts.some((x) => (x.namespace === '*' || x.namespace === namespace) && hostMatches(x.host, host));
}
