// The ConfigMap istio-system/istio (api/meshconfig.ts): its `data.mesh`, a YAML document of Istio's
// MeshConfig, read and checked as istiod reads it (pkg/config/mesh ApplyMeshConfig, then
// pkg/config/validation/agent ValidateMeshConfig). What Weft then applies, refuses or warns of,
// field by field, is meshconfig-support.ts.
// Unknown fields are refused (as istioctl's strict reading does; istiod itself drops them in
// silence, and a misspelt trustDomainAliases would then widen nothing but break a migration).
// Paths are the user's: "data.mesh.trustDomainAliases[0]".
import { isScalar, parseDocument } from 'yaml';
import type { FieldError } from './types.ts';
import { checkShape, field, index, isObject, type Obj, type ObjectSchema, type Schema } from './schema.ts';
import { checkFQDN, checkWildcardDomain, isDNS1123Label, isIPAddress } from './rules.ts';
import { tooDeep } from './yaml-depth.ts';
import { MESH_CONFIGMAP } from './meshconfig.ts';
import { LOCALITY_LB_SETTING, RETRIES, TCP_KEEPALIVE } from './istio-schema.ts';
import { checkLocalityLb } from './destinationrule.ts';
import { Findings } from './common.ts';

/** Where the mesh config document is written, as paths name it. */
export const MESH = `data.${MESH_CONFIGMAP.key}`;

// ---- the shape of MeshConfig (istio.io/api mesh/v1alpha1/config.proto), camelCase as in YAML ----

const STRING: Schema = { type: 'string' };
const STRINGS: Schema = { type: 'array', items: STRING };
const BOOL: Schema = { type: 'boolean' };
const WRAPPED_BOOL: Schema = { type: 'boolean', nullable: true };
const INT32: Schema = { type: 'integer', min: -2147483648, max: 2147483647 };
const UINT32: Schema = { type: 'integer', min: 0, max: 4294967295 };
const DURATION: Schema = { type: 'string', duration: 'any' };
const enumOf = (...values: string[]): Schema => ({ type: 'string', enum: values });
const obj = (props: Record<string, Schema>): ObjectSchema => ({ type: 'object', props });

const REQUEST_BODY = obj({ maxRequestBytes: UINT32, allowPartialMessage: BOOL, packAsBytes: BOOL });
const EXT_AUTHZ_HTTP = obj({
  service: STRING, port: UINT32, timeout: DURATION, pathPrefix: STRING, failOpen: BOOL, clearRouteCache: BOOL, statusOnError: STRING,
  includeHeadersInCheck: STRINGS, includeRequestHeadersInCheck: STRINGS, includeAdditionalHeadersInCheck: { type: 'map', values: STRING },
  includeRequestBodyInCheck: REQUEST_BODY, headersToUpstreamOnAllow: STRINGS, headersToDownstreamOnDeny: STRINGS, headersToDownstreamOnAllow: STRINGS,
});
const EXT_AUTHZ_GRPC = obj({ service: STRING, port: UINT32, timeout: DURATION, failOpen: BOOL, clearRouteCache: BOOL, statusOnError: STRING, includeRequestBodyInCheck: REQUEST_BODY });
/** The provider kinds Weft applies (external authorizers), with their shape. */
export const AUTHZ_KINDS: ReadonlyMap<string, ObjectSchema> = new Map([
  ['envoyExtAuthzHttp', EXT_AUTHZ_HTTP],
  ['envoyExtAuthzGrpc', EXT_AUTHZ_GRPC],
]);
const HTTP_HEADERS: Schema = { type: 'array', items: obj({ name: STRING, value: STRING, envName: STRING }) };
const OTLP_HTTP = obj({ path: STRING, timeout: DURATION, headers: HTTP_HEADERS });
/** extensionProviders[].opentelemetry (OpenTelemetryTracingProvider), checked field by field. */
export const OTEL_PROVIDER = obj({
  service: STRING, port: UINT32, maxTagLength: UINT32, http: OTLP_HTTP, grpc: obj({ timeout: DURATION, initialMetadata: HTTP_HEADERS }),
  resourceDetectors: obj({ environment: obj({}), dynatrace: obj({}) }),
  dynatraceSampler: obj({ tenant: STRING, clusterId: INT32, rootSpansPerMinute: UINT32, httpService: obj({ service: STRING, port: UINT32, http: OTLP_HTTP }) }),
});
/** The other provider kinds (other tracers, metrics, logging, SDS; opentelemetry is checked in full: OTEL_PROVIDER): checked to be mappings (envoyFileAccessLog, which Weft applies, in full: fileAccessLogProvider). */
const OTHER_PROVIDER_KINDS = ['zipkin', 'lightstep', 'datadog', 'stackdriver', 'opencensus', 'skywalking', 'opentelemetry', 'prometheus', 'envoyFileAccessLog', 'envoyHttpAls', 'envoyTcpAls', 'envoyOtelAls', 'sds'];

