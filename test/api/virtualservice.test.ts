import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { validateResource, type Resource } from '../../src/api/index.ts';
import { assertAccepted, assertRejected, rejection, virtualService, vsSpec, type Spec } from './helpers.ts';

/** One rejected case: a spec and the exact message checkResource gives for it. */
interface Rejected {
  readonly name: string;
  readonly spec: Spec;
  readonly message: string;
}

const one = (destination: Spec, extra: Spec = {}): Spec => ({ destination: { host: 'reviews', ...destination }, ...extra });
const R = 'VirtualService default/r';

const REJECTED: Rejected[] = [
  // hosts
  // no hosts: a delegate (Istio's rules for one)
  {
    name: 'a delegate with gateways',
    spec: { gateways: ['istio-system/ingress'], http: [{ route: [one({})] }] },
    message: `${R}: spec.gateways: a delegate VirtualService (one without hosts) must have no gateways: its roots bind it`,
  },
  {
    name: 'a delegate with tcp routes',
    spec: { hosts: [], tcp: [{ route: [one({})] }] },
    message: `${R}: spec.tcp: a delegate VirtualService (one without hosts) must have no tcp routes: only http routes are delegated`,
  },
  {
    name: 'a delegate with tls routes',
    spec: { tls: [{ match: [{ sniHosts: ['db.example.com'] }], route: [one({})] }] },
    message: [
      `${R}: spec.tls: a delegate VirtualService (one without hosts) must have no tls routes: only http routes are delegated`,
      `${R}: spec.tls[0].match[0].sniHosts[0]: SNI host "db.example.com" is not covered by any of the virtual service's hosts ()`,
    ].join('\n'),
  },
  {
    name: 'a delegate that delegates',
    spec: { http: [{ delegate: { name: 'further' } }] },
    message: `${R}: spec.http[0].delegate: a delegate VirtualService (one without hosts) cannot delegate further`,
  },
  { name: 'a delegate without routes', spec: { hosts: [] }, message: `${R}: spec: at least one of http, tcp or tls routes is required` },
  {
    name: 'a delegate route with no action',
    spec: { http: [{ match: [{ uri: { prefix: '/a' } }] }] },
    message: `${R}: spec.http[0]: one of route, redirect, directResponse or delegate is required`,
  },
  {
    name: 'invalid host name',
    spec: vsSpec({}, { hosts: ['bad_host.example.com'] }),
    message: `${R}: spec.hosts[0]: domain name "bad_host.example.com" invalid (label "bad_host" invalid)`,
  },
  {
    name: 'wildcard in the middle of a host',
    spec: vsSpec({}, { hosts: ['a.*.example.com'] }),
    message: `${R}: spec.hosts[0]: domain name "a.*.example.com" invalid (label "*" invalid)`,
  },
  {
    name: 'host "*" bound to the mesh',
    spec: vsSpec({}, { hosts: ['*'] }),
    message: `${R}: spec.hosts[0]: wildcard host * is not allowed for virtual services bound to the mesh`,
  },
  {
    name: 'overlapping hosts',
    spec: vsSpec({}, { hosts: ['*.example.com', 'a.example.com'] }),
    message: `${R}: spec.hosts[1]: duplicate host: "a.example.com" overlaps "*.example.com"`,
  },
  { name: 'hosts not a list', spec: vsSpec({}, { hosts: 'reviews' }), message: `${R}: spec.hosts: must be a list, not the string "reviews"` },
  // what a route does
  { name: 'no routes at all', spec: { hosts: ['reviews'] }, message: `${R}: spec: at least one of http, tcp or tls routes is required` },
  {
    name: 'http route with no action',
    spec: { hosts: ['reviews'], http: [{ match: [{ uri: { prefix: '/' } }] }] },
    message: `${R}: spec.http[0]: one of route, redirect, directResponse or delegate is required`,
  },
  {
    name: 'route and redirect together',
    spec: vsSpec({ redirect: { uri: '/v2' } }),
    message: `${R}: spec.http[0].route: must not be set together with redirect`,
  },
  {
    name: 'route and directResponse together',
    spec: vsSpec({ directResponse: { status: 503 } }),
    message: `${R}: spec.http[0].route: must not be set together with directResponse`,
  },
  {
    name: 'delegate and redirect together',
    spec: { hosts: ['reviews'], http: [{ delegate: { name: 'reviews-delegate' }, redirect: { uri: '/v2' } }] },
    message: `${R}: spec.http[0].redirect: must not be set together with delegate`,
  },
  {
    name: 'delegate and route together',
    spec: vsSpec({ delegate: { name: 'reviews-delegate' } }),
    message: `${R}: spec.http[0].route: must not be set together with delegate`,
  },
  {
    name: 'redirect without a target',
    spec: { hosts: ['reviews'], http: [{ redirect: { redirectCode: 301 } }] },
    message: `${R}: spec.http[0].redirect: must set at least one of uri, authority, scheme or port`,
  },
  {
    name: 'redirect code not 3xx',
    spec: { hosts: ['reviews'], http: [{ redirect: { uri: '/x', redirectCode: 200 } }] },
    message: `${R}: spec.http[0].redirect.redirectCode: must be a 3xx status code`,
  },
  {
    name: 'redirect enum',
    spec: { hosts: ['reviews'], http: [{ redirect: { derivePort: 'FROM_ANYWHERE' } }] },
    message: `${R}: spec.http[0].redirect.derivePort: must be one of FROM_PROTOCOL_DEFAULT, FROM_REQUEST_PORT (got "FROM_ANYWHERE")`,
  },
  {
    name: 'directResponse without status',
    spec: { hosts: ['reviews'], http: [{ directResponse: { body: { string: 'no' } } }] },
    message: `${R}: spec.http[0].directResponse.status: required`,
  },
  {
    name: 'directResponse status out of range',
    spec: { hosts: ['reviews'], http: [{ directResponse: { status: 700 } }] },
    message: `${R}: spec.http[0].directResponse.status: must be an HTTP status between 200 and 599`,
  },
  // destinations and weights
  {
    name: 'destination without host',
    spec: vsSpec({ route: [{ destination: { subset: 'v1' } }] }),
    message: `${R}: spec.http[0].route[0].destination.host: required`,
  },
  {
    name: 'route entry without destination',
    spec: vsSpec({ route: [{ weight: 100 }] }),
    message: `${R}: spec.http[0].route[0].destination: required`,
  },
  {
    name: 'destination host "*"',
    spec: vsSpec({ route: [{ destination: { host: '*' } }] }),
    message: `${R}: spec.http[0].route[0].destination.host: a destination host cannot be *`,
  },
  {
    name: 'weight above 100',
    spec: vsSpec({ route: [one({ subset: 'v1' }, { weight: 90 }), one({ subset: 'v2' }, { weight: 150 })] }),
    message: `${R}: spec.http[0].route[1].weight: must be between 0 and 100`,
  },
  {
    name: 'negative weight',
    spec: vsSpec({ route: [one({ subset: 'v1' }, { weight: 100 }), one({ subset: 'v2' }, { weight: -5 })] }),
    message: `${R}: spec.http[0].route[1].weight: must be between 0 and 100`,
  },
  {
    name: 'fractional weight',
    spec: vsSpec({ route: [one({}, { weight: 50.5 })] }),
    message: `${R}: spec.http[0].route[0].weight: must be an integer, not number 50.5`,
  },
  {
    name: 'several destinations, no weights',
    spec: vsSpec({ route: [one({ subset: 'v1' }), one({ subset: 'v2' })] }),
    message: `${R}: spec.http[0].route: with more than one destination, set their weights: they are all 0`,
  },
  {
    name: 'subset name not a DNS label',
    spec: vsSpec({ route: [one({ subset: 'v1_beta' })] }),
    message: `${R}: spec.http[0].route[0].destination.subset: subset name "v1_beta" is invalid: must be a DNS-1123 label`,
  },
  {
    name: 'destination port out of range',
    spec: vsSpec({ route: [one({ port: { number: 70000 } })] }),
    message: `${R}: spec.http[0].route[0].destination.port.number: port number 70000 must be in the range 1..65535`,
  },
  // durations
  {
    name: 'timeout not a duration',
    spec: vsSpec({ timeout: 'soon' }),
    message: `${R}: spec.http[0].timeout: must be a duration such as "1.5s", "100ms" or "1h"`,
  },
  {
    name: 'timeout without a unit',
    spec: vsSpec({ timeout: '10' }),
    message: `${R}: spec.http[0].timeout: must be a duration such as "1.5s", "100ms" or "1h"`,
  },
  { name: 'timeout below 1ms', spec: vsSpec({ timeout: '500us' }), message: `${R}: spec.http[0].timeout: must be a duration of at least 1ms` },
  {
    name: 'timeout finer than a millisecond',
    spec: vsSpec({ timeout: '1.0005s' }),
    message: `${R}: spec.http[0].timeout: must be a whole number of milliseconds`,
  },
  {
    name: 'perTryTimeout not a duration',
    spec: vsSpec({ retries: { attempts: 3, perTryTimeout: '2 seconds' } }),
    message: `${R}: spec.http[0].retries.perTryTimeout: must be a duration such as "1.5s", "100ms" or "1h"`,
  },
  {
    name: 'retry settings with zero attempts',
    spec: vsSpec({ retries: { perTryTimeout: '2s' } }),
    message: `${R}: spec.http[0].retries.attempts: must be at least 1 when perTryTimeout, retryOn or retryRemoteLocalities is set (0 disables retries)`,
  },
  {
    name: 'unknown retryOn policy',
    spec: vsSpec({ retries: { attempts: 2, retryOn: '5xx,sometimes' } }),
    message: `${R}: spec.http[0].retries.retryOn: "sometimes" is not a valid retryOn policy`,
  },
  // string matches
  {
    name: 'string match with two kinds',
    spec: vsSpec({ match: [{ uri: { exact: '/a', prefix: '/b' } }] }),
    message: `${R}: spec.http[0].match[0].uri: only one of exact, prefix, regex, suffix may be set (got exact, prefix)`,
  },
  {
    name: 'empty uri match',
    spec: vsSpec({ match: [{ uri: {} }] }),
    message: `${R}: spec.http[0].match[0].uri: one of exact, prefix, regex or suffix is required`,
  },
  {
    name: 'regex that does not compile',
    spec: vsSpec({ match: [{ headers: { 'end-user': { regex: 'jas(on' } } }] }),
    message: `${R}: spec.http[0].match[0].headers[end-user].regex: invalid RE2 regex: missing closing ): \`jas(on\``,
  },
  {
    name: 'regex with lookahead (not RE2)',
    spec: vsSpec({ match: [{ uri: { regex: '/a(?=b)' } }] }),
    message: `${R}: spec.http[0].match[0].uri.regex: invalid RE2 regex: invalid or unsupported Perl syntax: \`(?=\``,
  },
  {
    name: 'empty method prefix',
    spec: vsSpec({ match: [{ method: { prefix: '' } }] }),
    message: `${R}: spec.http[0].match[0].method.prefix: must not be empty`,
  },
  {
    name: 'upper-case header name',
    spec: vsSpec({ match: [{ headers: { 'X-User': { exact: 'a' } } }] }),
    message: `${R}: spec.http[0].match[0].headers[X-User]: header name "X-User" must be lower case`,
  },
  {
    name: 'header name with a space',
    spec: vsSpec({ match: [{ withoutHeaders: { 'x user': { exact: 'a' } } }] }),
    message: `${R}: spec.http[0].match[0].withoutHeaders[x user]: header name "x user" is not a valid header name`,
  },
  {
    name: 'JWT claim routing on the mesh',
    spec: vsSpec({ match: [{ headers: { '@request.auth.claims.group': { exact: 'admin' } } }] }),
    message: `${R}: spec.http[0].match[0].headers[@request.auth.claims.group]: routing on JWT claims is only supported for virtual services bound to a gateway`,
  },
  {
    name: 'match port out of range',
    spec: vsSpec({ match: [{ port: 65536 }] }),
    message: `${R}: spec.http[0].match[0].port: port number 65536 must be in the range 1..65535`,
  },
  // unknown fields and types
  { name: 'unknown field in spec', spec: vsSpec({}, { host: 'reviews' }), message: `${R}: spec.host: unknown field` },
  {
    name: 'unknown field in a route',
    spec: vsSpec({ retry: { attempts: 3 } }),
    message: `${R}: spec.http[0].retry: unknown field`,
  },
  {
    name: 'unknown field in a destination',
    spec: vsSpec({ route: [one({ version: 'v1' })] }),
    message: `${R}: spec.http[0].route[0].destination.version: unknown field`,
  },
  {
    name: 'wrong type',
    spec: vsSpec({ match: [{ ignoreUriCase: 'yes' }] }),
    message: `${R}: spec.http[0].match[0].ignoreUriCase: must be a boolean (true or false), not the string "yes"`,
  },
  // the rest of an HTTP route
  {
    name: 'header manipulation of a pseudo-header',
    spec: vsSpec({ headers: { request: { set: { ':path': '/x' } } } }),
    message: `${R}: spec.http[0].headers.request.set[:path]: invalid header ":path": header cannot have ":" prefix`,
  },
  {
    name: 'authority rewritten twice',
    spec: vsSpec({ rewrite: { authority: 'a.example.com' }, headers: { request: { set: { host: 'b.example.com' } } } }),
    message: `${R}: spec.http[0].headers.request.set[host]: the authority is already rewritten to "a.example.com"`,
  },
  {
    name: 'rewrite with uri and uriRegexRewrite',
    spec: vsSpec({ rewrite: { uri: '/x', uriRegexRewrite: { match: '^/a', rewrite: '/b' } } }),
    message: `${R}: spec.http[0].rewrite: only one of uri or uriRegexRewrite may be set`,
  },
  {
    name: 'fault without abort or delay',
    spec: vsSpec({ fault: {} }),
    message: `${R}: spec.http[0].fault: at least one of abort or delay is required`,
  },
  {
    name: 'fault percentage above 100',
    spec: vsSpec({ fault: { abort: { httpStatus: 503, percentage: { value: 150 } } } }),
    message: `${R}: spec.http[0].fault.abort.percentage.value: must be 0 or between 0.0001 and 100`,
  },
  {
    name: 'unknown gRPC status',
    spec: vsSpec({ fault: { abort: { grpcStatus: 'BROKEN' } } }),
    message: `${R}: spec.http[0].fault.abort.grpcStatus: "BROKEN" is not a gRPC status name such as NOT_FOUND or UNAVAILABLE`,
  },
  {
    name: 'CORS method',
    spec: vsSpec({ corsPolicy: { allowOrigins: [{ exact: 'https://a.example.com' }], allowMethods: ['GET', 'FETCH'] } }),
    message: `${R}: spec.http[0].corsPolicy.allowMethods[1]: "FETCH" is not a supported HTTP method`,
  },
  {
    name: 'mirror and mirrors together',
    spec: vsSpec({ mirror: { host: 'shadow' }, mirrors: [{ destination: { host: 'shadow2' } }] }),
    message: `${R}: spec.http[0].mirrors: must not be set together with mirror`,
  },
  {
    name: 'session persistence type without its settings',
    spec: vsSpec({ sessionPersistence: { type: 'HEADER', cookie: { name: 'c' } } }),
    message: `${R}: spec.http[0].sessionPersistence: type HEADER needs header settings and no cookie settings`,
  },
  // TCP, TLS and the rest of the spec
  {
    name: 'tcp route without destinations',
    spec: { hosts: ['db'], tcp: [{ match: [{ port: 5432 }] }] },
    message: `${R}: spec.tcp[0].route: required`,
  },
  {
    name: 'tcp destination subnet',
    spec: { hosts: ['db'], tcp: [{ match: [{ destinationSubnets: ['10.0.0.0/40'] }], route: [{ destination: { host: 'db' } }] }] },
    message: `${R}: spec.tcp[0].match[0].destinationSubnets[0]: "10.0.0.0/40" is not a valid CIDR block`,
  },
  {
    name: 'tls route without match',
    spec: { hosts: ['db'], tls: [{ route: [{ destination: { host: 'db' } }] }] },
    message: `${R}: spec.tls[0].match: required`,
  },
  {
    name: 'tls SNI host outside the hosts',
    spec: { hosts: ['*.example.com'], tls: [{ match: [{ sniHosts: ['db.other.com'] }], route: [{ destination: { host: 'db' } }] }] },
    message: `${R}: spec.tls[0].match[0].sniHosts[0]: SNI host "db.other.com" is not covered by any of the virtual service's hosts (*.example.com)`,
  },
  {
    name: 'tls match without SNI hosts',
    spec: { hosts: ['db'], tls: [{ match: [{ sniHosts: [], port: 443 }], route: [{ destination: { host: 'db' } }] }] },
    message: `${R}: spec.tls[0].match[0].sniHosts: at least one SNI host is required`,
  },
  {
    name: 'tls route without destinations',
    spec: { hosts: ['db'], tls: [{ match: [{ sniHosts: ['db'] }], route: [] }] },
    message: `${R}: spec.tls[0].route: required`,
  },
  {
    name: 'tls SNI host given as the full name of a short host (Istio compares them as written)',
    spec: { hosts: ['db'], tls: [{ match: [{ sniHosts: ['db.default.svc.cluster.local'] }], route: [{ destination: { host: 'db' } }] }] },
    message: `${R}: spec.tls[0].match[0].sniHosts[0]: SNI host "db.default.svc.cluster.local" is not covered by any of the virtual service's hosts (db)`,
  },
  {
    name: 'an auto-generated SNI name (outbound_.<port>_._.<host>) where the VirtualService names the mesh',
    spec: { hosts: ['*.example.com'], gateways: ['mesh'], tls: [{ match: [{ sniHosts: ['outbound_.80_._.db.example.com'] }], route: [{ destination: { host: 'db' } }] }] },
    message: `${R}: spec.tls[0].match[0].sniHosts[0]: domain name "outbound_.80_._.db.example.com" invalid (label "outbound_" invalid)`,
  },
  {
    name: 'an auto-generated SNI name whose port has no digit',
    spec: { hosts: ['*.example.com'], tls: [{ match: [{ sniHosts: ['outbound_.http_._.db.example.com'] }], route: [{ destination: { host: 'db' } }] }] },
    message: `${R}: spec.tls[0].match[0].sniHosts[0]: domain name "outbound_.http_._.db.example.com" invalid (label "http" invalid), should follow "outbound_.<port>_._.<hostname>"`,
  },
  {
    name: 'an auto-generated SNI name as a host of a VirtualService bound to the mesh',
    spec: { hosts: ['outbound_.443_._.db.example.com'], tls: [{ match: [{ sniHosts: ['outbound_.443_._.db.example.com'] }], route: [{ destination: { host: 'db' } }] }] },
    message: `${R}: spec.hosts[0]: domain name "outbound_.443_._.db.example.com" invalid (label "outbound_" invalid)`,
  },
  {
    name: 'gateway reference',
    spec: vsSpec({}, { gateways: ['istio-system/Bad_Gw'] }),
    message: `${R}: spec.gateways[0]: invalid gateway name "Bad_Gw"`,
  },
  { name: 'exportTo duplicate', spec: vsSpec({}, { exportTo: ['default', '.'] }), message: `${R}: spec.exportTo[1]: duplicate entries: "." and the current namespace "default"` },
];

