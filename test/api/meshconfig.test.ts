// Istio's mesh config, as `weft apply` takes it: the ConfigMap istio-system/istio, its data.mesh a
// YAML document of MeshConfig (src/api/meshconfig-rules.ts). Checked as istiod checks it, with
// paths into the document; what Weft does not apply is a warning, or a refusal where ignoring it
// would weaken security or widen traffic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkResource, ConfigError, formatProblem, manifestOf, meshConfigOf, parseConfig, warningsOf } from '../../src/api/index.ts';
import { resolveKind } from '../../src/api/kinds.ts';

/** The ConfigMap as `kubectl get configmap istio -n istio-system -o yaml` shows it in an Istio install. */
const INSTALLED = `apiVersion: v1
kind: ConfigMap
metadata:
  name: istio
  namespace: istio-system
  creationTimestamp: "2024-05-01T10:00:00Z"
  resourceVersion: "1042"
  uid: 6f1c1f1e-2a4b-4c55-9d3e-0a1b2c3d4e5f
  labels:
    install.operator.istio.io/owning-resource: unknown
    istio.io/rev: default
    operator.istio.io/component: Pilot
    release: istio
data:
  mesh: |-
    defaultConfig:
      discoveryAddress: istiod.istio-system.svc:15012
      proxyMetadata: {}
      tracing:
        zipkin:
          address: zipkin.istio-system:9411
    defaultProviders:
      metrics:
      - prometheus
    enablePrometheusMerge: true
    rootNamespace: istio-system
    trustDomain: cluster.local
  meshNetworks: 'networks: {}'
`;

function configMap(mesh: string | undefined, name = 'istio', namespace = 'istio-system', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data: mesh === undefined ? undefined : { mesh }, ...extra };
}

/** The one-line problems checkResource reports for a ConfigMap whose data.mesh is `mesh` ([] when accepted). */
function problems(mesh: string, name?: string, namespace?: string): string[] {
  try {
    checkResource(configMap(mesh, name, namespace), 'x');
    return [];
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.message.split('\n');
  }
}

const warnings = (mesh: string) => warningsOf(checkResource(configMap(mesh), 'x')).map(formatProblem);

test("an installed Istio's ConfigMap is accepted as kubectl prints it; what Weft does not apply yet is a warning naming the ConfigMap and field", () => {
  const [cm] = parseConfig(INSTALLED, 'istio.yaml');
  assert.equal(cm.kind, 'ConfigMap');
  assert.deepEqual(cm.metadata.labels?.['istio.io/rev'], 'default');
  assert.deepEqual(meshConfigOf(cm.spec), { trustDomain: 'cluster.local', defaultProviders: { metrics: ['prometheus'] } });
  assert.deepEqual(warningsOf(cm).map(formatProblem), [
    "ConfigMap istio-system/istio: data.mesh.defaultConfig.discoveryAddress: accepted, not applied yet: proxy settings are the sidecar's own (weft sidecar flags)",
    "ConfigMap istio-system/istio: data.mesh.defaultConfig.proxyMetadata: accepted, not applied yet: proxy settings are the sidecar's own (weft sidecar flags)",
    "ConfigMap istio-system/istio: data.mesh.defaultConfig.tracing.zipkin: accepted, not applied yet: sidecars export spans to an opentelemetry extension provider (defaultProviders.tracing) or to the control plane's receiver",
    'ConfigMap istio-system/istio: data.mesh.enablePrometheusMerge: accepted, not applied yet: the sidecars\' /stats/prometheus has their own metrics and Istio\'s, not the application\'s',
  ]);
  // Written back as it came: the content under data, not spec.
  const shown = manifestOf(cm);
  assert.equal(shown.spec, undefined);
  assert.deepEqual(Object.keys(shown.data as object), ['mesh', 'meshNetworks']);
  assert.equal(resolveKind('cm'), 'ConfigMap');
  assert.equal(resolveKind('configmaps'), 'ConfigMap');
});

