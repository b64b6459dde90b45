// Checking one resource: envelope (apiVersion, kind, metadata), then the spec's shape against the
// transcribed CRD schema, then the semantic rules for the kind (Istio's, or the Gateway API's CEL
// rules for HTTPRoute and GRPCRoute; ReferenceGrant's CRD has none).

import { ConfigError, describeKey, type FieldError, type ObjectMeta, type Resource } from './types.ts';
import { checkShape, isObject, key, pruneNulls, type MapSchema, type Obj, type Schema } from './schema.ts';
import { DESTINATION_RULE_SPEC, PEER_AUTHENTICATION_SPEC, SERVICE_ENTRY_SPEC, SIDECAR_SPEC, VIRTUAL_SERVICE_SPEC, WORKLOAD_ENTRY_SPEC } from './istio-schema.ts';
import { validateVirtualService } from './virtualservice.ts';
import { validateDestinationRule } from './destinationrule.ts';
import { validateServiceEntry } from './serviceentry.ts';
import { validateWorkloadEntry } from './workloadentry.ts';
import { validateSidecar } from './sidecar.ts';
import { validatePeerAuthentication } from './peerauthentication.ts';
import { checkK8sName, checkK8sNamespace, checkLabelKey, checkLabelValue } from './rules.ts';
import { supportOf } from './support.ts';
import { LOCAL_RATE_LIMIT_SPEC, validateLocalRateLimit } from './ratelimit.ts';
import { GRPC_ROUTE_SPEC, HTTP_ROUTE_SPEC, REFERENCE_GRANT_SPEC } from './gateway-schema.ts';
import { validateHTTPRoute } from './httproute.ts';
import { validateGRPCRoute } from './grpcroute.ts';
import { validateReferenceGrant } from './referencegrant.ts';
import { AUTHORIZATION_POLICY_SPEC, validateAuthorizationPolicy } from './authorizationpolicy.ts';
import { REQUEST_AUTHENTICATION_SPEC, validateRequestAuthentication } from './requestauthentication.ts';
import { validateMeshConfigMap } from './meshconfig-rules.ts';
import { TELEMETRY_SPEC, validateTelemetry } from './telemetry.ts';

export interface SupportedKind {
  readonly kind: string;
  /** "" for Kubernetes' core group (apiVersion "v1"). */
  readonly group: string;
  /** Every version has the same schema; the version is kept on the resource as written. */
  readonly versions: readonly string[];
}

const NETWORKING_VERSIONS = Object.freeze(['v1', 'v1beta1', 'v1alpha3'] as const);

/** The kinds Weft reads, and the API versions it accepts for each. */
export const SUPPORTED_KINDS: readonly SupportedKind[] = Object.freeze([
  Object.freeze({ kind: 'VirtualService', group: 'networking.istio.io', versions: NETWORKING_VERSIONS }),
  Object.freeze({ kind: 'DestinationRule', group: 'networking.istio.io', versions: NETWORKING_VERSIONS }),
  Object.freeze({ kind: 'ServiceEntry', group: 'networking.istio.io', versions: NETWORKING_VERSIONS }),
  Object.freeze({ kind: 'WorkloadEntry', group: 'networking.istio.io', versions: NETWORKING_VERSIONS }),
  Object.freeze({ kind: 'Sidecar', group: 'networking.istio.io', versions: NETWORKING_VERSIONS }),
  // Applied: the sidecars' inbound mTLS modes, and whether clients send them mTLS (api/peer-auth.ts).
  Object.freeze({ kind: 'PeerAuthentication', group: 'security.istio.io', versions: Object.freeze(['v1', 'v1beta1'] as const) }),
  // Enforced: the sidecars' inbound RBAC filters (control/translate/authz.ts, proxy/authz/), and for CUSTOM their ext_authz layer (proxy/http/ext-authz.ts).
  Object.freeze({ kind: 'AuthorizationPolicy', group: 'security.istio.io', versions: Object.freeze(['v1', 'v1beta1'] as const) }),
  // Applied: the sidecars' JWT verification (control/translate/jwt.ts, proxy/http/jwt.ts).
  Object.freeze({ kind: 'RequestAuthentication', group: 'security.istio.io', versions: Object.freeze(['v1', 'v1beta1'] as const) }),
  Object.freeze({ kind: 'LocalRateLimit', group: 'ratelimit.weft.io', versions: Object.freeze(['v1alpha1'] as const) }),
  // The Gateway API's mesh routes: those whose parentRefs name a Service.
  Object.freeze({ kind: 'HTTPRoute', group: 'gateway.networking.k8s.io', versions: Object.freeze(['v1', 'v1beta1'] as const) }),
  Object.freeze({ kind: 'GRPCRoute', group: 'gateway.networking.k8s.io', versions: Object.freeze(['v1'] as const) }),
  // What lets those routes send traffic to a Service in another namespace.
  Object.freeze({ kind: 'ReferenceGrant', group: 'gateway.networking.k8s.io', versions: Object.freeze(['v1', 'v1beta1'] as const) }),
  // What the sidecars log, measure and trace (api/telemetry-support.ts says which fields are applied).
  Object.freeze({ kind: 'Telemetry', group: 'telemetry.istio.io', versions: Object.freeze(['v1', 'v1alpha1'] as const) }),
  // Istio's mesh config: the ConfigMap istio-system/istio only (api/meshconfig-rules.ts).
  Object.freeze({ kind: 'ConfigMap', group: '', versions: Object.freeze(['v1'] as const) }),
]);

