// CUSTOM AuthorizationPolicy through real sidecars, as istio.io's "External Authorization" task
// runs it: the ext-authz sample (an HTTP and a gRPC authorizer, test/fixtures/ext-authz-servers.ts)
// is a workload of the mesh (ext-authz.foo, behind its own sidecar, reached over mTLS), named in
// the mesh config (ConfigMap istio-system/istio) as extension providers; httpbin (foo) has a
// CUSTOM policy for /headers; sleep (foo) calls it through its sidecar.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { request } from 'undici';
import { AuthzMesh, call, tcpEcho } from '../fixtures/authz-mesh.ts';
import { type Authorizer, DENIED_BODY, grpcAuthorizer, httpAuthorizer } from '../fixtures/ext-authz-servers.ts';
import { freePort } from '../../src/util/net.ts';
import { waitFor } from '../helpers.ts';

const mesh = new AuthzMesh();
let sleep = 0;
let other = 0;
let httpAuthz: Authorizer;
let grpcAuthz: Authorizer;
let closedPort = 0;
let httpbinAdmin = '';
const HOST = 'httpbin.foo:8000';
const AUTHZ = 'ext-authz.foo.svc.cluster.local';

const provider = (name: string, kind: 'envoyExtAuthzHttp' | 'envoyExtAuthzGrpc', c: Record<string, unknown>) => ({ name, [kind]: c });
const PROVIDERS = [
  provider('sample-ext-authz-http', 'envoyExtAuthzHttp', { service: AUTHZ, port: 8000, includeRequestHeadersInCheck: ['x-ext-authz'], headersToUpstreamOnAllow: ['x-ext-authz-check-result'], headersToDownstreamOnDeny: ['x-ext-authz-check-result'] }),
  provider('sample-ext-authz-grpc', 'envoyExtAuthzGrpc', { service: AUTHZ, port: 9000 }),
  provider('down-closed', 'envoyExtAuthzHttp', { service: 'down-authz.example', port: 80 }),
  provider('down-open', 'envoyExtAuthzHttp', { service: 'down-authz.example', port: 80, failOpen: true }),
  provider('slow', 'envoyExtAuthzHttp', { service: AUTHZ, port: 8000, timeout: '0.5s', statusOnError: '503', includeRequestHeadersInCheck: ['x-ext-authz'] }),
  provider('slow-default', 'envoyExtAuthzHttp', { service: AUTHZ, port: 8000, includeRequestHeadersInCheck: ['x-ext-authz'] }),
  provider('garbage', 'envoyExtAuthzGrpc', { service: 'garbage-authz.foo.svc.cluster.local', port: 9000, statusOnError: '502' }),
  provider('body-strict', 'envoyExtAuthzHttp', { service: AUTHZ, port: 8000, includeRequestHeadersInCheck: ['x-ext-authz'], includeRequestBodyInCheck: { maxRequestBytes: 16 } }),
  provider('body-partial', 'envoyExtAuthzGrpc', { service: AUTHZ, port: 9000, includeRequestBodyInCheck: { maxRequestBytes: 16, allowPartialMessage: true } }),
];

const custom = (name: string, providerName: string, paths = ['/headers']) => ({
  metadata: { name, namespace: 'foo' },
  spec: { selector: { matchLabels: { app: 'httpbin' } }, action: 'CUSTOM', provider: { name: providerName }, rules: [{ to: [{ operation: { paths } }] }] },
});

const get = (path: string, headers: Record<string, string> = {}) => call(sleep, HOST, path, { headers });

