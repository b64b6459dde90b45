// Istio's builder conformance cases (../shared/conformance/istio/authz-rbac) as real requests. For
// each case, its input policies are applied to a real mesh (httpbin in namespace foo with labels
// app=httpbin, version=v1: the proxy the cases are for), and requests are sent through real
// sidecars: from sleep (foo) and other (bar) over mTLS, and from a client outside the mesh in
// plaintext; probes are the plain ones (GET /, POST /) and ones made from the policy's own values
// (its paths, methods, hosts and request.headers conditions, made sendable). What the real sidecar
// decides (403 or not; a TCP connection closed or echoed) must be what Istio's own golden filters
// (the case's want files) decide for the same request, evaluated by the sidecar's RBAC engine on
// the request's attributes as Envoy would see them. So the whole path (Weft's control plane, xDS,
// the sidecar's conversion, its request context) must agree with Istio's generated config.
// Cases with another trust domain or aliases run on a mesh of their own, whose mesh config (the
// ConfigMap istio-system/istio) sets them before its workloads start: the workloads' certificates
// are then in the case's trust domain, and its principals are what Istio's filters are evaluated on.
// CUSTOM cases run with the case's mesh config (its extension providers) and an authorizer of the
// mesh (my-custom-ext-authz.foo, behind its own sidecar) that allows a request with
// `x-prefix-ext-authz: allow` (a header every case's provider sends it) and answers after 50 ms;
// each probe is sent with and without that header. Istio's goldens decide as the sidecar's engine
// evaluates them, the ext_authz filter (when the RBAC filter before it marked the request) as that
// authorizer would: a provider whose timeout is shorter than its 50 ms fails (open or closed).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse, parseAllDocuments } from 'yaml';
import { type CompiledRbacFilter, type Metadata, type RbacRequest, compileRbacTypedConfig, evaluateRbac, rbacDynamicMetadata } from '../../src/proxy/authz/index.ts';
import { compileMetadataMatcher } from '../../src/proxy/authz/metadata-matcher.ts';
import { durationMs } from '../../src/proxy/xds-client/convert-util.ts';
import { AuthzMesh, call, tcpEcho } from '../fixtures/authz-mesh.ts';
import { type Authorizer, h2cAuthorizer } from '../fixtures/ext-authz-servers.ts';
import { checkResource } from '../../src/api/index.ts';
import { ConfigError } from '../../src/api/types.ts';
import { AUTHZ_RBAC_ROOT as ROOT, type AuthzCase, authzCasesPath, readAuthzCases } from '../fixtures/authz-cases.ts';

type Case = AuthzCase;

const peerOf = (from: 'sleep' | 'other', td = 'cluster.local') => (from === 'sleep' ? `spiffe://${td}/ns/foo/sa/sleep` : `spiffe://${td}/ns/bar/sa/other`);
const HOST = 'httpbin.foo:8000';
const sni = (port: number) => `outbound_.${port}_._.httpbin.foo.svc.cluster.local`;

/** The authorizer's header, and how long it takes to answer. */
const ALLOW_HEADER = 'x-prefix-ext-authz';
const AUTHZ_DELAY_MS = 50;

/** Whether a case needs a mesh config of its own: another trust domain, or aliases. */
const ownTrustDomain = (c: Case) => (c.trustDomain !== undefined && c.trustDomain !== 'cluster.local') || (c.trustDomainAliases?.length ?? 0) > 0;

/** The ConfigMap that gives a mesh the case's trust domain and aliases. */
function meshConfigOf(c: Case): Record<string, unknown> {
  const mesh = `trustDomain: ${c.trustDomain ?? 'cluster.local'}\ntrustDomainAliases: ${JSON.stringify(c.trustDomainAliases ?? [])}\n`;
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' }, data: { mesh } };
}

/** An ext_authz golden, as far as the decision goes: which requests it checks, its timeout and failure mode. */
interface ExtAuthzGolden {
  enabled: (md: Metadata | undefined) => boolean;
  timeoutMs: number;
  failOpen: boolean;
}
type Golden = { name: string; rbac: CompiledRbacFilter } | { name: string; extAuthz: ExtAuthzGolden };

