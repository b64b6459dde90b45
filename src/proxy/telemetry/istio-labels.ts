// The label values of Istio's standard metrics (istio.io "Istio Standard Metrics"), in Istio's
// names and order: who each end of an exchange is, and which service it was for. PURE.
//
// Where a value comes from:
//   - this sidecar's end: its workload and namespace (its certificate), its SPIFFE id, and its
//     workload labels (the sidecar's --label options, which `weft up` fills from the mesh file's
//     `labels`) for app, version and the canonical service and revision, with Istio's fallbacks;
//   - the other end: what its mTLS certificate proves (SPIFFE id, its namespace, the workload the
//     certificate names), and its app, version and canonical service/revision from Istio's metadata
//     exchange (http/peer-metadata.ts: the x-envoy-peer-metadata headers; tcp/peer-exchange.ts: the
//     istio-peer-exchange frames of a TCP connection), believed only over mTLS and where they name
//     the certificate's namespace and workload; "unknown" where the peer sent none. Without mTLS
//     every value of the other end is "unknown".

import type { PeerMetadata } from '../http/peer-metadata.ts';
import { spiffeNamespace } from '../../util/spiffe.ts';

export const UNKNOWN = 'unknown';
/** Istio's default cluster id (CLUSTER_ID) of a single-cluster mesh, which every Weft mesh is. */
export const CLUSTER = 'Kubernetes';

/** The labels of istio_requests_total and Istio's HTTP histograms, in Istio's order. */
export const REQUEST_LABELS = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_service_name',
  'destination_service_namespace',
  'destination_cluster',
  'request_protocol',
  'response_code',
  'grpc_response_status',
  'response_flags',
  'connection_security_policy',
] as const;

/** The labels of Istio's TCP metrics: the request labels without response_code and grpc_response_status. */
export const TCP_LABELS = REQUEST_LABELS.filter((l) => l !== 'response_code' && l !== 'grpc_response_status');

/** One end of an exchange, as the metrics name it. */
export interface Peer {
  workload: string;
  namespace: string;
  principal: string;
  app: string;
  version: string;
  canonicalService: string;
  canonicalRevision: string;
  cluster: string;
}

/** This workload's own end, from its name, namespace and labels, with Istio's fallbacks. */
export function selfPeer(workload: string, namespace: string, labels: Record<string, string>): Omit<Peer, 'principal'> {
  const l = (k: string) => labels[k] || undefined;
  return {
    workload,
    namespace,
    app: l('app') ?? l('app.kubernetes.io/name') ?? UNKNOWN,
    version: l('version') ?? l('app.kubernetes.io/version') ?? UNKNOWN,
    // As Istio's CanonicalService: the canonical-name label, else app.kubernetes.io/name, else app, else the workload's name.
    canonicalService: l('service.istio.io/canonical-name') ?? l('app.kubernetes.io/name') ?? l('app') ?? workload,
    // ... and revision: the canonical-revision label, else app.kubernetes.io/version, else version, else "latest".
    canonicalRevision: l('service.istio.io/canonical-revision') ?? l('app.kubernetes.io/version') ?? l('version') ?? 'latest',
    cluster: CLUSTER,
  };
}


/** The other end, from what its mTLS certificate proves (its SPIFFE id and the workload it names); all "unknown" without one. */
export function provenPeer(principal: string | undefined, workload: string | undefined, meta?: PeerMetadata): Peer {
  if (!principal) return UNKNOWN_PEER;
  const p = { ...UNKNOWN_PEER, workload: workload ?? UNKNOWN, namespace: spiffeNamespace(principal) ?? UNKNOWN, principal, cluster: CLUSTER };
  if (!meta) return p;
  // What the peer said of itself by the metadata exchange (http/peer-metadata.ts believes it only
  // where it names the certificate's namespace and workload): its labels, as Istio takes them. Its
  // workload stays the certificate's.
  return {
    ...p,
    app: meta.app ?? UNKNOWN,
    version: meta.version ?? UNKNOWN,
    canonicalService: meta.canonicalService ?? UNKNOWN,
    canonicalRevision: meta.canonicalRevision ?? UNKNOWN,
    cluster: meta.cluster ?? CLUSTER,
  };
}

const UNKNOWN_PEER: Peer = { workload: UNKNOWN, namespace: UNKNOWN, principal: UNKNOWN, app: UNKNOWN, version: UNKNOWN, canonicalService: UNKNOWN, canonicalRevision: UNKNOWN, cluster: UNKNOWN };

/** destination_service, _name and _namespace of a service host ("reviews.default.svc.cluster.local"). */
export function serviceLabels(host: string | undefined): [string, string, string] {
  if (!host) return [UNKNOWN, UNKNOWN, UNKNOWN];
  const m = /^([^.]+)\.([^.]+)\.svc\./.exec(host);
  // A host outside the cluster's domain (a ServiceEntry's): its name is the host, its namespace unknown here.
  return m ? [host, m[1]!, m[2]!] : [host, host, UNKNOWN];
}

/** The service host of an outbound cluster (outbound|port|subset|host); Istio's names for the passthrough and black-hole clusters. */
export function clusterService(cluster: string): [string, string, string] {
  if (cluster.startsWith('outbound|')) return serviceLabels(cluster.split('|')[3] || undefined);
  if (cluster === 'PassthroughCluster' || cluster === 'BlackHoleCluster') return [cluster, cluster, UNKNOWN];
  return [UNKNOWN, UNKNOWN, UNKNOWN];
}

/** reporter and the identity labels up to destination_cluster, in REQUEST_LABELS order. */
export function edgeLabels(reporter: 'source' | 'destination', src: Peer, dst: Peer, service: [string, string, string]): string[] {
  return [
    reporter,
    src.workload, src.canonicalService, src.canonicalRevision, src.namespace, src.principal, src.app, src.version, src.cluster,
    dst.workload, dst.namespace, dst.principal, dst.app, dst.version,
    service[0], dst.canonicalService, dst.canonicalRevision, service[1], service[2], dst.cluster,
  ];
}
