// What Weft cannot apply yet is never dropped in silence: fields whose loss would widen traffic or
// weaken security are refused by `weft apply`, naming the field; the rest are accepted with a
// warning naming the resource and the field (src/api/support.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkResource, ConfigError, formatProblem, inspect, warningsOf } from '../../src/api/index.ts';
import { destinationRule, serviceEntry, sidecar, virtualService, workloadEntry } from './helpers.ts';

const route = { destination: { host: 'reviews' } };
const refused = (obj: unknown, re: RegExp) => assert.throws(() => checkResource(obj, 'x'), (e: Error) => re.test(e.message));
const warnings = (obj: unknown) => warningsOf(checkResource(obj, 'x')).map(formatProblem);

test('refused, naming the field: delegate, tls routes, tcp destinationSubnets, DestinationRule TLS, redirect codes Envoy cannot send', () => {
  refused(virtualService({ hosts: ['reviews'], http: [{ delegate: { name: 'other' } }] }), /^VirtualService default\/r: spec\.http\[0\]\.delegate: delegation is not supported yet/);
  refused(virtualService({ hosts: ['reviews'], tcp: [{ match: [{ destinationSubnets: ['10.0.0.0/8'] }], route: [route] }] }), /spec\.tcp\[0\]\.match\[0\]\.destinationSubnets: not supported/);
  checkResource(virtualService({ hosts: ['reviews'], tcp: [{ match: [{ port: 5432 }], route: [route] }] }), 'x');
  refused(virtualService({ hosts: ['reviews'], tls: [{ match: [{ sniHosts: ['reviews'] }], route: [route] }] }), /spec\.tls: tls routes are not supported yet/);
  refused(destinationRule({ host: 'reviews', trafficPolicy: { tls: { mode: 'SIMPLE' } } }), /spec\.trafficPolicy\.tls: TLS settings are not supported yet/);
  refused(destinationRule({ host: 'reviews', subsets: [{ name: 'v1', labels: { v: '1' }, trafficPolicy: { portLevelSettings: [{ port: { number: 80 }, tls: { mode: 'MUTUAL' } }] } }] }), /spec\.subsets\[0\]\.trafficPolicy\.portLevelSettings\[0\]\.tls/);
  refused(virtualService({ hosts: ['reviews'], http: [{ redirect: { uri: '/x', redirectCode: 300 } }] }), /spec\.http\[0\]\.redirect\.redirectCode: 300 cannot be sent/);
});

