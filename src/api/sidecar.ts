// Sidecar rules beyond the schema's shape: Istio's ValidateSidecar and the functions it calls
// (pkg/config/validation/validation.go, agent/validation.go). Messages are ours; the rules are
// Istio's unless a comment says otherwise. Warnings Istio only logs (duplicate egress hosts, a
// selector without labels, HTTP pool settings on a TCP port) are not reported.

import type { FieldError } from './types.ts';
import { field, index, type Obj } from './schema.ts';
import { Findings, asList, asNum, asObj, asStr, checkSelectorLabels, eachObj, eachStr, isSet, nonEmpty } from './common.ts';
import { checkConnectionPool } from './destinationrule.ts';
import {
  UNIX_PREFIX,
  checkFQDN,
  checkPort,
  checkPortName,
  checkProtocol,
  checkUnixAddress,
  checkWildcardDomain,
  isDNS1123Label,
  isIPAddress,
  isTLSProtocol,
} from './rules.ts';

export function validateSidecar(spec: Obj): FieldError[] {
  const f = new Findings();
  checkSelectorLabels(f, asObj(spec.workloadSelector)?.labels, 'spec.workloadSelector.labels');
  if (asList(spec.egress).length === 0 && asList(spec.ingress).length === 0 && !isSet(spec.outboundTrafficPolicy) && !isSet(spec.inboundConnectionPool)) {
    f.report('spec', 'must set at least one of egress, ingress, outboundTrafficPolicy or inboundConnectionPool');
  }
  checkIngress(f, spec.ingress);
  checkConnectionPool(f, asObj(spec.inboundConnectionPool), 'spec.inboundConnectionPool');
  checkEgress(f, spec.egress);
  checkOutboundTrafficPolicy(f, asObj(spec.outboundTrafficPolicy), 'spec.outboundTrafficPolicy');
  return f.errors;
}

/** What ingress and egress ports share: targetPort unused, name and protocol well-formed. */
function checkListenerPort(f: Findings, port: Obj, p: string): void {
  const targetPort = asNum(port.targetPort) ?? 0;
  if (targetPort > 0) f.report(field(p, 'targetPort'), 'has no effect in a Sidecar: leave it out');
  if (nonEmpty(port.name)) f.report(field(p, 'name'), checkPortName(port.name));
  f.report(field(p, 'protocol'), checkProtocol(asStr(port.protocol) ?? ''));
}

function checkBindIP(f: Findings, bind: string, p: string): void {
  if (bind !== '' && !isIPAddress(bind)) f.report(p, `"${bind}" is not an IP address`);
}

// ---- ingress ----

function checkIngress(f: Findings, ingress: unknown): void {
  const numbers = new Set<number>();
  for (const [listener, p] of eachObj(ingress, 'spec.ingress')) {
    const port = asObj(listener.port);
    if (!port) continue; // required: a schema error
    const pp = field(p, 'port');
    checkListenerPort(f, port, pp);
    const number = asNum(port.number) ?? 0;
    const bad = checkPort(number);
    if (bad) f.report(field(pp, 'number'), bad);
    else if (numbers.has(number)) f.report(field(pp, 'number'), `port ${number} is used by another ingress listener`);
    numbers.add(number);
    checkBindIP(f, asStr(listener.bind) ?? '', field(p, 'bind'));
    const endpoint = asStr(listener.defaultEndpoint);
    if (nonEmpty(endpoint)) f.report(field(p, 'defaultEndpoint'), checkDefaultEndpoint(endpoint));
    checkServerTLS(f, asObj(listener.tls), asStr(port.protocol) ?? '', field(p, 'tls'));
    checkConnectionPool(f, asObj(listener.connectionPool), field(p, 'connectionPool'));
  }
}

const LOCAL_HOSTS = new Set(['', '127.0.0.1', '0.0.0.0', '::1', '::']);

