// Unit tests, no sockets: the mTLS contract's shapes convert (clusters' transport sockets, endpoint
// tlsMode, inbound mTLS chains), each TLS shape the sidecar cannot honour is a NACK naming the
// resource and field, and the choices the sidecar makes from them (Envoy's rules) are right.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConvertError, convertCluster, convertEndpoints, convertListener, tlsChainFor, transportFor } from '../../src/proxy/xds-client/convert.ts';
import { TYPE } from '../../src/xds/types.ts';
import { encode, decode } from '../../src/xds/protos.ts';
import { DEFAULT_SECRET, ISTIO_TLS_MODE, RAW_BUFFER, ROOTCA_SECRET, TLS_INSPECTOR, downstreamTls, mtlsInbound, spiffe, struct, transportSocketMatches, upstreamTls } from '../fixtures/mtls.ts';

const address = { socket_address: { address: '127.0.0.1', port_value: 15006 } };
const hcm = { name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': TYPE.hcm, stat_prefix: 's', rds: { route_config_name: 'r' } } };
const tcp = { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TYPE.tcpProxy, stat_prefix: 's', cluster: 'inbound|80||' } };
const httpInspector = { name: 'envoy.filters.listener.http_inspector', typed_config: { '@type': TYPE.httpInspector } };
const SAN = spiffe('default', 'app');
const SNI = 'outbound_.80_._.app.default.svc.cluster.local';

const eds = (extra: object = {}) => ({ name: 'outbound|80||app.default.svc.cluster.local', type: 'EDS', eds_cluster_config: { service_name: 'outbound|80||app.default.svc.cluster.local' }, connect_timeout: '1s', ...extra });
const httpListener = { name: 'inbound|15006', address, filter_chains: [{ filters: [hcm] }] };
const detectListener = { name: 'inbound|15006', address, listener_filters: [httpInspector], filter_chains: [{ name: 'http', filter_chain_match: { application_protocols: ['http/1.1', 'h2c'] }, filters: [hcm] }, { name: 'tcp', filters: [tcp] }] };
const tcpListener = { name: 'inbound|15006', address, filter_chains: [{ filters: [tcp] }] };

test("a cluster's transport_socket_matches, in the contract's shape, convert; Struct matches in either form", () => {
  const c = convertCluster(eds({ transport_socket_matches: transportSocketMatches([SAN], SNI) }));
  assert.equal(c.transportSocketMatches!.length, 2);
  const [istio, disabled] = c.transportSocketMatches!;
  assert.deepEqual(istio!.match, { tlsMode: 'istio' });
  assert.deepEqual(istio!.tls && { sni: istio.tls.sni, alpn: istio.tls.alpn, sans: istio.tls.sans }, { sni: SNI, alpn: ['istio-peer-exchange', 'istio'], sans: [SAN] });
  assert.deepEqual(disabled, { name: 'tlsMode-disabled', match: {} });
  // Plain JSON Structs (a hand-written resource) read the same.
  const plain = convertCluster(eds({ transport_socket_matches: [{ name: 'tlsMode-istio', match: { tlsMode: 'istio' }, transport_socket: upstreamTls([SAN], SNI) }] }));
  assert.deepEqual(plain.transportSocketMatches![0]!.match, { tlsMode: 'istio' });
  // A cluster without any stays plaintext; a transport_socket alone applies to every endpoint.
  assert.equal(convertCluster(eds()).transportSocketMatches, undefined);
  assert.equal(convertCluster(eds({ transport_socket: upstreamTls([], SNI) })).transportSocket!.sni, SNI);
  assert.equal(convertCluster(eds({ transport_socket: RAW_BUFFER })).transportSocket, undefined);
});

