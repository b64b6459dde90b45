// The mesh config's enableAutoMtls through real sidecars, changed live: with it false, clients send
// plain text where they sent mTLS (a STRICT server refuses it, a PERMISSIVE one takes it), and only
// a DestinationRule's ISTIO_MUTUAL originates mTLS, as in Istio; deleting the ConfigMap returns the
// mesh to Istio's defaults (automatic mTLS again). meshMTLS.minProtocolVersion TLSV1_3: the
// sidecars' mTLS servers take TLS 1.3 only. outboundTrafficPolicy REGISTRY_ONLY: hosts outside the
// mesh get 502 from proxies whose Sidecar does not say otherwise.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { workloadCert } from '../fixtures/mesh-creds.ts';
import { checkResource } from '../../src/api/index.ts';
import { AuthzMesh, call } from '../fixtures/authz-mesh.ts';
import type { SidecarProc } from '../proxy/mesh.ts';

const HOST = 'httpbin.default:8000';
const CLIENT = 'spiffe://cluster.local/ns/default/sa/sleep';
const MESH_CONFIG = { kind: 'ConfigMap', namespace: 'istio-system', name: 'istio' };

const mesh = new AuthzMesh();
let server: SidecarProc;
let serverInbound: number;
let client: number;

async function apply(obj: Record<string, unknown>): Promise<void> {
  mesh.cp.store.apply([checkResource(obj, 'test')]);
  await mesh.synced();
}

/** A request from sleep, and whether httpbin's sidecar saw it come over mTLS (a request counted for sleep's identity). */
async function request(): Promise<{ status: number; body: string; mtls: boolean }> {
  const count = async () => ((await (await fetch(`${server.admin}/stats`)).json()).sources as Record<string, number>)[CLIENT] ?? 0;
  const before = await count();
  const r = await call(client, HOST, '/');
  return { status: r.status, body: r.body, mtls: (await count()) > before };
}

const peerAuthentication = (mode: string) => ({ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: 'default' }, spec: { mtls: { mode } } });
const autoMtls = (on: boolean) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' }, data: { mesh: `enableAutoMtls: ${on}\n` } });

before(async () => {
  await mesh.start('mesh-config');
  const app = await mesh.httpApp('httpbin');
  const s = await mesh.workload({ name: 'httpbin', namespace: 'default', sa: 'httpbin', service: 'httpbin', ports: [['http', 8000, app]] });
  [server, serverInbound] = [s.proc, s.inbound.get(8000)!];
  client = (await mesh.workload({ name: 'sleep', namespace: 'default', sa: 'sleep', outbound: true })).outbound;
  await mesh.synced();
});
after(() => mesh.close());

test('by default (no mesh config), the client sends automatic mTLS', async () => {
  const r = await request();
  assert.deepEqual([r.status, r.mtls], [200, true], r.body);
});

test('enableAutoMtls false: the client sends plain text, which a STRICT server refuses; a DestinationRule ISTIO_MUTUAL sends mTLS again', async () => {
  await apply(peerAuthentication('STRICT'));
  const before = await request();
  assert.deepEqual([before.status, before.mtls], [200, true], before.body);
  await apply(autoMtls(false));
  const refused = await request();
  // The STRICT listener closes the plain-text connection: the client sidecar answers 502 or 503.
  assert.ok([502, 503].includes(refused.status), `a STRICT server refuses the plain text: ${refused.status} ${refused.body}`);
  await apply({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'httpbin', namespace: 'default' }, spec: { host: 'httpbin', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } } });
  const mutual = await request();
  assert.deepEqual([mutual.status, mutual.mtls], [200, true], mutual.body);
});

test('without the DestinationRule, a PERMISSIVE server takes the plain text; the ConfigMap deleted, Istio\'s defaults again: automatic mTLS', async () => {
  mesh.cp.store.delete({ kind: 'DestinationRule', namespace: 'default', name: 'httpbin' });
  await apply(peerAuthentication('PERMISSIVE'));
  const plain = await request();
  assert.deepEqual([plain.status, plain.mtls], [200, false], plain.body);
  mesh.cp.store.delete(MESH_CONFIG);
  await mesh.synced();
  const r = await request();
  assert.deepEqual([r.status, r.mtls], [200, true], r.body);
});

/** A sidecar's mTLS handshake to httpbin's inbound port with a mesh certificate, at most `maxVersion`: 'connected' once the server answered. */
async function handshake(maxVersion: tls.SecureVersion): Promise<string> {
  const creds = await workloadCert(mesh.cp, { serviceAccount: 'sleep' });
  return new Promise((resolve) => {
    const c = tls.connect({ port: serverInbound, host: '127.0.0.1', ca: mesh.cp.trustBundle, key: creds.keyPem, cert: creds.certPem, ALPNProtocols: ['istio-http/1.1', 'istio'], maxVersion, checkServerIdentity: () => undefined });
    c.on('secureConnect', () => c.write(`GET / HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`));
    c.on('data', () => {
      c.destroy();
      resolve('connected');
    });
    c.on('error', (e) => resolve(`error: ${e.message}`));
    c.on('close', () => resolve('closed'));
  });
}

test('meshMTLS.minProtocolVersion TLSV1_3: the mTLS server takes TLS 1.3 only (TLS 1.2 too before); sidecars still talk', async () => {
  assert.equal(await handshake('TLSv1.2'), 'connected');
  await apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' }, data: { mesh: 'meshMTLS:\n  minProtocolVersion: TLSV1_3\n' } });
  assert.match(await handshake('TLSv1.2'), /^(error|closed)/);
  assert.equal(await handshake('TLSv1.3'), 'connected');
  const r = await request();
  assert.deepEqual([r.status, r.mtls], [200, true], r.body);
});

test('outboundTrafficPolicy REGISTRY_ONLY: a host outside the mesh gets 502 naming the mesh config (it passed through before); mesh services still answer', async () => {
  const outside = await mesh.httpApp('outside');
  const host = `127.0.0.1:${outside}`;
  mesh.cp.store.delete(MESH_CONFIG);
  await mesh.synced();
  const open = await call(client, host, '/');
  assert.equal(open.status, 200, `Istio's default ALLOW_ANY: ${open.body}`);
  assert.match(open.body, /^outside GET/);
  await apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' }, data: { mesh: 'outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n' } });
  const blocked = await call(client, host, '/');
  assert.equal(blocked.status, 502);
  assert.match(blocked.body, /outbound traffic policy of the mesh config is REGISTRY_ONLY/);
  assert.equal((await request()).status, 200);
});