/** Istio's golden filters of a case: RBAC compiled as the sidecar compiles it, ext_authz as the test's authorizer answers. */
function goldens(dir: string, c: Case): Golden[] {
  return c.want.map((f): Golden => {
    const g = parse(readFileSync(new URL(`${dir}/${f}`, ROOT), 'utf8')) as { name: string; typedConfig: any };
    if (!g.name.endsWith('.ext_authz')) return { name: g.name, rbac: compileRbacTypedConfig(`${dir}/${f}`, g.typedConfig) };
    const tc = g.typedConfig;
    const timeout = tc.grpcService?.timeout ?? tc.httpService?.serverUri?.timeout;
    return { name: g.name, extAuthz: { enabled: compileMetadataMatcher(`${dir}/${f}`, tc.filterEnabledMetadata), timeoutMs: timeout === undefined ? 600_000 : durationMs(timeout), failOpen: tc.failureModeAllow === true } };
  });
}

/** What Istio's filters decide for a request: each in order, the RBAC ones marking it for the ext_authz one. */
function decide(filters: Golden[], r: RbacRequest, allowHeader: boolean): boolean {
  let metadata: Record<string, Record<string, unknown>> = {};
  for (const f of filters) {
    if ('rbac' in f) {
      const d = evaluateRbac(f.rbac, { ...r, metadata });
      metadata = { ...metadata, [f.name]: { ...metadata[f.name], ...rbacDynamicMetadata(f.rbac, d) } };
      if (!d.allowed) return false;
    } else if (f.extAuthz.enabled(metadata)) {
      const answered = f.extAuthz.timeoutMs > AUTHZ_DELAY_MS;
      if (!(answered ? allowHeader : f.extAuthz.failOpen)) return false;
    }
  }
  return true;
}

interface Probe {
  from: 'sleep' | 'other' | 'outside';
  method: string;
  path: string;
  host: string;
  headers: Record<string, string>;
}

