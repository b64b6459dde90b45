// PURE: Istio's Sidecar resource, as it shapes one proxy's outbound config:
//   - which Sidecar applies: one in the proxy's namespace whose workloadSelector selects it, else
//     the one of its namespace without a selector, else the mesh default (the root namespace's,
//     without a selector); the oldest first where several could;
//   - egress.hosts ("namespace/dnsName") limits the services and VirtualServices the proxy sees,
//     and so the routes and clusters it is sent; an egress listener with a port does so for the
//     services on that port, and the listener without one for the other ports (none: no service
//     on another port is seen), as Istio builds one listener per egress port;
//   - outboundTrafficPolicy: what the proxy does with a host the mesh does not know. ALLOW_ANY
//     (Istio's default) passes it through to where the app asked; REGISTRY_ONLY answers 502. A
//     Sidecar without one (or no Sidecar) takes the mesh config's outboundTrafficPolicy.mode.
import type { Sidecar } from '../../api/types.ts';
import { type Workload, ROOT_NAMESPACE, hostMatches, labelsMatch } from '../model/model.ts';
import { byPrecedence } from './services.ts';

/** The key of a Sidecar: "namespace/name". */
export function sidecarKey(sc: Sidecar): string {
  return `${sc.metadata.namespace}/${sc.metadata.name}`;
}

const sortedOf = new WeakMap<readonly Sidecar[], Sidecar[]>();

/**
 * The Sidecar that applies to a proxy, if any. A workloadSelector, even with no labels, makes a
 * Sidecar one that selects (an empty one selects every workload of its namespace, as in Istio).
 */
export function sidecarFor(all: readonly Sidecar[] | undefined, proxy: Pick<Workload, 'namespace' | 'labels'>): Sidecar | undefined {
  if (!all?.length) return undefined;
  let sorted = sortedOf.get(all);
  if (!sorted) sortedOf.set(all, (sorted = byPrecedence(all)));
  const selects = (sc: Sidecar) => sc.spec.workloadSelector !== undefined;
  return (
    sorted.find((sc) => sc.metadata.namespace === proxy.namespace && selects(sc) && labelsMatch(sc.spec.workloadSelector?.labels, proxy.labels)) ??
    sorted.find((sc) => sc.metadata.namespace === proxy.namespace && !selects(sc)) ??
    sorted.find((sc) => sc.metadata.namespace === ROOT_NAMESPACE && !selects(sc))
  );
}

export type OutboundPolicy = 'ALLOW_ANY' | 'REGISTRY_ONLY';

/** One egress listener's hosts: "namespace/dnsName" pairs, "." resolved, and the "~namespace/dnsName" left out even where `hosts` takes them. */
export interface EgressHosts {
  /** The service port it is for; undefined: every port no other listener names. */
  port?: number;
  hosts: readonly { namespace: string; host: string }[];
  excludes: readonly { namespace: string; host: string }[];
}

/** What one proxy may reach: the egress listeners of its Sidecar (none: everything), and what happens to unknown hosts. */
export interface Egress {
  /** Undefined when the proxy sees every service. */
  listeners?: readonly EgressHosts[];
  policy: OutboundPolicy;
  /** Who set the policy, for messages: "Sidecar <namespace>/<name>", "the mesh config", or none (Istio's default). */
  policyFrom?: string;
}

export const OPEN_EGRESS: Egress = { policy: 'ALLOW_ANY' };

/**
 * The egress of a Sidecar for a proxy in `proxyNamespace`. "." is the Sidecar's namespace, or, in
 * the mesh default (root namespace), the proxy's; "~" is no namespace (those hosts are dropped);
 * "~ns/host" leaves that host of that namespace out, whatever else takes it (it can only narrow).
 */
export function egressOf(sc: Sidecar | undefined, proxyNamespace: string, meshPolicy?: OutboundPolicy): Egress {
  const own = sc?.spec.outboundTrafficPolicy?.mode;
  const policy = own ?? meshPolicy ?? 'ALLOW_ANY';
  const from = own ? { policyFrom: `Sidecar ${sidecarKey(sc!)}` } : meshPolicy ? { policyFrom: 'the mesh config' } : {};
  if (!sc) return policy === 'ALLOW_ANY' && !meshPolicy ? OPEN_EGRESS : { policy, ...from };
  if (!sc.spec.egress?.length) return { policy, ...from };
  const ownNs = sc.metadata.namespace === ROOT_NAMESPACE ? proxyNamespace : sc.metadata.namespace;
  // A listener on a unix socket (port 0) serves only apps that dial that socket: none here (support.ts warns).
  const listeners = sc.spec.egress.filter((l) => !l.port || (l.port.number ?? 0) !== 0).map((listener): EgressHosts => {
    const hosts: { namespace: string; host: string }[] = [];
    const excludes: { namespace: string; host: string }[] = [];
    for (const h of listener.hosts) {
      const slash = h.indexOf('/');
      const ns = slash < 0 ? '*' : h.slice(0, slash);
      const host = slash < 0 ? h : h.slice(slash + 1);
      if (ns === '~') continue;
      const into = ns.startsWith('~') ? excludes : hosts;
      const name = ns.startsWith('~') ? ns.slice(1) : ns;
      into.push({ namespace: name === '.' ? ownNs : name, host });
    }
    return { ...(listener.port ? { port: listener.port.number } : {}), hosts, excludes };
  });
  return { listeners, policy, ...from };
}

/**
 * Does the egress let a proxy see `host`, declared in namespace `namespace`, on `port` (the
 * listener for that port, else the one without a port)? With no port: on any port.
 */
export function egressAllows(e: Egress, namespace: string, host: string, port?: number): boolean {
  if (!e.listeners) return true;
  const takes = (x: { namespace: string; host: string }) => (x.namespace === '*' || x.namespace === namespace) && hostMatches(x.host, host);
  const allows = (l: EgressHosts) => l.hosts.some(takes) && !l.excludes.some(takes);
  if (port === undefined) return e.listeners.some(allows);
  const l = e.listeners.find((x) => x.port === port) ?? e.listeners.find((x) => x.port === undefined);
  return l !== undefined && allows(l);
}
