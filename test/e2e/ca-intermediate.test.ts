// Weft's own CA with an intermediate (--ca-intermediate), through real sidecars with automatic
// mTLS between them (every request a new mTLS connection: DestinationRule maxRequestsPerConnection
// 1) and workload certificates of 6 s, renewed every 3 s. The sidecars' certificates come from the
// intermediate and are served with it, so a peer trusting root-cert.pem (the root alone) verifies
// them; `weft ca status` shows it; a root rotation gives the new root an intermediate of its own
// and not one request fails; a control plane restarted without the flag keeps the intermediate.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import tls from 'node:tls';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { type ControlPlane, type ControlPlaneOptions, startControlPlane } from '../../src/control/control-plane.ts';
import { pemCertificates } from '../../src/util/pem.ts';
import { ROOT, startUp, tmpDir, waitFor, weft } from '../helpers.ts';
import { newKeyAndRequest } from '../../src/util/csr.ts';
import type { SidecarProc } from '../proxy/mesh.ts';
import { type Certs, type RotatingPair, caCommand, certsOf, finishRotationWhenAllowed, startRotatingPair, traffic as trafficThrough } from '../fixtures/rotating-pair.ts';

let cp: ControlPlane;
let pair: RotatingPair;
let sidecars: SidecarProc[] = [];
let inbound = 0;
const logs: string[] = [];
const dataDir = tmpDir('ca-intermediate');
const cpOptions: ControlPlaneOptions = { dataDir, adminPort: 0, xdsPort: 0, log: (m) => logs.push(m) };

before(async () => {
  cp = await startControlPlane({ ...cpOptions, caIntermediate: true });
  pair = await startRotatingPair(cp);
  ({ sidecars, inbound } = pair);
});
after(async () => {
  await pair?.close();
  await cp?.close();
});

const x509s = (pem: string) => pemCertificates(pem).map((p) => new X509Certificate(p));
const signs = (issuer: X509Certificate, c: X509Certificate) => c.checkIssued(issuer) && c.verify(issuer.publicKey);
const sha256 = (c: X509Certificate) => c.fingerprint256.replace(/:/g, '').toLowerCase();
/** A sidecar's certificate is the leaf then `intermediate`, which signed it. */
const servedThrough = (c: Certs, intermediate: X509Certificate) => {
  const chain = x509s(c.certificate);
  return chain.length === 2 && chain[1].fingerprint256 === intermediate.fingerprint256 && signs(intermediate, chain[0]);
};
const ca = (...args: string[]) => caCommand(cp, ...args);

const traffic = (workers: number) => trafficThrough(pair.outbound, workers);

test('--ca-intermediate: sidecars hold certificates of the intermediate and serve them with it; a peer trusting only root-cert.pem verifies them; mTLS works; weft ca status shows the intermediate', async () => {
  const root = new X509Certificate(fs.readFileSync(cp.rootCertFile));
  assert.equal(x509s(fs.readFileSync(cp.rootCertFile, 'utf8')).length, 1, 'root-cert.pem is the root alone');
  const s = cp.ca.status();
  const inter = s.roots[0].intermediate!;
  assert.ok(inter && s.signing.sha256 === inter.sha256, 'the intermediate signs');
  const t = traffic(2);
  try {
    await waitFor('a request through both sidecars', async () => (await t.get().catch(() => '')) === 'ok', 15_000);
    await t.more(t.sent() + 20);
  } finally {
    assert.deepEqual(await t.stop(), { ok: t.sent() }, 'every request succeeds');
  }
  let intermediate: X509Certificate | undefined;
  for (const sc of sidecars) {
    const c = await certsOf(sc);
    const chain = x509s(c.certificate);
    assert.equal(chain.length, 2, `${c.identity}: the certificate and the intermediate`);
    intermediate = chain[1];
    assert.equal(sha256(intermediate), inter.sha256);
    assert.ok(signs(intermediate, chain[0]) && signs(root, intermediate), `${c.identity}: leaf <- intermediate <- root`);
    assert.equal(c.roots, fs.readFileSync(cp.rootCertFile, 'utf8'), `${c.identity}: trusts the root alone`);
  }
  // What the api sidecar serves on its inbound port: the chain with the intermediate, which a client
  // that trusts only the root needs to accept it (rejectUnauthorized).
  // (A 6 s certificate, as the sidecars': the rotation below waits for the old root's last one to expire.)
  const { keyPem, csrPem } = newKeyAndRequest();
  const issued = await cp.ca.sign(csrPem, { namespace: 'default', serviceAccount: 'client' }, 6000);
  const client = { keyPem, certPem: [issued.certificate, ...issued.chain].join('') };
  const served = await new Promise<{ authorized: boolean; issuer?: string; issuerCa?: boolean; answer: string }>((resolve, reject) => {
    const c = tls.connect({ port: inbound, host: '127.0.0.1', ca: fs.readFileSync(cp.rootCertFile), key: client.keyPem, cert: client.certPem, ALPNProtocols: ['istio-http/1.1', 'istio'], checkServerIdentity: () => undefined });
    let answer = '';
    let seen: { authorized: boolean; issuer?: string; issuerCa?: boolean } = { authorized: false };
    c.on('secureConnect', () => {
      const peer = c.getPeerCertificate(true);
      seen = { authorized: c.authorized, issuer: peer.issuerCertificate?.fingerprint256, issuerCa: peer.issuerCertificate?.ca };
      c.write('GET / HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n');
    });
    c.on('data', (d) => (answer += d));
    c.on('end', () => resolve({ ...seen, answer }));
    c.on('error', reject);
  });
  assert.equal(served.authorized, true, 'verified against the root alone');
  assert.equal(served.issuer, intermediate!.fingerprint256, 'the served certificate is issued by the intermediate, which came with it');
  assert.match(served.answer, /^HTTP\/1\.1 200/);
  assert.match(served.answer, /\r\n\r\nok$/);
  const status = await ca('status');
  assert.ok(status.ok, status.stderr);
  assert.match(status.stdout, /CA: generated by Weft, signing through an intermediate CA under each root/);
  assert.match(status.stdout, new RegExp(`signing with: O=cluster\\.local, CN=Weft intermediate CA, until ${inter.notAfter.replace(/\./g, '\\.')}`));
  assert.match(status.stdout, new RegExp(`intermediate: O=cluster\\.local, CN=Weft intermediate CA  sha256 ${inter.sha256}  until ${inter.notAfter.replace(/\./g, '\\.')}  \\(renewed under the same root after ${inter.renewsAfter!.replace(/\./g, '\\.')}\\)`));
  assert.match(status.stdout, /\(signs, through its intermediate\)/);
});