/** envoyFileAccessLog (Telemetry's access log files): path, omitEmptyValues, and logFormat, one of text or labels (a JSON object). */
const FILE_ACCESS_LOG = obj({ path: STRING, omitEmptyValues: BOOL });

function fileAccessLogProvider(v: unknown, p: string): FieldError[] {
  if (!isObject(v)) return [{ path: p, message: 'must be a mapping' }];
  const { logFormat, ...rest } = v;
  const errors = checkShape(rest, FILE_ACCESS_LOG, p);
  if (logFormat === undefined || logFormat === null) return errors;
  const lp = field(p, 'logFormat');
  if (!isObject(logFormat)) return [...errors, { path: lp, message: 'must be a mapping' }];
  for (const [k, x] of Object.entries(logFormat)) {
    if (x === null) continue;
    if (k === 'text' && typeof x !== 'string') errors.push({ path: field(lp, k), message: 'must be a string' });
    else if (k === 'labels' && !isObject(x)) errors.push({ path: field(lp, k), message: 'must be a mapping of keys and format strings' });
    else if (k !== 'text' && k !== 'labels') errors.push({ path: field(lp, k), message: 'unknown field (text or labels)' });
  }
  const set = ['text', 'labels'].filter((k) => logFormat[k] !== undefined && logFormat[k] !== null);
  if (set.length > 1) errors.push({ path: lp, message: 'only one of text and labels may be set' });
  return errors;
}

const TLS_CONFIG = obj({ minProtocolVersion: enumOf('TLS_AUTO', 'TLSV1_2', 'TLSV1_3'), ecdhCurves: STRINGS, cipherSuites: STRINGS });

/** 'message': a message Weft does not read into (it is only checked to be a mapping); 'messages': a list of them. */
type FieldKind = Schema | 'message' | 'messages' | 'providers';

/** A Map: a key such as "constructor" in the user's document is no field. */
const FIELDS: ReadonlyMap<string, FieldKind> = new Map(Object.entries({
  proxyListenPort: INT32,
  proxyInboundListenPort: INT32,
  proxyHttpPort: INT32,
  connectTimeout: DURATION,
  hboneIdleTimeout: DURATION,
  protocolDetectionTimeout: DURATION,
  tcpKeepalive: TCP_KEEPALIVE,
  ingressClass: STRING,
  ingressService: STRING,
  ingressControllerMode: enumOf('UNSPECIFIED', 'OFF', 'DEFAULT', 'STRICT'),
  ingressSelector: STRING,
  enableTracing: BOOL,
  accessLogFile: STRING,
  accessLogFormat: STRING,
  accessLogEncoding: enumOf('TEXT', 'JSON'),
  enableEnvoyAccessLogService: BOOL,
  disableEnvoyListenerLog: BOOL,
  defaultConfig: 'message',
  outboundTrafficPolicy: obj({ mode: enumOf('REGISTRY_ONLY', 'ALLOW_ANY') }),
  inboundTrafficPolicy: obj({ mode: enumOf('PASSTHROUGH', 'LOCALHOST') }),
  configSources: 'messages',
  enableAutoMtls: WRAPPED_BOOL,
  trustDomain: STRING,
  trustDomainAliases: STRINGS,
  caCertificates: 'messages',
  defaultServiceExportTo: STRINGS,
  defaultVirtualServiceExportTo: STRINGS,
  defaultDestinationRuleExportTo: STRINGS,
  rootNamespace: STRING,
  localityLbSetting: LOCALITY_LB_SETTING,
  zoneAwareLbSetting: 'message',
  dnsRefreshRate: DURATION,
  h2UpgradePolicy: enumOf('DO_NOT_UPGRADE', 'UPGRADE'),
  inboundClusterStatName: STRING,
  outboundClusterStatName: STRING,
  certificates: 'messages',
  serviceSettings: 'messages',
  serviceScopeConfigs: 'messages',
  enablePrometheusMerge: WRAPPED_BOOL,
  verifyCertificateAtClient: WRAPPED_BOOL,
  ca: 'message',
  extensionProviders: 'providers',
  defaultProviders: obj({ tracing: STRINGS, metrics: STRINGS, accessLogging: STRINGS }),
  discoverySelectors: 'messages',
  pathNormalization: obj({ normalization: enumOf('DEFAULT', 'NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES') }),
  defaultHttpRetryPolicy: RETRIES,
  meshMTLS: TLS_CONFIG,
  tlsDefaults: TLS_CONFIG,
  defaultTrafficPolicy: 'message',
  serviceEntryVisibility: 'message',
} satisfies Record<string, FieldKind>));

