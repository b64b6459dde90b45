// PURE: the services of a mesh snapshot, as translate/ sees them, per host and port:
//   - those of Weft's own workloads: every workload that registered under one name in one
//     namespace, as a Kubernetes Service would group its pods;
//   - those of ServiceEntries (Istio's way to add services outside the mesh, or beside it), with
//     their endpoints: inline, selected WorkloadEntries and workloads, DNS names, or the original
//     destination (resolution NONE);
// the names clients may call them by; and the DestinationRule that applies to each host.
import type { DestinationRule, Destination, ServiceEntry, ServicePort, VirtualService, WorkloadEntrySpec } from '../../api/types.ts';
import { type PortHandling, type Protocol, handlingOf, parseProtocol, selectProtocol } from '../model/protocol.ts';
import { type MeshSnapshot, type Workload, DOMAIN_SUFFIX, fqdn, hostMatches, labelsMatch, localityOf, workloadPorts } from '../model/model.ts';
import { type PolicyTarget, portMtlsMode, workloadMtls } from '../../api/peer-auth.ts';
import { type EndpointIdentity, TLS_MODE_ISTIO, TLS_MODE_LABEL } from './mtls.ts';

/** One endpoint of a service: where a client sidecar connects, and the labels subsets select by. */
export interface ServiceEndpoint {
  /** Orders endpoints in the output: the proxy id, or the resource and index that declared it. */
  id: string;
  /** An IP address, or a DNS name (DNS resolution). */
  address: string;
  port: number;
  labels: Readonly<Record<string, string>>;
  healthy: boolean;
  /** "region/zone/subzone", or "" (model.ts localityOf). */
  locality: string;
  /** A WorkloadEntry's (or ServiceEntry endpoint's) weight: its share against the others' (Envoy's load_balancing_weight); unset is 1. */
  weight?: number;
  /** Set when the endpoint takes mTLS (Istio's tlsMode=istio): whom its certificate names. */
  identity?: EndpointIdentity;
  /** Its sidecar runs Istio's TCP metadata exchange (a Weft sidecar that says so; a WorkloadEntry's is taken to, as Istio's are). */
  peerExchange?: boolean;
}

/**
 * How a service's cluster finds its endpoints, as Istio chooses the Envoy cluster type: EDS for
 * workloads and STATIC ServiceEntries, STRICT_DNS for DNS, LOGICAL_DNS for DNS_ROUND_ROBIN, and
 * ORIGINAL_DST (the address the client asked for) for NONE and DYNAMIC_DNS.
 */
export type Discovery = 'EDS' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'ORIGINAL_DST';

/** A service on one port. */
export interface Service {
  host: string; // fqdn, or a ServiceEntry host as written
  namespace: string;
  port: number;
  /** The port's protocol: from its name and appProtocol (the first workload's, by proxy id), or the ServiceEntry port's protocol. */
  protocol: Protocol;
  /** How the port is handled, by its protocol. */
  handling: PortHandling;
  discovery: Discovery;
  endpoints: ServiceEndpoint[];
  /** A ServiceEntry's exportTo (unset: every namespace; workloads' services are seen everywhere). */
  exportTo?: readonly string[];
  /** More names clients may use for it: a ServiceEntry's addresses (plain IPs). */
  addresses: readonly string[];
  /** A ServiceEntry port's targetPort: with resolution NONE, the port connections go to. */
  targetPort?: number;
  /** A ServiceEntry's subjectAltNames: what TLS a DestinationRule originates (SIMPLE, MUTUAL) checks when the rule names none. */
  subjectAltNames?: readonly string[];
}

export function serviceKey(host: string, port: number): string {
  return `${host}:${port}`;
}

/**
 * The services of a mesh, keyed by host:port, in key order. A host:port that Weft's workloads
 * serve is theirs; among ServiceEntries, the oldest that names it wins.
 */
