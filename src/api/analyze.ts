// `weft analyze`: what a set of valid resources says together, as `istioctl analyze` reports it
// (with Istio's codes and message templates where one exists,
// ../shared/conformance/istio/analyzer-messages.yaml), plus what only Weft has to say: fields it
// accepts but does not apply yet (WEFT0001) or refuses (WEFT0004), delegations that make fewer routes than they name
// (WEFT0003). Pure: resources in, messages out. The security kinds' messages are in
// analyze-security.ts.
//
// Offline, only what the input itself makes checkable is reported: a host may be a Kubernetes
// Service Weft cannot see, so an unknown host is never an error; a subset no DestinationRule in the
// input defines is.
import type { Destination, DestinationRule, Resource, ServiceEntry, Sidecar, VirtualService } from './types.ts';
import { describeKey } from './types.ts';
import { refusalsOf, warningsOf } from './validate.ts';
import { isObject, type Obj } from './schema.ts';
import { mergeDelegates } from './delegation.ts';
import { fqdn, hostSubsetOf } from './rules.ts';
import { securityMessages } from './analyze-security.ts';
import { mtlsConflicts, type ServedWorkload } from './analyze-mtls.ts';
import { telemetryMessages } from './analyze-telemetry.ts';

export interface AnalysisMessage {
  code: string; // Istio's ("IST0101", ...; the security kinds' in analyze-security.ts), or Weft's own: "WEFT0001" (accepted, not applied yet), "WEFT0002" (a subset that selects no workload of the running mesh), "WEFT0003" (a delegation that makes fewer routes than it names), "WEFT0004" (valid in Istio, refused by Weft), "WEFT0005" (a DestinationRule TLS mode its workloads refuse)
  level: 'Error' | 'Warning' | 'Info';
  resource: string; // "VirtualService default/reviews"
  path: string; // "spec.http[0].route[0].destination.subset"
  message: string;
}

const name = (r: Resource) => describeKey({ kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name });
const ofKind = <T extends Resource>(resources: readonly Resource[], kind: string) => resources.filter((r) => r.kind === kind) as T[];
/** Go's %v of a []string: "[a b c]". */
const goList = (items: readonly string[]) => `[${items.join(' ')}]`;

/**
 * What the running mesh has, for the checks only it makes possible (`weft analyze` against a
 * control plane): each service host, with the labels of each of its workloads.
 */
export interface LiveMesh {
  services: ReadonlyMap<string, readonly Readonly<Record<string, string>>[]>;
  /** Every workload, a service's or not: what security policies select (analyze-security.ts), what DestinationRules reach (analyze-mtls.ts). */
  workloads?: readonly ServedWorkload[];
}

/** A registered workload as the admin API lists it (GET /api/v1/endpoints), for liveMeshOf. */
export interface RegisteredWorkload {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  service?: string;
  servicePort: number;
  ports?: readonly { port: number }[];
}

/**
 * The running mesh as analyze() takes it: each workload as policies and DestinationRules see it,
 * and each service (the workloads of one name in one namespace) with its workloads' labels.
 */
export function liveMeshOf(registered: readonly RegisteredWorkload[]): LiveMesh {
  const workloads = registered.map((w) => ({
    name: `${w.namespace}/${w.name}`,
    namespace: w.namespace,
    labels: w.labels ?? {},
    ...(w.service ? { host: w.service.includes('.') ? w.service : `${w.service}.${w.namespace}.svc.cluster.local` } : {}),
    ports: w.ports?.length ? w.ports.map((p) => p.port) : [w.servicePort],
  }));
  const services = new Map<string, Record<string, string>[]>();
  for (const w of workloads) if (w.host) services.set(w.host, [...(services.get(w.host) ?? []), w.labels]);
  return { services, workloads };
}

export function analyze(resources: readonly Resource[], live?: LiveMesh): AnalysisMessage[] {
  const vss = ofKind<VirtualService>(resources, 'VirtualService');
  const drs = ofKind<DestinationRule>(resources, 'DestinationRule');
  const out: AnalysisMessage[] = [
    ...subsetsNotFound(vss, drs),
    ...meshHostConflicts(vss),
    ...sidecarSelectors(ofKind<Sidecar>(resources, 'Sidecar')),
    ...vss.flatMap(unusedRules),
    ...delegation(vss),
    ...securityMessages(resources, live?.workloads),
    ...telemetryMessages(resources, live?.workloads),
    ...(live?.workloads ? mtlsConflicts(resources, live.workloads) : []),
    ...(live ? [...hostsNotFound(vss, ofKind<ServiceEntry>(resources, 'ServiceEntry'), live), ...emptySubsets(drs, live)] : []),
  ];
  // WEFT0004: valid in Istio, refused by `weft apply` (api/support.ts): Istio's analyzers have
  // nothing to say of it, so it is not their IST0106 (schema validation error).
  for (const r of resources) {
    for (const w of refusalsOf(r)) out.push({ code: 'WEFT0004', level: 'Error', resource: w.resource ?? name(r), path: w.path, message: `valid in Istio, refused by weft apply: ${w.message}` });
  }
  // WEFT0001: accepted, not applied yet (api/support.ts).
  for (const r of resources) {
    for (const w of warningsOf(r)) out.push({ code: 'WEFT0001', level: 'Warning', resource: w.resource ?? name(r), path: w.path, message: w.message });
  }
  return out;
}

