// PURE: the tracing of a sidecar's HttpConnectionManagers, as Istio's pilot builds it
// (pilot/pkg/networking/core/tracing.go): Envoy's HCM `tracing` with random_sampling (client and
// overall sampling 100%), custom_tags (Istio's service tags, the RBAC dry-run tags, the configured
// ones, sorted by tag) and the provider envoy.tracers.opentelemetry exporting over OTLP/HTTP
// (http_service to the provider's cluster, service_name the proxy's "<canonical service>.<namespace>").
// Sidecars never spawn an upstream span (spawn_upstream_span unset): one span per HCM, SERVER on
// inbound listeners and CLIENT on the outbound one. As Istio's: useRequestIdForTraceSampling false
// sets the HCM's request_id_extension (UuidRequestIdConfig use_request_id_for_trace_sampling false),
// disableContextPropagation the tracing's no_context_propagation.
//
// Where the settings come from, as Istio: the tracing specs (tracingSpecs: the Telemetry resources
// that apply to the proxy over meshConfig.defaultProviders.tracing; workload > namespace > root
// namespace > mesh config), else the legacy mesh config (enableTracing, defaultConfig.tracing);
// sampling: the spec's randomSamplingPercentage > defaultConfig.tracing.sampling > 1%. Without a provider, Istio's Envoy reports to the
// bootstrap's tracer; Weft's sidecars report to the control plane's built-in receiver
// (MeshSnapshot.tracesReceiver), a STATIC cluster named TRACES_CLUSTER.
import { type MeshCustomTag, type MeshOtelProvider, findExtensionProvider } from '../../api/meshconfig.ts';
import type { MeshSnapshot, Workload } from '../model/model.ts';
import { TYPE } from '../../xds/types.ts';
import { duration } from './duration.ts';
import { lookupService, type MeshService } from './authz-extauthz.ts';
import { socketAddress } from './locality.ts';
import { applicableTelemetries } from '../../api/telemetry-select.ts';

export const OTEL_TRACER = 'envoy.tracers.opentelemetry';
/** The cluster of the control plane's built-in OTLP/HTTP receiver. */
export const TRACES_CLUSTER = 'weft_traces_receiver';
/** Istio's PILOT_TRACE_SAMPLING default: 1% of requests. */
export const DEFAULT_SAMPLING = 1;
const DEFAULT_OTLP_PATH = '/v1/traces';
const DEFAULT_EXPORT_TIMEOUT = { seconds: 5 };

/** What one direction's tracing says (Istio's model.TracingSpec). */
export interface TracingSpec {
  /** The provider's name; undefined: the built-in receiver (no provider configured). */
  provider?: string;
  /** Percent; undefined: defaultConfig.tracing.sampling, else 1. */
  randomSamplingPercentage?: number;
  customTags?: Record<string, MeshCustomTag>;
  /** disableSpanReporting: no tracing on the HCM at all. */
  disabled?: boolean;
  /** Istio's service and dry-run tags (Telemetry enableIstioTags; true unless turned off). */
  enableIstioTags?: boolean;
  /** Telemetry useRequestIdForTraceSampling (true unless turned off): the decision is drawn from x-request-id and packed into it. */
  useRequestIdForTraceSampling?: boolean;
  /** Telemetry disableContextPropagation: spans are reported, the trace headers are not written. */
  disableContextPropagation?: boolean;
}

/** What an HttpConnectionManager gets for tracing: its `tracing`, and a request_id_extension where the default one is not what is asked. */
export interface HcmTracing {
  tracing: object;
  request_id_extension?: object;
}

/** The inbound (server) and outbound (client) specs of a proxy; undefined: no Telemetry or default provider applies. */
export interface TracingSpecs {
  server: TracingSpec;
  client: TracingSpec;
}

export interface ProxyTracing {
  /** What the HCMs of its inbound listeners and of its outbound listener get (undefined: no tracing). */
  inbound?: HcmTracing;
  outbound?: HcmTracing;
  /** Clusters the tracing needs besides the mesh's (the built-in receiver's). */
  clusters: Record<string, object>;
}

type Mesh = Pick<MeshSnapshot, 'meshConfig' | 'tracesReceiver' | 'trustDomain' | 'telemetries'>;

/**
 * Istio's Telemetries.Tracing: the specs the Telemetry resources that apply to the proxy give
 * (root namespace, then its namespace, then its own: later ones override field by field, each for
 * its match mode), starting from meshConfig.defaultProviders.tracing; undefined when neither says
 * anything (the legacy mesh config then decides). Unlike Istio, where no provider is named the
 * spans go to the control plane's receiver rather than nowhere.
 */
