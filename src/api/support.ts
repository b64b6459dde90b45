// What Weft does not apply yet, field by field: the one list `weft apply`, `weft get`,
// `weft analyze` and docs/config.md agree on. A valid field Weft cannot apply is never dropped in
// silence:
//   - where ignoring it would widen traffic or weaken security, the resource is rejected
//     (`rejected`), naming the field;
//   - elsewhere it is accepted with a warning (`warnings`) naming the resource and field.
// Validation (validate.ts) runs first; these rules only look at resources that are valid.
// Messages name what happens instead: "accepted, not applied yet: <what happens instead>".
import type { FieldError } from './types.ts';
import { field, index, isObject, type Obj } from './schema.ts';
import { UNIX_PREFIX, checkHeaderOperationName, checkRegex, checkRequestHeaderSetName } from './rules.ts';
import { backendGroupKind, isService, parentGroupKind, GATEWAY_GROUP } from './gateway-common.ts';
import { meshConfigSupport } from './meshconfig-support.ts';
import { telemetrySupport } from './telemetry-support.ts';

export interface Support {
  rejected: FieldError[];
  warnings: FieldError[];
}

const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const set = (v: unknown): boolean => v !== undefined && v !== null;

export function supportOf(kind: string, spec: unknown): Support {
  const out: Support = { rejected: [], warnings: [] };
  if (!isObject(spec)) return out;
  if (kind === 'VirtualService') virtualService(spec, out);
  if (kind === 'DestinationRule') destinationRule(spec, out);
  if (kind === 'ServiceEntry') serviceEntry(spec, out);
  if (kind === 'WorkloadEntry') workloadEntry(spec, 'spec', out);
  if (kind === 'Sidecar') sidecar(spec, out);
  if (kind === 'HTTPRoute' || kind === 'GRPCRoute') gatewayRoute(spec, out);
  if (kind === 'ReferenceGrant') referenceGrant(spec, out);
  if (kind === 'RequestAuthentication') requestAuthentication(spec, out);
  if (kind === 'AuthorizationPolicy') authorizationPolicy(spec, out);
  if (kind === 'Telemetry') telemetrySupport(spec, out);
  if (kind === 'ConfigMap') {
    const mesh = meshConfigSupport(spec);
    out.rejected.push(...mesh.rejected);
    out.warnings.push(...mesh.warnings);
  }
  return out;
}

/**
 * Every action is applied: ALLOW, DENY and AUDIT by the sidecars' RBAC filters; CUSTOM by the
 * external authorizer it names in meshConfig.extensionProviders (the sidecars' ext_authz layer).
 * A provider the mesh config does not have, or cannot use, is Istio's case too: the policy is
 * accepted, and the requests it matches are denied (it fails closed); `weft apply` warns of it
 * (customProviderProblem, with the mesh config at hand). Nothing of it is refused here.
 * targetRef(s) are warned about, as a RequestAuthentication's.
 */
function authorizationPolicy(spec: Obj, out: Support): void {
  policyTargetRefs(spec, out);
}

/** As a RequestAuthentication's: a policy with targetRef(s) is for Gateways, waypoints and services, never a sidecar. */
function policyTargetRefs(spec: Obj, out: Support): void {
  for (const k of ['targetRef', 'targetRefs']) {
    if (set(spec[k])) out.warnings.push({ path: `spec.${k}`, message: 'accepted, not applied: a policy with a targetRef applies to Gateways and waypoints, never to sidecars (as in Istio); Weft has neither, so it applies to no workload' });
  }
}

// ---- RequestAuthentication ----
// Applied whole by the sidecars (control/translate/jwt.ts, proxy/http/jwt.ts), except:
//   - targetRef(s): Istio attaches such a policy to a Gateway or a waypoint, and its sidecars never
//     take it; Weft's sidecars do the same, and say so (Weft has neither gateways nor waypoints).
//   - presence REQUIRED: refused (a request without the token would pass where it asks for a 401).
// A rule with neither jwks nor jwksUri has its key set found by OpenID discovery of the issuer,
// as istiod does (control/oidc.ts).

