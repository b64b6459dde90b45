// Rotating the mesh's root while traffic flows, through real sidecars with automatic mTLS between
// them (every request a new mTLS connection: DestinationRule maxRequestsPerConnection 1), and
// workload certificates of 6 s renewed every 3 s. `weft ca rotate-root`: the new root reaches
// both sidecars' trust bundles, but the old root keeps signing while a third proxy (a raw xDS
// client) has not ACKed the bundle; once it has, the new root signs; the sidecars renew onto it; `weft ca finish-rotation`
// is refused while a certificate of the old root may be valid, then drops it from every bundle
// and root-cert.pem. Not one request fails at any point.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { Agent, request } from 'undici';
import { type ControlPlane, startControlPlane } from '../../src/control/control-plane.ts';
import { pemCertificates } from '../../src/util/pem.ts';
import * as grpc from '@grpc/grpc-js';
import { ROOTCA, TYPE } from '../../src/xds/protos.ts';
import { META } from '../../src/xds/node-meta.ts';
import { tmpDir, waitFor } from '../helpers.ts';
import { newKeyAndRequest } from '../../src/util/csr.ts';
import { RawStream } from '../fixtures/raw-ads.ts';
import type { SidecarProc } from '../proxy/mesh.ts';
import { type Certs, type RotatingPair, caCommand, certsOf, finishRotationWhenAllowed, getThrough, startRotatingPair, traffic } from '../fixtures/rotating-pair.ts';

let cp: ControlPlane;
let pair: RotatingPair;
let sidecars: SidecarProc[] = [];
let outbound = 0;
const logs: string[] = [];

before(async () => {
  cp = await startControlPlane({ dataDir: tmpDir('ca-rotation'), adminPort: 0, xdsPort: 0, log: (m) => logs.push(m) });
  pair = await startRotatingPair(cp);
  ({ sidecars, outbound } = pair);
});
after(async () => {
  await pair?.close();
  await cp?.close();
});

const fingerprints = (pem: string) => pemCertificates(pem).map((p) => new X509Certificate(p).fingerprint256);
const signedBy = (c: Certs, root: X509Certificate) => {
  const leaf = new X509Certificate(pemCertificates(c.certificate)[0]);
  return leaf.checkIssued(root) && leaf.verify(root.publicKey);
};

