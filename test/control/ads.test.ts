// The ADS protocol as a proxy sees it, over a real gRPC stream on loopback: versions, nonces,
// ACK, NACK, stale nonces, debounced pushes, and the registry following the stream.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { AdsServer } from '../../src/control/ads/server.ts';
import { Registry } from '../../src/control/registry/registry.ts';
import type { MeshSnapshot } from '../../src/control/model/model.ts';
import { TYPE, decode } from '../../src/xds/protos.ts';
import { META } from '../../src/xds/node-meta.ts';
import { sleep, waitFor } from '../helpers.ts';
import { RawStream } from '../fixtures/raw-ads.ts';

const node = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  metadata: { [META.workload]: id, [META.namespace]: 'default', [META.labels]: { app: id }, [META.outboundPort]: 15001, ...extra },
});

describe('ADS server (real gRPC stream on loopback)', () => {
  const registry = new Registry({ onChange: () => ads.requestPush() });
  const mesh = (): MeshSnapshot => ({ revision: 1, virtualServices: [], destinationRules: [], workloads: registry.list() });
  const logs: string[] = [];
  const ads: AdsServer = new AdsServer({ registry, snapshot: mesh, debounceMs: 30, maxDebounceMs: 200, log: (m) => logs.push(m) });
  let client: grpc.Client;
  let port: number;

  before(async () => {
    port = await ads.listen('127.0.0.1:0', grpc.ServerCredentials.createInsecure());
    client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    client.close();
    await ads.close();
  });

  test('versions, nonces, ACK and NACK', async () => {
    const s = new RawStream(client);
    s.send({ type_url: TYPE.cluster, node: node('alpha'), resource_names: [] });
    const r1 = await s.next();
    assert.equal(r1.type_url, TYPE.cluster);
    assert.ok(r1.nonce, 'a response carries a nonce');
    await waitFor('alpha registered', async () => registry.connected().some((w) => w.name === 'alpha'));

    // ACK: the same version and the nonce it answers.
    s.send({ type_url: TYPE.cluster, version_info: r1.version_info, response_nonce: r1.nonce, resource_names: [] });
    await waitFor('ACK recorded', async () => ads.proxies().find((p) => p.id === 'alpha')?.types.find((t) => t.type === 'CDS')?.acked === r1.version_info);

    // A new service appears: one push with a new version and a new nonce.
    const beta = new RawStream(client);
    beta.send({ type_url: TYPE.cluster, node: node('beta', { [META.service]: 'beta', [META.inboundPort]: 20001, [META.appPort]: 30001 }), resource_names: [] });
    await beta.next();
    const r2 = await s.next();
    assert.notEqual(r2.version_info, r1.version_info);
    assert.notEqual(r2.nonce, r1.nonce);
    const names = r2.resources.map((r) => decode(TYPE.cluster, r.value).name);
    assert.ok(names.includes('outbound|80||beta.default.svc.cluster.local'), names.join(', '));

    // NACK: the reason is recorded against the version, the last ACK stands, nothing is resent.
    s.send({ type_url: TYPE.cluster, version_info: r1.version_info, response_nonce: r2.nonce, resource_names: [], error_detail: { code: 3, message: 'cluster x: lb_policy MAGLEV is not supported' } });
    await waitFor('NACK recorded', async () => ads.proxies().find((p) => p.id === 'alpha')?.types.find((t) => t.type === 'CDS')?.nack?.reason === 'cluster x: lb_policy MAGLEV is not supported');
    const st = ads.proxies().find((p) => p.id === 'alpha')!.types.find((t) => t.type === 'CDS')!;
    assert.equal(st.acked, r1.version_info);
    assert.equal(st.nack!.version, r2.version_info);
    await s.none(150);

    // A reply carrying an old nonce is stale: ignored, not taken as an ACK.
    s.send({ type_url: TYPE.cluster, version_info: r2.version_info, response_nonce: r1.nonce, resource_names: [] });
    await sleep(100);
    assert.equal(ads.proxies().find((p) => p.id === 'alpha')!.types.find((t) => t.type === 'CDS')!.acked, r1.version_info);

    beta.call.end();
    s.call.end();
  });

  test('EDS is served by name, and asking for new names gets an answer', async () => {
    const s = new RawStream(client);
    const gamma = new RawStream(client);
    gamma.send({ type_url: TYPE.cluster, node: node('gamma', { [META.service]: 'gamma', [META.inboundPort]: 20002, [META.appPort]: 30002 }), resource_names: [] });
    await gamma.next();
    s.send({ type_url: TYPE.endpoint, node: node('delta'), resource_names: ['outbound|80||gamma.default.svc.cluster.local'] });
    // A new stream is answered from the last push's snapshot, which may predate gamma; the push
    // that gamma's registration scheduled brings delta the resource it asked for.
    let r = await s.next();
    while (r.resources.length === 0) {
      s.send({ type_url: TYPE.endpoint, version_info: r.version_info, response_nonce: r.nonce, resource_names: ['outbound|80||gamma.default.svc.cluster.local'] });
      r = await s.next();
    }
    assert.equal(r.resources.length, 1);
    const cla = decode(TYPE.endpoint, r.resources[0].value);
    assert.equal(cla.cluster_name, 'outbound|80||gamma.default.svc.cluster.local');
    assert.equal(cla.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value, 20002);
    gamma.call.end();
    s.call.end();
  });

  test('a burst of registry changes becomes one push', async () => {
    const s = new RawStream(client);
    s.send({ type_url: TYPE.cluster, node: node('watcher'), resource_names: [] });
    // Let the stream settle (its first answer may come from an older snapshot), ACKing each response.
    let first = await s.next();
    for (;;) {
      s.send({ type_url: TYPE.cluster, version_info: first.version_info, response_nonce: first.nonce, resource_names: [] });
      const more = await s.next(200).catch(() => undefined);
      if (!more) break;
      first = more;
    }
    for (let i = 0; i < 10; i++) {
      registry.register({ proxyId: `burst-${i}`, name: `burst-${i}`, namespace: 'default', service: 'burst', servicePort: 80, labels: {}, address: '127.0.0.1', inboundPort: 21000 + i, appPort: 31000 + i, healthy: true });
    }
    const push = await s.next();
    assert.equal(push.resources.length, first.resources.length + 1, 'one new cluster for the burst service');
    await s.none(300);
    for (let i = 0; i < 10; i++) registry.unregister(`burst-${i}`);
    s.call.end();
  });

  test('a node with bad metadata is refused with a reason naming the field', async () => {
    const s = new RawStream(client);
    s.send({ type_url: TYPE.cluster, node: node('bad', { [META.outboundPort]: 70000 }), resource_names: [] });
    await waitFor('the stream to be refused', async () => s.status);
    assert.equal(s.status!.code, grpc.status.INVALID_ARGUMENT);
    assert.match(s.status!.details, /OUTBOUND_PORT.*port number/);
  });

  test('a second stream for a connected node id is refused with ALREADY_EXISTS; the first keeps its config and nothing is pushed', async () => {
    const first = new RawStream(client);
    first.send({ type_url: TYPE.cluster, node: node('twin'), resource_names: [] });
    await first.ackUntilQuiet();
    await waitFor('twin registered, and no push due', async () => registry.connected().some((w) => w.name === 'twin') && !ads.stats().pushPending);
    // The push that the registration scheduled may have sent one more response.
    const late = await first.next(200).catch(() => undefined);
    if (late) await first.ackUntilQuiet(200, late);
    const before = { stats: ads.stats(), registry: registry.version(), twin: ads.proxies().find((p) => p.id === 'twin')! };
    assert.equal(before.twin.types.find((t) => t.type === 'CDS')!.acked, before.twin.types.find((t) => t.type === 'CDS')!.sent);

    // The same node id from another connection (another process, say).
    const other = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const second = new RawStream(other);
      second.send({ type_url: TYPE.cluster, node: node('twin'), resource_names: [] });
      await waitFor('the second stream to be refused', async () => second.status);
      assert.equal(second.status!.code, grpc.status.ALREADY_EXISTS, second.status!.details);
      assert.ok(second.status!.details.includes(`node id twin is already connected from ${before.twin.peer}`), second.status!.details);
      await second.none(0);
    } finally {
      other.close();
    }

    // The first stream is untouched: no response, no push to the mesh, the same registry.
    await first.none(300);
    assert.equal(first.status, undefined, 'the first stream is still open');
    const after = ads.stats();
    assert.equal(after.pushes, before.stats.pushes, 'no push');
    assert.equal(after.pushPending, false, 'no push due');
    assert.equal(after.streams, before.stats.streams, 'no stream accepted');
    assert.equal(after.refused, before.stats.refused + 1);
    assert.equal(registry.version(), before.registry);
    assert.deepEqual(ads.proxies().find((p) => p.id === 'twin'), before.twin, 'the first keeps its config: same stream, same versions sent and ACKed');
    first.call.end();
    await waitFor('twin to leave', async () => !registry.connected().some((w) => w.name === 'twin'));
  });

  test('a node on a later request changes the workload\'s health and nothing else, and is taken as the ACK it repeats', async () => {
    const svc = { [META.service]: 'hb', [META.inboundPort]: 20003, [META.appPort]: 30003 };
    const s = new RawStream(client);
    s.send({ type_url: TYPE.cluster, node: node('hb', svc), resource_names: [] });
    let last = (await s.ackUntilQuiet())!;
    await waitFor('hb registered, and no push due', async () => registry.connected().some((w) => w.proxyId === 'hb') && !ads.stats().pushPending);
    const late = await s.next(200).catch(() => undefined);
    if (late) last = (await s.ackUntilQuiet(200, late))!;
    const hb = () => registry.list().find((w) => w.proxyId === 'hb')!;
    const cds = () => ads.proxies().find((p) => p.id === 'hb')!.types.find((t) => t.type === 'CDS')!;
    const before = { stats: ads.stats(), cds: cds() };
    assert.equal(before.cds.acked, last.version_info);
    assert.equal(hb().healthy, true);

    // The last ACK again, with the node now saying the app is down, as the sidecar sends it.
    const ack = { type_url: TYPE.cluster, version_info: last.version_info, response_nonce: last.nonce, resource_names: [] };
    s.send({ ...ack, node: node('hb', { ...svc, [META.healthy]: false }) });
    await waitFor('hb to be unhealthy in the registry, and the push done', async () => hb().healthy === false && !ads.stats().pushPending);
    assert.equal(ads.proxies().find((p) => p.id === 'hb')!.workload.healthy, false);
    assert.ok(ads.stats().pushes > before.stats.pushes, 'the change is pushed to the mesh');
    // Taken as an ACK of what the proxy has: no NACK, no new subscription answered, no new stream.
    await s.none(200);
    assert.deepEqual(cds(), before.cds);
    assert.equal(ads.stats().streams, before.stats.streams);

    // Identity does not change on a live stream: a new workload name or namespace is ignored (and
    // logged), while the health in the same node still counts.
    s.send({ ...ack, node: node('hb', { ...svc, [META.workload]: 'someone-else', [META.namespace]: 'other', [META.healthy]: true }) });
    await waitFor('hb healthy again', async () => hb().healthy === true);
    assert.equal(hb().name, 'hb');
    assert.equal(hb().namespace, 'default');
    assert.ok(logs.some((l) => l.includes('proxy hb: node metadata WORKLOAD_NAME, NAMESPACE changed on a live stream; only HEALTHY may')), logs.join('\n'));
    // Nor does the node id: that node is ignored whole.
    s.send({ ...ack, node: node('not-hb', { ...svc, [META.healthy]: false }) });
    await waitFor('the other id to be refused', async () => logs.some((l) => l.includes('proxy hb: sent node id not-hb on its stream')));
    assert.equal(hb().healthy, true);
    assert.ok(!registry.list().some((w) => w.proxyId === 'not-hb'));
    s.call.end();
    await waitFor('hb to leave', async () => !registry.connected().some((w) => w.proxyId === 'hb'));
  });

  test('the workload leaves the registry when its stream closes', async () => {
    const s = new RawStream(client);
    s.send({ type_url: TYPE.cluster, node: node('leaving'), resource_names: [] });
    await s.next();
    assert.ok(registry.connected().some((w) => w.name === 'leaving'));
    s.call.cancel();
    await waitFor('leaving to be unregistered', async () => !registry.connected().some((w) => w.name === 'leaving'), 3000);
  });
});