const sendable = (v: string) => /^[\x21-\x7e]+$/.test(v) && !/[{}[\]\\"]/.test(v);
const fill = (v: string) => v.replace(/\{\*\*\}/g, 'a/b').replace(/\{\*\}/g, 'a').replace(/\*/g, 'x');

/** Requests made from the policies' own values, each from the three clients (a host only from outside: it picks the route). */
function probesOf(policies: any[]): Probe[] {
  const base = { method: 'GET', path: '/', host: HOST, headers: {} as Record<string, string> };
  const out: Omit<Probe, 'from'>[] = [base, { ...base, method: 'POST' }];
  for (const p of policies) {
    for (const r of p.spec?.rules ?? []) {
      const headers: Record<string, string> = {};
      for (const w of r.when ?? []) {
        const m = /^request\.headers\[(.+)\]$/.exec(w.key);
        const v = w.values?.[0];
        if (m && v !== undefined && sendable(m[1]) && sendable(fill(v))) headers[m[1].toLowerCase()] = fill(v);
      }
      const ops = (r.to ?? []).map((t: any) => t.operation ?? {});
      for (const op of ops.length ? ops : [{}]) {
        const path = (op.paths ?? []).map(fill).find((x: string) => x.startsWith('/') && sendable(x));
        const method = (op.methods ?? []).find((x: string) => /^[A-Z]+$/.test(x) && x !== 'CONNECT');
        const host = (op.hosts ?? []).map(fill).find((x: string) => /^[A-Za-z0-9.:-]+$/.test(x));
        const probe = { method: method ?? 'GET', path: path ?? '/', host: HOST, headers };
        out.push(probe);
        if (host) out.push({ ...probe, host });
      }
    }
  }
  const seen = new Set<string>();
  return out
    .flatMap((p) => (p.host === HOST ? (['sleep', 'other', 'outside'] as const).map((from) => ({ ...p, from })) : [{ ...p, from: 'outside' as const }]))
    .filter((p) => {
      const k = JSON.stringify(p);
      return !seen.has(k) && (seen.add(k), true);
    });
}

/** The request as httpbin's sidecar sees it (the attributes RBAC reads), its peers' certificates in trust domain `td`. */
function attributes(p: Probe, td?: string): RbacRequest {
  const peer = p.from === 'outside' ? undefined : peerOf(p.from, td);
  const headers = [':method', p.method, ':authority', p.host, ':path', p.path, ...Object.entries(p.headers).flat()];
  return { headers, destinationIp: '127.0.0.1', destinationPort: 8000, sourceIp: '127.0.0.1', ...(peer ? { peer, sni: sni(8000) } : {}) };
}

const cases = readAuthzCases();
if (!cases) {
  test('Istio authz conformance as requests', (t) => t.skip(`conformance data absent: ${authzCasesPath()} not found`));
} else {
  type Ports = Record<'sleep' | 'other' | 'outside', number>;
  /** httpbin (foo) with its HTTP and TCP ports, and the clients sleep (foo) and other (bar); `config` applied before any starts. */
  const startMesh = async (mesh: AuthzMesh, name: string, config?: Record<string, unknown>): Promise<Ports> => {
    await mesh.start(name);
    if (config) mesh.cp.store.apply([checkResource(config, 'mesh config')]);
    const app = await mesh.httpApp('httpbin');
    const echo = await mesh.echoApp();
    const h = await mesh.workload({ name: 'httpbin-v1', namespace: 'foo', sa: 'httpbin', service: 'httpbin', labels: { app: 'httpbin', version: 'v1' }, ports: [['http', 8000, app], ['tcp-echo', 9000, echo]] });
    const sleep = (await mesh.workload({ name: 'sleep', namespace: 'foo', sa: 'sleep', outbound: true })).outbound;
    const other = (await mesh.workload({ name: 'other', namespace: 'bar', sa: 'other', outbound: true })).outbound;
    await mesh.synced();
    return { outside: h.inbound.get(8000)!, sleep, other };
  };
  const mesh = new AuthzMesh();
  let ports: Ports = { sleep: 0, other: 0, outside: 0 };
  let authorizer: Authorizer | undefined;
  before(async () => {
    ports = await startMesh(mesh, 'authz-conformance');
    // The service the CUSTOM cases' providers name, my-custom-ext-authz.foo:9000 (HTTP/2: gRPC, or plain HTTP checks).
    authorizer = await h2cAuthorizer(ALLOW_HEADER, AUTHZ_DELAY_MS);
    await mesh.workload({ name: 'my-custom-ext-authz', namespace: 'foo', sa: 'ext-authz', service: 'my-custom-ext-authz', labels: { app: 'ext-authz' }, ports: [['grpc', 9000, authorizer.port]] });
    await mesh.synced();
  });
  after(async () => {
    await mesh.close();
    authorizer?.close();
  });

  /**
   * A CUSTOM case's mesh config (its extension providers). One istiod would refuse (an invalid
   * provider: meshConfigInvalid) weft apply refuses too, naming the fields; the mesh then has no
   * such provider, and Istio's goldens for the case (deny what the policy matches) still hold.
   */
  const setCustomMeshConfig = async (m: AuthzMesh, c: Case) => {
    if (!c.meshConfig) return;
    try {
      await m.setMeshConfig(cases.meshConfigs[c.meshConfig]);
    } catch (e) {
      if (!(e instanceof ConfigError) || !c.name.startsWith('custom-bad')) throw e;
      assert.match(e.message, /data\.mesh\.extensionProviders\[0\]\.envoyExtAuthzHttp\.port: port number 999999/);
      await m.setMeshConfig(undefined);
    }
  };

  const inputs = (dir: string, c: Case) =>
    parseAllDocuments(readFileSync(new URL(`${dir}/${c.input}`, ROOT), 'utf8'))
      .map((d) => d.toJS())
      .filter((d) => d !== null)
      .map(({ apiVersion: _v, kind: _k, ...rest }: any) => rest);

  /** An HTTP case's probes through `m`, each decided as Istio's golden filters decide it. */
  const runHttp = async (t: { diagnostic(m: string): void }, c: Case, m: AuthzMesh, ports: Ports) => {
    const policies = inputs('http', c);
    await setCustomMeshConfig(m, c);
    await m.setPolicies(policies);
    const want = goldens('http', c);
    const seen = { allowed: 0, denied: 0 };
    const custom = want.some((f) => 'extAuthz' in f);
    for (const probe of probesOf(policies)) {
      for (const allowHeader of custom ? [false, true] : [false]) {
        const p = allowHeader ? { ...probe, headers: { ...probe.headers, [ALLOW_HEADER]: 'allow' } } : probe;
        const expected = decide(want, attributes(p, c.trustDomain), allowHeader);
        const port = ports[p.from];
        const a = await call(port, p.host, p.path, { method: p.method, headers: p.headers });
        const got = a.status !== 403;
        assert.equal(got, expected, `${p.from} ${p.method} ${p.host}${p.path} ${JSON.stringify(p.headers)}: the sidecar answered ${a.status} (${a.policy ?? ''} ${a.body}), Istio's filters ${expected ? 'allow' : 'deny'} it`);
        if (got) assert.equal(a.status, 200, a.body);
        seen[got ? 'allowed' : 'denied']++;
      }
    }
    t.diagnostic(`allowed ${seen.allowed}, denied ${seen.denied}`);
  };

  describe('HTTP cases', () => {
    for (const c of cases.http) {
      if (ownTrustDomain(c)) continue;
      test(c.name, (t) => runHttp(t, c, mesh, ports));
    }
  });

  // Each on a mesh of its own, whose workloads' certificates are in the case's trust domain.
  describe('HTTP cases with a trust domain and aliases of their own (the mesh config)', () => {
    for (const c of cases.http.filter(ownTrustDomain)) {
      assert.equal(c.meshConfig, undefined, 'no CUSTOM case sets a trust domain (else its mesh needs the authorizer too)');
      test(`${c.name}: trust domain ${c.trustDomain}, aliases ${JSON.stringify(c.trustDomainAliases ?? [])}`, async (t) => {
        const own = new AuthzMesh();
        try {
          const p = await startMesh(own, `authz-conformance-${c.name}`, meshConfigOf(c));
          const certs = (await fetch(`${own.sidecars[1].admin}/certs`).then((r) => r.json())) as { identity: string };
          assert.equal(certs.identity, peerOf('sleep', c.trustDomain), 'sleep holds a certificate of the mesh config\'s trust domain');
          await runHttp(t, c, own, p);
        } finally {
          await own.close();
        }
      });
    }
    assert.equal(cases.tcp.filter(ownTrustDomain).length, 0, 'no TCP case sets a trust domain (else run it on a mesh of its own too)');
  });

  describe('TCP cases', () => {
    for (const c of cases.tcp) {
      test(c.name, async (t) => {
        await setCustomMeshConfig(mesh, c);
        await mesh.setPolicies(inputs('tcp', c));
        const want = goldens('tcp', c);
        const seen = { allowed: 0, denied: 0 };
        for (const [from, peer] of [['sleep', peerOf('sleep')], ['other', peerOf('other')]] as const) {
          // The authorizer allows every TCP connection it answers in time.
          const expected = decide(want, { destinationIp: '127.0.0.1', destinationPort: 9000, sourceIp: '127.0.0.1', peer, sni: sni(9000) }, true);
          const got = await tcpEcho(ports[from], 'httpbin.foo:9000');
          assert.equal(got, expected ? 'echoed' : 'closed', `${from}: Istio's filters ${expected ? 'allow' : 'deny'} the connection`);
          seen[expected ? 'allowed' : 'denied']++;
        }
        t.diagnostic(`allowed ${seen.allowed}, denied ${seen.denied}`);
      });
    }
  });
}
