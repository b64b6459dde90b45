// The shape of VirtualService, DestinationRule, ServiceEntry, WorkloadEntry, Sidecar and PeerAuthentication specs,
// transcribed by hand from the OpenAPI v3 schemas in Istio's crd-all.gen.yaml (istio/istio 86c9f01f;
// identical for v1, v1beta1 and v1alpha3). Where newer istio/api fields are accepted that the CRD
// snapshot lacks, a comment says so. Descriptions and status are left out; `duration: 'min1ms'`
// stands for the CRD's CEL rule `duration(self) >= duration('1ms')`, and PORT for its rule
// `0 < self && self <= 65535`. The CRDs' other CEL rules are in the per-kind validators.

import type {
  ArraySchema,
  BooleanSchema,
  IntegerSchema,
  MapSchema,
  NumberSchema,
  ObjectSchema,
  Schema,
  StringSchema,
} from './schema.ts';

// ---- building blocks ----

const STRING: StringSchema = { type: 'string' };
const BOOL: BooleanSchema = { type: 'boolean' };
const NULLABLE_BOOL: BooleanSchema = { type: 'boolean', nullable: true };
const INT32: IntegerSchema = { type: 'integer', min: -2147483648, max: 2147483647 };
const UINT32: IntegerSchema = { type: 'integer', min: 0, max: 4294967295 };
const NULLABLE_UINT32: IntegerSchema = { ...UINT32, nullable: true };
const NON_NEGATIVE_INT: IntegerSchema = { type: 'integer', min: 0 };
const DOUBLE: NumberSchema = { type: 'number' };
const DURATION: StringSchema = { type: 'string', duration: 'min1ms' };
/** uint32 with the CEL rule `0 < self && self <= 65535`. */
const PORT: IntegerSchema = { type: 'integer', min: 1, max: 65535 };
const ANY_DURATION: StringSchema = { type: 'string', duration: 'any' };

function maxLength(n: number): StringSchema {
  return { type: 'string', maxLength: n };
}

function enumOf(...values: string[]): StringSchema {
  return { type: 'string', enum: values };
}

function list(items: Schema, maxItems?: number, minItems?: number): ArraySchema {
  return { type: 'array', items, ...(maxItems === undefined ? {} : { maxItems }), ...(minItems === undefined ? {} : { minItems }) };
}

function mapOf(values: Schema, maxProperties?: number): MapSchema {
  return maxProperties === undefined ? { type: 'map', values } : { type: 'map', values, maxProperties };
}

function obj(
  props: Record<string, Schema>,
  opts: { required?: readonly string[]; oneOf?: readonly (readonly string[])[] } = {},
): ObjectSchema {
  return { type: 'object', props, ...opts };
}

const STRINGS = list(STRING);
const STRING_MAP = mapOf(STRING);

// ---- shared by both kinds ----

const PORT_SELECTOR = obj({ number: UINT32 });

// `suffix` is newer than the CRD snapshot (istio/api StringMatch); the conformance data uses it.
const STRING_MATCH = obj(
  { exact: STRING, prefix: STRING, regex: STRING, suffix: STRING },
  { oneOf: [['exact', 'prefix', 'regex', 'suffix']] },
);

// ---- VirtualService ----

const DESTINATION = obj({ host: STRING, port: PORT_SELECTOR, subset: STRING }, { required: ['host'] });
const PERCENT = obj({ value: DOUBLE });
const HEADER_OPERATIONS = obj({ add: STRING_MAP, remove: STRINGS, set: STRING_MAP });
const HEADERS = obj({ request: HEADER_OPERATIONS, response: HEADER_OPERATIONS });

const HTTP_MATCH_REQUEST = obj({
  authority: STRING_MATCH,
  gateways: STRINGS,
  headers: mapOf(STRING_MATCH),
  ignoreUriCase: BOOL,
  method: STRING_MATCH,
  name: STRING,
  port: UINT32,
  queryParams: mapOf(STRING_MATCH),
  scheme: STRING_MATCH,
  sourceLabels: STRING_MAP,
  sourceNamespace: STRING,
  statPrefix: STRING,
  uri: STRING_MATCH,
  withoutHeaders: mapOf(STRING_MATCH),
});

const CORS_POLICY = obj({
  allowCredentials: NULLABLE_BOOL,
  allowHeaders: STRINGS,
  allowMethods: STRINGS,
  allowOrigin: STRINGS,
  allowOrigins: list(STRING_MATCH),
  exposeHeaders: STRINGS,
  maxAge: DURATION,
  unmatchedPreflights: enumOf('UNSPECIFIED', 'FORWARD', 'IGNORE'),
});

