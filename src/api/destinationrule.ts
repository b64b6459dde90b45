// DestinationRule rules beyond the schema's shape: Istio's ValidateDestinationRule and the
// functions it calls (pkg/config/validation/validation.go, agent/validation.go). Messages are
// ours; the rules are Istio's unless a comment says otherwise.

import type { FieldError } from './types.ts';
import { field, key, type Obj } from './schema.ts';
import {
  Findings,
  asNum,
  asObj,
  asStr,
  checkExportTo,
  checkLabels,
  checkSelectorLabels,
  eachObj,
  eachStr,
  entriesOf,
  isSet,
  nonEmpty,
} from './common.ts';
import { checkDuration, checkFQDN, checkPort, checkWildcardDomain, isDNS1123Label, isIPAddress, parseDuration } from './rules.ts';

export function validateDestinationRule(spec: Obj, namespace: string): FieldError[] {
  const f = new Findings();
  const host = asStr(spec.host);
  if (host !== undefined) f.report('spec.host', checkWildcardDomain(host));
  checkTrafficPolicy(f, asObj(spec.trafficPolicy), 'spec.trafficPolicy');
  checkSubsets(f, spec.subsets);
  const selector = asObj(spec.workloadSelector);
  checkExportTo(f, spec.exportTo, 'spec.exportTo', namespace, selector !== undefined);
  checkSelectorLabels(f, selector?.matchLabels, 'spec.workloadSelector.matchLabels');
  return f.errors;
}

function checkSubsets(f: Findings, subsets: unknown): void {
  const seen = new Set<string>();
  for (const [subset, p] of eachObj(subsets, 'spec.subsets')) {
    const name = asStr(subset.name);
    if (name !== undefined) {
      if (seen.has(name)) f.report(field(p, 'name'), `duplicate subset name "${name}"`);
      else if (name === '') f.report(field(p, 'name'), 'must not be empty');
      else if (!isDNS1123Label(name)) f.report(field(p, 'name'), `subset name "${name}" is invalid: must be a DNS-1123 label`);
      seen.add(name);
    }
    // Labels are optional, as in Istio: a subset without labels selects every endpoint of the host.
    checkLabels(f, subset.labels, field(p, 'labels'));
    checkTrafficPolicy(f, asObj(subset.trafficPolicy), field(p, 'trafficPolicy'));
  }
}

// ---- traffic policy ----

const POLICY_FIELDS = ['outlierDetection', 'connectionPool', 'loadBalancer', 'tls', 'portLevelSettings', 'tunnel', 'proxyProtocol'];

function checkTrafficPolicy(f: Findings, policy: Obj | undefined, p: string): void {
  if (!policy) return;
  // Istio's list leaves out retryBudget (added later); a policy with only a retry budget is not empty.
  if (![...POLICY_FIELDS, 'retryBudget'].some((k) => isSet(policy[k]))) f.report(p, 'must set at least one field');
  if (isSet(policy.tunnel) && isSet(policy.proxyProtocol)) f.report(p, 'tunnel and proxyProtocol must not be set together');
  checkOutlierDetection(f, asObj(policy.outlierDetection), field(p, 'outlierDetection'));
  checkConnectionPool(f, asObj(policy.connectionPool), field(p, 'connectionPool'));
  checkLoadBalancer(f, asObj(policy.loadBalancer), field(p, 'loadBalancer'));
  checkClientTLS(f, asObj(policy.tls), field(p, 'tls'));
  checkPortLevelSettings(f, policy.portLevelSettings, field(p, 'portLevelSettings'));
  checkTunnel(f, asObj(policy.tunnel), field(p, 'tunnel'));
}

function checkPortLevelSettings(f: Findings, settings: unknown, p: string): void {
  for (const [s, sp] of eachObj(settings, p)) {
    if (!isSet(s.port)) f.report(field(sp, 'port'), 'required');
    else f.report(field(field(sp, 'port'), 'number'), checkPort(asNum(asObj(s.port)?.number) ?? 0));
    if (!['outlierDetection', 'connectionPool', 'loadBalancer', 'tls'].some((k) => isSet(s[k]))) {
      f.report(sp, 'must set at least one of outlierDetection, connectionPool, loadBalancer or tls');
    }
    checkOutlierDetection(f, asObj(s.outlierDetection), field(sp, 'outlierDetection'));
    checkConnectionPool(f, asObj(s.connectionPool), field(sp, 'connectionPool'));
    checkLoadBalancer(f, asObj(s.loadBalancer), field(sp, 'loadBalancer'));
    checkClientTLS(f, asObj(s.tls), field(sp, 'tls'));
  }
}

function checkPercent(f: Findings, value: unknown, p: string): void {
  const n = asNum(value);
  if (n !== undefined && (n < 0 || n > 100)) f.report(p, 'must be between 0 and 100');
}