test('root rotation under traffic: the bundle of both roots reaches every sidecar, the new root signs, the old one leaves; no request fails', async (t) => {
  const ca = (...args: string[]) => caCommand(cp, ...args);
  const oldRoot = new X509Certificate(cp.trustBundle);
  const first = new Agent({ connections: 1 });
  await waitFor('the first request through the mesh', async () => (await getThrough(outbound, first).catch(() => '')) === 'ok', 15_000);
  await first.close();
  const handshakes = async () => ((await (await request(`${sidecars[0].admin}/stats`)).body.json()) as { tls: { downstream: { handshakes: number } } }).tls.downstream.handshakes;
  const handshakes0 = await handshakes();

  // Traffic all along: four clients, one request after another each, until the rotation is done
  // (at most 100,000 requests in all).
  const load = traffic(outbound, 4);
  let outcomes: Record<string, number> = {};
  const requestsSince = (n: number) => load.more(n);
  // A proxy that holds back its ACK of the new bundle: until it ACKs, the old root signs.
  // (Its certificate lives 6 s like the sidecars': the old root is needed as long as any lives.)
  const { keyPem, csrPem } = newKeyAndRequest();
  const laggardCert = await cp.ca.sign(csrPem, { namespace: 'default', serviceAccount: 'default', workload: 'laggard' }, 6000);
  const creds = grpc.credentials.createSsl(Buffer.from(cp.trustBundle), Buffer.from(keyPem), Buffer.from(laggardCert.certificate), { checkServerIdentity: () => undefined });
  const grpcClient = new grpc.Client(cp.xdsAddress, creds);
  const laggard = new RawStream(grpcClient);
  laggard.send({ type_url: TYPE.secret, resource_names: [ROOTCA], node: { id: 'sidecar~127.0.0.1~laggard-1.default~default.svc.cluster.local', metadata: { [META.labels]: {}, [META.outboundPort]: 15001, [META.workload]: 'laggard' } } });
  const ack = (r: { version_info: string; nonce: string }) => laggard.send({ type_url: TYPE.secret, resource_names: [ROOTCA], version_info: r.version_info, response_nonce: r.nonce });
  ack(await laggard.next(10_000));
  try {
    await requestsSince(load.sent() + 50);
    assert.match((await ca('finish-rotation')).stderr, /no root rotation is under way/);

    // Step 1: a new root in the bundle, the old one signing still.
    const started = await ca('rotate-root');
    assert.ok(started.ok, started.stderr);
    const bundle = fs.readFileSync(cp.rootCertFile, 'utf8');
    const [old, fresh] = fingerprints(bundle);
    assert.equal(old, oldRoot.fingerprint256, 'root-cert.pem: the old root first');
    assert.ok(fresh && fresh !== old, 'and the new root beside it');
    const newRoot = new X509Certificate(pemCertificates(bundle)[1]);
    for (const s of sidecars) {
      await waitFor(`the bundle of both roots at ${s.admin}`, async () => (await certsOf(s)).roots === bundle, 15_000);
    }
    const held = await laggard.next(10_000);
    assert.equal(held.type_url, TYPE.secret);
    // While the laggard has not ACKed, the old root signs: a sidecar renewing now gets an old-root certificate.
    const before = await certsOf(sidecars[1]);
    const renewed = await waitFor('a renewal of the client sidecar', async () => {
      const c = await certsOf(sidecars[1]);
      return c.certificate !== before.certificate && c;
    }, 15_000);
    assert.ok(signedBy(renewed, oldRoot), 'renewed while a proxy lacks the bundle: still the old root');
    const waiting = await ca('status');
    assert.match(waiting.stdout, /the new root is being sent to every sidecar; the old root still signs/);
    assert.match(waiting.stdout, /sidecars without the current trust bundle: .*laggard/);
    ack(held);
    // Step 2, by itself once every sidecar holds the bundle: the new root signs; sidecars renew onto it.
    await waitFor('the new root to sign', async () => (await ca('status')).stdout.includes('the new root signs'), 15_000);
    for (const s of sidecars) {
      await waitFor(`a certificate of the new root at ${s.admin}`, async () => signedBy(await certsOf(s), newRoot), 15_000);
    }
    await requestsSince(load.sent() + 50);
    // Step 3: refused while a certificate of the old root may be valid, then done.
    await finishRotationWhenAllowed(cp);
    assert.deepEqual(fingerprints(fs.readFileSync(cp.rootCertFile, 'utf8')), [newRoot.fingerprint256], 'root-cert.pem: the new root only');
    for (const s of sidecars) {
      await waitFor(`the new root alone at ${s.admin}`, async () => {
        const c = await certsOf(s);
        return fingerprints(c.roots).join() === newRoot.fingerprint256 && signedBy(c, newRoot);
      }, 15_000);
    }
    await requestsSince(load.sent() + 100);
    const status = await ca('status');
    assert.match(status.stdout, /root rotation: none/);
  } finally {
    outcomes = await load.stop();
    laggard.call.cancel();
    grpcClient.close();
  }
  const sent = load.sent();
  const made = (await handshakes()) - handshakes0;
  t.diagnostic(`${sent} requests, ${made} mTLS handshakes at the api sidecar; outcomes ${JSON.stringify(outcomes)}`);
  assert.deepEqual(outcomes, { ok: sent }, 'every request succeeds');
  assert.ok(made >= sent * 0.9, `every request was a new mTLS connection: ${made} handshakes for ${sent} requests`);
  assert.ok(!logs.some((l) => /PRIVATE KEY/.test(l)), 'no key in the log');
});
