// Istio's own goldens for its AuthorizationPolicy builder (pilot/pkg/security/authz/builder
// testdata, in ../shared/conformance/istio/authz-rbac): every case's policies, built for a proxy in
// namespace foo with labels app=httpbin, version=v1, must give exactly the filters Istio gives, in
// order. The goldens are protobuf JSON as Go writes it; Weft writes the same messages in its own
// proto JSON (translate/'s: snake_case, wrappers and durations as objects), so each golden is put
// into that form first (normalise), then compared deeply. Each filter Weft builds must also come
// back unchanged through Envoy's own .proto files (encode, decode): no field name is mistyped.
// Without the data the suite is skipped.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse, parseAllDocuments } from 'yaml';
import { inspect, formatProblem, type AuthorizationPolicy } from '../../src/api/index.ts';
import { authzFilters, type AuthzFilter, type AuthzMesh } from '../../src/control/translate/authz.ts';
import { loadFullRoot } from '../../src/xds/gen-protos.ts';
import { AUTHZ_RBAC_ROOT as ROOT, type AuthzCase, type AuthzCases, authzCasesPath, readAuthzCases } from '../fixtures/authz-cases.ts';

type GoldenCase = AuthzCase;
type Cases = AuthzCases;

/** The case's policies, each validated as `weft apply` would before refusing the kind. */
function policiesOf(file: URL): AuthorizationPolicy[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as unknown);
  return docs.flatMap((doc, i) => {
    if (doc === null) return []; // an empty document (a trailing ---)
    const { resource, problems } = inspect(doc, `${file.pathname} document ${i + 1}`, true);
    assert.ok(resource, `invalid input: ${problems.map(formatProblem).join('\n')}`);
    return [resource as AuthorizationPolicy];
  });
}

const snake = (k: string): string => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** "0.002s" -> { seconds: 0, nanos: 2000000 }, as translate/duration.ts writes a Duration. */
function durationOf(s: string): Record<string, number> {
  const m = /^(\d+)(?:\.(\d{1,9}))?s$/.exec(s);
  assert.ok(m, `not a protobuf JSON duration: ${s}`);
  const nanos = Number((m[2] ?? '').padEnd(9, '0'));
  return nanos ? { seconds: Number(m[1]), nanos } : { seconds: Number(m[1]) };
}

/**
 * A golden in Weft's proto JSON: field names snake_case (but not the keys of the `policies` map,
 * which are rule names); CidrRange.prefix_len a UInt32Value ({ value }); Duration fields (the
 * ext_authz timeouts) { seconds, nanos }.
 */
function normalise(v: unknown, key = ''): unknown {
  if (Array.isArray(v)) return v.map((x) => normalise(x));
  if (typeof v !== 'object' || v === null) {
    if (key === 'prefix_len') return { value: v };
    if (key === 'timeout' && typeof v === 'string') return durationOf(v);
    return v;
  }
  const entries = Object.entries(v as Record<string, unknown>);
  if (key === 'policies') return Object.fromEntries(entries.map(([k, x]) => [k, normalise(x)]));
  return Object.fromEntries(entries.map(([k, x]) => [k === '@type' ? k : snake(k), normalise(x, k === '@type' ? k : snake(k))]));
}