function requestAuthentication(spec: Obj, out: Support): void {
  policyTargetRefs(spec, out);
  list(spec.jwtRules).forEach((r, i) => {
    if (!isObject(r)) return;
    if (r.presence === 'REQUIRED') {
      out.rejected.push({ path: field(index('spec.jwtRules', i), 'presence'), message: 'REQUIRED is not supported yet: ignoring it would let requests without a token through; use an AuthorizationPolicy with requestPrincipals ["*"] to require one' });
    }
  });
}

function virtualService(spec: Obj, out: Support): void {
  const warn = (path: string, message: string) => out.warnings.push({ path, message });
  const reject = (path: string, message: string) => out.rejected.push({ path, message });
  list(spec.http).forEach((r, i) => {
    if (!isObject(r)) return;
    const p = index('spec.http', i);
    const code = isObject(r.redirect) ? r.redirect.redirectCode : undefined;
    if (typeof code === 'number' && code !== 0 && ![301, 302, 303, 307, 308].includes(code)) {
      reject(field(field(p, 'redirect'), 'redirectCode'), `${code} cannot be sent: Envoy's redirects (and Weft's) are 301, 302, 303, 307 or 308`);
    }
    if (set(r.mirror_percent)) warn(field(p, 'mirror_percent'), 'accepted, not applied yet: use mirrorPercentage');
    if (set(r.sessionPersistence)) warn(field(p, 'sessionPersistence'), 'accepted, not applied yet: requests are not pinned to an endpoint');
    list(r.match).forEach((m, j) => {
      if (isObject(m) && set(m.statPrefix)) warn(field(index(field(p, 'match'), j), 'statPrefix'), 'accepted, not applied yet: no per-route statistics');
    });
  });
  for (const kind of ['tcp', 'tls'] as const) {
    list(spec[kind]).forEach((r, i) => {
      list(isObject(r) ? r.match : undefined).forEach((m, j) => {
        if (isObject(m) && list(m.destinationSubnets).length) {
          reject(field(index(field(index(`spec.${kind}`, i), 'match'), j), 'destinationSubnets'), `not supported: a sidecar routes ${kind === 'tls' ? 'TLS' : 'TCP'} by service name, not by destination address; ignoring it would widen the match`);
        }
      });
    });
  }
}

/**
 * A DestinationRule's tls: DISABLE and ISTIO_MUTUAL are applied (translate/mtls.ts clusterTls), and
 * so are SIMPLE and MUTUAL, TLS origination with files the sidecar reads (caCertificates,
 * clientCertificate, privateKey, caCrl), with sni, subjectAltNames and insecureSkipVerify.
 * credentialName names a Kubernetes secret, which Weft does not have: ignoring it would send TLS
 * without the certificates it names (or plain text), so it is refused.
 */
const ORIGINATION_FIELDS = ['mode', 'sni', 'subjectAltNames', 'caCertificates', 'insecureSkipVerify', 'caCrl'];

export const CREDENTIAL_NAME_NOT_SUPPORTED =
  'not supported: it names a Kubernetes secret, and Weft has no Kubernetes secrets; give the files instead (caCertificates, and for MUTUAL clientCertificate and privateKey: paths the sidecar reads); ignoring it would originate TLS without the certificates it names';

function clientTls(tls: unknown, p: string, out: Support): void {
  const mode = isObject(tls) ? tls.mode : undefined;
  const fields = Object.entries(isObject(tls) ? tls : {}).filter(([, v]) => set(v));
  if (mode === 'SIMPLE' || mode === 'MUTUAL') {
    const applied = mode === 'MUTUAL' ? [...ORIGINATION_FIELDS, 'clientCertificate', 'privateKey'] : ORIGINATION_FIELDS;
    for (const [k, v] of fields) {
      if (k === 'credentialName') {
        if (given(v)) out.rejected.push({ path: field(p, k), message: CREDENTIAL_NAME_NOT_SUPPORTED });
      } else if (!applied.includes(k)) out.warnings.push({ path: field(p, k), message: 'accepted, not applied: SIMPLE presents no client certificate, as in Istio' });
    }
    return;
  }
  const applied = mode === 'ISTIO_MUTUAL' ? ['mode', 'sni', 'subjectAltNames'] : ['mode'];
  const why = mode === 'ISTIO_MUTUAL' ? "ISTIO_MUTUAL uses the mesh's own certificates and roots, as Istio does" : mode === 'DISABLE' ? 'DISABLE sends plain text' : 'with no mode, automatic mTLS applies';
  for (const [k] of fields) if (!applied.includes(k)) out.warnings.push({ path: field(p, k), message: `accepted, not applied: ${why}` });
}

