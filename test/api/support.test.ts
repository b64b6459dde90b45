// What Weft cannot apply yet is never dropped in silence: fields whose loss would widen traffic or
// weaken security are refused by `weft apply`, naming the field; the rest are accepted with a
// warning naming the resource and the field (src/api/support.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkResource, ConfigError, formatProblem, inspect, warningsOf } from '../../src/api/index.ts';
import { destinationRule, grpcRoute, httpRoute, referenceGrant, serviceEntry, sidecar, virtualService, workloadEntry } from './helpers.ts';

const route = { destination: { host: 'reviews' } };
const refused = (obj: unknown, re: RegExp) => assert.throws(() => checkResource(obj, 'x'), (e: Error) => re.test(e.message));
const warnings = (obj: unknown) => warningsOf(checkResource(obj, 'x')).map(formatProblem);

test('refused, naming the field: tcp and tls destinationSubnets, DestinationRule TLS, redirect codes Envoy cannot send', () => {
  refused(virtualService({ hosts: ['reviews'], tcp: [{ match: [{ destinationSubnets: ['10.0.0.0/8'] }], route: [route] }] }), /spec\.tcp\[0\]\.match\[0\]\.destinationSubnets: not supported/);
  checkResource(virtualService({ hosts: ['reviews'], tcp: [{ match: [{ port: 5432 }], route: [route] }] }), 'x');
  refused(virtualService({ hosts: ['reviews'], tls: [{ match: [{ sniHosts: ['reviews'] }, { sniHosts: ['reviews'], destinationSubnets: ['10.0.0.1'] }], route: [route] }] }), /spec\.tls\[0\]\.match\[1\]\.destinationSubnets: not supported: a sidecar routes TLS by service name/);
  // tls routes are applied: accepted without a word.
  assert.deepEqual(warnings(virtualService({ hosts: ['reviews'], tls: [{ match: [{ sniHosts: ['reviews'], port: 443, sourceLabels: { app: 'a' }, sourceNamespace: 'default', gateways: ['mesh'] }], route: [route] }] })), []);
  // SIMPLE and MUTUAL (TLS origination with files the sidecar reads) are applied at every level;
  // credentialName (a Kubernetes secret) is refused, naming the field.
  assert.deepEqual(warnings(destinationRule({ host: 'reviews', trafficPolicy: { tls: { mode: 'SIMPLE', caCertificates: '/ca.pem', sni: 'x', subjectAltNames: ['x'], caCrl: '/crl.pem' } } })), []);
  assert.deepEqual(warnings(destinationRule({ host: 'reviews', subsets: [{ name: 'v1', labels: { v: '1' }, trafficPolicy: { portLevelSettings: [{ port: { number: 80 }, tls: { mode: 'MUTUAL', clientCertificate: '/c', privateKey: '/k', insecureSkipVerify: true } }] } }] })), []);
  refused(destinationRule({ host: 'reviews', trafficPolicy: { tls: { mode: 'SIMPLE', credentialName: 'api-ca' } } }), /spec\.trafficPolicy\.tls\.credentialName: not supported: it names a Kubernetes secret/);
  refused(destinationRule({ host: 'reviews', subsets: [{ name: 'v1', labels: { v: '1' }, trafficPolicy: { portLevelSettings: [{ port: { number: 80 }, tls: { mode: 'MUTUAL', credentialName: 'client' } }] } }] }), /spec\.subsets\[0\]\.trafficPolicy\.portLevelSettings\[0\]\.tls\.credentialName: not supported/);
  // A client certificate under SIMPLE is not sent (as in Istio): a warning.
  assert.match(warnings(destinationRule({ host: 'reviews', trafficPolicy: { tls: { mode: 'SIMPLE', clientCertificate: '/c', privateKey: '/k' } } })).join('\n'), /spec\.trafficPolicy\.tls\.clientCertificate: accepted, not applied: SIMPLE presents no client certificate[^\n]*\n.*spec\.trafficPolicy\.tls\.privateKey: accepted, not applied/);
  // DISABLE and ISTIO_MUTUAL are applied: accepted; a field they do not use is a warning naming it.
  assert.deepEqual(warnings(destinationRule({ host: 'reviews', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL', sni: 'x', subjectAltNames: ['spiffe://cluster.local/ns/default/sa/reviews'] } } })), []);
  assert.deepEqual(warnings(destinationRule({ host: 'reviews', trafficPolicy: { tls: { mode: 'DISABLE', sni: 'x' } } })).map((w) => w.split(': ').slice(0, 3).join(': ')), ['DestinationRule default/r: spec.trafficPolicy.tls.sni: accepted, not applied']);
  refused(virtualService({ hosts: ['reviews'], http: [{ redirect: { uri: '/x', redirectCode: 300 } }] }), /spec\.http\[0\]\.redirect\.redirectCode: 300 cannot be sent/);
});

test('accepted with a warning naming the resource and field: statPrefix, traffic policies; retryRemoteLocalities, localityLbSetting and useSourceIp are applied', () => {
  const vs = virtualService({
    hosts: ['reviews'],
    http: [{ match: [{ statPrefix: 'x', uri: { prefix: '/' } }], retries: { attempts: 3, retryRemoteLocalities: true }, route: [route] }],
  });
  assert.deepEqual(warnings(vs).map((w) => w.split(': ').slice(0, 2).join(': ')), [
    'VirtualService default/r: spec.http[0].match[0].statPrefix',
  ]);
  const dr = destinationRule({
    host: 'reviews',
    trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true }, localityLbSetting: { enabled: true, failover: [{ from: 'us-east', to: 'us-west' }] } }, connectionPool: { tcp: { maxConnections: 5, tcpKeepalive: { time: '1s', probes: 3 } }, http: { maxRetries: 3 } }, outlierDetection: { consecutive5xxErrors: 3, splitExternalLocalOriginErrors: true, outlierDetectionHttpErrorCodes: [429] } },
    exportTo: ['.'],
  });
  assert.deepEqual(warnings(dr).map((w) => w.split(': ')[1]), [
    'spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.probes',
    'spec.trafficPolicy.outlierDetection.outlierDetectionHttpErrorCodes',
  ]);
});

test('what Weft applies gets no warning: matches, weights, timeouts, retries, faults, headers, rewrites, redirects, direct responses, exportTo', () => {
  const vs = virtualService({
    hosts: ['reviews'],
    exportTo: ['.'],
    http: [
      { match: [{ uri: { suffix: '.png' }, sourceLabels: { app: 'a' } }], fault: { abort: { httpStatus: 500 } }, headers: { request: { set: { a: 'b' } } }, rewrite: { uri: '/x' }, timeout: '1s', mirror: { host: 'shadow' }, mirrorPercentage: { value: 5 }, corsPolicy: { allowOrigins: [{ exact: 'https://a' }] }, retries: { attempts: 3, perTryTimeout: '1s', retryOn: '5xx,503' }, route: [route] },
      { match: [{ uri: { prefix: '/r' } }], redirect: { uri: '/s', redirectCode: 307 } },
      { directResponse: { status: 200 } },
    ],
  });
  assert.deepEqual(warnings(vs), []);
  // Delegation: the root route, with what its delegate's routes inherit, and the delegate.
  assert.deepEqual(warnings(virtualService({ hosts: ['reviews'], http: [{ match: [{ uri: { prefix: '/r' } }], delegate: { name: 'd', namespace: 'shop' }, timeout: '1s', retries: { attempts: 1 } }] })), []);
  assert.deepEqual(warnings(virtualService({ exportTo: ['*'], http: [{ match: [{ uri: { prefix: '/r/v1' } }], route: [route] }] })), []);
  assert.deepEqual(warnings(destinationRule({ host: 'reviews', subsets: [{ name: 'v1', labels: { v: '1' } }] })), []);
  const connectionPool = {
    tcp: { maxConnections: 5, connectTimeout: '1s', tcpKeepalive: { time: '60s' }, maxConnectionDuration: '1h', idleTimeout: '0s' },
    http: { http1MaxPendingRequests: 2, http2MaxRequests: 10, maxRequestsPerConnection: 3, maxRetries: 2, idleTimeout: '30s', h2UpgradePolicy: 'UPGRADE', maxConcurrentStreams: 50, http2KeepAlive: { interval: '10s', timeout: '2s' } },
  };
  assert.deepEqual(warnings(destinationRule({ host: 'reviews', trafficPolicy: { connectionPool: { http: { useClientProtocol: true } } } })), [], 'useClientProtocol too');
  const applied = { loadBalancer: { simple: 'LEAST_REQUEST' }, connectionPool, outlierDetection: { consecutive5xxErrors: 3, consecutiveGatewayErrors: 2, interval: '1s', baseEjectionTime: '5s', maxEjectionPercent: 50, minHealthPercent: 20 } };
  assert.deepEqual(warnings(destinationRule({ host: 'reviews', trafficPolicy: applied })), []);
});

// ---- ServiceEntry, WorkloadEntry, Sidecar ----

const pathsAndMessages = (obj: unknown) => warnings(obj).map((w) => w.split(': ').slice(1).join(': '));

test('ServiceEntry: what the sidecar cannot apply yet is accepted with a warning on its field', () => {
  const se = serviceEntry({
    hosts: ['db.example.com'],
    addresses: ['10.0.0.1', '10.1.0.0/16'],
    ports: [{ number: 5432, name: 'pg', protocol: 'TCP' }],
    resolution: 'STATIC',
    subjectAltNames: ['spiffe://cluster.local/ns/db/sa/db'],
    endpoints: [
      { address: '10.1.0.5', weight: 3, network: 'west', locality: 'us-east/a', serviceAccount: 'db' },
      { address: 'unix:///var/run/db.sock' },
    ],
  });
  assert.deepEqual(pathsAndMessages(se), [
    'spec.addresses[1]: accepted, not applied yet: the sidecar routes by name and by plain address, not by address range',
    'spec.endpoints[0].network: accepted, not applied yet: Weft has no networks',
    "spec.endpoints[0].serviceAccount: accepted, not applied: a ServiceEntry's own endpoints get plaintext (nothing says a sidecar runs there), so no identity is checked",
    'spec.endpoints[1].address: accepted, not applied yet: the sidecar does not dial unix sockets; this endpoint is left out',
    "spec.subjectAltNames: accepted, applied only to TLS a DestinationRule originates (mode SIMPLE or MUTUAL, where the rule names no subjectAltNames), as in Istio; automatic mTLS checks the identities of the mesh's own endpoints (Weft's workloads, WorkloadEntries labelled security.istio.io/tlsMode: istio), not a ServiceEntry's names",
  ]);
  assert.match(warnings(se)[0] ?? '', /^ServiceEntry default\/r: spec\.addresses\[1\]: /);
});

test('ServiceEntry: what Weft applies gets no warning, and nothing is refused', () => {
  const applied = serviceEntry({
    hosts: ['api.example.com'],
    addresses: ['10.0.0.1', '2001:db8::1'],
    ports: [{ number: 443, name: 'https', protocol: 'HTTPS', targetPort: 8443 }],
    location: 'MESH_INTERNAL',
    resolution: 'DNS',
    endpoints: [{ address: 'lb.example.com', ports: { https: 9443 }, labels: { zone: 'a' }, weight: 0, network: '' }],
    exportTo: ['.'],
  });
  assert.deepEqual(warnings(applied), []);
  assert.deepEqual(warnings(serviceEntry({ hosts: ['db.example.com'], workloadSelector: { labels: { app: 'db' } } })), []);
});

test('WorkloadEntry: network, serviceAccount (without the tlsMode label) and unix sockets are warnings; address, ports, labels, locality, weight, and serviceAccount with the label are applied', () => {
  const we = workloadEntry({ address: 'unix:///var/run/app.sock', labels: { app: 'vm' }, weight: 2, network: 'west', locality: 'us-east', serviceAccount: 'vm' });
  assert.deepEqual(pathsAndMessages(we), [
    'spec.address: accepted, not applied yet: the sidecar does not dial unix sockets; this endpoint is left out',
    'spec.network: accepted, not applied yet: Weft has no networks',
    'spec.serviceAccount: accepted, not applied: clients send a WorkloadEntry mTLS, and expect this identity, only when its labels carry security.istio.io/tlsMode: istio',
  ]);
  assert.match(warnings(we)[0] ?? '', /^WorkloadEntry default\/r: spec\.address: /);
  assert.deepEqual(warnings(workloadEntry({ address: '10.0.0.7', ports: { http: 8080 }, labels: { app: 'vm' } })), []);
  // With the label, its service account is the SAN its clients expect (translate/mtls.ts).
  assert.deepEqual(warnings(workloadEntry({ address: '10.0.0.7', labels: { app: 'vm', 'security.istio.io/tlsMode': 'istio' }, serviceAccount: 'vm' })), []);
});

test('Sidecar: egressProxy is refused (ignoring it would widen what a workload reaches); egress listeners with ports are applied, a unix socket one and port protocols are warnings', () => {
  refused(
    sidecar({ outboundTrafficPolicy: { mode: 'ALLOW_ANY', egressProxy: { host: 'egress.example.com', port: { number: 3128 } } } }),
    /^Sidecar default\/r: spec\.outboundTrafficPolicy\.egressProxy: not supported yet; ignoring it would send traffic to unknown hosts directly instead of through the egress proxy$/,
  );
  const two = sidecar({ egress: [{ port: { number: 9080 }, hosts: ['./*'] }, { hosts: ['istio-system/*'] }] });
  assert.deepEqual(warnings(two), []);
  const more = sidecar({ egress: [{ port: { number: 9080, protocol: 'HTTP', name: 'http' }, hosts: ['./*'] }, { port: { number: 0 }, bind: 'unix:///var/run/app.sock', hosts: ['./*'] }, { hosts: ['istio-system/*'] }] });
  assert.deepEqual(warnings(more).map((w) => w.split(': ')[1]), ['spec.egress[0].port.protocol', 'spec.egress[1]']);
});

test('Sidecar: bind, captureMode and ingress are warnings; selector, egress hosts, mode and inboundConnectionPool are applied (its keepalive probes warned, as a DestinationRule\'s)', () => {
  const sc = sidecar({
    workloadSelector: { labels: { app: 'reviews' } },
    egress: [{ bind: '127.0.0.2', captureMode: 'NONE', hosts: ['./*', 'istio-system/*'] }],
    ingress: [{ port: { number: 9080, protocol: 'HTTP' }, defaultEndpoint: '127.0.0.1:8080' }],
    inboundConnectionPool: { tcp: { maxConnections: 10, tcpKeepalive: { time: '10s', probes: 3 } } },
    outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' },
  });
  assert.deepEqual(pathsAndMessages(sc), [
    'spec.egress[0].bind: accepted, not applied yet: the sidecar keeps its own outbound listener address',
    'spec.egress[0].captureMode: accepted, not applied yet: apps reach the sidecar as their HTTP proxy; no traffic is captured',
    "spec.ingress: accepted, not applied yet: the sidecar's inbound listeners follow the workload's ports",
    "spec.inboundConnectionPool.tcp.tcpKeepalive.probes: accepted, not applied yet: the sidecar's sockets cannot set it (Node's fixed values apply)",
  ]);
  assert.match(warnings(sc)[0] ?? '', /^Sidecar default\/r: spec\.egress\[0\]\.bind: /);
  const applied = sidecar({ workloadSelector: { labels: { app: 'reviews' } }, egress: [{ captureMode: 'DEFAULT', hosts: ['./*'] }], outboundTrafficPolicy: { mode: 'ALLOW_ANY' } });
  assert.deepEqual(warnings(applied), []);
});

// ---- HTTPRoute and GRPCRoute ----

const SVC = { group: '', kind: 'Service', name: 'reviews', port: 9080 };
const BE = { name: 'reviews-v1', port: 9080 };
const meshRoute = (rule: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({ parentRefs: [SVC], rules: [{ backendRefs: [BE], ...rule }], ...extra });
/** Every refusal of `obj`, "path: message", after checking the Gateway API itself accepts it. */
const refusals = (obj: unknown): string[] => {
  assert.deepEqual(inspect(obj, 'x', true).problems.map(formatProblem), [], 'valid as the Gateway API sees it');
  try {
    checkResource(obj, 'x');
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.fields.map((f) => `${f.path}: ${f.message}`);
  }
  return [];
};

const SECTION = 'not supported yet; ignoring it would attach the route to every port of the Service';
const EXTENSION = 'extension filters are not supported; an extension filter Weft does not know could be a security control; ignoring it could widen traffic';
const perBackend = (type: string) => `${type} filters on a backendRef are not supported yet (only RequestHeaderModifier and ResponseHeaderModifier); ignoring it would send this backend's traffic as if the filter were not there`;

test('HTTPRoute: refused, naming the field: sectionName on a Service parent, backends of other kinds, extension filters, per-backend filters other than header modifiers', () => {
  assert.deepEqual(refusals(httpRoute({ parentRefs: [{ ...SVC, sectionName: 'http' }], rules: [{ backendRefs: [BE] }] })), [`spec.parentRefs[0].sectionName: ${SECTION}`]);
  assert.deepEqual(refusals(httpRoute(meshRoute({ backendRefs: [{ group: 'multicluster.x-k8s.io', kind: 'ServiceImport', name: 'store' }] }))), [
    'spec.rules[0].backendRefs[0].kind: a backend of kind ServiceImport (group multicluster.x-k8s.io) is not supported; its traffic would have nowhere to go',
  ]);
  assert.deepEqual(refusals(httpRoute(meshRoute({ backendRefs: [{ group: 'acme.io', kind: 'Service', name: 'x', port: 80 }] }))), [
    'spec.rules[0].backendRefs[0].group: a backend of kind Service (group acme.io) is not supported; its traffic would have nowhere to go',
  ]);
  assert.deepEqual(refusals(httpRoute(meshRoute({ filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { kind: 'Bucket', name: 'logs', port: 80 } } }] }))), [
    'spec.rules[0].filters[0].requestMirror.backendRef.kind: a backend of kind Bucket is not supported; its traffic would have nowhere to go',
  ]);
  // The core group spelled "core": a Service, which the CRD does not make name a port.
  assert.deepEqual(refusals(httpRoute(meshRoute({ backendRefs: [{ group: 'core', kind: 'Service', name: 'x' }] }))), [
    'spec.rules[0].backendRefs[0].port: a Service backend needs a port; without one its traffic would have nowhere to go',
  ]);
  assert.deepEqual(refusals(httpRoute(meshRoute({ filters: [{ type: 'ExtensionRef', extensionRef: { group: 'acme.io', kind: 'Auth', name: 'a' } }] }))), [`spec.rules[0].filters[0]: ${EXTENSION}`]);
  const backendFilters = [
    { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'a', value: 'b' }] } },
    { type: 'RequestMirror', requestMirror: { backendRef: { name: 'shadow', port: 80 } } },
    { type: 'URLRewrite', urlRewrite: { hostname: 'a.example' } },
    { type: 'CORS', cors: { allowOrigins: ['*'] } },
    { type: 'ExtensionRef', extensionRef: { group: 'acme.io', kind: 'Auth', name: 'a' } },
    { type: 'ResponseHeaderModifier', responseHeaderModifier: { remove: ['a'] } },
  ];
  assert.deepEqual(refusals(httpRoute(meshRoute({ backendRefs: [{ ...BE, filters: backendFilters }] }))), [
    `spec.rules[0].backendRefs[0].filters[1]: ${perBackend('RequestMirror')}`,
    `spec.rules[0].backendRefs[0].filters[2]: ${perBackend('URLRewrite')}`,
    `spec.rules[0].backendRefs[0].filters[3]: ${perBackend('CORS')}`,
    `spec.rules[0].backendRefs[0].filters[4]: ${EXTENSION}`,
  ]);
  assert.deepEqual(refusals(httpRoute({ parentRefs: [SVC], rules: [{ backendRefs: [{ ...BE, filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https' } }] }] }] })), [
    `spec.rules[0].backendRefs[0].filters[0]: ${perBackend('RequestRedirect')}`,
  ]);
});

test('HTTPRoute and GRPCRoute: regular expressions RE2 cannot compile are refused (the Gateway API leaves the dialect to Weft)', () => {
  const matches = [
    { path: { type: 'RegularExpression', value: '/(?<=a)b' } },
    { headers: [{ name: 'x', type: 'RegularExpression', value: '(a' }], queryParams: [{ name: 'q', type: 'RegularExpression', value: 'a{2,1}' }] },
    { path: { type: 'RegularExpression', value: '/a/[0-9]+' }, headers: [{ name: 'y', type: 'RegularExpression', value: '^b.*$' }] },
  ];
  const found = refusals(httpRoute(meshRoute({ matches })));
  assert.deepEqual(found.map((l) => l.split(': ')[0]), ['spec.rules[0].matches[0].path.value', 'spec.rules[0].matches[1].headers[0].value', 'spec.rules[0].matches[1].queryParams[0].value']);
  assert.ok(found.every((l) => /: Weft matches regular expressions with RE2 and cannot use this one \(invalid RE2 regex: .+\); ignoring the match would widen the route$/.test(l)), found.join('\n'));
  // An Exact value is not a regular expression.
  assert.deepEqual(refusals(httpRoute(meshRoute({ matches: [{ headers: [{ name: 'x', value: '(a' }] }] }))), []);
  const grpc = refusals(grpcRoute({ parentRefs: [SVC], rules: [{ matches: [{ method: { type: 'RegularExpression', service: 'a(', method: 'Get.*' } }], backendRefs: [BE] }] }));
  assert.equal(grpc.length, 1);
  assert.match(grpc[0] ?? '', /^spec\.rules\[0\]\.matches\[0\]\.method\.service: Weft matches regular expressions with RE2/);
});

test('GRPCRoute: the same parentRef, backendRef and filter refusals', () => {
  const rule = (r: Record<string, unknown>) => grpcRoute({ parentRefs: [SVC], rules: [{ backendRefs: [BE], ...r }] });
  assert.deepEqual(refusals(grpcRoute({ parentRefs: [{ ...SVC, sectionName: 'grpc' }] })), [`spec.parentRefs[0].sectionName: ${SECTION}`]);
  assert.deepEqual(refusals(rule({ backendRefs: [{ group: 'acme.io', kind: 'Backend', name: 'x' }] })), [
    'spec.rules[0].backendRefs[0].kind: a backend of kind Backend (group acme.io) is not supported; its traffic would have nowhere to go',
  ]);
  assert.deepEqual(refusals(rule({ filters: [{ type: 'ExtensionRef', extensionRef: { group: 'acme.io', kind: 'Auth', name: 'a' } }] })), [`spec.rules[0].filters[0]: ${EXTENSION}`]);
  assert.deepEqual(refusals(rule({ backendRefs: [{ ...BE, filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'shadow', port: 80 } } }] }] })), [
    `spec.rules[0].backendRefs[0].filters[0]: ${perBackend('RequestMirror')}`,
  ]);
});