function checkOutlierDetection(f: Findings, o: Obj | undefined, p: string): void {
  if (!o) return;
  const localOrigin = asNum(o.consecutiveLocalOriginFailures) ?? 0;
  if (localOrigin > 0 && o.splitExternalLocalOriginErrors !== true) {
    f.report(field(p, 'consecutiveLocalOriginFailures'), 'requires splitExternalLocalOriginErrors: true');
  }
  checkPercent(f, o.maxEjectionPercent, field(p, 'maxEjectionPercent'));
  checkPercent(f, o.minHealthPercent, field(p, 'minHealthPercent'));
}

function checkNonNegative(f: Findings, o: Obj, names: readonly string[], p: string): void {
  for (const name of names) {
    const n = asNum(o[name]);
    if (n !== undefined && n < 0) f.report(field(p, name), 'must not be negative');
  }
}

/** Istio's validateConnectionPool: also a Sidecar's inbound connection pools (sidecar.ts). */
export function checkConnectionPool(f: Findings, pool: Obj | undefined, p: string): void {
  if (!pool) return;
  const http = asObj(pool.http);
  const tcp = asObj(pool.tcp);
  if (!http && !tcp) f.report(p, 'must set http or tcp');
  if (http) {
    const hp = field(p, 'http');
    checkNonNegative(f, http, ['http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries', 'maxConcurrentStreams'], hp);
    if (http.h2UpgradePolicy === 'UPGRADE' && http.useClientProtocol === true) {
      f.report(field(hp, 'useClientProtocol'), 'must not be true when h2UpgradePolicy is UPGRADE');
    }
    const keepAlive = asObj(http.http2KeepAlive);
    for (const name of ['interval', 'timeout']) {
      if (keepAlive && !isSet(keepAlive[name])) f.report(field(field(hp, 'http2KeepAlive'), name), 'required');
    }
  }
  if (tcp) {
    const tp = field(p, 'tcp');
    checkNonNegative(f, tcp, ['maxConnections'], tp);
    // "0s" turns the idle timeout off; any other value must be a whole number of milliseconds >= 1ms.
    const idle = parseDuration(asStr(tcp.idleTimeout) ?? '');
    if (idle !== undefined && idle !== 0n) f.report(field(tp, 'idleTimeout'), checkDuration(idle, 'min1ms'));
  }
}

function checkLoadBalancer(f: Findings, lb: Obj | undefined, p: string): void {
  if (!lb) return;
  checkConsistentHash(f, asObj(lb.consistentHash), field(p, 'consistentHash'));
  checkLocalityLb(f, asObj(lb.localityLbSetting), field(p, 'localityLbSetting'));
  const warmup = asObj(lb.warmup);
  const aggression = asNum(warmup?.aggression);
  // The CRD only requires >= 0 (a schema error); Istio's webhook requires >= 1.
  if (aggression !== undefined && aggression < 1) f.report(field(field(p, 'warmup'), 'aggression'), 'must be at least 1');
}

const MAGLEV_MAX_TABLE_SIZE = 5000011;

function checkConsistentHash(f: Findings, hash: Obj | undefined, p: string): void {
  if (!hash) return;
  // Envoy refuses cookie attributes that are not header text (Istio passes them on); so does Weft.
  for (const [a, ap] of eachObj(asObj(hash.httpCookie)?.attributes, field(field(p, 'httpCookie'), 'attributes'))) {
    if (/[\0\r\n]/.test(`${asStr(a.name) ?? ''}${asStr(a.value) ?? ''}`)) f.report(ap, 'a cookie attribute must not hold NUL, CR or LF');
  }
  const ringSize = asNum(hash.minimumRingSize) ?? 0;
  if (ringSize !== 0 && (isSet(hash.ringHash) || isSet(hash.maglev))) {
    f.report(p, 'only one of minimumRingSize or ringHash/maglev may be set');
  }
  const maglev = asObj(hash.maglev);
  if (!maglev) return;
  const tp = field(field(p, 'maglev'), 'tableSize');
  const size = asNum(maglev.tableSize) ?? 0;
  if (size === 0) f.report(tp, 'required for maglev');
  else if (size >= MAGLEV_MAX_TABLE_SIZE) f.report(tp, `must be less than ${MAGLEV_MAX_TABLE_SIZE}`);
  else if (!isPrime(size)) f.report(tp, 'must be a prime number');
}

/** Envoy's own primality test for Maglev table sizes (Istio copies it). */
function isPrime(x: number): boolean {
  if (x !== 0 && x < 4) return true;
  if (x % 2 === 0) return false;
  for (let factor = 3; factor * factor <= x; factor += 2) {
    if (x % factor === 0) return false;
  }
  return true;
}

