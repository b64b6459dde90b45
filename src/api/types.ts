// Resource types Weft reads: Istio's networking API and the Gateway API's mesh routes (with the
// ReferenceGrants that let them cross namespaces), as users write them in YAML.
// Pure data: nothing here does I/O. Field names follow Istio's JSON/YAML (camelCase).

export interface ObjectMeta {
  name: string;
  namespace: string; // "default" when the user leaves it out
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** When the store first took it (RFC 3339), as Kubernetes shows it; set by the store, never read from input. */
  creationTimestamp?: string;
}

/** A resource as stored and served: kind + metadata + the user's spec, unchanged. */
export interface Resource<S = unknown> {
  apiVersion: string; // e.g. "networking.istio.io/v1beta1", as the user wrote it
  kind: string; // e.g. "VirtualService"
  metadata: ObjectMeta;
  spec: S;
  /**
   * The store revision at which it was created: Istio's precedence between resources is oldest
   * first (creationTimestamp), and this orders them without ties. Absent outside the store.
   */
  created?: number;
}

/** What identifies a resource: kinds are unique by name across API versions. */
export interface ResourceKey {
  kind: string;
  namespace: string;
  name: string;
}

export function keyOf(r: { kind: string; metadata: { namespace: string; name: string } }): ResourceKey {
  return { kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name };
}

/** "VirtualService default/my-backend-service": how every message names a resource. */
export function describeKey(k: ResourceKey): string {
  return `${k.kind} ${k.namespace}/${k.name}`;
}

// ---- networking.istio.io: VirtualService -------------------------------------------------

export interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
  suffix?: string;
}

export interface HTTPMatchRequest {
  name?: string;
  uri?: StringMatch;
  scheme?: StringMatch;
  method?: StringMatch;
  authority?: StringMatch;
  headers?: Record<string, StringMatch>;
  port?: number;
  sourceLabels?: Record<string, string>;
  queryParams?: Record<string, StringMatch>;
  ignoreUriCase?: boolean;
  withoutHeaders?: Record<string, StringMatch>;
  sourceNamespace?: string;
  statPrefix?: string;
  gateways?: string[];
}

export interface PortSelector {
  number?: number;
}

export interface Destination {
  host: string;
  subset?: string;
  port?: PortSelector;
}

