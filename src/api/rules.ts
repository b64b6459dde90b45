// Field-level rules shared by the schema checker and the per-kind validators. Each returns
// undefined when the value is fine, or a short message (no field path: callers add that).
// They follow Istio's pkg/config/validation (and pkg/config/labels) unless a comment says otherwise.

import { RE2JS } from 're2js';
import { isIP } from 'node:net';

// ---- durations ------------------------------------------------------------------------------

/**
 * 'min1ms': the CRD's CEL rule `duration(self) >= duration('1ms')` plus Istio's ValidateDuration
 *           (whole milliseconds only).
 * 'any':    any well-formed, non-negative duration (fields the CRD leaves without a rule).
 */
export type DurationCheck = 'min1ms' | 'any';

export { parseDuration } from './duration.ts';

const MILLI = 1_000_000n;

export function checkDuration(nanos: bigint | undefined, check: DurationCheck): string | undefined {
  if (nanos === undefined) return 'must be a duration such as "1.5s", "100ms" or "1h"';
  if (nanos < 0n) return 'must not be negative';
  if (check === 'any') return undefined;
  if (nanos < MILLI) return 'must be a duration of at least 1ms';
  if (nanos % MILLI !== 0n) return 'must be a whole number of milliseconds';
  return undefined;
}

// ---- DNS names and hosts ---------------------------------------------------------------------

// Istio's own label format (pkg/config/labels) allows upper case in host names.
const ISTIO_DNS_LABEL = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const ISTIO_WILDCARD_LABEL = /^(?:\*|(?:\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;
// Kubernetes object names and namespaces are lower case only.
const K8S_DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;

/** Istio's labels.IsDNS1123Label: subset names, namespaces in gateway references, etc. */
export function isDNS1123Label(v: string): boolean {
  return v.length <= 63 && ISTIO_DNS_LABEL.test(v);
}

/** Kubernetes' metadata.namespace rule. */
export function checkK8sNamespace(v: string): string | undefined {
  if (v.length > 63 || !K8S_DNS_LABEL.test(v)) {
    return 'must be a DNS-1123 label: at most 63 lower-case letters, digits or "-", starting and ending with a letter or digit';
  }
  return undefined;
}

/** Kubernetes' metadata.name rule for these kinds: a DNS-1123 subdomain. */
export function checkK8sName(v: string): string | undefined {
  if (v.length > 253 || !v.split('.').every((label) => K8S_DNS_LABEL.test(label))) {
    return 'must be a DNS-1123 subdomain: lower-case letters, digits, "-" and ".", starting and ending with a letter or digit, at most 253 characters';
  }
  return undefined;
}

function checkDNS1123Labels(domain: string, whole: string): string | undefined {
  const parts = domain.split('.');
  const tld = parts[parts.length - 1] ?? '';
  if (/^\d+$/.test(tld)) return `domain name "${whole}" invalid (top level domain "${tld}" cannot be all-numeric)`;
  for (const [i, label] of parts.entries()) {
    // A trailing dot ("istio.io.") is allowed.
    if (i === parts.length - 1 && label === '') return undefined;
    if (!isDNS1123Label(label)) return `domain name "${whole}" invalid (label "${label}" invalid)`;
  }
  return undefined;
}

function checkDomainPreconditions(name: string): string | undefined {
  if (name.length > 255) return `domain name "${name}" too long (max 255)`;
  if (name.length === 0) return 'must not be empty';
  return undefined;
}

/** Istio's ValidateFQDN. */
export function checkFQDN(name: string): string | undefined {
  return checkDomainPreconditions(name) ?? checkDNS1123Labels(name, name);
}

/** Istio's ValidateWildcardDomain: an FQDN or short name whose first label may be "*" or start with "*". */
export function checkWildcardDomain(name: string): string | undefined {
  const pre = checkDomainPreconditions(name);
  if (pre) return pre;
  const dot = name.indexOf('.');
  const first = dot < 0 ? name : name.slice(0, dot);
  if (first.length > 63 || !ISTIO_WILDCARD_LABEL.test(first)) return `domain name "${name}" invalid (label "${first}" invalid)`;
  return dot < 0 ? undefined : checkDNS1123Labels(name.slice(dot + 1), name);
}

/**
 * Istio's ValidateWildcardDomainForVirtualServiceBoundToGateway: checkWildcardDomain, except that
 * where `sni` holds a name of the form "outbound_.<port>_._.<host>" is accepted too. Those are the
 * SNI names Istio's sidecars give mTLS connections, which an east-west gateway in AUTO_PASSTHROUGH
 * routes by (the port has a digit, the host a letter, as Istio checks).
 */
export function checkWildcardDomainForGateway(sni: boolean, name: string): string | undefined {
  const pre = checkDomainPreconditions(name);
  if (pre) return pre;
  if (!sni || !name.startsWith('outbound_')) return checkWildcardDomain(name);
  const parts = name.split('_');
  if (parts.length < 4) return `domain name "${name}" invalid, should follow "outbound_.<port>_._.<hostname>"`;
  const trim = (s: string) => s.replace(/^\.+|\.+$/g, ''); // Go's strings.Trim(s, ".")
  const port = trim(parts[1]!);
  const host = trim(parts[3]!);
  if (!/[0-9]/.test(port)) return `domain name "${name}" invalid (label "${port}" invalid), should follow "outbound_.<port>_._.<hostname>"`;
  if (!/[a-zA-Z]/.test(host)) return `domain name "${name}" invalid (label "${host}" invalid), should follow "outbound_.<port>_._.<hostname>"`;
  return undefined;
}

export function isIPAddress(v: string): boolean {
  return isIP(v) !== 0;
}

/** Istio's ValidateIPSubnet: an IP address or a CIDR block. */
export function checkIPSubnet(v: string): string | undefined {
  const slash = v.split('/');
  if (slash.length === 2) {
    const [ip = '', bits = ''] = slash;
    const family = isIP(ip);
    const max = family === 4 ? 32 : 128;
    if (family === 0 || !/^\d+$/.test(bits) || Number(bits) > max) return `"${v}" is not a valid CIDR block`;
    return undefined;
  }
  return isIP(v) === 0 ? `"${v}" is not a valid IP address` : undefined;
}

/**
 * Istio's host.Name.Matches: do two hosts (either may be a wildcard) overlap? Used to reject
 * duplicate VirtualService hosts and to check TLS SNI hosts.
 */
export function hostsOverlap(a: string, b: string): boolean {
  const aWild = a.startsWith('*');
  const bWild = b.startsWith('*');
  if (!aWild && !bWild) return a === b;
  if (aWild && bWild) return a.length > b.length ? a.endsWith(b.slice(1)) : b.endsWith(a.slice(1));
  return aWild ? b.endsWith(a.slice(1)) : a.endsWith(b.slice(1));
}

/** Whether a workload with `labels` is selected by `selector` (matchLabels): each of its labels is among them; none selects all. */
export function labelsMatch(selector: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector ?? {})) if (labels[k] !== v) return false;
  return true;
}

