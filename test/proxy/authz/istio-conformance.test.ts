// The RBAC filters Istio itself generates (pilot's builder goldens, ../shared/conformance/istio/
// authz-rbac): every one must compile, and a handful are run against requests a user would send,
// checking the decision Istio's AuthorizationPolicy docs promise. The proxy is httpbin in namespace
// foo. The data lives outside the project; without it the suite is skipped.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { type CompiledRbacFilter, compileRbacTypedConfig } from '../../../src/proxy/authz/rbac-config.ts';
import { evaluateRbac, rbacDynamicMetadata, type RbacDecision } from '../../../src/proxy/authz/rbac-engine.ts';
import type { RbacRequest } from '../../../src/proxy/authz/request.ts';
import { type Req, req } from './helpers.ts';

const ROOT = new URL('../../../../shared/conformance/istio/authz-rbac/', import.meta.url);

interface Golden {
  name: string;
  typedConfig: Record<string, any>;
}

function load(file: string): Golden {
  return parse(readFileSync(new URL(file, ROOT), 'utf8')) as Golden;
}

function rbac(file: string): CompiledRbacFilter {
  const g = load(file);
  return compileRbacTypedConfig(file, g.typedConfig);
}

/** A chain of RBAC filters as Istio orders them (DENY before ALLOW): the first denial stops the request. */
function chain(filters: CompiledRbacFilter[], r: RbacRequest): RbacDecision {
  let last: RbacDecision = { allowed: true };
  for (const f of filters) {
    last = evaluateRbac(f, r);
    if (!last.allowed) return last;
  }
  return last;
}

const spiffe = (ns: string, sa: string, td = 'cluster.local') => `spiffe://${td}/ns/${ns}/sa/${sa}`;

