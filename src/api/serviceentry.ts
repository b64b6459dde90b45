// ServiceEntry rules beyond the schema's shape: the CRD's CEL rules and Istio's
// ValidateServiceEntry (pkg/config/validation/validation.go). Messages are ours; the rules are
// Istio's unless a comment says otherwise. Warnings Istio only logs (partial wildcard hosts, TCP
// ports without addresses, a selector without labels) are not reported.

import type { FieldError, ObjectMeta } from './types.ts';
import { field, type Obj } from './schema.ts';
import { Findings, asList, asNum, asObj, asStr, checkExportTo, checkSelectorLabels, eachObj, eachStr, isSet } from './common.ts';
import { checkFQDN, checkIPSubnet, checkPortName, checkProtocol, checkWildcardDomain, isHTTPProtocol, isTLSProtocol, parseProtocol } from './rules.ts';
import { checkWorkloadEntry, type EndpointRules } from './workloadentry.ts';

/** Istio's label for the waypoint a resource's traffic goes through ("none": no waypoint). */
const USE_WAYPOINT = 'istio.io/use-waypoint';

export function validateServiceEntry(spec: Obj, namespace: string, meta?: ObjectMeta): FieldError[] {
  const f = new Findings();
  // Unset means NONE, as in the CRD's CEL rules and in protobuf.
  const resolution = asStr(spec.resolution) ?? 'NONE';
  checkSelectorLabels(f, asObj(spec.workloadSelector)?.labels, 'spec.workloadSelector.labels');
  // CEL: present at all (even `workloadSelector: {}` or `endpoints: []`).
  if (isSet(spec.workloadSelector) && isSet(spec.endpoints)) f.report('spec', 'only one of workloadSelector or endpoints may be set');
  checkHosts(f, spec, resolution);
  checkAddresses(f, spec, resolution);
  const servicePorts = checkPorts(f, spec, resolution);
  checkEndpoints(f, spec, resolution, servicePorts);
  if (resolution === 'DYNAMIC_DNS' && spec.location === 'MESH_INTERNAL' && usesWaypoint(meta)) {
    f.report('spec.location', 'MESH_INTERNAL with resolution DYNAMIC_DNS is not supported for a service entry that uses a waypoint');
  }
  checkExportTo(f, spec.exportTo, 'spec.exportTo', namespace);
  return f.errors;
}

function checkHosts(f: Findings, spec: Obj, resolution: string): void {
  const resolvedByDNS = (resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && asList(spec.endpoints).length === 0;
  for (const [host, p] of eachStr(spec.hosts, 'spec.hosts')) {
    // CEL "hostname cannot be wildcard".
    const problem = host === '*' ? 'a service entry host cannot be *' : checkWildcardDomain(host);
    if (problem) f.report(p, problem);
    else if (resolvedByDNS && checkFQDN(host)) {
      f.report(p, `with resolution ${resolution} and no endpoints, the host itself is looked up in DNS: it must be a domain name without wildcards`);
    } else if (resolution === 'DYNAMIC_DNS' && !host.startsWith('*')) {
      f.report(p, 'with resolution DYNAMIC_DNS, hosts must be wildcards (e.g. *.example.com)');
    }
  }
}

function checkAddresses(f: Findings, spec: Obj, resolution: string): void {
  const addresses = eachStr(spec.addresses, 'spec.addresses');
  for (const [address, p] of addresses) f.report(p, checkIPSubnet(address));
  // CEL "CIDR addresses are allowed only for NONE/STATIC resolution types".
  if (addresses.some(([a]) => a.includes('/')) && resolution !== 'NONE' && resolution !== 'STATIC') {
    f.report('spec', `address ranges (CIDR) are allowed only with resolution NONE or STATIC, not ${resolution}`);
  }
  if (resolution === 'DYNAMIC_DNS' && asList(spec.addresses).length > 0) {
    f.report('spec.addresses', 'must not be set with resolution DYNAMIC_DNS: routes are built from the hosts');
  }
}

/** The ports' rules; returns their names, which endpoints' ports must use. */
function checkPorts(f: Findings, spec: Obj, resolution: string): Set<string> {
  const names = new Set<string>();
  const numbers = new Map<number, number>();
  // Plain TCP does not say which host a connection is for (HTTP has the authority, TLS the SNI).
  const manyHosts = resolution !== 'NONE' && asList(spec.hosts).length > 1;
  for (const [port, p] of eachObj(spec.ports, 'spec.ports')) {
    const name = asStr(port.name);
    if (name !== undefined) {
      // The CRD's list-map key, and the webhook's rule.
      if (names.has(name)) f.report(field(p, 'name'), `duplicate port name "${name}"`);
      else f.report(field(p, 'name'), checkPortName(name));
      names.add(name);
    }
    const number = asNum(port.number);
    if (number !== undefined) numbers.set(number, (numbers.get(number) ?? 0) + 1);
    const protocol = asStr(port.protocol) ?? '';
    f.report(field(p, 'protocol'), checkProtocol(protocol) ?? protocolForResolution(protocol, resolution, manyHosts));
  }
  // CEL "port number cannot be duplicated", a rule on the whole list.
  for (const [number, count] of numbers) {
    if (count > 1) f.report('spec.ports', `port number ${number} is used by more than one port`);
  }
  return names;
}

function protocolForResolution(protocol: string, resolution: string, manyHosts: boolean): string | undefined {
  const p = parseProtocol(protocol);
  if (resolution === 'DYNAMIC_DNS' && p !== 'HTTP' && p !== 'TLS' && p !== 'GRPC' && p !== 'HTTP2') {
    return 'with resolution DYNAMIC_DNS, ports must be HTTP, TLS, GRPC or HTTP2';
  }
  if (manyHosts && !isHTTPProtocol(protocol) && !isTLSProtocol(protocol)) {
    return `with more than one host (and resolution ${resolution}), every port's protocol must be HTTP or TLS: a plain TCP connection (or one of no declared protocol) does not say which host it is for`;
  }
  return undefined;
}

const ENDPOINT_RULES: Readonly<Record<string, EndpointRules>> = { STATIC: 'static', DNS: 'dns', DNS_ROUND_ROBIN: 'dns' };

function checkEndpoints(f: Findings, spec: Obj, resolution: string, servicePorts: Set<string>): void {
  const count = asList(spec.endpoints).length;
  // CEL "NONE mode cannot set endpoints" (present at all) and "DNS_ROUND_ROBIN mode cannot have multiple endpoints".
  if (resolution === 'NONE' && isSet(spec.endpoints)) f.report('spec', 'resolution NONE (the default) cannot have endpoints');
  if (resolution === 'DNS_ROUND_ROBIN' && count > 1) f.report('spec', 'resolution DNS_ROUND_ROBIN can have at most one endpoint');
  if (resolution === 'DYNAMIC_DNS' && count > 0) f.report('spec.endpoints', 'must not be set with resolution DYNAMIC_DNS: the address is looked up from the host requested');
  const rules = ENDPOINT_RULES[resolution] ?? 'crd';
  for (const [endpoint, p] of eachObj(spec.endpoints, 'spec.endpoints')) checkWorkloadEntry(f, endpoint, p, rules, servicePorts);
}

function usesWaypoint(meta: ObjectMeta | undefined): boolean {
  const waypoint = meta?.labels?.[USE_WAYPOINT];
  return waypoint !== undefined && waypoint !== '' && waypoint.toLowerCase() !== 'none';
}
