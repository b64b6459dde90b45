// Istio's metadata exchange over HTTP headers (istio/proxy's peer_metadata filter with its
// istio_headers method), where a listener's HCM has the istio.metadata_exchange filter
// (xds-client/convert.ts peerMetadataConfig):
//   - outbound (upstream discovery and propagation): a request to a mesh endpoint (the mesh's
//     mutual TLS) carries this workload's metadata, x-envoy-peer-metadata (base64 of a
//     google.protobuf.Struct of its node metadata, as Istio writes it) and x-envoy-peer-metadata-id
//     (its node id); the server's own, in its answer, are read and removed before the app sees it;
//   - inbound (downstream discovery and propagation): a request's are read and removed before the
//     app sees it, and every answer to a request that carried them carries this workload's.
// What a peer says of itself is taken only over the mesh's mutual TLS, and only where it names the
// namespace its SPIFFE id proves and the workload its certificate names (Istio takes the headers
// from anyone): a peer's metadata gives Istio's metrics its app, version and canonical service and
// revision (telemetry/istio-metrics.ts). This workload's goes only to mesh peers over mutual TLS.
// Headers an app writes never pass, either way. Each peer identity may bring at most MAX_PER_PEER
// different metadata in a process's life, past which its metadata is not believed (a peer that
// changed them every request would otherwise make new series each time). PURE but for the cache.
import { decode, encode } from '../../xds/protos.ts';
import type { HeaderList } from './types.ts';
import { ownString } from '../http1/headers.ts';
import { spiffeNamespace } from '../../util/spiffe.ts';

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

/** This sidecar's own headers: made once at start from its node, with the header lists that carry them. */
export interface OwnMetadata {
  readonly id: string;
  readonly value: string;
  /** Both headers, and each alone (what an answer echoes). */
  readonly both: HeaderList;
  readonly idOnly: HeaderList;
  readonly valueOnly: HeaderList;
}

/** A request's exchange headers: each undefined where it did not come. */
export interface MetadataHeaders {
  readonly value: string | undefined;
  readonly id: string | undefined;
}

const NONE: MetadataHeaders = Object.freeze({ value: undefined, id: undefined });

/** The answer's headers to a request that carried `got`: each of this workload's that the request carried, as Istio echoes them. */
export function answerHeaders(own: OwnMetadata, got: MetadataHeaders): HeaderList | undefined {
  if (got.id !== undefined) return got.value !== undefined ? own.both : own.idOnly;
  return got.value !== undefined ? own.valueOnly : undefined;
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
  const id = self.nodeId;
  const value = Buffer.from(encode(STRUCT, struct)).toString('base64');
  return { id, value, both: [MX_ID_HEADER, id, MX_HEADER, value], idOnly: [MX_ID_HEADER, id], valueOnly: [MX_HEADER, value] };
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
  return peerMetadataOfStruct(s);
}

