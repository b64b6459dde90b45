// Istio's metadata exchange over HTTP headers (istio/proxy's peer_metadata filter with its
// istio_headers method), where a listener's HCM has the istio.metadata_exchange filter
// (xds-client/convert.ts peerMetadataConfig):
//   - outbound (upstream discovery and propagation): a request to a mesh endpoint (the mesh's
//     mutual TLS) carries this workload's metadata, x-envoy-peer-metadata (base64 of a
//     google.protobuf.Struct of its node metadata, as Istio writes it) and x-envoy-peer-metadata-id
//     (its node id); the server's own, in its answer, are read and removed before the app sees it;
//   - inbound (downstream discovery and propagation): a request's are read and removed before the
//     app sees it, and every answer to a request that carried them carries this workload's.
// What a peer says of itself is taken only over mutual TLS, and only where it names the namespace
// its SPIFFE id proves and the workload its certificate names (Istio takes the headers from
// anyone): a peer's metadata gives Istio's metrics its app, version and canonical service and
// revision (telemetry/istio-metrics.ts). Each peer identity may bring at most MAX_PER_PEER
// different metadata in a process's life; a peer that changed them every request would otherwise
// make new series each time. PURE but for the cache.
import { decode, encode } from '../../xds/protos.ts';
import type { HeaderList } from './types.ts';

export const MX_HEADER = 'x-envoy-peer-metadata';
const STRUCT = 'type.googleapis.com/google.protobuf.Struct';
export const MX_ID_HEADER = 'x-envoy-peer-metadata-id';
export const MAX_PER_PEER = 8;
/** A header value past this is not decoded (a node's metadata is a few hundred bytes). */
export const MAX_VALUE = 8192;

/** Istio's canonical service labels on a workload (its injector sets them). */
const CANONICAL_NAME = 'service.istio.io/canonical-name';
const CANONICAL_REVISION = 'service.istio.io/canonical-revision';

/** What the metrics take of a peer's metadata; a label it does not have is undefined. */
export interface PeerMetadata {
  readonly workload: string | undefined;
  readonly namespace: string | undefined;
  readonly app: string | undefined;
  readonly version: string | undefined;
  readonly canonicalService: string | undefined;
  readonly canonicalRevision: string | undefined;
  readonly cluster: string | undefined;
}

/** This sidecar's own headers: made once at start from its node. */
export interface OwnMetadata {
  readonly id: string;
  readonly value: string;
}

/**
 * This workload's metadata as Istio's sidecars send it: the flat node's fields (NAME, NAMESPACE,
 * WORKLOAD_NAME, CLUSTER_ID, LABELS with the canonical service and revision the injector would have
 * set), in a google.protobuf.Struct, base64.
 */
export function ownMetadata(self: { nodeId: string; name: string; namespace: string; workload: string; cluster: string; labels: Record<string, string>; canonicalService: string; canonicalRevision: string }): OwnMetadata {
  const struct = {
    NAME: self.name,
    NAMESPACE: self.namespace,
    WORKLOAD_NAME: self.workload,
    CLUSTER_ID: self.cluster,
    LABELS: { ...self.labels, [CANONICAL_NAME]: self.canonicalService, [CANONICAL_REVISION]: self.canonicalRevision },
  };
  return { id: self.nodeId, value: Buffer.from(encode(STRUCT, struct)).toString('base64') };
}

/** A peer's x-envoy-peer-metadata; undefined where it is not base64 of a Struct. */
export function decodePeerMetadata(value: string): PeerMetadata | undefined {
  if (!value || value.length > MAX_VALUE || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) return undefined;
  let s: Record<string, unknown>;
  try {
    s = decode(STRUCT, Buffer.from(value, 'base64'));
  } catch {
    return undefined;
  }
  const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
  const labels = s.LABELS !== null && typeof s.LABELS === 'object' ? (s.LABELS as Record<string, unknown>) : {};
  return {
    workload: str(s.WORKLOAD_NAME),
    namespace: str(s.NAMESPACE),
    app: str(labels.app),
    version: str(labels.version),
    canonicalService: str(labels[CANONICAL_NAME]),
    canonicalRevision: str(labels[CANONICAL_REVISION]),
    cluster: str(s.CLUSTER_ID),
  };
}