/** "networking.istio.io/v1", or "v1" for the core group. */
export function apiVersionOf(group: string, version: string): string {
  return group ? `${group}/${version}` : version;
}

/**
 * Kinds Weft validates by Istio's rules but does not serve yet: support.ts refuses each of them
 * whole, so `weft apply` names the reason, and SUPPORTED_KINDS (what Weft reads) leaves them out.
 */
const VALIDATED_ONLY_KINDS: readonly SupportedKind[] = Object.freeze([]);

interface KindRules {
  readonly schema: Schema;
  /** `meta` for the rules that read labels or annotations (a ServiceEntry's waypoint, an AuthorizationPolicy's dry-run). */
  readonly validate: (spec: Obj, namespace: string, meta: ObjectMeta) => FieldError[];
  /** Where the kind's content is written: "spec", or "data" for a ConfigMap (kept as the resource's spec). */
  readonly root?: string;
}

/** A ConfigMap's data: string values. */
const CONFIGMAP_DATA: MapSchema = Object.freeze({ type: 'map', values: Object.freeze({ type: 'string' }) });

const RULES: Readonly<Record<string, KindRules>> = Object.freeze({
  VirtualService: { schema: VIRTUAL_SERVICE_SPEC, validate: validateVirtualService },
  DestinationRule: { schema: DESTINATION_RULE_SPEC, validate: validateDestinationRule },
  ServiceEntry: { schema: SERVICE_ENTRY_SPEC, validate: validateServiceEntry },
  WorkloadEntry: { schema: WORKLOAD_ENTRY_SPEC, validate: validateWorkloadEntry },
  Sidecar: { schema: SIDECAR_SPEC, validate: validateSidecar },
  PeerAuthentication: { schema: PEER_AUTHENTICATION_SPEC, validate: validatePeerAuthentication },
  RequestAuthentication: { schema: REQUEST_AUTHENTICATION_SPEC, validate: validateRequestAuthentication },
  LocalRateLimit: { schema: LOCAL_RATE_LIMIT_SPEC, validate: validateLocalRateLimit },
  HTTPRoute: { schema: HTTP_ROUTE_SPEC, validate: validateHTTPRoute },
  GRPCRoute: { schema: GRPC_ROUTE_SPEC, validate: validateGRPCRoute },
  ReferenceGrant: { schema: REFERENCE_GRANT_SPEC, validate: validateReferenceGrant },
  AuthorizationPolicy: { schema: AUTHORIZATION_POLICY_SPEC, validate: validateAuthorizationPolicy },
  Telemetry: { schema: TELEMETRY_SPEC, validate: validateTelemetry },
  ConfigMap: { schema: CONFIGMAP_DATA, validate: validateMeshConfigMap, root: 'data' },
});