// ---- reading data.mesh ----

/** The mesh config document of a ConfigMap's data: a mapping (empty for none), or why it is not one. */
export function readMesh(data: unknown): { mesh?: Obj; errors: FieldError[] } {
  const text = isObject(data) ? data[MESH_CONFIGMAP.key] : undefined;
  if (text === undefined || text === null) return { mesh: {}, errors: [] };
  if (typeof text !== 'string') return { errors: [{ path: MESH, message: 'must be a string: the mesh config as YAML text (mesh: |, then the document indented below it)' }] };
  const deep = tooDeep(text);
  if (deep) return { errors: [{ path: MESH, message: `YAML nested too deep at line ${deep.line} of ${MESH}` }] };
  const doc = parseDocument(text, { merge: true });
  if (doc.errors.length) {
    return {
      errors: doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        const reason = e.message.replace(/ at line \d+, column \d+:[\s\S]*$/, '').trim();
        return { path: MESH, message: `YAML syntax error${pos ? ` at line ${pos.line}, column ${pos.col} of ${MESH}` : ''}: ${reason}` };
      }),
    };
  }
  let value: unknown;
  try {
    value = isScalar(doc.contents) && doc.contents.value === null ? null : doc.toJS();
  } catch (e) {
    return { errors: [{ path: MESH, message: `YAML error: ${(e as Error).message}` }] };
  }
  if (value === null || value === undefined) return { mesh: {}, errors: [] };
  if (!isObject(value)) return { errors: [{ path: MESH, message: `must be a YAML mapping of MeshConfig fields (trustDomain: ..., and so on), not ${Array.isArray(value) ? 'a list' : typeof value}` }] };
  return { mesh: value, errors: [] };
}

// ---- validation: what istiod refuses ----

/** Only Istio's mesh config is read: the ConfigMap istio in istio-system, its keys strings. */
export function validateMeshConfigMap(data: Obj, namespace: string, meta: { name: string }): FieldError[] {
  if (namespace !== MESH_CONFIGMAP.namespace || meta.name !== MESH_CONFIGMAP.name) {
    return [{ path: 'metadata', message: `Weft reads one ConfigMap, Istio's mesh config ${MESH_CONFIGMAP.namespace}/${MESH_CONFIGMAP.name} (key ${MESH_CONFIGMAP.key}); other ConfigMaps are application data, which Weft does not store` }];
  }
  const { mesh, errors } = readMesh(data);
  return mesh ? [...errors, ...validateMesh(mesh)] : errors;
}