test('root rotation with an intermediate under traffic: the new root comes with its own intermediate, which sidecars move to; the old root leaves; no request fails', async (t) => {
  const oldRoot = new X509Certificate(cp.trustBundle);
  const load = traffic(4);
  let newIntermediate: X509Certificate | undefined;
  try {
    await load.more(load.sent() + 50);
    const started = await ca('rotate-root');
    assert.ok(started.ok, started.stderr);
    const bundle = fs.readFileSync(cp.rootCertFile, 'utf8');
    const newRoot = x509s(bundle)[1];
    assert.ok(newRoot && newRoot.fingerprint256 !== oldRoot.fingerprint256);
    const s = cp.ca.status();
    assert.ok(s.roots[1].intermediate, 'the new root has an intermediate');
    for (const sc of sidecars) await waitFor(`the bundle of both roots at ${sc.admin}`, async () => (await certsOf(sc)).roots === bundle, 15_000);
    await waitFor('the new root to sign', async () => (await ca('status')).stdout.includes('the new root signs'), 15_000);
    for (const sc of sidecars) {
      const c = await waitFor(`a certificate under the new root's intermediate at ${sc.admin}`, async () => {
        const got = await certsOf(sc);
        const chain = x509s(got.certificate);
        return chain.length === 2 && signs(newRoot, chain[1]) && servedThrough(got, chain[1]) && got;
      }, 15_000);
      newIntermediate = x509s(c.certificate)[1];
      assert.equal(sha256(newIntermediate), s.roots[1].intermediate!.sha256);
    }
    await load.more(load.sent() + 50);
    await finishRotationWhenAllowed(cp);
    for (const sc of sidecars) {
      await waitFor(`the new root alone at ${sc.admin}`, async () => {
        const c = await certsOf(sc);
        return x509s(c.roots).map((r) => r.fingerprint256).join() === newRoot.fingerprint256 && servedThrough(c, newIntermediate!);
      }, 15_000);
    }
    await load.more(load.sent() + 50);
  } finally {
    const outcomes = await load.stop();
    t.diagnostic(`${load.sent()} requests, each a new mTLS connection; outcomes ${JSON.stringify(outcomes)}`);
    assert.deepEqual(outcomes, { ok: load.sent() }, 'every request succeeds');
  }
  assert.match((await ca('status')).stdout, /root rotation: none/);
});

test('a control plane restarted without --ca-intermediate keeps the same intermediate (said in its log): sidecars reconnect and renew under it', async () => {
  const before = cp.ca.status().signing;
  const xdsPort = Number(cp.xdsAddress.split(':').pop());
  const intermediate = x509s((await certsOf(sidecars[0])).certificate)[1];
  assert.equal(sha256(intermediate), before.sha256);
  await cp.close();
  // What they hold now came from the control plane just closed: a renewal from here on is the restarted one's.
  const held = await Promise.all(sidecars.map(async (sc) => (await certsOf(sc)).certificate));
  logs.length = 0;
  cp = await startControlPlane({ ...cpOptions, xdsPort });
  assert.equal(cp.ca.status().signing.sha256, before.sha256, 'the same intermediate signs');
  assert.match(logs.join('\n'), /signed by the intermediate CA .*kept in the store/);
  for (const [i, sc] of sidecars.entries()) {
    const c = await waitFor(`a certificate from the restarted control plane at ${sc.admin}`, async () => {
      const got = await certsOf(sc);
      return got.certificate !== held[i] && got;
    }, 30_000, 100);
    assert.ok(servedThrough(c, intermediate), `${c.identity}: renewed under the same intermediate`);
  }
  const t = traffic(2);
  try {
    await waitFor('a request after the restart', async () => t.sent() > 20, 15_000);
  } finally {
    assert.deepEqual(await t.stop(), { ok: t.sent() }, 'every request succeeds');
  }
});

test('weft up --ca-intermediate: every sidecar of the mesh holds a certificate of the intermediate, trusting the root', async () => {
  const up = await startUp(path.join(ROOT, 'examples/mtls'), ['--ca-intermediate']);
  try {
    const root = new X509Certificate(fs.readFileSync(path.join(up.home, 'data', 'root-cert.pem')));
    const admins = up.state.workloads.map((w) => w.admin!).filter(Boolean);
    assert.ok(admins.length >= 2, 'the sidecars run');
    for (const a of admins) {
      const c = await certsOf({ admin: a });
      const chain = x509s(c.certificate);
      assert.equal(chain.length, 2, `${a}: the certificate and the intermediate`);
      assert.match(chain[1].subject, /CN=Weft intermediate CA/);
      assert.ok(signs(chain[1], chain[0]) && signs(root, chain[1]));
    }
    const status = await weft(['ca', 'status'], up.env);
    assert.match(status.stdout, /signing through an intermediate CA/);
  } finally {
    await up.stop();
  }
});