describe('VirtualService: rejected', () => {
  for (const c of REJECTED) {
    test(c.name, () => assertRejected(virtualService(c.spec), c.message));
  }

  test('the example from the brief', () => {
    const spec = vsSpec(
      { route: [one({ subset: 'v1' }, { weight: 90 }), one({ subset: 'v2' }, { weight: 101 })] },
      { hosts: ['my-backend-service'] },
    );
    assertRejected(
      virtualService(spec, 'my-backend-service'),
      'VirtualService default/my-backend-service: spec.http[0].route[1].weight: must be between 0 and 100',
    );
  });

  test('reports every problem, one line each, with ConfigError.resource and fields', () => {
    const err = rejection(virtualService({ hosts: ['reviews'], http: [{ route: [one({ subset: 'v1.0' }, { weight: 200 })], timeout: 'x' }] }));
    assert.equal(
      err.message,
      [
        `${R}: spec.http[0].timeout: must be a duration such as "1.5s", "100ms" or "1h"`,
        `${R}: spec.http[0].route[0].destination.subset: subset name "v1.0" is invalid: must be a DNS-1123 label`,
        `${R}: spec.http[0].route[0].weight: must be between 0 and 100`,
      ].join('\n'),
    );
    assert.equal(err.resource, R);
    assert.deepEqual(
      err.fields.map((f) => f.path),
      ['spec.http[0].timeout', 'spec.http[0].route[0].destination.subset', 'spec.http[0].route[0].weight'],
    );
  });

  test('a field that breaks the schema gets one message, not one per rule', () => {
    const errors = validateResource(asResource(vsSpec({ route: [one({}, { weight: 'heavy' })] })));
    assert.deepEqual(errors, [{ path: 'spec.http[0].route[0].weight', message: 'must be an integer, not the string "heavy"' }]);
  });
});