function destinationRule(spec: Obj, out: Support): void {
  const warn = (path: string, message: string) => out.warnings.push({ path, message });
  const policy = (tp: unknown, p: string) => {
    if (!isObject(tp)) return;
    if (set(tp.tls)) clientTls(tp.tls, field(p, 'tls'), out);
    for (const k of ['tunnel', 'proxyProtocol']) {
      if (set(tp[k])) warn(field(p, k), `accepted, not applied yet: ${NOT_YET[k]}`);
    }
    if (isObject(tp.retryBudget) && set(tp.retryBudget.budgetInterval)) {
      warn(field(field(p, 'retryBudget'), 'budgetInterval'), "accepted, not applied: the budget counts the requests under way and waiting, as Envoy's circuit-breaker retry budget, over no interval");
    }
    // Field by field: what policy.ts translates and the sidecar applies, and what it does not yet.
    const partly = (name: string, applied: Record<string, string[]>, why: string) => {
      const v = tp[name];
      if (!isObject(v)) return;
      for (const [k, sub] of Object.entries(v)) {
        if (!set(sub)) continue;
        const path = field(field(p, name), k);
        if (!(k in applied)) warn(path, `accepted, not applied yet: ${why}`);
        else if (isObject(sub) && applied[k].length) {
          for (const [k2, x] of Object.entries(sub)) if (set(x) && !applied[k].includes(k2)) warn(field(path, k2), `accepted, not applied yet: ${why}`);
        }
      }
    };
    partly('loadBalancer', { simple: [], localityLbSetting: [], warmup: [], warmupDurationSecs: [], consistentHash: ['httpHeaderName', 'httpCookie', 'httpQueryParameterName', 'useSourceIp', 'ringHash', 'maglev', 'minimumRingSize'] }, 'endpoints are chosen by loadBalancer.simple, or round robin');
    const lb = isObject(tp.loadBalancer) ? tp.loadBalancer : undefined;
    const warmup = lb && (set(lb.warmup) ? 'warmup' : set(lb.warmupDurationSecs) ? 'warmupDurationSecs' : undefined);
    if (lb && warmup && (set(lb.consistentHash) || lb.simple === 'RANDOM' || lb.simple === 'PASSTHROUGH')) {
      warn(field(field(p, 'loadBalancer'), warmup), 'accepted, not applied: warmup applies to ROUND_ROBIN and LEAST_REQUEST only, as in Istio');
    }
    partly(
      'connectionPool',
      {
        tcp: ['maxConnections', 'connectTimeout', 'tcpKeepalive', 'maxConnectionDuration', 'idleTimeout'],
        http: ['http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries', 'idleTimeout', 'h2UpgradePolicy', 'useClientProtocol', 'maxConcurrentStreams', 'http2KeepAlive'],
      },
      "Envoy's defaults apply",
    );
    // Node sets SO_KEEPALIVE and the idle time before probes, nothing else (libuv then probes every
    // second, ten times; without a time the OS's own settings stand).
    const keepalive = isObject(tp.connectionPool) && isObject(tp.connectionPool.tcp) ? tp.connectionPool.tcp.tcpKeepalive : undefined;
    if (isObject(keepalive)) {
      for (const k of ['probes', 'interval']) {
        if (given(keepalive[k])) {
          warn(
            field(field(field(field(p, 'connectionPool'), 'tcp'), 'tcpKeepalive'), k),
            `accepted, not applied yet: the sidecar's sockets cannot set the keepalive ${k === 'probes' ? 'probe count' : 'probe interval'}; with a time set, probes go every 1 s, 10 at most (Node's fixed values), else the OS's settings apply`,
          );
        }
      }
    }
    partly(
      'outlierDetection',
      { consecutive5xxErrors: [], consecutiveErrors: [], consecutiveGatewayErrors: [], interval: [], baseEjectionTime: [], maxEjectionPercent: [], minHealthPercent: [], consecutiveLocalOriginFailures: [], splitExternalLocalOriginErrors: [] },
      'only 5xx answers (and local-origin failures) count, as in Istio, which does not apply this field either yet',
    );
    list(tp.portLevelSettings).forEach((pl, i) => policy(pl, index(field(p, 'portLevelSettings'), i)));
  };
  policy(spec.trafficPolicy, 'spec.trafficPolicy');
  list(spec.subsets).forEach((s, i) => {
    if (isObject(s)) policy(s.trafficPolicy, field(index('spec.subsets', i), 'trafficPolicy'));
  });
}

