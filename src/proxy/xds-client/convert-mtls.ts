// PURE: an inbound listener with mutual TLS (the contract's STRICT and PERMISSIVE shapes): the
// tls_inspector, filter chains matching transport_protocol 'tls' and application_protocols (the
// istio ALPNs) with a DownstreamTlsContext, and, for PERMISSIVE, the port's plaintext chains as they
// are without mTLS. The plaintext chains are converted as a listener of their own (convert.ts),
// whose kind says what a connection without a ClientHello gets; the TLS chains say what runs on the
// decrypted stream. The filters after TLS are the port's own, so an HCM on a TLS chain must be the
// listener's one HCM (its routes are looked up by the listener's name).
import { TYPE } from '../../xds/types.ts';
import { type DownstreamTls, downstreamSocket } from './convert-tls.ts';
import { type TcpProxyConfig, DEFAULT_LISTENER_FILTERS_TIMEOUT_MS, tcpProxy } from './convert-tcp.ts';
import { duration, fail } from './convert-util.ts';
import { splitNetworkRbac } from './convert-authz.ts';

/**
 * A filter chain that matches TLS: it terminates mutual TLS (`tls`), or, without a transport
 * socket, passes the TLS through untouched to its tcp_proxy (Istio's PERMISSIVE passthrough chain,
 * for an app's own TLS from a client outside the mesh).
 */
export interface TlsChain {
  name: string;
  /** filter_chain_match.application_protocols: one of them must be offered (empty: any offer). */
  alpn: readonly string[];
  /** undefined: passthrough (serve is then 'tcp'). */
  tls?: DownstreamTls;
  /** What runs on the decrypted stream: the listener's HCM, or this chain's tcp_proxy. */
  serve: 'http' | 'tcp';
  tcp?: TcpProxyConfig;
}

export interface MtlsListener {
  /** In the listener's order: the most specific ALPN match wins, then the first (tls/chains.ts). */
  chains: readonly TlsChain[];
  /** Plaintext chains exist (PERMISSIVE): a connection without a ClientHello gets the listener's own kind; without them it is closed (STRICT). */
  plaintext: boolean;
  /** listener_filters_timeout: the ClientHello must come within it, and then the handshake (0: Envoy's none; the handshake is bounded all the same). */
  timeoutMs: number;
  /**
   * continue_on_listener_filters_timeout: a client silent for timeoutMs goes to the plaintext chains
   * (Istio sets it on inbound listeners, so that protocols in which the server speaks first work
   * under PERMISSIVE); else, as Envoy by default, it is closed.
   */
  continueOnTimeout: boolean;
}

/** A chain of the listener carries a transport socket: the mTLS shape (without one, a tls_inspector listener routes by SNI: convert-tcp.ts). */
export function isMtlsListener(l: any): boolean {
  return (l.filter_chains ?? []).some((c: any) => c.transport_socket != null);
}

export interface MtlsParts {
  mtls: MtlsListener;
  /** The listener without its TLS chains and the tls_inspector, for convert.ts (undefined: no plaintext chain). */
  plain?: any;
  /** The HCM of the TLS chains (its typed_config), when the plaintext part has none to give. */
  hcm?: any;
}