test('the fields Weft applies are read into MeshConfig; no data, or an empty document, is Istio\'s defaults', () => {
  const mesh = `trustDomain: new-td
trustDomainAliases: [old-td, cluster.local]
enableAutoMtls: false
accessLogFile: /dev/stdout
accessLogEncoding: JSON
accessLogFormat: ""
extensionProviders:
- name: ext-authz-http
  envoyExtAuthzHttp:
    service: ext-authz.foo.svc.cluster.local
    port: 8000
    includeRequestHeadersInCheck: [x-ext-authz]
- name: ext-authz-grpc
  envoyExtAuthzGrpc: {service: ext-authz.foo.svc.cluster.local, port: 9000, timeout: 2s}
`;
  const cm = checkResource(configMap(mesh), 'x');
  assert.deepEqual(meshConfigOf(cm.spec), {
    trustDomain: 'new-td',
    trustDomainAliases: ['old-td', 'cluster.local'],
    enableAutoMtls: false,
    accessLogFile: '/dev/stdout',
    accessLogEncoding: 'JSON',
    accessLogFormat: '',
    extensionProviders: [
      { name: 'ext-authz-http', envoyExtAuthzHttp: { service: 'ext-authz.foo.svc.cluster.local', port: 8000, includeRequestHeadersInCheck: ['x-ext-authz'] } },
      { name: 'ext-authz-grpc', envoyExtAuthzGrpc: { service: 'ext-authz.foo.svc.cluster.local', port: 9000, timeout: '2s' } },
    ],
  });
  // None of those is a warning: the access log and the authorizers are applied by their owners.
  assert.deepEqual(warningsOf(cm), []);
  assert.deepEqual(meshConfigOf(checkResource(configMap(undefined), 'x').spec), {});
  assert.deepEqual(meshConfigOf(checkResource(configMap(''), 'x').spec), {});
  assert.deepEqual(meshConfigOf(checkResource(configMap('# nothing set\n'), 'x').spec), {});
});

test('any other ConfigMap is refused, saying which one Weft reads', () => {
  for (const [name, ns] of [['istio', 'default'], ['app-settings', 'istio-system'], ['istio-sidecar-injector', 'istio-system']]) {
    const p = problems('trustDomain: x', name, ns);
    assert.equal(p.length, 1);
    assert.match(p[0], new RegExp(`^ConfigMap ${ns}/${name}: metadata: Weft reads one ConfigMap, Istio's mesh config istio-system/istio \\(key mesh\\)`));
  }
  assert.throws(() => checkResource({ apiVersion: 'v1beta1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' } }, 'x'), /kind ConfigMap \(v1beta1\) is not supported; .*ConfigMap \(v1\)/);
  assert.throws(() => checkResource(configMap('', 'istio', 'istio-system', { binaryData: { x: 'AAAA' } }), 'x'), /binaryData: not supported: Istio reads its mesh config from data\.mesh/);
  assert.throws(() => checkResource(configMap('', 'istio', 'istio-system', { spec: {} }), 'x'), /ConfigMap istio-system\/istio: spec: unknown field/);
  assert.throws(() => checkResource({ ...configMap(undefined), data: { mesh: { trustDomain: 'x' } } }, 'x'), /data\.mesh: must be a string/);
});

test('data.mesh: a YAML error names its line in the document; a document that is no mapping is refused', () => {
  assert.deepEqual(problems('trustDomain: td\ntrustDomainAliases: [a\nenableAutoMtls: true\n'), [
    'ConfigMap istio-system/istio: data.mesh: YAML syntax error at line 3, column 1 of data.mesh: Flow sequence in block collection must be sufficiently indented and end with a ]',
  ]);
  assert.match(problems('trustDomain: a\ntrustDomain: b\n')[0], /data\.mesh: YAML syntax error at line 2, column 1 of data\.mesh: Map keys must be unique/);
  assert.match(problems('- trustDomain: a\n')[0], /data\.mesh: must be a YAML mapping of MeshConfig fields/);
  assert.match(problems(`${'['.repeat(100)}${']'.repeat(100)}`)[0], /data\.mesh: YAML nested too deep at line 1/);
});

