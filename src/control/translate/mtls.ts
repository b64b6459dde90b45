// PURE: the shapes of automatic mTLS, as Istio's pilot emits them and the mTLS contract with the
// sidecar (docs/mtls.md) fixes them for Weft's sidecar:
//   - endpoints that take mTLS carry Istio's tlsMode=istio in the transport socket match metadata;
//   - an outbound cluster with such endpoints gets Istio's transport_socket_matches: TLS with the
//     workload certificate to those (checking the server's SPIFFE id), plaintext to the rest;
//   - inbound listeners get mTLS chains by the port's PeerAuthentication mode (api/peer-auth.ts).
// Secrets are named by SDS and never inline: the sidecar serves 'default' (its own key and
// certificate) and 'ROOTCA' (the mesh's roots) itself, as istio-agent serves Envoy.
import { TYPE } from '../../xds/types.ts';
import { DEFAULT_TRUST_DOMAIN } from '../model/model.ts';
import { spiffeUri } from '../../util/spiffe.ts';
import type { EffectiveMode } from '../../api/peer-auth.ts';
import type { PortHandling } from '../model/protocol.ts';
import { PEER_EXCHANGE_MATCH, TCP_PEER_EXCHANGE } from './peer-metadata.ts';
import { PEER_EXCHANGE_ALPN } from '../../xds/node-meta.ts';

/** The filter_metadata key Envoy matches transport_socket_matches against. */
export const TRANSPORT_SOCKET_MATCH = 'envoy.transport_socket_match';

/** Istio's label (and metadata value) for an endpoint whose sidecar takes mTLS. */
export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';
export const TLS_MODE_ISTIO = 'istio';

/** Whose identity an mTLS endpoint proves: its certificate's SPIFFE id names these. */
export interface EndpointIdentity {
  namespace: string;
  /** Absent for a WorkloadEntry that names none: it takes mTLS, but clients cannot name whom to expect. */
  serviceAccount?: string;
}

/** An mTLS endpoint's metadata: what the cluster's 'tlsMode-istio' match selects. */
export const MTLS_ENDPOINT_METADATA = { filter_metadata: { [TRANSPORT_SOCKET_MATCH]: { tlsMode: TLS_MODE_ISTIO } } };
/** What marks an endpoint whose sidecar runs Istio's TCP metadata exchange (peer-metadata.ts), and what the match that offers it looks for. */
const PEER_EXCHANGE_FIELDS = { peerExchange: PEER_EXCHANGE_ALPN };
/** ... such an mTLS endpoint's metadata: the 'tlsMode-istio-peer-exchange' match selects it. */
export const MTLS_PEER_EXCHANGE_ENDPOINT_METADATA = { filter_metadata: { [TRANSPORT_SOCKET_MATCH]: { tlsMode: TLS_MODE_ISTIO, ...PEER_EXCHANGE_FIELDS } } };

/** istio-agent's SDS source, which Weft's sidecar answers itself (no SDS stream). */
const SDS = {
  api_config_source: {
    api_type: 'GRPC',
    transport_api_version: 'V3',
    grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }],
    set_node_on_first_message_only: true,
  },
  initial_fetch_timeout: { seconds: 0 },
  resource_api_version: 'V3',
};

/** The workload's own key and certificate. */
const WORKLOAD_CERT = [{ name: 'default', sds_config: SDS }];
/** The mesh's roots: the only CAs a peer's certificate may chain to. */
const ROOT_CA = { name: 'ROOTCA', sds_config: SDS };

export function spiffeId(trustDomain: string | undefined, namespace: string, serviceAccount: string): string {
  return spiffeUri(trustDomain ?? DEFAULT_TRUST_DOMAIN, namespace, serviceAccount);
}

/**
 * The SANs a cluster's servers may present: the distinct SPIFFE ids of its mTLS endpoints, in the
 * mesh's trust domain and in each of its aliases (Istio's spiffe.ExpandWithTrustDomains: during a
 * trust domain migration, a server may still hold a certificate of the earlier one), sorted.
 */
