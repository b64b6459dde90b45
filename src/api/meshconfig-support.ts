// What Weft does with each field of Istio's mesh config (the ConfigMap istio-system/istio, read and
// checked by meshconfig-rules.ts), and the MeshConfig the rest of Weft reads (MeshSnapshot.meshConfig):
//   - applied: trustDomain, trustDomainAliases, enableAutoMtls, extensionProviders (the ext_authz
//     kinds, opentelemetry over OTLP/HTTP, envoyFileAccessLog for Telemetries' access logs and
//     prometheus for Telemetry metrics), defaultProviders.accessLogging, .metrics and .tracing, accessLogFile/accessLogEncoding/accessLogFormat,
//     enableTracing, defaultConfig.tracing (sampling, customTags, maxPathTagLength),
//     meshMTLS.minProtocolVersion,
//     outboundTrafficPolicy (the default of proxies whose Sidecar does not say), and rootNamespace
//     istio-system;
//   - refused where ignoring the field would weaken security or widen traffic (rejected);
//   - accepted with a warning naming the field elsewhere (warnings).
import { parseDocument } from 'yaml';
import type { FieldError } from './types.ts';
import { field, index, isObject, type Obj } from './schema.ts';
import { MESH_CONFIGMAP, type MeshConfig, type MeshCustomTag, type MeshExtensionProvider } from './meshconfig.ts';
import { AUTHZ_KINDS, MESH, readMesh } from './meshconfig-rules.ts';
import { accessLogFormatProblem, accessLogProblem } from './accesslog-format.ts';

const ROOT_NAMESPACE = 'istio-system';

// ---- support: what Weft applies, refuses, or warns of ----

export interface MeshSupport {
  rejected: FieldError[];
  warnings: FieldError[];
}

/** Fields Weft applies in full, or leaves to their owners (the access log is applied by the sidecars' listeners). */
const APPLIED = new Set(['trustDomain', 'trustDomainAliases', 'enableAutoMtls', 'accessLogFile', 'accessLogEncoding', 'accessLogFormat', 'outboundTrafficPolicy', 'enableTracing']);

const NOT_APPLIED = 'accepted, not applied yet';