const NOT_YET: Record<string, string> = {
  tunnel: 'no tunnel is used',
  proxyProtocol: 'no PROXY protocol header is sent',
};

/** Protobuf semantics: "", [] and 0 say nothing, as if unset. */
const given = (v: unknown): boolean => set(v) && v !== '' && v !== 0 && !(Array.isArray(v) && v.length === 0);

/** What automatic mTLS does with identities (control/translate/mtls.ts): the labelled WorkloadEntries' and proven workloads' only. */
const SE_SANS = "accepted, applied only to TLS a DestinationRule originates (mode SIMPLE or MUTUAL, where the rule names no subjectAltNames), as in Istio; automatic mTLS checks the identities of the mesh's own endpoints (Weft's workloads, WorkloadEntries labelled security.istio.io/tlsMode: istio), not a ServiceEntry's names";
const INLINE_IDENTITY = "accepted, not applied: a ServiceEntry's own endpoints get plaintext (nothing says a sidecar runs there), so no identity is checked";
const UNLABELLED_IDENTITY = 'accepted, not applied: clients send a WorkloadEntry mTLS, and expect this identity, only when its labels carry security.istio.io/tlsMode: istio';

function serviceEntry(spec: Obj, out: Support): void {
  const warn = (path: string, message: string) => out.warnings.push({ path, message });
  list(spec.addresses).forEach((a, i) => {
    if (typeof a === 'string' && a.includes('/')) warn(index('spec.addresses', i), 'accepted, not applied yet: the sidecar routes by name and by plain address, not by address range');
  });
  list(spec.endpoints).forEach((e, i) => {
    if (isObject(e)) workloadEntry(e, index('spec.endpoints', i), out, true);
  });
  if (given(spec.subjectAltNames)) warn('spec.subjectAltNames', SE_SANS);
}

/** A WorkloadEntry's spec, or one endpoint of a ServiceEntry (at `p`). */
function workloadEntry(we: Obj, p: string, out: Support, inline = false): void {
  const warn = (path: string, message: string) => out.warnings.push({ path, message });
  if (typeof we.address === 'string' && we.address.startsWith(UNIX_PREFIX)) {
    warn(field(p, 'address'), 'accepted, not applied yet: the sidecar does not dial unix sockets; this endpoint is left out');
  }
  if (given(we.network)) warn(field(p, 'network'), 'accepted, not applied yet: Weft has no networks');
  // A labelled WorkloadEntry's service account is the SAN its clients expect (automatic mTLS).
  const labelled = isObject(we.labels) && we.labels['security.istio.io/tlsMode'] === 'istio';
  if (given(we.serviceAccount) && (inline || !labelled)) warn(field(p, 'serviceAccount'), inline ? INLINE_IDENTITY : UNLABELLED_IDENTITY);
}

function sidecar(spec: Obj, out: Support): void {
  const warn = (path: string, message: string) => out.warnings.push({ path, message });
  const reject = (path: string, message: string) => out.rejected.push({ path, message });
  const egress = list(spec.egress);
  egress.forEach((l, i) => {
    if (!isObject(l)) return;
    const p = index('spec.egress', i);
    const port = isObject(l.port) ? l.port : undefined;
    const unix = port !== undefined && (port.number === 0 || port.number === undefined);
    if (unix) warn(p, 'accepted, not applied: a listener on a unix socket serves apps that dial it, and a sidecar has no such listener; its hosts are not seen through it');
    else if (port && given(port.protocol)) warn(field(field(p, 'port'), 'protocol'), "accepted, not applied: each service port's own protocol decides how its traffic is carried");
    if (given(l.bind) && !unix) warn(field(p, 'bind'), 'accepted, not applied yet: the sidecar keeps its own outbound listener address');
    if (given(l.captureMode) && l.captureMode !== 'DEFAULT') warn(field(p, 'captureMode'), 'accepted, not applied yet: apps reach the sidecar as their HTTP proxy; no traffic is captured');
  });
  if (isObject(spec.outboundTrafficPolicy) && set(spec.outboundTrafficPolicy.egressProxy)) {
    reject('spec.outboundTrafficPolicy.egressProxy', 'not supported yet; ignoring it would send traffic to unknown hosts directly instead of through the egress proxy');
  }
  if (given(spec.ingress)) warn('spec.ingress', "accepted, not applied yet: the sidecar's inbound listeners follow the workload's ports");
  // inboundConnectionPool is applied as a DestinationRule's connectionPool is; its fields the sidecar cannot apply are warned of alike.
  const pool = spec.inboundConnectionPool;
  if (isObject(pool) && isObject(pool.tcp) && isObject(pool.tcp.tcpKeepalive)) {
    for (const k of ['probes', 'interval']) {
      if (given(pool.tcp.tcpKeepalive[k])) warn(`spec.inboundConnectionPool.tcp.tcpKeepalive.${k}`, "accepted, not applied yet: the sidecar's sockets cannot set it (Node's fixed values apply)");
    }
  }
}