test('data.mesh: wrong types, unknown fields and Istio\'s rules are refused with the path of the field', () => {
  assert.deepEqual(problems('trustDomainAliases: old-td\nenableAutoMtls: "no"\naccessLogEncoding: XML\nconnectTimeout: 10\n'), [
    'ConfigMap istio-system/istio: data.mesh.trustDomainAliases: must be a list, not the string "old-td"',
    'ConfigMap istio-system/istio: data.mesh.enableAutoMtls: must be a boolean (true or false), not the string "no"',
    'ConfigMap istio-system/istio: data.mesh.accessLogEncoding: must be one of TEXT, JSON (got "XML")',
    'ConfigMap istio-system/istio: data.mesh.connectTimeout: must be a string, not number 10',
  ]);
  assert.deepEqual(problems('trustDomainAlias: [a]\ntrust_domain: b\n'), [
    'ConfigMap istio-system/istio: data.mesh.trustDomainAlias: unknown field (not a MeshConfig field)',
    'ConfigMap istio-system/istio: data.mesh.trust_domain: unknown field: write it trustDomain',
  ]);
  // ValidateTrustDomain, for the trust domain and each alias.
  assert.deepEqual(problems('trustDomain: ""\ntrustDomainAliases: [old-td, "bad_td", "td.example.com.", "-x.com"]\n'), [
    'ConfigMap istio-system/istio: data.mesh.trustDomain: empty domain name not allowed',
    'ConfigMap istio-system/istio: data.mesh.trustDomainAliases[1]: trust domain name "bad_td" invalid: each label is at most 63 letters, digits or "-", starting and ending with a letter or digit',
    'ConfigMap istio-system/istio: data.mesh.trustDomainAliases[3]: trust domain name "-x.com" invalid: each label is at most 63 letters, digits or "-", starting and ending with a letter or digit',
  ]);
  assert.match(problems('trustDomain: Cluster.Local\n')[0], /data\.mesh\.trustDomain: trust domain name "Cluster\.Local" invalid: SPIFFE trust domains are lower case/);
  assert.deepEqual(problems('connectTimeout: 0s\nprotocolDetectionTimeout: 0s\nproxyListenPort: 0\nmeshMTLS: {ecdhCurves: [P-256]}\n'), [
    'ConfigMap istio-system/istio: data.mesh.proxyListenPort: port number 0 must be in the range 1..65535',
    'ConfigMap istio-system/istio: data.mesh.connectTimeout: must be a duration of at least 1ms',
    'ConfigMap istio-system/istio: data.mesh.meshMTLS.ecdhCurves: mesh TLS does not support ECDH curves configuration',
  ]);
});

test('data.mesh: the messages Weft shares with other kinds are checked as there: localityLbSetting, defaultHttpRetryPolicy, tcpKeepalive; serviceSettings hosts', () => {
  assert.deepEqual(problems('localityLbSetting: {distribute: [{from: us-east/*, to: {"us-west/*": 60}}]}\ndefaultHttpRetryPolicy: {attempts: "3"}\ntcpKeepalive: {time: 7200}\nserviceSettings: [{settings: {clusterLocal: true}, hosts: ["bad_host.example.com"]}]\n').map((l) => l.replace('ConfigMap istio-system/istio: ', '')), [
    'data.mesh.defaultHttpRetryPolicy.attempts: must be an integer, not the string "3"',
    'data.mesh.tcpKeepalive.time: must be a string, not number 7200',
  ]);
  assert.deepEqual(problems('localityLbSetting: {distribute: [{from: us-east/*, to: {"us-west/*": 60}}]}\nserviceSettings: [{hosts: ["bad_host.example.com"]}]\n').map((l) => l.replace('ConfigMap istio-system/istio: ', '')), [
    'data.mesh.localityLbSetting.distribute[0].to: locality weights must add up to 100 (they add up to 60)',
    'data.mesh.serviceSettings[0].hosts[0]: domain name "bad_host.example.com" invalid (label "bad_host" invalid)',
  ]);
  assert.deepEqual(problems('localityLbSetting: {enabled: true, failover: [{from: us-east, to: us-west}]}\ndefaultHttpRetryPolicy: {attempts: 0}\ntcpKeepalive: {time: 300s, probes: 3}\n'), []);
});

