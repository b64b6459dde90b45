// The admin API over HTTPS (off loopback it always is; --admin-tls forces it on loopback, as here):
// the control plane's own certificate, which the CLI checks against the mesh root and the control
// plane's SPIFFE identity. Real control plane, real `weft` CLI processes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { request } from 'undici';
import { type ControlPlane, startControlPlane } from '../../src/control/control-plane.ts';
import { tmpDir, weft } from '../helpers.ts';

let cp: ControlPlane;
let home: string;

before(async () => {
  home = tmpDir('admin-tls');
  cp = await startControlPlane({ dataDir: path.join(home, 'data'), adminPort: 0, xdsPort: 0, adminTls: true });
});
after(async () => {
  await cp?.close();
});

test('the admin URL is https, and the CLI applies and reads through it, trusting the root in its data directory', async () => {
  assert.match(cp.adminUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
  const env = { WEFT_HOME: home };
  const a = await weft(['apply', '-f', 'examples/canary/istio.yaml', '--admin', cp.adminUrl], env);
  assert.equal(a.code, 0, a.stderr);
  const g = await weft(['get', 'vs', '--admin', cp.adminUrl], env);
  assert.equal(g.code, 0, g.stderr);
  assert.match(g.stdout, /my-backend-service/);
});

test('plain HTTP to the HTTPS port gets no answer from the API', async () => {
  const url = cp.adminUrl.replace('https:', 'http:');
  const r = await request(`${url}/version`).then(
    (res) => res.statusCode,
    (e: Error) => e.message,
  );
  assert.notEqual(r, 200, 'no JSON answer in plain text');
});

test("the CLI refuses a server that does not chain to the root it trusts (another mesh's), saying so", async () => {
  const other = await startControlPlane({ dataDir: tmpDir('admin-tls-other'), adminPort: 0, xdsPort: 0 });
  await other.close();
  const r = await weft(['get', 'vs', '--admin', cp.adminUrl], { WEFT_HOME: home, WEFT_CA_CERT: other.rootCertFile });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /cannot reach the control plane admin API at https:.*(CERT|certificate|SELF_SIGNED)/i);
});

test('weft stat and weft tap through HTTPS: the signals come back, and tap (with the admin token from the data directory) gets the server\'s own answer', async () => {
  const env = { WEFT_HOME: home };
  const s = await weft(['stat', '-o', 'json', '--admin', cp.adminUrl], env);
  assert.equal(s.code, 0, s.stderr);
  assert.deepEqual(JSON.parse(s.stdout).items, []);
  const t = await weft(['tap', 'nobody', '--admin', cp.adminUrl], env);
  assert.equal(t.code, 1);
  assert.match(t.stderr, /^weft tap: no sidecar of workload default\/nobody is connected \(connected: none\)$/m);
  const anon = await weft(['tap', 'nobody', '--admin', cp.adminUrl], { ...env, WEFT_ADMIN_TOKEN: 'wrong' });
  assert.match(anon.stderr, /needs the admin token/);
});
