// Unit tests, no sockets: every listener the sidecar cannot apply is refused by convert.ts with a
// reason that becomes the LDS NACK. Each reason names the listener and the field at fault.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConvertError, convertListener } from '../../src/proxy/xds-client/convert.ts';
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

const CASES: { what: string; listener: any; reason: RegExp }[] = [
  { what: 'no name', listener: { address, filter_chains: [{ filters: [hcm()] }] }, reason: /^listener \(unnamed\): name: required/ },
  { what: 'a pipe address', listener: { name: 'L', address: { pipe: { path: '/tmp/x' } }, filter_chains: [{ filters: [hcm()] }] }, reason: /^listener L: address: only socket_address addresses are supported/ },
  { what: 'a port out of range', listener: { name: 'L', address: { socket_address: { address: '0.0.0.0', port_value: 70000 } }, filter_chains: [{ filters: [hcm()] }] }, reason: /^listener L: address\.socket_address\.port_value: invalid port 70000/ },
  { what: 'no address string', listener: { name: 'L', address: { socket_address: { port_value: 80 } }, filter_chains: [{ filters: [hcm()] }] }, reason: /^listener L: address\.socket_address\.address: required/ },
  { what: 'a default_filter_chain', listener: { name: 'L', address, filter_chains: [{ filters: [hcm()] }], default_filter_chain: { filters: [tcp()] } }, reason: /^listener L: default_filter_chain: not supported/ },
  { what: 'an unknown listener filter', listener: { name: 'L', address, listener_filters: [{ name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } }], filter_chains: [{ filters: [hcm()] }] }, reason: /^listener L: listener_filters\[0\]: unsupported listener filter .*TlsInspector/ },
  { what: 'two filters in a chain', listener: { name: 'L', address, filter_chains: [{ filters: [tcp(), hcm()] }] }, reason: /^listener L: filter_chains\[0\]\.filters: a chain must hold exactly one HttpConnectionManager or tcp_proxy filter \(got .*TcpProxy, .*HttpConnectionManager\)/ },
  { what: 'no filter in a chain', listener: { name: 'L', address, filter_chains: [{ filters: [] }] }, reason: /^listener L: filter_chains\[0\]\.filters: .*\(got none\)/ },
  { what: 'no chain at all', listener: { name: 'L', address, filter_chains: [] }, reason: /^listener L: filter_chains: supported: .*got 0 chain\(s\)/ },
  { what: 'three chains', listener: { name: 'L', address, filter_chains: [{ filters: [hcm()] }, { filters: [hcm()] }, { filters: [hcm()] }] }, reason: /^listener L: filter_chains: .*got 3 chain\(s\)/ },
  { what: 'a chain matching on destination_port', listener: detecting({ application_protocols: ['http/1.1'], destination_port: 80 }), reason: /^listener L: filter_chains\[0\]\.filter_chain_match: only application_protocols is supported \(got destination_port\)/ },
  { what: 'application_protocols other than plain HTTP', listener: detecting({ application_protocols: ['h2', 'http/1.1'] }), reason: /^listener L: filter_chains\[0\]\.filter_chain_match\.application_protocols: must name only .*\["h2","http\/1\.1"\]/ },
  { what: 'protocol detection without http_inspector', listener: detecting({ application_protocols: ['http/1.1'] }, false), reason: /^listener L: listener_filters: a chain matching application_protocols needs the http_inspector listener filter/ },
  { what: 'a detecting listener whose default chain is HTTP', listener: { name: 'L', address, listener_filters: [inspector], filter_chains: [{ filter_chain_match: { application_protocols: ['http/1.1'] }, filters: [hcm()] }, { filters: [hcm()] }] }, reason: /^listener L: filter_chains\[1\]\.filters: the default chain of a detecting listener must hold a tcp_proxy/ },
  { what: 'a detecting listener whose HTTP chain is a tcp_proxy', listener: { name: 'L', address, listener_filters: [inspector], filter_chains: [{ filter_chain_match: { application_protocols: ['http/1.1'] }, filters: [tcp()] }, { filters: [tcp()] }] }, reason: /^listener L: filter_chains\[0\]\.filters: the chain matching HTTP must hold an HttpConnectionManager/ },
  { what: 'a tcp_proxy without a cluster', listener: { name: 'L', address, filter_chains: [{ filters: [tcp({ cluster: undefined, weighted_clusters: { clusters: [] } })] }] }, reason: /^listener L: filter_chains\[0\]: tcp_proxy\.cluster: required/ },
  { what: 'a tcp_proxy idle_timeout that is not a duration', listener: { name: 'L', address, filter_chains: [{ filters: [tcp({ idle_timeout: '5 minutes' })] }] }, reason: /^listener L: filter_chains\[0\]: tcp_proxy\.idle_timeout: invalid duration/ },
  { what: 'a negative tcp_proxy idle_timeout', listener: { name: 'L', address, filter_chains: [{ filters: [tcp({ idle_timeout: '-1s' })] }] }, reason: /^listener L: filter_chains\[0\]: tcp_proxy\.idle_timeout: invalid duration/ },
  { what: 'an unknown HTTP filter', listener: { name: 'L', address, filter_chains: [{ filters: [hcm({ http_filters: [{ name: 'envoy.filters.http.lua', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua' } }] })] }] }, reason: /^listener L: http_filters\[0\]: unsupported HTTP filter .*Lua/ },
  { what: 'an HCM with neither rds nor route_config', listener: { name: 'L', address, filter_chains: [{ filters: [hcm({ rds: undefined })] }] }, reason: /^listener L: the HttpConnectionManager needs rds or route_config/ },
  { what: 'rds without a route_config_name', listener: { name: 'L', address, filter_chains: [{ filters: [hcm({ rds: {} })] }] }, reason: /^listener L: rds\.route_config_name: required/ },
  { what: 'a bad stream_idle_timeout', listener: { name: 'L', address, filter_chains: [{ filters: [hcm({ stream_idle_timeout: 'soon' })] }] }, reason: /^listener L: stream_idle_timeout: invalid duration/ },
  { what: 'a bad request_headers_timeout', listener: { name: 'L', address, filter_chains: [{ filters: [hcm({ request_headers_timeout: '-2s' })] }] }, reason: /^listener L: request_headers_timeout: invalid duration/ },
  { what: 'a bad idle_timeout', listener: { name: 'L', address, filter_chains: [{ filters: [hcm({ common_http_protocol_options: { idle_timeout: 'x' } })] }] }, reason: /^listener L: common_http_protocol_options\.idle_timeout: invalid duration/ },
  { what: 'an inline route with a bad regex', listener: { name: 'L', address, filter_chains: [{ filters: [hcm({ rds: undefined, route_config: { name: 'inline', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { safe_regex: { regex: '(' } }, route: { cluster: 'c' } }] }] } })] }] }, reason: /^listener L: route_config: virtual_hosts\[0\] \(v\)\.routes\[0\]\.match\.safe_regex\.regex: invalid RE2 regex "\("/ },
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
  assert.deepEqual(convertListener({ name: 'L', address, filter_chains: [{ filters: [tcp({ idle_timeout: '2.5s' })] }] }).tcp, { cluster: 'c', idleTimeoutMs: 2500 });
  assert.equal(convertListener({ name: 'L', address, filter_chains: [{ filters: [tcp({ idle_timeout: '0s' })] }] }).tcp!.idleTimeoutMs, 0);
  assert.equal(convertListener(detecting({ application_protocols: ['http/1.1', 'h2c'] })).kind, 'detect');
});