/** Where two JSON values differ, one line per difference ("$.typed_config.rules: missing"), the first 20. */
function differences(want: unknown, got: unknown, at = '$', out: string[] = []): string[] {
  if (out.length >= 20) return out;
  if (typeof want !== 'object' || want === null || typeof got !== 'object' || got === null || Array.isArray(want) !== Array.isArray(got)) {
    if (!Object.is(want, got) && JSON.stringify(want) !== JSON.stringify(got)) out.push(`${at}: want ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
    return out;
  }
  const w = want as Record<string, unknown>;
  const g = got as Record<string, unknown>;
  if (Array.isArray(w) && Array.isArray(g) && w.length !== g.length) out.push(`${at}: want ${w.length} items, got ${g.length}`);
  for (const k of new Set([...Object.keys(w), ...Object.keys(g)])) {
    const path = Array.isArray(w) ? `${at}[${k}]` : `${at}.${k}`;
    if (!(k in g)) out.push(`${path}: missing (want ${JSON.stringify(w[k]).slice(0, 120)})`);
    else if (!(k in w)) out.push(`${path}: not expected (got ${JSON.stringify(g[k]).slice(0, 120)})`);
    else differences(w[k], g[k], path, out);
  }
  return out;
}

/** Envoy's protos, with the authorization filters (not yet in the sidecar's pruned descriptor). */
let protos: ReturnType<typeof loadFullRoot> | undefined;
function protoRoot(): ReturnType<typeof loadFullRoot> {
  if (protos) return protos;
  protos = loadFullRoot();
  protos.loadSync(
    [
      'envoy/extensions/filters/http/rbac/v3/rbac.proto',
      'envoy/extensions/filters/network/rbac/v3/rbac.proto',
      'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
      'envoy/extensions/filters/network/ext_authz/v3/ext_authz.proto',
      'envoy/extensions/path/match/uri_template/v3/uri_template_match.proto',
    ],
    { keepCase: true },
  );
  protos.resolveAll();
  return protos;
}

/** A filter, encoded as Envoy's HttpFilter or network Filter and decoded again, as the sidecar would get it. */
function roundTrip(f: AuthzFilter, chain: 'http' | 'tcp'): unknown {
  const t = protoRoot().lookupType(chain === 'http' ? 'envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter' : 'envoy.config.listener.v3.Filter');
  return t.toObject(t.decode(t.encode(t.fromObject(f)).finish()), { json: true, enums: String, longs: Number, defaults: false });
}

function meshOf(cases: Cases, c: GoldenCase): AuthzMesh {
  return {
    trustDomain: c.trustDomain ?? 'cluster.local',
    trustDomainAliases: c.trustDomainAliases ?? [],
    extensionProviders: c.meshConfig ? cases.meshConfigs[c.meshConfig].extensionProviders : [],
    // The one service the goldens' providers name (builder_test.go's push context).
    services: [{ hostname: 'my-custom-ext-authz.foo.svc.cluster.local', namespace: 'foo' }],
  };
}

function check(cases: Cases, chain: 'http' | 'tcp', c: GoldenCase, prefix = ''): void {
  const dir = new URL(`${chain}/`, ROOT);
  const filters = authzFilters(policiesOf(new URL(c.input, dir)), cases.proxy, meshOf(cases, c))[chain];
  const want = c.want.map((f) => normalise(parse(readFileSync(new URL(prefix + f, dir), 'utf8'))));
  assert.equal(filters.length, want.length, `want ${want.length} filters (${c.want.join(', ') || 'none'}), got ${filters.length}: ${filters.map((f) => f.name).join(', ')}`);
  want.forEach((w, i) => {
    const got = JSON.parse(JSON.stringify(filters[i])) as unknown;
    const diff = differences(w, got);
    assert.deepEqual(diff, [], `${prefix}${c.want[i]} differs:\n${diff.join('\n')}`);
    const lost = differences(got, roundTrip(filters[i], chain));
    assert.deepEqual(lost, [], `${c.want[i]}: not the same through Envoy's protos:\n${lost.join('\n')}`);
  });
}

const cases = readAuthzCases();
if (!cases) {
  test("Istio's authorization builder goldens", (t) => {
    t.skip(`conformance data absent: ${authzCasesPath()} not found (it is present in CI)`);
  });
} else {
  describe("Istio's authorization builder goldens: HTTP filters", () => {
    for (const c of cases.http) test(c.name, () => check(cases, 'http', c));
  });
  // Istio runs its HTTP cases again against extended-<golden> (the same content today).
  describe("Istio's authorization builder goldens: HTTP filters, extended goldens", () => {
    for (const c of cases.http) test(c.name, () => check(cases, 'http', c, 'extended-'));
  });
  describe("Istio's authorization builder goldens: TCP filters", () => {
    for (const c of cases.tcp) test(c.name, () => check(cases, 'tcp', c));
  });
}
