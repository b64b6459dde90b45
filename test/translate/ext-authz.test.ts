// CUSTOM AuthorizationPolicy from the mesh snapshot to the sidecar's config: translate reads the
// mesh config's extension providers and the mesh's services (forProxy -> inboundAuthz), and the
// sidecar's conversion (encoded and decoded as on the wire) makes authorization steps of them: the
// RBAC filter that marks, then the authorizer, then DENY/ALLOW; the authorizer's cluster is one the
// sidecar has. Also what the conversion refuses (a NACK naming the field).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MeshConfig } from '../../src/api/meshconfig.ts';
import type { Workload } from '../../src/control/model/model.ts';
import { customProviderWarnings } from '../../src/control/translate/translate.ts';
import { convertListener } from '../../src/proxy/xds-client/convert.ts';
import { meshOf, sidecarSnapshot, workload } from '../snapshot.ts';

const AUTHZ = 'ext-authz.foo.svc.cluster.local';
const httpbin: Workload = workload('httpbin', {
  namespace: 'foo',
  service: 'httpbin',
  labels: { app: 'httpbin' },
  serviceAccount: 'httpbin',
  ports: [
    { name: 'http', port: 8000, inboundPort: 41000, appPort: 41001 },
    { name: 'tcp-echo', port: 9000, inboundPort: 41010, appPort: 41011 },
  ],
});
const extAuthz: Workload = workload('ext-authz', { namespace: 'foo', service: 'ext-authz', ports: [{ name: 'http', port: 8000, inboundPort: 42000, appPort: 42001 }, { name: 'grpc', port: 9000, inboundPort: 42002, appPort: 42003 }] });
const custom = (provider: string, extra: object[] = []) => [
  { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'ext', namespace: 'foo' }, spec: { selector: { matchLabels: { app: 'httpbin' } }, action: 'CUSTOM', provider: { name: provider }, rules: [{ to: [{ operation: { paths: ['/headers'] } }] }] } },
  ...extra,
];
const meshConfig: MeshConfig = {
  extensionProviders: [
    { name: 'http', envoyExtAuthzHttp: { service: AUTHZ, port: 8000, timeout: '2s', failOpen: true, statusOnError: '503', includeRequestHeadersInCheck: ['x-ext-authz'] } },
    { name: 'grpc', envoyExtAuthzGrpc: { service: 'foo/ext-authz.foo.svc.cluster.local', port: 9000 } },
  ],
};
const steps = (provider: string, extra: object[] = [], mc: MeshConfig | null = meshConfig) => {
  const cfg = sidecarSnapshot({ ...meshOf(custom(provider, extra), [httpbin, extAuthz]), ...(mc ? { meshConfig: mc } : {}) }, httpbin);
  return { cfg, http: cfg.listeners.get('inbound|41000')!.authz!, tcp: cfg.listeners.get('inbound|41010')!.tcp?.rbac };
};

