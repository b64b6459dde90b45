// PURE: Envoy RouteConfiguration (proto JSON) -> the sidecar's route table: compiled matchers, and
// for each route what it does (forward to weighted clusters, answer directly, redirect), the
// header edits and rewrites of the router, and the fault filter's per-route config. Anything the
// sidecar cannot honour is a ConvertError naming the field; it becomes the NACK reason.
import { TYPE } from '../../xds/types.ts';
import { type FullMatch, type Rewriter, compileFullMatch, compileRewriter } from '../http/regex.ts';
import { duration, durationMs, fail } from './convert-util.ts';

export type StringMatcher = (v: string | undefined) => boolean;

/** Envoy's HeaderValueOption.append_action. */
export type AppendAction = 'append' | 'add_if_absent' | 'overwrite_or_add' | 'overwrite_if_exists';

/** Header edits of one direction: Envoy removes first, then adds in order. */
export interface HeaderEdits {
  remove: string[];
  add: { name: string; value: string; action: AppendAction }[];
}

export interface Target {
  name: string;
  weight: number;
  /** Edits of the weighted cluster entry (Istio: headers of one destination), applied before the route's. */
  request?: HeaderEdits;
  response?: HeaderEdits;
  /** host_rewrite_literal of the weighted cluster entry (Istio: a destination's headers set host). */
  host?: string;
}

/** What a route does with a request that matches it. */
export type RouteAction =
  | { kind: 'forward' }
  | { kind: 'direct'; status: number; body: Buffer | undefined }
  | { kind: 'redirect'; redirect: Redirect };

export interface Redirect {
  scheme?: string;
  host?: string;
  port?: number;
  path?: string;
  prefixRewrite?: string;
  regexRewrite?: Rewriter;
  status: number;
  stripQuery: boolean;
}

/** The router's rewrites of a forwarded request. */
export interface Rewrite {
  /** prefix_rewrite: the matched prefix (for a prefix match) or the whole path becomes this. */
  prefix?: string;
  regex?: Rewriter;
  /** host_rewrite_literal. */
  host?: string;
}

/** Envoy's local_ratelimit per route: a token bucket of maxTokens, tokensPerFill added every fillMs. */
export interface RateLimit {
  name: string;
  maxTokens: number;
  tokensPerFill: number;
  fillMs: number;
}

export type HashPolicy =
  | { kind: 'header'; name: string }
  | { kind: 'query'; name: string }
  | { kind: 'cookie'; name: string; path?: string; ttlSeconds?: number; attributes?: string[] }
  /** connection_properties.source_ip: the client's address. */
  | { kind: 'source_ip' };

/** The CORS filter's per-route policy (envoy.filters.http.cors). */
export interface Cors {
  origins: StringMatcher[];
  allowMethods?: string;
  allowHeaders?: string;
  exposeHeaders?: string;
  maxAge?: string;
  allowCredentials: boolean;
  /** A preflight from an origin not allowed goes on to the upstream (Envoy's default), else gets an empty 200. */
  forwardUnmatchedPreflights: boolean;
}

/** The fault filter's per-route config (envoy.filters.http.fault), percentages as fractions of 1. */
export interface Fault {
  delay?: { ms: number; fraction: number };
  abort?: { httpStatus?: number; grpcStatus?: number; fraction: number };
}

/** Envoy's RetryPolicy, as far as the sidecar honours it (anything else is NACKed). */
export interface RetryPolicy {
  /** retry_on conditions: 5xx, gateway-error, reset, reset-before-request, connect-failure, refused-stream, retriable-4xx, retriable-status-codes, and the gRPC ones. */
  on: ReadonlySet<string>;
  numRetries: number;
  /** 0: each try may take what is left of the route timeout. */
  perTryTimeoutMs: number;
  retriableStatusCodes: ReadonlySet<number>;
  /** retry_host_predicate previous_hosts: a retry avoids the endpoints already tried, where it can. */
  otherHosts: boolean;
  /** retry_priority previous_priorities' update_frequency: every this many tries, the priorities tried are left out. */
  priorityUpdateFrequency?: number;
  /** Exponential back-off with full jitter between tries (Envoy: 25 ms base, 10x that at most). */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Some condition reads the response's headers (grpc-status, x-envoy-ratelimited). */
  readsHeaders: boolean;
  /** The lowest HTTP status any condition retries (600: none). */
  lowestStatus: number;
}