export interface HeaderOperations {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

export interface Headers {
  request?: HeaderOperations;
  response?: HeaderOperations;
}

export interface HTTPRouteDestination {
  destination: Destination;
  weight?: number;
  headers?: Headers;
}

export interface HTTPRedirect {
  uri?: string;
  authority?: string;
  port?: number;
  derivePort?: 'FROM_PROTOCOL_DEFAULT' | 'FROM_REQUEST_PORT';
  scheme?: string;
  redirectCode?: number;
  /** Not Istio's: a redirect that replaces the matched prefix, for the Gateway API's ReplacePrefixMatch (control/translate/gamma.ts). */
  prefixRewrite?: string;
}

export interface HTTPDirectResponse {
  status: number;
  body?: { string?: string; bytes?: string };
}

export interface Percent {
  value?: number;
}

export interface HTTPFaultInjection {
  delay?: { fixedDelay?: string; percentage?: Percent; percent?: number };
  abort?: { httpStatus?: number; grpcStatus?: string; percentage?: Percent };
}

export interface HTTPRetry {
  attempts?: number;
  perTryTimeout?: string;
  retryOn?: string;
  retryRemoteLocalities?: boolean;
  /** Not in Istio's CRD snapshot: the base interval between retries (the Gateway API's retry.backoff). */
  backoff?: string;
}

/** A VirtualService without hosts that a root route hands its requests to; its namespace defaults to the root's. */
export interface Delegate {
  name?: string;
  namespace?: string;
}

export interface HTTPRoute {
  name?: string;
  match?: HTTPMatchRequest[];
  route?: HTTPRouteDestination[];
  redirect?: HTTPRedirect;
  directResponse?: HTTPDirectResponse;
  /** A root route: its requests are routed by the http routes of the VirtualService named (api/delegation.ts). */
  delegate?: Delegate;
  rewrite?: { uri?: string; authority?: string; uriRegexRewrite?: unknown };
  timeout?: string;
  retries?: HTTPRetry;
  fault?: HTTPFaultInjection;
  mirror?: Destination;
  mirrors?: { destination: Destination; percentage?: Percent }[];
  mirrorPercentage?: { value?: number };
  mirrorPercent?: number;
  corsPolicy?: unknown;
  headers?: Headers;
}

/** Istio's L4MatchAttributes, as TCP routes use them. */
export interface L4Match {
  destinationSubnets?: string[];
  port?: number;
  sourceLabels?: Record<string, string>;
  gateways?: string[];
  sourceNamespace?: string;
}

export interface TCPRoute {
  match?: L4Match[];
  route?: { destination: Destination; weight?: number }[];
}

/** Istio's TLSMatchAttributes: L4 attributes and the SNI hosts a tls route matches. */
export interface TLSMatch extends L4Match {
  sniHosts: string[];
}

export interface TLSRoute {
  match: TLSMatch[];
  route?: { destination: Destination; weight?: number }[];
}

export interface VirtualServiceSpec {
  hosts?: string[];
  gateways?: string[];
  http?: HTTPRoute[];
  tls?: TLSRoute[];
  tcp?: TCPRoute[];
  exportTo?: string[];
}

// ---- networking.istio.io: DestinationRule ------------------------------------------------

export interface Subset {
  name: string;
  labels?: Record<string, string>;
  trafficPolicy?: unknown;
}

export interface DestinationRuleSpec {
  host: string;
  trafficPolicy?: unknown;
  subsets?: Subset[];
  exportTo?: string[];
  workloadSelector?: { matchLabels?: Record<string, string> };
}

// ---- networking.istio.io: ServiceEntry, WorkloadEntry, Sidecar ---------------------------

export interface ServicePort {
  number: number;
  name: string;
  protocol?: string; // HTTP, HTTP2, GRPC, TCP, TLS, HTTPS, MONGO, ... (case-insensitive)
  targetPort?: number;
}

/** A WorkloadEntry's spec; also one of a ServiceEntry's inline endpoints. */
export interface WorkloadEntrySpec {
  address?: string; // an IP, a DNS name, or unix:///path
  ports?: Record<string, number>; // service port name -> the endpoint's port
  labels?: Record<string, string>;
  network?: string;
  locality?: string;
  weight?: number;
  serviceAccount?: string;
}

export interface ServiceEntrySpec {
  hosts: string[];
  addresses?: string[];
  ports?: ServicePort[];
  location?: 'MESH_EXTERNAL' | 'MESH_INTERNAL';
  resolution?: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'DYNAMIC_DNS';
  endpoints?: WorkloadEntrySpec[];
  workloadSelector?: { labels?: Record<string, string> };
  exportTo?: string[];
  subjectAltNames?: string[];
}

export interface IstioEgressListener {
  port?: { number?: number; protocol?: string; name?: string; targetPort?: number };
  bind?: string;
  captureMode?: string;
  hosts: string[]; // "namespace/dnsName": "./reviews.default.svc.cluster.local", "*/*", "istio-system/*"
}

export interface SidecarSpec {
  workloadSelector?: { labels?: Record<string, string> };
  ingress?: unknown[];
  egress?: IstioEgressListener[];
  inboundConnectionPool?: unknown;
  outboundTrafficPolicy?: { mode?: 'REGISTRY_ONLY' | 'ALLOW_ANY'; egressProxy?: unknown };
}

// ---- security.istio.io: PeerAuthentication ----------------------------------------------
// Whether a workload's sidecar takes plaintext, mutual TLS, or both (api/peer-auth.ts
// says which mode applies to a workload's port).

/** UNSET inherits the mode of the next level up (namespace, then mesh, then PERMISSIVE). */
export type MtlsMode = 'UNSET' | 'DISABLE' | 'PERMISSIVE' | 'STRICT';

export interface PeerAuthenticationSpec {
  /** The workloads of its namespace it applies to; none (or no labels): every workload of the namespace (of the mesh, in the root namespace). */
  selector?: { matchLabels?: Record<string, string> };
  mtls?: { mode?: MtlsMode };
  /** By port number, as YAML map keys ("8080"): for Weft, the workload's service port. Only with a selector. */
  portLevelMtls?: Record<string, { mode?: MtlsMode }>;
}

// ---- gateway.networking.k8s.io: HTTPRoute and GRPCRoute ---------------------------------
// Weft applies them as the Gateway API's mesh routes ("GAMMA"): routes whose parentRefs name a
// Service route the traffic clients send to that Service.

export interface ParentReference {
  group?: string; // "" (core) for a Service; gateway.networking.k8s.io by default
  kind?: string; // "Service" for mesh routes; "Gateway" by default
  namespace?: string;
  name: string;
  sectionName?: string;
  port?: number;
}

export interface BackendObjectReference {
  group?: string;
  kind?: string; // "Service" by default
  name: string;
  namespace?: string;
  port?: number;
}

export interface HTTPHeader {
  name: string;
  value: string;
}

export interface HTTPHeaderFilter {
  set?: HTTPHeader[];
  add?: HTTPHeader[];
  remove?: string[];
}

export interface HTTPPathModifier {
  type: 'ReplaceFullPath' | 'ReplacePrefixMatch';
  replaceFullPath?: string;
  replacePrefixMatch?: string;
}

export interface HTTPRouteFilter {
  type: 'RequestHeaderModifier' | 'ResponseHeaderModifier' | 'RequestRedirect' | 'URLRewrite' | 'RequestMirror' | 'ExtensionRef' | 'CORS';
  requestHeaderModifier?: HTTPHeaderFilter;
  responseHeaderModifier?: HTTPHeaderFilter;
  requestRedirect?: { scheme?: string; hostname?: string; path?: HTTPPathModifier; port?: number; statusCode?: number };
  urlRewrite?: { hostname?: string; path?: HTTPPathModifier };
  requestMirror?: { backendRef: BackendObjectReference; percent?: number; fraction?: { numerator: number; denominator?: number } };
  extensionRef?: { group: string; kind: string; name: string };
  cors?: HTTPCORSFilter;
}

/** The Gateway API's CORS filter (HTTPRoute). */
export interface HTTPCORSFilter {
  allowOrigins?: string[];
  allowCredentials?: boolean;
  allowMethods?: string[];
  allowHeaders?: string[];
  exposeHeaders?: string[];
  maxAge?: number; // seconds; 5 by default
}

export interface HTTPBackendRef extends BackendObjectReference {
  weight?: number; // 1 by default; relative to the rule's other backends
  filters?: HTTPRouteFilter[];
}

export interface GatewayValueMatch {
  type?: 'Exact' | 'RegularExpression';
  name: string;
  value: string;
}

export interface HTTPRouteMatch {
  path?: { type?: 'Exact' | 'PathPrefix' | 'RegularExpression'; value?: string };
  headers?: GatewayValueMatch[];
  queryParams?: GatewayValueMatch[];
  method?: string;
}

export interface HTTPRouteRule {
  name?: string;
  matches?: HTTPRouteMatch[];
  filters?: HTTPRouteFilter[];
  backendRefs?: HTTPBackendRef[];
  timeouts?: { request?: string; backendRequest?: string };
  retry?: { codes?: number[]; attempts?: number; backoff?: string };
  sessionPersistence?: unknown;
}

export interface HTTPRouteSpec {
  parentRefs?: ParentReference[];
  hostnames?: string[];
  rules?: HTTPRouteRule[];
}

export interface GRPCRouteMatch {
  method?: { type?: 'Exact' | 'RegularExpression'; service?: string; method?: string };
  headers?: GatewayValueMatch[];
}

export interface GRPCRouteRule {
  name?: string;
  matches?: GRPCRouteMatch[];
  filters?: HTTPRouteFilter[]; // RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, ExtensionRef
  backendRefs?: HTTPBackendRef[];
  sessionPersistence?: unknown;
}

export interface GRPCRouteSpec {
  parentRefs?: ParentReference[];
  hostnames?: string[];
  rules?: GRPCRouteRule[];
}

// ---- gateway.networking.k8s.io: ReferenceGrant -------------------------------------------
// Lets resources of the kinds and namespaces in `from` refer to the resources in `to`, which are in
// the grant's own namespace: for Weft, an HTTPRoute or GRPCRoute to a Service in another namespace
// (referencegrant.ts says whether one is permitted).

export interface ReferenceGrantFrom {
  group: string; // "gateway.networking.k8s.io" for routes
  kind: string; // "HTTPRoute", "GRPCRoute"
  namespace: string;
}

export interface ReferenceGrantTo {
  group: string; // "" (core) for a Service
  kind: string; // "Service"
  name?: string; // every resource of the group and kind in the namespace when absent
}

export interface ReferenceGrantSpec {
  from: ReferenceGrantFrom[];
  to: ReferenceGrantTo[];
}

export type VirtualService = Resource<VirtualServiceSpec>;
export type LocalRateLimit = Resource<import('./ratelimit.ts').LocalRateLimitSpec>;
export type DestinationRule = Resource<DestinationRuleSpec>;
export type ServiceEntry = Resource<ServiceEntrySpec>;
export type WorkloadEntry = Resource<WorkloadEntrySpec>;
export type Sidecar = Resource<SidecarSpec>;
export type GatewayHTTPRoute = Resource<HTTPRouteSpec>;
export type GatewayGRPCRoute = Resource<GRPCRouteSpec>;
export type ReferenceGrant = Resource<ReferenceGrantSpec>;
export type PeerAuthentication = Resource<PeerAuthenticationSpec>;

// ---- errors --------------------------------------------------------------------------------

/** One problem with one field. `path` is a field path such as "spec.http[0].route[1].weight". */
export interface FieldError {
  path: string; // "" when the problem is not about one field (e.g. a YAML syntax error)
  message: string;
  /**
   * What the problem is in, as the error message names it: "VirtualService default/x", or the
   * place in the input when no resource can be named ("x.yaml document 2"). Set by parseConfig and
   * checkResource; validateResource leaves it out.
   */
  resource?: string;
}

/**
 * Bad config, found before anything is applied. `message` is the whole sentence a user sees:
 * "VirtualService default/my-backend-service: spec.http[0].route[1].weight: must be between 0 and 100".
 */
export class ConfigError extends Error {
  readonly resource: string | undefined; // "VirtualService default/x", or undefined when none can be named
  readonly fields: FieldError[];
  constructor(message: string, resource?: string, fields: FieldError[] = []) {
    super(message);
    this.name = 'ConfigError';
    this.resource = resource;
    this.fields = fields;
  }
}

// ---- security.istio.io: AuthorizationPolicy ---------------------------------------------
// Validated (api/authorizationpolicy.ts), built into Envoy filters (control/translate/authz.ts) and
// enforced by the sidecars; CUSTOM is refused (api/support.ts).

export type AuthorizationAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

/** Who sends the request; a list field holds when the peer matches any of its values (AND across fields). */
export interface AuthorizationSource {
  principals?: string[];
  notPrincipals?: string[];
  requestPrincipals?: string[];
  notRequestPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  /** "name" (of the policy's namespace) or "namespace/name"; never with principals or namespaces. */
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
  remoteIpBlocks?: string[];
  notRemoteIpBlocks?: string[];
  trustDomains?: string[];
  notTrustDomains?: string[];
}

/** What the request asks for. hosts, methods and paths are HTTP only; ports apply to TCP too. */
export interface AuthorizationOperation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

export interface AuthorizationCondition {
  key: string; // "request.headers[x-user]", "source.ip", "request.auth.claims[iss]", ...
  values?: string[];
  notValues?: string[];
}

export interface AuthorizationRule {
  from?: { source?: AuthorizationSource }[];
  to?: { operation?: AuthorizationOperation }[];
  when?: AuthorizationCondition[];
}

export interface PolicyTargetReference {
  group?: string;
  kind: string;
  name: string;
  namespace?: string;
}

export interface AuthorizationPolicySpec {
  /** The workloads of its namespace it applies to (of the mesh, in the root namespace); absent: all. */
  selector?: { matchLabels?: Record<string, string> };
  /** Gateways, waypoints and services: a sidecar never takes a policy that has them. */
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  rules?: AuthorizationRule[];
  action?: AuthorizationAction; // ALLOW when absent
  /** With action CUSTOM: the mesh's extension provider that decides. */
  provider?: { name?: string };
}

export type AuthorizationPolicy = Resource<AuthorizationPolicySpec>;

// ---- security.istio.io: RequestAuthentication -------------------------------------------
// Which JWTs a workload's sidecar verifies (control/translate/jwt.ts makes Envoy's jwt_authn filter
// of them). A request with no token passes; one with a token that fails is refused (401).

export interface JWTHeader {
  name: string;
  /** Stripped before the token is read ("Bearer "). */
  prefix?: string;
}

export interface ClaimToHeader {
  header: string;
  claim: string;
}

export interface JWTRule {
  issuer?: string;
  audiences?: string[];
  /** Istio's spelling and its legacy snake_case alias; at most one of these and jwks. */
  jwksUri?: string;
  jwks_uri?: string;
  /** A JSON Web Key Set, inline. */
  jwks?: string;
  fromHeaders?: JWTHeader[];
  fromParams?: string[];
  fromCookies?: string[];
  outputPayloadToHeader?: string;
  forwardOriginalToken?: boolean;
  outputClaimToHeaders?: ClaimToHeader[];
  spaceDelimitedClaims?: string[];
  /** REQUIRED: a request without this rule's token is refused (refused by Weft for now: api/support.ts). */
  presence?: 'OPTIONAL' | 'REQUIRED';
  /** How long fetching jwksUri may take (Istio's default: 5 s). */
  timeout?: string;
}

export interface RequestAuthenticationSpec {
  /** The workloads of its namespace it applies to (of the mesh, in the root namespace); absent: all. */
  selector?: { matchLabels?: Record<string, string> };
  /** Gateways and waypoints: a sidecar never takes a policy that has them, as in Istio. */
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  jwtRules?: JWTRule[];
}

export type RequestAuthentication = Resource<RequestAuthenticationSpec>;

// ---- telemetry.istio.io: Telemetry --------------------------------------------------------
// What a workload's sidecar logs, measures and traces (api/telemetry.ts validates it;
// api/telemetry-select.ts says which Telemetries apply to a workload, with Istio's precedence).

/** Which side of an exchange a setting applies to: CLIENT (outbound), SERVER (inbound), or both (the default). */
export type WorkloadMode = 'CLIENT_AND_SERVER' | 'CLIENT' | 'SERVER';

/** A provider of the mesh config's extensionProviders, by name ("envoy", "prometheus", ...). */
export interface TelemetryProviderRef {
  name: string;
}

export interface TelemetryAccessLogging {
  match?: { mode?: WorkloadMode };
  providers?: TelemetryProviderRef[];
  /** true: no access log for these providers (BoolValue: null is unset). */
  disabled?: boolean | null;
  /** A CEL expression: only the exchanges for which it is true are logged. */
  filter?: { expression?: string };
}

export interface TelemetryTagOverride {
  operation?: 'UPSERT' | 'REMOVE';
  value?: string;
}

export interface TelemetryMetricsOverride {
  match?: { metric?: string; customMetric?: string; mode?: WorkloadMode };
  disabled?: boolean | null;
  tagOverrides?: Record<string, TelemetryTagOverride>;
}

export interface TelemetryMetrics {
  providers?: TelemetryProviderRef[];
  overrides?: TelemetryMetricsOverride[];
  reportingInterval?: string;
}

export interface TelemetryCustomTag {
  literal?: { value: string };
  environment?: { name: string; defaultValue?: string };
  header?: { name: string; defaultValue?: string };
  formatter?: { value: string };
}

export interface TelemetryTracing {
  match?: { mode?: WorkloadMode };
  providers?: TelemetryProviderRef[];
  randomSamplingPercentage?: number | null;
  disableSpanReporting?: boolean | null;
  customTags?: Record<string, TelemetryCustomTag>;
  useRequestIdForTraceSampling?: boolean | null;
  enableIstioTags?: boolean | null;
  disableContextPropagation?: boolean | null;
}

export interface TelemetrySpec {
  /** The workloads of its namespace it applies to; none (or no labels): every workload of the namespace (of the mesh, in the root namespace). */
  selector?: { matchLabels?: Record<string, string> };
  /** Gateways, waypoints and services: a sidecar never takes a Telemetry that has them, as in Istio. */
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  tracing?: TelemetryTracing[];
  metrics?: TelemetryMetrics[];
  accessLogging?: TelemetryAccessLogging[];
}

export type Telemetry = Resource<TelemetrySpec>;
