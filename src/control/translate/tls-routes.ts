// PURE: VirtualService tls routes (TLS passthrough routed by SNI), as Istio's sidecars apply them
// (pilot/pkg/networking/core/tls.go, buildSidecarOutboundTLSFilterChainOpts):
//   - only on service ports whose protocol is TLS or HTTPS; there, tcp routes do not apply, and
//     elsewhere tls routes do not (as in Istio);
//   - every VirtualService the proxy sees whose hosts overlap the service's host (exactly or by
//     wildcard), oldest first; each match of their tls routes that applies to this proxy and port
//     (port, sourceLabels, sourceNamespace, gateways) becomes a filter chain matching its sniHosts
//     and sending to the route's weighted destinations. A later match with the same sniHosts is
//     never reached and is left out (Istio's matchHasBeenHandled);
//   - a connection whose server name no chain matches goes where it would go without the
//     VirtualService: in Istio, the PassthroughCluster to the service's address, which spreads it
//     over the service's endpoints; here, the service's own cluster (a sidecar has no service
//     addresses to pass through to). Under REGISTRY_ONLY it is Istio's BlackHoleCluster: here no
//     default chain, so the sidecar closes the connection and logs the server name.
//
// The Envoy shape. Apps reach TCP services through the outbound listener with CONNECT, and an
// HttpConnectionManager cannot route a CONNECT tunnel by what is inside it. So, as Envoy does
// where a tunnel's payload must be looked into (Istio's ambient waypoints do the same), the
// CONNECT route sends the tunnel to a cluster whose one endpoint is an internal listener
// (envoy_internal_address; Envoy needs the envoy.bootstrap.internal_listener extension), and that
// listener is an ordinary TLS-routing listener: the tls_inspector, filter chains by server_names
// with a tcp_proxy each, and a default_filter_chain. Both are named sni|<port>||<host>. The
// sidecar knows nothing of VirtualServices: only this.
//
// Two deviations where Istio's output would not work in Envoy: a server name an earlier chain
// already matches is left out of later chains (Envoy refuses a listener whose chains share a
// name), and listener_filters_timeout is left at Envoy's 15 s (Istio sets 0, no timeout, with
// continue_on_listener_filters_timeout; a ClientHello that does not come in 15 s is routed as
// having no server name).
import type { TLSMatch, TLSRoute, VirtualService } from '../../api/types.ts';
import { hostsOverlap } from '../../api/rules.ts';
import { TYPE } from '../../xds/types.ts';
import { type ProxyScope, fqdn, outboundClusterName } from '../model/model.ts';
import type { Protocol } from '../model/protocol.ts';
import type { Service, Target } from './services.ts';

/** The internal listeners (and the clusters that reach them) of a proxy scope's TLS ports. */
export interface SniResources {
  listeners: Record<string, object>;
  clusters: Record<string, object>;
}

/** Istio's Protocol.IsTLS: the ports tls routes apply to. */
export function isTlsProtocol(p: Protocol): boolean {
  return p === 'TLS' || p === 'HTTPS';
}

/** The name of a service port's internal listener, and of the cluster whose endpoint it is. */
export function sniName(port: number, host: string): string {
  return `sni|${port}||${host}`;
}

type MatchApplies = (m: TLSMatch, port: number, scope: ProxyScope) => boolean;
type Destinations = (vs: VirtualService, r: TLSRoute, port: number) => { name: string; weight: number; target: Target }[];
/** What a tcp_proxy takes from its (first) destination's DestinationRule: idle and age limits, a source hash (Istio's). */
type TcpSettings = (t: Target) => object;

/**
 * The CONNECT route of a TLS service port whose VirtualServices have tls routes for this proxy,
 * adding its internal listener and cluster to `out`; undefined when none applies (then the port
 * is routed as any TCP port without routes).
 */
export function sniConnectRoute(
  s: Service,
  visible: readonly VirtualService[],
  scope: ProxyScope,
  registryOnly: boolean,
  applies: MatchApplies,
  destinations: Destinations,
  out: SniResources,
  settings: TcpSettings = () => ({}),
): object | undefined {
  const chains: object[] = [];
  const handled = new Set<string>();
  const taken = new Set<string>();
  let matchAll: object | undefined;
  for (const vs of visible) {
    if (!(vs.spec.hosts ?? []).some((h) => hostsOverlap(fqdn(h, vs.metadata.namespace), s.host))) continue;
    (vs.spec.tls ?? []).forEach((r, i) => {
      r.match.forEach((m, j) => {
        if (!applies(m, s.port, scope)) return;
        const key = m.sniHosts.join(',');
        if (handled.has(key)) return;
        handled.add(key);
        const name = `${vs.metadata.namespace}/${vs.metadata.name}.tls[${i}].match[${j}]`;
        const dests = destinations(vs, r, s.port);
        const filters = [tcpProxy(name, dests, dests[0] ? settings(dests[0].target) : {})];
        // "*" is every name: Envoy takes it as a chain without server_names (Istio's match-all chain).
        if (m.sniHosts.includes('*')) {
          matchAll ??= { name, filters };
          return;
        }
        const names = m.sniHosts.map((h) => h.toLowerCase()).filter((h) => !taken.has(h) && taken.add(h));
        if (names.length) chains.push({ name, filter_chain_match: { server_names: names }, filters });
      });
    });
  }
  if (!chains.length && !matchAll) return undefined;
  const name = sniName(s.port, s.host);
  const own = outboundClusterName(s.port, '', s.host);
  const fallback = matchAll ?? (registryOnly ? undefined : { name: 'PassthroughFilterChain', filters: [tcpProxy(own, [{ name: own, weight: 100 }], settings({ host: s.host, subset: '', port: s.port }))] });
  out.listeners[name] = {
    name,
    internal_listener: {},
    listener_filters: [{ name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': TYPE.tlsInspector } }],
    continue_on_listener_filters_timeout: true,
    filter_chains: chains,
    ...(fallback ? { default_filter_chain: fallback } : {}),
  };
  out.clusters[name] = {
    name,
    type: 'STATIC',
    connect_timeout: { seconds: 10 },
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { envoy_internal_address: { server_listener_name: name } } } }] }] },
  };
  return { name: 'connect', match: { connect_matcher: {} }, route: { cluster: name, upgrade_configs: [{ upgrade_type: 'CONNECT' }] } };
}

/** A tcp_proxy to one destination, or split over several by weight (those of weight 0 get none). */
export function tcpProxy(statPrefix: string, dests: { name: string; weight: number }[], settings: object = {}): object {
  const spec = dests.length === 1 ? { cluster: dests[0]!.name } : { weighted_clusters: { clusters: dests.filter((d) => d.weight > 0).map((d) => ({ name: d.name, weight: d.weight })) } };
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TYPE.tcpProxy, stat_prefix: statPrefix, ...spec, ...settings } };
}