export function meshConfigSupport(data: Obj): MeshSupport {
  const out: MeshSupport = { rejected: [], warnings: [] };
  for (const [k, v] of Object.entries(data)) {
    if (k === MESH_CONFIGMAP.key) continue;
    if (k === 'meshNetworks') meshNetworks(v, out);
    else out.warnings.push({ path: `data.${k}`, message: `accepted, not read: Istio reads its mesh config from data.${MESH_CONFIGMAP.key} (and data.meshNetworks)` });
  }
  const { mesh } = readMesh(data);
  if (!mesh) return out;
  const warn = (path: string, message: string) => out.warnings.push({ path: field(MESH, path), message });
  const reject = (path: string, message: string) => out.rejected.push({ path: field(MESH, path), message });
  // An access log format the sidecars cannot write would have every sidecar refuse its listeners.
  const logProblem = accessLogProblem(mesh);
  if (logProblem) reject(logProblem.path, logProblem.message);
  for (const [k, v] of Object.entries(mesh)) {
    if (v === null || APPLIED.has(k)) continue;
    switch (k) {
      case 'rootNamespace':
        if (v !== ROOT_NAMESPACE) reject(k, `${JSON.stringify(v)} is not supported yet: Weft's root namespace is ${ROOT_NAMESPACE} (mesh-wide PeerAuthentication, AuthorizationPolicy and Sidecar live there); ignoring it would leave the policies of ${JSON.stringify(v)} applying to one namespace only, and those of ${ROOT_NAMESPACE} to the whole mesh`);
        break;
      case 'meshMTLS':
        meshMtls(v as Obj, reject);
        break;
      case 'pathNormalization': {
        const n = isObject(v) ? v.normalization : undefined;
        if (n === 'MERGE_SLASHES' || n === 'DECODE_AND_MERGE_SLASHES') reject(field(k, 'normalization'), `${n} is not supported yet: sidecars normalize paths as BASE does (RFC 3986, no slash merging); ignoring it would let "//admin" past an AuthorizationPolicy on "/admin"`);
        else if (n === 'NONE') warn(field(k, 'normalization'), `${NOT_APPLIED}: sidecars normalize paths as BASE does (RFC 3986)`);
        break;
      }
      case 'defaultServiceExportTo':
      case 'defaultVirtualServiceExportTo':
      case 'defaultDestinationRuleExportTo':
        if (!(Array.isArray(v) && v.every((e) => e === '*'))) reject(k, 'not supported yet: a resource without exportTo is visible in every namespace; ignoring it would make resources visible where this default hides them (give each resource its exportTo)');
        break;
      case 'discoverySelectors':
        if (Array.isArray(v) && v.length) reject(k, 'not supported yet: Weft serves the config and workloads of every namespace; ignoring it would put namespaces in the mesh that it leaves out');
        break;
      case 'extensionProviders':
        (v as unknown[]).forEach((pv, i) => {
          if (!isObject(pv)) return;
          const kind = Object.keys(pv).find((x) => x !== 'name' && pv[x] !== null);
          if (kind === 'envoyFileAccessLog') return fileAccessLog(pv[kind], `${index(k, i)}.${kind}`, warn, reject);
          // A prometheus provider has no fields (Istio's PrometheusMetricsProvider): Telemetry metrics name it (control/translate/telemetry-metrics.ts).
          if (kind === 'prometheus') return;
          if (kind === 'opentelemetry' && isObject(pv[kind])) otelProvider(pv[kind], `${index(k, i)}.${kind}`, warn);
          else if (kind && !AUTHZ_KINDS.has(kind)) warn(`${index(k, i)}.${kind}`, `${NOT_APPLIED}: Weft uses extension providers as external authorizers (envoyExtAuthzHttp, envoyExtAuthzGrpc) for CUSTOM AuthorizationPolicies, as access log files (envoyFileAccessLog) and metrics exporters (prometheus) for Telemetries and as tracers (opentelemetry)`);
          if (kind && AUTHZ_KINDS.has(kind) && isObject(pv[kind]) && pv[kind].clearRouteCache === true) warn(`${index(k, i)}.${kind}.clearRouteCache`, `${NOT_APPLIED}: the route is not chosen again after the authorizer's answer`);
        });
        break;
      case 'defaultConfig':
        if (isObject(v)) defaultConfig(v, warn);
        break;
      case 'defaultProviders':
        if (isObject(v)) defaultProviders(v, mesh.extensionProviders, warn);
        break;
      case 'enablePrometheusMerge':
        warn(k, `${NOT_APPLIED}: the sidecars' /stats/prometheus has their own metrics and Istio's, not the application's`);
        break;
      default:
        warn(k, `${NOT_APPLIED}`);
    }
  }
  return out;
}

/** An opentelemetry provider: exported over OTLP/HTTP (translate/tracing.ts); what is not applied is named. */
function otelProvider(c: Obj, p: string, warn: (path: string, message: string) => void): void {
  if (!isObject(c.http)) warn(isObject(c.grpc) ? `${p}.grpc` : p, `${NOT_APPLIED}: sidecars export spans over OTLP/HTTP only (Istio exports over gRPC when http is unset); this provider's spans are not exported: give it http: {path: /v1/traces} and the service's OTLP/HTTP port`);
  if (c.resourceDetectors != null) warn(`${p}.resourceDetectors`, `${NOT_APPLIED}: spans carry service.name only as their resource`);
  if (c.dynatraceSampler != null) warn(`${p}.dynatraceSampler`, `${NOT_APPLIED}: sampling is random_sampling (Telemetry randomSamplingPercentage, defaultConfig.tracing.sampling)`);
  const headers = isObject(c.http) && Array.isArray(c.http.headers) ? c.http.headers : [];
  headers.forEach((h, j) => isObject(h) && h.envName != null && warn(`${p}.http.headers[${j}].envName`, `${NOT_APPLIED}: the header is not sent (give its value)`));
}