export function subjectAltNames(trustDomain: string | undefined, identities: readonly EndpointIdentity[], aliases: readonly string[] = []): string[] {
  const ids = new Set<string>();
  for (const i of identities) {
    if (!i.serviceAccount) continue;
    for (const td of [trustDomain, ...aliases]) ids.add(spiffeId(td, i.namespace, i.serviceAccount));
  }
  return [...ids].sort();
}

/** Istio's SNI for a mesh cluster (BuildDNSSrvSubsetKey): outbound_.80_.v1_.reviews.default.svc.cluster.local; no subset is "_". */
export function outboundSni(port: number, subset: string, host: string): string {
  return `outbound_.${port}_.${subset}_.${host}`;
}

/**
 * Istio's automatic mTLS for a cluster: TLS to the endpoints whose metadata says tlsMode istio,
 * plaintext to the others. ALPN 'istio-peer-exchange', 'istio' tells the server's sidecar that
 * this is mTLS from a sidecar (its mTLS chains match them); the client prefixes the upstream
 * protocol's ('istio-h2', 'istio-http/1.1'), as Istio's alpn filter does.
 */
export function transportSocketMatches(sans: readonly string[], sni: string): object[] {
  return [
    // Istio's TCP metadata exchange's protocol is offered only to an endpoint whose sidecar runs it
    // (an older one would take the protocol and pass the client's frame to its app).
    peerExchangeMatch({ tlsMode: TLS_MODE_ISTIO }, sans, sni),
    { name: 'tlsMode-istio', match: { tlsMode: TLS_MODE_ISTIO }, transport_socket: istioMutual(sans, sni, false) },
    {
      name: 'tlsMode-disabled',
      match: {},
      transport_socket: { name: 'envoy.transport_sockets.raw_buffer', typed_config: { '@type': TYPE.rawBuffer } },
    },
  ];
}

/** The transport socket match that offers Istio's TCP metadata exchange, to the endpoints `match` selects whose sidecar runs it. */
function peerExchangeMatch(match: Record<string, string>, sans: readonly string[], sni: string): object {
  return { name: PEER_EXCHANGE_MATCH, match: { ...match, ...PEER_EXCHANGE_FIELDS }, transport_socket: istioMutual(sans, sni, true) };
}

/** Mutual TLS with the workload's certificate, expecting one of `sans` (none: any of the mesh's); `peerExchange`: offering Istio's TCP metadata exchange. */
function istioMutual(sans: readonly string[], sni: string, peerExchange: boolean): object {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': TYPE.upstreamTls,
      common_tls_context: {
        alpn_protocols: peerExchange ? [PEER_EXCHANGE_ALPN, 'istio'] : ['istio'],
        tls_certificate_sds_secret_configs: WORKLOAD_CERT,
        combined_validation_context: {
          default_validation_context: sans.length ? { match_subject_alt_names: sans.map((exact) => ({ exact })) } : {},
          validation_context_sds_secret_config: ROOT_CA,
        },
      },
      sni,
    },
  };
}

/** What a cluster's TLS depends on besides the rule: its protocol, and a ServiceEntry's names. */
export interface ClusterTlsContext {
  /** The cluster speaks HTTP/2 (explicit_http_config): TLS origination offers ALPN h2, as Istio. */
  h2?: boolean;
  /** The ServiceEntry's subjectAltNames, for a host a ServiceEntry defines: checked where the rule names none (Istio's). */
  serviceSans?: readonly string[];
}

/**
 * A cluster's TLS, by its DestinationRule's tls (the effective one: subset and port level
 * included), as Istio's applyUpstreamTLSSettings:
 *   - none (or no mode): automatic mTLS, to the endpoints that take it (`auto`: the identities of
 *     those endpoints; none: no TLS fields at all);
 *   - DISABLE: plain text to every endpoint, mesh or not;
 *   - ISTIO_MUTUAL: mutual TLS with the mesh's certificates to every endpoint, expecting the
 *     rule's subjectAltNames if it gives any, else the service's identities; its sni, else Istio's;
 *   - SIMPLE and MUTUAL: TLS origination with the user's files (originationTls), to every
 *     endpoint: automatic mTLS never applies where the rule asks for its own TLS.
 */
