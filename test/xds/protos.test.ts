// The pruned Envoy descriptor the sidecar loads must match the .proto files shipped in
// @grpc/grpc-js-xds: a dependency upgrade that changes them fails here until it is regenerated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { loadFullRoot, prunedDescriptor } from '../../src/xds/gen-protos.ts';
import { TYPE, decode, encode } from '../../src/xds/protos.ts';

test('src/xds/envoy-protos.json is up to date (regenerate: node src/xds/gen-protos.ts > src/xds/envoy-protos.json)', () => {
  const committed = fs.readFileSync(new URL('../../src/xds/envoy-protos.json', import.meta.url), 'utf8');
  assert.equal(committed, JSON.stringify(prunedDescriptor(loadFullRoot())) + '\n');
});

test('the pruned descriptor encodes exactly as the full .proto files do', () => {
  const full = loadFullRoot();
  const cluster = { name: 'c', type: 'EDS', eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } }, connect_timeout: { seconds: 1, nanos: 5 } };
  const t = full.lookupType('envoy.config.cluster.v3.Cluster');
  const viaFull = t.encode(t.fromObject(cluster)).finish();
  assert.deepEqual(Buffer.from(encode(TYPE.cluster, cluster)), Buffer.from(viaFull));
  assert.deepEqual(decode(TYPE.cluster, viaFull), cluster);
});

test('a google.protobuf.Struct is written and read in its JSON mapping (endpoint metadata, a transport socket match), nothing dropped', () => {
  const metadata = { filter_metadata: { 'envoy.transport_socket_match': { tlsMode: 'istio', n: 1.5, on: true, none: null, list: ['a', 2, { deep: 'x' }], nested: { a: { b: 'c' } } } } };
  const cla = { cluster_name: 'c', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 80 } } }, metadata }] }] };
  assert.deepEqual(decode(TYPE.endpoint, encode(TYPE.endpoint, cla)), cla);
  // The same bytes as a Struct built field by field (Value messages, no JSON mapping).
  const root = loadFullRoot();
  const [meta, struct, value] = ['envoy.config.core.v3.Metadata', 'google.protobuf.Struct', 'google.protobuf.Value'].map((n) => root.lookupType(n));
  const byHand = meta.encode(meta.create({ filter_metadata: { m: struct.create({ fields: { tlsMode: value.create({ stringValue: 'istio' }) } }) } })).finish();
  assert.deepEqual(Buffer.from(meta.encode(meta.fromObject({ filter_metadata: { m: { tlsMode: 'istio' } } })).finish()), Buffer.from(byHand));
});

test('the RBAC filters AuthorizationPolicies become (HTTP in the HCM, network before tcp_proxy) round-trip through the pruned descriptor unchanged, URI templates inside Any included', async () => {
  const { authzFilters } = await import('../../src/control/translate/authz.ts');
  const p = (name: string, spec: Record<string, unknown>, annotations?: Record<string, string>) => ({ apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name, namespace: 'foo', ...(annotations ? { annotations } : {}) }, spec }) as any;
  const policies = [
    p('deny', { action: 'DENY', rules: [{ from: [{ source: { notPrincipals: ['cluster.local/ns/foo/sa/ok'], ipBlocks: ['10.0.0.0/8'] } }], to: [{ operation: { paths: ['/admin/{**}', '*/x', '/y*'], methods: ['POST'], ports: ['80'] } }] }] }),
    p('allow', { rules: [{ from: [{ source: { namespaces: ['bar'] } }], when: [{ key: 'request.headers[x-a]', values: ['1'] }, { key: 'connection.sni', values: ['*.local'] }, { key: 'request.auth.claims[iss]', values: ['me'] }] }] }),
    p('audit', { action: 'AUDIT', rules: [{}] }),
    p('dry', { rules: [{}] }, { 'istio.io/dry-run': 'true' }),
  ];
  const { http, tcp } = authzFilters(policies, { namespace: 'foo', labels: {} }, { trustDomain: 'cluster.local' });
  assert.ok(http.length === 3 && tcp.length === 3);
  const hcm = { '@type': TYPE.hcm, stat_prefix: 'inbound|80', route_config: { name: 'r' }, http_filters: [...http, { name: 'envoy.filters.http.router', typed_config: { '@type': TYPE.router } }] };
  const listener = {
    name: 'inbound|80',
    filter_chains: [
      { name: 'http', filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }] },
      { name: 'tcp', filters: [...tcp, { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TYPE.tcpProxy, stat_prefix: 's', cluster: 'c' } }] },
    ],
  };
  assert.deepEqual(decode(TYPE.listener, encode(TYPE.listener, listener)), JSON.parse(JSON.stringify(listener)));
  assert.match(JSON.stringify(http), new RegExp(TYPE.uriTemplateMatch.replace(/\./g, '\\.')));
});
