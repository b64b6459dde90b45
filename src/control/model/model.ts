// The control plane's view of the mesh at one instant: config from the store plus workloads
// from the registry. Immutable once built; translate/ reads nothing else.
import type { MeshConfig } from '../../api/meshconfig.ts';
import type { AuthorizationPolicy, DestinationRule, GatewayGRPCRoute, GatewayHTTPRoute, LocalRateLimit, PeerAuthentication, RequestAuthentication, ServiceEntry, Sidecar, Telemetry, VirtualService, WorkloadEntry } from '../../api/types.ts';
import type { PortMeta } from '../../xds/node-meta.ts';

export const DEFAULT_NAMESPACE = 'default';
export const DOMAIN_SUFFIX = 'svc.cluster.local';

/** One running instance of a workload, as its sidecar described it when it connected. */
export interface Workload {
  /** The xDS node id of its sidecar; unique per connected proxy. */
  proxyId: string;
  name: string; // e.g. "hello-v1"
  namespace: string;
  /**
   * The service account its certificate proves (spiffe://<td>/ns/<namespace>/sa/<this>); absent
   * for a proxy on the insecure xDS port, which proved nothing.
   */
  serviceAccount?: string;
  /** The service it serves, if any (a pure client serves none). */
  service?: string;
  /** The port clients address the service on (the Istio "service port"); 80 by default. */
  servicePort: number;
  labels: Record<string, string>;
  /** Where its sidecar's inbound listener accepts traffic: the endpoint other sidecars dial. */
  address: string;
  inboundPort?: number;
  /** The app's own port, behind the inbound listener. */
  appPort?: number;
  /** The sidecar's outbound (HTTP proxy) listener port on loopback. */
  outboundPort?: number;
  /** Its sidecar's admin endpoint port, on the address its xDS connection comes from (metrics, tap). */
  adminPort?: number;
  /**
   * Every service port, as a Kubernetes Service declares them. When set, servicePort, inboundPort
   * and appPort repeat its first entry; when absent, the workload has the one HTTP port those
   * three describe (see workloadPorts).
   */
  ports?: WorkloadPort[];
  healthy: boolean;
  /**
   * Its proxy runs Istio's TCP metadata exchange (a Weft sidecar that says so in its node, an Istio
   * proxy). Unset (a stock Envoy, an older Weft sidecar, a workload registered before the flag was):
   * it is given no exchange, and clients do not offer it the exchange's protocol.
   */
  peerExchange?: boolean;
}

/** One service port of a workload, with the sidecar inbound listener and app port behind it. */
export type WorkloadPort = PortMeta;

/** A workload's service ports: its declared ones, or the single HTTP port of the older fields. */
export function workloadPorts(w: Workload): WorkloadPort[] {
  if (w.ports && w.ports.length) return w.ports;
  if (w.inboundPort === undefined || w.appPort === undefined) return [];
  return [{ name: 'http', port: w.servicePort, inboundPort: w.inboundPort, appPort: w.appPort }];
}

export interface MeshSnapshot {
  /** Store revision of the config this snapshot holds. */
  revision: number;
  virtualServices: readonly VirtualService[];
  destinationRules: readonly DestinationRule[];
  /** Weft's LocalRateLimit resources (api/ratelimit.ts). */
  rateLimits?: readonly LocalRateLimit[];
  workloads: readonly Workload[];
  /** Services outside Weft's own processes (or beside them): translate/services.ts. */
  serviceEntries?: readonly ServiceEntry[];
  /** Endpoints a ServiceEntry's workloadSelector can select. */
  workloadEntries?: readonly WorkloadEntry[];
  /** What each proxy sees, and what it does with hosts it does not know (translate/sidecar.ts). */
  sidecars?: readonly Sidecar[];
  /** The Gateway API's mesh routes (translate/gamma.ts makes VirtualServices of them). */
  httpRoutes?: readonly GatewayHTTPRoute[];
  grpcRoutes?: readonly GatewayGRPCRoute[];
  /** Which mTLS mode each workload's sidecar takes on each port (api/peer-auth.ts). */
  peerAuthentications?: readonly PeerAuthentication[];
  /** Who may call each workload (translate/authz.ts makes its sidecar's RBAC filters). */
  authorizationPolicies?: readonly AuthorizationPolicy[];
  /** Which JWTs each workload's sidecar verifies (translate/jwt.ts). */
  requestAuthentications?: readonly RequestAuthentication[];
  /** What each workload's sidecar logs, measures and traces (api/telemetry-select.ts picks them; translate/accesslog.ts applies access logging). */
  telemetries?: readonly Telemetry[];
  /** The trust domain of the mesh's SPIFFE ids (spiffe://<this>/ns/.../sa/...): meshConfig.trustDomain, which the CA issues in; 'cluster.local' when unset. */
  trustDomain?: string;
  /** issuer -> jwks_uri, found by OpenID discovery (control/oidc.ts) for RequestAuthentication rules with neither jwks nor jwksUri. */
  discoveredJwksUris?: ReadonlyMap<string, string>;
  /** Istio's mesh config, from the ConfigMap istio-system/istio (api/meshconfig.ts); Istio's defaults when absent. */
  meshConfig?: MeshConfig;
  /** The control plane's OTLP/HTTP receiver, where sidecars send spans when no tracing provider is configured (translate/tracing.ts). */
  tracesReceiver?: { address: string; port: number };
}

