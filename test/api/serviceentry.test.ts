import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertAccepted, assertRejected, rejection, serviceEntry, type Spec } from './helpers.ts';

const R = 'ServiceEntry default/r';

/** A ServiceEntry spec for api.example.com, merged with `extra`. */
const se = (extra: Spec = {}): Spec => ({ hosts: ['api.example.com'], ...extra });
const HTTP = { number: 80, name: 'http', protocol: 'HTTP' };
const TCP = { number: 5432, name: 'pg', protocol: 'TCP' };

const REJECTED: [string, Spec, string][] = [
  // hosts
  ['no hosts', {}, `${R}: spec.hosts: required`],
  ['empty hosts (CRD minItems)', { hosts: [] }, `${R}: spec.hosts: must not be empty`],
  ['host * (CEL "hostname cannot be wildcard")', { hosts: ['*'] }, `${R}: spec.hosts[0]: a service entry host cannot be *`],
  ['host not a domain name', { hosts: ['api..example.com'] }, `${R}: spec.hosts[0]: domain name "api..example.com" invalid (label "" invalid)`],
  [
    'wildcard host resolved by DNS without endpoints',
    { hosts: ['*.example.com'], resolution: 'DNS', ports: [HTTP] },
    `${R}: spec.hosts[0]: with resolution DNS and no endpoints, the host itself is looked up in DNS: it must be a domain name without wildcards`,
  ],
  [
    'DYNAMIC_DNS host that is not a wildcard',
    se({ resolution: 'DYNAMIC_DNS', ports: [HTTP] }),
    `${R}: spec.hosts[0]: with resolution DYNAMIC_DNS, hosts must be wildcards (e.g. *.example.com)`,
  ],
  // addresses
  ['address neither IP nor CIDR', se({ addresses: ['10.0.0'] }), `${R}: spec.addresses[0]: "10.0.0" is not a valid IP address`],
  ['CIDR with a prefix too long', se({ addresses: ['10.0.0.0/33'] }), `${R}: spec.addresses[0]: "10.0.0.0/33" is not a valid CIDR block`],
  [
    'CIDR with resolution DNS (CEL)',
    se({ addresses: ['10.0.0.0/24'], resolution: 'DNS' }),
    `${R}: spec: address ranges (CIDR) are allowed only with resolution NONE or STATIC, not DNS`,
  ],
  [
    'addresses with DYNAMIC_DNS',
    { hosts: ['*.example.com'], resolution: 'DYNAMIC_DNS', addresses: ['10.0.0.1'], ports: [HTTP] },
    `${R}: spec.addresses: must not be set with resolution DYNAMIC_DNS: routes are built from the hosts`,
  ],
  // ports
  ['port without a name', se({ ports: [{ number: 80 }] }), `${R}: spec.ports[0].name: required`],
  ['port number 0 (CEL)', se({ ports: [{ number: 0, name: 'http' }] }), `${R}: spec.ports[0].number: must be between 1 and 65535`],
  ['target port 0 (CEL)', se({ ports: [{ number: 80, name: 'http', targetPort: 0 }] }), `${R}: spec.ports[0].targetPort: must be between 1 and 65535`],
  ['port name not a DNS label', se({ ports: [{ number: 80, name: 'http_web' }] }), `${R}: spec.ports[0].name: invalid port name "http_web": must be a DNS-1123 label`],
  ['duplicate port name (list-map key)', se({ ports: [HTTP, { ...TCP, name: 'http' }] }), `${R}: spec.ports[1].name: duplicate port name "http"`],
  ['duplicate port number (CEL)', se({ ports: [HTTP, { ...HTTP, name: 'web' }] }), `${R}: spec.ports: port number 80 is used by more than one port`],
  [
    'unknown protocol',
    se({ ports: [{ number: 25, name: 'smtp', protocol: 'SMTP' }] }),
    `${R}: spec.ports[0].protocol: unsupported protocol "SMTP": must be one of TCP, UDP, GRPC, GRPC-Web, HTTP, HTTP_PROXY, HTTP2, HTTPS, TLS, Mongo, Redis, MySQL`,
  ],
  [
    'two hosts on a TCP port, resolved by DNS',
    { hosts: ['a.example.com', 'b.example.com'], resolution: 'DNS', ports: [TCP] },
    `${R}: spec.ports[0].protocol: with more than one host (and resolution DNS), every port's protocol must be HTTP or TLS: a plain TCP connection (or one of no declared protocol) does not say which host it is for`,
  ],
  [
    'two hosts on a port of no declared protocol, STATIC',
    { hosts: ['a.example.com', 'b.example.com'], resolution: 'STATIC', ports: [{ number: 9000, name: 'x' }], endpoints: [{ address: '10.0.0.1' }] },
    `${R}: spec.ports[0].protocol: with more than one host (and resolution STATIC), every port's protocol must be HTTP or TLS: a plain TCP connection (or one of no declared protocol) does not say which host it is for`,
  ],
  [
    'DYNAMIC_DNS on a TCP port',
    { hosts: ['*.example.com'], resolution: 'DYNAMIC_DNS', ports: [TCP] },
    `${R}: spec.ports[0].protocol: with resolution DYNAMIC_DNS, ports must be HTTP, TLS, GRPC or HTTP2`,
  ],
  // workload selector
  [
    'selector and endpoints together (CEL)',
    se({ resolution: 'STATIC', workloadSelector: { labels: { app: 'db' } }, endpoints: [{ address: '10.0.0.1' }] }),
    `${R}: spec: only one of workloadSelector or endpoints may be set`,
  ],
  ['selector value with a wildcard (CEL)', se({ workloadSelector: { labels: { app: 'db*' } } }), `${R}: spec.workloadSelector.labels[app]: wildcard not allowed in label value match`],
  ['selector key with a wildcard', se({ workloadSelector: { labels: { 'app*': 'db' } } }), `${R}: spec.workloadSelector.labels[app*]: wildcard not allowed in label key match`],
  ['selector value too long (CRD maxLength)', se({ workloadSelector: { labels: { app: 'x'.repeat(64) } } }), `${R}: spec.workloadSelector.labels[app]: must be at most 63 characters`],
  // endpoints, by resolution
  ['endpoints with resolution NONE, the default (CEL)', se({ endpoints: [{ address: '10.0.0.1' }] }), `${R}: spec: resolution NONE (the default) cannot have endpoints`],
  [
    'two endpoints with DNS_ROUND_ROBIN (CEL)',
    se({ resolution: 'DNS_ROUND_ROBIN', endpoints: [{ address: 'a.example.com' }, { address: 'b.example.com' }] }),
    `${R}: spec: resolution DNS_ROUND_ROBIN can have at most one endpoint`,
  ],
  [
    'endpoints with DYNAMIC_DNS',
    { hosts: ['*.example.com'], resolution: 'DYNAMIC_DNS', ports: [HTTP], endpoints: [{ address: '10.0.0.1' }] },
    `${R}: spec.endpoints: must not be set with resolution DYNAMIC_DNS: the address is looked up from the host requested`,
  ],
  [
    'STATIC endpoint named by DNS',
    se({ resolution: 'STATIC', endpoints: [{ address: 'db.example.com' }] }),
    `${R}: spec.endpoints[0].address: "db.example.com" is not an IP address: with resolution STATIC, endpoints are IP addresses or unix sockets`,
  ],
  [
    'DNS endpoint that is not a domain name',
    se({ resolution: 'DNS', endpoints: [{ address: 'db..example.com' }] }),
    `${R}: spec.endpoints[0].address: "db..example.com" is not a valid IP address or domain name`,
  ],
  [
    'DNS endpoint that is a unix socket',
    se({ resolution: 'DNS', endpoints: [{ address: 'unix:///var/run/db.sock' }] }),
    `${R}: spec.endpoints[0].address: with resolution DNS an endpoint is an IP address or a domain name, not a unix socket`,
  ],
  [
    'DNS endpoint with only a network',
    se({ resolution: 'DNS', endpoints: [{ network: 'west' }] }),
    `${R}: spec.endpoints[0].address: required: with resolution DNS, each endpoint is an IP address or a domain name`,
  ],
  ['endpoint without address or network (CEL)', se({ resolution: 'STATIC', endpoints: [{ labels: { v: '1' } }] }), `${R}: spec.endpoints[0]: address is required (or network, for a workload in another network)`],
  [
    'endpoint port the service entry does not name',
    se({ resolution: 'STATIC', ports: [HTTP], endpoints: [{ address: '10.0.0.1', ports: { grpc: 9090 } }] }),
    `${R}: spec.endpoints[0].ports[grpc]: "grpc" is not the name of one of the service entry's ports`,
  ],
  ['endpoint port out of range (CEL)', se({ resolution: 'STATIC', ports: [HTTP], endpoints: [{ address: '10.0.0.1', ports: { http: 70000 } }] }), `${R}: spec.endpoints[0].ports[http]: must be between 1 and 65535`],
  [
    'unix endpoint with ports (CEL)',
    se({ resolution: 'STATIC', ports: [HTTP], endpoints: [{ address: 'unix:///var/run/app.sock', ports: { http: 80 } }] }),
    `${R}: spec.endpoints[0]: a unix socket address cannot have ports`,
  ],
  [
    'unix endpoint of a service entry with two ports',
    se({ resolution: 'STATIC', ports: [HTTP, TCP], endpoints: [{ address: 'unix:///var/run/app.sock' }] }),
    `${R}: spec.endpoints[0]: a unix socket endpoint needs the service entry to have exactly one port`,
  ],
  [
    'endpoint label value invalid',
    se({ resolution: 'STATIC', endpoints: [{ address: '10.0.0.1', labels: { version: 'v 1' } }] }),
    `${R}: spec.endpoints[0].labels[version]: invalid label value "v 1": must be empty or at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`,
  ],
  // exportTo
  ['exportTo "." and its own namespace', se({ exportTo: ['default', '.'] }), `${R}: spec.exportTo[1]: duplicate entries: "." and the current namespace "default"`],
  ['exportTo no one and someone', se({ exportTo: ['~', 'other'] }), `${R}: spec.exportTo: cannot export to no one (~) and to someone`],
  // enums
  ['resolution enum', se({ resolution: 'LOOKUP' }), `${R}: spec.resolution: must be one of NONE, STATIC, DNS, DNS_ROUND_ROBIN, DYNAMIC_DNS (got "LOOKUP")`],
];