if (!existsSync(fileURLToPath(ROOT))) {
  test('Istio RBAC conformance', (t) => {
    t.skip(`conformance data absent: ${fileURLToPath(ROOT)} not found (it is present in CI)`);
  });
} else {
  describe('every RBAC filter Istio generates compiles', () => {
    for (const dir of ['http', 'tcp']) {
      test(`${dir}/*-out*.yaml`, () => {
        const files = readdirSync(new URL(`${dir}/`, ROOT)).filter((f) => /-out\d*\.yaml$/.test(f));
        let compiled = 0;
        let extAuthz = 0;
        for (const f of files) {
          const g = load(`${dir}/${f}`);
          // ext_authz filters (Istio's CUSTOM action) are another filter's business: counted, not compiled.
          if (g.name === 'envoy.filters.http.ext_authz' || g.name === 'envoy.filters.network.ext_authz') {
            extAuthz++;
            continue;
          }
          assert.match(g.name, /^envoy\.filters\.(http|network)\.rbac$/, f);
          const c = compileRbacTypedConfig(`${dir}/${f}`, g.typedConfig);
          assert.equal(c.kind, dir === 'http' ? 'http' : 'network', f);
          compiled++;
        }
        // The goldens as of istio 86c9f01f: a change in their number should be looked at, not ignored.
        assert.deepEqual({ compiled, extAuthz }, dir === 'http' ? { compiled: 51, extAuthz: 6 } : { compiled: 6, extAuthz: 1 });
      });
    }
  });

  describe('decisions, as Istio documents them', () => {
    test('allow-path: "notPaths: *" excludes every request, whatever paths allow', () => {
      const f = rbac('http/allow-path-out.yaml');
      for (const uri of ['/exact', '/prefix/a', '/x/suffix', '/path/template/a']) assert.deepEqual(evaluateRbac(f, req({ uri })), { allowed: false }, uri);
    });

    test('allow-path, its paths alone: exact, "/prefix/*", "*/suffix", {*} and {**} templates', () => {
      // The same golden with notPaths and the "*" path left out, to see what each path form allows.
      const g = load('http/allow-path-out.yaml');
      const policy = g.typedConfig.rules.policies['ns[foo]-policy[httpbin-1]-rule[0]'];
      const and = policy.permissions[0].andRules.rules;
      const paths = and[0].orRules.rules.filter((r: any) => r.urlPath?.path?.safeRegex === undefined);
      policy.permissions[0].andRules.rules = [{ orRules: { rules: paths } }];
      const f = compileRbacTypedConfig('allow-path', g.typedConfig);
      const allowed = (uri: string) => evaluateRbac(f, req({ uri })).allowed;
      assert.equal(allowed('/exact'), true);
      assert.equal(allowed('/exact?page=2'), true);
      assert.equal(allowed('/exact/more'), false);
      assert.equal(allowed('/prefix/a/b'), true);
      assert.equal(allowed('/prefix'), false);
      assert.equal(allowed('/any/thing/suffix'), true);
      assert.equal(allowed('/path/template/a'), true);
      assert.equal(allowed('/path/template/a/b'), false);
      assert.equal(allowed('/x/y/path/template'), true);
      assert.equal(allowed('/private'), false);
      assert.equal(evaluateRbac(f, req({ uri: '/exact' })).matchedPolicy, 'ns[foo]-policy[httpbin-1]-rule[0]');
    });

    test('deny-and-allow: DENY is checked first and wins; then only ALLOW policies let in', () => {
      const filters = [rbac('http/deny-and-allow-out1.yaml'), rbac('http/deny-and-allow-out2.yaml')];
      const as = (peer: string | undefined) => chain(filters, req({ peer }));
      assert.deepEqual(as('spiffe://deny'), { allowed: false, matchedPolicy: 'ns[foo]-policy[httpbin-deny]-rule[0]' });
      assert.deepEqual(as('spiffe://allow'), { allowed: true, matchedPolicy: 'ns[foo]-policy[httpbin-allow]-rule[0]' });
      assert.deepEqual(as(spiffe('foo', 'sleep')), { allowed: false });
      assert.deepEqual(as(undefined), { allowed: false }); // plaintext: no principal at all
    });

    test('empty and nil rules: allow-all, deny-all, allow-nothing', () => {
      const r = req({ uri: '/anything', peer: spiffe('foo', 'sleep') });
      assert.equal(evaluateRbac(rbac('http/allow-empty-rule-out.yaml'), r).allowed, true);
      assert.deepEqual(evaluateRbac(rbac('http/deny-empty-rule-out.yaml'), r), { allowed: false, matchedPolicy: 'ns[foo]-policy[deny-all]-rule[0]' });
      assert.equal(evaluateRbac(rbac('http/allow-nil-rule-out.yaml'), r).allowed, false);
    });

    test('allow-full-rule: service accounts as SPIFFE ids in any trust domain, minus notServiceAccounts', () => {
      const f = rbac('http/allow-full-rule-out.yaml');
      const as = (peer: string) => evaluateRbac(f, req({ peer }));
      assert.deepEqual(as(spiffe('my-ns', 'my-sa')), { allowed: true, matchedPolicy: 'ns[foo]-policy[httpbin-1]-rule[0]' });
      assert.equal(as(spiffe('foo', 'sa-only', 'other-td')).allowed, true); // "sa-only": the policy's namespace
      assert.equal(as(spiffe('my-ns', 'my-sa-not')).allowed, false);
      assert.equal(as(spiffe('bar', 'sa-only')).allowed, false);
    });

    test('trust-domain aliases: a principal is accepted under the mesh trust domain and each alias', () => {
      // trustDomain td1, alias cluster.local (cases.derived.json).
      const f = rbac('http/simple-policy-td-aliases-out.yaml');
      const call = (peer: string, method: string) => evaluateRbac(f, req({ peer, method }));
      const p = 'rule[0]/sa/from[0]-principal[0]';
      assert.equal(call(`spiffe://td1/ns/${p}`, 'rule[0]-to[0]-method[0]').matchedPolicy, 'ns[foo]-policy[httpbin]-rule[0]');
      assert.equal(call(`spiffe://cluster.local/ns/${p}`, 'rule[0]-to[0]-method[0]').allowed, true);
      assert.equal(call(`spiffe://other-td/ns/${p}`, 'rule[0]-to[0]-method[0]').allowed, false);
      assert.equal(call(`spiffe://td1/ns/${p}`, 'GET').allowed, false); // right peer, method not allowed
      // from[1] needs its principal AND its namespace: the principal's own namespace is rule[0].
      assert.equal(call('spiffe://td1/ns/rule[0]/sa/from[1]-principal[0]', 'rule[0]-to[0]-method[0]').allowed, false);
      assert.equal(call('spiffe://td1/ns/rule[1]/sa/from[0]-principal[0]', 'rule[1]-to[0]-method[0]').matchedPolicy, 'ns[foo]-policy[httpbin]-rule[1]');
    });

    test('source.principal with trust-domain aliases and wildcards', () => {
      // trustDomain new-td, aliases old-td and some-trustdomain; namespaces ["istio-system"].
      const f = rbac('http/td-aliases-source-principal-out.yaml');
      assert.equal(evaluateRbac(f, req({ peer: spiffe('istio-system', 'ingress', 'old-td') })).allowed, true);
      assert.equal(evaluateRbac(f, req({ peer: spiffe('foo', 'all-td', 'old-td') })).allowed, false); // not in istio-system
      assert.equal(evaluateRbac(f, req()).allowed, false);
    });

    test('dry-run: the dry-run policy is reported in shadow, the enforced one decides', () => {
      const f = rbac('http/dry-run-mix-out.yaml');
      assert.deepEqual(evaluateRbac(f, req({ uri: '/allow' })), { allowed: false, shadow: { effect: 'allowed', policy: 'ns[foo]-policy[httpbin-1]-rule[0]' } });
      assert.deepEqual(evaluateRbac(f, req({ uri: '/another' })), { allowed: true, matchedPolicy: 'ns[foo]-policy[httpbin-2]-rule[0]', shadow: { effect: 'denied' } });
      assert.equal(f.shadowRulesStatPrefix, 'istio_dry_run_allow_');
    });

    test('AUDIT: LOG action, always allowed, logged when matched', () => {
      assert.deepEqual(evaluateRbac(rbac('http/audit-full-rule-out.yaml'), req()), { allowed: true, matchedPolicy: 'ns[foo]-policy[audit-all]-rule[0]', log: true });
    });

    test("CUSTOM: shadow DENY rules that mark the requests ext_authz must check", () => {
      const f = rbac('http/custom-grpc-provider-out1.yaml');
      const d = evaluateRbac(f, req({ uri: '/httpbin1' }));
      assert.equal(d.allowed, true);
      assert.deepEqual(rbacDynamicMetadata(f, d), {
        istio_ext_authz_shadow_effective_policy_id: 'istio-ext-authz-default-ns[foo]-policy[httpbin-1]-rule[0]',
        istio_ext_authz_shadow_engine_result: 'denied',
      });
      assert.deepEqual(rbacDynamicMetadata(f, evaluateRbac(f, req({ uri: '/other' }))), { istio_ext_authz_shadow_engine_result: 'allowed' });
    });

    test('tcp: only the rules without HTTP fields are kept; a connection is judged by port and peer', () => {
      const f = rbac('tcp/allow-both-http-tcp-out.yaml');
      const conn = (port: number, peer?: string): Req => ({ headers: [], destinationPort: port, peer });
      assert.deepEqual(evaluateRbac(f, req(conn(80, spiffe('ns-1', 'a')))), { allowed: true, matchedPolicy: 'ns[foo]-policy[httpbin-deny]-rule[3]' });
      assert.equal(evaluateRbac(f, req(conn(8080, spiffe('ns-1', 'a')))).allowed, false); // rule[1] also needs a method
      assert.equal(evaluateRbac(f, req(conn(80, spiffe('ns-2', 'a')))).allowed, false);
      assert.equal(evaluateRbac(rbac('tcp/allow-only-http-out.yaml'), req(conn(80, spiffe('ns-1', 'a')))).allowed, false); // rules: {}
      const dry = rbac('tcp/dry-run-mix-out.yaml');
      assert.deepEqual(evaluateRbac(dry, req(conn(80))), { allowed: false, shadow: { effect: 'allowed', policy: 'ns[foo]-policy[httpbin-1]-rule[0]' } });
    });
  });
}
