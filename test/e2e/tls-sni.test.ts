// VirtualService tls routes through real sidecars: one service port (443, protocol TLS) served by
// two versions, each a real node:tls server; an app that CONNECTs to secure:443 through its
// sidecar and then speaks TLS in the tunnel reaches version a with SNI a.secure.example and
// version b with SNI b.secure.example, and either with any other name. The handshake is verified
// against the servers' certificate end to end: the sidecars forward the ClientHello unchanged.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { checkResource } from '../../src/api/index.ts';
import { type ControlPlane, startControlPlane } from '../../src/control/control-plane.ts';
import { freePort } from '../../src/util/net.ts';
import { tmpDir, waitFor } from '../helpers.ts';
import { type SidecarProc, spawnSidecar, stopMesh } from '../proxy/mesh.ts';
import { selfSigned } from '../fixtures/tls.ts';

const NAMES = ['a.secure.example', 'b.secure.example', 'c.secure.example'];
const pki = selfSigned(NAMES);
const skip = pki ? false : 'the openssl CLI is needed to make the servers\' certificate';

let cp: ControlPlane;
const servers: tls.Server[] = [];
const sidecars: SidecarProc[] = [];
let outbound = 0;
/** Connections each version's server saw that began with an HTTP request instead of a ClientHello (OpenSSL says "http request"). */
const notTls: Record<string, number> = { a: 0, b: 0 };

/** A TLS server that says its version and closes. */
async function tlsServer(version: string): Promise<number> {
  const s = tls.createServer({ key: pki!.key, cert: pki!.cert }, (c) => {
    c.on('error', () => {});
    c.end(`${version}\n`);
  });
  // Other client errors are the backend sidecars' health probes (connect, then close).
  s.on('tlsClientError', (e) => /http request/.test(e.message) && notTls[version]!++);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return (s.address() as AddressInfo).port;
}

/** CONNECT secure:443 through the client's sidecar, then TLS inside the tunnel with this SNI: what the server said. */
function callWithSni(servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const raw = net.connect(outbound, '127.0.0.1', () => raw.write('CONNECT secure:443 HTTP/1.1\r\nHost: secure:443\r\n\r\n'));
    raw.on('error', reject);
    let head = '';
    const onHead = (d: Buffer) => {
      head += d.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      raw.off('data', onHead);
      if (!head.startsWith('HTTP/1.1 200')) {
        raw.destroy();
        reject(new Error(`CONNECT: ${head}`));
        return;
      }
      const t = tls.connect({ socket: raw, servername, ca: pki!.cert });
      let body = '';
      t.setEncoding('utf8');
      t.on('data', (x) => (body += x));
      t.on('error', reject);
      t.on('end', () => resolve(body.trim()));
    };
    raw.on('data', onHead);
  });
}

const config = () =>
  [
    { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'secure' }, spec: { host: 'secure', subsets: ['a', 'b'].map((v) => ({ name: v, labels: { version: v } })) } },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'secure' },
      spec: {
        hosts: ['secure', ...NAMES],
        tls: ['a', 'b'].map((v) => ({ match: [{ port: 443, sniHosts: [`${v}.secure.example`] }], route: [{ destination: { host: 'secure', subset: v } }] })),
      },
    },
  ].map((r) => checkResource(r, 'test'));

before(async () => {
  if (skip) return;
  cp = await startControlPlane({ dataDir: tmpDir('tls-sni'), adminPort: 0, xdsPort: 0, heartbeatMs: 2000 });
  cp.store.apply(config());
  for (const v of ['a', 'b']) {
    const app = await tlsServer(v);
    sidecars.push(await spawnSidecar(cp, ['--workload', `secure-${v}`, '--service', 'secure', '--label', `version=${v}`, '--port', `tls:443:${await freePort()}:${app}`]));
  }
  outbound = await freePort();
  const client = await spawnSidecar(cp, ['--workload', 'client', '--outbound-port', String(outbound)]);
  sidecars.push(client);
  // Routed by SNI once the client's sidecar has the CONNECT route to the internal listener and both endpoints.
  await waitFor('the client sidecar to route secure:443 by SNI', async () => {
    const dump = (await (await request(`${client.admin}/config_dump`)).body.json()) as any;
    const vh = dump.routes?.[0]?.virtual_hosts?.find((v: any) => v.name === 'secure.default.svc.cluster.local:443');
    const eps = dump.endpoints?.find((e: any) => e.cluster_name === 'outbound|443||secure.default.svc.cluster.local');
    return vh?.routes?.[0]?.route?.cluster?.startsWith('sni|443||') && dump.listeners?.some((l: any) => l.internal_listener) && eps?.endpoints?.[0]?.lb_endpoints?.length === 2;
  }, 20_000);
});

after(async () => {
  await stopMesh(sidecars, servers.map((s) => ({ close: () => s.close(), closeAllConnections: () => {} })), cp);
});

test('two SNI names reach two versions through one service port; any other name reaches the service', { skip }, async (t) => {
  for (let i = 0; i < 5; i++) {
    assert.equal(await callWithSni('a.secure.example'), 'a');
    assert.equal(await callWithSni('b.secure.example'), 'b');
  }
  const others = await Promise.all(Array.from({ length: 20 }, () => callWithSni('c.secure.example')));
  t.diagnostic(`SNI c.secure.example: ${others.filter((o) => o === 'a').length} to a, ${others.filter((o) => o === 'b').length} to b`);
  assert.ok(others.includes('a') && others.includes('b'), `a name no tls route takes goes to the service's own cluster, both versions: ${others.join()}`);
});

test('a tunnel that is not TLS goes to the service as having no server name; the sidecar stays up', { skip }, async () => {
  const got = await new Promise<string>((resolve) => {
    const raw = net.connect(outbound, '127.0.0.1', () => raw.write('CONNECT secure:443 HTTP/1.1\r\nHost: secure:443\r\n\r\nGET / HTTP/1.1\r\n\r\n'));
    let all = '';
    raw.on('data', (d) => (all += d.toString('latin1')));
    raw.on('error', () => {});
    raw.on('close', () => resolve(all));
  });
  assert.match(got, /^HTTP\/1\.1 200/, 'the tunnel opened; the TLS server then refused the plaintext and closed');
  await waitFor('a version of the service to get the plaintext request', async () => notTls.a! + notTls.b! === 1);
  assert.equal(await callWithSni('a.secure.example'), 'a');
});
