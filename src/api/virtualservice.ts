// VirtualService rules beyond the schema's shape: Istio's ValidateVirtualService and the
// functions it calls (pkg/config/validation/virtualservice.go and validation.go). Messages are
// ours; the rules are Istio's unless a comment says otherwise. Warnings Istio only logs (deprecated
// fields, unreachable rules) are not reported.

import type { FieldError } from './types.ts';
import { field, key, type Obj } from './schema.ts';
import {
  Findings,
  asList,
  asNum,
  asObj,
  asStr,
  checkExportTo,
  checkGatewayNames,
  checkLabels,
  checkPercentage,
  eachObj,
  eachStr,
  entriesOf,
  isSet,
  nonEmpty,
} from './common.ts';
import {
  checkCorsHeaderName,
  checkHeaderOperationName,
  checkHeaderValue,
  checkIPSubnet,
  checkMatchHeaderName,
  checkPort,
  checkRegex,
  checkRequestHeaderSetName,
  checkWildcardDomain,
  checkWildcardDomainForGateway,
  hostSubsetOf,
  hostsOverlap,
  isAuthorityHeader,
  isDNS1123Label,
  isIPAddress,
  isJwtClaimRoute,
  parseDuration,
} from './rules.ts';

/** What every rule may need to know about the VirtualService it is in. */
interface Context {
  readonly f: Findings;
  readonly hosts: readonly string[];
  /** Bound only to ingress/egress gateways (gateways set, and "mesh" not among them). */
  readonly appliesToGateway: boolean;
  /**
   * "mesh" not named in gateways (Istio's isGateway, which holds when gateways is empty too): SNI
   * hosts are then checked by gateway rules, which take Istio's "outbound_.<port>_._.<host>" names.
   */
  readonly sniByGatewayRules: boolean;
}

export function validateVirtualService(spec: Obj, namespace: string): FieldError[] {
  const f = new Findings();
  const gateways = eachStr(spec.gateways, 'spec.gateways').map(([g]) => g);
  const ctx: Context = {
    f,
    hosts: eachStr(spec.hosts, 'spec.hosts').map(([h]) => h),
    appliesToGateway: gateways.length > 0 && !gateways.includes('mesh'),
    sniByGatewayRules: !gateways.includes('mesh'),
  };
  checkGatewayNames(f, spec.gateways, 'spec.gateways');
  checkHosts(ctx, spec.hosts, hasSniHosts(spec));
  const delegate = asList(spec.hosts).length === 0;
  if (delegate) {
    // No hosts: a delegate, whose http routes only a root VirtualService's routes use (delegation.ts).
    if (asList(spec.gateways).length > 0) f.report('spec.gateways', 'a delegate VirtualService (one without hosts) must have no gateways: its roots bind it');
    if (asList(spec.tls).length > 0) f.report('spec.tls', 'a delegate VirtualService (one without hosts) must have no tls routes: only http routes are delegated');
    if (asList(spec.tcp).length > 0) f.report('spec.tcp', 'a delegate VirtualService (one without hosts) must have no tcp routes: only http routes are delegated');
  }
  if (asList(spec.http).length === 0 && asList(spec.tcp).length === 0 && asList(spec.tls).length === 0) {
    f.report('spec', 'at least one of http, tcp or tls routes is required');
  }
  for (const [route, p] of eachObj(spec.http, 'spec.http')) {
    if (delegate && isSet(route.delegate)) f.report(field(p, 'delegate'), 'a delegate VirtualService (one without hosts) cannot delegate further');
    checkHTTPRoute(ctx, route, p);
  }
  for (const [route, p] of eachObj(spec.tls, 'spec.tls')) checkTLSRoute(ctx, route, p);
  for (const [route, p] of eachObj(spec.tcp, 'spec.tcp')) checkTCPRoute(ctx, route, p);
  checkExportTo(f, spec.exportTo, 'spec.exportTo', namespace);
  return f.errors;
}

// ---- hosts ----

/** Istio's isSniHost: some tls match names SNI hosts. */
function hasSniHosts(spec: Obj): boolean {
  return asList(spec.tls).some((r) => asList(asObj(r)?.match).some((m) => asList(asObj(m)?.sniHosts).length > 0));
}