/** 127.0.0.1:PORT, 0.0.0.0:PORT, [::1]:PORT, [::]:PORT, :PORT or unix:///path (or unix://@name). */
function checkDefaultEndpoint(endpoint: string): string | undefined {
  if (endpoint.startsWith(UNIX_PREFIX)) return checkUnixAddress(endpoint.slice(UNIX_PREFIX.length));
  const hostPort = splitHostPort(endpoint);
  if (!hostPort || !LOCAL_HOSTS.has(hostPort[0])) {
    return 'must be 127.0.0.1:PORT, 0.0.0.0:PORT, [::1]:PORT, [::]:PORT, :PORT or unix:///path';
  }
  const port = hostPort[1];
  if (!/^[+-]?\d+$/.test(port)) return `port "${port}" is not a number`;
  return checkPort(Number(port));
}

/** Go's net.SplitHostPort: "host:port" or "[v6host]:port"; undefined where Go returns an error. */
function splitHostPort(hostPort: string): [string, string] | undefined {
  if (hostPort.startsWith('[')) {
    const end = hostPort.indexOf(']');
    if (end < 0 || hostPort[end + 1] !== ':') return undefined;
    const host = hostPort.slice(1, end);
    const port = hostPort.slice(end + 2);
    return /[[\]]/.test(host) || /[[\]]/.test(port) ? undefined : [host, port];
  }
  const colon = hostPort.lastIndexOf(':');
  if (colon < 0) return undefined;
  const host = hostPort.slice(0, colon);
  const port = hostPort.slice(colon + 1);
  return /[:[\]]/.test(host) || /[[\]]/.test(port) ? undefined : [host, port];
}

/**
 * A sidecar's ingress TLS: what a sidecar does not allow, then Istio's validateTLSOptions. Of the
 * latter, the rules about ISTIO_MUTUAL, credentialName(s) and tlsCertificates are left out: a
 * sidecar refuses all of these already (one message each is enough).
 */