test('an HTTP provider: the marking RBAC filter, then the authorizer with the provider\'s settings, then DENY; the authorizer\'s cluster is the sidecar\'s', () => {
  const deny = { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'd', namespace: 'foo' }, spec: { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin'] } }] }] } };
  const { cfg, http, tcp } = steps('http', [deny]);
  assert.deepEqual(http.map((s) => (s.extAuthz ? 'ext_authz' : s.rbac!.shadowRules ? 'marks' : s.rbac!.rules!.action)), ['marks', 'ext_authz', 'DENY']);
  const e = http[1].extAuthz!;
  assert.equal(e.service.kind, 'http');
  assert.equal(e.service.cluster, `outbound|8000||${AUTHZ}`);
  assert.ok(cfg.clusters.has(e.service.cluster), 'the sidecar has the authorizer\'s cluster');
  assert.equal(e.timeoutMs, 2000);
  assert.equal(e.failOpen, true);
  assert.equal(e.statusOnError, 503);
  assert.deepEqual(['x-ext-authz', 'X-Ext-Authz', 'user-agent'].map((h) => e.allowedHeaders!.some((m) => m(h))), [true, true, false]);
  // Only requests the CUSTOM rule matched are checked: the mark the RBAC filter writes.
  assert.equal(e.enabled!({ 'envoy.filters.http.rbac': { istio_ext_authz_shadow_effective_policy_id: 'istio-ext-authz-http-ns[foo]-policy[ext]-rule[0]' } }), true);
  assert.equal(e.enabled!({}), false);
  assert.equal(tcp!.some((s) => s.extAuthz), false, 'an HTTP provider does not apply to TCP chains');
});

test('a gRPC provider: HTTP chains and TCP chains both ask it (600 s unless a timeout is given)', () => {
  const { http, tcp } = steps('grpc');
  const e = http[1].extAuthz!;
  assert.deepEqual(e.service, { kind: 'grpc', cluster: `outbound|9000||${AUTHZ}`, authority: AUTHZ });
  assert.equal(e.timeoutMs, 600_000);
  assert.equal(e.statusOnError, 403);
  assert.deepEqual(tcp!.map((s) => (s.extAuthz ? 'ext_authz' : 'marks')), ['marks', 'ext_authz']);
});

test('no mesh config, or a provider it does not have: the policy denies what it matches, and weft apply says why', () => {
  for (const [provider, mc] of [['http', null], ['nope', meshConfig]] as const) {
    const { http } = steps(provider, [], mc);
    assert.deepEqual(http.map((s) => s.rbac?.rules?.action), ['DENY']);
    assert.match(http[0].rbac!.rules!.policies[0].name, /deny-due-to-bad-CUSTOM-action$/);
  }
  const mesh = { ...meshOf(custom('nope'), [httpbin, extAuthz]), meshConfig };
  const [w] = customProviderWarnings(mesh.authorizationPolicies![0], mesh);
  assert.match(w, /^AuthorizationPolicy foo\/ext: spec\.provider\.name: no extension provider named "nope" in meshConfig\.extensionProviders/);
  assert.deepEqual(customProviderWarnings({ ...mesh.authorizationPolicies![0], spec: { ...mesh.authorizationPolicies![0].spec, provider: { name: 'grpc' } } }, mesh), []);
  // A provider whose service the mesh lacks: named too.
  const lost = { ...mesh, workloads: [httpbin] };
  assert.match(customProviderWarnings({ ...mesh.authorizationPolicies![0], spec: { ...mesh.authorizationPolicies![0].spec, provider: { name: 'http' } } }, lost)[0], /could not find service ext-authz\.foo\.svc\.cluster\.local in the mesh/);
});

test('the sidecar refuses an ext_authz filter it cannot apply, naming the field (a NACK, never a skipped authorizer)', () => {
  const listener = (typed: Record<string, unknown>) => ({
    name: 'L',
    address: { socket_address: { address: '127.0.0.1', port_value: 1 } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              stat_prefix: 'L',
              route_config: { name: 'r' },
              http_filters: [
                { name: 'envoy.filters.http.ext_authz', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz', ...typed } },
                { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
              ],
            },
          },
        ],
      },
    ],
  });
  const grpc = { envoy_grpc: { cluster_name: 'c' } };
  assert.throws(() => convertListener(listener({ grpc_service: { google_grpc: {} } })), /http_filters\[0\]\.typed_config\.grpc_service\.google_grpc: unknown or unsupported field/);
  assert.throws(() => convertListener(listener({ grpc_service: grpc, clear_route_cache: true })), /typed_config\.clear_route_cache: unknown or unsupported field/);
  assert.throws(() => convertListener(listener({ grpc_service: grpc, with_request_body: {} })), /with_request_body\.max_request_bytes: must be more than 0/);
  assert.throws(() => convertListener(listener({})), /one of grpc_service, http_service is required/);
  const ok = convertListener(listener({ grpc_service: grpc, status_on_error: { code: 'ServiceUnavailable' } }));
  assert.equal(ok.authz![0].extAuthz!.statusOnError, 503);
});