function asResource(spec: Spec): Resource {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'r', namespace: 'default' }, spec };
}

describe('VirtualService: accepted', () => {
  const ACCEPTED: [string, Spec][] = [
    ['one destination without weight', vsSpec()],
    ['short name, FQDN, wildcard and IP hosts', vsSpec({}, { hosts: ['reviews', 'reviews.shop.svc.cluster.local', '*.example.com', '10.0.0.1'] })],
    ['host "*" bound to a gateway', vsSpec({}, { hosts: ['*'], gateways: ['istio-system/ingress'] })],
    ['weights that do not add up to 100 (Istio normalises them)', vsSpec({ route: [one({ subset: 'v1' }, { weight: 30 }), one({ subset: 'v2' }, { weight: 30 })] })],
    ['durations', vsSpec({ timeout: '1.5s', retries: { attempts: 3, perTryTimeout: '100ms', retryOn: '5xx,reset,503' } })],
    ['header presence and absence matches', vsSpec({ match: [{ headers: { 'x-canary': {} }, withoutHeaders: { 'x-debug': { regex: '*' } } }] })],
    ['empty uri prefix', vsSpec({ match: [{ uri: { prefix: '' } }] })],
    ['RE2 named group', vsSpec({ match: [{ uri: { regex: '/(?P<id>[0-9]+)' } }] })],
    ['redirect', { hosts: ['reviews'], http: [{ redirect: { uri: '/v2', redirectCode: 301 } }] }],
    ['direct response', { hosts: ['reviews'], http: [{ directResponse: { status: 503, body: { string: 'down' } } }] }],
    ['delegate', { hosts: ['reviews'], http: [{ delegate: { name: 'reviews-routes', namespace: 'shop' } }] }],
    // Istio's: what a root route sets besides delegate, its delegate's routes take where they set none.
    ['delegate with what its routes inherit', { hosts: ['reviews'], http: [{ match: [{ uri: { prefix: '/r' } }], delegate: { name: 'd' }, timeout: '1s', fault: { abort: { httpStatus: 500 } }, directResponse: { status: 503 }, headers: { request: { set: { a: 'b' } } } }] }],
    ['a delegate: no hosts', { http: [{ match: [{ uri: { prefix: '/r/v1' }, sourceNamespace: 'test' }], route: [one({ subset: 'v1' })] }] }],
    ['a delegate: empty hosts, exportTo', { hosts: [], exportTo: ['.'], http: [{ route: [one({})] }] }],
    ['JWT claim routing at a gateway', vsSpec({ match: [{ headers: { '@request.auth.claims.group': { exact: 'a' } } }] }, { gateways: ['istio-system/ingress'] })],
    ['tcp route', { hosts: ['db'], tcp: [{ match: [{ port: 5432, destinationSubnets: ['10.0.0.0/8'] }], route: [{ destination: { host: 'db' } }] }] }],
    ['tls route', { hosts: ['*.example.com'], tls: [{ match: [{ sniHosts: ['db.example.com'] }], route: [{ destination: { host: 'db' } }] }] }],
    ['tls routes: exact, wildcard and IP SNI hosts, port, sourceLabels, weights', { hosts: ['db', '*.example.com'], tls: [{ match: [{ sniHosts: ['db', 'a.example.com', '*.b.example.com', '10.0.0.1'], port: 443, sourceLabels: { app: 'x' } }], route: [{ destination: { host: 'db', subset: 'v1' }, weight: 90 }, { destination: { host: 'db', subset: 'v2' }, weight: 10 }] }] }],
    // Istio's gateway rules for SNI hosts apply unless "mesh" is named (its isGateway).
    ['auto-generated SNI names (outbound_.<port>_._.<host>) where no gateway is named', { hosts: ['*.example.com'], tls: [{ match: [{ sniHosts: ['outbound_.80_._.db.example.com'] }], route: [{ destination: { host: 'db' } }] }] }],
    ['auto-generated SNI names as hosts at a gateway', { hosts: ['outbound_.443_._.db.example.com'], gateways: ['istio-system/eastwest'], tls: [{ match: [{ sniHosts: ['outbound_.443_._.db.example.com'] }], route: [{ destination: { host: 'db' } }] }] }],
    ['nullable field set to null', vsSpec({ corsPolicy: { allowCredentials: null } })],
  ];
  for (const [name, spec] of ACCEPTED) {
    test(name, () => assertAccepted(virtualService(spec)));
  }
});
