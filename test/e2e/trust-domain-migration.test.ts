// Istio's trust domain migration task (istio.io/latest/docs/tasks/security/authorization/
// authz-td-migration/), through real sidecars: a mesh in trust domain old-td with a policy that
// lets only old-td/ns/foo/sa/sleep call httpbin; the mesh config moves it to new-td, keeping old-td
// as an alias, and sidecars renew their certificates into new-td (at half their life, 3 s here)
// while traffic keeps flowing and the old-domain principal still allows sleep; without the alias,
// the same policy denies it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkResource, type Resource } from '../../src/api/index.ts';
import { AuthzMesh, call } from '../fixtures/authz-mesh.ts';
import { waitFor } from '../helpers.ts';
import type { SidecarProc } from '../proxy/mesh.ts';

const HOST = 'httpbin.foo:8000';
const CERT_TTL = ['--cert-ttl', '6s'];

function meshConfig(trustDomain: string, aliases: string[] = []): Resource {
  const mesh = `trustDomain: ${trustDomain}\n${aliases.length ? `trustDomainAliases: [${aliases.join(', ')}]\n` : ''}`;
  return checkResource({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' }, data: { mesh } }, 'mesh config');
}

/** The task's policy: GET on httpbin only for sleep of namespace foo, named by its identity in `trustDomain`. */
const policy = (trustDomain: string) => ({
  metadata: { name: 'service-httpbin.default.svc.cluster.local', namespace: 'foo' },
  spec: { selector: { matchLabels: { app: 'httpbin' } }, rules: [{ from: [{ source: { principals: [`${trustDomain}/ns/foo/sa/sleep`] } }], to: [{ operation: { methods: ['GET'] } }] }] },
});

const mesh = new AuthzMesh();
let httpbin: SidecarProc;
let sleepFoo: number;
let sleepSystem: number;
let sleepFooProc: SidecarProc;
let sleepNew: number;

async function identity(p: SidecarProc): Promise<string> {
  return ((await (await fetch(`${p.admin}/certs`)).json()) as { identity: string }).identity;
}

async function setMeshConfig(trustDomain: string, aliases: string[] = []): Promise<void> {
  mesh.cp.store.apply([meshConfig(trustDomain, aliases)]);
  await mesh.synced();
}

before(async () => {
  await mesh.start('td-migration');
  mesh.cp.store.apply([meshConfig('old-td')]);
  const app = await mesh.httpApp('httpbin');
  httpbin = (await mesh.workload({ name: 'httpbin', namespace: 'foo', sa: 'httpbin', service: 'httpbin', labels: { app: 'httpbin' }, ports: [['http', 8000, app]], args: CERT_TTL })).proc;
  const sf = await mesh.workload({ name: 'sleep', namespace: 'foo', sa: 'sleep', outbound: true, args: CERT_TTL });
  [sleepFoo, sleepFooProc] = [sf.outbound, sf.proc];
  sleepSystem = (await mesh.workload({ name: 'sleep', namespace: 'istio-system', sa: 'sleep', outbound: true, args: CERT_TTL })).outbound;
  await mesh.synced();
  await mesh.setPolicies([policy('old-td')]);
});
after(() => mesh.close());

test('in trust domain old-td: certificates name it; the policy lets sleep of foo through and denies sleep of istio-system', async () => {
  assert.equal(await identity(httpbin), 'spiffe://old-td/ns/foo/sa/httpbin');
  assert.equal(await identity(sleepFooProc), 'spiffe://old-td/ns/foo/sa/sleep');
  assert.equal((await call(sleepFoo, HOST, '/ip')).status, 200);
  const denied = await call(sleepSystem, HOST, '/ip');
  assert.equal(denied.status, 403, denied.body);
});

test('moved to new-td with old-td as alias: sidecars renew into new-td while every request succeeds, and the old-domain principal still allows sleep', async () => {
  await setMeshConfig('new-td', ['old-td']);
  let requests = 0;
  const failed: string[] = [];
  // Renewals at half the certificates' 6 s life: requests keep flowing meanwhile, and all pass.
  await waitFor('httpbin and sleep to hold new-td certificates', async () => {
    const r = await call(sleepFoo, HOST, '/ip');
    if (r.status !== 200) failed.push(`request ${requests}: ${r.status} ${r.body}`);
    requests++;
    return (await identity(httpbin)) === 'spiffe://new-td/ns/foo/sa/httpbin' && (await identity(sleepFooProc)) === 'spiffe://new-td/ns/foo/sa/sleep';
  }, 30_000, 100);
  assert.ok(requests > 1, 'requests were sent while the certificates changed domain');
  assert.deepEqual(failed, [], `every request during the migration succeeded (${requests} sent)`);
  // A sleep started now is new-td from its first certificate and connection: the policy that names
  // old-td still lets it through (the alias), and httpbin's sidecar saw it as new-td...
  const fresh = await mesh.workload({ name: 'sleep-2', namespace: 'foo', sa: 'sleep', outbound: true });
  sleepNew = fresh.outbound;
  await mesh.synced();
  assert.equal(await identity(fresh.proc), 'spiffe://new-td/ns/foo/sa/sleep');
  const r = await call(sleepNew, HOST, '/ip');
  assert.equal(r.status, 200, r.body);
  const sources = (await (await fetch(`${httpbin.admin}/stats`)).json()).sources as Record<string, number>;
  assert.ok((sources['spiffe://new-td/ns/foo/sa/sleep'] ?? 0) > 0, `httpbin's sidecar saw sleep as new-td: ${JSON.stringify(sources)}`);
  assert.equal((await call(sleepFoo, HOST, '/ip')).status, 200);
  // ...and sleep of istio-system is still denied.
  assert.equal((await call(sleepSystem, HOST, '/ip')).status, 403);
});

test('without the alias, the policy naming old-td no longer matches sleep (denied); one naming new-td, or cluster.local (this mesh), does', async () => {
  await setMeshConfig('new-td');
  for (const port of [sleepFoo, sleepNew]) {
    const denied = await call(port, HOST, '/ip');
    assert.equal(denied.status, 403, `sleep holds ${await identity(sleepFooProc)}: ${denied.body}`);
  }
  for (const td of ['new-td', 'cluster.local']) {
    await mesh.setPolicies([policy(td)]);
    for (const port of [sleepFoo, sleepNew]) {
      const r = await call(port, HOST, '/ip');
      assert.equal(r.status, 200, `policy naming ${td}: ${r.body}`);
    }
    assert.equal((await call(sleepSystem, HOST, '/ip')).status, 403);
  }
});
