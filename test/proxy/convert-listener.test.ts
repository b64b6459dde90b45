// Unit tests, no sockets: every listener the sidecar cannot apply is refused by convert.ts with a
// reason that becomes the LDS NACK. Each reason names the listener and the field at fault.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConvertError, chainFor, convertListener, pickTcpCluster } from '../../src/proxy/xds-client/convert.ts';
import { TYPE } from '../../src/xds/types.ts';

const address = { socket_address: { address: '127.0.0.1', port_value: 15001 } };
const hcm = (extra: object = {}) => ({ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': TYPE.hcm, stat_prefix: 's', rds: { route_config_name: 'r' }, ...extra } });
const tcp = (extra: object = {}) => ({ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TYPE.tcpProxy, stat_prefix: 's', cluster: 'c', ...extra } });
const inspector = { name: 'envoy.filters.listener.http_inspector', typed_config: { '@type': TYPE.httpInspector } };
const detecting = (httpMatch: object, withInspector = true) => ({
  name: 'L',
  address,
  listener_filters: withInspector ? [inspector] : [],
  filter_chains: [{ filter_chain_match: httpMatch, filters: [hcm()] }, { filters: [tcp()] }],
});

const router = { name: 'envoy.filters.http.router', typed_config: { '@type': TYPE.router } };
const rbacHttp = (tc: object) => ({ name: 'envoy.filters.http.rbac', typed_config: { '@type': TYPE.rbacHttp, ...tc } });
const rbacNet = (tc: object) => ({ name: 'envoy.filters.network.rbac', typed_config: { '@type': TYPE.rbacNetwork, ...tc } });
const tlsInspector = { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': TYPE.tlsInspector } };
const sni = (chains: object[], extra: object = {}) => ({ name: 'L', address, listener_filters: [tlsInspector], filter_chains: chains, ...extra });

const CASES: { what: string; listener: any; reason: RegExp }[] = [
  { what: 'no name', listener: { address, filter_chains: [{ filters: [hcm()] }] }, reason: /^listener \(unnamed\): name: required/ },
  { what: 'a pipe address', listener: { name: 'L', address: { pipe: { path: '/tmp/x' } }, filter_chains: [{ filters: [hcm()] }] }, reason: /^listener L: address: only socket_address addresses are supported/ },
  { what: 'a port out of range', listener: { name: 'L', address: { socket_address: { address: '0.0.0.0', port_value: 70000 } }, filter_chains: [{ filters: [hcm()] }] }, reason: /^listener L: address\.socket_address\.port_value: invalid port 70000/ },
  { what: 'no address string', listener: { name: 'L', address: { socket_address: { port_value: 80 } }, filter_chains: [{ filters: [hcm()] }] }, reason: /^listener L: address\.socket_address\.address: required/ },
  { what: 'a default_filter_chain without the tls_inspector', listener: { name: 'L', address, filter_chains: [{ filters: [hcm()] }], default_filter_chain: { filters: [tcp()] } }, reason: /^listener L: default_filter_chain: supported beside the tls_inspector only/ },
  { what: 'an unknown listener filter', listener: { name: 'L', address, listener_filters: [{ name: 'envoy.filters.listener.original_dst', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst' } }], filter_chains: [{ filters: [hcm()] }] }, reason: /^listener L: listener_filters\[0\]: unsupported listener filter .*OriginalDst/ },
  { what: 'two filters in a chain', listener: { name: 'L', address, filter_chains: [{ filters: [tcp(), hcm()] }] }, reason: /^listener L: filter_chains\[0\]\.filters: a chain must hold exactly one HttpConnectionManager or tcp_proxy filter, after any network RBAC filters \(got .*TcpProxy, .*HttpConnectionManager\)/ },
  { what: 'no filter in a chain', listener: { name: 'L', address, filter_chains: [{ filters: [] }] }, reason: /^listener L: filter_chains\[0\]\.filters: .*\(got none\)/ },
  { what: 'no chain at all', listener: { name: 'L', address, filter_chains: [] }, reason: /^listener L: filter_chains: supported: .*got 0 chain\(s\)/ },
  { what: 'three chains', listener: { name: 'L', address, filter_chains: [{ filters: [hcm()] }, { filters: [hcm()] }, { filters: [hcm()] }] }, reason: /^listener L: filter_chains: .*got 3 chain\(s\)/ },
  { what: 'a chain matching on destination_port', listener: detecting({ application_protocols: ['http/1.1'], destination_port: 80 }), reason: /^listener L: filter_chains\[0\]\.filter_chain_match: only application_protocols is supported \(got destination_port\)/ },
  { what: 'application_protocols other than plain HTTP', listener: detecting({ application_protocols: ['h2', 'http/1.1'] }), reason: /^listener L: filter_chains\[0\]\.filter_chain_match\.application_protocols: must name only .*\["h2","http\/1\.1"\]/ },
  { what: 'protocol detection without http_inspector', listener: detecting({ application_protocols: ['http/1.1'] }, false), reason: /^listener L: listener_filters: a chain matching application_protocols needs the http_inspector listener filter/ },
  { what: 'a detecting listener whose default chain is HTTP', listener: { name: 'L', address, listener_filters: [inspector], filter_chains: [{ filter_chain_match: { application_protocols: ['http/1.1'] }, filters: [hcm()] }, { filters: [hcm()] }] }, reason: /^listener L: filter_chains\[1\]\.filters: the default chain of a detecting listener must hold a tcp_proxy/ },
  { what: 'a detecting listener whose HTTP chain is a tcp_proxy', listener: { name: 'L', address, listener_filters: [inspector], filter_chains: [{ filter_chain_match: { application_protocols: ['http/1.1'] }, filters: [tcp()] }, { filters: [tcp()] }] }, reason: /^listener L: filter_chains\[0\]\.filters: the chain matching HTTP must hold an HttpConnectionManager/ },
  { what: 'a tcp_proxy without a cluster', listener: { name: 'L', address, filter_chains: [{ filters: [tcp({ cluster: undefined })] }] }, reason: /^listener L: filter_chains\[0\]: tcp_proxy\.cluster: required \(or weighted_clusters\)/ },
  { what: 'a tcp_proxy with no weighted cluster', listener: { name: 'L', address, filter_chains: [{ filters: [tcp({ cluster: undefined, weighted_clusters: { clusters: [] } })] }] }, reason: /^listener L: filter_chains\[0\]: tcp_proxy\.weighted_clusters\.clusters: at least one cluster is required/ },
  { what: 'a weighted cluster of weight 0', listener: { name: 'L', address, filter_chains: [{ filters: [tcp({ cluster: undefined, weighted_clusters: { clusters: [{ name: 'a', weight: 0 }] } })] }] }, reason: /^listener L: filter_chains\[0\]: tcp_proxy\.weighted_clusters\.clusters\[0\]\.weight: must be a whole number of at least 1/ },
  { what: 'a weighted cluster with metadata_match', listener: { name: 'L', address, filter_chains: [{ filters: [tcp({ cluster: undefined, weighted_clusters: { clusters: [{ name: 'a', weight: 1, metadata_match: {} }] } })] }] }, reason: /^listener L: filter_chains\[0\]: tcp_proxy\.weighted_clusters\.clusters\[0\]\.metadata_match: not supported/ },
  // The tls_inspector and its chains by server name.
  { what: 'server_names without the tls_inspector', listener: { name: 'L', address, filter_chains: [{ filter_chain_match: { server_names: ['a.com'] }, filters: [tcp()] }] }, reason: /^listener L: filter_chains\[0\]\.filter_chain_match\.server_names: needs the tls_inspector listener filter/ },
  { what: 'the http_inspector beside the tls_inspector', listener: sni([{ filters: [tcp()] }], { listener_filters: [tlsInspector, inspector] }), reason: /^listener L: listener_filters\[1\]: unsupported listener filter .*HttpInspector beside the tls_inspector/ },
  { what: 'JA3 fingerprinting', listener: sni([{ filters: [tcp()] }], { listener_filters: [{ ...tlsInspector, typed_config: { ...tlsInspector.typed_config, enable_ja3_fingerprinting: true } }] }), reason: /^listener L: listener_filters\[0\]\.typed_config\.enable_ja3_fingerprinting: not supported/ },
  { what: 'a chain matching more than server names', listener: sni([{ filter_chain_match: { server_names: ['a.com'], transport_protocol: 'tls' }, filters: [tcp()] }]), reason: /^listener L: filter_chains\[0\]\.filter_chain_match: only server_names is supported beside the tls_inspector \(got transport_protocol\)/ },
  { what: 'an HCM behind the tls_inspector', listener: sni([{ filter_chain_match: { server_names: ['a.com'] }, filters: [hcm()] }]), reason: /^listener L: filter_chains\[0\]\.filters: a chain of a tls_inspector listener must hold exactly one tcp_proxy/ },
  { what: 'server name "*"', listener: sni([{ filter_chain_match: { server_names: ['*'] }, filters: [tcp()] }]), reason: /^listener L: filter_chains\[0\]\.filter_chain_match\.server_names\[0\]: "\*" is not supported/ },
  { what: 'a partial wildcard', listener: sni([{ filter_chain_match: { server_names: ['a.com', '*w.example.com'] }, filters: [tcp()] }]), reason: /^listener L: filter_chains\[0\]\.filter_chain_match\.server_names\[1\]: "\*w\.example\.com" is no server name/ },
  { what: 'a name in two chains (names are case-insensitive)', listener: sni([{ name: 'one', filter_chain_match: { server_names: ['a.com'] }, filters: [tcp()] }, { filter_chain_match: { server_names: ['A.com'] }, filters: [tcp()] }]), reason: /^listener L: filter_chains\[1\]\.filter_chain_match\.server_names\[0\]: "A\.com" is matched by another chain too \(one\)/ },
  { what: 'two chains without server names', listener: sni([{ filters: [tcp()] }, { filters: [tcp()] }]), reason: /^listener L: filter_chains\[1\]: a second chain without server_names/ },
  { what: 'a default_filter_chain with a match', listener: sni([], { default_filter_chain: { filter_chain_match: { server_names: ['a.com'] }, filters: [tcp()] } }), reason: /^listener L: default_filter_chain\.filter_chain_match: must be empty/ },
  { what: 'a bad listener_filters_timeout', listener: sni([], { listener_filters_timeout: '-1s' }), reason: /^listener L: listener_filters_timeout: invalid duration/ },
  { what: 'an internal listener with an address', listener: sni([], { internal_listener: {} }), reason: /^listener L: internal_listener: an internal listener has no address/ },
  { what: 'an internal listener holding an HCM', listener: { name: 'L', internal_listener: {}, filter_chains: [{ filters: [hcm()] }] }, reason: /^listener L: internal_listener: an internal listener holding an HttpConnectionManager is not supported/ },
  { what: 'a tcp_proxy idle_timeout that is not a duration', listener: { name: 'L', address, filter_chains: [{ filters: [tcp({ idle_timeout: '5 minutes' })] }] }, reason: /^listener L: filter_chains\[0\]: tcp_proxy\.idle_timeout: invalid duration/ },
  { what: 'a negative tcp_proxy idle_timeout', listener: { name: 'L', address, filter_chains: [{ filters: [tcp({ idle_timeout: '-1s' })] }] }, reason: /^listener L: filter_chains\[0\]: tcp_proxy\.idle_timeout: invalid duration/ },
  { what: 'an unknown HTTP filter', listener: { name: 'L', address, filter_chains: [{ filters: [hcm({ http_filters: [{ name: 'envoy.filters.http.lua', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua' } }] })] }] }, reason: /^listener L: http_filters\[0\]: unsupported HTTP filter .*Lua/ },
  { what: 'an HCM with neither rds nor route_config', listener: { name: 'L', address, filter_chains: [{ filters: [hcm({ rds: undefined })] }] }, reason: /^listener L: the HttpConnectionManager needs rds or route_config/ },
  { what: 'rds without a route_config_name', listener: { name: 'L', address, filter_chains: [{ filters: [hcm({ rds: {} })] }] }, reason: /^listener L: rds\.route_config_name: required/ },
  { what: 'a bad stream_idle_timeout', listener: { name: 'L', address, filter_chains: [{ filters: [hcm({ stream_idle_timeout: 'soon' })] }] }, reason: /^listener L: stream_idle_timeout: invalid duration/ },
  { what: 'a bad request_headers_timeout', listener: { name: 'L', address, filter_chains: [{ filters: [hcm({ request_headers_timeout: '-2s' })] }] }, reason: /^listener L: request_headers_timeout: invalid duration/ },
  { what: 'a bad idle_timeout', listener: { name: 'L', address, filter_chains: [{ filters: [hcm({ common_http_protocol_options: { idle_timeout: 'x' } })] }] }, reason: /^listener L: common_http_protocol_options\.idle_timeout: invalid duration/ },
  { what: 'an inline route with a bad regex', listener: { name: 'L', address, filter_chains: [{ filters: [hcm({ rds: undefined, route_config: { name: 'inline', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { safe_regex: { regex: '(' } }, route: { cluster: 'c' } }] }] } })] }] }, reason: /^listener L: route_config: virtual_hosts\[0\] \(v\)\.routes\[0\]\.match\.safe_regex\.regex: invalid RE2 regex "\("/ },
  // AuthorizationPolicy's RBAC filters: what the sidecar cannot evaluate is refused, naming the listener, the filter's place and the field.
  { what: 'an RBAC policy with a CEL condition', listener: { name: 'L', address, filter_chains: [{ filters: [hcm({ http_filters: [rbacHttp({ rules: { policies: { p: { permissions: [{ any: true }], principals: [{ any: true }], condition: {} } } } }), router] })] }] }, reason: /^listener L: http_filters\[0\]\.typed_config\.rules\.policies\["p"\]\.condition: CEL conditions are not supported/ },
  { what: 'an RBAC matcher tree', listener: { name: 'L', address, filter_chains: [{ filters: [hcm({ http_filters: [rbacHttp({ matcher: {} }), router] })] }] }, reason: /^listener L: http_filters\[0\]\.typed_config\.matcher: RBAC matcher trees are not supported/ },
  { what: 'an RBAC filter after another HTTP filter', listener: { name: 'L', address, filter_chains: [{ filters: [hcm({ http_filters: [{ name: 'envoy.filters.http.fault', typed_config: { '@type': TYPE.fault } }, rbacHttp({}), router] })] }] }, reason: /^listener L: http_filters\[1\]: an RBAC or ext_authz filter must come before the other filters but authentication \(here after http_filters\[0\]\)/ },
  { what: 'network RBAC before an HCM', listener: { name: 'L', address, filter_chains: [{ filters: [rbacNet({ stat_prefix: 's' }), hcm()] }] }, reason: /^listener L: filter_chains\[0\]\.filters\[0\]: network RBAC before an HttpConnectionManager is not supported/ },
  { what: 'network RBAC after tcp_proxy', listener: { name: 'L', address, filter_chains: [{ filters: [tcp(), rbacNet({ stat_prefix: 's' })] }] }, reason: /^listener L: filter_chains\[0\]\.filters\[1\]: a network RBAC or ext_authz filter must come before/ },
  { what: 'network RBAC without stat_prefix', listener: { name: 'L', address, filter_chains: [{ filters: [rbacNet({}), tcp()] }] }, reason: /^listener L: filter_chains\[0\]\.filters\[0\]\.typed_config\.stat_prefix: required/ },
  { what: 'network RBAC with an HTTP-only rule', listener: { name: 'L', address, filter_chains: [{ filters: [rbacNet({ stat_prefix: 's', rules: { policies: { p: { permissions: [{ header: { name: ':path', string_match: { exact: '/' } } }], principals: [{ any: true }] } } } }), tcp()] }] }, reason: /^listener L: filter_chains\[0\]\.filters\[0\]\.typed_config\.rules\.policies\["p"\]\.permissions\[0\]/ },
];

for (const c of CASES) {
  test(`listener NACK reason: ${c.what}`, () => {
    assert.throws(
      () => convertListener(c.listener),
      (e: unknown) => {
        assert.ok(e instanceof ConvertError, `a ConvertError, not ${e}`);
        assert.match(e.message, c.reason);
        return true;
      },
    );
  });
}

test('the listeners the sidecar can apply convert (so the cases above fail for their own reason)', () => {
  assert.equal(convertListener({ name: 'L', address, filter_chains: [{ filters: [hcm()] }] }).kind, 'http');
  assert.deepEqual(convertListener({ name: 'L', address, filter_chains: [{ filters: [tcp({ idle_timeout: '2.5s' })] }] }).tcp, { clusters: [{ name: 'c', weight: 1 }], totalWeight: 1, idleTimeoutMs: 2500, listener: 'L' });
  assert.equal(convertListener({ name: 'L', address, filter_chains: [{ filters: [tcp({ idle_timeout: '0s' })] }] }).tcp!.idleTimeoutMs, 0);
  assert.equal(convertListener(detecting({ application_protocols: ['http/1.1', 'h2c'] })).kind, 'detect');
  // RBAC: HTTP filters before the rest, in order; network RBAC before tcp_proxy.
  const withAuthz = convertListener({ name: 'L', address, filter_chains: [{ filters: [hcm({ http_filters: [rbacHttp({ rules: { action: 'DENY' } }), { ...rbacHttp({}), name: 'second' }, router] })] }] });
  assert.deepEqual(withAuthz.authz!.map((f) => [f.name, f.rbac?.rules?.action]), [['envoy.filters.http.rbac', 'DENY'], ['second', undefined]]);
  const tcpAuthz = convertListener({ name: 'L', address, filter_chains: [{ filters: [rbacNet({ stat_prefix: 's', rules: {} }), tcp()] }] });
  assert.deepEqual(tcpAuthz.tcp!.rbac!.map((f) => [f.name, f.rbac?.kind, f.rbac?.rules?.action]), [['envoy.filters.network.rbac', 'network', 'ALLOW']]);
});

test('a tls_inspector listener: chains by server name, the most specific first, as Envoy picks them', () => {
  const to = (cluster: string) => [tcp({ cluster })];
  const l = convertListener({
    name: 'L',
    internal_listener: {},
    listener_filters: [tlsInspector],
    continue_on_listener_filters_timeout: true,
    filter_chains: [
      { name: 'wide', filter_chain_match: { server_names: ['*.example.com'] }, filters: to('wide') },
      { name: 'narrow', filter_chain_match: { server_names: ['*.a.example.com', 'B.example.com'] }, filters: to('narrow') },
      { name: 'exact', filter_chain_match: { server_names: ['x.a.example.com'] }, filters: to('exact') },
    ],
    default_filter_chain: { name: 'rest', filters: [tcp({ cluster: undefined, weighted_clusters: { clusters: [{ name: 'r1', weight: 3 }, { name: 'r2', weight: 1 }] } })] },
  });
  assert.deepEqual([l.kind, l.internal, l.address, l.port, l.sni!.timeoutMs, l.sni!.continueOnTimeout], ['sni', true, '', 0, 15_000, true]);
  const pick = (name: string | undefined) => chainFor(l.sni!, name)?.name;
  assert.equal(pick('x.a.example.com'), 'exact', 'an exact name before any wildcard, whatever the order');
  assert.equal(pick('y.a.example.com'), 'narrow', '*.a.example.com before *.example.com');
  assert.equal(pick('deep.y.a.example.com'), 'narrow', 'a wildcard covers more than one label');
  assert.equal(pick('b.example.com'), 'narrow', 'names are lower-cased');
  assert.equal(pick('c.example.com'), 'wide');
  assert.equal(pick('example.com'), 'rest', '*.example.com does not match example.com itself');
  assert.equal(pick('other.org'), 'rest');
  assert.equal(pick(undefined), 'rest', 'no server name: the default chain');
  const rest = chainFor(l.sni!, undefined)!.tcp;
  assert.deepEqual([pickTcpCluster(rest, 0), pickTcpCluster(rest, 0.74), pickTcpCluster(rest, 0.76), pickTcpCluster(rest, 0.999)], ['r1', 'r1', 'r2', 'r2'], 'weighted 3:1');
  const closed = convertListener(sni([{ filter_chain_match: { server_names: ['a.com'] }, filters: to('a') }], { listener_filters_timeout: '0s' }));
  assert.equal(chainFor(closed.sni!, 'b.com'), undefined, 'no default chain: a name nothing matches has nowhere to go');
  assert.equal(closed.sni!.timeoutMs, 0);
});