test('the shapes survive the proto round trip the control plane puts them through', () => {
  const cluster = eds({ connect_timeout: { seconds: 1 }, transport_socket_matches: transportSocketMatches([SAN], SNI) });
  const back = decode(TYPE.cluster, encode(TYPE.cluster, cluster));
  const c = convertCluster(back);
  assert.deepEqual(c.transportSocketMatches!.map((m) => [m.name, m.match, m.tls?.sans]), [['tlsMode-istio', { tlsMode: 'istio' }, [SAN]], ['tlsMode-disabled', {}, undefined]]);
  const cla = { cluster_name: 'x', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 80 } } }, metadata: ISTIO_TLS_MODE }] }] };
  assert.deepEqual(convertEndpoints(decode(TYPE.endpoint, encode(TYPE.endpoint, cla)))[0]!.socketMatch, { tlsMode: 'istio' });
  const l = convertListener(decode(TYPE.listener, encode(TYPE.listener, mtlsInbound(httpListener, 'STRICT'))));
  assert.equal(l.mtls!.chains[0]!.name, 'mtls');
});

test("Envoy's transport socket choice: the first match that is a subset of the endpoint's metadata, else the cluster's transport_socket", () => {
  const c = convertCluster(eds({ transport_socket_matches: transportSocketMatches([SAN], SNI) }));
  assert.equal(transportFor(c, { socketMatch: { tlsMode: 'istio' } })!.sni, SNI);
  assert.equal(transportFor(c, { socketMatch: { tlsMode: 'istio', other: 'x' } })!.sni, SNI);
  assert.equal(transportFor(c, {}), undefined); // tlsMode-disabled: {} matches everything, raw_buffer
  assert.equal(transportFor(c, { socketMatch: { tlsMode: 'disabled' } }), undefined);
  const fallback = convertCluster(eds({ transport_socket: upstreamTls([], 'fallback'), transport_socket_matches: [{ name: 'm', match: { tlsMode: 'istio' }, transport_socket: upstreamTls([SAN], SNI) }] }));
  assert.equal(transportFor(fallback, {})!.sni, 'fallback');
  assert.equal(transportFor(fallback, { socketMatch: { tlsMode: 'istio' } })!.sni, SNI);
  // Different contexts are told apart (pools never share a connection across them).
  assert.notEqual(transportFor(fallback, {})!.key, transportFor(fallback, { socketMatch: { tlsMode: 'istio' } })!.key);
});

test('endpoint metadata: tlsMode is read; other filter_metadata is ignored', () => {
  const eps = convertEndpoints({ cluster_name: 'x', endpoints: [{ lb_endpoints: [
    { endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 80 } } }, metadata: ISTIO_TLS_MODE },
    { endpoint: { address: { socket_address: { address: '10.0.0.2', port_value: 80 } } }, metadata: { filter_metadata: { istio: struct({ workload: 'w' }) } } },
    { endpoint: { address: { socket_address: { address: '10.0.0.3', port_value: 80 } } } },
  ] }] });
  assert.deepEqual(eps.map((e) => e.socketMatch), [{ tlsMode: 'istio' }, undefined, undefined]);
});

test('inbound listeners: STRICT and PERMISSIVE, for HTTP, TCP and detecting ports', () => {
  const strict = convertListener(mtlsInbound(httpListener, 'STRICT'));
  assert.equal(strict.kind, 'http');
  assert.equal(strict.rdsName, 'r');
  assert.equal(strict.mtls!.plaintext, false);
  assert.deepEqual(strict.mtls!.chains.map((c) => [c.name, c.serve, c.tls!.requireClientCert]), [['mtls', 'http', true]]);
  const permissive = convertListener(mtlsInbound(httpListener, 'PERMISSIVE'));
  assert.equal(permissive.kind, 'http');
  assert.equal(permissive.mtls!.plaintext, true);
  const strictDetect = convertListener(mtlsInbound(detectListener, 'STRICT'));
  assert.equal(strictDetect.kind, 'http');
  assert.deepEqual(strictDetect.mtls!.chains.map((c) => [c.name, c.serve, c.tcp?.clusters[0]!.name]), [['mtls-http', 'http', undefined], ['mtls-tcp', 'tcp', 'inbound|80||']]);
  const permissiveDetect = convertListener(mtlsInbound(detectListener, 'PERMISSIVE'));
  assert.equal(permissiveDetect.kind, 'detect');
  assert.equal(permissiveDetect.mtls!.plaintext, true);
  const strictTcp = convertListener(mtlsInbound(tcpListener, 'STRICT'));
  assert.equal(strictTcp.kind, 'tcp');
  assert.deepEqual(strictTcp.mtls!.chains.map((c) => c.serve), ['tcp']);
  assert.equal(convertListener(mtlsInbound(tcpListener, 'PERMISSIVE')).kind, 'tcp');
  assert.equal(convertListener(mtlsInbound(httpListener, 'DISABLE')).mtls, undefined);
  // raw_buffer as an explicit transport_protocol is the plaintext chain.
  const raw = convertListener({ ...mtlsInbound(httpListener, 'STRICT'), filter_chains: [...mtlsInbound(httpListener, 'STRICT').filter_chains, { filter_chain_match: { transport_protocol: 'raw_buffer' }, filters: [hcm] }] });
  assert.equal(raw.mtls!.plaintext, true);
});