test('accepted with a warning naming the resource and field: retryRemoteLocalities, statPrefix, traffic policies', () => {
  const vs = virtualService({
    hosts: ['reviews'],
    http: [{ match: [{ statPrefix: 'x', uri: { prefix: '/' } }], retries: { attempts: 3, retryRemoteLocalities: true }, route: [route] }],
  });
  assert.deepEqual(warnings(vs).map((w) => w.split(': ').slice(0, 2).join(': ')), [
    'VirtualService default/r: spec.http[0].retries.retryRemoteLocalities',
    'VirtualService default/r: spec.http[0].match[0].statPrefix',
  ]);
  const dr = destinationRule({
    host: 'reviews',
    trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true } }, connectionPool: { tcp: { maxConnections: 5, tcpKeepalive: { time: '1s' } }, http: { maxRetries: 3 } }, outlierDetection: { consecutive5xxErrors: 3, splitExternalLocalOriginErrors: true } },
    exportTo: ['.'],
  });
  assert.deepEqual(warnings(dr).map((w) => w.split(': ')[1]), [
    'spec.trafficPolicy.loadBalancer.consistentHash.useSourceIp',
    'spec.trafficPolicy.connectionPool.tcp.tcpKeepalive',
    'spec.trafficPolicy.connectionPool.http.maxRetries',
    'spec.trafficPolicy.outlierDetection.splitExternalLocalOriginErrors',
    'spec.exportTo',
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
  assert.deepEqual(warnings(destinationRule({ host: 'reviews', subsets: [{ name: 'v1', labels: { v: '1' } }] })), []);
  const applied = { loadBalancer: { simple: 'LEAST_REQUEST' }, connectionPool: { tcp: { maxConnections: 5, connectTimeout: '1s' }, http: { http1MaxPendingRequests: 2 } }, outlierDetection: { consecutive5xxErrors: 3, consecutiveGatewayErrors: 2, interval: '1s', baseEjectionTime: '5s', maxEjectionPercent: 50, minHealthPercent: 20 } };
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
    'spec.endpoints[0].weight: accepted, not applied yet: endpoints of a ServiceEntry share traffic equally',
    'spec.endpoints[0].network: accepted, not applied yet: Weft has no networks',
    'spec.endpoints[0].locality: accepted, not applied yet: Weft has no localities',
    'spec.endpoints[0].serviceAccount: accepted, not applied yet: Weft has no workload identities until mTLS',
    'spec.endpoints[1].address: accepted, not applied yet: the sidecar does not dial unix sockets; this endpoint is left out',
    'spec.subjectAltNames: accepted, not applied yet: Weft has no workload identities until mTLS',
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

test('WorkloadEntry: weight, network, locality, serviceAccount and unix sockets are warnings; address, ports and labels are applied', () => {
  const we = workloadEntry({ address: 'unix:///var/run/app.sock', labels: { app: 'vm' }, weight: 2, network: 'west', locality: 'us-east', serviceAccount: 'vm' });
  assert.deepEqual(pathsAndMessages(we), [
    'spec.address: accepted, not applied yet: the sidecar does not dial unix sockets; this endpoint is left out',
    'spec.weight: accepted, not applied yet: endpoints of a ServiceEntry share traffic equally',
    'spec.network: accepted, not applied yet: Weft has no networks',
    'spec.locality: accepted, not applied yet: Weft has no localities',
    'spec.serviceAccount: accepted, not applied yet: Weft has no workload identities until mTLS',
  ]);
  assert.match(warnings(we)[0] ?? '', /^WorkloadEntry default\/r: spec\.address: /);
  assert.deepEqual(warnings(workloadEntry({ address: '10.0.0.7', ports: { http: 8080 }, labels: { app: 'vm' } })), []);
});

test('Sidecar: refused where ignoring the field would widen what a workload reaches', () => {
  refused(
    sidecar({ egress: [{ port: { number: 9080 }, hosts: ['./*'] }] }),
    /^Sidecar default\/r: spec\.egress\[0\]\.port: egress listeners on one port are not supported yet; ignoring the port would make these hosts reachable on every port$/,
  );
  refused(
    sidecar({ outboundTrafficPolicy: { mode: 'ALLOW_ANY', egressProxy: { host: 'egress.example.com', port: { number: 3128 } } } }),
    /^Sidecar default\/r: spec\.outboundTrafficPolicy\.egressProxy: not supported yet; ignoring it would send traffic to unknown hosts directly instead of through the egress proxy$/,
  );
  // Two listeners: each with a port is refused, and so is the second listener.
  const two = sidecar({ egress: [{ port: { number: 9080 }, hosts: ['./*'] }, { hosts: ['istio-system/*'] }] });
  assert.throws(
    () => checkResource(two, 'x'),
    (e: ConfigError) =>
      e.fields.map((f) => `${f.path}: ${f.message}`).join('\n') ===
      [
        'spec.egress[0].port: egress listeners on one port are not supported yet; ignoring the port would make these hosts reachable on every port',
        'spec.egress[1]: only one egress listener (without a port) is supported yet',
      ].join('\n'),
  );
  // As Istio sees them, both are valid (`weft analyze` compares with Istio on that basis).
  for (const obj of [two, sidecar({ egress: [{ port: { number: 9080 }, hosts: ['./*'] }] })]) assert.deepEqual(inspect(obj, 'x', true).problems, []);
});

test('Sidecar: bind, captureMode, ingress and inboundConnectionPool are warnings; selector, egress hosts and mode are applied', () => {
  const sc = sidecar({
    workloadSelector: { labels: { app: 'reviews' } },
    egress: [{ bind: '127.0.0.2', captureMode: 'NONE', hosts: ['./*', 'istio-system/*'] }],
    ingress: [{ port: { number: 9080, protocol: 'HTTP' }, defaultEndpoint: '127.0.0.1:8080' }],
    inboundConnectionPool: { tcp: { maxConnections: 10 } },
    outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' },
  });
  assert.deepEqual(pathsAndMessages(sc), [
    'spec.egress[0].bind: accepted, not applied yet: the sidecar keeps its own outbound listener address',
    'spec.egress[0].captureMode: accepted, not applied yet: apps reach the sidecar as their HTTP proxy; no traffic is captured',
    "spec.ingress: accepted, not applied yet: the sidecar's inbound listeners follow the workload's ports",
    "spec.inboundConnectionPool: accepted, not applied yet: the sidecar's default inbound connection limits apply",
  ]);
  assert.match(warnings(sc)[0] ?? '', /^Sidecar default\/r: spec\.egress\[0\]\.bind: /);
  const applied = sidecar({ workloadSelector: { labels: { app: 'reviews' } }, egress: [{ captureMode: 'DEFAULT', hosts: ['./*'] }], outboundTrafficPolicy: { mode: 'ALLOW_ANY' } });
  assert.deepEqual(warnings(applied), []);
});