/** Proxy settings are the sidecar's own (weft sidecar flags), but tracing's sampling and tags, which Weft applies. */
function defaultConfig(c: Obj, warn: (path: string, message: string) => void): void {
  for (const [k, v] of Object.entries(c)) {
    if (v === null) continue;
    if (k !== 'tracing') {
      warn(`defaultConfig.${k}`, `${NOT_APPLIED}: proxy settings are the sidecar's own (weft sidecar flags)`);
      continue;
    }
    if (!isObject(v)) continue;
    for (const t of Object.keys(v)) {
      if (TRACING_APPLIED.has(t) || v[t] === null) continue;
      warn(`defaultConfig.tracing.${t}`, `${NOT_APPLIED}: sidecars export spans to an opentelemetry extension provider (defaultProviders.tracing) or to the control plane's receiver`);
    }
  }
}

const TRACING_APPLIED = new Set(['sampling', 'customTags', 'maxPathTagLength']);

/** defaultProviders.tracing, .accessLogging and .metrics are applied; a metrics name that is no prometheus provider reports nothing; a tracing name that is no opentelemetry provider exports nothing. */
function defaultProviders(c: Obj, providers: unknown, warn: (path: string, message: string) => void): void {
  for (const [k, v] of Object.entries(c)) {
    if (v === null) continue;
    if (k === 'accessLogging') continue; // applied where no Telemetry names providers (control/translate/telemetry-logs.ts)
    if (k === 'metrics') {
      // Applied where no Telemetry names providers (control/translate/telemetry-metrics.ts); the sidecars export to Prometheus only.
      (Array.isArray(v) ? v : []).forEach((name, i) => {
        const p = (Array.isArray(providers) ? providers : []).find((x) => isObject(x) && x.name === name);
        const prometheus = isObject(p) ? isObject(p.prometheus) : name === 'prometheus';
        if (!prometheus) warn(`defaultProviders.metrics[${i}]`, `${NOT_APPLIED}: ${JSON.stringify(name)} is not a prometheus provider, and Weft's sidecars export metrics to Prometheus only; where the default providers name none, workloads without a Telemetry naming providers report no Istio metrics (as in Istio)`);
      });
      continue;
    }
    if (k !== 'tracing') {
      warn(`defaultProviders.${k}`, NOT_APPLIED);
      continue;
    }
    (Array.isArray(v) ? v : []).forEach((name, i) => {
      const p = Array.isArray(providers) ? providers.find((x) => isObject(x) && typeof x.name === 'string' && typeof name === 'string' && x.name.toLowerCase() === name.toLowerCase()) : undefined;
      if (!isObject(p)) warn(`defaultProviders.tracing[${i}]`, `no extension provider is named ${JSON.stringify(name)}: proxies report no spans to it`);
      else if (!isObject(p.opentelemetry)) warn(`defaultProviders.tracing[${i}]`, `${NOT_APPLIED}: provider ${JSON.stringify(name)} is not an opentelemetry provider, the one tracer Weft applies`);
      else if (i > 0) warn(`defaultProviders.tracing[${i}]`, 'not applied: as in Istio, a proxy reports spans to one provider (the first)');
    });
  }
}

/**
 * An envoyFileAccessLog provider: applied where a Telemetry (or defaultProviders) names it. A
 * format the sidecars cannot write would have every sidecar refuse its listeners, so it is refused
 * here, as the mesh config's own accessLogFormat is.
 */
function fileAccessLog(v: unknown, p: string, warn: (path: string, message: string) => void, reject: (path: string, message: string) => void): void {
  if (!isObject(v)) return;
  const lf = isObject(v.logFormat) ? v.logFormat : undefined;
  if (typeof lf?.text === 'string' && lf.text !== '') {
    const problem = accessLogFormatProblem(lf.text);
    if (problem) reject(`${p}.logFormat.text`, problem);
  }
  if (isObject(lf?.labels)) {
    const problem = accessLogProblem({ accessLogEncoding: 'JSON', accessLogFormat: JSON.stringify(lf.labels) });
    if (problem) reject(`${p}.logFormat.labels`, problem.message.replace(/^with accessLogEncoding JSON it /, 'it '));
  }
  if (v.omitEmptyValues === true) warn(`${p}.omitEmptyValues`, `${NOT_APPLIED}: empty values are written as "-" (text) or null (JSON)`);
}

