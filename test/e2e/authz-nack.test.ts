// An RBAC filter the sidecar cannot evaluate is NACKed, naming the listener, the filter's place and
// the field; the sidecar keeps enforcing its last good config (it neither drops the policies, which
// would let through what they deny, nor stops serving). The control plane is made to send a CEL
// condition (which Istio never generates, and Weft's sidecar cannot evaluate) once told to.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../helpers.ts';
import { AuthzMesh, call, translateNackedWhen } from '../fixtures/authz-mesh.ts';

const mesh = new AuthzMesh();
let breakIt = false;
let sleep = 0;
let inbound = 0;

before(async () => {
  await mesh.start('authz-nack', translateNackedWhen(() => breakIt));
  const app = await mesh.httpApp('httpbin');
  const h = await mesh.workload({ name: 'httpbin-v1', namespace: 'foo', sa: 'httpbin', service: 'httpbin', labels: { app: 'httpbin' }, ports: [['http', 8000, app]] });
  inbound = h.inbound.get(8000)!;
  sleep = (await mesh.workload({ name: 'sleep', namespace: 'foo', sa: 'sleep', outbound: true })).outbound;
  await mesh.synced();
});
after(() => mesh.close());

test('a CEL condition is NACKed naming listener, filter and field; the last good policies stay enforced', async () => {
  await mesh.setPolicies([{ metadata: { name: 'deny-admin', namespace: 'foo' }, spec: { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin'] } }] }] } }]);
  assert.equal((await call(sleep, 'httpbin.foo:8000', '/admin')).status, 403);
  breakIt = true;
  mesh.cp.ads.requestPush(); // the same config, translated with the condition
  const nack = await waitFor('an LDS NACK from httpbin', async () => mesh.cp.ads.proxies().find((p) => p.workload.name === 'httpbin-v1')?.types.find((t) => t.type === 'LDS')?.nack);
  assert.match(
    nack.reason,
    new RegExp(`listener inbound\\|${inbound}: http_filters\\[1\\]\\.typed_config\\.rules\\.policies\\["ns\\[foo\\]-policy\\[deny-admin\\]-rule\\[0\\]"\\]\\.condition: CEL conditions are not supported`),
  );
  assert.equal((await call(sleep, 'httpbin.foo:8000', '/admin')).status, 403, 'still denied by the last good config');
  assert.equal((await call(sleep, 'httpbin.foo:8000', '/')).status, 200);
});