describe('ServiceEntry: rejected', () => {
  for (const [name, spec, message] of REJECTED) {
    test(name, () => assertRejected(serviceEntry(spec), message));
  }

  test('DYNAMIC_DNS with MESH_INTERNAL is refused for a service entry that uses a waypoint, and only then', () => {
    const spec = { hosts: ['*.example.com'], resolution: 'DYNAMIC_DNS', location: 'MESH_INTERNAL', ports: [HTTP] };
    const withWaypoint = (value: string) => ({ ...serviceEntry(spec), metadata: { name: 'r', labels: { 'istio.io/use-waypoint': value } } });
    assertRejected(withWaypoint('waypoint'), `${R}: spec.location: MESH_INTERNAL with resolution DYNAMIC_DNS is not supported for a service entry that uses a waypoint`);
    assertAccepted(withWaypoint('none'));
    assertAccepted(serviceEntry(spec));
  });

  test('each wrong field of an endpoint gets its own line', () => {
    const err = rejection(serviceEntry(se({ resolution: 'STATIC', ports: [HTTP], endpoints: [{ address: 'db.example.com', ports: { 'Bad_Name': 80 } }] })));
    assert.deepEqual(err.fields.map((e) => e.path), ['spec.endpoints[0].address', 'spec.endpoints[0].ports', 'spec.endpoints[0].ports[Bad_Name]']);
  });
});

