// The inbound authorization layer (src/proxy/http/authz.ts), without sockets: the request it builds
// for RBAC (what Envoy's RBAC filter would read), its decision over several filters in order, and
// what it publishes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authorize, rbacRequestOf } from '../../../src/proxy/http/authz.ts';
import { compileHttpRbac } from '../../../src/proxy/authz/index.ts';
import type { Downstream } from '../../../src/proxy/http/types.ts';
import { Telemetry, type AuthzEvent } from '../../../src/proxy/telemetry/events.ts';
import type { ListenerConfig } from '../../../src/proxy/xds-client/convert.ts';
import type { ProxyError } from '../../../src/proxy/errors.ts';
import { TYPE } from '../../../src/xds/types.ts';

function ds(o: { path?: string; query?: string; headers?: string[]; peer?: string; sni?: string; local?: number; remote?: string; md?: Record<string, Record<string, unknown>> } = {}): Downstream {
  return {
    head: { method: 'GET', authority: 'httpbin.foo:8000', path: o.path ?? '/get', query: o.query ?? '', headers: o.headers ?? [], hasBody: false, protocol: 'HTTP/1.1' },
    remoteAddress: () => o.remote ?? '::ffff:10.1.2.3',
    sourcePrincipal: () => o.peer,
    localAddress: () => ({ address: '127.0.0.1', port: o.local ?? 15006 }),
    requestedServerName: () => o.sni,
    ...(o.md ? { dynamicMetadata: o.md } : {}),
  } as unknown as Downstream;
}

test('the request as RBAC reads it: pseudo-headers, the path with its query, the service port, the peer, SNI, an IPv4 client unmapped, dynamic metadata', () => {
  const md = { 'envoy.filters.http.jwt_authn': { payload: { iss: 'me' } } };
  const r = rbacRequestOf(ds({ query: 'a=1', headers: ['x-a', '1'], peer: 'spiffe://cluster.local/ns/foo/sa/sleep', sni: 'outbound_.8000_._.httpbin.foo.svc.cluster.local', md }), { telemetry: new Telemetry(), destinationPort: (p) => (p === 15006 ? 8000 : p) });
  assert.deepEqual(r, {
    headers: [':method', 'GET', ':authority', 'httpbin.foo:8000', ':path', '/get?a=1', 'x-a', '1'],
    path: '/get?a=1',
    destinationIp: '127.0.0.1',
    destinationPort: 8000,
    sourceIp: '10.1.2.3',
    peer: 'spiffe://cluster.local/ns/foo/sa/sleep',
    sni: 'outbound_.8000_._.httpbin.foo.svc.cluster.local',
    metadata: md,
  });
  // Plaintext: no peer, no SNI; no port mapping known: the local port.
  const plain = rbacRequestOf(ds(), { telemetry: new Telemetry() });
  assert.equal(plain.peer, undefined);
  assert.equal(plain.sni, undefined);
  assert.equal(plain.destinationPort, 15006);
});

test('filters run in order, the first denial answers and names its policy and filter; the decision is published', () => {
  const rbac = (action: string, policies: Record<string, unknown>, extra: object = {}) => compileHttpRbac('t', { '@type': TYPE.rbacHttp, rules: { action, policies }, ...extra });
  const any = { permissions: [{ any: true }], principals: [{ any: true }] };
  const adminOnly = { permissions: [{ url_path: { path: { prefix: '/admin' } } }], principals: [{ any: true }] };
  const l = {
    name: 'inbound|15006',
    authz: [
      { name: 'deny', rbac: rbac('DENY', { 'ns[foo]-policy[deny-admin]-rule[0]': adminOnly }) },
      { name: 'allow', rbac: rbac('ALLOW', { 'ns[foo]-policy[all]-rule[0]': any }, { shadow_rules: { action: 'DENY', policies: { 'ns[foo]-policy[dry]-rule[0]': any } }, shadow_rules_stat_prefix: 'istio_dry_run_allow_' }) },
    ],
  } as unknown as ListenerConfig;
  const telemetry = new Telemetry();
  const events: AuthzEvent[] = [];
  telemetry.authz.subscribe((e) => events.push(e));
  assert.equal(authorize({ telemetry }, l, ds({ path: '/get' })), undefined);
  const denied = authorize({ telemetry }, l, ds({ path: '/admin/x', peer: 'spiffe://cluster.local/ns/foo/sa/sleep' })) as ProxyError;
  assert.equal(denied.code, 'rbac_denied');
  assert.equal(denied.status, 403);
  assert.equal(denied.grpcStatus, 7);
  assert.equal(denied.body, 'RBAC: access denied');
  assert.deepEqual(denied.headers, ['x-weft-authz-policy', 'ns[foo]-policy[deny-admin]-rule[0]']);
  assert.match(denied.message, /policy ns\[foo\]-policy\[deny-admin\]-rule\[0\] matches \(filter deny of listener inbound\|15006\)/);
  assert.deepEqual(events, [
    { listener: 'inbound|15006', protocol: 'http', effect: 'allowed', policy: 'ns[foo]-policy[all]-rule[0]', shadow: [{ effect: 'denied', policy: 'ns[foo]-policy[dry]-rule[0]' }] },
    { listener: 'inbound|15006', protocol: 'http', effect: 'denied', policy: 'ns[foo]-policy[deny-admin]-rule[0]', filter: 'deny', source: 'spiffe://cluster.local/ns/foo/sa/sleep' },
  ]);
  // A listener without RBAC filters: nothing to decide, nothing published.
  assert.equal(authorize({ telemetry }, { name: 'x' } as ListenerConfig, ds()), undefined);
  assert.equal(events.length, 2);
});

test('found by review: an upgrade request shows RBAC its Upgrade and Connection; remote.ip is the last X-Forwarded-For address (else the peer)', () => {
  const up = ds();
  (up.head as { upgrade?: string }).upgrade = 'websocket';
  const r = rbacRequestOf(up, { telemetry: new Telemetry() });
  assert.deepEqual(r.headers!.slice(6, 10), ['upgrade', 'websocket', 'connection', 'upgrade']);
  const viaProxy = rbacRequestOf(ds({ headers: ['x-forwarded-for', '203.0.113.7, 10.9.9.9'] }), { telemetry: new Telemetry() });
  assert.equal(viaProxy.remoteIp, '10.9.9.9');
  assert.equal(viaProxy.sourceIp, '10.1.2.3', 'source.ip stays the peer');
  assert.equal(rbacRequestOf(ds({ headers: ['x-forwarded-for', 'not-an-ip'] }), { telemetry: new Telemetry() }).remoteIp, '10.1.2.3');
  assert.equal(rbacRequestOf(ds(), { telemetry: new Telemetry() }).remoteIp, undefined, 'no X-Forwarded-For: the engine takes the peer');
});