test('data.mesh.extensionProviders: names present and unique, one kind each, ext_authz services, ports, statusOnError and pathPrefix as Istio checks them', () => {
  const mesh = `extensionProviders:
- name: a
  envoyExtAuthzHttp: {service: authz.foo.svc.cluster.local, port: 8000, pathPrefix: check, statusOnError: "999"}
- name: a
  envoyExtAuthzGrpc: {service: foo/authz, port: 0}
- envoyExtAuthzGrpc: {service: "", port: 9000}
- name: both
  envoyExtAuthzGrpc: {service: authz.foo.svc.cluster.local, port: 9000}
  zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411}
- name: none
- name: typo
  envoyExtAuthzHTTP: {}
- name: types
  envoyExtAuthzHttp: {service: authz.foo.svc.cluster.local, port: "8000", failOpen: "yes"}
`;
  assert.deepEqual(problems(mesh).map((l) => l.replace('ConfigMap istio-system/istio: data.mesh.extensionProviders', '')), [
    '[0].envoyExtAuthzHttp.statusOnError: unsupported statusOnError value 999: an HTTP status code Envoy knows (e.g. 403, 500, 503)',
    '[0].envoyExtAuthzHttp.pathPrefix: pathPrefix should begin with `/` but found "check"',
    '[1].envoyExtAuthzGrpc.port: port number 0 must be in the range 1..65535',
    '[1].envoyExtAuthzGrpc.service: short names (non FQDN) are not allowed: foo/authz',
    '[1].name: duplicate extension provider name a (already at data.mesh.extensionProviders[0])',
    '[2].envoyExtAuthzGrpc.service: service must not be empty',
    '[2].name: empty extension provider name',
    '[3]: only one provider kind may be set (got envoyExtAuthzGrpc, zipkin)',
    '[4]: unsupported provider: no provider kind is set',
    '[5].envoyExtAuthzHTTP: unknown field (a provider has a name and one of envoyExtAuthzHttp, envoyExtAuthzGrpc, zipkin, lightstep, datadog, stackdriver, opencensus, skywalking, opentelemetry, prometheus, envoyFileAccessLog, envoyHttpAls, envoyTcpAls, envoyOtelAls, sds)',
    '[5]: unsupported provider: no provider kind is set',
    '[6].envoyExtAuthzHttp.port: must be an integer, not the string "8000"',
    '[6].envoyExtAuthzHttp.failOpen: must be a boolean (true or false), not the string "yes"',
  ]);
  // Other kinds are kept as written, with a warning; opentelemetry without http (OTLP/gRPC) exports nothing.
  assert.deepEqual(warnings('extensionProviders:\n- name: otel\n  opentelemetry: {service: otel.istio-system.svc.cluster.local, port: 4317}\n- name: authz\n  envoyExtAuthzGrpc: {service: 10.0.0.1, port: 9000}\n- name: zip\n  zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411}\n'), [
    "ConfigMap istio-system/istio: data.mesh.extensionProviders[0].opentelemetry: accepted, not applied yet: sidecars export spans over OTLP/HTTP only (Istio exports over gRPC when http is unset); this provider's spans are not exported: give it http: {path: /v1/traces} and the service's OTLP/HTTP port",
    'ConfigMap istio-system/istio: data.mesh.extensionProviders[2].zipkin: accepted, not applied yet: Weft uses extension providers as external authorizers (envoyExtAuthzHttp, envoyExtAuthzGrpc) for CUSTOM AuthorizationPolicies, as access log files (envoyFileAccessLog) and metrics exporters (prometheus) for Telemetries and as tracers (opentelemetry)',
  ]);
});