before(async () => {
  await mesh.start('ext-authz');
  // httpbin's /headers: the request headers it got, as JSON.
  const app = await mesh.httpApp('httpbin', (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => res.end(JSON.stringify({ path: req.url, headers: req.headers, body })));
  });
  const echo = await mesh.echoApp();
  httpAuthz = await httpAuthorizer();
  grpcAuthz = await grpcAuthorizer();
  await mesh.workload({ name: 'ext-authz', namespace: 'foo', sa: 'ext-authz', service: 'ext-authz', labels: { app: 'ext-authz' }, ports: [['http', 8000, httpAuthz.port], ['grpc', 9000, grpcAuthz.port]] });
  httpbinAdmin = (await mesh.workload({ name: 'httpbin-v1', namespace: 'foo', sa: 'httpbin', service: 'httpbin', labels: { app: 'httpbin', version: 'v1' }, ports: [['http', 8000, app], ['tcp-echo', 9001, echo]] })).proc.admin;
  // An authorizer whose answers are not Check answers: a gRPC OK with no message at all.
  await mesh.workload({ name: 'garbage-authz', namespace: 'foo', sa: 'garbage', service: 'garbage-authz', ports: [['grpc', 9000, await mesh.grpcApp()]] });
  sleep = (await mesh.workload({ name: 'sleep', namespace: 'foo', sa: 'sleep', outbound: true })).outbound;
  other = (await mesh.workload({ name: 'other', namespace: 'bar', sa: 'other', outbound: true })).outbound;
  // An authorizer that is down: a service of the mesh whose one endpoint refuses connections.
  closedPort = await freePort();
  await mesh.apply([
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'down-authz', namespace: 'foo' },
      spec: { hosts: ['down-authz.example'], location: 'MESH_INTERNAL', resolution: 'STATIC', ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: closedPort }], endpoints: [{ address: '127.0.0.1' }] },
    },
  ]);
  await mesh.setMeshConfig({ extensionProviders: PROVIDERS });
});
after(() => {
  httpAuthz?.close();
  grpcAuthz?.close();
  return mesh.close();
});

test('HTTP provider (the task\'s sample-ext-authz-http): x-ext-authz: allow passes with the authorizer\'s header for the app; without it 403 with the authorizer\'s body; other paths are not checked', async () => {
  await mesh.setPolicies([custom('ext-authz', 'sample-ext-authz-http')]);
  const before = httpAuthz.seen.length;
  const denied = await get('/headers', { 'x-ext-authz': 'deny' });
  assert.equal(denied.status, 403);
  assert.equal(denied.body, DENIED_BODY);
  const allowed = await get('/headers', { 'x-ext-authz': 'allow' });
  assert.equal(allowed.status, 200, allowed.body);
  const got = JSON.parse(allowed.body);
  assert.equal(got.headers['x-ext-authz-check-result'], 'allowed', 'headersToUpstreamOnAllow: the authorizer\'s header reaches the app');
  assert.equal(got.headers['x-not-allowed'], undefined, 'headers not in headersToUpstreamOnAllow do not');
  assert.equal(httpAuthz.seen.length, before + 2);
  // The check: the client's method and path, the included header, not the others.
  const check = httpAuthz.seen.at(-1)!;
  assert.equal(check.method, 'GET');
  assert.equal(check.path, '/headers');
  assert.equal(check.headers['x-ext-authz'], 'allow');
  assert.equal(check.headers.host, HOST);
  assert.equal(check.headers['user-agent'], undefined, 'a header not in includeRequestHeadersInCheck is not sent');
  // Outside the policy's paths, no check.
  assert.equal((await get('/ip')).status, 200);
  assert.equal(httpAuthz.seen.length, before + 2);
});

const authzStats = async () => ((await (await request(`${httpbinAdmin}/stats`)).body.json()) as { authz: { denied: number; shadowDenied: number; deniedBy: Record<string, number> } }).authz;

test('a denial names its cause: headersToDownstreamOnDeny reach the client, the sidecar says ext_authz, and counts it as an authorization denial (not as a dry run)', async () => {
  await mesh.setPolicies([custom('ext-authz', 'sample-ext-authz-http')]);
  const before = await authzStats();
  const r = await request(`http://127.0.0.1:${sleep}/headers`, { headers: { host: HOST } });
  assert.equal(r.statusCode, 403);
  assert.equal(await r.body.text(), DENIED_BODY);
  assert.equal(r.headers['x-ext-authz-check-result'], 'denied');
  assert.equal(r.headers['x-weft-authz-policy'], 'ext_authz');
  const after = await authzStats();
  assert.equal(after.deniedBy.ext_authz - (before.deniedBy.ext_authz ?? 0), 1);
  assert.equal(after.denied - before.denied, 1);
  assert.equal(after.shadowDenied, before.shadowDenied, 'the CUSTOM marks are not dry-run results');
});