/** Istio's default trust domain, and Weft's when the snapshot names none. */
export { DEFAULT_TRUST_DOMAIN } from '../../util/spiffe.ts';

/** Istio's root namespace: a Sidecar here without a workloadSelector is the mesh-wide default (api's, which `weft analyze` shares). */
export { ROOT_NAMESPACE } from '../../api/rules.ts';

/** "my-backend-service" in namespace "default" -> "my-backend-service.default.svc.cluster.local" (api's, whose suffix is DOMAIN_SUFFIX). */
export { fqdn } from '../../api/rules.ts';

/** Istio's cluster naming: "outbound|80|v1|my-backend-service.default.svc.cluster.local". */
export function outboundClusterName(port: number, subset: string, host: string): string {
  return `outbound|${port}|${subset}|${host}`;
}

export function inboundClusterName(port: number): string {
  return `inbound|${port}||`;
}

/**
 * What a proxy's outbound config depends on besides the mesh: its namespace (short names,
 * exportTo, sourceNamespace) and those of its labels some VirtualService's sourceLabels name. Two
 * proxies with the same scope get the same routes, so a push translates routes once per scope.
 */
export interface ProxyScope {
  namespace: string;
  /** The proxy's labels, reduced to the keys that some match's sourceLabels uses. */
  labels: Record<string, string>;
  /** The Sidecar resource that applies to the proxy ("namespace/name"), if any. */
  sidecar?: string;
  /** The DestinationRules of its namespace whose workloadSelector selects it ("namespace/name"), if any. */
  selectedRules?: string[];
  /** Its locality ("region/zone/subzone"), where it has one and some endpoint of the mesh has one: locality load balancing orders endpoints by it. */
  locality?: string;
  /** The Telemetries with a selector that select it ("namespace/name"), if any: with its namespace, they decide its telemetry (api/telemetry-select.ts). */
  telemetries?: string[];
}

/**
 * Istio's exportTo: is a resource of namespace `own` visible to proxies in `ns`? Unset or empty
 * means everywhere (the mesh default); "." is the resource's own namespace, "*" every namespace,
 * "~" none, anything else a namespace by name.
 */
export function exportedTo(exportTo: readonly string[] | undefined, own: string, ns: string): boolean {
  if (!exportTo || exportTo.length === 0) return true;
  return exportTo.some((e) => e === '*' || (e === '.' ? own === ns : e === ns));
}

/** Does a host pattern ("reviews.default.svc.cluster.local", "*.default.svc.cluster.local", "*") match a host? */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*')) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1;
  return pattern === host;
}

export { labelsMatch } from '../../api/rules.ts';

/** Istio's locality labels: the pod label, or the Kubernetes node's topology labels. */
export const LOCALITY_LABEL = 'istio-locality';
const REGION_LABEL = 'topology.kubernetes.io/region';
const ZONE_LABEL = 'topology.kubernetes.io/zone';
const SUBZONE_LABEL = 'topology.istio.io/subzone';

/**
 * Where a workload runs, "region/zone/subzone" ("" when nowhere in particular), as Istio finds
 * it: a locality given outright (a WorkloadEntry's `locality`), else the `istio-locality` label
 * (dots for slashes, as label values cannot hold a slash), else the topology labels.
 */
/**
 * A workload's labels with the topology labels its locality gives (Istio's AugmentLabels: region,
 * zone and subzone from the locality, over any of the same name), as failoverPriority compares them.
 */
export function withTopology(labels: Readonly<Record<string, string>>, locality: string): Readonly<Record<string, string>> {
  if (!locality) return labels;
  const [region = '', zone = '', subzone = ''] = locality.split('/');
  return { ...labels, ...(region ? { [REGION_LABEL]: region } : {}), ...(zone ? { [ZONE_LABEL]: zone } : {}), ...(subzone ? { [SUBZONE_LABEL]: subzone } : {}) };
}

export function localityOf(labels: Readonly<Record<string, string>>, given?: string): string {
  if (given) return given;
  const l = labels[LOCALITY_LABEL];
  if (l) return l.replaceAll('.', '/');
  const parts = [labels[REGION_LABEL] ?? '', labels[ZONE_LABEL] ?? '', labels[SUBZONE_LABEL] ?? ''];
  while (parts.length && parts[parts.length - 1] === '') parts.pop();
  return parts.join('/');
}
