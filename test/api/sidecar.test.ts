import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertAccepted, assertRejected, rejection, sidecar, type Spec } from './helpers.ts';

const R = 'Sidecar default/r';

/** A Sidecar spec with one egress listener for these hosts. */
const egress = (...hosts: string[]): Spec => ({ egress: [{ hosts }] });
/** A Sidecar spec with one ingress listener, merged with `extra`. */
const ingress = (extra: Spec, port: Spec = { number: 9080, name: 'http', protocol: 'HTTP' }): Spec => ({ ingress: [{ port, ...extra }] });
const HTTPS = { number: 8443, name: 'https', protocol: 'HTTPS' };
const CERTS = { serverCertificate: '/etc/certs/cert.pem', privateKey: '/etc/certs/key.pem' };

const REJECTED: [string, Spec, string][] = [
  ['nothing configured', {}, `${R}: spec: must set at least one of egress, ingress, outboundTrafficPolicy or inboundConnectionPool`],
  ['only an empty egress list', { egress: [] }, `${R}: spec: must set at least one of egress, ingress, outboundTrafficPolicy or inboundConnectionPool`],
  ['selector value with a wildcard (CEL)', { ...egress('./*'), workloadSelector: { labels: { app: '*' } } }, `${R}: spec.workloadSelector.labels[app]: wildcard not allowed in label value match`],
  // egress hosts
  ['egress listener without hosts', { egress: [{}] }, `${R}: spec.egress[0].hosts: required`],
  ['egress listener with an empty host list', { egress: [{ hosts: [] }] }, `${R}: spec.egress[0].hosts: at least one host is required`],
  ['host without a namespace', egress('reviews.default.svc.cluster.local'), `${R}: spec.egress[0].hosts[0]: must be namespace/dnsName, e.g. "./reviews.default.svc.cluster.local" or "istio-system/*"`],
  ['host with an empty namespace', egress('/reviews.default.svc.cluster.local'), `${R}: spec.egress[0].hosts[0]: the namespace and the dnsName must not be empty`],
  ['host with an invalid namespace', egress('bad_ns/*'), `${R}: spec.egress[0].hosts[0]: invalid namespace "bad_ns"`],
  ['host with a short name', egress('./reviews'), `${R}: spec.egress[0].hosts[0]: "reviews" is a short name: write the full name (e.g. reviews.default.svc.cluster.local)`],
  ['host with a partial wildcard', egress('*/*reviews.example.com'), `${R}: spec.egress[0].hosts[0]: partial wildcard "*reviews.example.com" is not allowed`],
  ['host that is not a domain name', egress('./reviews..example.com'), `${R}: spec.egress[0].hosts[0]: domain name "reviews..example.com" invalid (label "" invalid)`],
  // egress listeners and ports
  [
    'listener without a port that is not the last',
    { egress: [{ hosts: ['./*'] }, { port: { number: 9080 }, hosts: ['./*'] }] },
    `${R}: spec.egress[0]: the egress listener without a port must be the last one (and the only one)`,
  ],
  ['two listeners without a port', { egress: [{ hosts: ['./*'] }, { hosts: ['istio-system/*'] }] }, `${R}: spec.egress[0]: the egress listener without a port must be the last one (and the only one)`],
  ['egress targetPort', { egress: [{ port: { number: 9080, targetPort: 8080 }, hosts: ['./*'] }] }, `${R}: spec.egress[0].port.targetPort: has no effect in a Sidecar: leave it out`],
  ['egress port name not a DNS label', { egress: [{ port: { number: 9080, name: 'http_1' }, hosts: ['./*'] }] }, `${R}: spec.egress[0].port.name: invalid port name "http_1": must be a DNS-1123 label`],
  [
    'egress port protocol unknown',
    { egress: [{ port: { number: 9080, protocol: 'QUIC' }, hosts: ['./*'] }] },
    `${R}: spec.egress[0].port.protocol: unsupported protocol "QUIC": must be one of TCP, UDP, GRPC, GRPC-Web, HTTP, HTTP_PROXY, HTTP2, HTTPS, TLS, Mongo, Redis, MySQL`,
  ],
  ['egress port number above 65535', { egress: [{ port: { number: 70000 }, hosts: ['./*'] }] }, `${R}: spec.egress[0].port.number: port number 70000 must be in the range 1..65535`],
  ['egress bind that is not an IP', { egress: [{ port: { number: 9080 }, bind: 'localhost', hosts: ['./*'] }] }, `${R}: spec.egress[0].bind: "localhost" is not an IP address`],
  [
    'two egress listeners on one port',
    { egress: [{ port: { number: 9080 }, hosts: ['./*'] }, { port: { number: 9080 }, bind: '127.0.0.2', hosts: ['./*'] }] },
    `${R}: spec.egress[1].port.number: port 9080 is used by another egress listener`,
  ],
  ['port 0 without a unix socket to bind', { egress: [{ port: { number: 0 }, hosts: ['./*'] }] }, `${R}: spec.egress[0].bind: a listener on port 0 must bind a unix domain socket (unix:///path)`],
  ['port 0 binding a relative unix path', { egress: [{ port: { number: 0 }, bind: 'unix://app.sock', hosts: ['./*'] }] }, `${R}: spec.egress[0].bind: "app.sock" must be an absolute path (unix:///path) or an abstract socket (unix://@name)`],
  ['port 0 with captureMode IPTABLES', { egress: [{ port: { number: 0 }, bind: 'unix:///var/run/out.sock', captureMode: 'IPTABLES', hosts: ['./*'] }] }, `${R}: spec.egress[0].captureMode: must be DEFAULT or NONE for a unix domain socket listener`],
  [
    'two listeners on one unix socket',
    { egress: [{ port: { number: 0 }, bind: 'unix:///var/run/out.sock', hosts: ['./*'] }, { port: { number: 0 }, bind: 'unix:///var/run/out.sock', hosts: ['istio-system/*'] }] },
    `${R}: spec.egress[1].bind: the unix socket "unix:///var/run/out.sock" is bound by another egress listener`,
  ],
  ['captureMode enum', { egress: [{ captureMode: 'TPROXY', hosts: ['./*'] }] }, `${R}: spec.egress[0].captureMode: must be one of DEFAULT, IPTABLES, NONE (got "TPROXY")`],
  // ingress
  ['ingress listener without a port', { ingress: [{ defaultEndpoint: '127.0.0.1:8080' }] }, `${R}: spec.ingress[0].port: required`],
  ['ingress port number 0', ingress({}, { number: 0 }), `${R}: spec.ingress[0].port.number: port number 0 must be in the range 1..65535`],
  ['ingress targetPort', ingress({}, { number: 9080, targetPort: 8080 }), `${R}: spec.ingress[0].port.targetPort: has no effect in a Sidecar: leave it out`],
  [
    'two ingress listeners on one port',
    { ingress: [{ port: { number: 9080 } }, { port: { number: 9080 }, bind: '10.0.0.1' }] },
    `${R}: spec.ingress[1].port.number: port 9080 is used by another ingress listener`,
  ],
  ['ingress bind that is not an IP', ingress({ bind: '0.0.0.0:80' }), `${R}: spec.ingress[0].bind: "0.0.0.0:80" is not an IP address`],
  ['default endpoint on another host', ingress({ defaultEndpoint: '10.0.0.1:8080' }), `${R}: spec.ingress[0].defaultEndpoint: must be 127.0.0.1:PORT, 0.0.0.0:PORT, [::1]:PORT, [::]:PORT, :PORT or unix:///path`],
  ['default endpoint without a port', ingress({ defaultEndpoint: '127.0.0.1' }), `${R}: spec.ingress[0].defaultEndpoint: must be 127.0.0.1:PORT, 0.0.0.0:PORT, [::1]:PORT, [::]:PORT, :PORT or unix:///path`],
  ['default endpoint with an IPv6 address out of brackets', ingress({ defaultEndpoint: '::1:8080' }), `${R}: spec.ingress[0].defaultEndpoint: must be 127.0.0.1:PORT, 0.0.0.0:PORT, [::1]:PORT, [::]:PORT, :PORT or unix:///path`],
  ['default endpoint port not a number', ingress({ defaultEndpoint: '127.0.0.1:http' }), `${R}: spec.ingress[0].defaultEndpoint: port "http" is not a number`],
  ['default endpoint port out of range', ingress({ defaultEndpoint: ':70000' }), `${R}: spec.ingress[0].defaultEndpoint: port number 70000 must be in the range 1..65535`],
  ['default endpoint unix socket that is a directory', ingress({ defaultEndpoint: 'unix:///var/run/' }), `${R}: spec.ingress[0].defaultEndpoint: "/var/run/" names a directory, not a socket`],
  // ingress TLS
  ['TLS on an HTTP port', ingress({ tls: { mode: 'SIMPLE', ...CERTS } }), `${R}: spec.ingress[0].tls: TLS settings need a port whose protocol is HTTPS or TLS`],
  ['TLS from a credential', ingress({ tls: { mode: 'SIMPLE', credentialName: 'cert' } }, HTTPS), `${R}: spec.ingress[0].tls.credentialName: not supported in a sidecar's ingress TLS: use serverCertificate and privateKey`],
  ['TLS ISTIO_MUTUAL', ingress({ tls: { mode: 'ISTIO_MUTUAL' } }, HTTPS), `${R}: spec.ingress[0].tls.mode: ISTIO_MUTUAL is not allowed in a sidecar's ingress TLS`],
  ['TLS AUTO_PASSTHROUGH', ingress({ tls: { mode: 'AUTO_PASSTHROUGH' } }, HTTPS), `${R}: spec.ingress[0].tls.mode: AUTO_PASSTHROUGH is not allowed in a sidecar's ingress TLS`],
  ['TLS httpsRedirect', ingress({ tls: { mode: 'SIMPLE', httpsRedirect: true, ...CERTS } }, HTTPS), `${R}: spec.ingress[0].tls.httpsRedirect: not supported in a sidecar's ingress TLS`],
  ['TLS subjectAltNames', ingress({ tls: { mode: 'MUTUAL', caCertificates: '/etc/ca.pem', subjectAltNames: ['a'], ...CERTS } }, HTTPS), `${R}: spec.ingress[0].tls.subjectAltNames: not supported in a sidecar's ingress TLS`],
  ['MUTUAL TLS without a CA', ingress({ tls: { mode: 'MUTUAL', ...CERTS } }, HTTPS), `${R}: spec.ingress[0].tls.caCertificates: required for MUTUAL mode`],
  ['OPTIONAL_MUTUAL TLS without a CA', ingress({ tls: { mode: 'OPTIONAL_MUTUAL', ...CERTS } }, HTTPS), `${R}: spec.ingress[0].tls.caCertificates: required for OPTIONAL_MUTUAL mode`],
  ['a CRL with SIMPLE TLS', ingress({ tls: { mode: 'SIMPLE', caCrl: '/etc/crl.pem', ...CERTS } }, HTTPS), `${R}: spec.ingress[0].tls.caCrl: not supported with SIMPLE TLS`],
  ['TLS mode enum', ingress({ tls: { mode: 'STRICT' } }, HTTPS), `${R}: spec.ingress[0].tls.mode: must be one of PASSTHROUGH, SIMPLE, MUTUAL, AUTO_PASSTHROUGH, ISTIO_MUTUAL, OPTIONAL_MUTUAL (got "STRICT")`],
  ['TLS credentialNames empty (CRD minItems)', ingress({ tls: { credentialNames: [] } }, HTTPS), `${R}: spec.ingress[0].tls.credentialNames: must not be empty`],
  // connection pools
  ['inbound connection pool with neither http nor tcp', { inboundConnectionPool: {} }, `${R}: spec.inboundConnectionPool: must set http or tcp`],
  ['HTTP/2 keepalive without a timeout', { inboundConnectionPool: { http: { http2KeepAlive: { interval: '10s' } } } }, `${R}: spec.inboundConnectionPool.http.http2KeepAlive.timeout: required`],
  ['ingress connection pool idle timeout below 1ms (CEL)', ingress({ connectionPool: { http: { idleTimeout: '100us' } } }), `${R}: spec.ingress[0].connectionPool.http.idleTimeout: must be a duration of at least 1ms`],
  // outbound traffic policy
  ['outbound mode enum', { outboundTrafficPolicy: { mode: 'ALLOW_ANY_DYNAMIC_DNS' } }, `${R}: spec.outboundTrafficPolicy.mode: must be one of REGISTRY_ONLY, ALLOW_ANY (got "ALLOW_ANY_DYNAMIC_DNS")`],
  [
    'egress proxy with REGISTRY_ONLY (the default)',
    { outboundTrafficPolicy: { egressProxy: { host: 'egress.example.com', port: { number: 3128 } } } },
    `${R}: spec.outboundTrafficPolicy.egressProxy: can only be set with mode ALLOW_ANY`,
  ],
  ['egress proxy without a port', { outboundTrafficPolicy: { mode: 'ALLOW_ANY', egressProxy: { host: 'egress.example.com' } } }, `${R}: spec.outboundTrafficPolicy.egressProxy.port: required`],
  [
    'egress proxy host with a wildcard',
    { outboundTrafficPolicy: { mode: 'ALLOW_ANY', egressProxy: { host: '*.example.com', port: { number: 3128 } } } },
    `${R}: spec.outboundTrafficPolicy.egressProxy.host: domain name "*.example.com" invalid (label "*" invalid)`,
  ],
  [
    'egress proxy subset not a DNS label',
    { outboundTrafficPolicy: { mode: 'ALLOW_ANY', egressProxy: { host: 'egress.example.com', subset: 'v1.0', port: { number: 3128 } } } },
    `${R}: spec.outboundTrafficPolicy.egressProxy.subset: subset name "v1.0" is invalid: must be a DNS-1123 label`,
  ],
  [
    'egress proxy port 0',
    { outboundTrafficPolicy: { mode: 'ALLOW_ANY', egressProxy: { host: 'egress.example.com', port: {} } } },
    `${R}: spec.outboundTrafficPolicy.egressProxy.port.number: port number 0 must be in the range 1..65535`,
  ],
];