export interface RouteEntry {
  name: string;
  /** Path matcher on the path without the query string. */
  path: (path: string) => boolean;
  /** The length of the matched prefix for a prefix match (what prefix_rewrite replaces); undefined: the whole path. */
  prefixLength?: number;
  headers: { name: string; match: StringMatcher; invert: boolean }[];
  query: { name: string; match: StringMatcher }[];
  action: RouteAction;
  /** Weighted targets (forward only); a single cluster is one target of weight 1. */
  clusters: Target[];
  totalWeight: number;
  timeoutMs: number; // 0: none
  /** idle_timeout: the route's own stream idle timeout in place of the listener's stream_idle_timeout (0: none); for a CONNECT tunnel, how long it may carry no byte. */
  idleTimeoutMs?: number;
  /** max_stream_duration.max_stream_duration, on connect_matcher routes: a tunnel is closed this long after it opened. */
  maxStreamDurationMs?: number;
  /** A connect_matcher route: with upgrade_configs CONNECT, a CONNECT becomes a TCP tunnel to its cluster; with a direct_response, the sidecar answers it. */
  connect?: boolean;
  request?: HeaderEdits;
  response?: HeaderEdits;
  rewrite?: Rewrite;
  fault?: Fault;
  cors?: Cors;
  rateLimit?: RateLimit;
  /** No policy: no retries at all, as in Envoy (Istio always sends one, with 2 retries). */
  retry?: RetryPolicy;
  /** hash_policy: what a RING_HASH or MAGLEV cluster hashes; the first that the request has is used. */
  hashPolicy?: HashPolicy[];
  /** request_mirror_policies: a copy of each request goes to these clusters, by fraction; their answers are dropped. */
  mirrors?: { cluster: string; fraction: number; shadowSuffix: boolean }[];
  /** decorator.operation: the name of the requests' spans (telemetry/tracer.ts). */
  operation?: string;
}

export interface VirtualHost {
  name: string;
  routes: RouteEntry[];
}

export interface RouteTable {
  name: string;
  /** Exact domains (lower case, with and without port) -> virtual host. */
  exact: Map<string, VirtualHost>;
  /** "*.example.com" / "foo.*" / "*" patterns, in Envoy's precedence order. */
  suffix: { suffix: string; vh: VirtualHost }[];
  prefix: { prefix: string; vh: VirtualHost }[];
  any?: VirtualHost;
}

export function convertRouteConfig(rc: any, whereOuter?: string): RouteTable {
  const where = whereOuter ?? `route configuration ${rc.name ?? '(unnamed)'}`;
  const table: RouteTable = { name: rc.name ?? '', exact: new Map(), suffix: [], prefix: [] };
  (rc.virtual_hosts ?? []).forEach((v: any, i: number) => {
    const vwhere = `${where}: virtual_hosts[${i}] (${v.name ?? ''})`;
    const vh: VirtualHost = { name: v.name ?? `vh${i}`, routes: (v.routes ?? []).map((r: any, j: number) => convertRoute(r, `${vwhere}.routes[${j}]`)) };
    for (const d of v.domains ?? []) {
      const dom = String(d).toLowerCase();
      if (dom === '*') {
        if (table.any) fail(vwhere, `domain "*" is claimed twice`);
        table.any = vh;
      } else if (dom.startsWith('*')) table.suffix.push({ suffix: dom.slice(1), vh });
      else if (dom.endsWith('*')) table.prefix.push({ prefix: dom.slice(0, -1), vh });
      else {
        if (table.exact.has(dom)) fail(vwhere, `domain "${dom}" is claimed twice`);
        table.exact.set(dom, vh);
      }
    }
  });
  // Envoy: longest wildcard wins.
  table.suffix.sort((a, b) => b.suffix.length - a.suffix.length);
  table.prefix.sort((a, b) => b.prefix.length - a.prefix.length);
  return table;
}

function stringMatcher(where: string, sm: any): StringMatcher {
  const ci = sm.ignore_case === true;
  const norm = (s: string) => (ci ? s.toLowerCase() : s);
  if (sm.exact !== undefined) {
    const e = norm(sm.exact);
    return (v) => v !== undefined && norm(v) === e;
  }
  if (sm.prefix !== undefined) {
    const p = norm(sm.prefix);
    return (v) => v !== undefined && norm(v).startsWith(p);
  }
  if (sm.suffix !== undefined) {
    const p = norm(sm.suffix);
    return (v) => v !== undefined && norm(v).endsWith(p);
  }
  if (sm.contains !== undefined) {
    const p = norm(sm.contains);
    return (v) => v !== undefined && norm(v).includes(p);
  }
  if (sm.safe_regex) {
    // ignore_case has no effect on safe_regex, as in Envoy: a pattern says (?i) itself.
    const re = compileRegex(`${where}.safe_regex`, sm.safe_regex.regex);
    return (v) => v !== undefined && re.test(v);
  }
  fail(where, 'unsupported string matcher');
}

