// The certificate API (Istio's IstioCertificateService.CreateCertificate) on the control plane's
// gRPC port, with a real grpc-js client: a join token buys one certificate for the identity it
// proves; without a token, with a spent one, or with a request that cannot be signed, none (and a
// bad request does not spend the token).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { type ControlPlane, startControlPlane } from '../../src/control/control-plane.ts';
import { CERTIFICATE_SERVICE, type CertificateResponse } from '../../src/control/ca/service.ts';
import { crypto, x509 } from '../../src/control/ca/x509.ts';
import { tmpDir } from '../helpers.ts';
import { controlPlaneCredentials } from '../fixtures/mesh-creds.ts';

let cp: ControlPlane;
let client: grpc.Client & Record<string, any>;

before(async () => {
  cp = await startControlPlane({ dataDir: tmpDir('ca-service'), adminPort: 0, xdsPort: 0 });
  const Client = grpc.makeGenericClientConstructor(CERTIFICATE_SERVICE, 'IstioCertificateService');
  // TLS to the control plane, with no certificate of its own: a first call, with a join token.
  client = new Client(cp.xdsAddress, await controlPlaneCredentials(cp, null)) as grpc.Client & Record<string, any>;
});
after(async () => {
  client?.close();
  await cp?.close();
});

async function csr(): Promise<string> {
  const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  return (await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=anyone', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } })).toString('pem');
}

function create(request: object, token?: string): Promise<CertificateResponse> {
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  return new Promise((resolve, reject) => client.CreateCertificate(request, md, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res: CertificateResponse) => (err ? reject(err) : resolve(res))));
}