export function tracingSpecs(mesh: Mesh, proxy: Workload): TracingSpecs | undefined {
  const entries = applicableTelemetries(mesh.telemetries, { namespace: proxy.namespace, labels: proxy.labels ?? {} }).flatMap((a) => a.telemetry.spec.tracing ?? []);
  const dflt = mesh.meshConfig?.defaultProviders?.tracing?.[0];
  if (!entries.length && dflt === undefined) return undefined;
  const client: TracingSpec = { enableIstioTags: true, ...(dflt !== undefined ? { provider: dflt } : {}) };
  const server: TracingSpec = { ...client };
  for (const t of entries) {
    const mode = t.match?.mode;
    const specs = mode === 'CLIENT' ? [client] : mode === 'SERVER' ? [server] : [client, server];
    const name = t.providers?.[0]?.name; // Istio: one provider per mode, the first
    for (const s of specs) {
      if (name) s.provider = name;
      if (t.randomSamplingPercentage != null) s.randomSamplingPercentage = t.randomSamplingPercentage;
      if (t.disableSpanReporting != null) s.disabled = t.disableSpanReporting;
      if (t.enableIstioTags != null) s.enableIstioTags = t.enableIstioTags;
      if (t.customTags && Object.keys(t.customTags).length) s.customTags = t.customTags;
      if (t.useRequestIdForTraceSampling != null) s.useRequestIdForTraceSampling = t.useRequestIdForTraceSampling;
      if (t.disableContextPropagation != null) s.disableContextPropagation = t.disableContextPropagation;
    }
  }
  return { client, server };
}

/** The tracing of one proxy's HCMs, from its specs (Telemetry, default providers) or the legacy mesh config. */
export function proxyTracing(mesh: Mesh, proxy: Workload, services: () => readonly MeshService[], specs: TracingSpecs | undefined = tracingSpecs(mesh, proxy)): ProxyTracing {
  const out: ProxyTracing = { clusters: {} };
  if (!specs) {
    if (mesh.meshConfig?.enableTracing === false) return out; // Istio's default: true
    // The legacy path: sampling and tags of defaultConfig, the bootstrap's tracer (here: the receiver).
    const legacy: TracingSpec = { enableIstioTags: true };
    specs = { server: legacy, client: legacy };
  }
  out.inbound = hcmTracing(mesh, proxy, services, specs.server, out.clusters);
  out.outbound = hcmTracing(mesh, proxy, services, specs.client, out.clusters);
  return out;
}

function hcmTracing(mesh: Mesh, proxy: Workload, services: () => readonly MeshService[], spec: TracingSpec, clusters: Record<string, object>): HcmTracing | undefined {
  if (spec.disabled) return undefined;
  const dc = mesh.meshConfig?.defaultConfig?.tracing;
  const out: Record<string, unknown> = {};
  let maxTag = dc?.maxPathTagLength;
  const serviceName = `${canonicalService(proxy)}.${proxy.namespace}`;
  if (spec.provider !== undefined) {
    const p = findExtensionProvider(mesh.meshConfig, spec.provider); // by name, any case, as Istio's fetchProvider
    // As Istio: a provider that cannot be configured (unknown, not a tracer, service not in the
    // mesh) leaves the HCM without tracing.
    const otel = p?.opentelemetry;
    if (!otel) return undefined;
    const built = otelProvider(otel, serviceName, services);
    if (!built) return undefined;
    if (built.provider) out.provider = built.provider;
    if (otel.maxTagLength) maxTag = otel.maxTagLength;
  } else if (mesh.tracesReceiver) {
    const { address, port } = mesh.tracesReceiver;
    clusters[TRACES_CLUSTER] = {
      name: TRACES_CLUSTER,
      type: 'STATIC',
      connect_timeout: { seconds: 5 },
      load_assignment: { cluster_name: TRACES_CLUSTER, endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(address, port) } }] }] },
    };
    out.provider = tracer(serviceName, { http_uri: { uri: `${TRACES_CLUSTER}${DEFAULT_OTLP_PATH}`, cluster: TRACES_CLUSTER, timeout: DEFAULT_EXPORT_TIMEOUT } });
  }
  const sampling = spec.randomSamplingPercentage ?? samplingOf(dc?.sampling);
  out.client_sampling = { value: 100 };
  out.random_sampling = { value: sampling };
  out.overall_sampling = { value: 100 };
  const tags = [
    ...(spec.enableIstioTags !== false ? [...serviceTags(mesh, proxy), ...DRY_RUN_TAGS] : []),
    ...customTags(spec.customTags && Object.keys(spec.customTags).length ? spec.customTags : dc?.customTags),
  ].sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
  if (tags.length) out.custom_tags = tags;
  if (maxTag) out.max_path_tag_length = { value: maxTag };
  if (spec.disableContextPropagation) out.no_context_propagation = true;
  return {
    tracing: out,
    ...(spec.useRequestIdForTraceSampling === false ? { request_id_extension: { typed_config: { '@type': TYPE.uuidRequestId, use_request_id_for_trace_sampling: { value: false } } } } : {}),
  };
}

/** proxyConfigSamplingValue: defaultConfig.tracing.sampling when set and not 0 (over 100: 1), else 1. */
function samplingOf(s: number | undefined): number {
  if (!s) return DEFAULT_SAMPLING;
  return s > 100 ? 1 : s;
}