/** Envoy's safe_regex: RE2, matching the whole value. */
function compileRegex(where: string, source: unknown): FullMatch {
  if (typeof source !== 'string' || source === '') fail(`${where}.regex`, 'required');
  try {
    return compileFullMatch(source);
  } catch (e) {
    fail(`${where}.regex`, `invalid RE2 regex ${JSON.stringify(source)}: ${(e as Error).message}`);
  }
}

/** Envoy's RegexMatchAndSubstitute: every match of pattern replaced by substitution (\1 for a group). */
function regexRewrite(where: string, rr: any): Rewriter {
  const source = rr?.pattern?.regex;
  if (typeof source !== 'string' || source === '') fail(`${where}.pattern.regex`, 'required');
  try {
    return compileRewriter(source, String(rr.substitution ?? ''));
  } catch (e) {
    fail(`${where}.pattern.regex`, `invalid RE2 regex ${JSON.stringify(source)}: ${(e as Error).message}`);
  }
}

function convertRoute(r: any, where: string): RouteEntry {
  const m = r.match ?? {};
  // Wrapper types (BoolValue, UInt32Value) arrive as {value: x}.
  const cs = (m.case_sensitive?.value ?? m.case_sensitive) === false ? false : true;
  let path: (p: string) => boolean;
  let prefixLength: number | undefined;
  if (m.path !== undefined) {
    const want = cs ? m.path : m.path.toLowerCase();
    path = cs ? (p) => p === want : (p) => p.toLowerCase() === want;
  } else if (m.safe_regex) {
    // case_sensitive does not apply to safe_regex, as in Envoy.
    const re = compileRegex(`${where}.match.safe_regex`, m.safe_regex.regex);
    path = (p) => re.test(p);
  } else if (m.prefix !== undefined) {
    const want = cs ? m.prefix : m.prefix.toLowerCase();
    prefixLength = want.length;
    path = cs ? (p) => p.startsWith(want) : (p) => p.toLowerCase().startsWith(want);
  } else if (m.connect_matcher !== undefined) {
    path = () => false; // matches CONNECT only, never a request with a path
  } else fail(`${where}.match`, 'one of prefix, path, safe_regex or connect_matcher is required');

  const headers = (m.headers ?? []).map((h: any, i: number) => {
    const hw = `${where}.match.headers[${i}]`;
    if (!h.name) fail(hw, 'name: required');
    let match: StringMatcher;
    if (h.present_match !== undefined) match = (v) => (v !== undefined) === (h.present_match !== false);
    else if (h.string_match) match = stringMatcher(`${hw}.string_match`, h.string_match);
    else if (h.exact_match !== undefined) match = (v) => v === h.exact_match;
    else if (h.prefix_match !== undefined) match = (v) => v !== undefined && v.startsWith(h.prefix_match);
    else if (h.suffix_match !== undefined) match = (v) => v !== undefined && v.endsWith(h.suffix_match);
    else if (h.safe_regex_match !== undefined) {
      const re = compileRegex(`${hw}.safe_regex_match`, h.safe_regex_match.regex);
      match = (v) => v !== undefined && re.test(v);
    } else match = (v) => v !== undefined;
    return { name: String(h.name).toLowerCase(), match, invert: h.invert_match === true };
  });
  const query = (m.query_parameters ?? []).map((q: any, i: number) => {
    const qw = `${where}.match.query_parameters[${i}]`;
    if (!q.name) fail(qw, 'name: required');
    const match: StringMatcher = q.string_match ? stringMatcher(`${qw}.string_match`, q.string_match) : (v) => v !== undefined;
    return { name: q.name, match };
  });

  const base = {
    name: r.name ?? '',
    path,
    prefixLength,
    headers,
    query,
    request: headerEdits(`${where}.request_headers_to_add`, r.request_headers_to_add, r.request_headers_to_remove),
    response: headerEdits(`${where}.response_headers_to_add`, r.response_headers_to_add, r.response_headers_to_remove),
    fault: fault(`${where}.typed_per_filter_config`, r.typed_per_filter_config),
    cors: cors(`${where}.typed_per_filter_config`, r.typed_per_filter_config),
    rateLimit: rateLimit(`${where}.typed_per_filter_config`, r.typed_per_filter_config),
    ...(typeof r.decorator?.operation === 'string' && r.decorator.operation ? { operation: r.decorator.operation } : {}),
  };
  const connect = m.connect_matcher !== undefined;
  if (r.direct_response) {
    return { ...base, action: directResponse(`${where}.direct_response`, r.direct_response), clusters: [], totalWeight: 0, timeoutMs: 0, ...(connect ? { connect: true } : {}) };
  }
  if (r.redirect) {
    if (connect) fail(`${where}.redirect`, 'a connect_matcher route must forward');
    return { ...base, action: { kind: 'redirect', redirect: redirect(`${where}.redirect`, r.redirect) }, clusters: [], totalWeight: 0, timeoutMs: 0 };
  }
  const a = r.route;
  if (!a) fail(where, 'one of route, redirect or direct_response is required');
  if (connect && !(a.upgrade_configs ?? []).some((u: any) => String(u.upgrade_type).toUpperCase() === 'CONNECT' && (u.enabled?.value ?? u.enabled) !== false)) {
    fail(`${where}.route.upgrade_configs`, 'a connect_matcher route needs upgrade_configs [{upgrade_type: CONNECT}] (Weft terminates CONNECT into a TCP tunnel)');
  }
  let clusters: Target[];
  if (a.cluster) clusters = [{ name: a.cluster, weight: 1 }];
  else if (a.weighted_clusters) {
    clusters = (a.weighted_clusters.clusters ?? []).map((c: any, i: number) => {
      const cw = `${where}.route.weighted_clusters.clusters[${i}]`;
      const w = Number(c.weight?.value ?? c.weight ?? 0);
      if (!c.name) fail(`${cw}.name`, 'required');
      if (!Number.isInteger(w) || w < 0) fail(`${cw}.weight`, `invalid weight ${c.weight}`);
      const t: Target = { name: c.name, weight: w };
      const request = headerEdits(`${cw}.request_headers_to_add`, c.request_headers_to_add, c.request_headers_to_remove);
      const response = headerEdits(`${cw}.response_headers_to_add`, c.response_headers_to_add, c.response_headers_to_remove);
      if (request) t.request = request;
      if (response) t.response = response;
      if (c.host_rewrite_literal) t.host = String(c.host_rewrite_literal);
      for (const k of Object.keys(c)) {
        if (!CLUSTER_WEIGHT_FIELDS.has(k)) fail(`${cw}.${k}`, 'not supported');
      }
      return t;
    });
  } else fail(`${where}.route`, 'cluster or weighted_clusters is required');
  const totalWeight = clusters.reduce((s, c) => s + c.weight, 0);
  if (totalWeight <= 0) fail(`${where}.route.weighted_clusters`, 'total weight must be greater than 0');
  const timeoutMs = duration(`${where}.route.timeout`, a.timeout);
  let idleTimeoutMs: number | undefined;
  if (a.idle_timeout != null) {
    idleTimeoutMs = duration(`${where}.route.idle_timeout`, a.idle_timeout);
  }
  let maxStreamDurationMs: number | undefined;
  if (a.max_stream_duration) {
    const m = a.max_stream_duration;
    for (const k of Object.keys(m)) if (k !== 'max_stream_duration') fail(`${where}.route.max_stream_duration.${k}`, 'not supported (max_stream_duration is)');
    if (m.max_stream_duration != null) {
      if (!connect) fail(`${where}.route.max_stream_duration`, "supported on connect_matcher routes only (a tunnel's longest life)");
      const ms = duration(`${where}.route.max_stream_duration.max_stream_duration`, m.max_stream_duration);
      if (ms > 0) maxStreamDurationMs = ms; // 0: none, as Envoy
    }
  }
  const rewrite = routeRewrite(`${where}.route`, a);
  const retry = a.retry_policy ? retryPolicy(`${where}.route.retry_policy`, a.retry_policy) : undefined;
  const mirrors = (a.request_mirror_policies ?? []).map((m: any, i: number) => mirrorPolicy(`${where}.route.request_mirror_policies[${i}]`, m));
  const hashPolicy = (a.hash_policy ?? []).map((h: any, i: number) => hashPolicyOf(`${where}.route.hash_policy[${i}]`, h));
  return {
    ...base,
    action: FORWARD,
    clusters,
    totalWeight,
    timeoutMs,
    ...(connect ? { connect: true } : {}),
    ...(idleTimeoutMs !== undefined ? { idleTimeoutMs } : {}),
    ...(maxStreamDurationMs !== undefined ? { maxStreamDurationMs } : {}),
    ...(rewrite ? { rewrite } : {}),
    ...(retry ? { retry } : {}),
    ...(mirrors.length ? { mirrors } : {}),
    ...(hashPolicy.length ? { hashPolicy } : {}),
  };
}

