// Tracing in the xDS (translate/tracing.ts), as Istio's pilot emits it (core/tracing.go), and as
// the sidecar loads it (xds-client/convert-tracing.ts): the HCM `tracing` of a proxy's inbound
// (SERVER) and outbound (CLIENT) listeners from the mesh config (enableTracing, defaultConfig.tracing,
// defaultProviders.tracing, opentelemetry providers) and Telemetry resources (workload > namespace >
// root namespace > mesh config). No sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MeshConfig } from '../../src/api/meshconfig.ts';
import { checkResource } from '../../src/api/index.ts';
import type { Telemetry } from '../../src/api/types.ts';
import type { MeshSnapshot, Workload } from '../../src/control/model/model.ts';
import { TRACES_CLUSTER } from '../../src/control/translate/tracing.ts';
import { translate } from '../../src/control/translate/translate.ts';
import { requestIdExtension, tracingConfig } from '../../src/proxy/xds-client/convert-tracing.ts';
import { ConvertError } from '../../src/proxy/xds-client/convert-util.ts';
import { meshOf, sidecarSnapshot, workload } from '../snapshot.ts';

const server = workload('server', { service: 'server', serviceAccount: 'server-sa', labels: { app: 'server', version: 'v2' } });
const client = workload('client', { serviceAccount: 'client-sa', port: 42000, labels: { app: 'client' } });
const other = workload('other', { namespace: 'shop', port: 44000, labels: { app: 'other' } });
const otel = workload('otel', { namespace: 'obs', service: 'otel', servicePort: 4318, port: 45000 });
const RECEIVER = { address: '127.0.0.9', port: 4999 };

let created = 0;
const telemetry = (name: string, namespace: string, spec: Record<string, unknown>): Telemetry => ({
  ...(checkResource({ apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { name, namespace }, spec }, name) as Telemetry),
  created: ++created,
});

function mesh(mc: MeshConfig | undefined, telemetries: Telemetry[] = []): MeshSnapshot {
  return { ...meshOf([], [server, client, other, otel]), tracesReceiver: RECEIVER, telemetries, ...(mc ? { meshConfig: mc } : {}) };
}

/** Each HCM's tracing in a proxy's listeners, by listener ('-' where the HCM has none). */
function tracings(m: MeshSnapshot, proxy: Workload): Record<string, any> {
  const out: Record<string, any> = {};
  for (const [name, l] of Object.entries(translate(m, proxy).listeners) as [string, any][]) {
    for (const c of l.filter_chains ?? []) {
      for (const f of c.filters) if (f.typed_config?.['@type']?.endsWith('HttpConnectionManager')) out[name] = f.typed_config.tracing ?? '-';
    }
  }
  return out;
}

const OTEL_PROVIDERS = [{ name: 'otel', opentelemetry: { service: 'otel.obs.svc.cluster.local', port: 4318, http: { path: '/v1/traces', timeout: '3s', headers: [{ name: 'x-tenant', value: 'blue' }] } } }];

const istioTags = (service: string, revision: string, namespace = 'default') => [
  { tag: 'istio.authorization.dry_run.allow_policy.name', metadata: { kind: { request: {} }, metadata_key: { key: 'envoy.filters.http.rbac', path: [{ key: 'istio_dry_run_allow_shadow_effective_policy_id' }] } } },
  { tag: 'istio.authorization.dry_run.allow_policy.result', metadata: { kind: { request: {} }, metadata_key: { key: 'envoy.filters.http.rbac', path: [{ key: 'istio_dry_run_allow_shadow_engine_result' }] } } },
  { tag: 'istio.authorization.dry_run.deny_policy.name', metadata: { kind: { request: {} }, metadata_key: { key: 'envoy.filters.http.rbac', path: [{ key: 'istio_dry_run_deny_shadow_effective_policy_id' }] } } },
  { tag: 'istio.authorization.dry_run.deny_policy.result', metadata: { kind: { request: {} }, metadata_key: { key: 'envoy.filters.http.rbac', path: [{ key: 'istio_dry_run_deny_shadow_engine_result' }] } } },
  { tag: 'istio.canonical_revision', literal: { value: revision } },
  { tag: 'istio.canonical_service', literal: { value: service } },
  { tag: 'istio.cluster_id', literal: { value: 'unknown' } },
  { tag: 'istio.mesh_id', literal: { value: 'cluster.local' } },
  { tag: 'istio.namespace', literal: { value: namespace } },
];

