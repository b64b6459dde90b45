// The certificate authority: a root made once and kept (its key sealed) in the store, workload
// certificates with SPIFFE identities from ECDSA P-256 requests, and real mutual-TLS handshakes
// with them (node:tls): accepted between workloads of one mesh, refused with another CA's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CaError, CertificateAuthority } from '../../src/control/ca/ca.ts';
import { KEK_FILE, loadOrCreateKek } from '../../src/control/ca/kek.ts';
import { crypto, x509 } from '../../src/control/ca/x509.ts';
import { SqliteStore } from '../../src/control/store/sqlite.ts';
import { tmpDir } from '../helpers.ts';
import { cacertsDir, makeRoot, pluggedCa } from '../fixtures/cacerts.ts';
import { handshake } from '../fixtures/mesh-creds.ts';

const kek = Buffer.alloc(32, 7);

/** What a sidecar does: a P-256 key of its own, and a request for it (names it asks for are ignored). */
async function keyAndRequest(alg: EcKeyGenParams | RsaHashedKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' }) {
  const keys = (await crypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const signingAlgorithm = alg.name === 'ECDSA' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'RSASSA-PKCS1-v1_5' };
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=claims-to-be-admin', keys, signingAlgorithm, extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://cluster.local/ns/kube-system/sa/admin' }])] });
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`;
  return { csr: csr.toString('pem'), keyPem };
}

test('the root is made on first start, kept in the store with its key sealed, and the same on every later start', async () => {
  const dir = tmpDir('ca');
  const store = new SqliteStore(`${dir}/weft.db`);
  const a = await CertificateAuthority.open({ store, kek });
  const b = await CertificateAuthority.open({ store, kek });
  assert.equal(a.trustBundle(), b.trustBundle());
  const stored = store.getSecret('ca/root')!;
  assert.ok(!stored.includes('PRIVATE KEY'), 'no plaintext key in the store');
  assert.equal(JSON.parse(stored).roots[0].key.alg, 'A256GCM');
  // A store from before rotation kept one root record alone: it still opens, as the same root.
  const legacy = new SqliteStore(':memory:');
  legacy.putSecret('ca/root', JSON.stringify(JSON.parse(stored).roots[0]));
  assert.equal((await CertificateAuthority.open({ store: legacy, kek })).trustBundle(), a.trustBundle());
  legacy.close();
  const root = new X509Certificate(a.trustBundle());
  assert.equal(root.ca, true);
  assert.match(root.subject, /CN=Weft root CA/);
  await assert.rejects(CertificateAuthority.open({ store, kek: Buffer.alloc(32, 8) }), (e: Error) => e instanceof CaError && /cannot be opened with this key-encryption key/.test(e.message));
  assert.equal(store.revision(), 0, 'a secret is no config change');
  assert.deepEqual(store.list(), []);
  store.close();
});

test('the key-encryption key: made once in the data directory, its owner\'s alone, the same on every later start; WEFT_CA_KEK instead; a bad one refused naming where it came from', () => {
  const dir = tmpDir('kek');
  const first = loadOrCreateKek(dir, {});
  assert.equal(first.length, 32);
  assert.equal(fs.statSync(path.join(dir, KEK_FILE)).mode & 0o777, 0o600);
  assert.deepEqual(loadOrCreateKek(dir, {}), first, 'a restart opens the root with the same key');
  const fromEnv = Buffer.alloc(32, 9);
  assert.deepEqual(loadOrCreateKek(dir, { WEFT_CA_KEK: fromEnv.toString('base64') }), fromEnv);
  assert.throws(() => loadOrCreateKek(dir, { WEFT_CA_KEK: 'c2hvcnQ=' }), /WEFT_CA_KEK must be 32 bytes in base64, not 5/);
  fs.writeFileSync(path.join(dir, KEK_FILE), 'c2hvcnQ=\n');
  assert.throws(() => loadOrCreateKek(dir, {}), (e: Error) => e instanceof CaError && e.message.includes(`${path.join(dir, KEK_FILE)} must hold 32 bytes`));
});

test('two control planes on one store agree on one root', async () => {
  const store = new SqliteStore(`${tmpDir('ca2')}/weft.db`);
  const [a, b] = await Promise.all([CertificateAuthority.open({ store, kek }), CertificateAuthority.open({ store, kek })]);
  assert.equal(a.trustBundle(), b.trustBundle());
  store.close();
});

test('a workload certificate: the identity proven, not the one asked for, as its only SAN; 24 h; chained to the root', async () => {
  const store = new SqliteStore(':memory:');
  let now = Date.parse('2026-12-06T10:00:00Z');
  const ca = await CertificateAuthority.open({ store, kek, trustDomain: 'weft.example', now: () => now });
  const { csr } = await keyAndRequest();
  const issued = await ca.sign(csr, { namespace: 'default', serviceAccount: 'reviews' });
  const cert = new X509Certificate(issued.certificate);
  assert.equal(cert.subjectAltName, 'URI:spiffe://weft.example/ns/default/sa/reviews');
  assert.equal(issued.spiffeId, 'spiffe://weft.example/ns/default/sa/reviews');
  assert.equal(cert.ca, false);
  assert.equal(Date.parse(cert.validTo), now + 24 * 3600_000);
  assert.ok(cert.verify(new X509Certificate(ca.trustBundle()).publicKey), 'signed by the root');
  assert.ok(cert.checkIssued(new X509Certificate(ca.trustBundle())));
  const short = new X509Certificate((await ca.sign(csr, { namespace: 'default', serviceAccount: 'reviews' }, 10_000)).certificate);
  assert.equal(Date.parse(short.validTo), now + 10_000);
  now += 1;
  store.close();
});

test('refused with a clear reason: another key type, a request not signed by its key, garbage, a huge request, names that are no Kubernetes names', async () => {
  const store = new SqliteStore(':memory:');
  const ca = await CertificateAuthority.open({ store, kek });
  const id = { namespace: 'default', serviceAccount: 'reviews' };
  const rsa = await keyAndRequest({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' });
  await assert.rejects(ca.sign(rsa.csr, id), /key is RSASSA-PKCS1-v1_5; workload keys are ECDSA P-256/);
  const p384 = await keyAndRequest({ name: 'ECDSA', namedCurve: 'P-384' });
  await assert.rejects(ca.sign(p384.csr, id), /key is ECDSA P-384/);
  // Another key's signature on this request: the bytes of the signature altered.
  const good = await keyAndRequest();
  const der = Buffer.from(good.csr.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  der[der.length - 3] ^= 0xff;
  const forged = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  await assert.rejects(ca.sign(forged, id), (e: Error) => e instanceof CaError);
  await assert.rejects(ca.sign('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', id), /cannot be read/);
  await assert.rejects(ca.sign('x'.repeat(20_000), id), /at most 16384 bytes/);
  await assert.rejects(ca.sign(good.csr, { namespace: 'Default', serviceAccount: 'a/b' }), /not Kubernetes names/);
  store.close();
});

test('mutual TLS between two workloads of the mesh works with their certificates; another CA\'s certificate is refused at the handshake', async () => {
  const store = new SqliteStore(':memory:');
  const ca = await CertificateAuthority.open({ store, kek });
  const mint = async (serviceAccount: string) => {
    const { csr, keyPem } = await keyAndRequest();
    return { cert: (await ca.sign(csr, { namespace: 'default', serviceAccount })).certificate, key: keyPem };
  };
  const reviews = await mint('reviews');
  const productpage = await mint('productpage');
  assert.equal(await handshake(reviews, productpage, ca.trustBundle()), 'URI:spiffe://cluster.local/ns/default/sa/productpage');
  const other = await CertificateAuthority.open({ store: new SqliteStore(':memory:'), kek });
  const { csr, keyPem } = await keyAndRequest();
  const stranger = { cert: (await other.sign(csr, { namespace: 'default', serviceAccount: 'productpage' })).certificate, key: keyPem };
  // TLS 1.3: the client may finish before the server refuses its certificate; either way no exchange.
  assert.equal(await handshake(reviews, stranger, ca.trustBundle()).catch(() => ''), '', 'another CA\'s certificate: no exchange');
  store.close();
});

test('an expired certificate is refused at the handshake', async () => {
  const store = new SqliteStore(':memory:');
  const ca = await CertificateAuthority.open({ store, kek, now: () => Date.now() - 48 * 3600_000 });
  const { csr, keyPem } = await keyAndRequest();
  const old = { cert: (await ca.sign(csr, { namespace: 'default', serviceAccount: 'a' })).certificate, key: keyPem };
  const fresh = await CertificateAuthority.open({ store, kek });
  const k2 = await keyAndRequest();
  const now = { cert: (await fresh.sign(k2.csr, { namespace: 'default', serviceAccount: 'b' })).certificate, key: k2.keyPem };
  assert.equal(await handshake(now, old, ca.trustBundle()).catch(() => ''), '', 'an expired certificate: no exchange');
  // The same certificates the other way round: the client refuses the expired server.
  assert.equal(await handshake(old, now, ca.trustBundle()).catch(() => ''), '');
  store.close();
});

test('review: a crafted PEM that made the library\'s parser backtrack for hours is refused at once', async () => {
  const store = new SqliteStore(':memory:');
  const ca = await CertificateAuthority.open({ store, kek });
  const hostile = '-----BEGIN X-----\na: b\n' + ' a: b\n'.repeat(60) + '!';
  const t0 = performance.now();
  await assert.rejects(ca.sign(hostile, { namespace: 'a', serviceAccount: 'b' }), (e: Error) => e instanceof CaError);
  // 28 such lines took 1.8 s, each one more doubling it; the bound is generous.
  assert.ok(performance.now() - t0 < 1000, `${performance.now() - t0} ms`);
  const headers = '-----BEGIN CERTIFICATE REQUEST-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END CERTIFICATE REQUEST-----\n';
  await assert.rejects(ca.sign(headers, { namespace: 'a', serviceAccount: 'b' }), /cannot be read/);
  store.close();
});

test('review: a root certificate swapped in the store (by someone without the key-encryption key) does not open; an expired root issues nothing', async () => {
  const store = new SqliteStore(':memory:');
  await CertificateAuthority.open({ store, kek });
  const other = new SqliteStore(':memory:');
  const stranger = await CertificateAuthority.open({ store: other, kek });
  const record = JSON.parse(store.getSecret('ca/root')!);
  const swapped = { getSecret: () => JSON.stringify({ ...record, roots: [{ ...record.roots[0], certificate: stranger.trustBundle() }] }), putSecretIfAbsent: () => '', putSecret: () => {} };
  await assert.rejects(CertificateAuthority.open({ store: swapped, kek }), /stored root altered/);
  // Ten years and a day later.
  const late = await CertificateAuthority.open({ store, kek, now: () => Date.now() + 3_660 * 24 * 3600_000 });
  const { csr } = await keyAndRequest();
  await assert.rejects(late.sign(csr, { namespace: 'default', serviceAccount: 'a' }), /the CA certificate .*Weft root CA.* expired at/);
  store.close();
  other.close();
});

test('a root rotation is kept in the store: a restarted control plane trusts both roots, signs with the one it signed with, and knows how long the old root is needed', async () => {
  const store = new SqliteStore(':memory:');
  let now = Date.now();
  const a = await CertificateAuthority.open({ store, kek, now: () => now });
  const { csr } = await keyAndRequest();
  const id = { namespace: 'default', serviceAccount: 'a' };
  const old = new X509Certificate(a.trustBundle());
  const oldLeaf = await a.sign(csr, id, 60_000);
  await assert.rejects(a.dropOldRoots(), /no root rotation is under way/);
  await a.rotateRoot();
  await assert.rejects(a.rotateRoot(), /a root rotation is under way/);
  assert.equal(a.status().rotation.phase, 'distributing');
  assert.ok(new X509Certificate((await a.sign(csr, id)).certificate).checkIssued(old), 'the old root signs while the bundle is distributed');
  await assert.rejects(a.dropOldRoots(), /the new root does not sign yet/);
  assert.equal(await a.useNewRoot(), true);
  // A restart: the same bundle, the new root signing, the old root needed until its last leaf expires.
  const b = await CertificateAuthority.open({ store, kek, now: () => now });
  assert.equal(b.trustBundle(), a.trustBundle());
  const [, fresh] = b.trustBundle().split(/(?<=-----END CERTIFICATE-----\n)/).map((p) => new X509Certificate(p));
  assert.ok(new X509Certificate((await b.sign(csr, id)).certificate).checkIssued(fresh));
  assert.equal(b.status().rotation.phase, 'signing-with-new-root');
  // The last old-root certificate (24 h, the one signed while distributing) bounds it, with the stored margin.
  const until = Date.parse(b.status().rotation.oldRootsNeededUntil!);
  assert.ok(until >= oldLeaf.notAfter.getTime() && until >= now + 24 * 3600_000 - 60_000, `needed until ${new Date(until).toISOString()}`);
  await assert.rejects(b.dropOldRoots(), /may be in use until/);
  now = until + 1;
  await b.dropOldRoots();
  assert.equal(b.trustBundle(), fresh.toString());
  assert.equal((await CertificateAuthority.open({ store, kek, now: () => now })).trustBundle(), fresh.toString(), 'and so it stays');
  store.close();
});

test('a plugged-in CA with an RSA intermediate signs workload certificates that verify against it, carrying it as their chain', async () => {
  const { dir } = pluggedCa({ rsa: true });
  const ca = await CertificateAuthority.open({ store: new SqliteStore(':memory:'), kek, caDir: dir });
  const { csr } = await keyAndRequest();
  const issued = await ca.sign(csr, { namespace: 'default', serviceAccount: 'a' });
  const intermediate = new X509Certificate(fs.readFileSync(path.join(dir, 'ca-cert.pem')));
  const leaf = new X509Certificate(issued.certificate);
  assert.ok(leaf.checkIssued(intermediate) && leaf.verify(intermediate.publicKey));
  assert.deepEqual(issued.chain.map((c) => new X509Certificate(c).fingerprint256), [intermediate.fingerprint256]);
  assert.equal(issued.trustBundle, fs.readFileSync(path.join(dir, 'root-cert.pem'), 'utf8'));
  assert.ok(leaf.validToDate.getTime() <= intermediate.validToDate.getTime());
  await assert.rejects(ca.rotateRoot(), /plugged in from/);
});

test('a plugged-in root-cert.pem may hold two roots (changing a plugged-in root, docs/ca.md): the chain leads to one, and both are the trust bundle', async () => {
  const { work } = pluggedCa();
  makeRoot(work, 'Next Root CA', 'next-root-cert.pem', 'next-root-key.pem');
  const dir = cacertsDir(work, 'two-roots', { cert: 'intermediate-cert.pem', key: 'intermediate-key.pem', chain: ['intermediate-cert.pem'], roots: ['next-root-cert.pem', 'root-cert.pem'] });
  const ca = await CertificateAuthority.open({ store: new SqliteStore(':memory:'), kek, caDir: dir });
  assert.equal(ca.trustBundle(), fs.readFileSync(path.join(dir, 'root-cert.pem'), 'utf8'));
  assert.deepEqual(ca.status().roots.map((r) => r.subject), ['O=Example Corp, CN=Next Root CA', 'O=Example Corp, CN=Example Root CA']);
});

test("the mesh config's trust domain: certificates issued after a change name the new one; renewals and xDS take certificates of the trust domain or an alias, not of another", async () => {
  const { callerIdentity } = await import('../../src/control/ca/service.ts');
  const store = new SqliteStore(':memory:');
  const ca = await CertificateAuthority.open({ store, kek });
  const { csr } = await keyAndRequest();
  const id = { namespace: 'foo', serviceAccount: 'sleep' };
  const old = new X509Certificate((await ca.sign(csr, id)).certificate);
  assert.equal(old.subjectAltName, 'URI:spiffe://cluster.local/ns/foo/sa/sleep');
  ca.setTrustDomain('new-td', ['cluster.local']);
  assert.equal(new X509Certificate((await ca.sign(csr, id)).certificate).subjectAltName, 'URI:spiffe://new-td/ns/foo/sa/sleep');
  assert.deepEqual(ca.trustDomains(), ['new-td', 'cluster.local']);
  // What a TLS call shows of its peer: the verified certificate's SAN.
  const call = (td: string) => ({ getAuthContext: () => ({ sslPeerCertificate: { subjectaltname: `URI:spiffe://${td}/ns/foo/sa/sleep` } as tls.PeerCertificate }) });
  assert.deepEqual(callerIdentity(call('cluster.local'), ca.trustDomains()), id, 'the alias: a sidecar not yet renewed');
  assert.deepEqual(callerIdentity(call('new-td'), ca.trustDomains()), id);
  assert.equal(callerIdentity(call('other-td'), ca.trustDomains()), undefined);
  ca.setTrustDomain('new-td');
  assert.equal(callerIdentity(call('cluster.local'), ca.trustDomains()), undefined, 'no longer an alias');
  store.close();
});