test('refused where ignoring would weaken security or widen traffic, naming the field; warned elsewhere', () => {
  const refusal = (mesh: string) => problems(mesh).map((l) => l.replace('ConfigMap istio-system/istio: ', '').split(': ').slice(0, 2).join(': '));
  assert.deepEqual(refusal('rootNamespace: mesh-root\n'), ['data.mesh.rootNamespace: "mesh-root" is not supported yet']);
  assert.deepEqual(refusal('meshMTLS: {cipherSuites: [ECDHE-ECDSA-AES256-GCM-SHA384]}\n'), ['data.mesh.meshMTLS.cipherSuites: not supported yet']);
  assert.deepEqual(refusal('pathNormalization: {normalization: MERGE_SLASHES}\n'), ['data.mesh.pathNormalization.normalization: MERGE_SLASHES is not supported yet']);
  assert.deepEqual(refusal('defaultServiceExportTo: ["."]\n'), ['data.mesh.defaultServiceExportTo: not supported yet']);
  assert.deepEqual(refusal('discoverySelectors: [{matchLabels: {mesh: "on"}}]\n'), ['data.mesh.discoverySelectors: not supported yet']);
  // Applied: the default of proxies whose Sidecar does not say.
  assert.deepEqual(warnings('outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n'), []);
  assert.deepEqual(meshConfigOf(checkResource(configMap('outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n'), 'x').spec), { outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } });
  // Applied: the sidecars' mTLS servers take TLS 1.3 only.
  assert.deepEqual(warnings('meshMTLS: {minProtocolVersion: TLSV1_3}\n'), []);
  assert.deepEqual(meshConfigOf(checkResource(configMap('meshMTLS: {minProtocolVersion: TLSV1_3}\n'), 'x').spec), { meshMTLS: { minProtocolVersion: 'TLSV1_3' } });
  // Their defaults (what Weft does anyway) are accepted without a word.
  assert.deepEqual(warnings('rootNamespace: istio-system\noutboundTrafficPolicy: {mode: ALLOW_ANY}\nmeshMTLS: {minProtocolVersion: TLSV1_2}\npathNormalization: {normalization: BASE}\ndefaultServiceExportTo: ["*"]\ndiscoverySelectors: []\n'), []);
  assert.deepEqual(warnings('ingressClass: istio\nconnectTimeout: 5s\npathNormalization: {normalization: NONE}\n').map((w) => w.split(': ').slice(0, 3).join(': ')), [
    'ConfigMap istio-system/istio: data.mesh.ingressClass: accepted, not applied yet',
    'ConfigMap istio-system/istio: data.mesh.connectTimeout: accepted, not applied yet',
    'ConfigMap istio-system/istio: data.mesh.pathNormalization.normalization: accepted, not applied yet',
  ]);
  // Other keys of the ConfigMap: meshNetworks with networks is a warning, as is a key Istio does not read.
  const cm = checkResource({ ...configMap('trustDomain: td'), data: { mesh: 'trustDomain: td', meshNetworks: 'networks: {net1: {endpoints: [{fromRegistry: Kubernetes}]}}', extra: 'x' } }, 'x');
  assert.deepEqual(warningsOf(cm).map((w) => w.path), ['data.meshNetworks', 'data.extra']);
});

test('data.mesh.accessLogFormat: an operator the sidecars cannot write, or JSON encoding with a format that is no JSON object, is refused naming the field', () => {
  assert.deepEqual(problems('accessLogFile: /dev/stdout\naccessLogFormat: "%RESPONSE_CODE% %UPSTREAM_WIRE_BYTES_SENT%"\n').map((p) => p.replace(/ \(supported: .*\)$/, '')), [
    'ConfigMap istio-system/istio: data.mesh.accessLogFormat: command operator %UPSTREAM_WIRE_BYTES_SENT% is not supported by Weft\'s sidecars',
  ]);
  assert.match(problems('accessLogFile: /dev/stdout\naccessLogEncoding: JSON\naccessLogFormat: "%RESPONSE_CODE%"\n')[0], /data\.mesh\.accessLogFormat: with accessLogEncoding JSON it must be a JSON object/);
  assert.match(problems('accessLogEncoding: JSON\naccessLogFormat: \'{"code": "%RESPONSE_CODE%", "x": "%CEL(a)%"}\'\n')[0], /data\.mesh\.accessLogFormat: key x: command operator %CEL\(a\)%/);
  assert.deepEqual(problems('accessLogFile: /dev/stdout\naccessLogEncoding: JSON\naccessLogFormat: \'{"code": "%RESPONSE_CODE%", "peer": "%DOWNSTREAM_PEER_URI_SAN%"}\'\n'), []);
  assert.deepEqual(problems('accessLogFile: /dev/stdout\naccessLogFormat: "[%START_TIME%] %REQ(:METHOD)% %% %DYNAMIC_METADATA(istio_authn:request.auth.principal)%"\n'), []);
});