const FORWARD: RouteAction = { kind: 'forward' };

/** A protobuf bytes field as decoded: bytes, or (proto JSON) a base64 string. */
function bytesOf(v: unknown): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'base64') : Buffer.from(v as Uint8Array);
}

function hashPolicyOf(where: string, h: any): HashPolicy {
  for (const k of Object.keys(h)) if (!['header', 'query_parameter', 'cookie', 'connection_properties', 'terminal'].includes(k)) fail(`${where}.${k}`, 'not supported (header, query_parameter, cookie and connection_properties are)');
  if (h.header) {
    if (!h.header.header_name || h.header.regex_rewrite) fail(`${where}.header`, 'header_name is required; regex_rewrite is not supported');
    return { kind: 'header', name: String(h.header.header_name).toLowerCase() };
  }
  if (h.query_parameter) return { kind: 'query', name: String(h.query_parameter.name ?? fail(`${where}.query_parameter.name`, 'required')) };
  if (h.cookie) {
    if (!h.cookie.name) fail(`${where}.cookie.name`, 'required');
    const ttl = h.cookie.ttl == null ? undefined : Math.round(durationMs(h.cookie.ttl) / 1000);
    // Envoy's CookieAttribute: a name (required) and a value, as header text (no NUL, CR or LF).
    const attributes = (h.cookie.attributes ?? []).map((a: any, i: number) => {
      const name = String(a?.name ?? '');
      const value = a?.value == null ? '' : String(a.value);
      if (!name || /[\0\r\n]/.test(name + value)) fail(`${where}.cookie.attributes[${i}]`, 'a name is required, and neither name nor value may hold NUL, CR or LF');
      return value === '' ? name : `${name}=${value}`;
    });
    return { kind: 'cookie', name: String(h.cookie.name), ...(h.cookie.path ? { path: String(h.cookie.path) } : {}), ...(ttl !== undefined ? { ttlSeconds: ttl } : {}), ...(attributes.length ? { attributes } : {}) };
  }
  if (h.connection_properties) {
    if (h.connection_properties.source_ip !== true) fail(`${where}.connection_properties.source_ip`, 'must be true');
    return { kind: 'source_ip' };
  }
  fail(where, 'one of header, query_parameter, cookie or connection_properties is required');
}

