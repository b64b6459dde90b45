// A plugged-in CA (Istio's "Plug in CA certificates"): a root and an intermediate made here with
// openssl, the intermediate's cacerts directory given to the control plane. Real sidecars get
// certificates from the intermediate that chain to the user's root, present the chain, and speak
// mTLS to each other trusting only root-cert.pem; root-cert.pem and the bundle they hold are the
// user's root. Broken directories stop `weft control` at start, naming the file, and no key
// material is ever printed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { type ControlPlane, startControlPlane } from '../../src/control/control-plane.ts';
import { freePort } from '../../src/util/net.ts';
import { pemCertificates } from '../../src/util/pem.ts';
import { ROOT, startUp, tmpDir, waitFor, weft } from '../helpers.ts';
import { type SidecarProc, spawnSidecar, stopProc } from '../proxy/mesh.ts';
import { cacertsDir, issue, makeRoot, pluggedCa } from '../fixtures/cacerts.ts';

let cp: ControlPlane;
let app: http.Server;
const sidecars: SidecarProc[] = [];
let outbound = 0;
let ca: { work: string; dir: string };
const logs: string[] = [];

before(async () => {
  ca = pluggedCa();
  cp = await startControlPlane({ dataDir: tmpDir('plugged'), adminPort: 0, xdsPort: 0, caDir: ca.dir, log: (m) => logs.push(m) });
  app = http.createServer((_q, r) => r.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
  const appPort = (app.address() as AddressInfo).port;
  sidecars.push(await spawnSidecar(cp, ['--workload', 'api-1', '--service', 'api', '--inbound-port', String(await freePort()), '--app-port', String(appPort)], {}, 'api'));
  outbound = await freePort();
  sidecars.push(await spawnSidecar(cp, ['--workload', 'client', '--outbound-port', String(outbound)], {}, 'client'));
});
after(async () => {
  await Promise.all(sidecars.map((s) => stopProc(s.proc)));
  app?.closeAllConnections();
  app?.close();
  await cp?.close();
});

test('a plugged-in CA: workload certificates come from the intermediate, chain to the user root, and mTLS between sidecars works', async () => {
  const userRoot = fs.readFileSync(path.join(ca.dir, 'root-cert.pem'), 'utf8');
  const intermediate = new X509Certificate(fs.readFileSync(path.join(ca.dir, 'ca-cert.pem')));
  assert.equal(fs.readFileSync(cp.rootCertFile, 'utf8'), userRoot, 'root-cert.pem in the data directory is the user root');
  const dispatcher = new Agent({ connections: 4 });
  const get = async () => {
    const r = await request(`http://127.0.0.1:${outbound}/`, { headers: { host: 'api' }, dispatcher });
    return `${r.statusCode} ${await r.body.text()}`;
  };
  await waitFor('a request through both sidecars', async () => (await get().catch(() => '')) === '200 ok', 15_000);
  for (let i = 0; i < 20; i++) assert.equal(await get(), '200 ok');
  await dispatcher.close();
  for (const s of sidecars) {
    const certs = (await (await request(`${s.admin}/certs`)).body.json()) as { certificate: string; roots: string; identity: string };
    const chain = pemCertificates(certs.certificate).map((p) => new X509Certificate(p));
    assert.equal(chain.length, 2, `${certs.identity}: the certificate is presented with the intermediate`);
    assert.ok(chain[0].checkIssued(intermediate) && chain[0].verify(intermediate.publicKey), `${certs.identity}: signed by the intermediate`);
    assert.equal(chain[1].fingerprint256, intermediate.fingerprint256);
    assert.equal(certs.roots, userRoot, `${certs.identity}: trusts the user root, only`);
    // What a peer that trusts only root-cert.pem checks: openssl, with the intermediate as sent.
    const leaf = path.join(ca.work, `${chain[0].serialNumber}.pem`);
    fs.writeFileSync(leaf, pemCertificates(certs.certificate)[0]);
    fs.writeFileSync(`${leaf}.chain`, pemCertificates(certs.certificate)[1]);
    const out = execFileSync('openssl', ['verify', '-CAfile', cp.rootCertFile, '-untrusted', `${leaf}.chain`, leaf], { encoding: 'utf8' });
    assert.match(out, /: OK/);
  }
  const api = (await (await request(`${sidecars[0].admin}/stats`)).body.json()) as { sources: Record<string, number> };
  assert.ok((api.sources['spiffe://cluster.local/ns/default/sa/client'] ?? 0) >= 20, 'the requests arrived over mTLS from the client');
  // weft ca status shows the plugged-in CA; rotation is refused, saying why.
  const env = { WEFT_ADMIN_TOKEN: cp.adminToken };
  const status = await weft(['ca', 'status', '--admin', cp.adminUrl], env);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /plugged in from .*good/);
  assert.match(status.stdout, /signing with: .*Example Intermediate CA/);
  const rotate = await weft(['ca', 'rotate-root', '--admin', cp.adminUrl], env);
  assert.notEqual(rotate.code, 0);
  assert.match(rotate.stderr, /plugged in from .*rotated by changing that directory's files/);
  const all = logs.join('\n');
  assert.ok(!/PRIVATE KEY/.test(all), 'no key in the control plane log');
});

test('broken cacerts directories stop the control plane at start, naming the file and the problem', async () => {
  const w = ca.work;
  // Another key, a leaf that is no CA, a root that did not sign the chain, an expired intermediate.
  makeRoot(w, 'Other Root CA', 'other-root-cert.pem', 'other-root-key.pem');
  issue(w, 'leaf', 'not a ca', { ca: false });
  issue(w, 'old', 'Expired Intermediate CA', { days: -1 });
  const good = { cert: 'intermediate-cert.pem', key: 'intermediate-key.pem', chain: ['intermediate-cert.pem', 'root-cert.pem'], roots: ['root-cert.pem'] };
  const cases: [string, string, RegExp][] = [
    [cacertsDir(w, 'wrong-key', { ...good, key: 'leaf-key.pem' }), 'a key that is not the certificate\'s', /wrong-key\/ca-key\.pem: the key is not the key of .*wrong-key\/ca-cert\.pem \(.*Example Intermediate CA\)/],
    [cacertsDir(w, 'not-ca', { ...good, cert: 'leaf-cert.pem', key: 'leaf-key.pem', chain: ['leaf-cert.pem', 'root-cert.pem'] }), 'a certificate that is no CA', /not-ca\/ca-cert\.pem: certificate .*CN=not a ca is not a CA certificate/],
    [cacertsDir(w, 'other-root', { ...good, chain: ['intermediate-cert.pem'], roots: ['other-root-cert.pem'] }), 'a chain that does not lead to the root', /other-root\/cert-chain\.pem: the chain does not lead to a root of .*other-root\/root-cert\.pem: .*Example Intermediate CA is signed by .*Example Root CA, which is not one of its roots/],
    [cacertsDir(w, 'expired', { ...good, cert: 'old-cert.pem', key: 'old-key.pem', chain: ['old-cert.pem', 'root-cert.pem'] }), 'an expired CA certificate', /expired\/ca-cert\.pem: certificate .*Expired Intermediate CA expired at/],
  ];
  const missing = cacertsDir(w, 'missing-key', good);
  fs.rmSync(path.join(missing, 'ca-key.pem'));
  cases.push([missing, 'no key', /missing-key\/ca-key\.pem: cannot be read \(ENOENT\)/]);
  const keys = ['intermediate-key.pem', 'leaf-key.pem', 'old-key.pem'].map((f) => fs.readFileSync(path.join(w, f), 'utf8'));
  for (const [dir, what, error] of cases) {
    const r = await weft(['control', '--ca-dir', dir, '--data-dir', tmpDir('bad-ca'), '--admin-port', '0', '--xds-port', '0']);
    assert.notEqual(r.code, 0, `${what}: refused`);
    assert.match(r.stderr, error, `${what}: ${r.stderr}`);
    assert.ok(!r.stdout.includes('WEFT_READY'), `${what}: never ready`);
    for (const k of keys) {
      const body = k.split('\n').filter((l) => l && !l.startsWith('-----'))[0];
      assert.ok(!r.stderr.includes(body) && !r.stderr.includes('PRIVATE KEY'), `${what}: no key material in the error`);
    }
  }
});

test('weft up --ca-dir: the control plane it starts signs with the plugged-in CA, and every sidecar of the mesh trusts the user root', async () => {
  const up = await startUp(path.join(ROOT, 'examples/mtls'), ['--ca-dir', ca.dir]);
  try {
    const userRoot = fs.readFileSync(path.join(ca.dir, 'root-cert.pem'), 'utf8');
    const intermediate = new X509Certificate(fs.readFileSync(path.join(ca.dir, 'ca-cert.pem')));
    assert.equal(fs.readFileSync(path.join(up.home, 'data', 'root-cert.pem'), 'utf8'), userRoot);
    const admins = up.state.workloads.map((w) => w.admin!).filter(Boolean);
    assert.ok(admins.length >= 2, 'the sidecars run');
    for (const a of admins) {
      const c = (await (await request(`${a}/certs`)).body.json()) as { certificate: string; roots: string };
      const leaf = new X509Certificate(pemCertificates(c.certificate)[0]);
      assert.ok(leaf.checkIssued(intermediate) && leaf.verify(intermediate.publicKey), `${a}: signed by the intermediate`);
      assert.equal(c.roots, userRoot);
    }
    const status = await weft(['ca', 'status'], up.env);
    assert.match(status.stdout, /plugged in from /);
  } finally {
    await up.stop();
  }
});
