// AuthorizationPolicy through real sidecars, field by field, as istio.io's "Authorization Policy"
// reference defines each: httpbin (namespace foo, app=httpbin version=v1, service account
// httpbin) serves HTTP on 8000 and a TCP echo on 9000; sleep (foo, sa sleep) and other (bar, sa
// other) call it through their sidecars over mTLS, so httpbin's sidecar sees their SPIFFE ids; a
// client outside the mesh calls httpbin's sidecar in plaintext (PERMISSIVE), with no identity.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { AuthzMesh, type Answer, call, tcpEcho } from '../fixtures/authz-mesh.ts';

const mesh = new AuthzMesh();
let sleep = 0; // outbound ports
let other = 0;
let plain = 0; // httpbin's inbound port for 8000
let httpbinAdmin = '';
const HOST = 'httpbin.foo:8000';

const fromSleep = (path = '/', o?: Parameters<typeof call>[3]) => call(sleep, HOST, path, o);
const fromOther = (path = '/', o?: Parameters<typeof call>[3]) => call(other, HOST, path, o);
const fromOutside = (path = '/', o?: Parameters<typeof call>[3]) => call(plain, HOST, path, o);
const status = async (a: Promise<Answer>) => (await a).status;

const policy = (name: string, spec: Record<string, unknown>, namespace = 'foo', annotations?: Record<string, string>) => ({
  metadata: { name, namespace, ...(annotations ? { annotations } : {}) },
  spec,
});
const httpbin = { matchLabels: { app: 'httpbin' } };

before(async () => {
  await mesh.start('authz');
  const app = await mesh.httpApp('httpbin');
  const echo = await mesh.echoApp();
  const h = await mesh.workload({ name: 'httpbin-v1', namespace: 'foo', sa: 'httpbin', service: 'httpbin', labels: { app: 'httpbin', version: 'v1' }, ports: [['http', 8000, app], ['tcp-echo', 9000, echo]] });
  plain = h.inbound.get(8000)!;
  httpbinAdmin = h.proc.admin;
  sleep = (await mesh.workload({ name: 'sleep', namespace: 'foo', sa: 'sleep', outbound: true })).outbound;
  other = (await mesh.workload({ name: 'other', namespace: 'bar', sa: 'other', outbound: true })).outbound;
  await mesh.synced();
});
after(() => mesh.close());

test('no policy: everything is allowed', async () => {
  await mesh.setPolicies([]);
  assert.equal(await status(fromSleep()), 200);
  assert.equal(await status(fromOther()), 200);
  assert.equal(await status(fromOutside()), 200);
  assert.equal(await tcpEcho(sleep, 'httpbin.foo:9000'), 'echoed');
});

test('allow-nothing (an empty spec): every request is denied, 403 "RBAC: access denied", the policy named "none"', async () => {
  await mesh.setPolicies([policy('allow-nothing', {})]);
  const a = await fromSleep('/get');
  assert.equal(a.status, 403);
  assert.equal(a.body, 'RBAC: access denied');
  assert.equal(a.policy, 'none');
  assert.equal(await status(fromOutside()), 403);
  assert.equal(await tcpEcho(sleep, 'httpbin.foo:9000'), 'closed', 'TCP: the connection is closed');
});

test('deny-all (DENY with one empty rule): denied, naming the policy', async () => {
  await mesh.setPolicies([policy('deny-all', { action: 'DENY', rules: [{}] })]);
  const a = await fromSleep();
  assert.deepEqual([a.status, a.body, a.policy], [403, 'RBAC: access denied', 'ns[foo]-policy[deny-all]-rule[0]']);
  assert.equal(await tcpEcho(sleep, 'httpbin.foo:9000'), 'closed');
});
