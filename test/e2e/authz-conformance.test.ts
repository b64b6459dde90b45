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
// Left out, and said so: CUSTOM cases (Weft refuses CUSTOM: no extension providers).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { type CompiledRbacFilter, type RbacRequest, compileRbacTypedConfig, evaluateRbac } from '../../src/proxy/authz/index.ts';
import { AuthzMesh, call, tcpEcho } from '../fixtures/authz-mesh.ts';
import { checkResource } from '../../src/api/index.ts';

const ROOT = new URL('../../../shared/conformance/istio/authz-rbac/', import.meta.url);

interface Case {
  name: string;
  input: string;
  want: string[];
  meshConfig?: string;
  trustDomain?: string;
  trustDomainAliases?: string[];
}

const peerOf = (from: 'sleep' | 'other', td = 'cluster.local') => (from === 'sleep' ? `spiffe://${td}/ns/foo/sa/sleep` : `spiffe://${td}/ns/bar/sa/other`);
const HOST = 'httpbin.foo:8000';
const sni = (port: number) => `outbound_.${port}_._.httpbin.foo.svc.cluster.local`;

/** Why a case is not run as requests, or undefined. */
function leftOut(c: Case): string | undefined {
  if (c.meshConfig || c.name.startsWith('custom')) return 'CUSTOM: Weft refuses it (no meshConfig.extensionProviders)';
  return undefined;
}

/** Whether a case needs a mesh config of its own: another trust domain, or aliases. */
const ownTrustDomain = (c: Case) => (c.trustDomain !== undefined && c.trustDomain !== 'cluster.local') || (c.trustDomainAliases?.length ?? 0) > 0;

/** The ConfigMap that gives a mesh the case's trust domain and aliases. */
function meshConfigOf(c: Case): Record<string, unknown> {
  const mesh = `trustDomain: ${c.trustDomain ?? 'cluster.local'}\ntrustDomainAliases: ${JSON.stringify(c.trustDomainAliases ?? [])}\n`;
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' }, data: { mesh } };
}

/** Istio's golden filters of a case, compiled as the sidecar compiles RBAC (ext_authz would be refused anyway). */
function goldens(dir: string, c: Case): CompiledRbacFilter[] {
  return c.want.map((f) => {
    const g = parse(readFileSync(new URL(`${dir}/${f}`, ROOT), 'utf8')) as { name: string; typedConfig: unknown };
    return compileRbacTypedConfig(`${dir}/${f}`, g.typedConfig);
  });
}

const decide = (filters: CompiledRbacFilter[], r: RbacRequest): boolean => filters.every((f) => evaluateRbac(f, r).allowed);

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

if (!existsSync(fileURLToPath(ROOT))) {
  test('Istio authz conformance as requests', (t) => t.skip(`conformance data absent: ${fileURLToPath(ROOT)} not found`));
} else {
  const cases = JSON.parse(readFileSync(new URL('cases.derived.json', ROOT), 'utf8')) as { http: Case[]; tcp: Case[] };
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
  before(async () => {
    ports = await startMesh(mesh, 'authz-conformance');
  });
  after(() => mesh.close());

  const inputs = (dir: string, c: Case) =>
    parseAllDocuments(readFileSync(new URL(`${dir}/${c.input}`, ROOT), 'utf8'))
      .map((d) => d.toJS())
      .filter((d) => d !== null)
      .map(({ apiVersion: _v, kind: _k, ...rest }: any) => rest);

  /** An HTTP case's probes through `m`, each decided as Istio's golden filters decide it. */
  const runHttp = async (t: { diagnostic(m: string): void }, c: Case, m: AuthzMesh, ports: Ports) => {
    const policies = inputs('http', c);
    await m.setPolicies(policies);
    const want = goldens('http', c);
    const seen = { allowed: 0, denied: 0 };
    for (const p of probesOf(policies)) {
      const expected = decide(want, attributes(p, c.trustDomain));
      const port = ports[p.from];
      const a = await call(port, p.host, p.path, { method: p.method, headers: p.headers });
      const got = a.status !== 403;
      assert.equal(got, expected, `${p.from} ${p.method} ${p.host}${p.path} ${JSON.stringify(p.headers)}: the sidecar answered ${a.status} (${a.policy ?? ''}), Istio's filters ${expected ? 'allow' : 'deny'} it`);
      if (got) assert.equal(a.status, 200, a.body);
      seen[got ? 'allowed' : 'denied']++;
    }
    t.diagnostic(`allowed ${seen.allowed}, denied ${seen.denied}`);
  };

  describe('HTTP cases', () => {
    for (const c of cases.http) {
      const why = leftOut(c);
      if (ownTrustDomain(c)) continue;
      test(c.name, { skip: why }, (t) => runHttp(t, c, mesh, ports));
    }
  });

  // Each on a mesh of its own, whose workloads' certificates are in the case's trust domain.
  describe('HTTP cases with a trust domain and aliases of their own (the mesh config)', () => {
    for (const c of cases.http.filter(ownTrustDomain)) {
      test(`${c.name}: trust domain ${c.trustDomain}, aliases ${JSON.stringify(c.trustDomainAliases ?? [])}`, { skip: leftOut(c) }, async (t) => {
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
      const why = leftOut(c);
      test(c.name, { skip: why }, async (t) => {
        await mesh.setPolicies(inputs('tcp', c));
        const want = goldens('tcp', c);
        const seen = { allowed: 0, denied: 0 };
        for (const [from, peer] of [['sleep', peerOf('sleep')], ['other', peerOf('other')]] as const) {
          const expected = decide(want, { destinationIp: '127.0.0.1', destinationPort: 9000, sourceIp: '127.0.0.1', peer, sni: sni(9000) });
          const got = await tcpEcho(ports[from], 'httpbin.foo:9000');
          assert.equal(got, expected ? 'echoed' : 'closed', `${from}: Istio's filters ${expected ? 'allow' : 'deny'} the connection`);
          seen[expected ? 'allowed' : 'denied']++;
        }
        t.diagnostic(`allowed ${seen.allowed}, denied ${seen.denied}`);
      });
    }
  });
}