test('HTTPRoute and GRPCRoute: backends and mirrors in another namespace are neither refused nor warned of (mesh routes need no ReferenceGrant: GEP-1294)', () => {
  const other = { ...BE, namespace: 'other' };
  const mirror = { type: 'RequestMirror', requestMirror: { backendRef: { name: 'shadow', port: 80, namespace: 'other' } } };
  for (const r of [httpRoute(meshRoute({ backendRefs: [other], filters: [mirror] })), grpcRoute({ parentRefs: [SVC], rules: [{ backendRefs: [other], filters: [mirror] }] })]) {
    assert.deepEqual(refusals(r), []);
    assert.deepEqual(warnings(r), []);
  }
  // The route's own namespace, written out, is a backend in the same namespace.
  assert.deepEqual(refusals(httpRoute(meshRoute({ backendRefs: [{ ...BE, namespace: 'shop' }] }), 'r', 'shop')), []);
});

test('HTTPRoute and GRPCRoute: Gateway and other non-Service parents and sessionPersistence are accepted with a warning on their field; CORS filters are applied', () => {
  const http = httpRoute({
    parentRefs: [{ name: 'gw' }, { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw2', sectionName: 'http' }, { group: 'multicluster.x-k8s.io', kind: 'ServiceImport', name: 'store' }, SVC, { kind: 'Service', name: 'ratings' }],
    rules: [{ backendRefs: [BE], filters: [{ type: 'CORS', cors: { allowOrigins: ['https://a.example'] } }], sessionPersistence: { cookie: { name: 's' } } }],
  });
  assert.deepEqual(pathsAndMessages(http), [
    'spec.parentRefs[0]: accepted, not applied yet: Weft has no gateways; the route is attached to none',
    'spec.parentRefs[1]: accepted, not applied yet: Weft has no gateways; the route is attached to none',
    'spec.parentRefs[2]: accepted, not applied yet: Weft attaches routes only to Services (kind Service, group ""); the route is attached to no ServiceImport of group multicluster.x-k8s.io',
    // A Service without group "" is in the Gateway API's group, where there is none.
    'spec.parentRefs[4]: accepted, not applied yet: Weft attaches routes only to Services (kind Service, group ""); the route is attached to no Service of group gateway.networking.k8s.io',
    'spec.rules[0].sessionPersistence: accepted, not applied yet: requests are not pinned to an endpoint',
  ]);
  assert.match(warnings(http)[0] ?? '', /^HTTPRoute default\/r: spec\.parentRefs\[0\]: /);
  const grpc = grpcRoute({ parentRefs: [{ name: 'gw' }], rules: [{ backendRefs: [BE], sessionPersistence: { type: 'Header', header: { name: 'x-s' } } }] });
  assert.deepEqual(pathsAndMessages(grpc), [
    'spec.parentRefs[0]: accepted, not applied yet: Weft has no gateways; the route is attached to none',
    'spec.rules[0].sessionPersistence: accepted, not applied yet: requests are not pinned to an endpoint',
  ]);
});

test('HTTPRoute and GRPCRoute: what Weft applies gets no warning, hostnames included (mesh routes ignore them)', () => {
  const http = httpRoute(
    {
      hostnames: ['reviews.example.com'],
      parentRefs: [SVC, { group: 'core', kind: 'Service', name: 'ratings', namespace: 'other', port: 9080 }],
      rules: [
        {
          name: 'canary',
          matches: [{ path: { type: 'PathPrefix', value: '/a' }, headers: [{ name: 'x-user', value: 'jason' }], queryParams: [{ name: 'q', type: 'RegularExpression', value: '^[0-9]+$' }], method: 'GET' }],
          filters: [
            { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'a', value: 'b' }], add: [{ name: 'c', value: 'd' }], remove: ['e'] } },
            { type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'a', value: 'b' }] } },
            { type: 'URLRewrite', urlRewrite: { hostname: 'reviews', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/b' } } },
            { type: 'RequestMirror', requestMirror: { backendRef: { name: 'shadow', port: 80, namespace: 'default' }, percent: 10 } },
            { type: 'RequestMirror', requestMirror: { backendRef: { kind: 'Service', name: 'shadow2', port: 80 }, fraction: { numerator: 1, denominator: 3 } } },
          ],
          backendRefs: [
            { ...BE, weight: 90, filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'v', value: '1' }] } }] },
            { group: '', kind: 'Service', name: 'reviews-v2', port: 9080, weight: 10, filters: [{ type: 'ResponseHeaderModifier', responseHeaderModifier: { remove: ['v'] } }] },
          ],
          timeouts: { request: '10s', backendRequest: '2s' },
          retry: { codes: [503], attempts: 3, backoff: '100ms' },
        },
        { matches: [{ path: { type: 'Exact', value: '/old' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', hostname: 'new.example', port: 443, statusCode: 301, path: { type: 'ReplaceFullPath', replaceFullPath: '/new' } } }] },
      ],
    },
    'r',
  );
  assert.deepEqual(refusals(http), []);
  assert.deepEqual(warnings(http), []);
  const grpc = grpcRoute({
    hostnames: ['users.example.com'],
    parentRefs: [{ group: '', kind: 'Service', name: 'users', port: 50051 }],
    rules: [{ matches: [{ method: { service: 'com.example.User', method: 'Login' }, headers: [{ name: 'env', value: 'canary' }] }], filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { add: [{ name: 'a', value: 'b' }] } }, { type: 'RequestMirror', requestMirror: { backendRef: { name: 'shadow', port: 50051 } } }], backendRefs: [{ name: 'users-v1', port: 50051, weight: 1 }] }],
  });
  assert.deepEqual(refusals(grpc), []);
  assert.deepEqual(warnings(grpc), []);
});

