// What a proxy says about itself in its xDS node, as both sides understand it: the metadata keys
// Weft's sidecar sends and the control plane reads, and the node id format. No imports: the
// sidecar knows the control plane only through xDS and this file.

/** Keys of `node.metadata`. Envoy or a proxyless gRPC client that sends none is a pure client. */
export const META = {
  workload: 'WORKLOAD_NAME',
  namespace: 'NAMESPACE',
  labels: 'LABELS',
  service: 'SERVICE',
  servicePort: 'SERVICE_PORT',
  address: 'INBOUND_ADDRESS',
  inboundPort: 'INBOUND_PORT',
  appPort: 'APP_PORT',
  outboundPort: 'OUTBOUND_PORT',
  /** The sidecar's admin endpoint port (on the host its xDS connection comes from): the control plane scrapes its metrics there. */
  adminPort: 'ADMIN_PORT',
  /**
   * What the sidecar's /tap asks of its listener (Authorization: Bearer): random per process, told
   * only to the control plane over the mTLS xDS stream, so that only the control plane (which asks
   * for the admin token) can tap it. Never shown: not in the registry, not in /config_dump.
   */
  tapToken: 'TAP_TOKEN',
  /** false while the sidecar's probe of its app fails; absent or anything else means healthy. */
  healthy: 'HEALTHY',
  /**
   * "istio-peer-exchange": the sidecar runs Istio's TCP metadata exchange. A Weft sidecar without
   * it (an older one) is given no exchange, nor are endpoints of one offered it: both sides of a
   * connection must speak it, or a frame reaches an app.
   */
  peerExchange: 'PEER_EXCHANGE',
} as const;

/**
 * A workload with several service ports sends them all under this key (and its first one under
 * the single-port keys above), each as a PortMeta.
 */
export const META_PORTS = 'PORTS';

/** The ALPN protocol of Istio's TCP metadata exchange, and what a sidecar that runs it says under META.peerExchange. */
export const PEER_EXCHANGE_ALPN = 'istio-peer-exchange';

/** One service port of a workload, with the sidecar's inbound listener and the app port behind it. */
export interface PortMeta {
  /** The port's name, e.g. "http-web" or "tcp-db"; its prefix may choose the protocol. */
  name: string;
  /** The port clients address the service on. */
  port: number;
  /** Kubernetes' appProtocol, e.g. "grpc"; chooses the protocol before the name does. */
  appProtocol?: string;
  inboundPort: number;
  appPort: number;
}

/**
 * The parts of a node id, Istio's format: `sidecar~ADDRESS~POD.NAMESPACE~NAMESPACE.svc.cluster.local`.
 * Weft's sidecar makes POD its workload name and an instance suffix, as Kubernetes names pods
 * (`hello-v1-4711-3f9a2c`: pid and random hex), so that every running sidecar has its own id even
 * when several instances of one workload share an address, as they do on 127.0.0.1. The workload
 * name itself travels in the metadata (META.workload).
 */
export interface NodeIdParts {
  type: string; // "sidecar"
  address: string;
  pod: string;
  namespace: string;
  domain: string; // NAMESPACE.svc.cluster.local
}

export function formatNodeId(p: { address: string; pod: string; namespace: string }): string {
  return `sidecar~${p.address}~${p.pod}.${p.namespace}~${p.namespace}.svc.cluster.local`;
}

/** The parts of an Istio-style node id, or undefined if it is not one (Envoy and gRPC clients choose their own). */
export function parseNodeId(id: string): NodeIdParts | undefined {
  const parts = id.split('~');
  if (parts.length !== 4 || parts.some((x) => x === '')) return undefined;
  const [type, address, podNs, domain] = parts;
  // A namespace has no dots, so the pod name is everything before the last one.
  const dot = podNs.lastIndexOf('.');
  if (dot <= 0 || dot === podNs.length - 1) return undefined;
  return { type, address, pod: podNs.slice(0, dot), namespace: podNs.slice(dot + 1), domain };
}