test('enableTracing: false (no default provider, no Telemetry): no HCM has tracing, no receiver cluster', () => {
  for (const mc of [{ enableTracing: false }, { enableTracing: false, defaultConfig: { tracing: { sampling: 50 } } }] as (MeshConfig | undefined)[]) {
    const t = tracings(mesh(mc), server);
    assert.ok(Object.keys(t).length >= 2);
    for (const v of Object.values(t)) assert.equal(v, '-');
    assert.equal(translate(mesh(mc), server).clusters[TRACES_CLUSTER], undefined);
  }
});

test("enableTracing true or unset (Istio's default: true) without a provider: every HCM reports to the control plane receiver (a STATIC cluster), 1% sampling, Istio tags", () => {
  for (const mc of [{ enableTracing: true }, undefined, {}] as (MeshConfig | undefined)[]) {
  const x = translate(mesh(mc), server);
  const t = tracings(mesh(mc), server);
  const want = {
    provider: {
      name: 'envoy.tracers.opentelemetry',
      typed_config: { '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig', service_name: 'server.default', http_service: { http_uri: { uri: `${TRACES_CLUSTER}/v1/traces`, cluster: TRACES_CLUSTER, timeout: { seconds: 5 } } } },
    },
    client_sampling: { value: 100 },
    random_sampling: { value: 1 },
    overall_sampling: { value: 100 },
    custom_tags: istioTags('server', 'v2'),
  };
  assert.deepEqual(t, { outbound: want, 'inbound|41000': want });
  assert.deepEqual((x.clusters[TRACES_CLUSTER] as any).load_assignment.endpoints[0].lb_endpoints[0].endpoint.address, { socket_address: { address: '127.0.0.9', port_value: 4999 } });
  }
});

test('defaultConfig.tracing: sampling (over 100: 1, as Istio), customTags beside Istio tags, sorted, and maxPathTagLength', () => {
  const t = tracings(mesh({ enableTracing: true, defaultConfig: { tracing: { sampling: 25, maxPathTagLength: 99, customTags: { team: { literal: { value: 'blue' } }, zone: { environment: { name: 'ZONE', defaultValue: 'z0' } }, user: { header: { name: 'x-user' } } } } } }), client);
  assert.equal(t.outbound.random_sampling.value, 25);
  assert.deepEqual(t.outbound.max_path_tag_length, { value: 99 });
  const tags = t.outbound.custom_tags as { tag: string }[];
  assert.deepEqual(tags.map((x) => x.tag), [...tags.map((x) => x.tag)].sort());
  assert.deepEqual(tags.filter((x) => !x.tag.startsWith('istio.')), [
    { tag: 'team', literal: { value: 'blue' } },
    { tag: 'user', request_header: { name: 'x-user' } },
    { tag: 'zone', environment: { name: 'ZONE', default_value: 'z0' } },
  ]);
  assert.equal(tracings(mesh({ enableTracing: true, defaultConfig: { tracing: { sampling: 250 } } }), client).outbound.random_sampling.value, 1);
});

