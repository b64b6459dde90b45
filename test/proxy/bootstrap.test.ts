// A sidecar proves who it is before it gets anything (real `weft proxy` processes, a real control
// plane): its join token buys its workload certificate once; a used, expired or missing token, or a
// control plane that is not the mesh's, ends its start with a clear error and no config.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { request } from 'undici';
import { type ControlPlane, startControlPlane } from '../../src/control/control-plane.ts';
import { freePort } from '../../src/util/net.ts';
import { CLI, lineMatching, tmpDir, waitFor } from '../helpers.ts';
import { workloadCert } from '../fixtures/mesh-creds.ts';
import { sidecarCredentials, spawnSidecar, stopProc } from './mesh.ts';

/** `weft proxy` with this token and root; resolves with its exit code and stderr (it is expected to stop by itself). */
function proxyExit(cp: ControlPlane, env: NodeJS.ProcessEnv, extra: string[] = []): Promise<{ code: number | null; stderr: string; proc: ChildProcess }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [CLI, 'proxy', '--xds', cp.xdsAddress, '--workload', 'intruder', ...extra], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WEFT_JOIN_TOKEN: '', ...env } });
    let stderr = '';
    proc.stderr!.on('data', (d) => (stderr += d));
    const t = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    proc.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stderr, proc });
    });
  });
}