function checkHosts(ctx: Context, hostsField: unknown, sni: boolean): void {
  const { f } = ctx;
  let allValid = true;
  for (const [host, p] of eachStr(hostsField, 'spec.hosts')) {
    const problem = ctx.appliesToGateway ? checkWildcardDomainForGateway(sni, host) : checkWildcardDomain(host);
    if (problem && !isIPAddress(host)) {
      f.report(p, problem);
      allValid = false;
    } else if (!ctx.appliesToGateway && host === '*') {
      f.report(p, 'wildcard host * is not allowed for virtual services bound to the mesh');
      allValid = false;
    }
  }
  if (!allValid) return;
  const hosts = eachStr(hostsField, 'spec.hosts');
  for (const [i, [a]] of hosts.entries()) {
    for (const [b, p] of hosts.slice(i + 1)) {
      if (hostsOverlap(a, b)) f.report(p, `duplicate host: "${b}" overlaps "${a}"`);
    }
  }
}

// ---- HTTP ----

function checkHTTPRoute(ctx: Context, r: Obj, p: string): void {
  checkRouteKind(ctx.f, r, p);
  for (const [m, mp] of eachObj(r.match, field(p, 'match'))) checkHTTPMatch(ctx, m, mp);
  checkHeaderOperations(ctx.f, r.headers, field(p, 'headers'));
  checkAuthorityRewrite(ctx.f, r, p);
  checkCors(ctx.f, asObj(r.corsPolicy), field(p, 'corsPolicy'));
  checkFault(ctx.f, asObj(r.fault), field(p, 'fault'));
  checkMirrors(ctx.f, r, p);
  checkRedirect(ctx.f, asObj(r.redirect), field(p, 'redirect'));
  checkDirectResponse(ctx.f, asObj(r.directResponse), field(p, 'directResponse'));
  checkRetries(ctx.f, asObj(r.retries), field(p, 'retries'));
  checkRewrite(ctx.f, asObj(r.rewrite), field(p, 'rewrite'));
  checkSessionPersistence(ctx.f, asObj(r.sessionPersistence), field(p, 'sessionPersistence'));
  checkHTTPDestinations(ctx.f, r.route, field(p, 'route'));
}

/** Istio's validateHTTPRouteConflict: what a route does must be said exactly once. */
function checkRouteKind(f: Findings, r: Obj, p: string): void {
  const routes = asList(r.route);
  if (isSet(r.delegate)) {
    // A root route's requests go where its delegate's routes send them, not where it says (as in
    // Istio, a directResponse stays allowed: the delegate's routes that set none take it).
    if (isSet(r.redirect)) f.report(field(p, 'redirect'), 'must not be set together with delegate');
    if (isSet(r.route)) f.report(field(p, 'route'), 'must not be set together with delegate');
  } else if (isSet(r.redirect)) {
    for (const other of ['fault', 'rewrite', 'directResponse']) {
      if (isSet(r[other])) f.report(field(p, other), 'must not be set together with redirect');
    }
    if (routes.length > 0) f.report(field(p, 'route'), 'must not be set together with redirect');
  } else if (isSet(r.directResponse)) {
    for (const other of ['fault', 'rewrite']) {
      if (isSet(r[other])) f.report(field(p, other), 'must not be set together with directResponse');
    }
    if (routes.length > 0) f.report(field(p, 'route'), 'must not be set together with directResponse');
  } else if (routes.length === 0) {
    f.report(p, 'one of route, redirect, directResponse or delegate is required');
  }
  if (isSet(r.mirror) && asList(r.mirrors).length > 0) f.report(field(p, 'mirrors'), 'must not be set together with mirror');
}

const MATCH_KINDS = ['exact', 'prefix', 'regex', 'suffix'] as const;

interface StringMatchOptions {
  /** An empty match `{}` is allowed: for header, query parameter and withoutHeaders maps it tests presence. */
  readonly allowEmpty?: boolean;
  /** uri allows `prefix: ""` (Envoy's path prefix); scheme, method and authority do not. */
  readonly allowEmptyPrefix?: boolean;
  /** withoutHeaders accepts `regex: "*"`, which Istio translates to a presence check. */
  readonly allowStarRegex?: boolean;
}

