import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertAccepted, assertRejected, destinationRule, rejection, type Spec } from './helpers.ts';

const R = 'DestinationRule default/r';

/** A DestinationRule spec for host `reviews` with the given traffic policy. */
const policy = (trafficPolicy: Spec): Spec => ({ host: 'reviews', trafficPolicy });

const REJECTED: [string, Spec, string][] = [
  ['no host', { subsets: [{ name: 'v1', labels: { version: 'v1' } }] }, `${R}: spec.host: required`],
  ['invalid host', { host: 'reviews..shop' }, `${R}: spec.host: domain name "reviews..shop" invalid (label "" invalid)`],
  ['subset without name', { host: 'reviews', subsets: [{ labels: { version: 'v1' } }] }, `${R}: spec.subsets[0].name: required`],
  [
    'duplicate subset names',
    { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v1', labels: { version: 'v2' } }] },
    `${R}: spec.subsets[1].name: duplicate subset name "v1"`,
  ],
  [
    'subset name not a DNS label',
    { host: 'reviews', subsets: [{ name: 'v1.0', labels: { version: 'v1' } }] },
    `${R}: spec.subsets[0].name: subset name "v1.0" is invalid: must be a DNS-1123 label`,
  ],
  [
    'invalid subset label',
    { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1 beta' } }] },
    `${R}: spec.subsets[0].labels[version]: invalid label value "v1 beta": must be empty or at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`,
  ],
  [
    'label value not a string',
    { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 1.0 } }] },
    `${R}: spec.subsets[0].labels[version]: must be a string, not number 1`,
  ],
  ['empty traffic policy', policy({}), `${R}: spec.trafficPolicy: must set at least one field`],
  ['unknown field in traffic policy', policy({ tls: { mode: 'ISTIO_MUTUAL' }, retries: 3 }), `${R}: spec.trafficPolicy.retries: unknown field`],
  [
    'load balancer enum',
    policy({ loadBalancer: { simple: 'FASTEST' } }),
    `${R}: spec.trafficPolicy.loadBalancer.simple: must be one of UNSPECIFIED, LEAST_CONN, RANDOM, PASSTHROUGH, ROUND_ROBIN, LEAST_REQUEST (got "FASTEST")`,
  ],
  [
    'simple and consistentHash together',
    policy({ loadBalancer: { simple: 'RANDOM', consistentHash: { useSourceIp: true } } }),
    `${R}: spec.trafficPolicy.loadBalancer: only one of simple, consistentHash, backendUtilization may be set (got simple, consistentHash)`,
  ],
  [
    'consistent hash cookie without name',
    policy({ loadBalancer: { consistentHash: { httpCookie: { ttl: '0s' } } } }),
    `${R}: spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name: required`,
  ],
  [
    'maglev table size not prime',
    policy({ loadBalancer: { consistentHash: { httpHeaderName: 'x-user', maglev: { tableSize: 1000 } } } }),
    `${R}: spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize: must be a prime number`,
  ],
  [
    'locality weights not adding up to 100',
    policy({ loadBalancer: { localityLbSetting: { distribute: [{ from: 'us-west/*', to: { 'us-west/zone1': 60, 'us-east/*': 30 } }] } } }),
    `${R}: spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to: locality weights must add up to 100 (they add up to 90)`,
  ],
  [
    'warmup above 100 percent',
    policy({ loadBalancer: { warmup: { duration: '60s', minimumPercent: 101 } } }),
    `${R}: spec.trafficPolicy.loadBalancer.warmup.minimumPercent: must be between 0 and 100`,
  ],
  [
    'warmup aggression below 1 (Istio webhook rule)',
    policy({ loadBalancer: { warmup: { duration: '60s', aggression: 0.5 } } }),
    `${R}: spec.trafficPolicy.loadBalancer.warmup.aggression: must be at least 1`,
  ],
  ['connection pool with neither http nor tcp', policy({ connectionPool: {} }), `${R}: spec.trafficPolicy.connectionPool: must set http or tcp`],
  [
    'negative connection limit',
    policy({ connectionPool: { tcp: { maxConnections: -1 } } }),
    `${R}: spec.trafficPolicy.connectionPool.tcp.maxConnections: must not be negative`,
  ],
  [
    'connection pool integer given as text',
    policy({ connectionPool: { http: { http2MaxRequests: '100' } } }),
    `${R}: spec.trafficPolicy.connectionPool.http.http2MaxRequests: must be an integer, not the string "100"`,
  ],
  [
    'h2 upgrade with client protocol',
    policy({ connectionPool: { http: { h2UpgradePolicy: 'UPGRADE', useClientProtocol: true } } }),
    `${R}: spec.trafficPolicy.connectionPool.http.useClientProtocol: must not be true when h2UpgradePolicy is UPGRADE`,
  ],
  [
    'HTTP/2 keepalive without an interval',
    policy({ connectionPool: { http: { http2KeepAlive: { timeout: '5s' } } } }),
    `${R}: spec.trafficPolicy.connectionPool.http.http2KeepAlive.interval: required`,
  ],
  [
    'connect timeout not a duration',
    policy({ connectionPool: { tcp: { connectTimeout: '30' } } }),
    `${R}: spec.trafficPolicy.connectionPool.tcp.connectTimeout: must be a duration such as "1.5s", "100ms" or "1h"`,
  ],
  [
    'outlier detection interval',
    policy({ outlierDetection: { interval: '0s' } }),
    `${R}: spec.trafficPolicy.outlierDetection.interval: must be a duration of at least 1ms`,
  ],
  [
    'outlier detection percent',
    policy({ outlierDetection: { maxEjectionPercent: 120 } }),
    `${R}: spec.trafficPolicy.outlierDetection.maxEjectionPercent: must be between 0 and 100`,
  ],
  [
    'local origin failures without split',
    policy({ outlierDetection: { consecutiveLocalOriginFailures: 5 } }),
    `${R}: spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures: requires splitExternalLocalOriginErrors: true`,
  ],
  [
    'outlier error code out of range',
    policy({ outlierDetection: { outlierDetectionHttpErrorCodes: [503, 700] } }),
    `${R}: spec.trafficPolicy.outlierDetection.outlierDetectionHttpErrorCodes[1]: must be between 100 and 599`,
  ],
  ['tls mode enum', policy({ tls: { mode: 'STRICT' } }), `${R}: spec.trafficPolicy.tls.mode: must be one of DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL (got "STRICT")`],
  [
    'insecureSkipVerify with a CA',
    policy({ tls: { mode: 'SIMPLE', insecureSkipVerify: true, caCertificates: '/etc/ca.pem' } }),
    `${R}: spec.trafficPolicy.tls: cannot set caCertificates, credentialName or subjectAltNames when insecureSkipVerify is true`,
  ],
  [
    'port level settings without port',
    policy({ portLevelSettings: [{ loadBalancer: { simple: 'RANDOM' } }] }),
    `${R}: spec.trafficPolicy.portLevelSettings[0].port: required`,
  ],
  [
    'port level settings with only a port',
    policy({ portLevelSettings: [{ port: { number: 80 } }] }),
    `${R}: spec.trafficPolicy.portLevelSettings[0]: must set at least one of outlierDetection, connectionPool, loadBalancer or tls`,
  ],
  [
    'tunnel without target',
    policy({ tunnel: { protocol: 'CONNECT', targetPort: 8080 } }),
    `${R}: spec.trafficPolicy.tunnel.targetHost: required`,
  ],
  [
    'tunnel and proxy protocol together',
    policy({ tunnel: { targetHost: 'proxy.example.com', targetPort: 8080 }, proxyProtocol: { version: 'V1' } }),
    `${R}: spec.trafficPolicy: tunnel and proxyProtocol must not be set together`,
  ],
  [
    'subset traffic policy checked too',
    { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' }, trafficPolicy: { loadBalancer: { simple: 'NEAREST' } } }] },
    `${R}: spec.subsets[0].trafficPolicy.loadBalancer.simple: must be one of UNSPECIFIED, LEAST_CONN, RANDOM, PASSTHROUGH, ROUND_ROBIN, LEAST_REQUEST (got "NEAREST")`,
  ],
  [
    'workload selector wildcard',
    { host: 'reviews', workloadSelector: { matchLabels: { app: 'rev*' } } },
    `${R}: spec.workloadSelector.matchLabels[app]: wildcard not allowed in label value match`,
  ],
  [
    'workload selector exported elsewhere',
    { host: 'reviews', workloadSelector: { matchLabels: { app: 'reviews' } }, exportTo: ['other'] },
    `${R}: spec.exportTo: a destination rule with a workload selector cannot be exported beyond its own namespace`,
  ],
  ['exportTo public and more', { host: 'reviews', exportTo: ['*', 'shop'] }, `${R}: spec.exportTo: cannot have both public (*) and non-public exportTo values`],
];