// ---- HTTPRoute and GRPCRoute ----
// Weft applies them as mesh routes: parentRefs that name a Service (name, namespace, port);
// matches; the header modifier, redirect, rewrite and mirror filters; backendRefs to Services
// (name, namespace, port, weight, header modifier filters); timeouts, retry, rule names.
// Hostnames need no word: the Gateway API's mesh routes ignore them where every parent is a Service.
// A backend in another namespace is no refusal either: mesh routes need no ReferenceGrant (GEP-1294).

const HEADER_MODIFIERS = ['RequestHeaderModifier', 'ResponseHeaderModifier'];
const EXTENSION_FILTER = 'extension filters are not supported; an extension filter Weft does not know could be a security control; ignoring it could widen traffic';

/** A Service is named by a DNS label: a dotted name would be read as another host (even another namespace's). */
const SERVICE_NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SERVICE_NAME_MESSAGE = 'a Service name is a DNS label (lower-case letters, digits and "-"); a name with dots would name some other host, which a route must not take over';

/**
 * A header modifier's names, by the rules Istio applies to a VirtualService's headers (the sidecar
 * cannot apply the others: removing Host, or setting a pseudo-header).
 */
function headerModifier(f: unknown, p: string, request: boolean, reject: (path: string, message: string) => void): void {
  if (!isObject(f)) return;
  for (const op of ['set', 'add'] as const) {
    list(f[op]).forEach((h, i) => {
      if (!isObject(h) || typeof h.name !== 'string') return;
      const bad = request ? checkRequestHeaderSetName(h.name) : checkHeaderOperationName(h.name);
      if (bad) reject(field(index(field(p, op), i), 'name'), `${bad}; the sidecar cannot apply it`);
    });
  }
  list(f.remove).forEach((n, i) => {
    if (typeof n !== 'string') return;
    const bad = checkHeaderOperationName(n);
    if (bad) reject(index(field(p, 'remove'), i), `${bad}; the sidecar cannot apply it`);
  });
}