/** Istio's validateStringMatch, plus "exactly one kind" where an empty match means nothing. */
function checkStringMatch(f: Findings, sm: unknown, p: string, opts: StringMatchOptions = {}): void {
  const m = asObj(sm);
  if (!m) return;
  const kinds = MATCH_KINDS.filter((k) => isSet(m[k]));
  if (kinds.length === 0 && !opts.allowEmpty) {
    f.report(p, 'one of exact, prefix, regex or suffix is required');
  }
  if (m.prefix === '' && !opts.allowEmptyPrefix) f.report(field(p, 'prefix'), 'must not be empty');
  const regex = asStr(m.regex);
  if (regex === undefined || (opts.allowStarRegex && regex === '*')) return;
  f.report(field(p, 'regex'), regex === '' ? 'must not be empty' : checkRegex(regex));
}

function checkHTTPMatch(ctx: Context, m: Obj, p: string): void {
  const { f } = ctx;
  for (const name of ['headers', 'withoutHeaders'] as const) {
    for (const [header, sm] of entriesOf(m[name])) {
      const hp = key(field(p, name), header);
      f.report(hp, checkMatchHeaderName(header));
      // JWT claims are only known at the gateway, where the token is checked.
      if (isJwtClaimRoute(header) && !ctx.appliesToGateway) {
        f.report(hp, 'routing on JWT claims is only supported for virtual services bound to a gateway');
      }
      checkStringMatch(f, sm, hp, { allowEmpty: true, allowStarRegex: name === 'withoutHeaders' });
    }
  }
  checkStringMatch(f, m.uri, field(p, 'uri'), { allowEmptyPrefix: true });
  for (const name of ['scheme', 'method', 'authority'] as const) checkStringMatch(f, m[name], field(p, name));
  for (const [param, sm] of entriesOf(m.queryParams)) {
    checkStringMatch(f, sm, key(field(p, 'queryParams'), param), { allowEmpty: true });
  }
  const port = asNum(m.port);
  if (port !== undefined && port !== 0) f.report(field(p, 'port'), checkPort(port));
  checkLabels(f, m.sourceLabels, field(p, 'sourceLabels'));
  checkGatewayNames(f, m.gateways, field(p, 'gateways'));
  if (nonEmpty(m.sourceNamespace) && !isDNS1123Label(m.sourceNamespace)) {
    f.report(field(p, 'sourceNamespace'), 'must be a valid namespace name');
  }
}

/** Header add/set/remove, on a route or on one destination of it. */
function checkHeaderOperations(f: Findings, headers: unknown, p: string): void {
  const h = asObj(headers);
  if (!h) return;
  const request = asObj(h.request);
  const response = asObj(h.response);
  for (const op of ['add', 'set'] as const) {
    for (const [name, value] of entriesOf(request?.[op])) {
      const hp = key(field(field(p, 'request'), op), name);
      f.report(hp, checkRequestHeaderSetName(name));
      if (typeof value === 'string') f.report(hp, checkHeaderValue(value));
    }
    for (const [name, value] of entriesOf(response?.[op])) {
      const hp = key(field(field(p, 'response'), op), name);
      f.report(hp, checkHeaderOperationName(name));
      if (typeof value === 'string') f.report(hp, checkHeaderValue(value));
    }
  }
  for (const [which, ops] of [['request', request], ['response', response]] as const) {
    for (const [name, np] of eachStr(ops?.remove, field(field(p, which), 'remove'))) f.report(np, checkHeaderOperationName(name));
  }
}

/** Istio's validateAuthorityRewrite: the authority may be rewritten in one place only. */
function checkAuthorityRewrite(f: Findings, r: Obj, p: string): void {
  let current = asStr(asObj(r.rewrite)?.authority) ?? '';
  const request = asObj(asObj(r.headers)?.request);
  for (const op of ['set', 'add'] as const) {
    for (const [name, value] of entriesOf(request?.[op])) {
      if (!isAuthorityHeader(name)) continue;
      if (current !== '') {
        f.report(key(field(field(field(p, 'headers'), 'request'), op), name), `the authority is already rewritten to "${current}"`);
      }
      current = typeof value === 'string' ? value : current;
    }
  }
}