// ---- WEFT0003: delegation that makes fewer routes than it names (Istio's analyzers say nothing of
// delegation; its control plane only logs these) ----

function delegation(vss: readonly VirtualService[]): AnalysisMessage[] {
  return mergeDelegates(vss).notes.map((n) => ({ code: 'WEFT0003', level: 'Warning', resource: name(n.vs), path: n.path, message: n.message }));
}

// ---- With the running mesh: IST0101 for a destination host nothing serves; WEFT0002 for a subset
// that selects none of its host's workloads ----

function hostsNotFound(vss: readonly VirtualService[], ses: readonly ServiceEntry[], live: LiveMesh): AnalysisMessage[] {
  const entryHosts = ses.flatMap((se) => se.spec.hosts ?? []);
  // A wildcard host is always known, so hostSubsetOf only gets plain hosts: does a ServiceEntry host (exact or wildcard) take it?
  const known = (host: string) => host.startsWith('*') || live.services.has(host) || entryHosts.some((p) => hostSubsetOf(host, p));
  const out: AnalysisMessage[] = [];
  for (const vs of vss) {
    for (const { d, path } of destinationsOf(vs)) {
      if (!d) continue;
      const host = fqdn(d.host, vs.metadata.namespace);
      if (!known(host)) out.push({ code: 'IST0101', level: 'Error', resource: name(vs), path: `${path}.host`, message: `Referenced host not found: "${host}" (no workload serves it and no ServiceEntry names it: its traffic gets 503)` });
    }
  }
  return out;
}

/** Every destination of a VirtualService, with its field path: http routes (mirrors marked), then tls and tcp routes. */
function destinationsOf(vs: VirtualService): { d: Destination | undefined; path: string; mirror: boolean }[] {
  const out: { d: Destination | undefined; path: string; mirror: boolean }[] = [];
  (vs.spec.http ?? []).forEach((r, i) => {
    (r.route ?? []).forEach((d, j) => out.push({ d: d.destination, path: `spec.http[${i}].route[${j}].destination`, mirror: false }));
    if (r.mirror) out.push({ d: r.mirror, path: `spec.http[${i}].mirror`, mirror: true });
    (r.mirrors ?? []).forEach((m, j) => out.push({ d: m.destination, path: `spec.http[${i}].mirrors[${j}].destination`, mirror: true }));
  });
  for (const kind of ['tls', 'tcp'] as const) {
    (vs.spec[kind] ?? []).forEach((r, i) => {
      (r.route ?? []).forEach((d, j) => out.push({ d: d.destination, path: `spec.${kind}[${i}].route[${j}].destination`, mirror: false }));
    });
  }
  return out;
}

function emptySubsets(drs: readonly DestinationRule[], live: LiveMesh): AnalysisMessage[] {
  const out: AnalysisMessage[] = [];
  for (const dr of drs) {
    const host = fqdn(dr.spec.host, dr.metadata.namespace);
    const workloads = live.services.get(host);
    if (!workloads?.length) continue;
    (dr.spec.subsets ?? []).forEach((s, i) => {
      const selects = (labels: Readonly<Record<string, string>>) => Object.entries(s.labels ?? {}).every(([k, v]) => labels[k] === v);
      if (workloads.some(selects)) return;
      out.push({ code: 'WEFT0002', level: 'Warning', resource: name(dr), path: `spec.subsets[${i}].labels`, message: `subset "${s.name}" of ${host} selects none of its ${workloads.length} workload(s): requests routed to it get 503 no_healthy_endpoint` });
    });
  }
  return out;
}

// ---- IST0101 ReferencedResourceNotFound: a subset no DestinationRule for its host defines ----