export function servicesOf(mesh: Pick<MeshSnapshot, 'workloads' | 'serviceEntries' | 'workloadEntries' | 'peerAuthentications'>): Map<string, Service> {
  const out = new Map<string, Service>();
  const mtls = mtlsOf(mesh);
  for (const w of [...mesh.workloads].sort((a, b) => a.proxyId.localeCompare(b.proxyId))) {
    if (!w.service) continue;
    const host = fqdn(w.service, w.namespace);
    for (const p of workloadPorts(w)) {
      const protocol = selectProtocol(p);
      const handling = handlingOf(protocol);
      if (handling === 'udp') continue;
      const key = serviceKey(host, p.port);
      let s = out.get(key);
      if (!s) {
        s = { host, namespace: w.namespace, port: p.port, protocol, handling, discovery: 'EDS', endpoints: [], addresses: [] };
        out.set(key, s);
      }
      s.endpoints.push({ id: w.proxyId, address: w.address, port: p.inboundPort, labels: w.labels, healthy: w.healthy, locality: localityOf(w.labels), ...mtls.ofWorkload(w, p.port) });
    }
  }
  for (const se of byPrecedence(mesh.serviceEntries ?? [])) {
    const discovery = discoveryOf(se.spec.resolution);
    const addresses = (se.spec.addresses ?? []).filter((a) => !a.includes('/'));
    for (const host of se.spec.hosts) {
      for (const p of se.spec.ports ?? []) {
        const protocol = parseProtocol(p.protocol ?? '');
        const handling = handlingOf(protocol);
        const key = serviceKey(host, p.number);
        if (handling === 'udp' || out.has(key)) continue;
        out.set(key, {
          host,
          namespace: se.metadata.namespace,
          port: p.number,
          protocol,
          handling,
          discovery,
          endpoints: serviceEntryEndpoints(se, host, p, discovery, mesh, mtls),
          exportTo: se.spec.exportTo,
          addresses,
          ...(p.targetPort ? { targetPort: p.targetPort } : {}),
          ...(se.spec.subjectAltNames?.length ? { subjectAltNames: se.spec.subjectAltNames } : {}),
        });
      }
    }
  }
  return new Map([...out.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

function discoveryOf(resolution: ServiceEntry['spec']['resolution']): Discovery {
  if (resolution === 'STATIC') return 'EDS';
  if (resolution === 'DNS') return 'STRICT_DNS';
  if (resolution === 'DNS_ROUND_ROBIN') return 'LOGICAL_DNS';
  return 'ORIGINAL_DST'; // NONE (the default) and DYNAMIC_DNS
}

/**
 * A ServiceEntry's endpoints on one port, as Istio builds them: its inline endpoints, or the
 * WorkloadEntries and workloads of its namespace that its workloadSelector selects; with neither,
 * a DNS ServiceEntry resolves its host itself. An endpoint's port is the one it names for the
 * port, else the port's targetPort, else the port's number. Unix socket addresses are left out
 * (support.ts warns of them).
 */
function serviceEntryEndpoints(se: ServiceEntry, host: string, p: ServicePort, discovery: Discovery, mesh: Pick<MeshSnapshot, 'workloads' | 'workloadEntries'>, mtls: MtlsOf): ServiceEndpoint[] {
  if (discovery === 'ORIGINAL_DST') return [];
  const ns = se.metadata.namespace;
  const id = (kind: string, name: string, i = 0) => `${kind}/${ns}/${name}/${String(i).padStart(5, '0')}`;
  // Own properties only: a port named "constructor" is a port name, not Object's.
  const portOf = (ports: Record<string, number> | undefined) => (ports && Object.hasOwn(ports, p.name) ? ports[p.name] : undefined) ?? p.targetPort ?? p.number;
  const out: ServiceEndpoint[] = [];
  if (se.spec.workloadSelector) {
    const selector = se.spec.workloadSelector.labels;
    for (const we of byPrecedence(mesh.workloadEntries ?? [])) {
      if (we.metadata.namespace !== ns || !labelsMatch(selector, we.spec.labels ?? {}) || !usable(we.spec.address)) continue;
      out.push({ id: id('WorkloadEntry', we.metadata.name), address: we.spec.address!, port: portOf(we.spec.ports), labels: we.spec.labels ?? {}, healthy: true, locality: localityOf(we.spec.labels ?? {}, we.spec.locality), ...weightOf(we.spec.weight), ...mtls.ofWorkloadEntry(we.metadata.namespace, we.spec, p.number) });
    }
    for (const w of mesh.workloads) {
      if (w.namespace !== ns || !labelsMatch(selector, w.labels)) continue;
      // The workload's port of that name, else of that number: its sidecar's inbound listener.
      const ports = workloadPorts(w);
      const wp = ports.find((x) => x.name === p.name) ?? ports.find((x) => x.port === p.number || x.appPort === (p.targetPort ?? p.number));
      if (wp) out.push({ id: `workload/${w.proxyId}`, address: w.address, port: wp.inboundPort, labels: w.labels, healthy: w.healthy, locality: localityOf(w.labels), ...mtls.ofWorkload(w, wp.port) });
    }
    return out;
  }
  (se.spec.endpoints ?? []).forEach((e, i) => {
    if (usable(e.address)) out.push({ id: id('ServiceEntry', se.metadata.name, i), address: e.address!, port: portOf(e.ports), labels: e.labels ?? {}, healthy: true, locality: localityOf(e.labels ?? {}, e.locality), ...weightOf(e.weight) });
  });
  // No endpoints and no selector: a DNS entry resolves its host itself (Istio's rule).
  if (!se.spec.endpoints?.length && (discovery === 'STRICT_DNS' || discovery === 'LOGICAL_DNS') && !host.startsWith('*')) {
    out.push({ id: id('ServiceEntry', se.metadata.name), address: host, port: p.targetPort ?? p.number, labels: {}, healthy: true, locality: '' });
  }
  return out;
}

/** Which endpoints take mTLS, and whom they prove to be (`identity`, where one does). */
interface MtlsOf {
  ofWorkload(w: Workload, servicePort: number): { identity?: EndpointIdentity; peerExchange?: boolean };
  ofWorkloadEntry(namespace: string, we: WorkloadEntrySpec, servicePort: number): { identity?: EndpointIdentity; peerExchange?: boolean };
}

/**
 * An endpoint takes mTLS when its sidecar can (a Weft workload that proved its identity with a
 * certificate; a WorkloadEntry labelled security.istio.io/tlsMode: istio, as Istio reads the
 * label) and its own PeerAuthentication mode for the port is not DISABLE: clients then send it
 * plaintext, as Istio's endpoint builder drops tlsMode for such endpoints. A ServiceEntry's inline
 * endpoints never do: nothing says a sidecar runs there.
 */
function mtlsOf(mesh: Pick<MeshSnapshot, 'peerAuthentications'>): MtlsOf {
  const policies = mesh.peerAuthentications ?? [];
  const enabled = (who: PolicyTarget, port: number) => policies.length === 0 || portMtlsMode(workloadMtls(policies, who), port) !== 'DISABLE';
  return {
    ofWorkload: (w, port) => (w.serviceAccount !== undefined && enabled(w, port) ? { identity: { namespace: w.namespace, serviceAccount: w.serviceAccount }, ...(w.peerExchange ? { peerExchange: true } : {}) } : {}),
    ofWorkloadEntry: (namespace, we, port) => {
      const labels = we.labels ?? {};
      if (labels[TLS_MODE_LABEL] !== TLS_MODE_ISTIO || !enabled({ namespace, labels }, port)) return {};
      return { identity: { namespace, ...(we.serviceAccount ? { serviceAccount: we.serviceAccount } : {}) }, peerExchange: true };
    },
  };
}

/** An endpoint's weight where it has one (0 or unset: 1, as in Istio). */
function weightOf(w: number | undefined): { weight?: number } {
  return w && w > 1 ? { weight: w } : {};
}

/** An endpoint address the sidecar can dial: not a unix socket (support.ts warns of those), not empty. */
function usable(address: string | undefined): boolean {
  return !!address && !address.startsWith('unix://');
}

/** The ports the services of a host are reached on, in order. */
export function portsOf(services: ReadonlyMap<string, Service>, host: string): number[] {
  const out: number[] = [];
  for (const s of services.values()) if (s.host === host) out.push(s.port);
  return out;
}

/**
 * Resources in Istio's precedence: oldest first (the store's creation revision: resources applied
 * together are created in the order written), then by namespace/name, as Istio breaks ties.
 */
export function byPrecedence<T extends { metadata: { namespace: string; name: string }; created?: number }>(rs: readonly T[]): T[] {
  const key = (r: T) => `${r.metadata.namespace}/${r.metadata.name}`;
  return [...rs].sort((a, b) => (a.created ?? Infinity) - (b.created ?? Infinity) || key(a).localeCompare(key(b)));
}

/** Is a subset of a host defined by its DestinationRule? The default subset ("") always is. */
export function subsetDefined(drFor: (host: string) => DestinationRule | undefined, host: string, subset: string): boolean {
  return subset === '' || (drFor(host)?.spec.subsets ?? []).some((s) => s.name === subset);
}

/** VirtualServices that apply to sidecars: no `gateways`, or `mesh` among them. */
export function appliesToMesh(vs: VirtualService): boolean {
  return !vs.spec.gateways || vs.spec.gateways.length === 0 || vs.spec.gateways.includes('mesh');
}

/** Where a destination goes: its host, subset and port. */
export type Target = { host: string; subset: string; port: number };

/**
 * Where a route destination goes: its host resolved in the VirtualService's namespace, and its
 * port: the one given, else the port being routed if the destination serves it, else the
 * destination's first port.
 */
export function resolveDestination(vs: VirtualService, d: Destination, routedPort: number, services: ReadonlyMap<string, Service>): Target {
  const host = fqdn(d.host, vs.metadata.namespace);
  const known = portsOf(services, host);
  const port = d.port?.number ?? (known.includes(routedPort) ? routedPort : (known[0] ?? routedPort));
  return { host, port, subset: d.subset ?? '' };
}

/**
 * The ports a VirtualService host is routed on: those of every service the host matches (a
 * wildcard host may match several), or 80 for an exact host no service serves yet.
 */
export function routedPorts(host: string, services: ReadonlyMap<string, Service>): number[] {
  const ports = new Set<number>();
  for (const s of services.values()) if (hostMatches(host, s.host)) ports.add(s.port);
  if (ports.size === 0 && !host.startsWith('*')) ports.add(80);
  return [...ports];
}

const KUBE_HOST = new RegExp(`^([^.]+)\\.([^.]+)\\.${DOMAIN_SUFFIX.replaceAll('.', '\\.')}$`);

/**
 * The names a client in `proxyNamespace` may use for a host on a port, as Istio's sidecar routes
 * have them: the full name everywhere, "name.ns" and "name.ns.svc" everywhere, and the short
 * name only in the host's own namespace (another namespace may have a service of that name);
 * each with ":port", and bare where the port is HTTP's default. A ServiceEntry's addresses are
 * names too, as its VIPs are in Istio's routes.
 */
export function domainsFor(host: string, port: number, proxyNamespace: string, addresses: readonly string[] = []): string[] {
  const names = [host, ...addresses];
  const m = KUBE_HOST.exec(host);
  if (m) {
    const [, short, ns] = m;
    if (ns === proxyNamespace) names.push(short);
    names.push(`${short}.${ns}`, `${short}.${ns}.svc`);
  }
  const out: string[] = [];
  for (const n of names) {
    // An IPv6 address is bracketed in an authority, as a client sends it.
    const name = n.includes(':') ? `[${n}]` : n;
    if (port === 80) out.push(name);
    out.push(`${name}:${port}`);
  }
  return out;
}