const DIRECT_RESPONSE = obj(
  {
    body: obj({ bytes: { type: 'string', base64: true }, string: STRING }, { oneOf: [['string', 'bytes']] }),
    status: UINT32,
  },
  { required: ['status'] },
);

const FAULT = obj({
  abort: obj(
    { grpcStatus: STRING, http2Error: STRING, httpStatus: INT32, percentage: PERCENT },
    { oneOf: [['httpStatus', 'grpcStatus', 'http2Error']] },
  ),
  delay: obj(
    { exponentialDelay: DURATION, fixedDelay: DURATION, percent: INT32, percentage: PERCENT },
    { oneOf: [['fixedDelay', 'exponentialDelay']] },
  ),
});

const REDIRECT = obj(
  {
    authority: STRING,
    derivePort: enumOf('FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT'),
    port: UINT32,
    prefixRewrite: STRING,
    redirectCode: UINT32,
    scheme: STRING,
    uri: STRING,
  },
  { oneOf: [['port', 'derivePort']] },
);

/** HTTPRetry (also the mesh config's defaultHttpRetryPolicy). */
export const RETRIES = obj({
  attempts: INT32,
  backoff: DURATION,
  perTryTimeout: DURATION,
  retryIgnorePreviousHosts: NULLABLE_BOOL,
  retryOn: STRING,
  retryRemoteLocalities: NULLABLE_BOOL,
});

const REWRITE = obj({ authority: STRING, uri: STRING, uriRegexRewrite: obj({ match: STRING, rewrite: STRING }) });

// sessionPersistence is newer than the CRD snapshot (istio/api HTTPRoute.session_persistence,
// see the conformance file virtualservice-session-persistence.yaml).
const SESSION_PERSISTENCE = obj({
  type: enumOf('COOKIE', 'HEADER'),
  absoluteTimeout: DURATION,
  idleTimeout: DURATION,
  cookie: obj({ name: STRING, path: STRING, lifetimeType: enumOf('SESSION', 'PERMANENT') }, { required: ['name'] }),
  header: obj({ name: STRING }, { required: ['name'] }),
});

const HTTP_ROUTE = obj({
  corsPolicy: CORS_POLICY,
  delegate: obj({ name: STRING, namespace: STRING }),
  directResponse: DIRECT_RESPONSE,
  fault: FAULT,
  headers: HEADERS,
  match: list(HTTP_MATCH_REQUEST),
  mirror: DESTINATION,
  mirror_percent: NULLABLE_UINT32,
  mirrorPercent: NULLABLE_UINT32,
  mirrorPercentage: PERCENT,
  mirrors: list(obj({ destination: DESTINATION, percentage: PERCENT }, { required: ['destination'] })),
  name: STRING,
  redirect: REDIRECT,
  retries: RETRIES,
  rewrite: REWRITE,
  route: list(obj({ destination: DESTINATION, headers: HEADERS, weight: INT32 }, { required: ['destination'] })),
  sessionPersistence: SESSION_PERSISTENCE,
  timeout: DURATION,
});

const ROUTE_DESTINATION = obj({ destination: DESTINATION, weight: INT32 }, { required: ['destination'] });

const L4_MATCH = obj({
  destinationSubnets: STRINGS,
  gateways: STRINGS,
  port: UINT32,
  sourceLabels: STRING_MAP,
  sourceNamespace: STRING,
  sourceSubnet: STRING,
});

const TLS_MATCH = obj(
  {
    destinationSubnets: STRINGS,
    gateways: STRINGS,
    port: UINT32,
    sniHosts: STRINGS,
    sourceLabels: STRING_MAP,
    sourceNamespace: STRING,
  },
  { required: ['sniHosts'] },
);

export const VIRTUAL_SERVICE_SPEC: ObjectSchema = obj({
  exportTo: STRINGS,
  gateways: STRINGS,
  hosts: STRINGS,
  http: list(HTTP_ROUTE),
  tcp: list(obj({ match: list(L4_MATCH), route: list(ROUTE_DESTINATION) })),
  tls: list(obj({ match: list(TLS_MATCH), route: list(ROUTE_DESTINATION) }, { required: ['match'] })),
});

// ---- DestinationRule ----

/** TcpKeepalive (also the mesh config's tcpKeepalive). */
export const TCP_KEEPALIVE = obj({ interval: DURATION, probes: UINT32, time: DURATION });

const CONNECTION_POOL = obj({
  http: obj({
    h2UpgradePolicy: enumOf('DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE'),
    http1MaxPendingRequests: INT32,
    http2KeepAlive: obj({ interval: DURATION, timeout: DURATION }),
    http2MaxRequests: INT32,
    idleTimeout: DURATION,
    maxConcurrentStreams: INT32,
    maxRequestsPerConnection: INT32,
    maxRetries: INT32,
    useClientProtocol: BOOL,
  }),
  tcp: obj({
    connectTimeout: DURATION,
    // No CEL rule here: "0s" disables the idle timeout.
    idleTimeout: ANY_DURATION,
    maxConnectionDuration: DURATION,
    maxConnections: INT32,
    tcpKeepalive: TCP_KEEPALIVE,
  }),
});

