// TLS origination in the xDS (docs/mtls.md, "TLS origination"): a DestinationRule's SIMPLE and
// MUTUAL become the UpstreamTlsContext Istio's constructUpstreamTLS emits, at every level the rule
// has (trafficPolicy, portLevelSettings, subsets), automatic mTLS gives way to it, and the cluster
// survives the protobuf encoder and converts in the sidecar to what it asked for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { translate, type XdsResources } from '../../src/control/translate/translate.ts';
import { convertCluster } from '../../src/proxy/xds-client/convert.ts';
import { TYPE, decode, encode } from '../../src/xds/protos.ts';
import { meshOf, workload } from '../snapshot.ts';

const client = workload('client', { serviceAccount: 'client-sa', port: 42000 });
const SDS = {
  api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }], set_node_on_first_message_only: true },
  initial_fetch_timeout: { seconds: 0 },
  resource_api_version: 'V3',
};
const HPO = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const ALPN_OVERRIDE_OFF = { filter_metadata: { istio: { alpn_override: 'false' } } };

const se = (name: string, spec: object) => ({ apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name }, spec });
const dr = (name: string, spec: object) => ({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name }, spec });
type Cluster = Record<string, any>;
const clusterOf = (x: XdsResources, name: string) => x.clusters[name] as Cluster;

/** Istio's egress TLS origination task: port 80 to 443, SIMPLE on port 80 only. */
const CNN = se('cnn', { hosts: ['edition.cnn.com'], ports: [{ number: 80, name: 'http-port', protocol: 'HTTP', targetPort: 443 }, { number: 443, name: 'https-port', protocol: 'HTTPS' }], resolution: 'DNS' });
const CNN_DR = dr('cnn', { host: 'edition.cnn.com', trafficPolicy: { portLevelSettings: [{ port: { number: 80 }, tls: { mode: 'SIMPLE' } }] } });

test('the egress task: port 80 gets TLS to 443 with the default roots, SNI and SAN from the host; port 443 is left alone', () => {
  const x = translate(meshOf([CNN, CNN_DR], [client]), client);
  const c = clusterOf(x, 'outbound|80||edition.cnn.com');
  assert.deepEqual(c.transport_socket, {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': TYPE.upstreamTls,
      common_tls_context: { combined_validation_context: { default_validation_context: {}, validation_context_sds_secret_config: { name: 'file-root:system', sds_config: SDS } } },
    },
  });
  assert.deepEqual(c.metadata, ALPN_OVERRIDE_OFF);
  assert.deepEqual(c.typed_extension_protocol_options[HPO].upstream_http_protocol_options, { auto_sni: true, auto_san_validation: true });
  assert.equal(c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value, 443);
  const https = clusterOf(x, 'outbound|443||edition.cnn.com');
  assert.equal(https.transport_socket, undefined);
  assert.equal(https.metadata, undefined);
});

test('MUTUAL with every field: file secrets by SDS name, SANs, CRL, sni (then no auto_sni); insecureSkipVerify: an empty validation context', () => {
  const tls = { mode: 'MUTUAL', clientCertificate: '/etc/certs/client.pem', privateKey: '/etc/certs/key.pem', caCertificates: '/etc/certs/ca.pem', caCrl: '/etc/certs/crl.pem', subjectAltNames: ['db.example.com'], sni: 'db.example.com' };
  const x = translate(meshOf([se('db', { hosts: ['db.example.com'], ports: [{ number: 5432, name: 'tcp', protocol: 'TCP' }], resolution: 'STATIC', endpoints: [{ address: '10.0.0.1' }] }), dr('db', { host: 'db.example.com', trafficPolicy: { tls } })], [client]), client);
  const c = clusterOf(x, 'outbound|5432||db.example.com');
  assert.deepEqual(c.transport_socket.typed_config, {
    '@type': TYPE.upstreamTls,
    common_tls_context: {
      tls_certificate_sds_secret_configs: [{ name: 'file-cert:/etc/certs/client.pem~/etc/certs/key.pem', sds_config: SDS }],
      combined_validation_context: {
        default_validation_context: { match_subject_alt_names: [{ exact: 'db.example.com' }], crl: { filename: '/etc/certs/crl.pem' } },
        validation_context_sds_secret_config: { name: 'file-root:/etc/certs/ca.pem', sds_config: SDS },
      },
    },
    sni: 'db.example.com',
  });
  assert.equal(c.typed_extension_protocol_options, undefined, 'an sni of its own: neither auto_sni nor auto_san_validation');

  const skip = translate(meshOf([CNN, dr('cnn', { host: 'edition.cnn.com', trafficPolicy: { tls: { mode: 'SIMPLE', insecureSkipVerify: true } } })], [client]), client);
  const s = clusterOf(skip, 'outbound|80||edition.cnn.com');
  assert.deepEqual(s.transport_socket.typed_config.common_tls_context, { validation_context: {} });
  assert.deepEqual(s.typed_extension_protocol_options[HPO].upstream_http_protocol_options, { auto_sni: true }, 'nothing to validate: no auto_san_validation');
});

