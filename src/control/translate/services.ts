// PURE: the services of a mesh snapshot, as translate/ sees them: every workload that registered
// under one name in one namespace, per service port; the names clients may call them by; and the
// DestinationRule that applies to each host.
import type { DestinationRule, Destination, VirtualService } from '../../api/types.ts';
import { type PortHandling, portHandling } from '../model/protocol.ts';
import { type Workload, DOMAIN_SUFFIX, fqdn, hostMatches, workloadPorts } from '../model/model.ts';

/** A service: all workloads that registered under one name in one namespace, on one port. */
export interface Service {
  host: string; // fqdn
  namespace: string;
  shortName: string;
  port: number;
  /** How the port is handled, from its name and appProtocol (the first workload's, by proxy id). */
  handling: PortHandling;
  /** Each serving workload with the inbound listener port that serves this service port. */
  members: { w: Workload; inboundPort: number }[];
}

export function serviceKey(host: string, port: number): string {
  return `${host}:${port}`;
}

/** The services of a set of workloads, keyed by host:port, in key order. */
export function servicesOf(workloads: readonly Workload[]): Map<string, Service> {
  const out = new Map<string, Service>();
  for (const w of [...workloads].sort((a, b) => a.proxyId.localeCompare(b.proxyId))) {
    if (!w.service) continue;
    const host = fqdn(w.service, w.namespace);
    for (const p of workloadPorts(w)) {
      const handling = portHandling(p);
      if (handling === 'udp') continue;
      const key = serviceKey(host, p.port);
      let s = out.get(key);
      if (!s) {
        s = { host, namespace: w.namespace, shortName: w.service, port: p.port, handling, members: [] };
        out.set(key, s);
      }
      s.members.push({ w, inboundPort: p.inboundPort });
    }
  }
  return new Map([...out.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

/** The ports the services of a host are reached on, in order. */
export function portsOf(services: ReadonlyMap<string, Service>, host: string): number[] {
  const out: number[] = [];
  for (const s of services.values()) if (s.host === host) out.push(s.port);
  return out;
}

/** Resources in Istio's precedence: oldest first. Weft keeps no creation time, so namespace/name order stands in for it. */
export function byPrecedence<T extends { metadata: { namespace: string; name: string } }>(rs: readonly T[]): T[] {
  const key = (r: T) => `${r.metadata.namespace}/${r.metadata.name}`;
  return [...rs].sort((a, b) => key(a).localeCompare(key(b)));
}

export function destinationRulesByHost(drs: readonly DestinationRule[]): Map<string, DestinationRule> {
  const out = new Map<string, DestinationRule>();
  for (const dr of byPrecedence(drs)) {
    const host = fqdn(dr.spec.host, dr.metadata.namespace);
    if (!out.has(host)) out.set(host, dr);
  }
  return out;
}

/** Is a subset of a host defined by its DestinationRule? The default subset ("") always is. */
export function subsetDefined(drByHost: ReadonlyMap<string, DestinationRule>, host: string, subset: string): boolean {
  return subset === '' || (drByHost.get(host)?.spec.subsets ?? []).some((s) => s.name === subset);
}

/** VirtualServices that apply to sidecars: no `gateways`, or `mesh` among them. */
export function appliesToMesh(vs: VirtualService): boolean {
  return !vs.spec.gateways || vs.spec.gateways.length === 0 || vs.spec.gateways.includes('mesh');
}

/**
 * Where a route destination goes: its host resolved in the VirtualService's namespace, and its
 * port: the one given, else the port being routed if the destination serves it, else the
 * destination's first port.
 */
export function resolveDestination(vs: VirtualService, d: Destination, routedPort: number, services: ReadonlyMap<string, Service>): { host: string; port: number; subset: string } {
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
 * each with ":port", and bare where the port is HTTP's default.
 */
export function domainsFor(host: string, port: number, proxyNamespace: string): string[] {
  const names = [host];
  const m = KUBE_HOST.exec(host);
  if (m) {
    const [, short, ns] = m;
    if (ns === proxyNamespace) names.push(short);
    names.push(`${short}.${ns}`, `${short}.${ns}.svc`);
  }
  const out: string[] = [];
  for (const n of names) {
    if (port === 80) out.push(n);
    out.push(`${n}:${port}`);
  }
  return out;
}