function subsetsNotFound(vss: readonly VirtualService[], drs: readonly DestinationRule[]): AnalysisMessage[] {
  const subsets = new Map<string, Set<string>>();
  for (const dr of drs) {
    const host = fqdn(dr.spec.host, dr.metadata.namespace);
    const s = subsets.get(host) ?? new Set<string>();
    for (const sub of dr.spec.subsets ?? []) s.add(sub.name);
    subsets.set(host, s);
  }
  const out: AnalysisMessage[] = [];
  for (const vs of vss) {
    // As Istio's analyzer: route destinations (http, tls, tcp) are "host+subset", mirrors "mirror+subset".
    for (const { d, path, mirror } of destinationsOf(vs)) {
      if (!d?.subset) continue;
      const host = fqdn(d.host, vs.metadata.namespace);
      if (subsets.get(host)?.has(d.subset)) continue;
      const what = mirror ? 'mirror+subset' : 'host+subset';
      const effect = mirror ? 'no copies of requests reach it' : 'its traffic gets 503';
      out.push({ code: 'IST0101', level: 'Error', resource: name(vs), path: `${path}.subset`, message: `Referenced ${what} in destinationrule not found: "${host}+${d.subset}" (${effect})` });
    }
  }
  return out;
}

// ---- IST0109 ConflictingMeshGatewayVirtualServiceHosts: two VirtualServices bound to the mesh claim one host; only the first applies ----

function meshHostConflicts(vss: readonly VirtualService[]): AnalysisMessage[] {
  const byHost = new Map<string, VirtualService[]>();
  for (const vs of vss) {
    const gw = vs.spec.gateways;
    if (gw && gw.length && !gw.includes('mesh')) continue;
    for (const h of vs.spec.hosts ?? []) {
      const host = fqdn(h, vs.metadata.namespace);
      byHost.set(host, [...(byHost.get(host) ?? []), vs]);
    }
  }
  const out: AnalysisMessage[] = [];
  for (const [host, list] of byHost) {
    if (list.length < 2) continue;
    const names = list.map((v) => `${v.metadata.namespace}/${v.metadata.name}`).sort();
    for (const vs of list) {
      out.push({ code: 'IST0109', level: 'Error', resource: name(vs), path: 'spec.hosts', message: `The VirtualServices ${names.join(',')} associated with mesh gateway define the same host ${host} which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.` });
    }
  }
  return out;
}

// ---- IST0110 ConflictingSidecarWorkloadSelectors, IST0111 MultipleSidecarsWithoutWorkloadSelectors ----
// Istio's analyzer finds the pods two Sidecars both select; offline there are no pods, so two
// Sidecars of one namespace with equal selectors (the same label map) conflict: whatever pod one
// selects, the other does too. An empty selector selects every pod of the namespace (in Istio and
// in Weft), so two of them conflict as well; Istio's analyzer, which skips selectors without
// labels, does not say so.

function sidecarSelectors(sidecars: readonly Sidecar[]): AnalysisMessage[] {
  const groups = new Map<string, { namespace: string; labels?: [string, string][]; list: Sidecar[] }>();
  for (const sc of sidecars) {
    const namespace = sc.metadata.namespace;
    const selector = sc.spec.workloadSelector;
    const labels = selector ? Object.entries(selector.labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) : undefined;
    const k = JSON.stringify([namespace, labels ?? null]);
    const group = groups.get(k) ?? { namespace, labels, list: [] };
    group.list.push(sc);
    groups.set(k, group);
  }
  const out: AnalysisMessage[] = [];
  for (const { namespace, labels, list } of groups.values()) {
    if (list.length < 2) continue;
    const names = goList(list.map((sc) => sc.metadata.name).sort());
    const message = labels
      ? `The Sidecars ${names} in namespace "${namespace}" select the same workload pods (${labels.length ? `those with labels ${labels.map(([k, v]) => `${k}=${v}`).join(',')}` : 'every pod of the namespace'}), which can lead to undefined behavior.`
      : `The Sidecars ${names} in namespace "${namespace}" have no workload selector, which can lead to undefined behavior.`;
    for (const sc of list) out.push({ code: labels ? 'IST0110' : 'IST0111', level: 'Error', resource: name(sc), path: 'spec.workloadSelector', message });
  }
  return out;
}

// ---- IST0130 VirtualServiceUnreachableRule, IST0131 VirtualServiceIneffectiveMatch ----
// As Istio's analyzeUnreachableHTTPRules (and its TCP twin): routes are tried in order, the first
// that matches wins, so
//   - after a rule without matches, no rule is used: one without matches gets "only the last rule
//     can have no matches", one with matches "route without matches defined before";
//   - a match equal to one of an earlier rule (the name aside) is not used (IST0131), and a rule
//     whose matches all are gets IST0130 "all matches used by prior rules";
//   - a URI prefix match covered by an earlier one (its prefix starts with the earlier's, and it is
//     the same in everything else) is not used (IST0131, "... of prefix ...").
// Weft's own, where Istio says nothing: a rule with a match that has no condition (`{}`, a name,
// ignoreUriCase, statPrefix) matches every request too, so the rules after it are not used either
// ("route matching every request defined before"). Istio's prefix check compares methods, headers
// and the like by string prefix, which reports matches that are used; this one reports a covered
// match only where every request it matches is matched before.