const LOCALITY_FAILOVER = list(obj({ from: STRING, to: STRING }));

/** LocalityLoadBalancerSetting (also the mesh config's localityLbSetting). */
export const LOCALITY_LB_SETTING = obj({
  distribute: list(obj({ from: STRING, to: mapOf(UINT32) })),
  enabled: NULLABLE_BOOL,
  failover: LOCALITY_FAILOVER,
  failoverPriority: STRINGS,
});

const CONSISTENT_HASH = obj(
  {
    httpCookie: obj(
      {
        attributes: list(obj({ name: STRING, value: STRING }, { required: ['name'] })),
        name: STRING,
        path: STRING,
        ttl: ANY_DURATION,
      },
      { required: ['name'] },
    ),
    httpHeaderName: STRING,
    httpQueryParameterName: STRING,
    maglev: obj({ tableSize: NON_NEGATIVE_INT }),
    minimumRingSize: NON_NEGATIVE_INT,
    ringHash: obj({ minimumRingSize: NON_NEGATIVE_INT }),
    useSourceIp: BOOL,
  },
  {
    oneOf: [
      ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'],
      ['ringHash', 'maglev'],
    ],
  },
);

const LOAD_BALANCER = obj(
  {
    backendUtilization: obj({
      errorUtilizationPenaltyPercent: UINT32,
      metricNamesForComputingUtilization: STRINGS,
      weightExpirationPeriod: ANY_DURATION,
      weightStabilizationPeriod: ANY_DURATION,
      weightUpdatePeriod: ANY_DURATION,
    }),
    consistentHash: CONSISTENT_HASH,
    localityLbSetting: LOCALITY_LB_SETTING,
    simple: enumOf('UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST'),
    warmup: obj(
      {
        aggression: { type: 'number', min: 0, nullable: true },
        duration: DURATION,
        minimumPercent: { type: 'number', min: 0, max: 100, nullable: true },
      },
      { required: ['duration'] },
    ),
    warmupDurationSecs: DURATION,
    zoneAwareLbSetting: obj({
      enabled: NULLABLE_BOOL,
      failover: LOCALITY_FAILOVER,
      failoverPriority: STRINGS,
      minClusterSize: { type: 'integer', min: 1, max: 4294967295, nullable: true },
    }),
  },
  { oneOf: [['simple', 'consistentHash', 'backendUtilization']] },
);

const OUTLIER_DETECTION = obj({
  baseEjectionTime: DURATION,
  consecutive5xxErrors: NULLABLE_UINT32,
  consecutiveErrors: INT32,
  consecutiveGatewayErrors: NULLABLE_UINT32,
  consecutiveLocalOriginFailures: NULLABLE_UINT32,
  interval: DURATION,
  maxEjectionPercent: INT32,
  minHealthPercent: INT32,
  outlierDetectionHttpErrorCodes: list({ type: 'integer', min: 100, max: 599 }),
  splitExternalLocalOriginErrors: BOOL,
});

const CLIENT_TLS = obj({
  caCertificates: STRING,
  caCrl: STRING,
  clientCertificate: STRING,
  credentialName: STRING,
  insecureSkipVerify: NULLABLE_BOOL,
  mode: enumOf('DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'),
  privateKey: STRING,
  sni: STRING,
  subjectAltNames: STRINGS,
});

const TRAFFIC_POLICY = obj({
  connectionPool: CONNECTION_POOL,
  loadBalancer: LOAD_BALANCER,
  outlierDetection: OUTLIER_DETECTION,
  portLevelSettings: list(
    obj({
      connectionPool: CONNECTION_POOL,
      loadBalancer: LOAD_BALANCER,
      outlierDetection: OUTLIER_DETECTION,
      port: PORT_SELECTOR,
      tls: CLIENT_TLS,
    }),
    4096,
  ),
  proxyProtocol: obj({ version: enumOf('V1', 'V2') }),
  retryBudget: obj({
    budgetInterval: ANY_DURATION,
    minRetryConcurrency: UINT32,
    percent: { type: 'number', min: 0, max: 100, nullable: true },
  }),
  tls: CLIENT_TLS,
  tunnel: obj({ protocol: STRING, targetHost: STRING, targetPort: UINT32 }, { required: ['targetHost', 'targetPort'] }),
});

