// translate/authz.ts beyond Istio's goldens (authz-golden.test.ts): which policies a sidecar takes,
// the order of the filters when actions mix, dry-run annotations, providers that cannot be used,
// and the corners of Istio's semantics Weft keeps on purpose.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthorizationPolicy, AuthorizationPolicySpec } from '../../src/api/index.ts';
import { authzFilters, buildHTTP, buildTCP, policiesFor, type AuthzMesh } from '../../src/control/translate/authz.ts';
import { cidrRange } from '../../src/control/translate/authz-match.ts';

const proxy = { namespace: 'foo', labels: { app: 'httpbin', version: 'v1' } };
const mesh: AuthzMesh = { trustDomain: 'cluster.local' };
let created = 0;
function policy(name: string, spec: AuthorizationPolicySpec, namespace = 'foo', annotations?: Record<string, string>): AuthorizationPolicy {
  return { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name, namespace, ...(annotations ? { annotations } : {}) }, spec, created: ++created };
}
const names = (ps: AuthorizationPolicy[]) => ps.map((p) => `${p.metadata.namespace}/${p.metadata.name}`);
const config = (f: { typed_config: Record<string, unknown> }) => f.typed_config as Record<string, any>;

describe('which policies a sidecar takes', () => {
  test("the root namespace's first, then its own namespace's; selectors a subset of its labels; none with targetRefs", () => {
    const all = [
      policy('b', {}),
      policy('a', { selector: { matchLabels: { app: 'httpbin' } } }),
      policy('other-labels', { selector: { matchLabels: { app: 'productpage' } } }),
      policy('more-labels', { selector: { matchLabels: { app: 'httpbin', version: 'v1', extra: 'x' } } }),
      policy('for-a-gateway', { targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'gw' }] }),
      policy('for-a-service', { targetRef: { kind: 'Service', name: 'httpbin' } }),
      policy('mesh-wide', {}, 'istio-system'),
      policy('elsewhere', {}, 'bar'),
    ];
    assert.deepEqual(names(policiesFor(all, proxy)), ['istio-system/mesh-wide', 'foo/b', 'foo/a']);
    // Oldest first within a namespace, then by name when no creation order is known.
    const undated = all.map(({ created: _c, ...p }) => p);
    assert.deepEqual(names(policiesFor(undated, proxy)), ['istio-system/mesh-wide', 'foo/a', 'foo/b']);
    assert.deepEqual(names(policiesFor(all, proxy, 'mesh-root')), ['foo/b', 'foo/a']);
  });
});

