// Weft's own CA with an intermediate (weft control --ca-intermediate): the generated root signs an
// intermediate CA (ECDSA P-256, CA with pathLen 0, a year), kept in the store with its key sealed
// as the root's is; workload certificates are signed by it and carry it, so a peer that trusts the
// root alone verifies them (node:tls, openssl). Added under an existing root without a trust
// change, kept when the option is dropped, renewed under the same root in its last 90 days, and
// given to each new root of a rotation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CaError, CertificateAuthority, type Issued } from '../../src/control/ca/ca.ts';
import { x509 } from '../../src/control/ca/x509.ts';
import { SqliteStore } from '../../src/control/store/sqlite.ts';
import { newKeyAndRequest } from '../../src/util/csr.ts';
import { pemCertificates } from '../../src/util/pem.ts';
import { tmpDir } from '../helpers.ts';
import { pluggedCa } from '../fixtures/cacerts.ts';
import { handshake } from '../fixtures/mesh-creds.ts';

const kek = Buffer.alloc(32, 7);
const DAY = 24 * 3600_000;
const id = { namespace: 'default', serviceAccount: 'reviews' };

/** A workload's key and its certificate from `ca`: what TLS presents (the certificate, then its chain). */
async function workload(ca: CertificateAuthority, serviceAccount = 'reviews', ttlMs?: number): Promise<{ cert: string; key: string; issued: Issued }> {
  const { keyPem, csrPem } = newKeyAndRequest();
  const issued = await ca.sign(csrPem, { namespace: 'default', serviceAccount }, ttlMs);
  return { cert: [issued.certificate, ...issued.chain].join(''), key: keyPem, issued };
}

const signs = (issuer: X509Certificate, c: X509Certificate) => c.checkIssued(issuer) && c.verify(issuer.publicKey);