function mirrorPolicy(where: string, m: any): { cluster: string; fraction: number; shadowSuffix: boolean } {
  for (const k of Object.keys(m)) if (!['cluster', 'runtime_fraction', 'trace_sampled', 'disable_shadow_host_suffix_append'].includes(k)) fail(`${where}.${k}`, 'not supported');
  if (!m.cluster) fail(`${where}.cluster`, 'required (cluster_header is not supported)');
  const rf = m.runtime_fraction;
  if (rf?.runtime_key) fail(`${where}.runtime_fraction.runtime_key`, 'not supported: Weft has no runtime');
  return { cluster: String(m.cluster), fraction: rf ? fraction(`${where}.runtime_fraction.default_value`, rf.default_value ?? { numerator: 0 }) : 1, shadowSuffix: m.disable_shadow_host_suffix_append !== true };
}

/** retry_on conditions the sidecar knows; http3-post-connect-failure never happens (no HTTP/3) but is accepted. */
const RETRY_ON = new Set([
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'refused-stream', 'retriable-4xx', 'retriable-status-codes',
  'envoy-ratelimited', 'http3-post-connect-failure', 'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
]);
const RETRY_FIELDS = new Set(['retry_on', 'num_retries', 'per_try_timeout', 'retriable_status_codes', 'retry_host_predicate', 'host_selection_retry_max_attempts', 'retry_back_off', 'retry_priority']);