/** minProtocolVersion is applied (the sidecars' mTLS servers, translate/mtls.ts); cipher suites are not. */
function meshMtls(m: Obj, reject: (path: string, message: string) => void): void {
  if (Array.isArray(m.cipherSuites) && m.cipherSuites.length) reject('meshMTLS.cipherSuites', "not supported yet: mesh mTLS offers Node's default cipher suites; ignoring it would allow suites it leaves out");
}

function meshNetworks(v: unknown, out: MeshSupport): void {
  if (typeof v !== 'string') return;
  let networks: unknown;
  try {
    const doc = parseDocument(v);
    networks = doc.errors.length ? undefined : (doc.toJS() as Obj | null)?.networks;
  } catch {
    networks = undefined;
  }
  if (isObject(networks) && Object.keys(networks).length === 0) return;
  out.warnings.push({ path: 'data.meshNetworks', message: `${NOT_APPLIED}: Weft's mesh is one network` });
}

// ---- the MeshConfig the rest of Weft reads ----

/** The fields Weft applies, from a valid ConfigMap's data (as the store holds it); Istio's defaults are left unset. */
export function meshConfigOf(data: unknown): MeshConfig {
  const { mesh } = readMesh(data);
  const out: MeshConfig = {};
  if (!mesh) return out;
  if (typeof mesh.trustDomain === 'string') out.trustDomain = mesh.trustDomain;
  if (Array.isArray(mesh.trustDomainAliases)) out.trustDomainAliases = mesh.trustDomainAliases as string[];
  if (typeof mesh.enableAutoMtls === 'boolean') out.enableAutoMtls = mesh.enableAutoMtls;
  if (Array.isArray(mesh.extensionProviders)) out.extensionProviders = mesh.extensionProviders as MeshExtensionProvider[];
  if (typeof mesh.accessLogFile === 'string') out.accessLogFile = mesh.accessLogFile;
  if (mesh.accessLogEncoding === 'TEXT' || mesh.accessLogEncoding === 'JSON') out.accessLogEncoding = mesh.accessLogEncoding;
  if (typeof mesh.accessLogFormat === 'string') out.accessLogFormat = mesh.accessLogFormat;
  if (isObject(mesh.defaultProviders)) {
    const dp = mesh.defaultProviders;
    const names = (v: unknown) => (Array.isArray(v) ? v.filter((n): n is string => typeof n === 'string') : undefined);
    out.defaultProviders = {};
    for (const k of ['accessLogging', 'metrics', 'tracing'] as const) {
      const n = names(dp[k]);
      if (n) out.defaultProviders[k] = n;
    }
  }
  const mode = isObject(mesh.outboundTrafficPolicy) ? mesh.outboundTrafficPolicy.mode : undefined;
  if (mode === 'ALLOW_ANY' || mode === 'REGISTRY_ONLY') out.outboundTrafficPolicy = { mode };
  const min = isObject(mesh.meshMTLS) ? mesh.meshMTLS.minProtocolVersion : undefined;
  if (min === 'TLS_AUTO' || min === 'TLSV1_2' || min === 'TLSV1_3') out.meshMTLS = { minProtocolVersion: min };
  if (typeof mesh.enableTracing === 'boolean') out.enableTracing = mesh.enableTracing;
  const tracing = isObject(mesh.defaultConfig) && isObject(mesh.defaultConfig.tracing) ? mesh.defaultConfig.tracing : undefined;
  if (tracing) {
    const t: NonNullable<NonNullable<MeshConfig['defaultConfig']>['tracing']> = {};
    if (typeof tracing.sampling === 'number') t.sampling = tracing.sampling;
    if (typeof tracing.maxPathTagLength === 'number') t.maxPathTagLength = tracing.maxPathTagLength;
    if (isObject(tracing.customTags)) t.customTags = tracing.customTags as Record<string, MeshCustomTag>;
    if (Object.keys(t).length) out.defaultConfig = { tracing: t };
  }
  return out;
}