test('--ca-intermediate on first start: an intermediate (P-256, CA pathLen 0, keyCertSign, 1 year) under the new root, its key sealed in the store; workload certificates signed by it verify against the root alone; the same on every later start, with or without the option', async () => {
  const dir = tmpDir('ca-int');
  const store = new SqliteStore(`${dir}/weft.db`);
  const logs: string[] = [];
  const ca = await CertificateAuthority.open({ store, kek, intermediate: true, log: (m) => logs.push(m) });
  const status = ca.status();
  assert.equal(status.withIntermediate, true);
  assert.equal(status.roots.length, 1);
  assert.match(status.signing.subject, /CN=Weft intermediate CA/);
  assert.deepEqual(status.roots[0].intermediate && { subject: status.roots[0].intermediate.subject, notAfter: status.roots[0].intermediate.notAfter }, { subject: status.signing.subject, notAfter: status.signing.notAfter });

  const root = new X509Certificate(ca.trustBundle());
  assert.equal(pemCertificates(ca.trustBundle()).length, 1, 'the trust bundle is the root alone');
  const a = await workload(ca);
  assert.equal(a.issued.chain.length, 1, 'a workload certificate carries the intermediate');
  const inter = new X509Certificate(a.issued.chain[0]);
  const leaf = new X509Certificate(a.issued.certificate);
  assert.ok(signs(inter, leaf), 'the leaf is signed by the intermediate');
  assert.ok(signs(root, inter), 'the intermediate by the root');
  assert.ok(!signs(root, leaf), 'not by the root itself');
  // What makes it an intermediate: P-256, CA:TRUE with pathLen 0 (critical), keyCertSign, a year (the root ten).
  const px = new x509.X509Certificate(a.issued.chain[0]);
  const bc = px.getExtension(x509.BasicConstraintsExtension)!;
  assert.deepEqual([bc.ca, bc.pathLength, bc.critical], [true, 0, true]);
  assert.ok(px.getExtension(x509.KeyUsagesExtension)!.usages & x509.KeyUsageFlags.keyCertSign);
  assert.equal(inter.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  const life = (c: X509Certificate) => c.validToDate.getTime() - c.validFromDate.getTime();
  assert.ok(Math.abs(life(inter) - 365 * DAY) < 120_000, `the intermediate lives a year: ${life(inter) / DAY} days`);
  assert.ok(life(root) > 9 * 365 * DAY);
  assert.ok(leaf.validToDate.getTime() <= inter.validToDate.getTime());

  // The key is sealed at rest: no PEM key in the store, and the stored bytes are no key.
  const stored = store.getSecret('ca/root')!;
  assert.ok(!stored.includes('PRIVATE KEY'), 'no PEM private key in the store');
  const rec = JSON.parse(stored);
  assert.equal(rec.intermediate, true);
  assert.equal(rec.roots[0].intermediate.key.alg, 'A256GCM');
  assert.throws(() => createPrivateKey({ key: Buffer.from(rec.roots[0].intermediate.key.data, 'base64'), format: 'der', type: 'pkcs8' }));

  // Real mTLS: each side presents its certificate with the intermediate, trusting only the root.
  const b = await workload(ca, 'productpage');
  assert.equal(await handshake(a, b, ca.trustBundle()), 'URI:spiffe://cluster.local/ns/default/sa/productpage');
  // Without the intermediate in the handshake, a peer that trusts only the root refuses it.
  assert.equal(await handshake(a, { cert: b.issued.certificate, key: b.key }, ca.trustBundle()).catch(() => ''), '', 'the leaf alone does not verify');
  // And openssl, as a peer that trusts root-cert.pem would check it.
  fs.writeFileSync(path.join(dir, 'root.pem'), ca.trustBundle());
  fs.writeFileSync(path.join(dir, 'chain.pem'), a.issued.chain[0]);
  fs.writeFileSync(path.join(dir, 'leaf.pem'), a.issued.certificate);
  assert.match(execFileSync('openssl', ['verify', '-CAfile', 'root.pem', '-untrusted', 'chain.pem', 'leaf.pem'], { cwd: dir, encoding: 'utf8' }), /leaf\.pem: OK/);

  // Later starts: the same root and intermediate, with the option or without it (it is kept, and said so).
  const again = await CertificateAuthority.open({ store, kek, intermediate: true });
  assert.equal(again.status().signing.sha256, status.signing.sha256);
  const without: string[] = [];
  const dropped = await CertificateAuthority.open({ store, kek, log: (m) => without.push(m) });
  assert.equal(dropped.trustBundle(), ca.trustBundle());
  assert.equal(dropped.status().signing.sha256, status.signing.sha256, 'without the option, the intermediate still signs');
  assert.ok(signs(inter, new X509Certificate((await workload(dropped)).issued.certificate)));
  assert.match(without.join('\n'), /signed by the intermediate CA .*kept in the store .*--ca-intermediate, which a start without it does not undo/);
  // The intermediate's key opens with this key-encryption key and this certificate only.
  await assert.rejects(CertificateAuthority.open({ store, kek: Buffer.alloc(32, 8) }), (e: Error) => e instanceof CaError && /cannot be opened/.test(e.message));
  const other = new SqliteStore(':memory:');
  await CertificateAuthority.open({ store: other, kek, intermediate: true });
  const swapped = { ...rec, roots: [{ ...rec.roots[0], intermediate: { ...rec.roots[0].intermediate, certificate: JSON.parse(other.getSecret('ca/root')!).roots[0].intermediate.certificate } }] };
  const swappedStore = { getSecret: () => JSON.stringify(swapped), putSecretIfAbsent: () => '', putSecret: () => {} };
  await assert.rejects(CertificateAuthority.open({ store: swappedStore, kek }), /CA intermediate's private key cannot be opened .*stored intermediate altered/);
  assert.ok(!logs.some((l) => /PRIVATE KEY/.test(l)));
  other.close();
  store.close();
});

test('--ca-intermediate on a store whose root signs directly: an intermediate is added under the same root; certificates the root signed stay valid beside the new ones', async () => {
  const store = new SqliteStore(':memory:');
  const before = await CertificateAuthority.open({ store, kek });
  const old = await workload(before, 'old');
  assert.equal(old.issued.chain.length, 0);
  const logs: string[] = [];
  const ca = await CertificateAuthority.open({ store, kek, intermediate: true, log: (m) => logs.push(m) });
  assert.equal(ca.trustBundle(), before.trustBundle(), 'the same trust bundle: nothing a sidecar trusts changes');
  const fresh = await workload(ca, 'new');
  assert.equal(fresh.issued.chain.length, 1);
  assert.match(logs.join('\n'), /signed from now on by an intermediate CA under the root: .*CN=Weft intermediate CA/);
  // A sidecar still holding the root-signed certificate and one with an intermediate-signed one talk, either way round.
  assert.equal(await handshake(old, fresh, ca.trustBundle()), 'URI:spiffe://cluster.local/ns/default/sa/new');
  assert.equal(await handshake(fresh, old, ca.trustBundle()), 'URI:spiffe://cluster.local/ns/default/sa/old');
  store.close();
});

test('the intermediate is renewed under the same root in its last 90 days (once, however many sign at that moment); no certificate outlives it; a renewal that cannot be stored is logged and the current one signs on', async () => {
  const store = new SqliteStore(':memory:');
  let now = Date.now();
  const logs: string[] = [];
  const ca = await CertificateAuthority.open({ store, kek, intermediate: true, now: () => now, log: (m) => logs.push(m) });
  const root = new X509Certificate(ca.trustBundle());
  const first = ca.status().roots[0].intermediate!;
  const end = Date.parse(first.notAfter);
  assert.equal(Date.parse(first.renewsAfter!), end - 90 * DAY);
  now = end - 91 * DAY;
  assert.equal(new X509Certificate((await workload(ca)).issued.chain[0]).fingerprint256.replace(/:/g, '').toLowerCase(), first.sha256, 'not yet');
  now = end - 89 * DAY;
  const three = await Promise.all([workload(ca, 'a'), workload(ca, 'b'), workload(ca, 'c')]);
  const renewed = new X509Certificate(three[0].issued.chain[0]);
  assert.ok(three.every((w) => w.issued.chain[0] === three[0].issued.chain[0]), 'one renewal for the three');
  assert.notEqual(renewed.fingerprint256.replace(/:/g, '').toLowerCase(), first.sha256, 'a new intermediate');
  assert.ok(signs(root, renewed), 'under the same root');
  assert.equal(renewed.validToDate.getTime(), Math.floor((now + 365 * DAY) / 1000) * 1000);
  assert.equal(logs.filter((l) => /intermediate CA renewed under the same root/.test(l)).length, 1, logs.join('\n'));
  assert.equal(ca.trustBundle(), root.toString(), 'the trust bundle does not change');
  const reopened = await CertificateAuthority.open({ store, kek, now: () => now });
  assert.equal(reopened.status().signing.sha256, ca.status().signing.sha256, 'kept in the store');

  // A store that cannot be written: the renewal fails, says so, and the current intermediate signs,
  // its certificates cut to its own end.
  const stuck = { getSecret: (k: string) => store.getSecret(k), putSecretIfAbsent: (k: string, v: string) => store.putSecretIfAbsent(k, v), putSecret: () => { throw new Error('disk full'); } };
  const failing: string[] = [];
  const late = await CertificateAuthority.open({ store: stuck, kek, now: () => now, log: (m) => failing.push(m) });
  const interEnd = Date.parse(late.status().signing.notAfter);
  now = interEnd - 3600_000;
  const w = await workload(late);
  assert.equal(w.issued.chain[0], renewed.toString().trim() + '\n');
  assert.equal(w.issued.notAfter.getTime(), interEnd, 'the leaf ends with its intermediate, not 24 h on');
  assert.match(failing.join('\n'), /the intermediate CA could not be renewed .*disk full/);
  store.close();
});

test('a root rotation with an intermediate: the new root comes with its own, which signs only once the new root does; the control plane is served under the old one until the old root leaves', async () => {
  const store = new SqliteStore(':memory:');
  let now = Date.now();
  const ca = await CertificateAuthority.open({ store, kek, intermediate: true, now: () => now });
  const oldInter = new X509Certificate((await workload(ca)).issued.chain[0]);
  await ca.rotateRoot();
  const [oldRoot, newRoot] = pemCertificates(ca.trustBundle()).map((p) => new X509Certificate(p));
  const s = ca.status();
  assert.equal(s.roots.length, 2);
  const newInter = s.roots[1].intermediate!;
  assert.ok(newInter && newInter.sha256 !== s.roots[0].intermediate!.sha256);
  assert.equal(s.signing.sha256, s.roots[0].intermediate!.sha256, 'the old root\'s intermediate signs while the bundle is distributed');
  assert.ok(signs(oldInter, new X509Certificate((await workload(ca)).issued.certificate)));
  assert.equal(await ca.useNewRoot(), true);
  const after = await workload(ca);
  const inter = new X509Certificate(after.issued.chain[0]);
  assert.ok(signs(newRoot, inter) && signs(inter, new X509Certificate(after.issued.certificate)), 'then the new root\'s intermediate');
  const { csrPem } = newKeyAndRequest();
  const serving = await ca.sign(csrPem, { namespace: 'weft-system', serviceAccount: 'weft-control' }, undefined, true);
  assert.ok(signs(oldRoot, new X509Certificate(serving.chain[0])), 'the control plane\'s certificate: under the old root, which every sidecar trusts');
  now = Date.parse(ca.status().rotation.oldRootsNeededUntil!) + 1;
  await ca.dropOldRoots();
  const done = await CertificateAuthority.open({ store, kek, now: () => now });
  assert.equal(done.trustBundle(), newRoot.toString());
  assert.equal(done.status().withIntermediate, true);
  assert.equal(done.status().signing.sha256, newInter.sha256);
  store.close();
});

test('--ca-intermediate with a plugged-in CA is refused: that CA signs with its own intermediate', async () => {
  const { dir } = pluggedCa();
  await assert.rejects(CertificateAuthority.open({ store: new SqliteStore(':memory:'), kek, caDir: dir, intermediate: true }), /--ca-intermediate puts an intermediate under Weft's own root; the CA plugged in from .* signs with its own ca-cert.pem/);
});