/** Splits an mTLS listener into its TLS chains and its plaintext rest, refusing what the sidecar cannot do. */
export function mtlsParts(where: string, l: any): MtlsParts {
  if (l.internal_listener) fail(`${where}: internal_listener`, 'an internal listener cannot terminate TLS');
  if (l.default_filter_chain) fail(`${where}: default_filter_chain`, 'not supported beside TLS chains (a connection no chain matches is closed)');
  let tlsInspector = false;
  const keptFilters: any[] = [];
  for (const [i, f] of (l.listener_filters ?? []).entries()) {
    const tc = f.typed_config ?? {};
    if (tc['@type'] === TYPE.tlsInspector) {
      if ((tc.enable_ja3_fingerprinting?.value ?? tc.enable_ja3_fingerprinting) === true) fail(`${where}: listener_filters[${i}].typed_config.enable_ja3_fingerprinting`, 'not supported');
      tlsInspector = true;
    } else keptFilters.push(f); // the http_inspector, for the plaintext chains (convert.ts checks the rest)
  }
  if (!tlsInspector) fail(`${where}: listener_filters`, 'chains matching transport_protocol or carrying a transport socket need the tls_inspector listener filter');
  const chains: TlsChain[] = [];
  const plainChains: any[] = [];
  let hcm: any;
  (l.filter_chains ?? []).forEach((c: any, i: number) => {
    const cw = `${where}: filter_chains[${i}]`;
    const m = c.filter_chain_match ?? {};
    const tp = m.transport_protocol;
    if (tp != null && tp !== 'tls' && tp !== 'raw_buffer') fail(`${cw}.filter_chain_match.transport_protocol`, `"${tp}" is not supported ('tls' and 'raw_buffer' are)`);
    const tls = downstreamSocket(`${cw}.transport_socket`, c.transport_socket);
    if (tp !== 'tls') {
      if (tls) fail(`${cw}.filter_chain_match.transport_protocol`, "a chain that terminates TLS must match transport_protocol 'tls'");
      // raw_buffer is what a connection without a ClientHello is: the plaintext chains take those.
      const { transport_protocol: _, ...rest } = m;
      plainChains.push({ ...c, transport_socket: undefined, ...(Object.keys(rest).length ? { filter_chain_match: rest } : { filter_chain_match: undefined }) });
      return;
    }
    const other = Object.keys(m).filter((k) => k !== 'transport_protocol' && k !== 'application_protocols');
    if (other.length) fail(`${cw}.filter_chain_match.${other[0]}`, 'not supported beside transport_protocol (application_protocols is)');
    const { rbac, rest: filters, peerExchange } = splitNetworkRbac(cw, c.filters ?? []);
    const types = filters.map((f: any) => f.typed_config?.['@type'] ?? f.name);
    if (!tls) {
      // TLS passed through: only to a tcp_proxy (an HCM cannot read TLS it does not terminate),
      // after the port's network RBAC filters, as on its other TCP chains.
      if (filters.length !== 1 || types[0] !== TYPE.tcpProxy) fail(`${cw}.filters`, `a chain that passes TLS through (no transport_socket) must hold exactly one tcp_proxy filter, after any network RBAC filters (got ${types.join(', ') || 'none'})`);
      const tcp = tcpProxy(cw, filters[0].typed_config);
      chains.push({ name: String(c.name ?? `filter_chains[${i}]`), alpn: (m.application_protocols ?? []).map(String), serve: 'tcp', tcp: rbac.length ? { ...tcp, rbac } : tcp });
      return;
    }
    if (filters.length !== 1 || (types[0] !== TYPE.hcm && types[0] !== TYPE.tcpProxy)) fail(`${cw}.filters`, `a TLS chain must hold exactly one HttpConnectionManager or tcp_proxy filter, after any network RBAC filters (got ${types.join(', ') || 'none'})`);
    const name = String(c.name ?? `filter_chains[${i}]`);
    const alpn = (m.application_protocols ?? []).map(String);
    if (types[0] === TYPE.tcpProxy) {
      const tcp = tcpProxy(cw, filters[0].typed_config);
      chains.push({ name, alpn, tls, serve: 'tcp', tcp: { ...tcp, ...(rbac.length ? { rbac } : {}), ...(peerExchange ? { peerExchange } : {}) } });
      return;
    }
    // Istio puts the TCP exchange on HTTP chains too, where it never runs (their ALPN is istio-http/*); one that would is refused.
    if (peerExchange && alpn.includes(peerExchange.protocol)) fail(`${cw}.filters[0]`, `the TCP metadata exchange on a chain that serves HTTP and matches its protocol ${peerExchange.protocol} is not supported (HTTP exchanges metadata in headers: the HCM's istio.metadata_exchange)`);
    if (rbac.length) fail(`${cw}.filters[0]`, 'network RBAC before an HttpConnectionManager is not supported (put HTTP RBAC filters in its http_filters)');
    const tc = filters[0].typed_config;
    if (hcm && JSON.stringify(hcm) !== JSON.stringify(tc)) fail(`${cw}.filters[0]`, "every chain's HttpConnectionManager must be the same (the port's own): the sidecar routes a listener by one route configuration");
    hcm = tc;
    chains.push({ name, alpn, tls, serve: 'http' });
  });
  const terminating = chains.filter((c) => c.tls);
  if (!terminating.length) fail(`${where}: filter_chains`, "no chain terminates TLS (transport_protocol 'tls' with a DownstreamTlsContext)");
  // The listener's TLS server is one (tls/inbound.ts): its chains must agree on the versions it speaks.
  const v = JSON.stringify(terminating[0]!.tls!.versions);
  const other = terminating.findIndex((c) => JSON.stringify(c.tls!.versions) !== v);
  if (other >= 0) fail(`${where}: filter_chains`, `every TLS chain must allow the same TLS versions (chain ${terminating[other]!.name} differs from ${terminating[0]!.name})`);
  let timeoutMs = DEFAULT_LISTENER_FILTERS_TIMEOUT_MS;
  if (l.listener_filters_timeout != null) timeoutMs = duration(`${where}: listener_filters_timeout`, l.listener_filters_timeout);
  const continueOnTimeout = (l.continue_on_listener_filters_timeout?.value ?? l.continue_on_listener_filters_timeout) === true;
  const plain = plainChains.length ? { ...l, listener_filters: keptFilters, filter_chains: plainChains } : undefined;
  if (plain && hcm) {
    const plainHcm = plainChains.flatMap((c) => c.filters ?? []).find((f: any) => f.typed_config?.['@type'] === TYPE.hcm)?.typed_config;
    if (plainHcm && JSON.stringify(plainHcm) !== JSON.stringify(hcm)) fail(`${where}: filter_chains`, 'the TLS chains and the plaintext chains must hold the same HttpConnectionManager (the port\'s own)');
  }
  return { mtls: { chains, plaintext: plainChains.length > 0, timeoutMs, continueOnTimeout }, ...(plain ? { plain } : {}), ...(hcm ? { hcm } : {}) };
}

/**
 * Envoy's choice among TLS chains by ALPN (findFilterChainForApplicationProtocols): the client's
 * offered protocols in its order, the first that a chain lists wins; else a chain that lists none;
 * else no chain (the connection is closed).
 */
export function tlsChainFor(mtls: MtlsListener, offered: readonly string[]): TlsChain | undefined {
  for (const p of offered) {
    const hit = mtls.chains.find((c) => c.alpn.includes(p));
    if (hit) return hit;
  }
  return mtls.chains.find((c) => c.alpn.length === 0);
}