test('hostile keys are fields like any other: unknown, never a crash', () => {
  assert.deepEqual(problems('constructor: 1\ntoString: x\n__proto__: {trustDomain: evil}\nextensionProviders:\n- name: a\n  constructor: {}\n- name: b\n  hasOwnProperty: {service: x, port: 1}\n').map((l) => l.split(': ').slice(1, 3).join(': ')), [
    'data.mesh.constructor: unknown field (not a MeshConfig field)',
    'data.mesh.toString: unknown field (not a MeshConfig field)',
    'data.mesh.__proto__: unknown field (not a MeshConfig field)',
    'data.mesh.extensionProviders[0].constructor: unknown field (a provider has a name and one of envoyExtAuthzHttp, envoyExtAuthzGrpc, zipkin, lightstep, datadog, stackdriver, opencensus, skywalking, opentelemetry, prometheus, envoyFileAccessLog, envoyHttpAls, envoyTcpAls, envoyOtelAls, sds)',
    'data.mesh.extensionProviders[0]: unsupported provider',
    'data.mesh.extensionProviders[1].hasOwnProperty: unknown field (a provider has a name and one of envoyExtAuthzHttp, envoyExtAuthzGrpc, zipkin, lightstep, datadog, stackdriver, opencensus, skywalking, opentelemetry, prometheus, envoyFileAccessLog, envoyHttpAls, envoyTcpAls, envoyOtelAls, sds)',
    'data.mesh.extensionProviders[1]: unsupported provider',
  ]);
  assert.throws(() => checkResource({ ...configMap(''), constructor: 1 }, 'x'), /ConfigMap istio-system\/istio: constructor: unknown field$/);
  const cm = checkResource({ ...configMap(''), data: { constructor: 'x', mesh: '' } }, 'x');
  assert.deepEqual(warningsOf(cm).map((w) => w.path), ['data.constructor']);
});