/** The top-level field a kind's content is written under: "spec", or "data" for a ConfigMap. */
export function contentField(kind: string): string {
  return RULES[kind]?.root ?? 'spec';
}

function findKind(apiVersion: string, kind: string): SupportedKind | undefined {
  return [...SUPPORTED_KINDS, ...VALIDATED_ONLY_KINDS].find((k) => k.kind === kind && k.versions.some((v) => apiVersionOf(k.group, v) === apiVersion));
}

/** "Weft reads VirtualService, DestinationRule and Sidecar (networking.istio.io/v1, v1beta1, v1alpha3); ..." */
function supportedSummary(): string {
  const groups = new Map<string, SupportedKind[]>();
  for (const k of SUPPORTED_KINDS) {
    const id = k.group ? `${k.group}/${k.versions.join(', ')}` : k.versions.join(', ');
    groups.set(id, [...(groups.get(id) ?? []), k]);
  }
  const parts = [...groups].map(([id, kinds]) => `${andList(kinds.map((k) => k.kind))} (${id})`);
  return `Weft reads ${parts.join('; ')}`;
}

/** ["a", "b", "c"] -> "a, b and c" */
function andList(words: string[]): string {
  return words.length < 2 ? words.join('') : `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}

/**
 * Per-kind validation of a resource's spec: shape (types, enums, ranges, patterns, unknown fields)
 * and the kind's rules (Istio's, or the Gateway API's CEL rules). Paths start at "spec". Where a
 * field breaks the schema, the rules for that same field are not reported too: one message per
 * field is enough.
 */
export function validateResource(r: Resource): FieldError[] {
  const rules = RULES[r.kind];
  if (!rules) return [{ path: 'kind', message: `${r.kind} is not supported; ${supportedSummary()}` }];
  const root = rules.root ?? 'spec';
  if (!isObject(r.spec)) return [{ path: root, message: r.spec === undefined || r.spec === null ? 'required' : 'must be an object' }];
  const shape = checkShape(r.spec, rules.schema, root);
  const shapePaths = new Set(shape.map((e) => e.path));
  const semantic = rules.validate(r.spec, r.metadata.namespace, r.metadata).filter((e) => !shapePaths.has(e.path));
  return [...shape, ...semantic, ...dryRunElsewhere(r)];
}

const DRY_RUN = 'istio.io/dry-run';

/**
 * Istio's validateMetadata, for every kind of its own: only an AuthorizationPolicy can be dry-run
 * (its rules then count, never enforce). On another kind the annotation would read as "not
 * enforced" where the resource is, so Istio refuses it.
 */
function dryRunElsewhere(r: Resource): FieldError[] {
  const group = r.apiVersion.split('/')[0];
  if (r.kind === 'AuthorizationPolicy' || !group.endsWith('.istio.io') || r.metadata.annotations?.[DRY_RUN] === undefined) return [];
  return [{ path: key('metadata.annotations', DRY_RUN), message: `only an AuthorizationPolicy can be dry-run: remove the annotation (${r.kind} has no dry-run, it is applied)` }];
}

/**
 * The fields of a resource valid in Istio that Weft cannot apply and must not ignore, so that
 * `weft apply` refuses it: each names the resource and the field, as `weft analyze` prints them.
 */
export function refusalsOf(r: Resource): FieldError[] {
  const resource = describeKey({ kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name });
  return supportOf(r.kind, r.spec).rejected.map((w) => ({ ...w, resource }));
}

/**
 * The fields of a valid resource that Weft accepts but does not apply yet, each a warning naming
 * the resource and the field ("VirtualService default/x: spec.http[0].retries: accepted, not
 * applied yet: ..."), as `weft apply`, `weft get` and `weft analyze` print them.
 */
export function warningsOf(r: Resource): FieldError[] {
  const resource = describeKey({ kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name });
  return supportOf(r.kind, r.spec).warnings.map((w) => ({ ...w, resource }));
}

// ---- the envelope ----

/** The outcome of checking one object: the resource when it is good, the problems otherwise. */
export interface Inspection {
  readonly resource?: Resource;
  readonly problems: FieldError[];
  /** "VirtualService default/x", when the object's kind, namespace and name are good enough to say so. */
  readonly name?: string;
}

const ENVELOPE_FIELDS = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status']);
/** A ConfigMap's: its `data` is kept (as the resource's spec); binaryData and immutable are not. */
const CONFIGMAP_FIELDS = new Set(['apiVersion', 'kind', 'metadata', 'data']);
const CONFIGMAP_NOT_KEPT: Record<string, string> = {
  binaryData: 'not supported: Istio reads its mesh config from data.mesh, and Weft keeps only data',
  immutable: 'not supported: Weft keeps only data (the mesh config changes live, as in Istio)',
};

function problem(resource: string, path: string, message: string): FieldError {
  return { resource, path, message };
}

/** apiVersion and kind: present, strings, and a kind we read. */
function checkTypeMeta(obj: Obj, where: string): FieldError[] {
  const problems: FieldError[] = [];
  for (const name of ['apiVersion', 'kind'] as const) {
    const v = obj[name];
    if (v === undefined || v === null || v === '') problems.push(problem(where, name, 'required'));
    else if (typeof v !== 'string') problems.push(problem(where, name, 'must be a string'));
  }
  if (problems.length > 0) return problems;
  const apiVersion = obj.apiVersion as string;
  const kind = obj.kind as string;
  if (!findKind(apiVersion, kind)) {
    return [problem(where, '', `kind ${kind} (${apiVersion}) is not supported; ${supportedSummary()}`)];
  }
  return [];
}

function checkStringMap(value: unknown, path: string, checkEntry: (k: string, v: string) => string | undefined): { path: string; message: string }[] {
  if (value === undefined || value === null) return [];
  if (!isObject(value)) return [{ path, message: 'must be a map of strings' }];
  return Object.entries(value).flatMap(([k, v]) => {
    const message = typeof v !== 'string' ? `must be a string, not ${v === null ? 'null' : typeof v}` : checkEntry(k, v);
    return message ? [{ path: key(path, k), message }] : [];
  });
}

function checkLabelEntry(k: string, v: string): string | undefined {
  return checkLabelKey(k) ?? checkLabelValue(v);
}

function checkAnnotationEntry(k: string): string | undefined {
  return checkLabelKey(k)?.replace('label key', 'annotation key');
}

interface MetaCheck {
  readonly meta?: ObjectMeta;
  readonly errors: { path: string; message: string }[];
}

/** metadata, reduced to what Weft keeps. Other fields (uid, resourceVersion, ...) are dropped. */
function checkMetadata(metadata: unknown): MetaCheck {
  if (!isObject(metadata)) {
    return { errors: [{ path: 'metadata.name', message: 'required' }] };
  }
  const errors: { path: string; message: string }[] = [];
  const { name, labels, annotations } = metadata;
  const namespace = metadata.namespace ?? 'default';
  if (name === undefined || name === null || name === '') errors.push({ path: 'metadata.name', message: 'required' });
  else if (typeof name !== 'string') errors.push({ path: 'metadata.name', message: 'must be a string' });
  else {
    const bad = checkK8sName(name);
    if (bad) errors.push({ path: 'metadata.name', message: bad });
  }
  if (typeof namespace !== 'string') errors.push({ path: 'metadata.namespace', message: 'must be a string' });
  else {
    const bad = checkK8sNamespace(namespace);
    if (bad) errors.push({ path: 'metadata.namespace', message: bad });
  }
  errors.push(...checkStringMap(labels, 'metadata.labels', checkLabelEntry));
  errors.push(...checkStringMap(annotations, 'metadata.annotations', checkAnnotationEntry));
  // Bad labels still leave a resource that can be named in messages.
  if (!nameable(errors)) return { errors };
  const meta: ObjectMeta = { name: name as string, namespace: namespace as string };
  if (isObject(labels)) meta.labels = { ...(labels as Record<string, string>) };
  if (isObject(annotations)) meta.annotations = { ...(annotations as Record<string, string>) };
  return { meta, errors };
}

/** Whether the name and namespace can be used to name the resource in messages. */
function nameable(errors: { path: string }[]): boolean {
  return !errors.some((e) => e.path === 'metadata.name' || e.path === 'metadata.namespace');
}

/**
 * Check one object without throwing: the building block of checkResource and parseConfig. With
 * `istioOnly`, only what Istio itself rejects (or, for HTTPRoute, GRPCRoute and ReferenceGrant,
 * the Gateway API's CRDs) is a problem (what `weft analyze` and the conformance tests compare
 * with); otherwise also the fields Weft cannot apply yet and must not ignore (support.ts).
 */
export function inspect(obj: unknown, where: string, istioOnly = false): Inspection {
  if (!isObject(obj)) {
    const what = Array.isArray(obj) ? 'a list' : obj === null ? 'null' : typeof obj;
    return { problems: [problem(where, '', `must be a mapping with apiVersion, kind, metadata and spec, not ${what}`)] };
  }
  const typeProblems = checkTypeMeta(obj, where);
  if (typeProblems.length > 0) return { problems: typeProblems };
  const kind = obj.kind as string;
  const { meta, errors } = checkMetadata(obj.metadata);
  const configMap = kind === 'ConfigMap';
  const unknown = Object.keys(obj)
    .filter((k) => !(configMap ? CONFIGMAP_FIELDS : ENVELOPE_FIELDS).has(k) && !(configMap && obj[k] === undefined))
    .map((k) => ({ path: k, message: (configMap && Object.hasOwn(CONFIGMAP_NOT_KEPT, k) && CONFIGMAP_NOT_KEPT[k]) || 'unknown field' }));
  const draft: Resource = {
    apiVersion: obj.apiVersion as string,
    kind,
    metadata: meta ?? { name: '', namespace: 'default' },
    // A ConfigMap's data is its content, kept as the spec (manifestOf writes it back as data); none is no keys.
    spec: configMap ? (obj.data ?? {}) : obj.spec,
  };
  const name = meta ? describeKey({ kind, namespace: meta.namespace, name: meta.name }) : undefined;
  const label = name ?? `${where}: ${kind}`;
  const invalid = [...unknown, ...errors, ...validateResource(draft)];
  // Valid as Istio sees it, but what Weft cannot apply yet and must not ignore (support.ts).
  const all = invalid.length || istioOnly ? invalid : supportOf(kind, draft.spec).rejected;
  if (all.length > 0) return { problems: all.map((e) => problem(label, e.path, e.message)), name };
  return { resource: { ...draft, spec: pruneNulls(draft.spec, RULES[kind]?.schema) }, problems: [], name };
}

/** One line of an error message: "VirtualService default/x: spec.hosts: at least one host is required". */
export function formatProblem(p: FieldError): string {
  const parts = [p.resource, p.path, p.message].filter((s): s is string => s !== undefined && s !== '');
  return parts.join(': ');
}

/** One ConfigError for all the problems, one line each; `resource` names the resource when there is just one. */
export function toConfigError(problems: FieldError[], resource?: string): ConfigError {
  return new ConfigError(problems.map(formatProblem).join('\n'), resource, problems);
}

/**
 * Check one already-parsed object (e.g. JSON from the HTTP API) and return it normalised:
 * metadata reduced to name, namespace (default "default"), labels and annotations; apiVersion,
 * kind and spec kept as given (null fields pruned, as Kubernetes does; no defaults added).
 * `where` names the object in messages that cannot name the resource, e.g. "request item 0".
 */
export function checkResource(obj: unknown, where: string): Resource {
  const { resource, problems, name } = inspect(obj, where);
  if (!resource || problems.length > 0) throw toConfigError(problems, name);
  return resource;
}

/**
 * A stored resource as Kubernetes (and `kubectl get -o yaml`) writes it: the content under the
 * kind's own field ("data" for a ConfigMap, "spec" otherwise), so that it applies back unchanged.
 */
export function manifestOf<R extends Resource>(r: R): Record<string, unknown> {
  const root = contentField(r.kind);
  const { spec, ...rest } = r;
  return { ...rest, [root]: spec };
}