/** Istio's root namespace: its policies (and a Sidecar without a workloadSelector) apply mesh-wide. */
export const ROOT_NAMESPACE = 'istio-system';

/**
 * A host as Istio resolves a short name in the namespace of the resource that names it
 * (ResolveShortnameToFQDN): "reviews" in "default" -> "reviews.default.svc.cluster.local"; a name
 * with a dot, or a wildcard, stays as it is.
 */
export function fqdn(host: string, namespace: string): string {
  return host.includes('.') || host.startsWith('*') ? host : `${host}.${namespace}.svc.cluster.local`;
}

/** Istio's host.Name.SubsetOf: is every host matched by `a` also matched by `b`? */
export function hostSubsetOf(a: string, b: string): boolean {
  if (b.startsWith('*')) {
    if (a.startsWith('*')) return a.slice(1).endsWith(b.slice(1));
    return a.endsWith(b.slice(1));
  }
  return !a.startsWith('*') && a === b;
}

// ---- labels ------------------------------------------------------------------------------------

const QUALIFIED_NAME = /^(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(?:(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** A Kubernetes label key: an optional DNS-subdomain prefix and "/", then a name of at most 63 characters. */
export function checkLabelKey(k: string): string | undefined {
  const slash = k.lastIndexOf('/');
  const prefix = slash < 0 ? undefined : k.slice(0, slash);
  const name = slash < 0 ? k : k.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > 253 || !prefix.split('.').every((l) => K8S_DNS_LABEL.test(l)))) {
    return `invalid label key "${k}": the prefix must be a DNS-1123 subdomain`;
  }
  if (name.length > 63 || !QUALIFIED_NAME.test(name)) {
    return `invalid label key "${k}": must be at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`;
  }
  return undefined;
}

export function checkLabelValue(v: string): string | undefined {
  if (v.length > 63 || !LABEL_VALUE.test(v)) {
    return `invalid label value "${v}": must be empty or at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`;
  }
  return undefined;
}

// ---- regular expressions -----------------------------------------------------------------------

/**
 * Does `re` compile as RE2, the engine Istio and Envoy use? Checked with re2js, the same RE2 port
 * the sidecar matches with, so every regex accepted here is one the sidecar loads and runs as
 * Envoy would (lookarounds and back-references are refused: RE2 has none).
 */
export function checkRegex(re: string): string | undefined {
  if (re.length > 1024) return 'regex is too large, max length allowed is 1024';
  try {
    RE2JS.compile(re);
    return undefined;
  } catch (err) {
    return `invalid RE2 regex: ${(err as Error).message.replace(/^error parsing regexp: /, '')}`;
  }
}

// ---- HTTP headers --------------------------------------------------------------------------------

// RFC 7230 token characters: what Istio's validHeaderNameRegex accepts.
const HEADER_TOKEN = /^[!#$%&'*+\-.^_`|~A-Za-z0-9]+$/;
const PSEUDO_HEADERS = new Set([':method', ':scheme', ':authority', ':path', ':status']);
const JWT_CLAIM_ROUTE = /^@request\.auth\.claims(?:\.[^.]+|\[[^\]]+\])+$/;

export function isJwtClaimRoute(name: string): boolean {
  return JWT_CLAIM_ROUTE.test(name);
}

/**
 * A header name in a match (headers / withoutHeaders). Istio's ValidateHTTPHeaderNameOrJwtClaimRoute,
 * plus the API's documented requirement that header keys be lower case (Envoy lower-cases
 * incoming header names, so "X-User" would silently never match).
 */
export function checkMatchHeaderName(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (isJwtClaimRoute(name) || PSEUDO_HEADERS.has(name)) return undefined;
  if (!HEADER_TOKEN.test(name)) return `header name "${name}" is not a valid header name`;
  if (name !== name.toLowerCase()) return `header name "${name}" must be lower case`;
  return undefined;
}

export function checkCorsHeaderName(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (name === '*' || HEADER_TOKEN.test(name)) return undefined;
  return `header name "${name}" is not a valid header name`;
}

export function isInternalHeader(name: string): boolean {
  return name.startsWith(':') || name.toLowerCase() === 'host';
}

export function isAuthorityHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return lower === ':authority' || lower === 'host';
}

