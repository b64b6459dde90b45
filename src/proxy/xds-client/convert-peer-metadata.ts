// PURE: Istio's metadata exchange filters -> what the sidecar does with them:
//   - HTTP (istio.metadata_exchange: a TypedStruct of io.istio.http.peer_metadata.Config, as
//     Istio's pilot puts it first in each sidecar HCM): the x-envoy-peer-metadata headers
//     (http/peer-metadata.ts). Discovery and propagation by Istio's headers (istio_headers) are what
//     it implements; another method (workload_discovery, baggage) or shared_with_upstream is
//     refused, naming the field;
//   - TCP (istio.metadata_exchange: envoy.tcp.metadataexchange.config.MetadataExchange, first on an
//     inbound TCP chain, and among a cluster's upstream filters): the frames each side writes where
//     mutual TLS negotiated its protocol (tcp/peer-exchange.ts). enable_discovery (ambient's
//     workload discovery) is refused.
import { TYPE } from '../../xds/types.ts';
import { PEER_EXCHANGE_ALPN } from '../../xds/node-meta.ts';
import { fail } from './convert-util.ts';

export const PEER_METADATA_CONFIG = 'type.googleapis.com/io.istio.http.peer_metadata.Config';
const TYPED_STRUCTS = new Set([TYPE.typedStruct, 'type.googleapis.com/xds.type.v3.TypedStruct']);

/** Which of the exchange's four parts a listener runs. */
export interface PeerMetadataConfig {
  /** Inbound: a request's headers are read (and removed before the app sees them). */
  downstreamDiscovery: boolean;
  /** Inbound: the answer to a request that carried them carries this workload's. */
  downstreamPropagation: boolean;
  /** Outbound: the upstream's answer's headers are read (and removed before the app sees them). */
  upstreamDiscovery: boolean;
  /** Outbound: a request to a mesh endpoint carries this workload's. */
  upstreamPropagation: boolean;
}

/** Is this HTTP filter Istio's metadata exchange? */
export function isPeerMetadata(f: any): boolean {
  const tc = f?.typed_config;
  return TYPED_STRUCTS.has(tc?.['@type']) && tc?.type_url === PEER_METADATA_CONFIG;
}

const METHODS = ['downstream_discovery', 'upstream_discovery', 'downstream_propagation', 'upstream_propagation'] as const;

export function peerMetadataConfig(where: string, f: any): PeerMetadataConfig {
  const tc = f.typed_config;
  for (const k of Object.keys(tc)) if (k !== '@type' && k !== 'type_url' && k !== 'value') fail(`${where}.typed_config.${k}`, 'not supported');
  const value = tc.value ?? {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(`${where}.typed_config.value`, 'must be an object');
  for (const k of Object.keys(value)) {
    if (k === 'shared_with_upstream') {
      if (value[k] === true) fail(`${where}.typed_config.value.shared_with_upstream`, 'not supported (the sidecar has no internal listeners to share peer metadata with)');
    } else if (!(METHODS as readonly string[]).includes(k)) fail(`${where}.typed_config.value.${k}`, `not supported (${METHODS.join(', ')} are)`);
  }
  const uses = (field: (typeof METHODS)[number]): boolean => {
    const list = value[field] ?? [];
    if (!Array.isArray(list)) fail(`${where}.typed_config.value.${field}`, 'must be a list');
    list.forEach((m: any, i: number) => {
      const keys = m !== null && typeof m === 'object' ? Object.keys(m) : [];
      if (keys.length !== 1 || keys[0] !== 'istio_headers') fail(`${where}.typed_config.value.${field}[${i}]`, `${keys[0] ?? 'an empty method'} is not supported (istio_headers is: the x-envoy-peer-metadata headers)`);
      const h = m.istio_headers ?? {};
      for (const k of Object.keys(h)) if (k !== 'skip_external_clusters' || !field.endsWith('propagation')) fail(`${where}.typed_config.value.${field}[${i}].istio_headers.${k}`, 'not supported');
    });
    return list.length > 0;
  };
  return { downstreamDiscovery: uses('downstream_discovery'), downstreamPropagation: uses('downstream_propagation'), upstreamDiscovery: uses('upstream_discovery'), upstreamPropagation: uses('upstream_propagation') };
}

/** The TCP exchange of a chain or a cluster: the ALPN protocol it runs on. */
export interface TcpPeerExchangeConfig {
  protocol: string;
}

const TCP_MX_TYPE = 'envoy.tcp.metadataexchange.config.MetadataExchange';

/** Is this network (or upstream network) filter Istio's TCP metadata exchange (its own type, or a TypedStruct of it)? */
export function isTcpPeerExchange(f: any): boolean {
  const tc = f?.typed_config;
  return tc?.['@type'] === TYPE.tcpMetadataExchange || (TYPED_STRUCTS.has(tc?.['@type']) && tc?.type_url === `type.googleapis.com/${TCP_MX_TYPE}`);
}

export function tcpPeerExchangeConfig(where: string, f: any): TcpPeerExchangeConfig {
  const tc = f.typed_config;
  const typed = tc['@type'] === TYPE.tcpMetadataExchange;
  const value = typed ? tc : (tc.value ?? {});
  const at = typed ? `${where}.typed_config` : `${where}.typed_config.value`;
  if (!typed) for (const k of Object.keys(tc)) if (k !== '@type' && k !== 'type_url' && k !== 'value') fail(`${where}.typed_config.${k}`, 'not supported');
  for (const k of Object.keys(value)) {
    if (k === '@type' || k === 'protocol') continue;
    if (k === 'enable_discovery') {
      if (value[k] === true) fail(`${at}.enable_discovery`, 'not supported (the workload discovery of ambient mode: the sidecar takes the metadata the peer sends)');
      continue;
    }
    fail(`${at}.${k}`, 'not supported (protocol is)');
  }
  const protocol = value.protocol;
  if (protocol !== PEER_EXCHANGE_ALPN) fail(`${at}.protocol`, `${protocol ? JSON.stringify(protocol) : 'none'} is not supported (the exchange runs on Istio's ALPN protocol ${PEER_EXCHANGE_ALPN})`);
  return { protocol };
}