export const DESTINATION_RULE_SPEC: ObjectSchema = obj(
  {
    exportTo: STRINGS,
    host: STRING,
    subsets: list(obj({ labels: STRING_MAP, name: STRING, trafficPolicy: TRAFFIC_POLICY }, { required: ['name'] })),
    trafficPolicy: TRAFFIC_POLICY,
    workloadSelector: obj({ matchLabels: mapOf({ type: 'string', maxLength: 63 }, 4096) }),
  },
  { required: ['host'] },
);

// ---- ServiceEntry and WorkloadEntry ----

/** Which workloads a ServiceEntry or Sidecar applies to (the CEL rule "no wildcard" is in common.ts). */
const WORKLOAD_SELECTOR = obj({ labels: mapOf(maxLength(63), 256) });

/** A WorkloadEntry's spec, and each of a ServiceEntry's inline endpoints. */
export const WORKLOAD_ENTRY_SPEC: ObjectSchema = obj({
  address: maxLength(256),
  labels: mapOf(STRING, 256),
  locality: maxLength(2048),
  network: maxLength(2048),
  ports: mapOf(PORT, 128),
  serviceAccount: maxLength(253),
  weight: UINT32,
});

export const SERVICE_ENTRY_SPEC: ObjectSchema = obj(
  {
    addresses: list(maxLength(64), 256),
    endpoints: list(WORKLOAD_ENTRY_SPEC, 4096),
    exportTo: STRINGS,
    hosts: list(STRING, 256, 1),
    location: enumOf('MESH_EXTERNAL', 'MESH_INTERNAL'),
    // A list-map keyed by name (x-kubernetes-list-map-keys): the duplicate check is in serviceentry.ts.
    ports: list(obj({ name: maxLength(256), number: PORT, protocol: maxLength(256), targetPort: PORT }, { required: ['number', 'name'] }), 256),
    resolution: enumOf('NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS'),
    subjectAltNames: STRINGS,
    workloadSelector: WORKLOAD_SELECTOR,
  },
  { required: ['hosts'] },
);

// ---- Sidecar ----

const SIDECAR_PORT = obj({ name: STRING, number: UINT32, protocol: STRING, targetPort: UINT32 });
const CAPTURE_MODE = enumOf('DEFAULT', 'IPTABLES', 'NONE');
const TLS_VERSION = enumOf('TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3');

// The CRD's three CEL rules here are two "at most one of" pairs (its third repeats the first).
const SERVER_TLS = obj(
  {
    caCertCredentialName: STRING,
    caCertificates: STRING,
    caCrl: STRING,
    cipherSuites: STRINGS,
    credentialName: STRING,
    credentialNames: list(STRING, 2, 1),
    ecdhCurves: STRINGS,
    httpsRedirect: BOOL,
    insecureSkipVerify: NULLABLE_BOOL,
    maxProtocolVersion: TLS_VERSION,
    minProtocolVersion: TLS_VERSION,
    mode: enumOf('PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL'),
    privateKey: STRING,
    serverCertificate: STRING,
    subjectAltNames: STRINGS,
    tlsCertificates: list(obj({ caCertificates: STRING, privateKey: STRING, serverCertificate: STRING }), 2, 1),
    verifyCertificateHash: STRINGS,
    verifyCertificateSpki: STRINGS,
  },
  {
    oneOf: [
      ['tlsCertificates', 'credentialNames'],
      ['credentialName', 'credentialNames'],
    ],
  },
);

export const SIDECAR_SPEC: ObjectSchema = obj({
  egress: list(obj({ bind: STRING, captureMode: CAPTURE_MODE, hosts: STRINGS, port: SIDECAR_PORT }, { required: ['hosts'] })),
  inboundConnectionPool: CONNECTION_POOL,
  ingress: list(
    obj(
      { bind: STRING, captureMode: CAPTURE_MODE, connectionPool: CONNECTION_POOL, defaultEndpoint: STRING, port: SIDECAR_PORT, tls: SERVER_TLS },
      { required: ['port'] },
    ),
  ),
  outboundTrafficPolicy: obj({
    egressProxy: obj({ host: STRING, port: PORT_SELECTOR, subset: STRING }, { required: ['host'] }),
    mode: enumOf('REGISTRY_ONLY', 'ALLOW_ANY'),
  }),
  workloadSelector: WORKLOAD_SELECTOR,
});

// ---- PeerAuthentication (security.istio.io v1 and v1beta1, the same schema) ----
// Its CEL rules (port keys 1-65535, portLevelMtls needs a selector) are in peerauthentication.ts.

const MTLS_MODE = obj({ mode: enumOf('UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT') });

export const PEER_AUTHENTICATION_SPEC: ObjectSchema = obj({
  mtls: MTLS_MODE,
  portLevelMtls: { type: 'map', values: MTLS_MODE, minProperties: 1 },
  selector: obj({ matchLabels: mapOf(maxLength(63), 4096) }),
});