describe('the filters', () => {
  test('CUSTOM first, then AUDIT, DENY and ALLOW, whatever the order of the policies', () => {
    const all = [
      policy('allow', { rules: [{}] }),
      policy('deny', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin/*'] } }] }] }),
      policy('audit', { action: 'AUDIT', rules: [{}] }),
      policy('custom', { action: 'CUSTOM', provider: { name: 'ext' }, rules: [{ to: [{ operation: { paths: ['/ext'] } }] }] }),
    ];
    const withProvider: AuthzMesh = { ...mesh, extensionProviders: [{ name: 'ext', envoyExtAuthzGrpc: { service: 'ext.foo.svc.cluster.local', port: 9000 } }], services: [{ hostname: 'ext.foo.svc.cluster.local', namespace: 'foo' }] };
    const { http, tcp } = authzFilters(all, proxy, withProvider);
    assert.deepEqual(http.map((f) => f.name), ['envoy.filters.http.rbac', 'envoy.filters.http.ext_authz', 'envoy.filters.http.rbac', 'envoy.filters.http.rbac', 'envoy.filters.http.rbac']);
    const actions = http.filter((f) => f.name.endsWith('rbac')).map((f) => config(f).rules?.action ?? config(f).shadow_rules?.action ?? 'ALLOW');
    assert.deepEqual(actions, ['DENY', 'LOG', 'DENY', 'ALLOW']);
    assert.equal(config(http[1]).grpc_service.envoy_grpc.cluster_name, 'outbound|9000||ext.foo.svc.cluster.local');
    // On TCP, the DENY rule's path cannot be matched: the field is dropped, so it denies every connection.
    assert.deepEqual(tcp.map((f) => f.name), ['envoy.filters.network.rbac', 'envoy.filters.network.ext_authz', 'envoy.filters.network.rbac', 'envoy.filters.network.rbac', 'envoy.filters.network.rbac']);
    assert.deepEqual(config(tcp[3]).rules.policies['ns[foo]-policy[deny]-rule[0]'].permissions, [{ and_rules: { rules: [{ any: true }] } }]);
  });

  test('an ALLOW rule with an HTTP-only field is left out of TCP chains: the policy allows less there', () => {
    const p = policy('get-only', { rules: [{ to: [{ operation: { methods: ['GET'] } }] }, { to: [{ operation: { ports: ['5432'] } }] }] });
    const rules = config(buildTCP([p], mesh)[0]).rules;
    assert.deepEqual(Object.keys(rules.policies), ['ns[foo]-policy[get-only]-rule[1]']);
    assert.deepEqual(Object.keys(config(buildHTTP([p], mesh)[0]).rules.policies), ['ns[foo]-policy[get-only]-rule[0]', 'ns[foo]-policy[get-only]-rule[1]']);
  });

  test('istio.io/dry-run takes Go\'s booleans ("1", "t", "True", ...); anything else enforces', () => {
    for (const [value, dryRun] of [['true', true], ['1', true], ['T', true], ['True', true], ['yes', false], ['false', false], ['', false]] as const) {
      const c = config(buildHTTP([policy('p', { rules: [{}] }, 'foo', { 'istio.io/dry-run': value })], mesh)[0]);
      assert.equal('shadow_rules' in c, dryRun, value);
      assert.equal('rules' in c, !dryRun, value);
    }
  });

  test('CUSTOM with a provider that is not there, or not an authorizer, denies what it would have checked', () => {
    const p = policy('c', { action: 'CUSTOM', provider: { name: 'missing' }, rules: [{ to: [{ operation: { paths: ['/x'] } }] }] });
    for (const providers of [[], [{ name: 'missing', zipkin: { service: 'z', port: 9411 } }]]) {
      const http = buildHTTP([p], { ...mesh, extensionProviders: providers });
      assert.deepEqual(http.map((f) => f.name), ['envoy.filters.http.rbac']);
      assert.deepEqual(Object.keys(config(http[0]).rules.policies), ['istio-ext-authz-missing-ns[foo]-policy[c]-rule[0]-deny-due-to-bad-CUSTOM-action']);
      assert.equal(config(http[0]).rules.action, 'DENY');
    }
  });

  test('trust domain aliases: a `when` source.principal is rewritten once per `from` source, as Istio (which shares the condition) does', () => {
    const p = policy('p', {
      rules: [{ from: [{ source: { namespaces: ['a'] } }, { source: { namespaces: ['b'] } }], when: [{ key: 'source.principal', values: ['cluster.local/ns/x/sa/y'] }] }],
    });
    const principals = config(buildHTTP([p], { trustDomain: 'td1', trustDomainAliases: ['cluster.local'] })[0]).rules.policies['ns[foo]-policy[p]-rule[0]'].principals;
    const names = (i: number) => principals[i].and_ids.ids[1].or_ids.ids.map((id: any) => id.authenticated.principal_name.exact);
    const twice = ['spiffe://td1/ns/x/sa/y', 'spiffe://cluster.local/ns/x/sa/y', 'spiffe://td1/ns/x/sa/y', 'spiffe://cluster.local/ns/x/sa/y'];
    assert.deepEqual([names(0), names(1)], [twice, twice]);
  });
});

test('addresses: a bare IP is a /32 or /128; IPv6 in canonical form; ranges kept as written', () => {
  assert.deepEqual(cidrRange('10.1.2.3'), { address_prefix: '10.1.2.3', prefix_len: { value: 32 } });
  assert.deepEqual(cidrRange('10.1.2.3/8'), { address_prefix: '10.1.2.3', prefix_len: { value: 8 } });
  assert.deepEqual(cidrRange('2001:DB8:0:0::1'), { address_prefix: '2001:db8::1', prefix_len: { value: 128 } });
  assert.deepEqual(cidrRange('::/0'), { address_prefix: '::', prefix_len: { value: 0 } });
  assert.deepEqual(cidrRange('::FFFF:1.2.3.4'), { address_prefix: '::ffff:1.2.3.4', prefix_len: { value: 128 } });
  assert.deepEqual(cidrRange('fe80::1%eth0'), { address_prefix: 'fe80::1', prefix_len: { value: 128 } });
  assert.equal(cidrRange('fe80::1%eth0/64'), undefined);
  assert.equal(cidrRange('10.0.0.0/33'), undefined);
  assert.equal(cidrRange('host'), undefined);
});