test('gRPC provider (sample-ext-authz-grpc): the Check call decides, with the request\'s attributes; its ok_response headers reach the app', async () => {
  await mesh.setPolicies([custom('ext-authz', 'sample-ext-authz-grpc')]);
  const denied = await get('/headers');
  assert.equal(denied.status, 403);
  assert.equal(denied.body, DENIED_BODY);
  const r = await request(`http://127.0.0.1:${sleep}/headers?x=1`, { headers: { host: HOST, 'x-ext-authz': 'allow', 'x-appended': 'mine', 'x-keep': 'mine', 'x-over': 'mine', 'x-remove-me': 'mine', 'x-ext-authz-check-result': 'forged' } });
  assert.equal(r.statusCode, 200);
  assert.equal(r.headers['x-ext-authz-to-client'], 'hello', 'response_headers_to_add reach the client');
  const h = JSON.parse(await r.body.text()).headers;
  assert.equal(h['x-ext-authz-check-result'], 'allowed', 'a header set replaces the client\'s');
  assert.equal(h['x-appended'], 'mine, by-authorizer', 'append: true appends');
  assert.equal(h['x-keep'], 'mine', 'ADD_IF_ABSENT leaves a header the client sent');
  assert.equal(h['x-added'], 'by-authorizer', 'and adds one it did not');
  assert.equal(h['x-over'], 'by-authorizer', 'OVERWRITE_IF_EXISTS replaces a header the client sent');
  assert.equal(h['x-over-absent'], undefined, 'and adds none');
  assert.equal(h['x-remove-me'], undefined, 'headers_to_remove');
  const a = grpcAuthz.seen.at(-1)!.attributes!;
  assert.equal(a.request.http.method, 'GET');
  assert.equal(a.request.http.path, '/headers?x=1');
  assert.equal(a.request.http.host, HOST);
  assert.equal(a.request.http.headers['x-ext-authz'], 'allow');
  assert.equal(a.source.principal, 'spiffe://cluster.local/ns/foo/sa/sleep', 'the source principal: the caller\'s SPIFFE id from mTLS');
  assert.equal(a.destination.principal, 'spiffe://cluster.local/ns/foo/sa/httpbin');
  assert.equal(a.destination.address.socket_address.port_value, 8000);
});

test('gRPC provider on a TCP port: the connection is checked once (allowed for sleep, closed for other)', async () => {
  await mesh.setPolicies([
    { metadata: { name: 'tcp', namespace: 'foo' }, spec: { selector: { matchLabels: { app: 'httpbin' } }, action: 'CUSTOM', provider: { name: 'sample-ext-authz-grpc' }, rules: [{ to: [{ operation: { ports: ['9001'] } }] }] } },
  ]);
  assert.equal(await tcpEcho(sleep, 'httpbin.foo:9001'), 'echoed');
  assert.equal(await tcpEcho(other, 'httpbin.foo:9001'), 'closed');
  assert.equal(grpcAuthz.seen.at(-1)!.attributes!.source.principal, 'spiffe://cluster.local/ns/bar/sa/other');
});

test('the authorizer down: failOpen false denies (403, statusOnError\'s default), failOpen true lets the request through', async () => {
  await mesh.setPolicies([custom('closed', 'down-closed')]);
  const closed = await get('/headers', { 'x-ext-authz': 'allow' });
  assert.equal(closed.status, 403);
  assert.equal(closed.body, '');
  await mesh.setPolicies([custom('open', 'down-open')]);
  assert.equal((await get('/headers')).status, 200);
});

test('an authorizer whose answer is not a CheckResponse: the check failed (statusOnError 502), the sidecar goes on serving', async () => {
  await mesh.setPolicies([custom('garbage', 'garbage')]);
  const r = await get('/headers', { 'x-ext-authz': 'allow' });
  assert.equal(r.status, 502);
  assert.equal(r.body, '');
  assert.equal((await get('/ip')).status, 200);
});

test('timeout: an authorizer that does not answer within the provider\'s timeout gets statusOnError (503), and its check is cancelled', async () => {
  await mesh.setPolicies([custom('slow', 'slow')]);
  const t0 = performance.now();
  const r = await get('/headers', { 'x-ext-authz': 'slow' });
  const took = performance.now() - t0;
  assert.equal(r.status, 503);
  assert.ok(took >= 450 && took < 5000, `answered after ${took} ms (timeout 0.5s)`);
  const check = httpAuthz.seen.at(-1)!;
  await waitFor('the timed-out check to be cancelled', async () => check.cancelled === true);
});

test('a client that leaves cancels its check (default timeout 600s: the sidecar never waits for nobody)', async () => {
  await mesh.setPolicies([custom('slow', 'slow-default')]);
  const before = httpAuthz.seen.length;
  const req = http.request({ host: '127.0.0.1', port: sleep, path: '/headers', headers: { host: HOST, 'x-ext-authz': 'slow' } });
  req.on('error', () => {});
  req.end();
  await waitFor('the check to reach the authorizer', async () => httpAuthz.seen.length > before);
  req.destroy();
  const check = httpAuthz.seen.at(-1)!;
  await waitFor('the check to be cancelled once the client left', async () => check.cancelled === true);
});

