// AuthorizationPolicies served (translate.ts forProxy): the builder's filters on every inbound
// listener of the proxies a policy selects, as Istio places them (HTTP RBAC first in each HCM, on
// mTLS and plaintext chains alike; network RBAC before tcp_proxy on TCP chains, detect's TCP chain
// included), nothing on proxies it does not select; and a change of policy through the push step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { translate, type XdsResources } from '../../src/control/translate/translate.ts';
import { PushCache } from '../../src/control/push/cache.ts';
import { convertListener } from '../../src/proxy/xds-client/convert.ts';
import { meshOf, provenServer, workload } from '../snapshot.ts';

const ap = (name: string, spec: object, namespace = 'default') => ({ apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name, namespace }, spec });
const server = provenServer();
const other = workload('other', { service: 'other', serviceAccount: 'other-sa', labels: { app: 'other' }, port: 43000 });

/** Each chain of a listener as its filter names, HCM's http_filters in brackets. */
function chains(x: XdsResources, inboundPort: number): string[] {
  const l = x.listeners[`inbound|${inboundPort}`] as any;
  return l.filter_chains.map((c: any) =>
    c.filters.map((f: any) => (f.typed_config.http_filters ? `hcm[${f.typed_config.http_filters.map((h: any) => h.name.replace('envoy.filters.http.', '')).join(',')}]` : f.name.replace('envoy.filters.network.', ''))).join(' '),
  );
}

const policies = [ap('deny-admin', { selector: { matchLabels: { app: 'server' } }, action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin'] } }] }] }), ap('allow-get', { selector: { matchLabels: { app: 'server' } }, rules: [{ to: [{ operation: { methods: ['GET'] } }] }] })];

test('every inbound chain of a selected proxy gets the filters, as Istio orders them (its metadata exchange first); the sidecar converts them', () => {
  const x = translate(meshOf(policies, [server, other]), server);
  // PERMISSIVE by default: the mTLS chain(s), TLS passthrough (TCP and detected ports), then the plaintext ones.
  assert.deepEqual(chains(x, 41000), ['hcm[istio.metadata_exchange,rbac,rbac,router]', 'hcm[istio.metadata_exchange,rbac,rbac,router]']);
  // The mTLS TCP chains: Istio's TCP metadata exchange before the RBAC filters.
  assert.deepEqual(chains(x, 41010), ['istio.metadata_exchange rbac rbac tcp_proxy', 'rbac rbac tcp_proxy', 'rbac rbac tcp_proxy']);
  assert.deepEqual(chains(x, 41020), ['hcm[istio.metadata_exchange,rbac,rbac,router]', 'istio.metadata_exchange rbac rbac tcp_proxy', 'rbac rbac tcp_proxy', 'hcm[istio.metadata_exchange,rbac,rbac,router]', 'rbac rbac tcp_proxy']);
  const http = (x.listeners['inbound|41000'] as any).filter_chains[0].filters[0].typed_config.http_filters;
  assert.deepEqual(http.slice(1, 3).map((f: any) => [f.typed_config.rules.action ?? 'ALLOW', Object.keys(f.typed_config.rules.policies)]), [
    ['DENY', ['ns[default]-policy[deny-admin]-rule[0]']],
    ['ALLOW', ['ns[default]-policy[allow-get]-rule[0]']],
  ]);
  for (const port of [41000, 41010, 41020]) {
    const c = convertListener(x.listeners[`inbound|${port}`]);
    const filters = c.authz ?? c.tcp?.rbac ?? [];
    assert.equal(filters.length, 2, `inbound|${port}`);
  }
  // The DENY rule's HTTP-only field is dropped on TCP (it denies every connection); the ALLOW rule with one is left out (allows none).
  const tcp = (x.listeners['inbound|41010'] as any).filter_chains.at(-1).filters;
  assert.deepEqual(tcp[0].typed_config.rules.policies['ns[default]-policy[deny-admin]-rule[0]'].permissions, [{ and_rules: { rules: [{ any: true }] } }]);
  assert.equal(tcp[1].typed_config.rules.policies, undefined);
});

test('a proxy no policy selects gets no filter; a STRICT port carries them on its mTLS chains only', () => {
  assert.deepEqual(chains(translate(meshOf(policies, [server, other]), other), 43000), ['hcm[istio.metadata_exchange,router]', 'hcm[istio.metadata_exchange,router]']);
  const strict = { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: 'default' }, spec: { mtls: { mode: 'STRICT' } } };
  assert.deepEqual(chains(translate(meshOf([...policies, strict], [server, other]), server), 41000), ['hcm[istio.metadata_exchange,rbac,rbac,router]']);
});

test('through the push step, a policy change reaches the proxy it selects', () => {
  const cache = new PushCache();
  const before = cache.resources(meshOf([], [server, other]), server);
  assert.deepEqual(chains(before, 41000), ['hcm[istio.metadata_exchange,router]', 'hcm[istio.metadata_exchange,router]']);
  const after = cache.resources({ ...meshOf([ap('deny-all', { action: 'DENY', rules: [{}] })], [server, other]), revision: 2 }, server);
  assert.deepEqual(chains(after, 41000), ['hcm[istio.metadata_exchange,rbac,router]', 'hcm[istio.metadata_exchange,rbac,router]']);
});