test('defaultProviders.tracing: the opentelemetry provider over OTLP/HTTP, through the service cluster, with its path, timeout and headers', () => {
  const m = mesh({ extensionProviders: OTEL_PROVIDERS, defaultProviders: { tracing: ['otel'] } });
  const t = tracings(m, server);
  assert.deepEqual(t.outbound.provider, {
    name: 'envoy.tracers.opentelemetry',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig',
      service_name: 'server.default',
      http_service: {
        http_uri: { uri: 'otel.obs.svc.cluster.local/v1/traces', cluster: 'outbound|4318||otel.obs.svc.cluster.local', timeout: { seconds: 3 } },
        request_headers_to_add: [{ header: { key: 'x-tenant', value: 'blue' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
      },
    },
  });
  assert.deepEqual(t['inbound|41000'], t.outbound);
  assert.equal(translate(m, server).clusters[TRACES_CLUSTER], undefined, 'no receiver cluster when a provider is named');
  // A provider whose service is not in the mesh: no tracing (Istio leaves the HCM without it).
  const gone = mesh({ extensionProviders: [{ name: 'otel', opentelemetry: { service: 'nowhere.obs.svc.cluster.local', port: 4318, http: {} } }], defaultProviders: { tracing: ['otel'] } });
  assert.deepEqual(Object.values(tracings(gone, server)), ['-', '-']);
  // OTLP/gRPC only: the context is propagated and sampled, nothing exported (warned at apply).
  const grpc = tracings(mesh({ extensionProviders: [{ name: 'otel', opentelemetry: { service: 'otel.obs.svc.cluster.local', port: 4318 } }], defaultProviders: { tracing: ['otel'] } }), server);
  assert.equal(grpc.outbound.provider, undefined);
  assert.deepEqual(grpc.outbound.random_sampling, { value: 1 });
});

test('Telemetry tracing: workload over namespace over root namespace over mesh config, per match mode; disableSpanReporting; customTags replace the mesh ones', () => {
  const root = telemetry('mesh', 'istio-system', { tracing: [{ providers: [{ name: 'otel' }], randomSamplingPercentage: 10 }] });
  const ns = telemetry('ns', 'default', { tracing: [{ randomSamplingPercentage: 20 }] });
  const own = telemetry('own', 'default', { selector: { matchLabels: { app: 'server' } }, tracing: [{ match: { mode: 'SERVER' }, randomSamplingPercentage: 100, customTags: { user: { header: { name: 'x-user', defaultValue: 'anon' } } } }, { match: { mode: 'CLIENT' }, disableSpanReporting: true }] });
  const m = mesh({ extensionProviders: OTEL_PROVIDERS, enableTracing: true, defaultConfig: { tracing: { sampling: 5, customTags: { team: { literal: { value: 'blue' } } } } } }, [own, ns, root]);
  const s = tracings(m, server);
  assert.equal(s.outbound, '-', 'CLIENT: disableSpanReporting');
  assert.equal(s['inbound|41000'].random_sampling.value, 100);
  assert.equal(s['inbound|41000'].provider.typed_config.http_service.http_uri.cluster, 'outbound|4318||otel.obs.svc.cluster.local');
  assert.deepEqual(s['inbound|41000'].custom_tags.filter((x: any) => !x.tag.startsWith('istio.')), [{ tag: 'user', request_header: { name: 'x-user', default_value: 'anon' } }]);
  const c = tracings(m, client);
  assert.equal(c.outbound.random_sampling.value, 20, 'the namespace over the root');
  assert.deepEqual(c.outbound.custom_tags.filter((x: any) => !x.tag.startsWith('istio.')), [{ tag: 'team', literal: { value: 'blue' } }], "no Telemetry tags: defaultConfig's");
  assert.equal(tracings(m, other).outbound.random_sampling.value, 10, 'another namespace: the root');
  // A Telemetry without a sampling percentage: defaultConfig.tracing.sampling.
  const onlyProvider = mesh({ extensionProviders: OTEL_PROVIDERS, defaultConfig: { tracing: { sampling: 5 } } }, [telemetry('p', 'istio-system', { tracing: [{ providers: [{ name: 'otel' }] }] })]);
  assert.equal(tracings(onlyProvider, client).outbound.random_sampling.value, 5);
  // Providers are found by name in any case, as Istio's fetchProvider finds them.
  const upper = mesh({ extensionProviders: OTEL_PROVIDERS }, [telemetry('u', 'istio-system', { tracing: [{ providers: [{ name: 'OTEL' }] }] })]);
  assert.equal(tracings(upper, client).outbound.provider.typed_config.http_service.http_uri.cluster, 'outbound|4318||otel.obs.svc.cluster.local');
  // enableIstioTags: false drops Istio's tags.
  const noTags = mesh({}, [telemetry('t', 'default', { tracing: [{ enableIstioTags: false, randomSamplingPercentage: 50 }] })]);
  assert.equal(tracings(noTags, client).outbound.custom_tags, undefined);
  assert.equal(tracings(noTags, client).outbound.provider.typed_config.http_service.http_uri.cluster, TRACES_CLUSTER, 'no provider named: the receiver');
});

test('the sidecar loads it over the wire: sampling, tags, exporter (cluster, authority, path, timeout, headers, service name)', () => {
  const cfg = sidecarSnapshot(mesh({ extensionProviders: OTEL_PROVIDERS, defaultProviders: { tracing: ['otel'] }, defaultConfig: { tracing: { sampling: 12.5 } } }), server);
  const t = cfg.listeners.get('outbound')!.tracing!;
  assert.equal(t.randomSampling, 12.5);
  assert.equal(t.clientSampling, 100);
  assert.deepEqual(t.export, { cluster: 'outbound|4318||otel.obs.svc.cluster.local', authority: 'otel.obs.svc.cluster.local', path: '/v1/traces', timeoutMs: 3000, headers: ['x-tenant', 'blue'], serviceName: 'server.default' });
  assert.deepEqual(t.customTags.find((x) => x.tag === 'istio.canonical_service'), { tag: 'istio.canonical_service', kind: 'literal', value: 'server' });
  assert.deepEqual(t.customTags.find((x) => x.tag === 'istio.authorization.dry_run.deny_policy.name'), { tag: 'istio.authorization.dry_run.deny_policy.name', kind: 'metadata', filter: 'envoy.filters.http.rbac', path: ['istio_dry_run_deny_shadow_effective_policy_id'] });
  assert.ok(cfg.listeners.get('inbound|41000')!.tracing!.export);
  assert.ok(cfg.clusters.has('outbound|4318||otel.obs.svc.cluster.local'));
  const recv = sidecarSnapshot(mesh({ enableTracing: true }), server);
  assert.equal(recv.listeners.get('outbound')!.tracing!.export!.cluster, TRACES_CLUSTER);
  assert.ok(recv.clusters.has(TRACES_CLUSTER));
});

/** What the sidecar's converter says of `config`: 'accepted', or its refusal (a ConvertError's message). */
function verdict(convert: (config: unknown) => unknown, config: unknown): string {
  try {
    convert(config);
    return 'accepted';
  } catch (e) {
    assert.ok(e instanceof ConvertError);
    return (e as Error).message;
  }
}

test('what the sidecar cannot do is refused naming the field (a NACK), never traced otherwise than asked', () => {
  const refuse = (t: unknown) => verdict((c) => tracingConfig('listener x: HttpConnectionManager', c), t);
  const otelWith = (extra: object) => ({ provider: { name: 'envoy.tracers.opentelemetry', typed_config: { '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig', ...extra } } });
  assert.match(refuse(otelWith({ grpc_service: { envoy_grpc: { cluster_name: 'c' } } })), /tracing\.provider\.typed_config\.grpc_service: OTLP\/gRPC export is not supported/);
  assert.match(refuse({ provider: { name: 'envoy.tracers.zipkin', typed_config: { '@type': 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig' } } }), /tracing\.provider: unsupported tracer .*ZipkinConfig/);
  assert.match(refuse({ spawn_upstream_span: { value: true } }), /tracing\.spawn_upstream_span: not supported/);
  assert.match(refuse({ random_sampling: { value: 150 } }), /tracing\.random_sampling: must be between 0 and 100/);
  assert.match(refuse({ custom_tags: [{ tag: 'a', value: '%REQ(:PATH)%' }] }), /custom_tags\[0\]: unsupported custom tag/);
  assert.equal(refuse({ random_sampling: { value: 0 } }), 'accepted');
});

test("span names: every route carries Istio's decorator (getRouteOperation): host:port with the match's path for one destination, the VirtualService's name for several; the inbound route its service", () => {
  const vs = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'server-routes', namespace: 'default' },
    spec: {
      hosts: ['server'],
      http: [
        { match: [{ uri: { prefix: '/api' } }, { uri: { exact: '/health' } }, { uri: { regex: '/v[0-9]+/.*' } }], route: [{ destination: { host: 'server' } }] },
        { route: [{ destination: { host: 'server' }, weight: 50 }, { destination: { host: 'otel.obs.svc.cluster.local', port: { number: 4318 } }, weight: 50 }] },
      ],
    },
  };
  const m = { ...meshOf([vs], [server, client, otel]), meshConfig: { enableTracing: true } };
  const cfg = sidecarSnapshot(m, client);
  const ops = [...cfg.routes.get('outbound')!.exact.get('server.default.svc.cluster.local')!.routes].map((r) => r.operation);
  assert.deepEqual(ops, ['server.default.svc.cluster.local:80/api*', 'server.default.svc.cluster.local:80/health', 'server.default.svc.cluster.local:80/v[0-9]+/.*', 'server-routes:80/*']);
  const otelRoutes = cfg.routes.get('outbound')!.exact.get('otel.obs.svc.cluster.local:4318')!.routes.filter((r) => r.name === 'default');
  assert.deepEqual(otelRoutes.map((r) => r.operation), ['otel.obs.svc.cluster.local:4318/*'], 'a default route: host:port/*');
  const inbound = sidecarSnapshot(m, server).listeners.get('inbound|41000')!;
  assert.deepEqual([...inbound.inlineRoutes!.any!.routes].map((r) => r.operation), ['server.default.svc.cluster.local:80/*']);
});

test("Telemetry useRequestIdForTraceSampling: false and disableContextPropagation: true, as Istio's pilot emits them (the HCM's request_id_extension, the tracing's no_context_propagation), per mode, and as the sidecar loads them over the wire", () => {
  const t = telemetry('ctx', 'default', { tracing: [{ match: { mode: 'CLIENT' }, disableContextPropagation: true }, { useRequestIdForTraceSampling: false }] });
  const m = mesh({}, [t]);
  const hcm = (l: any) => l.filter_chains.flatMap((c: any) => c.filters).find((f: any) => f.typed_config?.['@type']?.endsWith('HttpConnectionManager')).typed_config;
  const ls = translate(m, server).listeners as Record<string, any>;
  assert.equal(hcm(ls.outbound).tracing.no_context_propagation, true);
  assert.equal(hcm(ls['inbound|41000']).tracing.no_context_propagation, undefined, 'SERVER: propagation stays on');
  for (const name of ['outbound', 'inbound|41000']) {
    assert.deepEqual(hcm(ls[name]).request_id_extension, { typed_config: { '@type': 'type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig', use_request_id_for_trace_sampling: { value: false } } }, name);
  }
  const cfg = sidecarSnapshot(m, server);
  const out = cfg.listeners.get('outbound')!.tracing!;
  const inb = cfg.listeners.get('inbound|41000')!.tracing!;
  assert.deepEqual([out.noContextPropagation, out.requestIdSampling, out.packTraceReason], [true, false, true]);
  assert.deepEqual([inb.noContextPropagation, inb.requestIdSampling], [false, false]);
  // Without them: the defaults, and no request_id_extension.
  const plain = sidecarSnapshot(mesh({}, [telemetry('p', 'default', { tracing: [{ randomSamplingPercentage: 5 }] })]), server).listeners.get('outbound')!.tracing!;
  assert.deepEqual([plain.noContextPropagation, plain.requestIdSampling, plain.packTraceReason], [false, true, true]);
  assert.equal(hcm((translate(mesh({}), server).listeners as Record<string, any>).outbound).request_id_extension, undefined);
});

test('a request_id_extension the sidecar has not (another extension, an unknown field) is refused naming the field', () => {
  const refuse = (e: unknown) => verdict((c) => requestIdExtension('listener x: HttpConnectionManager.request_id_extension', c), e);
  assert.match(refuse({ typed_config: { '@type': 'type.googleapis.com/example.OtherRequestId' } }), /request_id_extension\.typed_config: unsupported request id extension type\.googleapis\.com\/example\.OtherRequestId/);
  assert.match(refuse({ typed_config: { '@type': 'type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig', other: 1 } }), /typed_config\.other: not supported/);
  assert.deepEqual(refuse({ typed_config: { '@type': 'type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig', pack_trace_reason: { value: false } } }), 'accepted');
});