const CORS_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', '*']);

function checkCors(f: Findings, cors: Obj | undefined, p: string): void {
  if (!cors) return;
  for (const [origin, op] of eachObj(cors.allowOrigins, field(p, 'allowOrigins'))) {
    const value = MATCH_KINDS.map((k) => origin[k]).find(isSet);
    if (value === '' || value === undefined) f.report(op, 'must set a non-empty exact, prefix, regex or suffix');
    else checkStringMatch(f, origin, op);
  }
  for (const [method, mp] of eachStr(cors.allowMethods, field(p, 'allowMethods'))) {
    if (!CORS_METHODS.has(method)) f.report(mp, `"${method}" is not a supported HTTP method`);
  }
  for (const name of ['allowHeaders', 'exposeHeaders'] as const) {
    for (const [header, hp] of eachStr(cors[name], field(p, name))) f.report(hp, checkCorsHeaderName(header));
  }
  const maxAge = parseDuration(asStr(cors.maxAge) ?? '');
  if (maxAge !== undefined && maxAge % 1_000_000_000n !== 0n) f.report(field(p, 'maxAge'), 'must be a whole number of seconds');
}

// gRPC status names accepted for abort.grpcStatus (Istio's grpc.SupportedGRPCStatus).
const GRPC_STATUSES = new Set([
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE',
  'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
]);

function checkHTTPStatus(f: Findings, status: unknown, p: string): void {
  const n = asNum(status);
  if (n !== undefined && (n < 200 || n > 599)) f.report(p, 'must be an HTTP status between 200 and 599');
}

function checkFault(f: Findings, fault: Obj | undefined, p: string): void {
  if (!fault) return;
  const abort = asObj(fault.abort);
  const delay = asObj(fault.delay);
  if (!abort && !delay) f.report(p, 'at least one of abort or delay is required');
  if (abort) {
    const ap = field(p, 'abort');
    checkPercentage(f, abort.percentage, field(ap, 'percentage'));
    checkHTTPStatus(f, abort.httpStatus, field(ap, 'httpStatus'));
    const grpc = asStr(abort.grpcStatus);
    if (grpc !== undefined && !GRPC_STATUSES.has(grpc)) {
      f.report(field(ap, 'grpcStatus'), `"${grpc}" is not a gRPC status name such as NOT_FOUND or UNAVAILABLE`);
    }
    if (isSet(abort.http2Error)) f.report(field(ap, 'http2Error'), 'HTTP/2 abort fault injection is not supported yet');
  }
  if (delay) {
    const dp = field(p, 'delay');
    checkPercentage(f, delay.percentage, field(dp, 'percentage'));
    if (isSet(delay.exponentialDelay)) f.report(field(dp, 'exponentialDelay'), 'exponentialDelay is not supported yet');
  }
}

function checkDestination(f: Findings, d: Obj | undefined, p: string): void {
  if (!d) return;
  const host = asStr(d.host);
  if (host === '*') f.report(field(p, 'host'), 'a destination host cannot be *');
  else if (host !== undefined) f.report(field(p, 'host'), checkWildcardDomain(host));
  if (nonEmpty(d.subset) && !isDNS1123Label(d.subset)) {
    f.report(field(p, 'subset'), `subset name "${d.subset}" is invalid: must be a DNS-1123 label`);
  }
  const port = asObj(d.port);
  if (port) f.report(field(field(p, 'port'), 'number'), checkPort(asNum(port.number) ?? 0));
}

function checkMirrors(f: Findings, r: Obj, p: string): void {
  for (const name of ['mirrorPercent', 'mirror_percent'] as const) {
    const v = asNum(r[name]);
    if (v !== undefined && v > 100) f.report(field(p, name), 'must be at most 100');
  }
  const percentage = asNum(asObj(r.mirrorPercentage)?.value);
  if (percentage !== undefined && (percentage < 0 || percentage > 100)) {
    f.report(field(field(p, 'mirrorPercentage'), 'value'), 'must be between 0 and 100');
  }
  checkDestination(f, asObj(r.mirror), field(p, 'mirror'));
  for (const [m, mp] of eachObj(r.mirrors, field(p, 'mirrors'))) {
    checkDestination(f, asObj(m.destination), field(mp, 'destination'));
    const v = asNum(asObj(m.percentage)?.value);
    if (v !== undefined && (v < 0 || v > 100)) f.report(field(field(mp, 'percentage'), 'value'), 'must be between 0 and 100');
  }
}