test('tracing: enableTracing, defaultConfig.tracing, defaultProviders.tracing and opentelemetry providers are read and applied; what is not is named', () => {
  const mesh = [
    'enableTracing: true',
    'defaultConfig:',
    '  tracing: {sampling: 25, maxPathTagLength: 99, customTags: {team: {literal: {value: blue}}}, zipkin: {address: "z:9411"}}',
    'defaultProviders: {tracing: [otel, nope, zip], accessLogging: [x]}',
    'extensionProviders:',
    '- name: otel',
    '  opentelemetry: {service: otel.obs.svc.cluster.local, port: 4318, http: {path: /v1/traces, timeout: 3s, headers: [{name: x-token, value: t}, {name: x-env, envName: TOKEN}]}, resourceDetectors: {environment: {}}}',
    '- name: zip',
    '  zipkin: {service: zipkin.obs.svc.cluster.local, port: 9411}',
    '',
  ].join('\n');
  assert.deepEqual(problems(mesh), []);
  const mc = meshConfigOf({ mesh });
  assert.equal(mc.enableTracing, true);
  assert.deepEqual(mc.defaultConfig, { tracing: { sampling: 25, maxPathTagLength: 99, customTags: { team: { literal: { value: 'blue' } } } } });
  assert.deepEqual(mc.defaultProviders?.tracing, ['otel', 'nope', 'zip']);
  assert.equal(mc.extensionProviders?.[0]?.opentelemetry?.http?.timeout, '3s');
  assert.deepEqual(warnings(mesh).map((w) => w.replace('ConfigMap istio-system/istio: data.mesh.', '').split(': ').slice(0, 2).join(': ')), [
    'defaultConfig.tracing.zipkin: accepted, not applied yet',
    'defaultProviders.tracing[1]: no extension provider is named "nope"',
    'defaultProviders.tracing[2]: accepted, not applied yet',
    'extensionProviders[0].opentelemetry.resourceDetectors: accepted, not applied yet',
    'extensionProviders[0].opentelemetry.http.headers[1].envName: accepted, not applied yet',
    'extensionProviders[1].zipkin: accepted, not applied yet',
  ]);
  // Istio's checks: sampling a percentage; the provider's fields, port and service.
  assert.deepEqual(problems('defaultConfig: {tracing: {sampling: 101}}\n').map((l) => l.replace('ConfigMap istio-system/istio: ', '')), ['data.mesh.defaultConfig.tracing.sampling: sampling must be between 0.0 and 100.0']);
  // customTags: each one kind, with its name (a tag the sidecars could not write would be NACKed by every one of them).
  assert.deepEqual(problems('defaultConfig: {tracing: {customTags: {a: {header: {}}, b: {literal: {value: x}, header: {name: h}}, c: {nope: {}}}, maxPathTagLength: -1}}\n').map((l) => l.replace('ConfigMap istio-system/istio: data.mesh.defaultConfig.tracing.', '')), [
    'maxPathTagLength: must be between 0 and 4294967295',
    'customTags.a.header.name: required',
    'customTags.b: must have one of literal, environment, header (got literal, header)',
    'customTags.c.nope: unknown field',
  ]);
  assert.deepEqual(
    problems('extensionProviders:\n- name: o\n  opentelemetry: {service: otel, port: 0, http: {pathh: /x}}\n').map((l) => l.replace('ConfigMap istio-system/istio: data.mesh.extensionProviders[0].opentelemetry', '')),
    ['.http.pathh: unknown field'],
  );
  assert.deepEqual(
    problems('extensionProviders:\n- name: o\n  opentelemetry: {service: foo/otel, port: 0}\n').map((l) => l.replace('ConfigMap istio-system/istio: data.mesh.extensionProviders[0].opentelemetry', '')),
    ['.port: port number 0 must be in the range 1..65535', '.service: short names (non FQDN) are not allowed: foo/otel'],
  );
});

test('data.mesh.extensionProviders[].envoyFileAccessLog (Telemetry access logs): its shape checked, a format the sidecars cannot write refused, omitEmptyValues warned', () => {
  const mesh = (p: object) => JSON.stringify({ extensionProviders: [{ name: 'files', envoyFileAccessLog: p }] });
  assert.deepEqual(warnings(mesh({ path: '/tmp/a.log', logFormat: { text: '%RESPONSE_CODE%' } })), []);
  assert.deepEqual(warnings(mesh({ logFormat: { labels: { code: '%RESPONSE_CODE%', nested: { p: '%REQ(:PATH)%' } } }, omitEmptyValues: true })), [
    'ConfigMap istio-system/istio: data.mesh.extensionProviders[0].envoyFileAccessLog.omitEmptyValues: accepted, not applied yet: empty values are written as "-" (text) or null (JSON)',
  ]);
  assert.deepEqual(problems(mesh({ path: 1, logFormat: { text: 'x', labels: {} }, bogus: true })), [
    'ConfigMap istio-system/istio: data.mesh.extensionProviders[0].envoyFileAccessLog.path: must be a string, not number 1',
    'ConfigMap istio-system/istio: data.mesh.extensionProviders[0].envoyFileAccessLog.bogus: unknown field',
    'ConfigMap istio-system/istio: data.mesh.extensionProviders[0].envoyFileAccessLog.logFormat: only one of text and labels may be set',
  ]);
  assert.match(problems(mesh({ logFormat: { text: '%UPSTREAM_WIRE_BYTES_SENT%' } })).join('\n'), /data\.mesh\.extensionProviders\[0\]\.envoyFileAccessLog\.logFormat\.text: command operator %UPSTREAM_WIRE_BYTES_SENT% is not supported by Weft's sidecars/);
  assert.match(problems(mesh({ logFormat: { labels: { a: '%NOPE%' } } })).join('\n'), /envoyFileAccessLog\.logFormat\.labels: key a: command operator %NOPE% is not supported/);
});
