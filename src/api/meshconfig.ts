// Istio's mesh config (MeshConfig, istio.io/latest/docs/reference/config/istio.mesh.v1alpha1/), as
// Weft reads it: from the ConfigMap `istio` in the root namespace `istio-system`, key `mesh` (a
// YAML document), exactly as `kubectl get configmap istio -n istio-system -o yaml` shows it in an
// Istio install. `weft apply` takes that ConfigMap; every other ConfigMap is refused.
//
// This file holds the shape the rest of Weft reads (MeshSnapshot.meshConfig). The fields listed
// here are the ones Weft applies; validation and the warnings for the fields it does not apply
// yet live beside it.

/** The ConfigMap Weft reads the mesh config from, as Istio's istiod does. */
export const MESH_CONFIGMAP = Object.freeze({ namespace: 'istio-system', name: 'istio', key: 'mesh' });

/** An ext_authz provider's request body settings (envoyExtAuthzHttp/Grpc.includeRequestBodyInCheck). */
export interface MeshExtAuthzRequestBody {
  maxRequestBytes?: number;
  allowPartialMessage?: boolean;
  packAsBytes?: boolean;
}

/** extensionProviders[].envoyExtAuthzHttp: an HTTP authorization service for CUSTOM AuthorizationPolicies. */
export interface MeshExtAuthzHttp {
  service: string;
  port: number;
  timeout?: string;
  failOpen?: boolean;
  statusOnError?: string;
  pathPrefix?: string;
  includeRequestHeadersInCheck?: string[];
  includeHeadersInCheck?: string[];
  includeAdditionalHeadersInCheck?: Record<string, string>;
  includeRequestBodyInCheck?: MeshExtAuthzRequestBody;
  headersToUpstreamOnAllow?: string[];
  headersToDownstreamOnDeny?: string[];
  headersToDownstreamOnAllow?: string[];
}

/** extensionProviders[].envoyExtAuthzGrpc: a gRPC authorization service (envoy.service.auth.v3.Authorization). */
export interface MeshExtAuthzGrpc {
  service: string;
  port: number;
  timeout?: string;
  failOpen?: boolean;
  statusOnError?: string;
  includeRequestBodyInCheck?: MeshExtAuthzRequestBody;
}

/** A header an exporter sends (extensionProviders[].opentelemetry.http.headers). */
export interface MeshHttpHeader {
  name: string;
  value?: string;
  envName?: string;
}

/** extensionProviders[].opentelemetry: where sidecars export their spans (OTLP/HTTP here). */
export interface MeshOtelProvider {
  service: string;
  port: number;
  maxTagLength?: number;
  /** OTLP/HTTP: the path (default /v1/traces), the export timeout and headers. */
  http?: { path?: string; timeout?: string; headers?: MeshHttpHeader[] };
  /** OTLP/gRPC (Istio's default when http is unset): not applied, with a warning. */
  grpc?: { timeout?: string; initialMetadata?: MeshHttpHeader[] };
  [other: string]: unknown;
}

/** A span tag (Telemetry tracing customTags, defaultConfig.tracing.customTags). */
export interface MeshCustomTag {
  literal?: { value?: string };
  environment?: { name: string; defaultValue?: string };
  header?: { name: string; defaultValue?: string };
}

/** One of meshConfig.extensionProviders: a name, and one provider kind. */
export interface MeshExtensionProvider {
  name: string;
  envoyExtAuthzHttp?: MeshExtAuthzHttp;
  envoyExtAuthzGrpc?: MeshExtAuthzGrpc;
  opentelemetry?: MeshOtelProvider;
  /** Other kinds (zipkin, opentelemetry, prometheus, envoyFileAccessLog, ...), kept as written. */
  [kind: string]: unknown;
}

/** The mesh config fields Weft reads. Absent fields take Istio's defaults. */
export interface MeshConfig {
  /** The SPIFFE trust domain of the mesh's identities; "cluster.local" when unset. */
  trustDomain?: string;
  /** Earlier trust domains: their identities count as this one's (authorization, peer SAN checks). */
  trustDomainAliases?: string[];
  /** Istio's automatic mTLS (default true): clients send mTLS to endpoints that take it. */
  enableAutoMtls?: boolean;
  /** Where CUSTOM AuthorizationPolicies (and, later, telemetry) send their work. */
  extensionProviders?: MeshExtensionProvider[];
  /** Envoy's access log: a file path ("/dev/stdout" for standard output); none when unset or "". */
  accessLogFile?: string;
  /** TEXT (default) or JSON. */
  accessLogEncoding?: 'TEXT' | 'JSON';
  /** What proxies do with hosts the mesh does not know, where their Sidecar (if any) does not say: ALLOW_ANY (default) or REGISTRY_ONLY (502). */
  outboundTrafficPolicy?: { mode?: 'ALLOW_ANY' | 'REGISTRY_ONLY' };
  /** Mesh mTLS: TLSV1_3 makes the sidecars' mTLS servers take TLS 1.3 only (TLS 1.2 and 1.3 otherwise). */
  meshMTLS?: { minProtocolVersion?: 'TLS_AUTO' | 'TLSV1_2' | 'TLSV1_3' };
  /** The providers used where no Telemetry names any (by extensionProviders name; Istio has none by default). */
  defaultProviders?: { accessLogging?: string[]; metrics?: string[]; tracing?: string[] };
  /** Envoy's format string for TEXT; for JSON, Istio's default JSON keys when unset. */
  accessLogFormat?: string;
  /** Tracing for proxies no Telemetry resource configures (Weft: off unless true; Istio's default is true). */
  enableTracing?: boolean;
  /** The proxies' defaults Weft reads: tracing.sampling (percent, 1 by default), tracing.customTags, tracing.maxPathTagLength. */
  defaultConfig?: { tracing?: { sampling?: number; customTags?: Record<string, MeshCustomTag>; maxPathTagLength?: number } };
}

/**
 * The providers Istio's mesh config always has (pkg/config/mesh DefaultMeshConfig): `prometheus`,
 * `stackdriver`, and `envoy`, the file access log on standard output. A provider of the mesh
 * config with one of these names replaces it; the others follow them (ApplyMeshConfig).
 */
export const DEFAULT_EXTENSION_PROVIDERS: readonly MeshExtensionProvider[] = Object.freeze([
  { name: 'prometheus', prometheus: {} },
  { name: 'stackdriver', stackdriver: {} },
  { name: 'envoy', envoyFileAccessLog: { path: '/dev/stdout' } },
]);

/** The mesh's extension providers as istiod has them: Istio's defaults, replaced by name, then the mesh config's others. */
export function meshExtensionProviders(mc: MeshConfig | undefined): MeshExtensionProvider[] {
  const own = mc?.extensionProviders ?? [];
  const merged = DEFAULT_EXTENSION_PROVIDERS.map((d) => own.find((p) => p.name === d.name) ?? d);
  return [...merged, ...own.filter((p) => !DEFAULT_EXTENSION_PROVIDERS.some((d) => d.name === p.name))];
}

/** A provider by the name a Telemetry gives it: the first whose name matches, in any case (Istio's fetchProvider). */
export function findExtensionProvider(mc: MeshConfig | undefined, name: string): MeshExtensionProvider | undefined {
  return meshExtensionProviders(mc).find((p) => p.name.toLowerCase() === name.toLowerCase());
}