export function clusterTls(tls: Record<string, unknown> | undefined, auto: { sans: readonly string[]; secure: boolean }, sni: string, ctx: ClusterTlsContext = {}): object {
  const mode = tls?.mode;
  if (mode === 'DISABLE') return {};
  // The mesh's mutual TLS carries Istio's TCP metadata exchange (peer-metadata.ts): the cluster's upstream filter.
  if (mode === 'ISTIO_MUTUAL') {
    const sans = Array.isArray(tls!.subjectAltNames) && tls!.subjectAltNames.length ? (tls!.subjectAltNames as string[]) : auto.sans;
    const name = typeof tls!.sni === 'string' && tls!.sni ? tls!.sni : sni;
    return { transport_socket_matches: [peerExchangeMatch({}, sans, name)], transport_socket: istioMutual(sans, name, false), filters: [TCP_PEER_EXCHANGE] };
  }
  if (mode === 'SIMPLE' || mode === 'MUTUAL') return originationTls(tls!, ctx);
  return auto.secure ? { transport_socket_matches: transportSocketMatches(auto.sans, sni), filters: [TCP_PEER_EXCHANGE] } : {};
}

/**
 * Istio's SDS resource names for files the sidecar reads (security.SdsCertificateConfig): the
 * client's certificate and key, and the roots ('system': the platform's default roots).
 */
export const FILE_CERT_PREFIX = 'file-cert:';
export const FILE_ROOT_PREFIX = 'file-root:';
export const SYSTEM_ROOTS = 'system';

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/**
 * SIMPLE and MUTUAL, as Istio's constructUpstreamTLS: an UpstreamTlsContext whose secrets are
 * files the sidecar reads, named by SDS (file-cert:<cert>~<key>, file-root:<ca> or
 * file-root:system when caCertificates is unset); insecureSkipVerify: an empty validation context
 * (no verification); subjectAltNames (else the ServiceEntry's) matched exactly, caCrl beside them;
 * sni as given (none: auto_sni from the request's host, clusterAutoSni). The cluster's metadata
 * istio.alpn_override "false" keeps the mesh's ALPN (istio-http/1.1, ...) off this TLS: the
 * upstream is no sidecar. An HTTP/2 cluster offers h2.
 */
function originationTls(tls: Record<string, unknown>, ctx: ClusterTlsContext): object {
  const common: Record<string, unknown> = {};
  if (tls.mode === 'MUTUAL') common.tls_certificate_sds_secret_configs = [{ name: `${FILE_CERT_PREFIX}${str(tls.clientCertificate)}~${str(tls.privateKey)}`, sds_config: SDS }];
  if (tls.insecureSkipVerify === true) common.validation_context = {};
  else {
    const own = Array.isArray(tls.subjectAltNames) ? (tls.subjectAltNames as string[]) : [];
    const sans = own.length ? own : (ctx.serviceSans ?? []);
    const dvc: Record<string, unknown> = {};
    if (sans.length) dvc.match_subject_alt_names = sans.map((exact) => ({ exact }));
    if (str(tls.caCrl)) dvc.crl = { filename: str(tls.caCrl) };
    common.combined_validation_context = {
      default_validation_context: dvc,
      validation_context_sds_secret_config: { name: `${FILE_ROOT_PREFIX}${str(tls.caCertificates) || SYSTEM_ROOTS}`, sds_config: SDS },
    };
  }
  if (ctx.h2) common.alpn_protocols = ['h2'];
  const sni = str(tls.sni);
  return {
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: { '@type': TYPE.upstreamTls, common_tls_context: common, ...(sni ? { sni } : {}) },
    },
    metadata: { filter_metadata: { istio: { alpn_override: 'false' } } },
  };
}

