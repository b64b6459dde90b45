// The sidecar's certificate holder against a real control plane: when the control plane is out of
// reach past the certificate's end, the certificate cannot be renewed with itself any more; it
// says so once, and a new join token (here from `rejoin`, as a rewritten --join-token-file gives
// one) buys a new certificate once the control plane is back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ControlPlane, startControlPlane } from '../../src/control/control-plane.ts';
import { WorkloadCertificates } from '../../src/proxy/identity/workload-cert.ts';
import { freePort } from '../../src/util/net.ts';
import { tmpDir, waitFor } from '../helpers.ts';

/** The join token of workload "lonely" on `cp`. */
const tokenFor = (cp: ControlPlane): string => cp.joinTokens.create({ workload: 'lonely', namespace: 'default', serviceAccount: 'default' }).token;

/**
 * A control plane, and the 2 s certificates of workload "lonely", started with the
 * roots of that moment (as root-cert.pem was); its rejoin spends `rejoin.token` once the test sets it.
 */
async function lonelySidecar(name: string) {
  const dataDir = tmpDir(name);
  const xdsPort = await freePort();
  const cp = await startControlPlane({ dataDir, adminPort: 0, xdsPort });
  const logs: string[] = [];
  const rejoin: { token?: string } = {};
  const certs = new WorkloadCertificates({
    server: cp.xdsAddress,
    rootPem: cp.trustBundle,
    joinToken: tokenFor(cp),
    validityS: 2,
    rejoin: () => rejoin.token,
    expiredRetryMs: 200,
    log: (m) => logs.push(m),
  });
  return { dataDir, xdsPort, cp, logs, certs, rejoin };
}

test('expired while the control plane was away: said once, then a new join token buys a new certificate', async () => {
  const { dataDir, xdsPort, cp: started, logs, certs, rejoin } = await lonelySidecar('wc-expired');
  let cp = started;
  try {
    const first = await certs.start();
    await cp.close();
    await waitFor('the certificate to expire, said once', async () => logs.some((l) => l.includes('can no longer be renewed with itself')), 15_000, 50);
    cp = await startControlPlane({ dataDir, adminPort: 0, xdsPort });
    rejoin.token = tokenFor(cp);
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
  const { dataDir, xdsPort, cp: started, logs, certs, rejoin } = await lonelySidecar('wc-rotated');
  let cp = started;
  try {
    await certs.start();
    await cp.ca.rotateRoot();
    certs.setRoots(cp.trustBundle); // what the control plane pushes (SDS ROOTCA): both roots
    await cp.close();
    await waitFor('the certificate to expire', async () => logs.some((l) => l.includes('can no longer be renewed with itself')), 15_000, 50);
    // Back, and the rotation finished: the control plane's certificate is under the new root only.
    cp = await startControlPlane({ dataDir, adminPort: 0, xdsPort });
    await cp.ca.dropOldRoots(true);
    rejoin.token = tokenFor(cp);
    await waitFor('a certificate bought with the new token', async () => logs.some((l) => l.includes('bought again with a new join token')), 15_000, 50);
    assert.equal(certs.current().rootsPem, cp.trustBundle, 'and with it the new root alone');
  } finally {
    certs.stop();
    await cp.close();
  }
});