// Flow control: a proxy slower than the pushes (busy, or not reading its stream) must not have a
// response queued per push; when a thousand proxies connect at once, every registration pushes.
describe('ADS flow control: at most one unanswered response per type and stream', () => {
  const registry = new Registry({ onChange: () => ads.requestPush() });
  const mesh = (): MeshSnapshot => ({ revision: 1, virtualServices: [], destinationRules: [], workloads: registry.list() });
  const ads: AdsServer = new AdsServer({ registry, snapshot: mesh, debounceMs: 20, maxDebounceMs: 100 });
  let client: grpc.Client;

  before(async () => {
    const port = await ads.listen('127.0.0.1:0', grpc.ServerCredentials.createInsecure());
    client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    client.close();
    await ads.close();
  });

  test('pushes to a proxy that has not answered are held back, and its answer brings the latest, once, in CDS-then-EDS order', async () => {
    const cluster = 'outbound|80||burst.default.svc.cluster.local';
    const s = new RawStream(client);
    s.send({ type_url: TYPE.cluster, node: node('slow'), resource_names: [] });
    s.send({ type_url: TYPE.endpoint, resource_names: [cluster] });
    const cds1 = await s.next();
    const eds1 = await s.next();
    assert.deepEqual([cds1.type_url, eds1.type_url], [TYPE.cluster, TYPE.endpoint]);
    await waitFor('slow registered, and its push done', async () => registry.connected().some((w) => w.name === 'slow') && !ads.stats().pushPending);
    const status = () => ads.proxies().find((p) => p.id === 'slow')!.types;
    const sentBefore = status().map((t) => t.sent);

    // K endpoints of a new service appear, each in its own push; the proxy answers none of them.
    const K = 8;
    const before = ads.stats();
    for (let i = 0; i < K; i++) {
      const pushes = ads.stats().pushes;
      registry.register({ proxyId: `burst-${i}`, name: `burst-${i}`, namespace: 'default', service: 'burst', servicePort: 80, labels: {}, address: '127.0.0.1', inboundPort: 22000 + i, appPort: 32000 + i, healthy: true });
      await waitFor(`push ${i + 1}`, async () => ads.stats().pushes > pushes && !ads.stats().pushPending);
    }
    const during = ads.stats();
    assert.ok(during.pushes - before.pushes >= K, `${during.pushes - before.pushes} pushes`);
    assert.deepEqual(status().map((t) => t.sent), sentBefore, 'nothing more sent while the first responses are unanswered');
    assert.deepEqual(status().map((t) => t.held), [true, true], 'both types held back');
    assert.equal(during.responses, before.responses, 'no response sent by the pushes');
    assert.ok(during.held - before.held >= 2 * K, `${during.held - before.held} types held`);

    // EDS answered first: it still waits, behind the CDS that brings its cluster.
    s.send({ type_url: TYPE.endpoint, version_info: eds1.version_info, response_nonce: eds1.nonce, resource_names: [cluster] });
    await waitFor('the EDS ACK recorded', async () => status()[1].acked === eds1.version_info);
    assert.equal(ads.stats().responses, during.responses, 'EDS waits for the CDS before it');
    // CDS answered: the latest of each, once, CDS first.
    s.send({ type_url: TYPE.cluster, version_info: cds1.version_info, response_nonce: cds1.nonce, resource_names: [] });
    const cds2 = await s.next();
    const eds2 = await s.next();
    assert.deepEqual([cds2.type_url, eds2.type_url], [TYPE.cluster, TYPE.endpoint]);
    assert.ok(cds2.resources.some((r) => decode(TYPE.cluster, r.value).name === cluster), 'the new cluster');
    const cla = decode(TYPE.endpoint, eds2.resources[0].value);
    assert.equal(cla.endpoints[0].lb_endpoints.length, K, 'all K endpoints in the one EDS response');
    assert.equal(ads.stats().responses, during.responses + 2);
    s.send({ type_url: TYPE.cluster, version_info: cds2.version_info, response_nonce: cds2.nonce, resource_names: [] });
    s.send({ type_url: TYPE.endpoint, version_info: eds2.version_info, response_nonce: eds2.nonce, resource_names: [cluster] });
    await waitFor('the proxy current', async () => ads.proxies().find((p) => p.id === 'slow')!.current);
    assert.deepEqual(status().map((t) => t.held), [undefined, undefined]);
    await s.none(150);
    for (let i = 0; i < K; i++) registry.unregister(`burst-${i}`);
    s.call.end();
  });
});