test('includeRequestBodyInCheck: the body goes with the check (up to maxRequestBytes) and still reaches the app whole; larger is 413 unless allowPartialMessage', async () => {
  const post = (body: string) => request(`http://127.0.0.1:${sleep}/headers`, { method: 'POST', headers: { host: HOST, 'x-ext-authz': 'allow' }, body });
  await mesh.setPolicies([custom('body', 'body-strict')]);
  const small = await post('0123456789');
  const got = JSON.parse(await small.body.text());
  assert.equal(small.statusCode, 200);
  assert.equal(got.body, '0123456789', 'the app gets the body the check read');
  assert.equal(httpAuthz.seen.at(-1)!.body, '0123456789', 'the authorizer got it');
  const big = await post('x'.repeat(100));
  assert.equal(big.statusCode, 413);
  await big.body.dump();
  await mesh.setPolicies([custom('body', 'body-partial')]);
  const partial = await post('abcdefghijklmnopqrstuvwxyz'.repeat(4));
  assert.equal(partial.statusCode, 200);
  assert.equal(JSON.parse(await partial.body.text()).body, 'abcdefghijklmnopqrstuvwxyz'.repeat(4), 'the app gets all of it');
  assert.equal(grpcAuthz.seen.at(-1)!.body, 'abcdefghijklmnop', 'the authorizer, the first maxRequestBytes');
});

test('CUSTOM before DENY: the authorizer decides first (its denial wins), and a request it allows is still denied by a matching DENY policy', async () => {
  await mesh.setPolicies([
    custom('ext-authz', 'sample-ext-authz-http'),
    { metadata: { name: 'deny-x', namespace: 'foo' }, spec: { selector: { matchLabels: { app: 'httpbin' } }, action: 'DENY', rules: [{ when: [{ key: 'request.headers[x-deny]', values: ['yes'] }] }] } },
  ]);
  const both = await get('/headers', { 'x-deny': 'yes' });
  assert.equal(both.status, 403);
  assert.equal(both.body, DENIED_BODY, 'the CUSTOM policy is evaluated first');
  const before = httpAuthz.seen.length;
  const allowedThenDenied = await get('/headers', { 'x-deny': 'yes', 'x-ext-authz': 'allow' });
  assert.equal(allowedThenDenied.status, 403);
  assert.equal(allowedThenDenied.body, 'RBAC: access denied');
  assert.equal(allowedThenDenied.policy, 'ns[foo]-policy[deny-x]-rule[0]');
  assert.equal(httpAuthz.seen.length, before + 1, 'the authorizer was asked, then DENY decided');
  assert.equal((await get('/headers', { 'x-ext-authz': 'allow' })).status, 200);
});

test('a provider the mesh config does not have: the policy is accepted with a warning naming spec.provider.name, and what it matches is denied (fails closed, as Istio)', async () => {
  const admin = await request(`${mesh.cp.adminUrl}/api/v1/apply`, {
    method: 'POST',
    headers: { authorization: `Bearer ${mesh.cp.adminToken}`, 'content-type': 'application/yaml' },
    body: 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: unknown, namespace: foo}\nspec:\n  selector: {matchLabels: {app: httpbin}}\n  action: CUSTOM\n  provider: {name: nope}\n  rules: [{to: [{operation: {paths: [/headers]}}]}]\n',
  });
  const body = (await admin.body.json()) as { results: { warnings: string[] }[] };
  assert.equal(admin.statusCode, 200);
  assert.match(body.results[0].warnings.join('\n'), /AuthorizationPolicy foo\/unknown: spec\.provider\.name: no extension provider named "nope"/);
  await mesh.synced();
  const r = await get('/headers', { 'x-ext-authz': 'allow' });
  assert.equal(r.status, 403);
  assert.equal(r.body, 'RBAC: access denied');
  assert.match(r.policy ?? '', /deny-due-to-bad-CUSTOM-action/);
  assert.equal((await get('/ip')).status, 200, 'what the policy does not match is not affected');
  await mesh.setPolicies([]);
});

test('the mesh config removed: CUSTOM policies fail closed', async () => {
  await mesh.setPolicies([custom('ext-authz', 'sample-ext-authz-http')]);
  await mesh.setMeshConfig(undefined);
  assert.equal((await get('/headers', { 'x-ext-authz': 'allow' })).status, 403);
  await mesh.setMeshConfig({ extensionProviders: PROVIDERS });
  assert.equal((await get('/headers', { 'x-ext-authz': 'allow' })).status, 200);
});

