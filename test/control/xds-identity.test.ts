// Who a proxy is comes from what it proved, never from what it says. Over real gRPC streams on
// loopback to a real control plane: the TLS xDS port wants this mesh's certificate; the
// certificate's namespace, service account and workload name overrule node metadata, so a proxy
// claiming another workload gets its own identity's config; the opt-in plain-text port serves
// clients only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { checkResource } from '../../src/api/index.ts';
import { type ControlPlane, startControlPlane } from '../../src/control/control-plane.ts';
import { TYPE, decode } from '../../src/xds/protos.ts';
import { META, formatNodeId } from '../../src/xds/node-meta.ts';
import { tmpDir, waitFor } from '../helpers.ts';
import { controlPlaneCredentials } from '../fixtures/mesh-creds.ts';
import { RawStream } from '../fixtures/raw-ads.ts';

const node = (id: string, metadata: Record<string, unknown>) => ({ id, metadata: { [META.labels]: {}, [META.outboundPort]: 15001, ...metadata } });

/** The first answer on a stream, or the status it was refused with. */
async function firstAnswer(s: RawStream): Promise<{ clusters: string[] } | grpc.StatusObject> {
  return waitFor('an answer or a refusal', async () => {
    if (s.status) return s.status;
    const r = await s.next(100).catch(() => undefined);
    return r && { clusters: r.resources.map((x) => decode(TYPE.cluster, x.value).name as string) };
  });
}