/** What the metrics take of a node's metadata Struct (its JSON form): the HTTP headers' and the TCP exchange's (tcp/peer-exchange.ts). */
export function peerMetadataOfStruct(s: Record<string, unknown>): PeerMetadata {
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
 * Takes the exchange's headers out of `headers` (in place): the first value of each. Where there
 * are none (the common case: a request from an app) nothing is written or made.
 */
export function takeMetadataHeaders(headers: HeaderList): MetadataHeaders {
  let at = -1;
  for (let i = 0; i < headers.length; i += 2) {
    const n = headers[i]!;
    if (n === MX_HEADER || n === MX_ID_HEADER) {
      at = i;
      break;
    }
  }
  if (at < 0) return NONE;
  let value: string | undefined;
  let id: string | undefined;
  let w = at;
  for (let i = at; i < headers.length; i += 2) {
    const n = headers[i]!;
    if (n === MX_HEADER) {
      value ??= headers[i + 1];
      continue;
    }
    if (n === MX_ID_HEADER) {
      id ??= headers[i + 1];
      continue;
    }
    headers[w] = n;
    headers[w + 1] = headers[i + 1]!;
    w += 2;
  }
  headers.length = w;
  return { value, id };
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
  return [...out, ...own.both];
}

/** Values remembered (decoded or refused), oldest forgotten first. */
const MAX_REMEMBERED = 1024;

interface Remembered {
  raw: string;
  principal: string;
  certWorkload: string | undefined;
  meta: PeerMetadata | undefined;
}

/** The peers' metadata a sidecar has taken: each value decoded once, bounded per peer identity. */
export class PeerMetadataCache {
  /** By the header's value (each peer pod's is its own: it names the pod). */
  private readonly byValue = new Map<string, Remembered>();
  /** Per peer identity (SPIFFE id and certificate workload): the metadata it was allowed. */
  private readonly perPeer = new Map<string, PeerMetadata[]>();
  private last: Remembered | undefined;
  /** Values refused: not decodable, naming another namespace or workload than the certificate, carrying no label, or past MAX_PER_PEER. */
  refused = 0;

  /**
   * The metadata a peer sent, if it is to be believed: `principal` is the SPIFFE id the mesh's
   * mutual TLS proved (the caller passes none otherwise), and the value names its namespace and
   * the workload its certificate names. The same content gives the same object, so that the
   * metrics can key series by it. `decodeRaw`: how the value is read (an HTTP header's base64
   * Struct; a TCP frame's body: tcp/peer-exchange.ts).
   */
  accept(raw: string | undefined, principal: string | undefined, certWorkload: string | undefined, decodeRaw: (raw: string) => PeerMetadata | undefined = decodePeerMetadata): PeerMetadata | undefined {
    if (raw === undefined || principal === undefined) return undefined;
    // The last value first: compared by content, it costs less than hashing it for the map.
    const last = this.last;
    if (last !== undefined && raw === last.raw && principal === last.principal && certWorkload === last.certWorkload) return last.meta;
    const r = this.byValue.get(raw);
    if (r !== undefined && r.principal === principal && r.certWorkload === certWorkload) {
      this.last = r;
      return r.meta;
    }
    const meta = this.judge(decodeRaw(raw), principal, certWorkload);
    if (meta === undefined) this.refused++;
    if (this.byValue.size >= MAX_REMEMBERED) this.byValue.delete(this.byValue.keys().next().value!);
    // A string of its own: a header value is a slice of the whole read it came in.
    const own = ownString(raw);
    this.last = { raw: own, principal, certWorkload, meta };
    this.byValue.set(own, this.last);
    return meta;
  }

  private judge(meta: PeerMetadata | undefined, principal: string, certWorkload: string | undefined): PeerMetadata | undefined {
    const ns = spiffeNamespace(principal);
    if (!meta || ns === undefined || meta.namespace !== ns || (certWorkload !== undefined && meta.workload !== certWorkload)) return undefined;
    // Metadata without a label the metrics take would make a second series of the same labels.
    if (meta.app === undefined && meta.version === undefined && meta.canonicalService === undefined && meta.canonicalRevision === undefined && meta.cluster === undefined) return undefined;
    const key = `${principal}\u0000${certWorkload ?? ''}`;
    let known = this.perPeer.get(key);
    if (!known) this.perPeer.set(key, (known = []));
    const kept = known.find((m) => sameMetadata(m, meta));
    if (kept) return kept;
    if (known.length >= MAX_PER_PEER) return undefined;
    const frozen = Object.freeze(meta);
    known.push(frozen);
    return frozen;
  }
}

function sameMetadata(a: PeerMetadata, b: PeerMetadata): boolean {
  return a.workload === b.workload && a.namespace === b.namespace && a.app === b.app && a.version === b.version && a.canonicalService === b.canonicalService && a.canonicalRevision === b.canonicalRevision && a.cluster === b.cluster;
}