/** otelConfig over OTLP/HTTP; a gRPC-only provider propagates and samples but exports nothing (warned at apply). */
function otelProvider(c: MeshOtelProvider, serviceName: string, services: () => readonly MeshService[]): { provider?: object } | undefined {
  const found = lookupService(c.service, services());
  if ('error' in found || !(c.port >= 1 && c.port <= 65535)) return undefined;
  if (!c.http) return {};
  const cluster = `outbound|${c.port}||${found.hostname}`;
  const path = c.http.path ? (c.http.path.startsWith('/') ? c.http.path : `/${c.http.path}`) : DEFAULT_OTLP_PATH;
  const headers = (c.http.headers ?? []).filter((h) => h.value !== undefined).map((h) => ({ header: { key: h.name, value: h.value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }));
  const httpService = {
    http_uri: { uri: `${found.hostname}${path}`, cluster, timeout: c.http.timeout ? duration(c.http.timeout) : DEFAULT_EXPORT_TIMEOUT },
    ...(headers.length ? { request_headers_to_add: headers } : {}),
  };
  return { provider: tracer(serviceName, httpService) };
}

function tracer(serviceName: string, httpService: object): object {
  return { name: OTEL_TRACER, typed_config: { '@type': TYPE.otelTracer, service_name: serviceName, http_service: httpService } };
}

/** The canonical service, as Istio's injector labels it (service.istio.io/canonical-name, app.kubernetes.io/name, app), else the workload. */
function canonicalService(w: Workload): string {
  const l = w.labels ?? {};
  return l['service.istio.io/canonical-name'] || l['app.kubernetes.io/name'] || l.app || w.name;
}

function canonicalRevision(w: Workload): string {
  const l = w.labels ?? {};
  return l['service.istio.io/canonical-revision'] || l['app.kubernetes.io/version'] || l.version || 'latest';
}

interface CustomTagJson {
  tag: string;
  [kind: string]: unknown;
}

/** buildServiceTags: literal tags naming the proxy's service, revision, mesh, namespace and cluster. */
function serviceTags(mesh: Mesh, w: Workload): CustomTagJson[] {
  const lit = (tag: string, value: string) => ({ tag, literal: { value } });
  return [
    lit('istio.canonical_revision', canonicalRevision(w)),
    lit('istio.canonical_service', canonicalService(w)),
    lit('istio.mesh_id', mesh.trustDomain ?? 'cluster.local'),
    lit('istio.namespace', w.namespace || 'default'),
    lit('istio.cluster_id', 'unknown'),
  ];
}

const dryRunTag = (tag: string, key: string): CustomTagJson => ({ tag, metadata: { kind: { request: {} }, metadata_key: { key: 'envoy.filters.http.rbac', path: [{ key }] } } });

/** optionalPolicyTags: the AuthorizationPolicy dry-run results, where the RBAC filter wrote them. */
const DRY_RUN_TAGS: readonly CustomTagJson[] = [
  dryRunTag('istio.authorization.dry_run.allow_policy.name', 'istio_dry_run_allow_shadow_effective_policy_id'),
  dryRunTag('istio.authorization.dry_run.allow_policy.result', 'istio_dry_run_allow_shadow_engine_result'),
  dryRunTag('istio.authorization.dry_run.deny_policy.name', 'istio_dry_run_deny_shadow_effective_policy_id'),
  dryRunTag('istio.authorization.dry_run.deny_policy.result', 'istio_dry_run_deny_shadow_engine_result'),
];

/** Telemetry's (or defaultConfig.tracing's) customTags as Envoy's CustomTag list. */
function customTags(tags: Record<string, MeshCustomTag> | undefined): CustomTagJson[] {
  const out: CustomTagJson[] = [];
  for (const [tag, t] of Object.entries(tags ?? {})) {
    if (!t) continue;
    if (t.literal) out.push({ tag, literal: { value: t.literal.value ?? '' } });
    else if (t.environment?.name) out.push({ tag, environment: { name: t.environment.name, ...(t.environment.defaultValue !== undefined ? { default_value: t.environment.defaultValue } : {}) } });
    else if (t.header?.name) out.push({ tag, request_header: { name: t.header.name, ...(t.header.defaultValue !== undefined ? { default_value: t.header.defaultValue } : {}) } });
  }
  return out;
}

/** Adds `tracing` (and its request_id_extension) to every HttpConnectionManager of a listener (every filter chain). */
export function withTracing(listener: object, tracing: HcmTracing | undefined): object {
  if (!tracing) return listener;
  const l = listener as { filter_chains?: { filters: { typed_config?: Record<string, unknown> }[] }[] };
  if (!l.filter_chains) return listener;
  return {
    ...listener,
    filter_chains: l.filter_chains.map((c) => ({
      ...c,
      filters: c.filters.map((f) => (f.typed_config?.['@type'] === TYPE.hcm ? { ...f, typed_config: { ...f.typed_config, ...tracing } } : f)),
    })),
  };
}