describe('xDS identity (real control plane, real gRPC streams)', () => {
  let cp: ControlPlane;
  const clients: grpc.Client[] = [];
  const logs: string[] = [];
  const client = async (creds: grpc.ChannelCredentials | Promise<grpc.ChannelCredentials>, address = cp.xdsAddress) => {
    const c = new grpc.Client(address, await creds);
    clients.push(c);
    return c;
  };

  before(async () => {
    cp = await startControlPlane({ dataDir: tmpDir('xds-identity'), adminPort: 0, xdsPort: 0, insecureXdsPort: 0, log: (m) => logs.push(m) });
    // Service a in namespace default, b in shop; a Sidecar keeps proxies of default to their namespace.
    cp.registry.register({ proxyId: 'a-1', name: 'a-1', namespace: 'default', service: 'a', servicePort: 80, labels: {}, address: '127.0.0.1', inboundPort: 20001, appPort: 30001, healthy: true });
    cp.registry.register({ proxyId: 'b-1', name: 'b-1', namespace: 'shop', service: 'b', servicePort: 80, labels: {}, address: '127.0.0.1', inboundPort: 20002, appPort: 30002, healthy: true });
    cp.store.apply([checkResource({ apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: 'default', namespace: 'default' }, spec: { egress: [{ hosts: ['./*'] }] } }, 'sidecar')]);
  });
  after(async () => {
    for (const c of clients) c.close();
    await cp?.close();
  });

  test('TLS without a certificate of this mesh: no config (UNAUTHENTICATED), and the proxy is not registered', async () => {
    for (const creds of [controlPlaneCredentials(cp, null), (async () => {
      const other = await startControlPlane({ dataDir: tmpDir('xds-other'), adminPort: 0, xdsPort: 0 });
      await other.close();
      return controlPlaneCredentials({ ca: other.ca, trustBundle: cp.trustBundle }, { workload: 'a-1' });
    })()]) {
      const s = new RawStream(await client(creds));
      s.send({ type_url: TYPE.cluster, node: node('sidecar~127.0.0.1~a-1-x.default~default.svc.cluster.local', { [META.workload]: 'a-1' }), resource_names: [] });
      const a = await firstAnswer(s);
      assert.ok('code' in a, 'refused');
      assert.equal(a.code, grpc.status.UNAUTHENTICATED);
      assert.match(a.details, /needs a certificate of this mesh.*join token/);
    }
    assert.ok(!cp.ads.proxies().some((p) => p.id.includes('a-1-x')));
  });

  test('plain text to the TLS port gets nothing', async () => {
    const s = new RawStream(await client(grpc.credentials.createInsecure()));
    s.send({ type_url: TYPE.cluster, node: node('plain', {}), resource_names: [] });
    const a = await firstAnswer(s);
    assert.ok('code' in a && a.code === grpc.status.UNAVAILABLE, JSON.stringify(a));
  });

  test("a proxy whose certificate is shop/reviews-v1 but whose metadata claims default/productpage is registered, and configured, as shop/reviews-v1", async () => {
    const creds = controlPlaneCredentials(cp, { namespace: 'shop', serviceAccount: 'reviews', workload: 'reviews-v1' });
    const s = new RawStream(await client(creds));
    const id = formatNodeId({ address: '127.0.0.1', pod: 'reviews-v1-1-abc', namespace: 'shop' });
    s.send({ type_url: TYPE.cluster, node: node(id, { [META.workload]: 'productpage', [META.namespace]: 'default' }), resource_names: [] });
    const a = await firstAnswer(s);
    assert.ok('clusters' in a, JSON.stringify(a));
    // Namespace shop has no Sidecar: it sees b (in shop) and a. Had the claim stood (default), it would see a only.
    assert.ok(a.clusters.some((c) => c.includes('b.shop.svc.cluster.local')), a.clusters.join());
    const p = cp.ads.proxies().find((x) => x.id === id);
    assert.deepEqual([p?.workload.namespace, p?.workload.name, p?.workload.serviceAccount], ['shop', 'reviews-v1', 'reviews']);
    assert.ok(logs.some((l) => l.includes(id) && l.includes('overruled by its certificate')), logs.join('\n'));

    // An honest proxy of default, for contrast: the Sidecar keeps it to its namespace.
    const honest = new RawStream(await client(controlPlaneCredentials(cp, { namespace: 'default', workload: 'productpage' })));
    honest.send({ type_url: TYPE.cluster, node: node(formatNodeId({ address: '127.0.0.1', pod: 'productpage-1-abc', namespace: 'default' }), { [META.workload]: 'productpage' }), resource_names: [] });
    const h = await firstAnswer(honest);
    assert.ok('clusters' in h && !h.clusters.some((c) => c.includes('.shop.')), JSON.stringify(h));
    s.call.end();
    honest.call.end();
  });

  test("a node id in another namespace than the certificate's is refused (it would take that proxy's id)", async () => {
    const s = new RawStream(await client(controlPlaneCredentials(cp, { namespace: 'shop', workload: 'reviews-v1' })));
    s.send({ type_url: TYPE.cluster, node: node(formatNodeId({ address: '127.0.0.1', pod: 'a-1-1-abc', namespace: 'default' }), {}), resource_names: [] });
    const a = await firstAnswer(s);
    assert.ok('code' in a && a.code === grpc.status.PERMISSION_DENIED && /names namespace default, but its certificate is for shop\/default/.test(a.details), JSON.stringify(a));
  });

  test('the plain-text port serves clients, and refuses a node that would register endpoints', async () => {
    const c = await client(grpc.credentials.createInsecure(), cp.insecureXdsAddress);
    const pure = new RawStream(c);
    pure.send({ type_url: TYPE.cluster, node: node('proxyless-1', {}), resource_names: [] });
    const a = await firstAnswer(pure);
    assert.ok('clusters' in a && a.clusters.length > 0, JSON.stringify(a));
    pure.call.end();
    const registering = new RawStream(c);
    registering.send({ type_url: TYPE.cluster, node: node('fake-b', { [META.service]: 'b', [META.inboundPort]: 20009, [META.appPort]: 30009 }), resource_names: [] });
    const r = await firstAnswer(registering);
    assert.ok('code' in r && r.code === grpc.status.PERMISSION_DENIED && /cannot be an endpoint/.test(r.details), JSON.stringify(r));
    assert.ok(!cp.registry.list().some((w) => w.proxyId === 'fake-b'));
  });

  test('the plain-text port takes nothing that would make a node an endpoint: labels with an inbound and app port (what a ServiceEntry workloadSelector picks) are refused too', async () => {
    const c = await client(grpc.credentials.createInsecure(), cp.insecureXdsAddress);
    const s = new RawStream(c);
    s.send({ type_url: TYPE.cluster, node: node('evil', { [META.labels]: { app: 'payments' }, [META.address]: '10.6.6.6', [META.inboundPort]: 6666, [META.appPort]: 6666 }), resource_names: [] });
    const r = await firstAnswer(s);
    assert.ok('code' in r && r.code === grpc.status.PERMISSION_DENIED && /INBOUND_PORT, APP_PORT: .*cannot be an endpoint/.test(r.details), JSON.stringify(r));
    assert.ok(!cp.registry.list().some((w) => w.address === '10.6.6.6'));
  });

  test("nobody takes a proven proxy's node id: not a plain-text client (its ids are apart), not another workload's certificate", async () => {
    const id = formatNodeId({ address: '127.0.0.1', pod: 'reviews-v1-7-abc', namespace: 'shop' });
    // A plain-text client takes the id first...
    const squatter = new RawStream(await client(grpc.credentials.createInsecure(), cp.insecureXdsAddress));
    squatter.send({ type_url: TYPE.cluster, node: node(id, {}), resource_names: [] });
    assert.ok('clusters' in (await firstAnswer(squatter)));
    // ...and the proxy with the certificate still gets in, under that id.
    const real = new RawStream(await client(controlPlaneCredentials(cp, { namespace: 'shop', serviceAccount: 'reviews', workload: 'reviews-v1' })));
    real.send({ type_url: TYPE.cluster, node: node(id, {}), resource_names: [] });
    assert.ok('clusters' in (await firstAnswer(real)));
    assert.ok(cp.ads.proxies().some((p) => p.id === id && p.workload.serviceAccount === 'reviews'));
    assert.ok(cp.ads.proxies().some((p) => p.id === `plaintext~${id}` && p.workload.serviceAccount === undefined));
    // A certificate for another workload of the same namespace may not take that pod's id.
    const other = new RawStream(await client(controlPlaneCredentials(cp, { namespace: 'shop', serviceAccount: 'ratings', workload: 'ratings-v1' })));
    other.send({ type_url: TYPE.cluster, node: node(formatNodeId({ address: '127.0.0.1', pod: 'reviews-v1-8-def', namespace: 'shop' }), {}), resource_names: [] });
    const o = await firstAnswer(other);
    assert.ok('code' in o && o.code === grpc.status.PERMISSION_DENIED && /names pod reviews-v1-8-def, but its certificate is for workload shop\/ratings-v1/.test(o.details), JSON.stringify(o));
    for (const x of [squatter, real]) x.call.end();
  });
});