function checkRedirect(f: Findings, redirect: Obj | undefined, p: string): void {
  if (!redirect) return;
  const targets = ['uri', 'authority', 'scheme', 'prefixRewrite'].some((k) => nonEmpty(redirect[k]));
  if (!targets && !isSet(redirect.port) && !isSet(redirect.derivePort)) {
    f.report(p, 'must set at least one of uri, authority, scheme or port');
  }
  const code = asNum(redirect.redirectCode);
  if (code !== undefined && code !== 0 && (code < 300 || code > 399)) f.report(field(p, 'redirectCode'), 'must be a 3xx status code');
  const scheme = asStr(redirect.scheme);
  if (nonEmpty(scheme) && scheme !== 'http' && scheme !== 'https') f.report(field(p, 'scheme'), 'must be "http" or "https"');
  const port = asNum(redirect.port);
  if (port !== undefined && port > 0) f.report(field(p, 'port'), checkPort(port));
}

const MAX_DIRECT_RESPONSE_BYTES = 1024 * 1024;

function checkDirectResponse(f: Findings, dr: Obj | undefined, p: string): void {
  if (!dr) return;
  checkHTTPStatus(f, dr.status, field(p, 'status'));
  const body = asObj(dr.body);
  const text = asStr(body?.string);
  const bytes = asStr(body?.bytes);
  const size = text !== undefined ? Buffer.byteLength(text) : bytes !== undefined ? Buffer.from(bytes, 'base64').length : 0;
  if (size > MAX_DIRECT_RESPONSE_BYTES) f.report(field(p, 'body'), 'must be smaller than 1MB');
}

// Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on policies (Istio's supportedRetryOnPolicies).
const RETRY_ON = new Set([
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'envoy-ratelimited', 'retriable-4xx',
  'refused-stream', 'retriable-status-codes', 'retriable-headers', 'http3-post-connect-failure',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
]);

function checkRetries(f: Findings, retries: Obj | undefined, p: string): void {
  if (!retries) return;
  const attempts = asNum(retries.attempts) ?? 0;
  if (attempts < 0) f.report(field(p, 'attempts'), 'must not be negative');
  if (attempts === 0 && (isSet(retries.perTryTimeout) || nonEmpty(retries.retryOn) || isSet(retries.retryRemoteLocalities))) {
    f.report(field(p, 'attempts'), 'must be at least 1 when perTryTimeout, retryOn or retryRemoteLocalities is set (0 disables retries)');
  }
  const retryOn = asStr(retries.retryOn);
  if (!nonEmpty(retryOn)) return;
  // Istio splits on "," without trimming, so "5xx, reset" is rejected there too.
  for (const policy of retryOn.split(',')) {
    const status = /^\d+$/.test(policy) ? Number(policy) : NaN;
    if (!RETRY_ON.has(policy) && !(status >= 100 && status <= 599)) {
      f.report(field(p, 'retryOn'), `"${policy}" is not a valid retryOn policy`);
    }
  }
}

function checkRewrite(f: Findings, rewrite: Obj | undefined, p: string): void {
  if (!rewrite) return;
  const regexRewrite = asObj(rewrite.uriRegexRewrite);
  if (nonEmpty(rewrite.uri) && regexRewrite) f.report(p, 'only one of uri or uriRegexRewrite may be set');
  if (!nonEmpty(rewrite.uri) && !regexRewrite && !nonEmpty(rewrite.authority)) {
    f.report(p, 'must set at least one of uri, uriRegexRewrite or authority');
  }
  if (!regexRewrite) return;
  const rp = field(p, 'uriRegexRewrite');
  if (!nonEmpty(regexRewrite.match) || !nonEmpty(regexRewrite.rewrite)) f.report(rp, 'both match and rewrite are required');
  if (nonEmpty(regexRewrite.match)) f.report(field(rp, 'match'), checkRegex(regexRewrite.match));
}

