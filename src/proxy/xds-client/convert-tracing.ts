// PURE: an HttpConnectionManager's `tracing` (Envoy's HttpConnectionManager.Tracing) -> the
// sidecar's tracing config: sampling (random, client, overall), custom tags (literal, environment,
// request_header, request metadata), max_path_tag_length, and the provider: envoy.tracers.opentelemetry
// exporting over OTLP/HTTP (http_service) to a cluster, or none (context is propagated and
// sampled, spans are not reported), no_context_propagation (spans are made and reported, the trace
// headers are passed on as they came), and the HCM's request_id_extension (Envoy's
// UuidRequestIdConfig: whether the decision is drawn from x-request-id and packed into it). Anything
// else (other tracers, OTLP/gRPC, resource detectors, samplers, spawn_upstream_span, other request
// id extensions) is refused, naming the field, rather than traced otherwise than asked.
import { TYPE } from '../../xds/types.ts';
import { duration, fail } from './convert-util.ts';

export type CustomTag =
  | { tag: string; kind: 'literal'; value: string }
  | { tag: string; kind: 'header'; name: string; defaultValue?: string }
  | { tag: string; kind: 'metadata'; filter: string; path: readonly string[] };

export interface OtlpExport {
  cluster: string;
  /** The request's :authority and path, from http_uri.uri ("collector.ns.svc.cluster.local/v1/traces"). */
  authority: string;
  path: string;
  timeoutMs: number;
  /** request_headers_to_add, as a header list. */
  headers: readonly string[];
  /** The spans' resource service.name. */
  serviceName: string;
}

export interface TracingConfig {
  /** Percentages, 0..100. */
  randomSampling: number;
  clientSampling: number;
  overallSampling: number;
  customTags: readonly CustomTag[];
  /** http.url is cut to this many characters (Envoy's default 256). */
  maxPathTagLength: number;
  /** Where spans go; undefined: none are reported. */
  export?: OtlpExport;
  /** no_context_propagation: the trace headers are not written (the request's pass as they came). */
  noContextPropagation: boolean;
  /** UuidRequestIdConfig use_request_id_for_trace_sampling (default true): false, the decision is drawn at random, not from x-request-id. */
  requestIdSampling: boolean;
  /** UuidRequestIdConfig pack_trace_reason (default true): the decision is read from and written into a UUID x-request-id. */
  packTraceReason: boolean;
  /** The HCM's generate_request_id (default true): false, a request that came without x-request-id goes on without one. */
  generateRequestId: boolean;
}

/** What the HCM says of x-request-id beside its tracing: its request_id_extension and generate_request_id. */
export interface RequestIdOptions {
  requestIdSampling: boolean;
  packTraceReason: boolean;
  generateRequestId: boolean;
}

const UUID_FIELDS = new Set(['@type', 'pack_trace_reason', 'use_request_id_for_trace_sampling']);

/** An HCM's request_id_extension: Envoy's default UUID extension, the one it has (none: its defaults). */
export function requestIdExtension(where: string, e: any): Pick<RequestIdOptions, 'requestIdSampling' | 'packTraceReason'> {
  if (e == null) return DEFAULT_REQUEST_ID;
  const tc = e?.typed_config;
  if (tc?.['@type'] !== TYPE.uuidRequestId) fail(`${where}.typed_config`, `unsupported request id extension ${tc?.['@type'] ?? '(none)'} (envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig is supported)`);
  for (const k of Object.keys(tc)) if (!UUID_FIELDS.has(k)) fail(`${where}.typed_config.${k}`, 'not supported');
  const flag = (v: any): boolean => (v?.value ?? v) !== false;
  return { requestIdSampling: flag(tc.use_request_id_for_trace_sampling), packTraceReason: flag(tc.pack_trace_reason) };
}

const TRACING_FIELDS = new Set(['provider', 'random_sampling', 'client_sampling', 'overall_sampling', 'custom_tags', 'max_path_tag_length', 'verbose', 'spawn_upstream_span', 'no_context_propagation']);
const OTEL_FIELDS = new Set(['@type', 'service_name', 'http_service']);