function retryPolicy(where: string, rp: any): RetryPolicy {
  for (const k of Object.keys(rp)) if (!RETRY_FIELDS.has(k)) fail(`${where}.${k}`, 'not supported');
  const on = new Set<string>();
  for (const c of String(rp.retry_on ?? '').split(',').map((x) => x.trim()).filter(Boolean)) {
    if (!RETRY_ON.has(c)) fail(`${where}.retry_on`, `unknown retry condition "${c}"`);
    on.add(c);
  }
  const n = rp.num_retries == null ? 1 : Number(rp.num_retries?.value ?? rp.num_retries); // Envoy's default is 1
  if (!Number.isInteger(n) || n < 0) fail(`${where}.num_retries`, `invalid ${JSON.stringify(rp.num_retries)}`);
  const perTryTimeoutMs = duration(`${where}.per_try_timeout`, rp.per_try_timeout);
  const codes = new Set<number>();
  for (const c of rp.retriable_status_codes ?? []) {
    const x = Number(c);
    if (!Number.isInteger(x) || x < 100 || x > 599) fail(`${where}.retriable_status_codes`, `invalid status ${c}`);
    codes.add(x);
  }
  let otherHosts = false;
  for (const [i, h] of (rp.retry_host_predicate ?? []).entries()) {
    if (h.name !== 'envoy.retry_host_predicates.previous_hosts') fail(`${where}.retry_host_predicate[${i}]`, `unsupported predicate ${h.name} (previous_hosts is supported)`);
    otherHosts = true;
  }
  let priorityUpdateFrequency: number | undefined;
  if (rp.retry_priority) {
    const p = rp.retry_priority;
    const cfg = p.typed_config ?? {};
    if (p.name !== 'envoy.retry_priorities.previous_priorities' && cfg['@type'] !== TYPE.previousPriorities) fail(`${where}.retry_priority`, `unsupported retry priority ${p.name ?? cfg['@type']} (previous_priorities is supported)`);
    priorityUpdateFrequency = Number(cfg.update_frequency ?? 0);
    if (!Number.isInteger(priorityUpdateFrequency) || priorityUpdateFrequency < 1) fail(`${where}.retry_priority.typed_config.update_frequency`, `must be a whole number of at least 1, got ${JSON.stringify(cfg.update_frequency)}`);
  }
  const base = rp.retry_back_off?.base_interval ? durationMs(rp.retry_back_off.base_interval) : 25;
  const max = rp.retry_back_off?.max_interval ? durationMs(rp.retry_back_off.max_interval) : base * 10;
  if (!(base > 0) || !(max >= base)) fail(`${where}.retry_back_off`, 'base_interval must be positive and max_interval at least base_interval');
  const readsHeaders = ['envoy-ratelimited', 'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable'].some((c) => on.has(c));
  const lowest = [on.has('5xx') ? 500 : 600, on.has('gateway-error') ? 502 : 600, on.has('retriable-4xx') ? 409 : 600, on.has('envoy-ratelimited') ? 429 : 600, ...(on.has('retriable-status-codes') ? codes : [])];
  return { on, numRetries: n, perTryTimeoutMs, retriableStatusCodes: codes, otherHosts, ...(priorityUpdateFrequency ? { priorityUpdateFrequency } : {}), backoffBaseMs: base, backoffMaxMs: max, readsHeaders, lowestStatus: Math.min(...lowest) };
}

const CLUSTER_WEIGHT_FIELDS = new Set(['name', 'weight', 'request_headers_to_add', 'request_headers_to_remove', 'response_headers_to_add', 'response_headers_to_remove', 'host_rewrite_literal']);

function routeRewrite(where: string, a: any): Rewrite | undefined {
  const out: Rewrite = {};
  if (a.prefix_rewrite !== undefined && a.prefix_rewrite !== '') out.prefix = String(a.prefix_rewrite);
  if (a.regex_rewrite) {
    if (out.prefix !== undefined) fail(`${where}.regex_rewrite`, 'only one of prefix_rewrite and regex_rewrite may be set');
    out.regex = regexRewrite(`${where}.regex_rewrite`, a.regex_rewrite);
  }
  if (a.host_rewrite_literal) out.host = String(a.host_rewrite_literal);
  for (const k of ['host_rewrite_header', 'host_rewrite_path_regex', 'path_rewrite_policy', 'auto_host_rewrite']) {
    const v = a[k];
    if (v !== undefined && v !== false && (v?.value ?? v) !== false) fail(`${where}.${k}`, 'not supported (prefix_rewrite, regex_rewrite and host_rewrite_literal are)');
  }
  return Object.keys(out).length ? out : undefined;
}

const APPEND_ACTIONS: Record<string, AppendAction> = {
  APPEND_IF_EXISTS_OR_ADD: 'append',
  ADD_IF_ABSENT: 'add_if_absent',
  OVERWRITE_IF_EXISTS_OR_ADD: 'overwrite_or_add',
  OVERWRITE_IF_EXISTS: 'overwrite_if_exists',
};

/** Envoy's *_headers_to_add (HeaderValueOption) and *_headers_to_remove. */
function headerEdits(where: string, add: any[] | undefined, remove: string[] | undefined): HeaderEdits | undefined {
  if (!add?.length && !remove?.length) return undefined;
  const out: HeaderEdits = { remove: [], add: [] };
  for (const [i, name] of (remove ?? []).entries()) {
    const n = String(name).toLowerCase();
    if (!n || n.startsWith(':') || n === 'host') fail(`${where.replace(/_to_add$/, '_to_remove')}[${i}]`, `cannot remove ${JSON.stringify(name)}`);
    out.remove.push(n);
  }
  for (const [i, o] of (add ?? []).entries()) {
    const hw = `${where}[${i}]`;
    const name = String(o?.header?.key ?? '').toLowerCase();
    if (!name) fail(`${hw}.header.key`, 'required');
    if (name.startsWith(':') || name === 'host') fail(`${hw}.header.key`, `${name} cannot be set as a header (use host_rewrite_literal)`);
    const value = o.header.value ?? (o.header.raw_value !== undefined ? bytesOf(o.header.raw_value).toString('latin1') : '');
    if (/[\r\n\0]/.test(value)) fail(`${hw}.header.value`, 'must not contain CR, LF or NUL');
    let action: AppendAction = 'append';
    if (o.append_action !== undefined) {
      action = APPEND_ACTIONS[o.append_action] ?? fail(`${hw}.append_action`, `unknown action ${o.append_action}`);
    } else if (o.append !== undefined) action = (o.append?.value ?? o.append) === false ? 'overwrite_or_add' : 'append';
    out.add.push({ name, value, action });
  }
  return out;
}

