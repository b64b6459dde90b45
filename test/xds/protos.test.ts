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