describe('Sidecar: rejected', () => {
  for (const [name, spec, message] of REJECTED) {
    test(name, () => assertRejected(sidecar(spec), message));
  }

  test('SIMPLE TLS without certificates gives one line per missing field', () => {
    const err = rejection(sidecar(ingress({ tls: { mode: 'SIMPLE' } }, HTTPS)));
    assert.equal(
      err.message,
      [`${R}: spec.ingress[0].tls.serverCertificate: required for SIMPLE mode`, `${R}: spec.ingress[0].tls.privateKey: required for SIMPLE mode`].join('\n'),
    );
  });

  test('credentialName with credentialNames breaks the CRD rule on the tls object, and each is refused in a sidecar', () => {
    const err = rejection(sidecar(ingress({ tls: { mode: 'SIMPLE', credentialName: 'a', credentialNames: ['b'] } }, HTTPS)));
    assert.deepEqual(err.fields.map((e) => e.path), ['spec.ingress[0].tls', 'spec.ingress[0].tls.credentialName', 'spec.ingress[0].tls.credentialNames']);
  });
});

describe('Sidecar: accepted', () => {
  const ACCEPTED: [string, Spec][] = [
    ['the dataset example', egress('abc/*')],
    ['every kind of egress host', egress('./*', '*/*', 'istio-system/*', '~shop/*', './reviews.default.svc.cluster.local', 'shop/*.example.com', '*/api.example.com.')],
    ['listeners on ports, then one catching the rest', { egress: [{ port: { number: 9080, protocol: 'HTTP', name: 'http' }, bind: '127.0.0.2', hosts: ['./*'] }, { port: { number: 5432, protocol: 'tcp' }, hosts: ['db/*'] }, { hosts: ['istio-system/*'] }] }],
    ['a unix socket listener', { egress: [{ port: { number: 0, protocol: 'HTTP' }, bind: 'unix:///var/run/out.sock', captureMode: 'NONE', hosts: ['./*'] }] }],
    ['an abstract unix socket listener', { egress: [{ port: {}, bind: 'unix://@out', hosts: ['./*'] }] }],
    ['outbound traffic policy alone', { outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } }],
    ['an egress proxy with ALLOW_ANY', { outboundTrafficPolicy: { mode: 'ALLOW_ANY', egressProxy: { host: 'egress.example.com', subset: 'v1', port: { number: 3128 } } } }],
    ['an inbound connection pool alone', { inboundConnectionPool: { http: { http1MaxPendingRequests: 100, http2KeepAlive: { interval: '10s', timeout: '2s' } }, tcp: { maxConnections: 50 } } }],
    ['ingress with default endpoints', { ingress: [{ port: { number: 9080 }, defaultEndpoint: '127.0.0.1:8080' }, { port: { number: 9081 }, defaultEndpoint: '[::1]:8081' }, { port: { number: 9082 }, defaultEndpoint: ':8082' }, { port: { number: 9083 }, defaultEndpoint: 'unix:///var/run/app.sock', bind: '0.0.0.0' }] }],
    ['ingress SIMPLE TLS with certificates', ingress({ tls: { mode: 'SIMPLE', ...CERTS } }, HTTPS)],
    ['ingress MUTUAL TLS with certificates and a CA', ingress({ tls: { mode: 'MUTUAL', caCertificates: '/etc/ca.pem', caCrl: '/etc/crl.pem', ...CERTS } }, HTTPS)],
    ['ingress PASSTHROUGH TLS on a TLS port', ingress({ tls: { mode: 'PASSTHROUGH' } }, { number: 9443, protocol: 'TLS' })],
    ['a workload selector', { ...egress('./*'), workloadSelector: { labels: { app: 'reviews' } } }],
  ];
  for (const [name, spec] of ACCEPTED) {
    test(name, () => assertAccepted(sidecar(spec)));
  }
});