/** A FractionalPercent as a fraction of 1. */
function fraction(where: string, p: any): number {
  if (p == null) return 1; // Envoy: no percentage means always
  const n = Number(p.numerator ?? 0);
  const d = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 }[String(p.denominator ?? 'HUNDRED')];
  if (!d) fail(`${where}.denominator`, `unknown denominator ${p.denominator}`);
  if (!Number.isFinite(n) || n < 0) fail(`${where}.numerator`, `invalid numerator ${p.numerator}`);
  return Math.min(1, n / d);
}

const FAULT_FILTER = 'envoy.filters.http.fault';
const CORS_FILTER = 'envoy.filters.http.cors';
const RATE_LIMIT_FILTER = 'envoy.filters.http.local_ratelimit';
const PER_ROUTE_FILTERS = new Set([FAULT_FILTER, CORS_FILTER, RATE_LIMIT_FILTER]);

/**
 * One filter's entry of a route's typed_per_filter_config: checked to be of `type` and to hold only
 * `fields`, with the path to name in errors; undefined when the route has none for that filter.
 */
function perRoute(where: string, tpfc: any, filter: string, type: string, fields: string[]): { c: any; w: string } | undefined {
  const c = tpfc?.[filter];
  if (!c) return undefined;
  const w = `${where}["${filter}"]`;
  if (c['@type'] !== type) fail(w, `expected ${type}, got ${c['@type']}`);
  for (const k of Object.keys(c)) if (k !== '@type' && !fields.includes(k)) fail(`${w}.${k}`, `not supported (${fields.join(', ')} are)`);
  return { c, w };
}

/** Envoy's LocalRateLimit as a route's config: its token bucket, enabled and enforced for every request. */
function rateLimit(where: string, tpfc: any): RateLimit | undefined {
  const e = perRoute(where, tpfc, RATE_LIMIT_FILTER, TYPE.localRateLimit, ['stat_prefix', 'token_bucket', 'filter_enabled', 'filter_enforced']);
  if (!e) return undefined;
  const { c, w } = e;
  for (const k of ['filter_enabled', 'filter_enforced']) {
    const v = c[k];
    if (v && (v.runtime_key || fraction(`${w}.${k}.default_value`, v.default_value ?? { numerator: 0 }) !== 1)) fail(`${w}.${k}`, 'only 100% is supported');
  }
  if (!c.filter_enabled || !c.filter_enforced) fail(w, 'filter_enabled and filter_enforced must be set to 100% (Envoy applies no limit otherwise)');
  const b = c.token_bucket ?? fail(`${w}.token_bucket`, 'required');
  const maxTokens = Number(b.max_tokens);
  const tokensPerFill = b.tokens_per_fill == null ? 1 : Number(b.tokens_per_fill.value ?? b.tokens_per_fill);
  const fillMs = durationMs(b.fill_interval);
  if (!(Number.isInteger(maxTokens) && maxTokens > 0)) fail(`${w}.token_bucket.max_tokens`, 'must be a positive whole number');
  if (!(Number.isInteger(tokensPerFill) && tokensPerFill > 0)) fail(`${w}.token_bucket.tokens_per_fill`, 'must be a positive whole number');
  if (!(fillMs >= 1)) fail(`${w}.token_bucket.fill_interval`, 'must be at least 1 ms');
  return { name: String(c.stat_prefix || 'local_rate_limit'), maxTokens, tokensPerFill, fillMs };
}

/** The CORS filter's per-route policy. */
function cors(where: string, tpfc: any): Cors | undefined {
  const fields = ['allow_origin_string_match', 'allow_methods', 'allow_headers', 'expose_headers', 'max_age', 'allow_credentials', 'forward_not_matching_preflights', 'filter_enabled'];
  const e = perRoute(where, tpfc, CORS_FILTER, TYPE.corsPolicy, fields);
  if (!e) return undefined;
  const { c, w: cw } = e;
  if (c.filter_enabled?.runtime_key || (c.filter_enabled && Number(c.filter_enabled.default_value?.numerator ?? 0) === 0)) fail(`${cw}.filter_enabled`, 'only an enabled policy is supported');
  const bool = (v: any, d: boolean) => (v == null ? d : (v.value ?? v) === true);
  return {
    origins: (c.allow_origin_string_match ?? []).map((m: any, i: number) => stringMatcher(`${cw}.allow_origin_string_match[${i}]`, m)),
    allowMethods: c.allow_methods || undefined,
    allowHeaders: c.allow_headers || undefined,
    exposeHeaders: c.expose_headers || undefined,
    maxAge: c.max_age || undefined,
    allowCredentials: bool(c.allow_credentials, false),
    forwardUnmatchedPreflights: bool(c.forward_not_matching_preflights, true),
  };
}