describe('DestinationRule: rejected', () => {
  for (const [name, spec, message] of REJECTED) {
    test(name, () => assertRejected(destinationRule(spec), message));
  }

  test('MUTUAL TLS without certificates gives one line per missing field', () => {
    const err = rejection(destinationRule(policy({ tls: { mode: 'MUTUAL' } })));
    assert.equal(
      err.message,
      [
        `${R}: spec.trafficPolicy.tls.clientCertificate: required for MUTUAL mode (or set credentialName)`,
        `${R}: spec.trafficPolicy.tls.privateKey: required for MUTUAL mode (or set credentialName)`,
      ].join('\n'),
    );
  });
});

describe('DestinationRule: accepted', () => {
  const ACCEPTED: [string, Spec][] = [
    ['host only', { host: 'reviews' }],
    ['wildcard host', { host: '*.example.com' }],
    ['subset without labels (selects every endpoint, as in Istio)', { host: 'reviews', subsets: [{ name: 'all' }] }],
    [
      'a full traffic policy',
      policy({
        loadBalancer: { consistentHash: { httpCookie: { name: 'user', ttl: '0s' }, ringHash: { minimumRingSize: 1024 } } },
        connectionPool: { tcp: { maxConnections: 100, connectTimeout: '30ms', idleTimeout: '0s' }, http: { http2MaxRequests: 1000, maxRetries: 3 } },
        outlierDetection: { consecutive5xxErrors: 7, interval: '5m', baseEjectionTime: '15m', maxEjectionPercent: 50 },
        tls: { mode: 'ISTIO_MUTUAL', sni: 'reviews.shop' },
        portLevelSettings: [{ port: { number: 80 }, loadBalancer: { simple: 'LEAST_REQUEST' } }],
      }),
    ],
    ['maglev with a prime table', policy({ loadBalancer: { consistentHash: { useSourceIp: true, maglev: { tableSize: 65537 } } } })],
    ['locality failover', policy({ loadBalancer: { localityLbSetting: { enabled: true, failover: [{ from: 'us-east', to: 'eu-west' }] } }, outlierDetection: { consecutive5xxErrors: 5 } })],
    ['MUTUAL TLS from a credential', policy({ tls: { mode: 'MUTUAL', credentialName: 'client-cert' } })],
    ['nullable wrapper set to null', policy({ outlierDetection: { consecutive5xxErrors: null, interval: '10s' } })],
  ];
  for (const [name, spec] of ACCEPTED) {
    test(name, () => assertAccepted(destinationRule(spec)));
  }
});
