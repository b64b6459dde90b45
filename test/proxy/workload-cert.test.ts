// The sidecar's certificate holder against a real control plane: when the control plane is out of
// reach past the certificate's end, the certificate cannot be renewed with itself any more; it
// says so once, and a new join token (here from `rejoin`, as a rewritten --join-token-file gives
// one) buys a new certificate once the control plane is back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startControlPlane } from '../../src/control/control-plane.ts';
import { WorkloadCertificates } from '../../src/proxy/identity/workload-cert.ts';
import { freePort } from '../../src/util/net.ts';
import { tmpDir, waitFor } from '../helpers.ts';

test('expired while the control plane was away: said once, then a new join token buys a new certificate', async () => {
  const dataDir = tmpDir('wc-expired');
  const xdsPort = await freePort();
  let cp = await startControlPlane({ dataDir, adminPort: 0, xdsPort });
  const logs: string[] = [];
  let second: string | undefined;
  const certs = new WorkloadCertificates({
    server: cp.xdsAddress,
    rootPem: cp.trustBundle,
    joinToken: cp.joinTokens.create({ workload: 'lonely', namespace: 'default', serviceAccount: 'default' }).token,
    validityS: 2,
    rejoin: () => second,
    expiredRetryMs: 200,
    log: (m) => logs.push(m),
  });
  try {
    const first = await certs.start();
    await cp.close();
    await waitFor('the certificate to expire, said once', async () => logs.some((l) => l.includes('can no longer be renewed with itself')), 15_000, 50);
    cp = await startControlPlane({ dataDir, adminPort: 0, xdsPort });
    second = cp.joinTokens.create({ workload: 'lonely', namespace: 'default', serviceAccount: 'default' }).token;
    await waitFor('a certificate bought with the new token', async () => logs.some((l) => l.includes('bought again with a new join token')), 15_000, 50);
    assert.notEqual(certs.current().certPem, first.certPem);
    assert.ok(certs.current().notAfter > Date.now(), 'the new one is current');
    assert.equal(logs.filter((l) => l.includes('can no longer be renewed with itself')).length, 1, `said once:\n${logs.join('\n')}`);
  } finally {
    certs.stop();
    await cp.close();
  }
});

test('expired across a root rotation: the new join token is spent against the roots the sidecar was last sent, not the root file it started with', async () => {
  const dataDir = tmpDir('wc-rotated');
  const xdsPort = await freePort();
  let cp = await startControlPlane({ dataDir, adminPort: 0, xdsPort });
  const logs: string[] = [];
  let second: string | undefined;
  const certs = new WorkloadCertificates({
    server: cp.xdsAddress,
    rootPem: cp.trustBundle, // the old root alone, as root-cert.pem was when it started
    joinToken: cp.joinTokens.create({ workload: 'lonely', namespace: 'default', serviceAccount: 'default' }).token,
    validityS: 2,
    rejoin: () => second,
    expiredRetryMs: 200,
    log: (m) => logs.push(m),
  });
  try {
    await certs.start();
    await cp.ca.rotateRoot();
    certs.setRoots(cp.trustBundle); // what the control plane pushes (SDS ROOTCA): both roots
    await cp.close();
    await waitFor('the certificate to expire', async () => logs.some((l) => l.includes('can no longer be renewed with itself')), 15_000, 50);
    // Back, and the rotation finished: the control plane's certificate is under the new root only.
    cp = await startControlPlane({ dataDir, adminPort: 0, xdsPort });
    await cp.ca.dropOldRoots(true);
    second = cp.joinTokens.create({ workload: 'lonely', namespace: 'default', serviceAccount: 'default' }).token;
    await waitFor('a certificate bought with the new token', async () => logs.some((l) => l.includes('bought again with a new join token')), 15_000, 50);
    assert.equal(certs.current().rootsPem, cp.trustBundle, 'and with it the new root alone');
  } finally {
    certs.stop();
    await cp.close();
  }
});