export function tracingConfig(where: string, t: any, rid: RequestIdOptions = DEFAULT_REQUEST_ID): TracingConfig | undefined {
  if (t == null) return undefined;
  where = `${where}.tracing`;
  for (const k of Object.keys(t)) if (!TRACING_FIELDS.has(k)) fail(`${where}.${k}`, 'not supported');
  if ((t.spawn_upstream_span?.value ?? t.spawn_upstream_span) === true) fail(`${where}.spawn_upstream_span`, 'not supported (a sidecar reports one span per request: SERVER inbound, CLIENT outbound)');
  const maxTag = t.max_path_tag_length?.value ?? t.max_path_tag_length;
  return {
    randomSampling: percent(`${where}.random_sampling`, t.random_sampling),
    clientSampling: percent(`${where}.client_sampling`, t.client_sampling),
    overallSampling: percent(`${where}.overall_sampling`, t.overall_sampling),
    customTags: Object.freeze((t.custom_tags ?? []).map((c: any, i: number) => customTag(`${where}.custom_tags[${i}]`, c))),
    maxPathTagLength: typeof maxTag === 'number' && maxTag > 0 ? maxTag : 256,
    ...(t.provider ? { export: provider(`${where}.provider`, t.provider) } : {}),
    noContextPropagation: (t.no_context_propagation?.value ?? t.no_context_propagation) === true,
    ...rid,
  };
}

const DEFAULT_REQUEST_ID: RequestIdOptions = Object.freeze({ requestIdSampling: true, packTraceReason: true, generateRequestId: true });

/** envoy.type.v3.Percent; unset is 100%. */
function percent(where: string, p: any): number {
  if (p == null) return 100;
  const v = Number(p.value ?? 0);
  if (!(v >= 0 && v <= 100)) fail(where, `must be between 0 and 100 (got ${p.value})`);
  return v;
}

function customTag(where: string, c: any): CustomTag {
  const tag = c?.tag;
  if (typeof tag !== 'string' || !tag) fail(`${where}.tag`, 'required');
  if (c.literal) return { tag, kind: 'literal', value: String(c.literal.value ?? '') };
  // The sidecar's own environment, read once, as Envoy reads it when the config arrives.
  if (c.environment) return { tag, kind: 'literal', value: process.env[String(c.environment.name)] ?? String(c.environment.default_value ?? '') };
  if (c.request_header) {
    const name = String(c.request_header.name ?? '').toLowerCase();
    if (!name) fail(`${where}.request_header.name`, 'required');
    return { tag, kind: 'header', name, ...(c.request_header.default_value ? { defaultValue: String(c.request_header.default_value) } : {}) };
  }
  if (c.metadata) {
    if (!c.metadata.kind?.request) fail(`${where}.metadata.kind`, 'only request metadata is supported');
    const key = c.metadata.metadata_key;
    if (typeof key?.key !== 'string') fail(`${where}.metadata.metadata_key.key`, 'required');
    return { tag, kind: 'metadata', filter: key.key, path: (key.path ?? []).map((s: any) => String(s.key)) };
  }
  fail(where, 'unsupported custom tag (literal, environment, request_header and request metadata are)');
}

function provider(where: string, p: any): OtlpExport {
  const tc = p.typed_config;
  if (p.name !== 'envoy.tracers.opentelemetry' || tc?.['@type'] !== TYPE.otelTracer) fail(where, `unsupported tracer ${tc?.['@type'] ?? p.name ?? '(none)'} (envoy.tracers.opentelemetry is supported)`);
  for (const k of Object.keys(tc)) if (!OTEL_FIELDS.has(k)) fail(`${where}.typed_config.${k}`, k === 'grpc_service' ? 'OTLP/gRPC export is not supported (http_service, OTLP/HTTP, is)' : 'not supported');
  const hs = tc.http_service;
  if (!hs) fail(`${where}.typed_config.http_service`, 'required (spans are exported over OTLP/HTTP)');
  const uri = hs.http_uri;
  const cluster = uri?.cluster;
  if (typeof cluster !== 'string' || !cluster) fail(`${where}.typed_config.http_service.http_uri.cluster`, 'required');
  const raw = String(uri.uri ?? '').replace(/^https?:\/\//, '');
  const slash = raw.indexOf('/');
  const headers: string[] = [];
  for (const [i, h] of (hs.request_headers_to_add ?? []).entries()) {
    const key = h?.header?.key;
    if (typeof key !== 'string' || !key) fail(`${where}.typed_config.http_service.request_headers_to_add[${i}].header.key`, 'required');
    headers.push(key.toLowerCase(), String(h.header.value ?? ''));
  }
  return {
    cluster,
    authority: slash < 0 ? raw || cluster : raw.slice(0, slash) || cluster,
    path: slash < 0 ? '/v1/traces' : raw.slice(slash),
    timeoutMs: uri.timeout == null ? 5000 : duration(`${where}.typed_config.http_service.http_uri.timeout`, uri.timeout),
    headers: Object.freeze(headers),
    serviceName: String(tc.service_name ?? '') || 'unknown',
  };
}