/** Protobuf semantics: what says nothing ("", 0, false, empty lists and maps) is as if unset. */
function unset(v: unknown): boolean {
  return v === undefined || v === null || v === '' || v === 0 || v === false || (Array.isArray(v) && v.length === 0) || (isObject(v) && Object.keys(v).length === 0);
}

/** The value with its map keys sorted, to compare as text. */
function sortedKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortedKeys);
  if (!isObject(v)) return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortedKeys(v[k])]));
}

/** A match's conditions (the fields set, but for `leave`), in a form that compares as text. */
function conditions(m: unknown, leave: readonly string[] = []): Obj {
  const o = isObject(m) ? m : {};
  return sortedKeys(Object.fromEntries(Object.entries(o).filter(([k, v]) => k !== 'name' && !leave.includes(k) && !unset(v)))) as Obj;
}

/** Fields of an HTTP match that narrow nothing on their own. */
const NO_CONDITION = ['ignoreUriCase', 'statPrefix'];

/** Istio's routeName and requestName: `"name"` when named, else `#index`. */
const label = (v: unknown, i: number) => (isObject(v) && typeof v.name === 'string' && v.name !== '' ? JSON.stringify(v.name) : `#${i}`);

function unusedRules(vs: VirtualService): AnalysisMessage[] {
  const out: AnalysisMessage[] = [];
  const report = (code: 'IST0130' | 'IST0131', path: string, message: string) =>
    out.push({ code, level: code === 'IST0130' ? 'Warning' : 'Info', resource: name(vs), path, message });
  for (const [proto, rules] of [['http', vs.spec.http ?? []], ['tcp', vs.spec.tcp ?? []], ['tls', vs.spec.tls ?? []]] as const) {
    /** A rule's or a match's name in messages: Istio labels http ones by name, tcp and tls ones by index only. */
    const labelOf = (v: unknown, i: number) => (proto === 'http' ? label(v, i) : `#${i}`);
    const seen = new Map<string, number>();
    const prefixes: { rule: string; match: string; prefix: string; rest: string }[] = [];
    let matchesAll: 'no matches' | 'empty match' | undefined;
    (rules as readonly { match?: unknown[] }[]).forEach((rule, i) => {
      const path = `spec.${proto}[${i}]`;
      const unreachable = (reason: string) => report('IST0130', path, `VirtualService rule ${labelOf(rule, i)} not used (${reason}).`);
      const ineffective = (j: number, match: string, dup: string) =>
        report('IST0131', `${path}.match[${j}]`, `VirtualService rule ${labelOf(rule, i)} match ${match} is not used (duplicate/overlapping match in rule ${dup}).`);
      const matches = rule.match ?? [];
      if (matches.length === 0) {
        if (matchesAll) unreachable(matchesAll === 'no matches' ? 'only the last rule can have no matches' : 'route matching every request defined before');
        matchesAll ??= 'no matches';
        return;
      }
      if (matchesAll) {
        unreachable(matchesAll === 'no matches' ? 'route without matches defined before' : 'route matching every request defined before');
        return;
      }
      const conds = matches.map((m) => conditions(m));
      let duplicates = 0;
      matches.forEach((m, j) => {
        const key = JSON.stringify(conds[j]);
        const dup = seen.get(key);
        if (dup !== undefined) {
          ineffective(j, labelOf(m, j), labelOf(rules[dup], dup));
          duplicates++;
          return;
        }
        seen.set(key, i);
        const uri = isObject(m) ? conditions(m.uri) : {};
        if (proto !== 'http' || Object.keys(uri).length !== 1 || typeof uri.prefix !== 'string') return;
        const here = { rule: labelOf(rule, i), match: labelOf(m, j), prefix: uri.prefix, rest: JSON.stringify(conditions(m, ['uri'])) };
        const cover = prefixes.find((p) => p.prefix !== here.prefix && here.prefix.startsWith(p.prefix) && p.rest === here.rest);
        if (cover) ineffective(j, `${here.match} of prefix ${here.prefix}`, `${cover.match} of prefix ${cover.prefix} on ${cover.rule}`);
        prefixes.push(here);
      });
      if (duplicates === matches.length) unreachable('all matches used by prior rules');
      const narrows = (c: Obj) => Object.keys(c).some((k) => proto !== 'http' || !NO_CONDITION.includes(k));
      if (conds.some((c) => !narrows(c))) matchesAll = 'empty match';
    });
  }
  return out;
}

