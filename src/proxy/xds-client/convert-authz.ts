// PURE: the RBAC filters of a listener (Istio's AuthorizationPolicy), compiled once per xDS update
// by proxy/authz/ (rbac-config.ts); a ConvertError names the listener, the filter's place and the
// field it cannot evaluate, and becomes the NACK reason. Where they sit:
//   - HTTP: envoy.filters.http.rbac in the HttpConnectionManager's http_filters, before every other
//     filter but authentication (jwt_authn, which fills the metadata they read) and the router;
//     the request path runs them in order before routing (http/authz.ts);
//   - TCP: envoy.filters.network.rbac before the chain's tcp_proxy (tcp/authz.ts).
// Istio's CUSTOM action puts ext_authz filters among them (convert-ext-authz.ts): a chain's
// authorization is a list of steps, each an RBAC filter or an external authorizer, run in order.
import { isIstioStats } from './convert-stats.ts';
import { type TcpPeerExchangeConfig, isTcpPeerExchange, tcpPeerExchangeConfig } from './convert-peer-metadata.ts';
import { type CompiledRbacFilter, compileHttpRbac, compileNetworkRbac } from '../authz/index.ts';
import { TYPE } from '../../xds/types.ts';
import { fail } from './convert-util.ts';
import { type ExtAuthzFilterConfig, networkExtAuthzFilter } from './convert-ext-authz.ts';

/** One RBAC filter of a chain, by its name in the config (what a denial's log names). */
export interface RbacFilterConfig {
  readonly name: string;
  readonly rbac: CompiledRbacFilter;
  readonly extAuthz?: undefined;
}

/** One authorization step of a chain: an RBAC filter, or an ext_authz filter (which has no `rbac`). */
export type AuthzFilterConfig = RbacFilterConfig | (ExtAuthzFilterConfig & { readonly rbac?: undefined });

export const isHttpRbac = (f: any): boolean => f?.typed_config?.['@type'] === TYPE.rbacHttp;
export const isHttpExtAuthz = (f: any): boolean => f?.typed_config?.['@type'] === TYPE.extAuthzHttp;

/**
 * Filters that may come before the RBAC filters: authentication (RequestAuthentication's
 * jwt_authn), which writes the metadata RBAC reads (request.auth.*). Whether the sidecar supports
 * one is convert.ts's business; this only says RBAC after it is in Istio's order.
 */
export const AUTHN_FILTER_TYPES: ReadonlySet<string> = new Set(['type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication']);
const isNetworkRbac = (f: any): boolean => f?.typed_config?.['@type'] === TYPE.rbacNetwork || f?.typed_config?.['@type'] === TYPE.extAuthzNetwork;

/** An HTTP RBAC filter of http_filters[i]. */
export function httpRbacFilter(where: string, i: number, f: any): RbacFilterConfig {
  return Object.freeze({ name: String(f.name ?? `http_filters[${i}]`), rbac: compileHttpRbac(`${where}: http_filters[${i}].typed_config`, f.typed_config) });
}

/**
 * A chain's network filters: the RBAC (and ext_authz) filters in front, compiled, and the one filter
 * after them (an HttpConnectionManager or a tcp_proxy) with its index. Anything else (another
 * network filter, RBAC after the terminal filter) is left for the caller to refuse by the count of `rest`.
 */
export function splitNetworkRbac(where: string, filters: readonly any[]): { rbac: AuthzFilterConfig[]; rest: any[]; offset: number; peerExchange?: TcpPeerExchangeConfig } {
  // Istio's TCP metadata exchange comes first, where Istio's pilot puts it (tcp/peer-exchange.ts).
  const start = filters.length && isTcpPeerExchange(filters[0]) ? 1 : 0;
  const peerExchange = start ? tcpPeerExchangeConfig(`${where}.filters[0]`, filters[0]) : undefined;
  let n = start;
  while (n < filters.length && isNetworkRbac(filters[n])) n++;
  const rbac = filters.slice(start, n).map((f, j): AuthzFilterConfig => {
    const i = start + j;
    return f.typed_config['@type'] === TYPE.extAuthzNetwork
      ? networkExtAuthzFilter(`${where}.filters[${i}].typed_config`, f)
      : Object.freeze({ name: String(f.name ?? `filters[${i}]`), rbac: compileNetworkRbac(`${where}.filters[${i}].typed_config`, f.typed_config) });
  });
  // Istio's stats filter sits before the tcp_proxy: the listener's metrics config (convert.ts listenerStats reads it).
  const rest = filters.slice(n).filter((f) => !isIstioStats(f));
  const late = rest.findIndex(isNetworkRbac);
  if (late >= 0) fail(`${where}.filters[${n + late}]`, 'a network RBAC or ext_authz filter must come before the chain\'s HttpConnectionManager or tcp_proxy');
  return { rbac, rest, offset: n, ...(peerExchange ? { peerExchange } : {}) };
}