function checkServerTLS(f: Findings, tls: Obj | undefined, protocol: string, p: string): void {
  if (!tls) return;
  const mode = asStr(tls.mode) ?? 'PASSTHROUGH';
  if (asList(tls.subjectAltNames).length > 0) f.report(field(p, 'subjectAltNames'), 'not supported in a sidecar\'s ingress TLS');
  if (tls.httpsRedirect === true) f.report(field(p, 'httpsRedirect'), 'not supported in a sidecar\'s ingress TLS');
  for (const name of ['credentialName', 'credentialNames', 'tlsCertificates']) {
    const v = tls[name];
    if (nonEmpty(v) || asList(v).length > 0) f.report(field(p, name), 'not supported in a sidecar\'s ingress TLS: use serverCertificate and privateKey');
  }
  if (mode === 'ISTIO_MUTUAL' || mode === 'AUTO_PASSTHROUGH') f.report(field(p, 'mode'), `${mode} is not allowed in a sidecar's ingress TLS`);
  if (!isTLSProtocol(protocol)) f.report(p, 'TLS settings need a port whose protocol is HTTPS or TLS');
  const fromCredential = nonEmpty(tls.credentialName) || asList(tls.credentialNames).length > 0;
  if ((mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL') && !fromCredential) {
    if (mode !== 'SIMPLE' && !nonEmpty(tls.caCertificates)) f.report(field(p, 'caCertificates'), `required for ${mode} mode`);
    const certs = eachObj(tls.tlsCertificates, field(p, 'tlsCertificates'));
    for (const [cert, cp] of certs.length > 0 ? certs : [[tls, p] as [Obj, string]]) {
      if (!nonEmpty(cert.serverCertificate)) f.report(field(cp, 'serverCertificate'), `required for ${mode} mode`);
      if (!nonEmpty(cert.privateKey)) f.report(field(cp, 'privateKey'), `required for ${mode} mode`);
    }
  }
  if (nonEmpty(tls.caCrl) && mode === 'SIMPLE') f.report(field(p, 'caCrl'), 'not supported with SIMPLE TLS');
}

// ---- egress ----

function checkEgress(f: Findings, egress: unknown): void {
  const listeners = asList(egress);
  const numbers = new Set<number>();
  const sockets = new Set<string>();
  for (const [i, item] of listeners.entries()) {
    const listener = asObj(item);
    if (!listener) continue; // a schema error
    const p = index('spec.egress', i);
    const port = asObj(listener.port);
    if (!isSet(listener.port)) {
      // The listener without a port catches what the others do not: there is one, and it comes
      // last. (Istio's separate "only one" message cannot be reached: a second one is not last.)
      if (i !== listeners.length - 1) f.report(p, 'the egress listener without a port must be the last one (and the only one)');
    } else if (port) {
      const pp = field(p, 'port');
      checkListenerPort(f, port, pp);
      const bind = asStr(listener.bind) ?? '';
      const number = asNum(port.number) ?? 0;
      if (number === 0) {
        const socket = checkSocketListener(f, listener, bind, p);
        if (socket && sockets.has(bind)) f.report(field(p, 'bind'), `the unix socket "${bind}" is bound by another egress listener`);
        sockets.add(bind);
      } else {
        const bad = checkPort(number);
        if (bad) f.report(field(pp, 'number'), bad);
        else if (numbers.has(number)) f.report(field(pp, 'number'), `port ${number} is used by another egress listener`);
        numbers.add(number);
        checkBindIP(f, bind, field(p, 'bind'));
      }
    }
    if (asList(listener.hosts).length === 0) f.report(field(p, 'hosts'), 'at least one host is required');
    for (const [host, hp] of eachStr(listener.hosts, field(p, 'hosts'))) f.report(hp, checkEgressHost(host));
  }
}

/** Port 0: the listener is a unix domain socket, named by bind. Returns whether bind is one. */
function checkSocketListener(f: Findings, listener: Obj, bind: string, p: string): boolean {
  const mode = asStr(listener.captureMode) ?? 'DEFAULT';
  if (mode !== 'DEFAULT' && mode !== 'NONE') f.report(field(p, 'captureMode'), 'must be DEFAULT or NONE for a unix domain socket listener');
  const problem = bind.startsWith(UNIX_PREFIX)
    ? checkUnixAddress(bind.slice(UNIX_PREFIX.length))
    : 'a listener on port 0 must bind a unix domain socket (unix:///path)';
  f.report(field(p, 'bind'), problem);
  return problem === undefined;
}

/** Istio's ValidateNamespaceSlashWildcardHostname for a Sidecar: "namespace/dnsName". */
function checkEgressHost(host: string): string | undefined {
  const slash = host.indexOf('/');
  if (slash < 0) return 'must be namespace/dnsName, e.g. "./reviews.default.svc.cluster.local" or "istio-system/*"';
  const namespace = host.slice(0, slash);
  const name = host.slice(slash + 1);
  if (namespace === '' || name === '') return 'the namespace and the dnsName must not be empty';
  // "*", ".", or a namespace, each optionally with "~" before it to leave it out.
  const ns = namespace.startsWith('~') ? namespace.slice(1) : namespace;
  if (ns !== '' && ns !== '*' && ns !== '.' && !isDNS1123Label(ns)) return `invalid namespace "${namespace}"`;
  if (name !== '*' && !name.includes('.')) return `"${name}" is a short name: write the full name (e.g. reviews.default.svc.cluster.local)`;
  const problem = checkWildcardDomain(name);
  if (problem) return problem;
  if (name.includes('*') && name !== '*' && !name.startsWith('*.')) return `partial wildcard "${name}" is not allowed`;
  return undefined;
}

// ---- outbound traffic policy ----

function checkOutboundTrafficPolicy(f: Findings, policy: Obj | undefined, p: string): void {
  const proxy = asObj(policy?.egressProxy);
  if (!policy || !proxy) return;
  const pp = field(p, 'egressProxy');
  if (policy.mode !== 'ALLOW_ANY') {
    f.report(pp, 'can only be set with mode ALLOW_ANY');
    return;
  }
  const host = asStr(proxy.host);
  if (host !== undefined) f.report(field(pp, 'host'), checkFQDN(host));
  const port = asObj(proxy.port);
  if (!port) {
    f.report(field(pp, 'port'), 'required');
    return;
  }
  if (nonEmpty(proxy.subset) && !isDNS1123Label(proxy.subset)) {
    f.report(field(pp, 'subset'), `subset name "${proxy.subset}" is invalid: must be a DNS-1123 label`);
  }
  f.report(field(field(pp, 'port'), 'number'), checkPort(asNum(port.number) ?? 0));
}