/**
 * Takes the exchange's headers out of `headers` (in place): the value of x-envoy-peer-metadata
 * (the first), and whether either header came (Istio answers with its own only then).
 */
export function takeMetadataHeaders(headers: HeaderList): { value: string | undefined; received: boolean } {
  let value: string | undefined;
  let received = false;
  let w = 0;
  for (let i = 0; i < headers.length; i += 2) {
    const n = headers[i]!;
    if (n === MX_HEADER || n === MX_ID_HEADER) {
      received = true;
      if (n === MX_HEADER && value === undefined) value = headers[i + 1];
      continue;
    }
    if (w !== i) {
      headers[w] = n;
      headers[w + 1] = headers[i + 1]!;
    }
    w += 2;
  }
  headers.length = w;
  return { value, received };
}

/** `headers` with this workload's exchange headers in place of any the app sent (a new list where it had some). */
export function withOwnMetadata(headers: HeaderList, own: OwnMetadata): HeaderList {
  let out = headers;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] === MX_HEADER || headers[i] === MX_ID_HEADER) {
      out = headers.slice();
      takeMetadataHeaders(out);
      break;
    }
  }
  return [...out, MX_ID_HEADER, own.id, MX_HEADER, own.value];
}

const SPIFFE_NS = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/[^/]+$/;

/** The peers' metadata a sidecar has taken: decoded once, and bounded per peer identity. */
export class PeerMetadataCache {
  /** The last values seen, compared by content: a sidecar talks to few peers, and a hit decodes nothing. */
  private readonly recent: { raw: string; key: string; meta: PeerMetadata }[] = [];
  /** Per peer identity (SPIFFE id and certificate workload): the metadata it was allowed. */
  private readonly perPeer = new Map<string, PeerMetadata[]>();
  /** Values refused: not decodable, or naming another workload or namespace than the certificate, or past MAX_PER_PEER. */
  refused = 0;

  /**
   * The metadata a peer sent, if it is to be believed: over mutual TLS (`principal`), naming its
   * certificate's namespace and workload. The same content gives the same object, so that the
   * metrics can key series by it.
   */
  accept(raw: string | undefined, principal: string | undefined, certWorkload: string | undefined): PeerMetadata | undefined {
    if (raw === undefined || principal === undefined) return undefined;
    const key = `${principal}\u0000${certWorkload ?? ''}`;
    for (const r of this.recent) if (r.raw === raw && r.key === key) return r.meta;
    const meta = decodePeerMetadata(raw);
    const ns = SPIFFE_NS.exec(principal)?.[1];
    if (!meta || meta.namespace !== ns || (certWorkload !== undefined && meta.workload !== certWorkload)) {
      this.refused++;
      return undefined;
    }
    let known = this.perPeer.get(key);
    if (!known) this.perPeer.set(key, (known = []));
    let kept = known.find((m) => sameMetadata(m, meta));
    if (!kept) {
      if (known.length >= MAX_PER_PEER) {
        this.refused++;
        return known[known.length - 1];
      }
      known.push((kept = Object.freeze(meta)));
    }
    this.recent.unshift({ raw, key, meta: kept });
    if (this.recent.length > 16) this.recent.pop();
    return kept;
  }
}

function sameMetadata(a: PeerMetadata, b: PeerMetadata): boolean {
  return a.workload === b.workload && a.namespace === b.namespace && a.app === b.app && a.version === b.version && a.canonicalService === b.canonicalService && a.canonicalRevision === b.canonicalRevision && a.cluster === b.cluster;
}