describe('sidecar bootstrap: join token, certificate, mTLS xDS (real processes)', () => {
  let cp: ControlPlane;
  const logs: string[] = [];
  before(async () => {
    cp = await startControlPlane({ dataDir: tmpDir('bootstrap'), adminPort: 0, xdsPort: 0, log: (m) => logs.push(m) });
  });
  after(async () => {
    await cp?.close();
  });

  test('a sidecar with a good token holds a certificate for its identity, shows it on /certs (never its key), and is registered with it', async () => {
    const sc = await spawnSidecar(cp, ['--workload', 'reviews-v1', '--namespace', 'default', '--outbound-port', String(await freePort())]);
    try {
      const certs = (await (await request(`${sc.admin}/certs`)).body.json()) as Record<string, string>;
      assert.equal(certs.identity, 'spiffe://cluster.local/ns/default/sa/default');
      assert.ok(!JSON.stringify(certs).includes('PRIVATE KEY'), 'no key on /certs');
      const cert = new X509Certificate(certs.certificate);
      assert.equal(cert.subject, 'CN=reviews-v1');
      assert.ok(cert.checkIssued(new X509Certificate(cp.trustBundle)));
      const hours = (cert.validToDate.getTime() - Date.now()) / 3600_000;
      assert.ok(hours > 23 && hours <= 24.1, `24 h by default, got ${hours}`);
      const p = await waitFor('the proxy to be registered', async () => cp.ads.proxies().find((x) => x.workload.name === 'reviews-v1'));
      assert.equal(p.workload.serviceAccount, 'default');
    } finally {
      await stopProc(sc.proc);
    }
  });

  test('a used token, an expired token, a made-up token: the sidecar stops at once, saying why, and is never registered', async () => {
    const used = cp.joinTokens.create({ workload: 'intruder', namespace: 'default', serviceAccount: 'default' }).token;
    cp.joinTokens.redeem(used);
    const made = cp.joinTokens.create({ workload: 'intruder', namespace: 'default', serviceAccount: 'default' }, 1);
    const expired = made.token;
    // Redeemed only once past its end (redeemed within its 1 ms, it would simply be spent).
    await waitFor('the 1 ms token to expire', async () => Date.now() > made.expiresAt.getTime());
    assert.throws(() => cp.joinTokens.redeem(expired), /expired/);
    // (redeem() above spent it after expiry: the sidecar then sees "unknown or used". An expired,
    // unspent one is checked in test/control/join.test.ts and says "expired".)
    for (const [token, why] of [[used, /unknown or was used already/], [expired, /unknown or was used already/], ['weft-join.madeup', /unknown or was used already/], ['not-a-token', /not a Weft join token/]] as const) {
      const r = await proxyExit(cp, { WEFT_JOIN_TOKEN: token }, ['--ca-cert', cp.rootCertFile]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, why);
      assert.match(r.stderr, /no workload certificate/);
    }
    assert.ok(!cp.ads.proxies().some((p) => p.workload.name === 'intruder'));
  });

  test('no token at all: a usage error naming WEFT_JOIN_TOKEN and --join-token-file', async () => {
    const r = await proxyExit(cp, {}, ['--ca-cert', cp.rootCertFile]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /WEFT_JOIN_TOKEN.*--join-token-file/);
  });

  test('a control plane whose certificate does not chain to the root the sidecar trusts: refused at the handshake, and the token is not spent', async () => {
    const other = await startControlPlane({ dataDir: tmpDir('bootstrap-other'), adminPort: 0, xdsPort: 0 });
    await other.close();
    const { token } = cp.joinTokens.create({ workload: 'intruder', namespace: 'default', serviceAccount: 'default' });
    const r = await proxyExit(cp, { WEFT_JOIN_TOKEN: token }, ['--ca-cert', other.rootCertFile]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /certificate was refused/);
    assert.doesNotThrow(() => cp.joinTokens.redeem(token), 'the token was never sent');
  });

  test("a workload of the mesh posing as the control plane (its certificate chains to the root, but names the workload): refused, and the token is not spent", async () => {
    const { keyPem, certPem } = await workloadCert(cp, { workload: 'impostor' });
    const server = new grpc.Server();
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(keyPem), cert_chain: Buffer.from(certPem) }]), (e, p) => (e ? reject(e) : resolve(p))));
    try {
      const { token } = cp.joinTokens.create({ workload: 'intruder', namespace: 'default', serviceAccount: 'default' });
      const r = await proxyExit({ ...cp, xdsAddress: `127.0.0.1:${port}` }, { WEFT_JOIN_TOKEN: token }, ['--ca-cert', cp.rootCertFile]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /not the control plane's \(it is for spiffe:\/\/cluster\.local\/ns\/default\/sa\/default\)/);
      assert.doesNotThrow(() => cp.joinTokens.redeem(token), 'the token was never sent');
    } finally {
      server.forceShutdown();
    }
  });

  test('renewal at half life, for a new key, with the current certificate as the credential; the xDS stream stays up throughout', async (t) => {
    const renewals = () => logs.filter((l) => l.includes('(workload default/renewing)') && l.includes('on its current certificate')).length;
    const sc = await spawnSidecar(cp, ['--workload', 'renewing', '--cert-ttl', '3s', '--outbound-port', String(await freePort())]);
    try {
      const seen = new Set<string>();
      const t0 = Date.now();
      await waitFor('three certificates in turn', async () => {
        const c = (await (await request(`${sc.admin}/certs`)).body.json()) as Record<string, string>;
        seen.add(c.certificate);
        return seen.size >= 3;
      }, 30_000, 100);
      const elapsed = Date.now() - t0;
      t.diagnostic(`3 certificates in ${elapsed} ms (3 s life, renewed at half: about 1.5 s each); ${renewals()} renewals logged`);
      // At half a 3 s life: a handful in that time, not a loop (the CA backdates notBefore a minute,
      // and counting from it renewed at once, without end).
      assert.ok(renewals() >= 2 && renewals() <= 2 + Math.ceil(elapsed / 1000), `${renewals()} renewals in ${elapsed} ms`);
      const dump = (await (await request(`${sc.admin}/config_dump`)).body.json()) as any;
      assert.equal(dump.xds.connected, true);
      assert.equal(dump.xds.reconnects, 0, 'renewal does not touch the xDS stream');
      assert.ok(!sc.stderr().includes('renewal failed'), sc.stderr());
    } finally {
      await stopProc(sc.proc);
    }
  });

  test("a sidecar started with --namespace default whose token is for shop is shop's: its node id and metadata follow its certificate, and it gets ready", async () => {
    const { token } = cp.joinTokens.create({ workload: 'reviews-v9', namespace: 'shop', serviceAccount: 'reviews' });
    const creds = sidecarCredentials(cp, []);
    const proc = spawn(process.execPath, [CLI, 'proxy', '--xds', cp.xdsAddress, ...creds.args, '--workload', 'other-name', '--namespace', 'default', '--outbound-port', String(await freePort())], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WEFT_JOIN_TOKEN: token } });
    let stderr = '';
    proc.stderr!.on('data', (d) => (stderr += d));
    try {
      const ready = JSON.parse((await lineMatching(proc, /^WEFT_READY /)).slice('WEFT_READY '.length));
      assert.match(ready.node, /^sidecar~127\.0\.0\.1~reviews-v9-\d+-[0-9a-f]+\.shop~shop\.svc\.cluster\.local$/);
      assert.match(stderr, /its certificate is for workload shop\/reviews-v9, not default\/other-name/);
      const p = cp.ads.proxies().find((x) => x.id === ready.node);
      assert.deepEqual([p?.workload.namespace, p?.workload.name], ['shop', 'reviews-v9']);
    } finally {
      await stopProc(proc);
    }
  });

  test('an answer from the certificate API that cannot be read, or whose roots did not sign it, ends the start with an error saying so (no stack trace)', async () => {
    // A server with a genuine control-plane certificate (signed here by the CA itself), answering garbage.
    const { newKeyAndRequest } = await import('../../src/util/csr.ts');
    const { keyPem, csrPem } = newKeyAndRequest();
    const issued = await cp.ca.sign(csrPem, { namespace: 'weft-system', serviceAccount: 'weft-control' });
    const { CERTIFICATE_SERVICE } = await import('../../src/control/ca/service.ts');
    for (const [chain, why] of [[['garbage', 'more garbage'], /answered a certificate that cannot be read/], [[issued.certificate, (await workloadCert(cp)).certPem], /none of the roots it sent signed|another key/]] as const) {
      const server = new grpc.Server();
      server.addService(CERTIFICATE_SERVICE, { CreateCertificate: (_c: unknown, done: grpc.sendUnaryData<{ cert_chain: readonly string[] }>) => done(null, { cert_chain: chain }) });
      const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(keyPem), cert_chain: Buffer.from(issued.certificate) }]), (e, p) => (e ? reject(e) : resolve(p))));
      try {
        const { token } = cp.joinTokens.create({ workload: 'intruder', namespace: 'default', serviceAccount: 'default' });
        const r = await proxyExit({ ...cp, xdsAddress: `127.0.0.1:${port}` }, { WEFT_JOIN_TOKEN: token }, ['--ca-cert', cp.rootCertFile]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, why);
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      } finally {
        server.forceShutdown();
      }
    }
  });
});