test('a join token buys a certificate for the identity it proves (what the request names is ignored), with the roots; once', async () => {
  const { token } = cp.joinTokens.create({ workload: 'reviews-v1', namespace: 'shop', serviceAccount: 'reviews' });
  const res = await create({ csr: await csr(), validity_duration: 3600 }, token);
  assert.equal(res.cert_chain.length, 2);
  const cert = new X509Certificate(res.cert_chain[0]);
  assert.equal(cert.subjectAltName, 'URI:spiffe://cluster.local/ns/shop/sa/reviews');
  assert.equal(res.cert_chain[1], cp.ca.trustBundle());
  assert.ok(cert.checkIssued(new X509Certificate(res.cert_chain[1])));
  const hours = (Date.parse(cert.validTo) - Date.now()) / 3600_000;
  assert.ok(hours > 0.9 && hours <= 1.01, `valid for ${hours} h (asked 1 h)`);
  await assert.rejects(create({ csr: await csr() }, token), (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED && /used already/.test(e.details));
});

test('no token, or a made-up one: UNAUTHENTICATED, naming what is missing', async () => {
  await assert.rejects(create({ csr: await csr() }), (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED && /weft token create/.test(e.details));
  await assert.rejects(create({ csr: await csr() }, 'weft-join.madeup'), (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED);
});

test('a request that cannot be signed is INVALID_ARGUMENT, and the token stays good', async () => {
  const { token } = cp.joinTokens.create({ workload: 'ratings-v1', namespace: 'default', serviceAccount: 'ratings' });
  await assert.rejects(create({ csr: 'garbage' }, token), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /cannot be read/.test(e.details));
  const res = await create({ csr: await csr() }, token);
  assert.equal(new X509Certificate(res.cert_chain[0]).subjectAltName, 'URI:spiffe://cluster.local/ns/default/sa/ratings');
});

/** A certificate client over mutual TLS, with `creds`. */
function clientWith(creds: grpc.ChannelCredentials): grpc.Client & Record<string, any> {
  const Client = grpc.makeGenericClientConstructor(CERTIFICATE_SERVICE, 'IstioCertificateService');
  return new Client(cp.xdsAddress, creds) as grpc.Client & Record<string, any>;
}
const call = (c: grpc.Client & Record<string, any>, request: object): Promise<CertificateResponse> =>
  new Promise((resolve, reject) => c.CreateCertificate(request, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res: CertificateResponse) => (err ? reject(err) : resolve(res))));

test('renewal: a workload presenting its certificate gets a new one for the same identity (and workload name), without a token', async () => {
  const c = clientWith(await controlPlaneCredentials(cp, { namespace: 'shop', serviceAccount: 'reviews', workload: 'reviews-v1' }));
  try {
    const res = await call(c, { csr: await csr() });
    const cert = new X509Certificate(res.cert_chain[0]);
    assert.equal(cert.subjectAltName, 'URI:spiffe://cluster.local/ns/shop/sa/reviews');
    assert.equal(cert.subject, 'CN=reviews-v1');
  } finally {
    c.close();
  }
});

test("a certificate of another CA buys nothing (UNAUTHENTICATED), and the control plane's own identity is never issued", async () => {
  const other = await startControlPlane({ dataDir: tmpDir('ca-other'), adminPort: 0, xdsPort: 0 });
  // Its key and certificate from the other mesh's CA, trusting this control plane's root.
  const foreign = await controlPlaneCredentials({ ca: other.ca, trustBundle: cp.trustBundle }, { namespace: 'shop', serviceAccount: 'reviews' });
  await other.close();
  const c = clientWith(foreign);
  try {
    await assert.rejects(call(c, { csr: await csr() }), (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED && /join token/.test(e.details));
  } finally {
    c.close();
  }
  assert.throws(() => cp.joinTokens.create({ workload: 'x', namespace: 'weft-system', serviceAccount: 'weft-control' }), /control plane's own identity/);
});

test('the port speaks TLS only: a plain-text client gets nothing', async () => {
  const c = clientWith(grpc.credentials.createInsecure());
  try {
    const { token } = cp.joinTokens.create({ workload: 'plain', namespace: 'default', serviceAccount: 'default' });
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${token}`);
    await assert.rejects(
      new Promise((resolve, reject) => c.CreateCertificate({ csr: 'x' }, md, { deadline: Date.now() + 3000 }, (err: unknown, res: unknown) => (err ? reject(err) : resolve(res)))),
      (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED,
    );
  } finally {
    c.close();
  }
});

test("a token naming the control plane's identity (stored before tokens were checked for it) buys nothing: PERMISSION_DENIED", async () => {
  // As JoinTokens stores a token: its SHA-256 under join/, with the identity.
  const token = 'weft-join.made-before-the-rule';
  const hash = (await import('node:crypto')).createHash('sha256').update(token).digest('hex');
  cp.store.putSecretIfAbsent(`join/${hash}`, JSON.stringify({ workload: 'x', namespace: 'weft-system', serviceAccount: 'weft-control', expiresAt: Date.now() + 60_000 }));
  await assert.rejects(create({ csr: await csr() }, token), (e: grpc.ServiceError) => e.code === grpc.status.PERMISSION_DENIED && /control plane's identity/.test(e.details));
});

test('a caller that gave up while its certificate was being signed keeps its token', async () => {
  const { token } = cp.joinTokens.create({ workload: 'patient', namespace: 'default', serviceAccount: 'default' });
  const sign = cp.ca.sign.bind(cp.ca);
  let signed!: () => void;
  const done = new Promise<void>((r) => (signed = r));
  cp.ca.sign = async (...args: Parameters<typeof sign>) => {
    await new Promise((r) => setTimeout(r, 1500));
    try {
      return await sign(...args);
    } finally {
      setImmediate(signed);
    }
  };
  try {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${token}`);
    const request = { csr: await csr() };
    await assert.rejects(
      new Promise((resolve, reject) => client.CreateCertificate(request, md, { deadline: Date.now() + 300 }, (err: unknown, res: unknown) => (err ? reject(err) : resolve(res)))),
      (e: grpc.ServiceError) => e.code === grpc.status.DEADLINE_EXCEEDED,
    );
    await done;
  } finally {
    cp.ca.sign = sign;
  }
  assert.doesNotThrow(() => cp.joinTokens.peek(token), 'the token is still good');
  const res = await create({ csr: await csr() }, token);
  assert.equal(new X509Certificate(res.cert_chain[0]).subject, 'CN=patient');
});