/** The CRD rule "type must match the specified session persistence configuration". */
function checkSessionPersistence(f: Findings, sp: Obj | undefined, p: string): void {
  if (!sp) return;
  const type = asStr(sp.type) ?? 'COOKIE';
  if (type === 'COOKIE' && (!isSet(sp.cookie) || isSet(sp.header))) {
    f.report(p, 'type COOKIE (the default) needs cookie settings and no header settings');
  } else if (type === 'HEADER' && (!isSet(sp.header) || isSet(sp.cookie))) {
    f.report(p, 'type HEADER needs header settings and no cookie settings');
  }
}

/**
 * Istio's validateHTTPRouteDestinations. Istio only rejects negative weights and, with several
 * destinations, weights that are all zero (unset counts as zero). The API documents weights as
 * percentages, so we also reject weights above 100.
 */
function checkHTTPDestinations(f: Findings, routes: unknown, p: string): void {
  for (const [d, dp] of eachObj(routes, p)) checkHeaderOperations(f, d.headers, field(dp, 'headers'));
  checkWeightedDestinations(f, routes, p);
}

function checkWeightedDestinations(f: Findings, routes: unknown, p: string): void {
  let total = 0;
  for (const [d, dp] of eachObj(routes, p)) {
    checkDestination(f, asObj(d.destination), field(dp, 'destination'));
    const weight = asNum(d.weight) ?? 0;
    if (weight < 0 || weight > 100) f.report(field(dp, 'weight'), 'must be between 0 and 100');
    total += weight;
  }
  if (asList(routes).length > 1 && total === 0) {
    f.report(p, 'with more than one destination, set their weights: they are all 0');
  }
}

// ---- TLS and TCP ----

function checkL4Match(f: Findings, m: Obj, p: string): void {
  for (const [subnet, sp] of eachStr(m.destinationSubnets, field(p, 'destinationSubnets'))) f.report(sp, checkIPSubnet(subnet));
  const port = asNum(m.port);
  if (port !== undefined && port !== 0) f.report(field(p, 'port'), checkPort(port));
  checkLabels(f, m.sourceLabels, field(p, 'sourceLabels'));
  checkGatewayNames(f, m.gateways, field(p, 'gateways'));
}

function checkTLSRoute(ctx: Context, route: Obj, p: string): void {
  const { f } = ctx;
  if (asList(route.match).length === 0) f.report(field(p, 'match'), 'at least one match is required');
  for (const [m, mp] of eachObj(route.match, field(p, 'match'))) {
    checkL4Match(f, m, mp);
    if (asList(m.sniHosts).length === 0) f.report(field(mp, 'sniHosts'), 'at least one SNI host is required');
    for (const [sni, sp] of eachStr(m.sniHosts, field(mp, 'sniHosts'))) checkSniHost(ctx, sni, sp);
  }
  if (asList(route.route).length === 0) f.report(field(p, 'route'), 'required');
  checkWeightedDestinations(f, route.route, field(p, 'route'));
}

function checkSniHost(ctx: Context, sni: string, p: string): void {
  const problem = ctx.sniByGatewayRules ? checkWildcardDomainForGateway(true, sni) : checkWildcardDomain(sni);
  // An IP is allowed (with a warning, in Istio): SNI should not carry one, but some clients send it.
  if (problem) {
    if (!isIPAddress(sni)) ctx.f.report(p, problem);
    return;
  }
  if (!ctx.hosts.some((h) => hostSubsetOf(sni, h))) {
    ctx.f.report(p, `SNI host "${sni}" is not covered by any of the virtual service's hosts (${ctx.hosts.join(', ')})`);
  }
}

function checkTCPRoute(ctx: Context, route: Obj, p: string): void {
  for (const [m, mp] of eachObj(route.match, field(p, 'match'))) checkL4Match(ctx.f, m, mp);
  if (asList(route.route).length === 0) ctx.f.report(field(p, 'route'), 'required');
  checkWeightedDestinations(ctx.f, route.route, field(p, 'route'));
}