test("Envoy's chain choice by ALPN: the client's offer in its order, then a chain without application_protocols; none: closed", () => {
  const d = convertListener(mtlsInbound(detectListener, 'STRICT')).mtls!;
  assert.equal(tlsChainFor(d, ['istio-h2', 'istio-peer-exchange', 'istio'])!.name, 'mtls-http');
  assert.equal(tlsChainFor(d, ['istio-http/1.1', 'istio'])!.name, 'mtls-http');
  assert.equal(tlsChainFor(d, ['istio-peer-exchange', 'istio'])!.name, 'mtls-tcp');
  assert.equal(tlsChainFor(d, ['h2', 'http/1.1']), undefined);
  assert.equal(tlsChainFor(d, []), undefined);
  const any = convertListener({ name: 'L', address, listener_filters: [TLS_INSPECTOR], filter_chains: [{ filter_chain_match: { transport_protocol: 'tls' }, transport_socket: downstreamTls(), filters: [tcp] }] }).mtls!;
  assert.equal(tlsChainFor(any, [])!.serve, 'tcp');
});

const common = (o: object) => ({ common: o });
const cluster = (ts: object) => eds({ transport_socket: ts });
const strictWith = (ts: object, chain: object = {}) => ({ name: 'L', address, listener_filters: [TLS_INSPECTOR], filter_chains: [{ filter_chain_match: { transport_protocol: 'tls', application_protocols: ['istio'] }, transport_socket: ts, filters: [hcm], ...chain }] });
const C = 'cluster outbound\\|80\\|\\|app\\.default\\.svc\\.cluster\\.local: transport_socket\\.typed_config';
const L = 'listener L: filter_chains\\[0\\]\\.transport_socket\\.typed_config';

