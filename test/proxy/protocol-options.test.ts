// A cluster's upstream protocol, read from Envoy's protocol options as they cross the wire.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE, decode, encode } from '../../src/xds/protos.ts';
import { ConvertError, convertCluster } from '../../src/proxy/xds-client/convert.ts';

const HPO = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const base = { name: 'outbound|80||g.default.svc.cluster.local', type: 'EDS', eds_cluster_config: { service_name: 'g' }, connect_timeout: { seconds: 1 } };
const roundTrip = (c: object) => decode(TYPE.cluster, encode(TYPE.cluster, c));

test('HttpProtocolOptions with explicit http2_protocol_options: HTTP/2, after a protobuf round trip', () => {
  const c = roundTrip({ ...base, typed_extension_protocol_options: { [HPO]: { '@type': TYPE.httpProtocolOptions, explicit_http_config: { http2_protocol_options: {} } } } });
  assert.equal(c.typed_extension_protocol_options[HPO]['@type'], TYPE.httpProtocolOptions);
  assert.equal(convertCluster(c).protocol, 'http2');
});

test('explicit HTTP/1.1, the legacy http2_protocol_options, and nothing at all', () => {
  assert.equal(convertCluster(roundTrip({ ...base, typed_extension_protocol_options: { [HPO]: { '@type': TYPE.httpProtocolOptions, explicit_http_config: { http_protocol_options: {} } } } })).protocol, 'http1');
  assert.equal(convertCluster(roundTrip({ ...base, http2_protocol_options: {} })).protocol, 'http2');
  assert.equal(convertCluster(roundTrip(base)).protocol, 'http1');
});

test('protocol options the sidecar cannot honour are a NACK naming the field', () => {
  assert.throws(
    () => convertCluster({ ...base, typed_extension_protocol_options: { [HPO]: { '@type': TYPE.httpProtocolOptions, auto_config: {} } } }),
    (e: Error) => e instanceof ConvertError && /cluster outbound\|80\|\|g\.default\.svc\.cluster\.local: typed_extension_protocol_options\["envoy\.extensions\.upstreams\.http\.v3\.HttpProtocolOptions"\]: auto_config is not supported/.test(e.message),
  );
});
