import { describe, test } from 'node:test';
import { assertAccepted, assertRejected, workloadEntry, type Spec } from './helpers.ts';

const R = 'WorkloadEntry default/r';

const REJECTED: [string, Spec, string][] = [
  ['no address and no network (CEL)', {}, `${R}: spec: address is required (or network, for a workload in another network)`],
  ['an empty address and no network (Istio counts "" as unset)', { address: '' }, `${R}: spec: address is required (or network, for a workload in another network)`],
  ['address neither IP nor domain name', { address: 'db_1.example.com' }, `${R}: spec.address: "db_1.example.com" is not a valid IP address or domain name`],
  ['address too long (CRD maxLength)', { address: `${'a'.repeat(250)}.example.com` }, `${R}: spec.address: must be at most 256 characters`],
  ['unix socket, relative path (CEL)', { address: 'unix://var/run/app.sock' }, `${R}: spec.address: "var/run/app.sock" must be an absolute path (unix:///path) or an abstract socket (unix://@name)`],
  ['unix socket, no path', { address: 'unix://' }, `${R}: spec.address: the unix socket path must not be empty`],
  ['unix socket, a directory (CEL)', { address: 'unix:///var/run/' }, `${R}: spec.address: "/var/run/" names a directory, not a socket`],
  ['abstract unix socket ending in "/" (CEL only: the webhook allows it)', { address: 'unix://@app/' }, `${R}: spec.address: "unix://@app/" names a directory, not a socket`],
  ['unix socket with ports (CEL)', { address: 'unix:///var/run/app.sock', ports: { http: 80 } }, `${R}: spec: a unix socket address cannot have ports`],
  ['unix socket with an empty ports map (CEL: present at all)', { address: 'unix:///var/run/app.sock', ports: {} }, `${R}: spec: a unix socket address cannot have ports`],
  ['port name not a DNS label (CEL)', { address: '10.0.0.1', ports: { 'http-': 80 } }, `${R}: spec.ports: invalid port name "http-": must be a DNS-1123 label`],
  ['port name of 63 characters (CEL: shorter than 63)', { address: '10.0.0.1', ports: { ['p'.repeat(63)]: 80 } }, `${R}: spec.ports: port name "${'p'.repeat(63)}" must be shorter than 63 characters`],
  ['port out of range (CEL)', { address: '10.0.0.1', ports: { http: 0 } }, `${R}: spec.ports[http]: must be between 1 and 65535`],
  ['port given as text', { address: '10.0.0.1', ports: { http: '80' } }, `${R}: spec.ports[http]: must be an integer, not the string "80"`],
  [
    'invalid label key',
    { address: '10.0.0.1', labels: { 'app/': 'db' } },
    `${R}: spec.labels[app/]: invalid label key "app/": must be at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`,
  ],
  ['negative weight', { address: '10.0.0.1', weight: -1 }, `${R}: spec.weight: must be between 0 and 4294967295`],
  ['unknown field', { address: '10.0.0.1', port: 80 }, `${R}: spec.port: unknown field`],
];

describe('WorkloadEntry: rejected', () => {
  for (const [name, spec, message] of REJECTED) {
    test(name, () => assertRejected(workloadEntry(spec), message));
  }
});

describe('WorkloadEntry: accepted', () => {
  const ACCEPTED: [string, Spec][] = [
    ['an IPv4 address', { address: '10.0.0.1' }],
    ['an IPv6 address', { address: '2001:db8::1' }],
    ['a domain name (a WorkloadEntry may be resolved by DNS)', { address: 'vm1.example.com' }],
    ['a unix socket path', { address: 'unix:///var/run/app.sock' }],
    ['an abstract unix socket', { address: 'unix://@app' }],
    ['a network without address (Istio only warns)', { network: 'west' }],
    ['ports, labels and everything else', { address: '10.0.0.1', ports: { http: 8080, 'grpc-web': 9090 }, labels: { app: 'db', version: 'v1' }, weight: 2, network: 'n', locality: 'us/east/1a', serviceAccount: 'db' }],
  ];
  for (const [name, spec] of ACCEPTED) {
    test(name, () => assertAccepted(workloadEntry(spec)));
  }
});