/** Istio's ValidateHTTPHeaderWithAuthorityOperationName: request add/set. */
export function checkRequestHeaderSetName(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (isInternalHeader(name) && !isAuthorityHeader(name)) return `invalid header "${name}": header cannot have ":" prefix`;
  return undefined;
}

/** Istio's ValidateHTTPHeaderOperationName: request remove, response add/set/remove. */
export function checkHeaderOperationName(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (name.toLowerCase() === 'host') return `invalid header "${name}": cannot set Host header`;
  if (isInternalHeader(name)) return `invalid header "${name}": header cannot have ":" prefix`;
  return undefined;
}

// Control characters other than horizontal tab (Istio's httpHeaderValueRegexp).
const BAD_HEADER_VALUE = /[\u0000-\u0008\u000A-\u001F\u007F]/;

/**
 * Istio's ValidateHTTPHeaderValue, minus its check of Envoy's %VARIABLE% syntax (Weft does not
 * expand those variables, so the text is sent as written).
 */
export function checkHeaderValue(value: string): string | undefined {
  return BAD_HEADER_VALUE.test(value) ? 'header value must not contain control characters' : undefined;
}

// ---- ports and protocols ------------------------------------------------------------------------

export function checkPort(port: number): string | undefined {
  return port >= 1 && port <= 65535 ? undefined : `port number ${port} must be in the range 1..65535`;
}

/** Istio's ValidatePortName: a DNS-1123 label (upper case allowed, as in Istio's label rule). */
export function checkPortName(name: string): string | undefined {
  return isDNS1123Label(name) ? undefined : `invalid port name "${name}": must be a DNS-1123 label`;
}

// Istio's protocol.Parse: the protocols a port may declare, matched without regard to case.
const PROTOCOLS: ReadonlyMap<string, string> = new Map(
  ['TCP', 'UDP', 'GRPC', 'GRPC-Web', 'HTTP', 'HTTP_PROXY', 'HTTP2', 'HTTPS', 'TLS', 'Mongo', 'Redis', 'MySQL'].map((p) => [p.toLowerCase(), p]),
);

/** The protocol a port declares, in Istio's spelling ("http" -> "HTTP"); undefined when unset or unknown. */
export function parseProtocol(protocol: string): string | undefined {
  return PROTOCOLS.get(protocol.toLowerCase());
}

/** Istio's ValidateProtocol: unset (the protocol is sniffed) or one Istio knows. */
export function checkProtocol(protocol: string): string | undefined {
  if (protocol === '' || parseProtocol(protocol)) return undefined;
  return `unsupported protocol "${protocol}": must be one of ${[...PROTOCOLS.values()].join(', ')}`;
}

/** Istio's Instance.IsHTTP: protocols carried over HTTP. */
export function isHTTPProtocol(protocol: string): boolean {
  return ['HTTP', 'HTTP2', 'HTTP_PROXY', 'GRPC', 'GRPC-Web'].includes(parseProtocol(protocol) ?? '');
}

/** Istio's Instance.IsTLS: protocols carried over TLS. */
export function isTLSProtocol(protocol: string): boolean {
  return ['HTTPS', 'TLS'].includes(parseProtocol(protocol) ?? '');
}

// ---- unix domain sockets ------------------------------------------------------------------------

export const UNIX_PREFIX = 'unix://';

/** Istio's ValidateUnixAddress, for what follows "unix://": an absolute path to a file, or "@name" (abstract). */
export function checkUnixAddress(path: string): string | undefined {
  if (path === '') return 'the unix socket path must not be empty';
  if (path.startsWith('@')) return undefined;
  if (!path.startsWith('/')) return `"${path}" must be an absolute path (unix:///path) or an abstract socket (unix://@name)`;
  if (path.endsWith('/')) return `"${path}" names a directory, not a socket`;
  return undefined;
}
