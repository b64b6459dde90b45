// PURE: Istio's metadata exchange in a sidecar's HCMs, as Istio's pilot writes it
// (istio.metadata_exchange, a TypedStruct of io.istio.http.peer_metadata.Config, first among the
// HTTP filters): the outbound listener reads the server's metadata from its answers and sends this
// workload's with its requests; an inbound listener reads the client's from its requests and
// answers with this workload's. By Istio's headers (istio_headers) only: Istio's pilot adds
// workload_discovery (ambient's workload xDS), which Weft does not have. Marked is_optional, so that
// an Envoy without Istio's filters (a stock Envoy using Weft's xDS) takes the rest of the config.
// The sidecar (http/peer-metadata.ts) believes a peer's metadata only over mutual TLS and where it
// names the peer's certificate's workload; its app, version and canonical service and revision
// become Istio's metrics' peer labels.
// Over TCP, as Istio's pilot: the istio.metadata_exchange network filter
// (envoy.tcp.metadataexchange.config.MetadataExchange, protocol istio-peer-exchange) first on each
// inbound mTLS TCP chain and among each mesh cluster's upstream filters; the sidecar runs it where
// mutual TLS negotiated that protocol (tcp/peer-exchange.ts). Only to proxies that run it (a Weft
// sidecar that says so in its node, an Istio proxy): another (a stock Envoy, an older Weft sidecar)
// gets neither the filters nor the protocol in its ALPN (withoutPeerExchange, mtls.ts), and the
// protocol is offered only to endpoints whose sidecar runs it (their transport socket match).
import { TYPE } from '../../xds/types.ts';
import { PEER_EXCHANGE_ALPN } from '../../xds/node-meta.ts';

export const PEER_METADATA = 'istio.metadata_exchange';
const PEER_METADATA_CONFIG = 'type.googleapis.com/io.istio.http.peer_metadata.Config';

const filter = (value: object) => ({ name: PEER_METADATA, is_optional: true, typed_config: { '@type': TYPE.typedStruct, type_url: PEER_METADATA_CONFIG, value } });

/** The outbound listener's (the client side): discovery from answers, propagation on requests. */
export const OUTBOUND_PEER_METADATA = filter({ upstream_discovery: [{ istio_headers: {} }], upstream_propagation: [{ istio_headers: { skip_external_clusters: true } }] });
/** An inbound listener's (the server side): discovery from requests, propagation on answers. */
export const INBOUND_PEER_METADATA = filter({ downstream_discovery: [{ istio_headers: {} }], downstream_propagation: [{ istio_headers: {} }] });

/** `listener` with `exchange` first in each of its HCMs' http_filters. */
export function withPeerMetadata(listener: object, exchange: object): object {
  type Filter = { typed_config?: Record<string, any> };
  type Chain = { filters?: Filter[] };
  const chain = (c: Chain): Chain => ({
    ...c,
    filters: (c.filters ?? []).map((f) => (f.typed_config?.['@type'] === TYPE.hcm ? { ...f, typed_config: { ...f.typed_config, http_filters: [exchange, ...(f.typed_config!.http_filters ?? [])] } } : f)),
  });
  const l = listener as { filter_chains?: Chain[]; default_filter_chain?: Chain };
  return { ...listener, ...(l.filter_chains ? { filter_chains: l.filter_chains.map(chain) } : {}), ...(l.default_filter_chain ? { default_filter_chain: chain(l.default_filter_chain) } : {}) };
}

/** The name of a cluster's transport socket match that offers it (mtls.ts), to the endpoints whose sidecar runs it. */
export const PEER_EXCHANGE_MATCH = 'tlsMode-istio-peer-exchange';

/** Istio's TCP metadata exchange filter (xdsfilters.TCPListenerMx and TCPClusterMx: the same config). */
export const TCP_PEER_EXCHANGE = Object.freeze({ name: PEER_METADATA, typed_config: { '@type': TYPE.tcpMetadataExchange, protocol: PEER_EXCHANGE_ALPN } });

/**
 * Clusters for a proxy that does not speak the TCP exchange: without its upstream filter, and
 * without the transport socket match that offers its protocol (a server that took it would write
 * its frame into the stream; the other matches, and ISTIO_MUTUAL's transport socket, offer only
 * "istio": mtls.ts). Clusters without the filter are the same objects.
 */
export function withoutPeerExchange(clusters: Record<string, object>): Record<string, object> {
  const out: Record<string, object> = {};
  for (const [name, c] of Object.entries(clusters)) out[name] = clusterWithout(c);
  return out;
}

function clusterWithout(cluster: object): object {
  const c = cluster as { filters?: { typed_config?: Record<string, unknown> }[]; transport_socket_matches?: { name?: string }[] };
  if (!c.filters?.some((f) => f.typed_config?.['@type'] === TYPE.tcpMetadataExchange)) return cluster;
  const { filters, transport_socket_matches: tsm, ...rest } = c;
  const kept = filters.filter((f) => f.typed_config?.['@type'] !== TYPE.tcpMetadataExchange);
  const matches = tsm?.filter((m) => m.name !== PEER_EXCHANGE_MATCH);
  return { ...rest, ...(kept.length ? { filters: kept } : {}), ...(matches?.length ? { transport_socket_matches: matches } : {}) };
}