describe('ServiceEntry: accepted', () => {
  const ACCEPTED: [string, Spec][] = [
    ['hosts only (resolution NONE)', se()],
    ['a partial wildcard host with resolution NONE (Istio only warns)', { hosts: ['*x'] }],
    ['a wildcard host resolved through its endpoints', { hosts: ['*.example.com'], resolution: 'DNS', ports: [HTTP], endpoints: [{ address: 'lb.example.com' }] }],
    ['a domain name resolved by DNS', se({ resolution: 'DNS', ports: [HTTP] })],
    ['one endpoint with DNS_ROUND_ROBIN', se({ resolution: 'DNS_ROUND_ROBIN', ports: [HTTP], endpoints: [{ address: 'lb.example.com', ports: { http: 8080 } }] })],
    ['DYNAMIC_DNS on wildcard hosts over HTTP, TLS, GRPC and HTTP2', { hosts: ['*.example.com'], resolution: 'DYNAMIC_DNS', ports: [HTTP, { number: 443, name: 'tls', protocol: 'TLS' }, { number: 9000, name: 'grpc', protocol: 'GRPC' }, { number: 9001, name: 'h2', protocol: 'HTTP2' }] }],
    ['plain and IPv6 addresses, CIDR ranges with resolution NONE', se({ addresses: ['10.0.0.1', '2001:db8::1', '10.1.0.0/16', '2001:db8::/32'] })],
    ['CIDR ranges with resolution STATIC', se({ addresses: ['10.1.0.0/16'], resolution: 'STATIC', endpoints: [{ address: '10.1.0.5' }] })],
    ['protocols in any case, and an unset protocol', se({ ports: [{ number: 80, name: 'http', protocol: 'http' }, { number: 27017, name: 'mongo', protocol: 'MONGO' }, { number: 9000, name: 'raw' }] })],
    ['two hosts on HTTP and TLS ports', { hosts: ['a.example.com', 'b.example.com'], resolution: 'DNS', ports: [HTTP, { number: 443, name: 'https', protocol: 'HTTPS' }] }],
    ['two hosts on a TCP port with resolution NONE', { hosts: ['a.example.com', 'b.example.com'], ports: [TCP] }],
    ['STATIC endpoints with ports, labels and a unix socket', se({ resolution: 'STATIC', ports: [HTTP], endpoints: [{ address: '10.0.0.1', ports: { http: 8080 }, labels: { version: 'v1' } }, { address: 'unix:///var/run/app.sock' }] })],
    ['an endpoint in another network, without address', se({ resolution: 'STATIC', endpoints: [{ network: 'west' }] })],
    ['a workload selector', se({ workloadSelector: { labels: { app: 'db' } } })],
    ['an empty workload selector (Istio only warns)', se({ workloadSelector: {} })],
    ['exported to no one', se({ exportTo: ['~'] })],
    ['exported to namespaces', se({ exportTo: ['.', 'other'] })],
    ['everything Weft does not apply yet', se({ addresses: ['10.0.0.0/8'], resolution: 'STATIC', subjectAltNames: ['spiffe://x'], endpoints: [{ address: '10.0.0.1', weight: 3, network: 'n', locality: 'us/east', serviceAccount: 'db' }] })],
  ];
  for (const [name, spec] of ACCEPTED) {
    test(name, () => assertAccepted(serviceEntry(spec)));
  }
});
