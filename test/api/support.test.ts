// What Weft cannot apply yet is never dropped in silence: fields whose loss would widen traffic or
// weaken security are refused by `weft apply`, naming the field; the rest are accepted with a
// warning naming the resource and the field (src/api/support.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkResource, formatProblem, warningsOf } from '../../src/api/index.ts';
import { destinationRule, virtualService } from './helpers.ts';

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