/**
 * Istio's setAutoSniAndAutoSanValidation for SIMPLE and MUTUAL: with no sni, the SNI is the
 * request's host (auto_sni); with no sni and no subjectAltNames either, the server's certificate
 * must name that host (auto_san_validation), unless insecureSkipVerify. Undefined: neither.
 */
export function clusterAutoSni(tls: Record<string, unknown> | undefined): { auto_sni?: boolean; auto_san_validation?: boolean } | undefined {
  if (!tls || (tls.mode !== 'SIMPLE' && tls.mode !== 'MUTUAL') || str(tls.sni)) return undefined;
  const sans = Array.isArray(tls.subjectAltNames) && tls.subjectAltNames.length > 0;
  return { auto_sni: true, ...(!sans && tls.insecureSkipVerify !== true ? { auto_san_validation: true } : {}) };
}

/** What the inbound mTLS chains offer (Istio's inbound ALPNs): a sidecar's, with its upstream protocol. */
export const MTLS_ALPN = ['istio', 'istio-peer-exchange', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2'];
const MTLS_HTTP_ALPN = ['istio-http/1.0', 'istio-http/1.1', 'istio-h2'];
const MTLS_TCP_ALPN = ['istio', 'istio-peer-exchange'];

/** Terminates mTLS with the workload certificate; the client must present one chaining to the mesh's roots. */
const DOWNSTREAM_TLS: { name: string; typed_config: Record<string, any> } = {
  name: 'envoy.transport_sockets.tls',
  typed_config: {
    '@type': TYPE.downstreamTls,
    common_tls_context: {
      alpn_protocols: ['h2', 'http/1.1'],
      tls_certificate_sds_secret_configs: WORKLOAD_CERT,
      combined_validation_context: { default_validation_context: {}, validation_context_sds_secret_config: ROOT_CA },
    },
    // A BoolValue: { value: true } in protobufjs's form (the wire is the same as JSON's `true`).
    require_client_certificate: { value: true },
  },
};

export const TLS_INSPECTOR = { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': TYPE.tlsInspector } };

/**
 * The mesh config's meshMTLS.minProtocolVersion, as Istio applies it: to the servers' side (a
 * client may reach servers that are no sidecar). TLSV1_3: TLS 1.3 only; else (TLS_AUTO, TLSV1_2)
 * the sidecar's own range, TLS 1.2 to 1.3.
 */
export type MeshMinTls = 'TLS_AUTO' | 'TLSV1_2' | 'TLSV1_3' | undefined;

const DOWNSTREAM_TLS_13 = {
  ...DOWNSTREAM_TLS,
  typed_config: {
    ...DOWNSTREAM_TLS.typed_config,
    common_tls_context: { ...DOWNSTREAM_TLS.typed_config.common_tls_context, tls_params: { tls_minimum_protocol_version: 'TLSv1_3', tls_maximum_protocol_version: 'TLSv1_3' } },
  },
};

function mtlsChain(name: string, alpn: readonly string[], filters: readonly object[], minTls: MeshMinTls, peerExchange = false): object {
  const tls = minTls === 'TLSV1_3' ? DOWNSTREAM_TLS_13 : DOWNSTREAM_TLS;
  return { name, filter_chain_match: { transport_protocol: 'tls', application_protocols: [...alpn] }, transport_socket: peerExchange ? withPeerExchangeAlpn(tls) : tls, filters };
}

/** A TCP chain that runs Istio's metadata exchange offers its protocol first (Istio's ALPNDownstreamWithMxc): a server that picks by its own list (Envoy's BoringSSL) takes it. */
function withPeerExchangeAlpn(t: typeof DOWNSTREAM_TLS): object {
  const tc = t.typed_config;
  return { ...t, typed_config: { ...tc, common_tls_context: { ...tc.common_tls_context, alpn_protocols: [PEER_EXCHANGE_ALPN, ...tc.common_tls_context.alpn_protocols] } } };
}

/** An inbound listener as it is without mTLS (translate.ts inboundListener). */
export interface PlainInbound {
  name: string;
  address: object;
  listener_filters?: object[];
  listener_filters_timeout?: object;
  continue_on_listener_filters_timeout?: boolean;
  filter_chains: object[];
}

/** The port's own filters, the same after TLS as on plaintext: its HCM and its tcp_proxy. */
export interface PortFilters {
  hcm: () => object;
  tcp: () => object;
  /** Network filters before tcp_proxy on every TCP chain (AuthorizationPolicy's network RBAC). */
  tcpFilters?: readonly object[];
}

/**
 * How long a PERMISSIVE port waits for the client's first bytes before it takes the connection as
 * plain text (continue_on_listener_filters_timeout): protocols in which the server speaks first
 * (MySQL, SMTP) send nothing until the app greets them. Istio's protocolDetectionTimeout is 0 (no
 * timeout) by default, and such clients hang under PERMISSIVE there; here they wait a second. A
 * client sidecar sends its ClientHello as soon as it connects, far within it.
 */
export const PERMISSIVE_DETECTION_TIMEOUT = { seconds: 1 };

/**
 * An inbound listener with the chains its port's PeerAuthentication mode asks for:
 *   STRICT: the tls_inspector, and mTLS chains only (a connection that matches none, plaintext
 *   or TLS without a sidecar's ALPN, is closed: Envoy's rule);
 *   PERMISSIVE: the tls_inspector, the mTLS chains, then the plaintext chains as they were (they
 *   take what the mTLS chains do not). On TCP ports and ports of undeclared protocol, TLS that is
 *   no sidecar's (an app's own, e.g. HTTPS from a client outside the mesh) passes through to the
 *   app untouched, as Istio's PERMISSIVE passthrough chain does; and a client silent for
 *   PERMISSIVE_DETECTION_TIMEOUT is taken as plain text;
 *   DISABLE: the listener as it was.
 * A port whose protocol is detected gets two mTLS chains, HTTP and TCP, told apart by the ALPN
 * the client sidecar sends (it knows its upstream protocol); other ports, one with their filter.
 * `minTls`: the mesh config's meshMTLS.minProtocolVersion.
 */
export function withInboundMtls(plain: PlainInbound, mode: EffectiveMode, handling: PortHandling, filters: PortFilters, minTls?: MeshMinTls, peerExchange = false): PlainInbound {
  if (mode === 'DISABLE') return plain;
  const tcp = () => [...(filters.tcpFilters ?? []), filters.tcp()];
  // Istio's TCP metadata exchange first on the TCP chains that terminate the mesh's mutual TLS
  // (peer-metadata.ts), where the proxy runs it.
  const mtlsTcp = () => (peerExchange ? [TCP_PEER_EXCHANGE, ...tcp()] : tcp());
  const mtls =
    handling === 'detect'
      ? [mtlsChain('mtls-http', MTLS_HTTP_ALPN, [filters.hcm()], minTls), mtlsChain('mtls-tcp', MTLS_TCP_ALPN, mtlsTcp(), minTls, peerExchange)]
      : [mtlsChain('mtls', MTLS_ALPN, handling === 'tcp' ? mtlsTcp() : [filters.hcm()], minTls, peerExchange && handling === 'tcp')];
  const base = { name: plain.name, address: plain.address, listener_filters: [TLS_INSPECTOR, ...(plain.listener_filters ?? [])] };
  if (mode === 'STRICT') return { ...base, filter_chains: mtls };
  // No ALPN listed: Envoy's choice among the tls chains falls to it when no istio ALPN is offered.
  // Its TCP filters are the port's, network RBAC included.
  const passthrough = handling !== 'tcp' && handling !== 'detect' ? [] : [{ name: 'tls-passthrough', filter_chain_match: { transport_protocol: 'tls' }, filters: tcp() }];
  return {
    ...base,
    listener_filters_timeout: PERMISSIVE_DETECTION_TIMEOUT,
    continue_on_listener_filters_timeout: true,
    filter_chains: [...mtls, ...passthrough, ...plain.filter_chains],
  };
}