// ---- ReferenceGrant ----

test('ReferenceGrant: accepted with one warning on the resource: mesh routes need none (GEP-1294), and Weft attaches no route to a Gateway', () => {
  const grant = referenceGrant({ from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'shop' }], to: [{ group: '', kind: 'Service' }] });
  assert.deepEqual(refusals(grant), []);
  assert.deepEqual(pathsAndMessages(grant).map((m) => m.split(': a ReferenceGrant')[0]), ['spec: accepted, not applied yet']);
});

test('HTTPRoute and GRPCRoute: a Service name with dots is refused (it would take over another host); header modifiers the sidecar cannot apply are refused (review)', () => {
  const svc = (name: string) => ({ group: '', kind: 'Service', name, port: 80 });
  const route = httpRoute({
    parentRefs: [svc('reviews.default.svc.cluster.local')],
    rules: [
      {
        filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { remove: ['Host'] } }, { type: 'RequestMirror', requestMirror: { backendRef: { name: 'a.b', port: 80 } } }],
        backendRefs: [{ ...svc('secret.store'), filters: [{ type: 'ResponseHeaderModifier', responseHeaderModifier: { add: [{ name: 'Host', value: 'x' }] } }] }],
      },
    ],
  });
  assert.deepEqual(refusals(route).map((r) => r.split(': ')[0]).sort(), [
    'spec.parentRefs[0].name',
    'spec.rules[0].backendRefs[0].filters[0].responseHeaderModifier.add[0].name',
    'spec.rules[0].backendRefs[0].name',
    'spec.rules[0].filters[0].requestHeaderModifier.remove[0]',
    'spec.rules[0].filters[1].requestMirror.backendRef.name',
  ]);
});