/** The fault filter's per-route config: fixed delays and aborts with percentages; nothing else is accepted. */
function fault(where: string, tpfc: any): Fault | undefined {
  if (!tpfc) return undefined;
  for (const key of Object.keys(tpfc)) if (!PER_ROUTE_FILTERS.has(key)) fail(`${where}["${key}"]`, `per-route config of filter ${key} is not supported (${[...PER_ROUTE_FILTERS].join(' and ')} are)`);
  const e = perRoute(where, tpfc, FAULT_FILTER, TYPE.fault, ['delay', 'abort']);
  if (!e) return undefined;
  const { c: f, w: fw } = e;
  const out: Fault = {};
  if (f.delay) {
    if (f.delay.header_delay) fail(`${fw}.delay.header_delay`, 'not supported (fixed_delay is)');
    const ms = duration(`${fw}.delay.fixed_delay`, f.delay.fixed_delay);
    out.delay = { ms, fraction: fraction(`${fw}.delay.percentage`, f.delay.percentage) };
  }
  if (f.abort) {
    const a = f.abort;
    if (a.header_abort) fail(`${fw}.abort.header_abort`, 'not supported (http_status and grpc_status are)');
    const abort: Fault['abort'] = { fraction: fraction(`${fw}.abort.percentage`, a.percentage) };
    if (a.http_status !== undefined) {
      const s = Number(a.http_status);
      if (!Number.isInteger(s) || s < 200 || s > 599) fail(`${fw}.abort.http_status`, `must be 200-599, got ${a.http_status}`);
      abort.httpStatus = s;
    } else if (a.grpc_status !== undefined) {
      const g = Number(a.grpc_status);
      if (!Number.isInteger(g) || g < 0 || g > 16) fail(`${fw}.abort.grpc_status`, `must be a gRPC status code 0-16, got ${a.grpc_status}`);
      abort.grpcStatus = g;
    } else fail(`${fw}.abort`, 'http_status or grpc_status is required');
    out.abort = abort;
  }
  return out.delay || out.abort ? out : undefined;
}

function directResponse(where: string, d: any): RouteAction {
  const status = Number(d.status);
  if (!Number.isInteger(status) || status < 200 || status > 599) fail(`${where}.status`, `must be 200-599, got ${d.status}`);
  let body: Buffer | undefined;
  const b = d.body;
  if (b) {
    if (b.inline_string !== undefined) body = Buffer.from(String(b.inline_string));
    else if (b.inline_bytes !== undefined) body = bytesOf(b.inline_bytes);
    else fail(`${where}.body`, 'only inline_string and inline_bytes are supported (a sidecar reads no files for config)');
  }
  return { kind: 'direct', status, body };
}

const REDIRECT_CODES: Record<string, number> = { MOVED_PERMANENTLY: 301, FOUND: 302, SEE_OTHER: 303, TEMPORARY_REDIRECT: 307, PERMANENT_REDIRECT: 308 };

function redirect(where: string, r: any): Redirect {
  const code = r.response_code === undefined ? 301 : typeof r.response_code === 'number' ? [301, 302, 303, 307, 308][r.response_code] : REDIRECT_CODES[r.response_code];
  if (!code) fail(`${where}.response_code`, `unknown response code ${r.response_code}`);
  const out: Redirect = { status: code, stripQuery: (r.strip_query?.value ?? r.strip_query) === true };
  if (r.https_redirect) out.scheme = 'https';
  if (r.scheme_redirect) out.scheme = String(r.scheme_redirect).toLowerCase();
  if (r.host_redirect) out.host = String(r.host_redirect);
  if (r.port_redirect) out.port = Number(r.port_redirect);
  if (r.path_redirect !== undefined && r.path_redirect !== '') out.path = String(r.path_redirect);
  if (r.prefix_rewrite !== undefined && r.prefix_rewrite !== '') out.prefixRewrite = String(r.prefix_rewrite);
  if (r.regex_rewrite) out.regexRewrite = regexRewrite(`${where}.regex_rewrite`, r.regex_rewrite);
  if ([out.path, out.prefixRewrite, out.regexRewrite].filter((x) => x !== undefined).length > 1) fail(where, 'only one of path_redirect, prefix_rewrite and regex_rewrite may be set');
  return out;
}