function snakeToCamel(k: string): string {
  return k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function validateMesh(mesh: Obj): FieldError[] {
  const errors: FieldError[] = [];
  for (const [k, v] of Object.entries(mesh)) {
    const p = field(MESH, k);
    const kind = FIELDS.get(k);
    if (kind === undefined) {
      const camel = snakeToCamel(k);
      errors.push({ path: p, message: FIELDS.has(camel) && camel !== k ? `unknown field: write it ${camel}` : 'unknown field (not a MeshConfig field)' });
      continue;
    }
    if (v === null && kind !== WRAPPED_BOOL) continue; // null is unset, as protojson reads it
    if (kind === 'message') {
      if (!isObject(v)) errors.push({ path: p, message: 'must be a mapping' });
    } else if (kind === 'messages') {
      if (!Array.isArray(v)) errors.push({ path: p, message: 'must be a list' });
      else v.forEach((item, i) => !isObject(item) && errors.push({ path: index(p, i), message: 'must be a mapping' }));
    } else if (kind === 'providers') {
      errors.push(...validateProviders(v, p));
    } else {
      errors.push(...checkShape(v, kind, p));
    }
  }
  if (errors.length) return errors;
  return [...trustDomains(mesh), ...ports(mesh), ...timeouts(mesh), ...meshTls(mesh), ...locality(mesh), ...serviceSettings(mesh), ...tracingSampling(mesh)];
}

const CUSTOM_TAG = obj({ literal: obj({ value: STRING }), environment: obj({ name: STRING, defaultValue: STRING }), header: obj({ name: STRING, defaultValue: STRING }) });

/**
 * defaultConfig.tracing, the part Weft applies: sampling a percentage (ValidateProxyConfig),
 * maxPathTagLength, and customTags each one kind (literal, environment or header) with its name.
 */
function tracingSampling(mesh: Obj): FieldError[] {
  const t = isObject(mesh.defaultConfig) ? mesh.defaultConfig.tracing : undefined;
  if (t === undefined || t === null) return [];
  const p = field(field(MESH, 'defaultConfig'), 'tracing');
  if (!isObject(t)) return [{ path: p, message: 'must be a mapping' }];
  const out: FieldError[] = [];
  const s = t.sampling;
  if (s !== undefined && s !== null && (typeof s !== 'number' || !(s >= 0 && s <= 100))) out.push({ path: field(p, 'sampling'), message: 'sampling must be between 0.0 and 100.0' });
  if (t.maxPathTagLength != null) out.push(...checkShape(t.maxPathTagLength, UINT32, field(p, 'maxPathTagLength')));
  if (t.customTags == null) return out;
  if (!isObject(t.customTags)) return [...out, { path: field(p, 'customTags'), message: 'must be a mapping of tag names to tags' }];
  for (const [name, tag] of Object.entries(t.customTags)) {
    const tp = field(field(p, 'customTags'), name);
    const shape = checkShape(tag, CUSTOM_TAG, tp);
    if (shape.length) {
      out.push(...shape);
      continue;
    }
    const kinds = Object.keys(tag as Obj).filter((k) => (tag as Obj)[k] != null);
    if (kinds.length !== 1) out.push({ path: tp, message: `must have one of literal, environment, header (got ${kinds.join(', ') || 'none'})` });
    for (const k of ['environment', 'header']) {
      const v = (tag as Obj)[k];
      if (isObject(v) && (typeof v.name !== 'string' || !v.name)) out.push({ path: field(field(tp, k), 'name'), message: 'required' });
    }
  }
  return out;
}

/** ValidateExtensionProviderTracingOpentelemetry: a port, and a service as for the other kinds. */
function serviceAndPort(c: Obj, p: string): FieldError[] {
  const out: FieldError[] = [];
  const port = c.port;
  if (typeof port !== 'number' || port < 1 || port > 65535) out.push({ path: field(p, 'port'), message: `port number ${port ?? 0} must be in the range 1..65535` });
  const bad = checkProviderService(typeof c.service === 'string' ? c.service : '');
  if (bad) out.push({ path: field(p, 'service'), message: bad });
  return out;
}

/** ValidateLocalityLbSetting, as for a DestinationRule's. */
function locality(mesh: Obj): FieldError[] {
  const f = new Findings();
  checkLocalityLb(f, isObject(mesh.localityLbSetting) ? mesh.localityLbSetting : undefined, field(MESH, 'localityLbSetting'));
  return f.errors;
}

/** validateServiceSettings: each host a domain name, wildcards allowed. */
function serviceSettings(mesh: Obj): FieldError[] {
  const out: FieldError[] = [];
  (Array.isArray(mesh.serviceSettings) ? mesh.serviceSettings : []).forEach((s, i) => {
    const hosts = isObject(s) && Array.isArray(s.hosts) ? s.hosts : [];
    hosts.forEach((h, j) => {
      const bad = typeof h === 'string' ? checkWildcardDomain(h) : 'must be a string';
      if (bad) out.push({ path: index(field(index(field(MESH, 'serviceSettings'), i), 'hosts'), j), message: bad });
    });
  });
  return out;
}

/** Istio's ValidateTrustDomain; lower case, as SPIFFE ids are (Weft's certificates and their parser). */
export function checkTrustDomain(td: string): string | undefined {
  if (td.length === 0) return 'empty domain name not allowed';
  if (td.length > 255) return `trust domain name "${td}" too long (max 255)`;
  const labels = td.split('.');
  for (const [i, label] of labels.entries()) {
    if (i === labels.length - 1 && label === '' && i > 0) return undefined; // "istio.io." is allowed
    if (!isDNS1123Label(label)) return `trust domain name "${td}" invalid: each label is at most 63 letters, digits or "-", starting and ending with a letter or digit`;
  }
  if (td !== td.toLowerCase()) return `trust domain name "${td}" invalid: SPIFFE trust domains are lower case`;
  return undefined;
}

function trustDomains(mesh: Obj): FieldError[] {
  const out: FieldError[] = [];
  if (typeof mesh.trustDomain === 'string') {
    const bad = checkTrustDomain(mesh.trustDomain);
    if (bad) out.push({ path: field(MESH, 'trustDomain'), message: bad });
  }
  (Array.isArray(mesh.trustDomainAliases) ? mesh.trustDomainAliases : []).forEach((td, i) => {
    const bad = checkTrustDomain(td as string);
    if (bad) out.push({ path: index(field(MESH, 'trustDomainAliases'), i), message: bad });
  });
  return out;
}

/** ValidatePort of proxyListenPort (its default 15001 is replaced by what is written). */
function ports(mesh: Obj): FieldError[] {
  const v = mesh.proxyListenPort;
  return typeof v === 'number' && (v < 1 || v > 65535) ? [{ path: field(MESH, 'proxyListenPort'), message: `port number ${v} must be in the range 1..65535` }] : [];
}

/** ValidateConnectTimeout (at least 1ms) and ValidateProtocolDetectionTimeout (0s, or whole milliseconds). */
function timeouts(mesh: Obj): FieldError[] {
  const out: FieldError[] = [];
  if (typeof mesh.connectTimeout === 'string') out.push(...checkShape(mesh.connectTimeout, { type: 'string', duration: 'min1ms' }, field(MESH, 'connectTimeout')));
  const pdt = mesh.protocolDetectionTimeout;
  if (typeof pdt === 'string' && !/^0+(\.0*)?s$/.test(pdt)) {
    out.push(...checkShape(pdt, { type: 'string', duration: 'min1ms' }, field(MESH, 'protocolDetectionTimeout')).map((e) => ({ ...e, message: `${e.message} (or 0s, no timeout)` })));
  }
  return out;
}

/** ValidateMeshTLSConfig: mesh mTLS takes no ECDH curves. */
function meshTls(mesh: Obj): FieldError[] {
  const m = mesh.meshMTLS;
  if (isObject(m) && Array.isArray(m.ecdhCurves) && m.ecdhCurves.length) return [{ path: field(field(MESH, 'meshMTLS'), 'ecdhCurves'), message: 'mesh TLS does not support ECDH curves configuration' }];
  return [];
}

/** validateExtensionProvider: each with a unique name and exactly one kind; the ext_authz kinds checked as Istio does. */
function validateProviders(v: unknown, p: string): FieldError[] {
  if (!Array.isArray(v)) return [{ path: p, message: 'must be a list' }];
  const errors: FieldError[] = [];
  const seen = new Map<string, number>();
  v.forEach((item, i) => {
    const ip = index(p, i);
    if (!isObject(item)) return errors.push({ path: ip, message: 'must be a mapping with a name and one provider kind' });
    const kinds: string[] = [];
    for (const [k, val] of Object.entries(item)) {
      if (k === 'name' || val === null) continue;
      const schema = AUTHZ_KINDS.get(k);
      if (schema) {
        const shape = checkShape(val, schema, field(ip, k));
        errors.push(...(shape.length ? shape : extAuthz(val as Obj, field(ip, k))));
      } else if (k === 'opentelemetry') {
        const shape = checkShape(val, OTEL_PROVIDER, field(ip, k));
        errors.push(...(shape.length ? shape : serviceAndPort(val as Obj, field(ip, k))));
      } else if (k === 'envoyFileAccessLog') {
        errors.push(...fileAccessLogProvider(val, field(ip, k)));
      } else if (OTHER_PROVIDER_KINDS.includes(k)) {
        if (!isObject(val)) errors.push({ path: field(ip, k), message: 'must be a mapping' });
      } else {
        errors.push({ path: field(ip, k), message: `unknown field (a provider has a name and one of ${[...AUTHZ_KINDS.keys(), ...OTHER_PROVIDER_KINDS].join(', ')})` });
        continue;
      }
      kinds.push(k);
    }
    if (kinds.length !== 1) errors.push({ path: ip, message: kinds.length ? `only one provider kind may be set (got ${kinds.join(', ')})` : 'unsupported provider: no provider kind is set' });
    const name = item.name;
    if (name === undefined || name === null || name === '') errors.push({ path: field(ip, 'name'), message: 'empty extension provider name' });
    else if (typeof name !== 'string') errors.push({ path: field(ip, 'name'), message: 'must be a string' });
    else if (seen.has(name)) errors.push({ path: field(ip, 'name'), message: `duplicate extension provider name ${name} (already at ${index(p, seen.get(name)!)})` });
    else seen.set(name, i);
  });
  return errors;
}

/** ValidateExtensionProviderEnvoyExtAuthzHTTP / GRPC. */
function extAuthz(c: Obj, p: string): FieldError[] {
  const out: FieldError[] = [];
  const port = c.port;
  if (typeof port !== 'number' || port < 1 || port > 65535) out.push({ path: field(p, 'port'), message: `port number ${port ?? 0} must be in the range 1..65535` });
  const bad = checkProviderService(typeof c.service === 'string' ? c.service : '');
  if (bad) out.push({ path: field(p, 'service'), message: bad });
  const status = c.statusOnError;
  if (typeof status === 'string' && status !== '' && !isEnvoyStatusCode(status)) out.push({ path: field(p, 'statusOnError'), message: `unsupported statusOnError value ${status}: an HTTP status code Envoy knows (e.g. 403, 500, 503)` });
  const prefix = c.pathPrefix;
  if (typeof prefix === 'string' && prefix !== '' && !prefix.startsWith('/')) out.push({ path: field(p, 'pathPrefix'), message: `pathPrefix should begin with \`/\` but found ${JSON.stringify(prefix)}` });
  return out;
}

/** validateExtensionProviderService: an FQDN or IP address, or "namespace/hostname". */
function checkProviderService(service: string): string | undefined {
  if (service === '') return 'service must not be empty';
  const parts = service.split('/');
  if (parts.length === 1) return checkFQDN(service) && !isIPAddress(service) ? `invalid service fmt ${service}: not a host name or IP address` : undefined;
  const [ns, host] = [parts[0], parts.slice(1).join('/')];
  if (!ns || !host) return 'config namespace and dnsName in host entry cannot be empty';
  if (ns !== '*' && ns !== '.' && ns !== '~' && !isDNS1123Label(ns)) return `invalid namespace value "${ns}" in ${service}`;
  if (host !== '*' && !host.includes('.')) return `short names (non FQDN) are not allowed: ${service}`;
  const h = checkWildcardDomain(host);
  if (h) return h;
  if (host.includes('*') && host.length !== 1 && !host.startsWith('*.')) return `partial wildcard "${host}" not allowed`;
  return undefined;
}

/** envoy.type.v3.StatusCode's values: the HTTP status codes Envoy names. */
const ENVOY_STATUS_CODES = new Set([
  100, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 423, 424, 426, 428, 429, 431, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);

function isEnvoyStatusCode(s: string): boolean {
  return /^\d{1,10}$/.test(s) && ENVOY_STATUS_CODES.has(Number(s));
}
