// WorkloadEntry rules beyond the schema's shape: the CRD's CEL rules and Istio's
// ValidateWorkloadEntry (pkg/config/validation/validation.go). A ServiceEntry's inline endpoints
// are WorkloadEntry specs too: serviceentry.ts checks them here, with the rules of its resolution.
// Messages are ours; the rules are Istio's unless a comment says otherwise.

import type { FieldError } from './types.ts';
import { field, key, type Obj } from './schema.ts';
import { Findings, asStr, checkLabels, entriesOf, isSet, nonEmpty } from './common.ts';
import { UNIX_PREFIX, checkFQDN, checkPortName, checkUnixAddress, isIPAddress } from './rules.ts';

export function validateWorkloadEntry(spec: Obj): FieldError[] {
  const f = new Findings();
  checkWorkloadEntry(f, spec, 'spec', 'workload');
  return f.errors;
}

/**
 * Which of Istio's rules apply to a workload entry, beyond the CRD's (which always do):
 * - 'workload': a WorkloadEntry (an IP address, a domain name or a unix socket);
 * - 'static': an endpoint of a ServiceEntry with resolution STATIC (an IP address or a unix socket);
 * - 'dns': an endpoint of a ServiceEntry with resolution DNS or DNS_ROUND_ROBIN (an IP address or a domain name);
 * - 'crd': an endpoint of a ServiceEntry whose resolution takes none (NONE, DYNAMIC_DNS: Istio then
 *   rejects the endpoints themselves).
 */
export type EndpointRules = 'workload' | 'static' | 'dns' | 'crd';

/**
 * One workload entry at `p`. `servicePorts` (a ServiceEntry's port names) are the names its
 * `ports` may use; undefined for a WorkloadEntry, which Istio does not match to a service here.
 */
export function checkWorkloadEntry(f: Findings, we: Obj, p: string, rules: EndpointRules, servicePorts?: ReadonlySet<string>): void {
  const address = asStr(we.address);
  const unix = address?.startsWith(UNIX_PREFIX) === true;
  // CEL "Address is required": has(address) || has(network). Istio's webhook also counts "" as unset.
  const missing = rules === 'workload' || rules === 'static' ? !nonEmpty(address) && !nonEmpty(we.network) : !isSet(we.address) && !isSet(we.network);
  if (missing) f.report(p, 'address is required (or network, for a workload in another network)');
  if (nonEmpty(address)) f.report(field(p, 'address'), checkAddress(address, rules));
  else if (rules === 'dns' && !missing) f.report(field(p, 'address'), 'required: with resolution DNS, each endpoint is an IP address or a domain name');
  // CEL "UDS may not include ports" (present at all, even empty).
  if (unix && isSet(we.ports)) f.report(p, 'a unix socket address cannot have ports');
  // CEL "port name must be valid": shorter than 63 characters, and a DNS label.
  for (const [name] of entriesOf(we.ports)) {
    const bad = name.length >= 63 ? `port name "${name}" must be shorter than 63 characters` : checkPortName(name);
    f.report(field(p, 'ports'), bad);
  }
  if (rules === 'crd') return;
  if (servicePorts) {
    for (const [name] of entriesOf(we.ports)) {
      if (!servicePorts.has(name)) f.report(key(field(p, 'ports'), name), `"${name}" is not the name of one of the service entry's ports`);
    }
  }
  checkLabels(f, we.labels, field(p, 'labels'));
  if (rules === 'static' && unix && servicePorts && servicePorts.size !== 1) {
    f.report(p, 'a unix socket endpoint needs the service entry to have exactly one port');
  }
}

function checkAddress(address: string, rules: EndpointRules): string | undefined {
  if (address.startsWith(UNIX_PREFIX)) {
    // CEL "UDS must be an absolute path or abstract socket" and "UDS may not be a dir", and the webhook's rule.
    const problem = checkUnixAddress(address.slice(UNIX_PREFIX.length)) ?? (address.endsWith('/') ? `"${address}" names a directory, not a socket` : undefined);
    if (problem || rules !== 'dns') return problem;
    return 'with resolution DNS an endpoint is an IP address or a domain name, not a unix socket';
  }
  if (rules === 'crd' || isIPAddress(address)) return undefined;
  if (rules === 'static') return `"${address}" is not an IP address: with resolution STATIC, endpoints are IP addresses or unix sockets`;
  return checkFQDN(address) ? `"${address}" is not a valid IP address or domain name` : undefined;
}