function gatewayRoute(spec: Obj, out: Support): void {
  const warn = (path: string, message: string) => out.warnings.push({ path, message });
  const reject = (path: string, message: string) => out.rejected.push({ path, message });
  const modifiers = (fl: Obj, fp: string) => {
    headerModifier(fl.requestHeaderModifier, field(fp, 'requestHeaderModifier'), true, reject);
    headerModifier(fl.responseHeaderModifier, field(fp, 'responseHeaderModifier'), false, reject);
  };
  list(spec.parentRefs).forEach((ref, i) => {
    if (!isObject(ref)) return;
    const p = index('spec.parentRefs', i);
    const gk = parentGroupKind(ref);
    if (isService(gk)) {
      if (set(ref.sectionName)) reject(field(p, 'sectionName'), 'not supported yet; ignoring it would attach the route to every port of the Service');
      if (typeof ref.name === 'string' && !SERVICE_NAME.test(ref.name)) reject(field(p, 'name'), SERVICE_NAME_MESSAGE);
    } else if (gk.kind === 'Gateway' && gk.group === GATEWAY_GROUP) {
      warn(p, 'accepted, not applied yet: Weft has no gateways; the route is attached to none');
    } else {
      warn(p, `accepted, not applied yet: Weft attaches routes only to Services (kind Service, group ""); the route is attached to no ${gk.kind} of group ${gk.group === '' ? '""' : gk.group}`);
    }
  });
  /** A backend (of a backendRef or a mirror): a Service. */
  const backend = (ref: unknown, p: string) => {
    if (!isObject(ref)) return;
    const gk = backendGroupKind(ref);
    if (!isService(gk)) {
      const what = gk.group === '' ? gk.kind : `${gk.kind} (group ${gk.group})`;
      reject(field(p, gk.kind === 'Service' ? 'group' : 'kind'), `a backend of kind ${what} is not supported; its traffic would have nowhere to go`);
    } else if (!set(ref.port)) {
      reject(field(p, 'port'), 'a Service backend needs a port; without one its traffic would have nowhere to go');
    }
    if (isService(gk) && typeof ref.name === 'string' && !SERVICE_NAME.test(ref.name)) reject(field(p, 'name'), SERVICE_NAME_MESSAGE);
  };
  list(spec.rules).forEach((rule, i) => {
    if (!isObject(rule)) return;
    const p = index('spec.rules', i);
    list(rule.matches).forEach((m, j) => {
      if (isObject(m)) regexes(m, index(field(p, 'matches'), j), reject);
    });
    list(rule.filters).forEach((fl, j) => {
      if (!isObject(fl)) return;
      const fp = index(field(p, 'filters'), j);
      if (fl.type === 'ExtensionRef') reject(fp, EXTENSION_FILTER);
      modifiers(fl, fp);
      if (isObject(fl.requestMirror)) backend(fl.requestMirror.backendRef, field(field(fp, 'requestMirror'), 'backendRef'));
    });
    list(rule.backendRefs).forEach((ref, j) => {
      if (!isObject(ref)) return;
      const bp = index(field(p, 'backendRefs'), j);
      backend(ref, bp);
      list(ref.filters).forEach((fl, k) => {
        if (!isObject(fl) || typeof fl.type !== 'string') return;
        const fp = index(field(bp, 'filters'), k);
        if (HEADER_MODIFIERS.includes(fl.type)) return modifiers(fl, fp);
        if (fl.type === 'ExtensionRef') reject(fp, EXTENSION_FILTER);
        else reject(fp, `${fl.type} filters on a backendRef are not supported yet (only RequestHeaderModifier and ResponseHeaderModifier); ignoring it would send this backend's traffic as if the filter were not there`);
      });
    });
    if (set(rule.sessionPersistence)) warn(field(p, 'sessionPersistence'), 'accepted, not applied yet: requests are not pinned to an endpoint');
  });
}

// ---- ReferenceGrant ----
// It governs references from Gateway-bound routes, and Weft attaches no route to a Gateway; mesh
// routes reach Services of any namespace without one (GEP-1294, as Istio). So a grant changes
// nothing in Weft yet, and says so.

function referenceGrant(_spec: Obj, out: Support): void {
  out.warnings.push({ path: 'spec', message: 'accepted, not applied yet: a ReferenceGrant governs what Gateway-bound routes may refer to, and Weft attaches no route to a Gateway; mesh routes (parents that are Services) reach Services of any namespace without one, as the Gateway API (GEP-1294) and Istio have it' });
}

/**
 * The regular expressions of a match (path, headers, query parameters; a gRPC method's service and
 * method). The Gateway API leaves their dialect to the implementation: Weft's is RE2 (as Envoy's),
 * and a match it cannot compile would match nothing or, ignored, everything.
 */
function regexes(m: Obj, p: string, reject: (path: string, message: string) => void): void {
  const check = (re: unknown, path: string) => {
    const problem = typeof re === 'string' ? checkRegex(re) : undefined;
    if (problem) reject(path, `Weft matches regular expressions with RE2 and cannot use this one (${problem}); ignoring the match would widen the route`);
  };
  if (isObject(m.path) && m.path.type === 'RegularExpression') check(m.path.value, field(field(p, 'path'), 'value'));
  for (const name of ['headers', 'queryParams']) {
    list(m[name]).forEach((h, k) => {
      if (isObject(h) && h.type === 'RegularExpression') check(h.value, field(index(field(p, name), k), 'value'));
    });
  }
  if (isObject(m.method) && m.method.type === 'RegularExpression') {
    check(m.method.service, field(field(p, 'method'), 'service'));
    check(m.method.method, field(field(p, 'method'), 'method'));
  }
}