const TOPOLOGY_LABELS = new Set(['topology.kubernetes.io/region', 'topology.kubernetes.io/zone', 'topology.istio.io/subzone']);

// Istio only warns (it does not fail) when failover is set without outlier detection to trigger it.
/** ValidateLocalityLbSetting (a DestinationRule's, and the mesh config's localityLbSetting). */
export function checkLocalityLb(f: Findings, lb: Obj | undefined, p: string): void {
  if (!lb) return;
  const distribute = eachObj(lb.distribute, field(p, 'distribute'));
  const failover = eachObj(lb.failover, field(p, 'failover'));
  if (distribute.length > 0 && failover.length > 0) {
    f.report(p, 'cannot set both distribute and failover');
    return;
  }
  if (failover.length > 0) {
    for (const [label, lp] of eachStr(lb.failoverPriority, field(p, 'failoverPriority'))) {
      if (TOPOLOGY_LABELS.has(label)) f.report(lp, `cannot use the topology label "${label}" together with failover`);
    }
  }
  for (const [d, dp] of distribute) checkDistribute(f, d, dp);
  for (const [fo, fp] of failover) {
    if (fo.from === fo.to) f.report(fp, 'from and to must be different regions');
    if ([fo.from, fo.to].some((v) => typeof v === 'string' && v.includes('/'))) f.report(fp, 'failover from and to must be regions, not zones');
  }
}

function checkDistribute(f: Findings, d: Obj, p: string): void {
  const from = asStr(d.from);
  if (from !== undefined) f.report(field(p, 'from'), checkLocality(from));
  let total = 0;
  for (const [locality, weight] of entriesOf(d.to)) {
    const lp = key(field(p, 'to'), locality);
    f.report(lp, checkLocality(locality));
    const w = asNum(weight) ?? 0;
    if (w < 1 || w > 100) f.report(lp, 'locality weight must be between 1 and 100');
    total += w;
  }
  if (total !== 100) f.report(field(p, 'to'), `locality weights must add up to 100 (they add up to ${total})`);
}

/** region[/zone[/subzone]], where "*" may stand for the whole of the last part. */
function checkLocality(locality: string): string | undefined {
  const parts = locality.split('/');
  if (parts.length > 3 || parts.some((part) => part === '')) return `locality "${locality}" must be region, region/zone or region/zone/subzone`;
  const star = parts.findIndex((part) => part.includes('*'));
  if (star >= 0 && (star !== parts.length - 1 || parts[star] !== '*')) return `locality "${locality}": "*" may only be the whole of the last part`;
  return undefined;
}

/** Istio's agent.ValidateTLS for client (upstream) TLS settings. */
function checkClientTLS(f: Findings, tls: Obj | undefined, p: string): void {
  if (!tls) return;
  const mode = asStr(tls.mode);
  const credentialName = nonEmpty(tls.credentialName);
  if (tls.insecureSkipVerify === true) {
    if (mode === 'SIMPLE' && (nonEmpty(tls.caCertificates) || credentialName || isSet(tls.subjectAltNames))) {
      f.report(p, 'cannot set caCertificates, credentialName or subjectAltNames when insecureSkipVerify is true');
    }
    if (mode === 'MUTUAL' && (nonEmpty(tls.caCertificates) || isSet(tls.subjectAltNames))) {
      f.report(p, 'cannot set caCertificates or subjectAltNames when insecureSkipVerify is true');
    }
  }
  if ((mode === 'SIMPLE' || mode === 'MUTUAL') && credentialName) {
    if (['clientCertificate', 'caCertificates', 'privateKey', 'caCrl'].some((k) => nonEmpty(tls[k]))) {
      f.report(p, 'cannot set clientCertificate, caCertificates, privateKey or caCrl when credentialName is set');
    }
    return;
  }
  if (mode === 'MUTUAL') {
    if (!nonEmpty(tls.clientCertificate)) f.report(field(p, 'clientCertificate'), 'required for MUTUAL mode (or set credentialName)');
    if (!nonEmpty(tls.privateKey)) f.report(field(p, 'privateKey'), 'required for MUTUAL mode (or set credentialName)');
  }
}

function checkTunnel(f: Findings, tunnel: Obj | undefined, p: string): void {
  if (!tunnel) return;
  const protocol = asStr(tunnel.protocol);
  if (nonEmpty(protocol) && protocol !== 'CONNECT' && protocol !== 'POST') f.report(field(p, 'protocol'), 'must be "CONNECT" or "POST"');
  const host = asStr(tunnel.targetHost);
  if (host !== undefined && checkFQDN(host) && !isIPAddress(host)) {
    f.report(field(p, 'targetHost'), 'must be a valid FQDN or IP address');
  }
  const port = asNum(tunnel.targetPort);
  if (port !== undefined) f.report(field(p, 'targetPort'), checkPort(port));
}