test("a ServiceEntry's subjectAltNames are checked where the rule names none; an HTTP/2 port offers h2", () => {
  const entry = se('grpc', { hosts: ['grpc.example.com'], ports: [{ number: 443, name: 'grpc', protocol: 'GRPC' }], resolution: 'DNS', subjectAltNames: ['grpc.example.com', 'alt.example.com'] });
  const x = translate(meshOf([entry, dr('grpc', { host: 'grpc.example.com', trafficPolicy: { tls: { mode: 'SIMPLE', caCertificates: '/ca.pem' } } })], [client]), client);
  const ctx = clusterOf(x, 'outbound|443||grpc.example.com').transport_socket.typed_config.common_tls_context;
  assert.deepEqual(ctx.combined_validation_context.default_validation_context.match_subject_alt_names, [{ exact: 'grpc.example.com' }, { exact: 'alt.example.com' }]);
  assert.deepEqual(ctx.alpn_protocols, ['h2']);
  const own = translate(meshOf([entry, dr('grpc', { host: 'grpc.example.com', trafficPolicy: { tls: { mode: 'SIMPLE', subjectAltNames: ['own.example.com'] } } })], [client]), client);
  assert.deepEqual(clusterOf(own, 'outbound|443||grpc.example.com').transport_socket.typed_config.common_tls_context.combined_validation_context.default_validation_context.match_subject_alt_names, [{ exact: 'own.example.com' }]);
});

test('a subset and a port level originate TLS of their own; automatic mTLS never applies where the rule sets SIMPLE or MUTUAL', () => {
  const api = (name: string, port: number, version: string) => workload(name, { service: 'api', port, serviceAccount: 'api', labels: { app: 'api', version } });
  const rule = dr('api', {
    host: 'api',
    subsets: [
      { name: 'v1', labels: { version: 'v1' } },
      { name: 'v2', labels: { version: 'v2' }, trafficPolicy: { tls: { mode: 'MUTUAL', clientCertificate: '/c.pem', privateKey: '/k.pem', caCertificates: '/ca.pem' } } },
    ],
  });
  const x = translate(meshOf([rule], [api('api-1', 41000, 'v1'), api('api-2', 41100, 'v2'), client]), client);
  const C = (subset: string) => `outbound|80|${subset}|api.default.svc.cluster.local`;
  // The proven endpoints take mTLS: the rule's cluster and v1 keep automatic mTLS...
  assert.ok(clusterOf(x, C('')).transport_socket_matches);
  assert.ok(clusterOf(x, C('v1')).transport_socket_matches);
  // ...v2 originates the user's TLS to every endpoint, and nothing else.
  const v2 = clusterOf(x, C('v2'));
  assert.equal(v2.transport_socket_matches, undefined);
  assert.equal(v2.transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs[0].name, 'file-cert:/c.pem~/k.pem');
  assert.deepEqual(v2.metadata, ALPN_OVERRIDE_OFF);
});

test('the clusters survive the protobuf encoder and convert in the sidecar to what they ask for', () => {
  const x = translate(meshOf([CNN, CNN_DR], [client]), client);
  const back = convertCluster(decode(TYPE.cluster, encode(TYPE.cluster, x.clusters['outbound|80||edition.cnn.com'])));
  assert.deepEqual(back.transportSocket?.files, { roots: 'system' });
  assert.equal(back.transportSocket?.noAlpnOverride, true);
  assert.deepEqual(back.transportSocket?.alpn, []);
  assert.deepEqual(back.autoSni, { sni: true, san: true });

  const tls = { mode: 'MUTUAL', clientCertificate: '/c.pem', privateKey: '/k.pem', caCertificates: '/ca.pem', caCrl: '/crl.pem', subjectAltNames: ['db.example.com'], sni: 'db.example.com' };
  const m = translate(meshOf([CNN, dr('cnn', { host: 'edition.cnn.com', trafficPolicy: { tls } })], [client]), client);
  const mc = convertCluster(decode(TYPE.cluster, encode(TYPE.cluster, m.clusters['outbound|80||edition.cnn.com'])));
  assert.deepEqual(mc.transportSocket?.files, { cert: { certFile: '/c.pem', keyFile: '/k.pem' }, roots: { caFile: '/ca.pem' }, crlFile: '/crl.pem' });
  assert.deepEqual([mc.transportSocket?.sni, mc.transportSocket?.sans, mc.autoSni], ['db.example.com', ['db.example.com'], undefined]);
});