const CASES: { what: string; cluster?: any; listener?: any; reason: RegExp }[] = [
  { what: 'inline certificates', cluster: cluster(upstreamTls([SAN], SNI, common({ tls_certificates: [{ certificate_chain: { inline_string: 'x' } }] }))), reason: new RegExp(`^${C}\\.common_tls_context\\.tls_certificates: inline certificates do not go with the mesh's secrets`) },
  { what: 'another certificate secret', cluster: cluster(upstreamTls([SAN], SNI, common({ tls_certificate_sds_secret_configs: [{ ...DEFAULT_SECRET, name: 'file-cert:/a' }] }))), reason: new RegExp(`^${C}\\.common_tls_context\\.tls_certificate_sds_secret_configs\\[0\\]\\.name: the secret must be "default"`) },
  { what: 'two certificate secrets', cluster: cluster(upstreamTls([SAN], SNI, common({ tls_certificate_sds_secret_configs: [DEFAULT_SECRET, DEFAULT_SECRET] }))), reason: new RegExp(`^${C}\\.common_tls_context\\.tls_certificate_sds_secret_configs: exactly one secret`) },
  { what: 'another roots secret', cluster: cluster(upstreamTls([SAN], SNI, common({ combined_validation_context: { default_validation_context: {}, validation_context_sds_secret_config: { ...ROOTCA_SECRET, name: 'file-root:/r' } } }))), reason: new RegExp(`^${C}\\.common_tls_context\\.combined_validation_context\\.validation_context_sds_secret_config\\.name: the secret must be "ROOTCA"`) },
  { what: 'an inline validation context', cluster: cluster(upstreamTls([SAN], SNI, common({ combined_validation_context: undefined, validation_context: { trusted_ca: { inline_string: 'x' } } }))), reason: new RegExp(`^${C}\\.common_tls_context\\.validation_context: an inline validation context does not go with the mesh's secrets`) },
  { what: 'inline trusted_ca beside ROOTCA', cluster: cluster(upstreamTls([SAN], SNI, common({ combined_validation_context: { default_validation_context: { trusted_ca: { inline_string: 'x' } }, validation_context_sds_secret_config: ROOTCA_SECRET } }))), reason: new RegExp(`^${C}\\.common_tls_context\\.combined_validation_context\\.default_validation_context\\.trusted_ca: inline roots are not supported`) },
  { what: 'a prefix SAN matcher', cluster: cluster(upstreamTls([SAN], SNI, common({ combined_validation_context: { default_validation_context: { match_subject_alt_names: [{ prefix: 'spiffe://' }] }, validation_context_sds_secret_config: ROOTCA_SECRET } }))), reason: new RegExp(`^${C}\\.common_tls_context\\.combined_validation_context\\.default_validation_context\\.match_subject_alt_names\\[0\\]\\.prefix: only exact SAN matchers are supported`) },
  { what: 'a case-insensitive SAN matcher', cluster: cluster(upstreamTls([SAN], SNI, common({ combined_validation_context: { default_validation_context: { match_subject_alt_names: [{ exact: SAN, ignore_case: true }] }, validation_context_sds_secret_config: ROOTCA_SECRET } }))), reason: /match_subject_alt_names\[0\]\.ignore_case: not supported/ },
  { what: 'a SAN list on the server side', listener: strictWith(downstreamTls(common({ combined_validation_context: { default_validation_context: { match_subject_alt_names: [{ exact: SAN }] }, validation_context_sds_secret_config: ROOTCA_SECRET } }))), reason: new RegExp(`^${L}\\.common_tls_context\\.combined_validation_context\\.default_validation_context\\.match_subject_alt_names: not supported on a server-side context`) },
  { what: 'a validation option other than SANs (CRLs)', cluster: cluster(upstreamTls([SAN], SNI, common({ combined_validation_context: { default_validation_context: { crl: { inline_string: 'x' } }, validation_context_sds_secret_config: ROOTCA_SECRET } }))), reason: /default_validation_context\.crl: not supported/ },
  { what: 'cipher suites', cluster: cluster(upstreamTls([SAN], SNI, common({ tls_params: { cipher_suites: ['ECDHE-RSA-AES128-GCM-SHA256'] } }))), reason: new RegExp(`^${C}\\.common_tls_context\\.tls_params\\.cipher_suites: not supported`) },
  { what: 'a maximum version below TLS 1.2', cluster: cluster(upstreamTls([SAN], SNI, common({ tls_params: { tls_maximum_protocol_version: 'TLSv1_1' } }))), reason: /tls_params\.tls_maximum_protocol_version: TLSv1_1: the sidecar speaks TLS 1.2 and 1.3 only/ },
  { what: 'SDS from another server', cluster: cluster(upstreamTls([SAN], SNI, common({ tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { api_config_source: { grpc_services: [{ envoy_grpc: { cluster_name: 'vault' } }] } } }] }))), reason: /tls_certificate_sds_secret_configs\[0\]\.sds_config: only the sidecar's own SDS/ },
  { what: 'renegotiation', cluster: cluster(upstreamTls([SAN], SNI, { context: { allow_renegotiation: true } })), reason: new RegExp(`^${C}\\.allow_renegotiation: not supported`) },
  { what: 'an unknown transport socket', cluster: cluster({ name: 'envoy.transport_sockets.alts', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.alts.v3.Alts' } }), reason: new RegExp(`^${C}: unsupported transport socket .*Alts`) },
  { what: 'a DownstreamTlsContext on a cluster', cluster: cluster(downstreamTls()), reason: new RegExp(`^${C}: unsupported transport socket .*DownstreamTlsContext`) },
  { what: 'transport_socket_match_criteria', cluster: eds({ transport_socket_match_criteria: {} }), reason: /transport_socket_match_criteria: not supported/ },
  { what: 'a match entry without a socket', cluster: eds({ transport_socket_matches: [{ name: 'x', match: {} }] }), reason: /transport_socket_matches\[0\]\.transport_socket: required/ },
  { what: 'a match entry without a name', cluster: eds({ transport_socket_matches: [{ match: {}, transport_socket: RAW_BUFFER }] }), reason: /transport_socket_matches\[0\]\.name: required/ },
  { what: 'no common_tls_context', cluster: cluster({ name: 'envoy.transport_sockets.tls', typed_config: { '@type': TYPE.upstreamTls, sni: 'x' } }), reason: new RegExp(`^${C}\\.common_tls_context: required`) },
  { what: 'no client certificate required', listener: strictWith(downstreamTls({ context: { require_client_certificate: false } })), reason: new RegExp(`^${L}\\.require_client_certificate: must be true`) },
  { what: 'require_sni', listener: strictWith(downstreamTls({ context: { require_sni: true } })), reason: new RegExp(`^${L}\\.require_sni: not supported`) },
  { what: 'an OCSP staple policy', listener: strictWith(downstreamTls({ context: { ocsp_staple_policy: 'STRICT_STAPLING' } })), reason: new RegExp(`^${L}\\.ocsp_staple_policy: not supported`) },
  { what: 'an UpstreamTlsContext on a chain', listener: strictWith(upstreamTls([], 'x')), reason: new RegExp(`^${L}: unsupported transport socket .*UpstreamTlsContext`) },
  { what: 'TLS chains without the tls_inspector', listener: { ...strictWith(downstreamTls()), listener_filters: [] }, reason: /^listener L: listener_filters: chains matching transport_protocol .* need the tls_inspector/ },
  { what: "a TLS context on a chain that does not match transport_protocol 'tls'", listener: strictWith(downstreamTls(), { filter_chain_match: { application_protocols: ['istio'] } }), reason: /^listener L: filter_chains\[0\]\.filter_chain_match\.transport_protocol: a chain that terminates TLS must match transport_protocol 'tls'/ },
  { what: 'TLS passed through to an HCM (it cannot read TLS it does not terminate)', listener: { ...strictWith(downstreamTls()), filter_chains: [...strictWith(downstreamTls()).filter_chains, { filter_chain_match: { transport_protocol: 'tls' }, filters: [hcm] }] }, reason: /^listener L: filter_chains\[1\]\.filters: a chain that passes TLS through \(no transport_socket\) must hold exactly one tcp_proxy filter/ },
  { what: 'a TLS chain matching server_names too', listener: strictWith(downstreamTls(), { filter_chain_match: { transport_protocol: 'tls', server_names: ['a'] } }), reason: /^listener L: filter_chains\[0\]\.filter_chain_match\.server_names: not supported beside transport_protocol/ },
  { what: 'another transport_protocol', listener: strictWith(downstreamTls(), { filter_chain_match: { transport_protocol: 'quic' } }), reason: /^listener L: filter_chains\[0\]\.filter_chain_match\.transport_protocol: "quic" is not supported/ },
  { what: 'two filters in a TLS chain', listener: strictWith(downstreamTls(), { filters: [hcm, tcp] }), reason: /^listener L: filter_chains\[0\]\.filters: a TLS chain must hold exactly one/ },
  { what: 'a TLS chain with another HCM than the plaintext one', listener: { ...strictWith(downstreamTls()), filter_chains: [...strictWith(downstreamTls()).filter_chains, { filters: [{ ...hcm, typed_config: { ...hcm.typed_config, rds: { route_config_name: 'other' } } }] }] }, reason: /^listener L: filter_chains: the TLS chains and the plaintext chains must hold the same HttpConnectionManager/ },
  { what: 'a default_filter_chain beside TLS chains', listener: { ...strictWith(downstreamTls()), default_filter_chain: { filters: [tcp] } }, reason: /^listener L: default_filter_chain: not supported beside TLS chains/ },
  { what: 'an internal listener with TLS chains', listener: { ...strictWith(downstreamTls()), address: undefined, internal_listener: {} }, reason: /^listener L: internal_listener: an internal listener cannot terminate TLS/ },
];

for (const c of CASES) {
  test(`NACK: ${c.what}`, () => {
    assert.throws(
      () => (c.cluster ? convertCluster(c.cluster) : convertListener(c.listener)),
      (e: unknown) => {
        assert.ok(e instanceof ConvertError, `not a ConvertError: ${e}`);
        assert.match(e.message, c.reason);
        return true;
      },
    );
  });
}

test("tls_params' versions are kept (the sidecar's own range is 1.2 to 1.3) and tell pools apart", () => {
  const at = (params: object | undefined) => convertCluster(cluster(upstreamTls([SAN], SNI, params ? common({ tls_params: params }) : {}))).transportSocket!;
  assert.deepEqual(at(undefined).versions, { min: 'TLSv1.2', max: 'TLSv1.3' });
  assert.deepEqual(at({ tls_minimum_protocol_version: 'TLSv1_0' }).versions, { min: 'TLSv1.2', max: 'TLSv1.3' });
  assert.deepEqual(at({ tls_minimum_protocol_version: 'TLSv1_3' }).versions, { min: 'TLSv1.3', max: 'TLSv1.3' });
  assert.deepEqual(at({ tls_minimum_protocol_version: 'TLSv1_2', tls_maximum_protocol_version: 'TLSv1_2' }).versions, { min: 'TLSv1.2', max: 'TLSv1.2' });
  assert.notEqual(at(undefined).key, at({ tls_minimum_protocol_version: 'TLSv1_3' }).key);
  const l = convertListener(strictWith(downstreamTls(common({ tls_params: { tls_minimum_protocol_version: 'TLSv1_3' } }))));
  assert.deepEqual(l.mtls!.chains[0]!.tls!.versions, { min: 'TLSv1.3', max: 'TLSv1.3' });
  const two = { ...strictWith(downstreamTls()), filter_chains: [...strictWith(downstreamTls()).filter_chains, { name: 'b', filter_chain_match: { transport_protocol: 'tls', application_protocols: ['istio-h2'] }, transport_socket: downstreamTls(common({ tls_params: { tls_minimum_protocol_version: 'TLSv1_3' } })), filters: [hcm] }] };
  assert.throws(() => convertListener(two), /^Error: listener L: filter_chains: every TLS chain must allow the same TLS versions \(chain b differs/);
});

test("PERMISSIVE's passthrough chain: TLS without a transport socket, to its tcp_proxy, picked when no istio ALPN is offered", () => {
  const l = convertListener({ ...strictWith(downstreamTls()), filter_chains: [...strictWith(downstreamTls()).filter_chains, { name: 'tls-passthrough', filter_chain_match: { transport_protocol: 'tls' }, filters: [tcp] }] });
  const pass = l.mtls!.chains.find((c) => c.name === 'tls-passthrough')!;
  assert.equal(pass.tls, undefined);
  assert.equal(pass.serve, 'tcp');
  assert.deepEqual(pass.alpn, []);
  assert.equal(tlsChainFor(l.mtls!, ['h2', 'http/1.1'])?.name, 'tls-passthrough');
  assert.equal(tlsChainFor(l.mtls!, [])?.name, 'tls-passthrough');
  assert.notEqual(tlsChainFor(l.mtls!, ['istio'])?.name, 'tls-passthrough');
});

