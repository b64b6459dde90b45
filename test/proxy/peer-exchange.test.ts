// Istio's TCP metadata exchange (tcp/peer-exchange.ts): the frame as istio/proxy's
// metadata_exchange filter writes and reads it, the reader over chunks, the exchange on a real
// socket pair (what is believed, what goes on to the app, what ends the connection), the config the
// sidecar takes (xds-client), and what the control plane sends to a proxy that does not speak it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import protobuf from 'protobufjs';
import { FrameReader, MAGIC, MAX_FRAME, exchangePeerMetadata, metadataOfBody, ownFrame } from '../../src/proxy/tcp/peer-exchange.ts';

const IDLE_MS = 10_000;
import { PeerMetadataCache, ownMetadata } from '../../src/proxy/http/peer-metadata.ts';
import { peerMetadataOf, setPeerPrincipal } from '../../src/proxy/tls/peer.ts';
import { encode } from '../../src/xds/protos.ts';
import { convertCluster, convertListener } from '../../src/proxy/xds-client/convert.ts';
import { offeredAlpn } from '../../src/proxy/tls/upstream.ts';
import { selectAlpn } from '../../src/proxy/tls/inbound.ts';
import { translate } from '../../src/control/translate/translate.ts';
import { workloadFromNode } from '../../src/control/ads/node.ts';
import { meshOf, provenServer, workload } from '../snapshot.ts';
import { socketPair } from '../fixtures/socket-pair.ts';

const own = ownMetadata({ nodeId: 'sidecar~10.0.0.1~sleep-v1-1.foo~foo.svc.cluster.local', name: 'sleep-v1-1', namespace: 'foo', workload: 'sleep-v1', cluster: 'Kubernetes', labels: { app: 'sleep', version: 'v1' }, canonicalService: 'sleep', canonicalRevision: 'v1' });
const SLEEP = 'spiffe://cluster.local/ns/foo/sa/sleep';

/** A frame as istio/proxy builds it (constructProxyHeaderData), from protobufjs's own Any: no code of Weft's frame writer. */
function istioFrame(node: Record<string, unknown>, id: string): Buffer {
  const any = protobuf.Root.fromJSON({ nested: { A: { fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } } } }).lookupType('A');
  const value = encode('type.googleapis.com/google.protobuf.Struct', { 'x-envoy-peer-metadata': node, 'x-envoy-peer-metadata-id': id });
  const body = Buffer.from(any.encode(any.fromObject({ type_url: 'type.googleapis.com/google.protobuf.Struct', value })).finish());
  const head = Buffer.alloc(8);
  head.writeUInt32BE(0x3d230467, 0);
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
}

test("the frame: magic 0x3D230467 and the body's length (big-endian), then an Any of a Struct with x-envoy-peer-metadata and its id; Istio's frames read as Weft's", () => {
  const f = ownFrame(own);
  assert.equal(f.readUInt32BE(0), MAGIC);
  assert.equal(f.readUInt32BE(4), f.length - 8);
  const meta = metadataOfBody(f.subarray(8));
  assert.deepEqual(meta, { workload: 'sleep-v1', namespace: 'foo', app: 'sleep', version: 'v1', canonicalService: 'sleep', canonicalRevision: 'v1', cluster: 'Kubernetes' });
  const istio = istioFrame({ NAMESPACE: 'foo', WORKLOAD_NAME: 'reviews-v2', CLUSTER_ID: 'Kubernetes', LABELS: { app: 'reviews', version: 'v2' } }, 'sidecar~10.0.0.2~reviews-v2-1.foo~foo.svc.cluster.local');
  assert.deepEqual(metadataOfBody(istio.subarray(8)), { workload: 'reviews-v2', namespace: 'foo', app: 'reviews', version: 'v2', canonicalService: undefined, canonicalRevision: undefined, cluster: 'Kubernetes' });
  // Not an Any of a Struct, or a broken one: nothing.
  assert.equal(metadataOfBody(Buffer.from([0x0a, 0x05, 0x61])), undefined);
  assert.equal(metadataOfBody(Buffer.from('garbage')), undefined);
});

test('the reader: a frame over any chunking, the bytes after it kept; first bytes that are no magic go on as they came; a frame too large is refused', () => {
  const f = Buffer.concat([ownFrame(own), Buffer.from('app data')]);
  for (const size of [1, 3, 7, 8, 9, 64, f.length]) {
    const r = new FrameReader();
    let out;
    for (let i = 0; i < f.length; i += size) {
      out = r.feed(f.subarray(i, i + size));
      if (out.kind !== 'more') break;
    }
    assert.equal(out!.kind, 'frame', `chunks of ${size}`);
    if (out!.kind !== 'frame') continue;
    // What came in the chunk that ended the frame, after it.
    assert.ok('app data'.startsWith(out!.rest.toString()), `chunks of ${size}: ${out!.rest}`);
  }
  const plain = new FrameReader().feed(Buffer.from('GET / HTTP/1.1\r\n'));
  assert.deepEqual(plain.kind === 'none' && plain.rest.toString(), 'GET / HTTP/1.1\r\n');
  // One byte that is not the magic's first is enough to say so.
  assert.equal(new FrameReader().feed(Buffer.from([0x3d, 0x24])).kind, 'none');
  const big = Buffer.alloc(8);
  big.writeUInt32BE(MAGIC, 0);
  big.writeUInt32BE(MAX_FRAME + 1, 4);
  assert.deepEqual(new FrameReader().feed(big), { kind: 'too_large', size: MAX_FRAME + 1 });
});

/** `a` the peer, `b` the sidecar's end. */
async function pair(): Promise<{ a: net.Socket; b: net.Socket; close: () => void }> {
  const { client, server, close } = await socketPair();
  return { a: client, b: server, close };
}

function exchange(socket: net.Socket, cache: PeerMetadataCache, logs: string[], timeoutMs = IDLE_MS): Promise<{ rest: Buffer } | { failed: string }> {
  return new Promise((resolve) => exchangePeerMetadata(socket, { frame: ownFrame(own), cache, log: (m) => logs.push(m) }, 'test connection', timeoutMs, (rest) => resolve({ rest }), (why) => resolve({ failed: why })));
}

test('the exchange on a socket: its frame written first, the peer\'s taken off the front and believed (mTLS identity, namespace, workload); the bytes after it go on', async () => {
  const { a, b, close } = await pair();
  try {
    setPeerPrincipal(b, SLEEP);
    const got = Buffer.alloc(0);
    const readA: Buffer[] = [got];
    a.on('data', (d) => readA.push(d));
    a.write(Buffer.concat([istioFrame({ NAMESPACE: 'foo', WORKLOAD_NAME: 'sleep-v1', LABELS: { app: 'sleep', version: 'v1' } }, 'id-1'), Buffer.from('first bytes')]));
    const r = await exchange(b, new PeerMetadataCache(), []);
    assert.ok('rest' in r);
    assert.equal(r.rest.toString(), 'first bytes');
    assert.deepEqual([peerMetadataOf(b)?.app, peerMetadataOf(b)?.version], ['sleep', 'v1']);
    assert.ok(b.isPaused(), 'paused for whoever takes the connection on');
    // The other side got this workload's frame.
    const frame = ownFrame(own);
    for (let i = 0; i < 100 && Buffer.concat(readA).length < frame.length; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(Buffer.concat(readA), frame);
  } finally {
    close();
  }
});

test('a peer whose metadata names another namespace is not believed; one without mTLS is never; one that sends no frame has its bytes go on as they came', async () => {
  for (const [principal, node, want] of [
    [SLEEP, { NAMESPACE: 'bar', WORKLOAD_NAME: 'sleep-v1', LABELS: { app: 'forged' } }, undefined],
    [undefined, { NAMESPACE: 'foo', WORKLOAD_NAME: 'sleep-v1', LABELS: { app: 'sleep' } }, undefined],
    [SLEEP, { NAMESPACE: 'foo', WORKLOAD_NAME: 'sleep-v1', LABELS: { app: 'sleep' } }, 'sleep'],
  ] as const) {
    const { a, b, close } = await pair();
    try {
      if (principal) setPeerPrincipal(b, principal);
      a.write(istioFrame(node, 'id'));
      const r = await exchange(b, new PeerMetadataCache(), []);
      assert.ok('rest' in r);
      assert.equal(peerMetadataOf(b)?.app, want, JSON.stringify(node));
    } finally {
      close();
    }
  }
  const { a, b, close } = await pair();
  try {
    a.write('SSH-2.0-client\r\n');
    const r = await exchange(b, new PeerMetadataCache(), []);
    assert.deepEqual('rest' in r && r.rest.toString(), 'SSH-2.0-client\r\n');
    assert.equal(peerMetadataOf(b), undefined);
  } finally {
    close();
  }
});

test('bounded: a frame too large, a peer that stops mid-frame or sends nothing for the idle timeout, or one that ends mid-frame, is closed with a line naming why (never let on with a frame that may come)', async () => {
  const cases: [string, (a: net.Socket) => void, number, RegExp][] = [
    ['too large', (a) => {
      const h = Buffer.alloc(8);
      h.writeUInt32BE(MAGIC, 0);
      h.writeUInt32BE(10_000_000, 4);
      a.write(h);
    }, IDLE_MS, /frame is 10000000 bytes, over the 65536 allowed/],
    ['stops', (a) => a.write(ownFrame(own).subarray(0, 20)), 200, /no complete metadata exchange frame within 200 ms \(the connection's idle timeout\)/],
    ['silent', () => {}, 200, /no complete metadata exchange frame within 200 ms/],
    ['ends', (a) => a.end(ownFrame(own).subarray(0, 20)), IDLE_MS, /ended in the middle of its metadata exchange frame/],
  ];
  for (const [name, act, timeout, want] of cases) {
    const { a, b, close } = await pair();
    try {
      const logs: string[] = [];
      act(a);
      const r = await exchange(b, new PeerMetadataCache(), logs, timeout);
      assert.ok('failed' in r, name);
      assert.ok(b.destroyed, `${name}: closed`);
      assert.match(logs.join('\n'), want, name);
    } finally {
      close();
    }
  }
  // A socket already gone (its client closed while the connection was admitted): failed at once, never waiting for a close that came before.
  const { b, close } = await pair();
  try {
    b.destroy();
    const r = await exchange(b, new PeerMetadataCache(), [], 0);
    assert.ok('failed' in r);
  } finally {
    close();
  }
});

const MX = { name: 'istio.metadata_exchange', typed_config: { '@type': 'type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange', protocol: 'istio-peer-exchange' } };

test("the sidecar's config: the exchange on a cluster and on an inbound mTLS TCP chain; what it cannot do is refused naming the field", () => {
  const cluster = (filters: unknown) => convertCluster({ name: 'c', type: 'STATIC', load_assignment: { cluster_name: 'c', endpoints: [] }, filters });
  assert.deepEqual(cluster([MX]).peerExchange, { protocol: 'istio-peer-exchange' });
  assert.equal(cluster(undefined).peerExchange, undefined);
  assert.throws(() => cluster([{ name: 'x', typed_config: { '@type': 'type.googleapis.com/example.Other' } }]), /cluster c: filters\[0\]: unsupported upstream network filter type.googleapis.com\/example.Other/);
  assert.throws(() => cluster([{ ...MX, typed_config: { ...MX.typed_config, enable_discovery: true } }]), /filters\[0\]\.typed_config\.enable_discovery: not supported/);
  assert.throws(() => cluster([{ ...MX, typed_config: { ...MX.typed_config, protocol: '' } }]), /filters\[0\]\.typed_config\.protocol: none is not supported/);
  assert.throws(() => cluster([{ ...MX, typed_config: { ...MX.typed_config, protocol: 'my-exchange' } }]), /protocol: "my-exchange" is not supported \(the exchange runs on Istio's ALPN protocol istio-peer-exchange\)/);
  // Through the control plane's own listener: the mTLS TCP chain of a TCP port carries it.
  const server = provenServer();
  const x = translate(meshOf([], [server, workload('client', { serviceAccount: 'client-sa', port: 42000 })]), server);
  const l = convertListener(x.listeners['inbound|41010']);
  const tcpChain = l.mtls!.chains.find((c) => c.serve === 'tcp' && c.tls)!;
  assert.deepEqual(tcpChain.tcp!.peerExchange, { protocol: 'istio-peer-exchange' });
  assert.equal(l.mtls!.chains.find((c) => !c.tls)?.tcp?.peerExchange, undefined, 'not where TLS passes through');
});

test("the exchange only between proxies that run it: a stock Envoy or an older Weft sidecar (its node says nothing of it) gets neither the filters nor the protocol; the protocol is offered only to endpoints whose sidecar runs it", () => {
  const node = (metadata: object, extra: object = {}) => workloadFromNode({ id: 'sidecar~127.0.0.1~c.default~default.svc.cluster.local', metadata: { WORKLOAD_NAME: 'c', ...metadata }, ...extra });
  const weft = node({ PEER_EXCHANGE: 'istio-peer-exchange' }, { user_agent_name: 'weft' });
  const older = node({}, { user_agent_name: 'weft' });
  const istio = node({ ISTIO_VERSION: '1.24.0' }, { user_agent_name: 'envoy' });
  const envoy = node({}, { user_agent_name: 'envoy' });
  assert.ok('workload' in weft && 'workload' in older && 'workload' in istio && 'workload' in envoy);
  assert.deepEqual([weft.workload.peerExchange, older.workload.peerExchange, istio.workload.peerExchange, envoy.workload.peerExchange], [true, undefined, true, undefined]);
  // Endpoints: one whose sidecar runs the exchange, one whose does not (older).
  const server = workload('server', { service: 'server', serviceAccount: 'server-sa' });
  // An older sidecar's workload (or one the registry kept from before the flag): no flag at all.
  const { peerExchange: _, ...old } = workload('server-old', { service: 'server', serviceAccount: 'server-sa', port: 43000 });
  const mesh = meshOf([], [server, old]);
  const x = (w: object) => translate(mesh, { ...workload('client', { port: 42000 }), ...w });
  const name = Object.keys(x({}).clusters).find((n) => n.startsWith('outbound|') && n.includes('server'))!;
  const tsm = (c: any) => c.transport_socket_matches.map((m: any) => [m.name, m.match, m.transport_socket?.typed_config?.common_tls_context?.alpn_protocols ?? null]);
  const cluster = (x({}).clusters as Record<string, any>)[name];
  assert.deepEqual(cluster.filters, [MX]);
  assert.deepEqual(tsm(cluster), [
    ['tlsMode-istio-peer-exchange', { tlsMode: 'istio', peerExchange: 'istio-peer-exchange' }, ['istio-peer-exchange', 'istio']],
    ['tlsMode-istio', { tlsMode: 'istio' }, ['istio']],
    ['tlsMode-disabled', {}, null],
  ]);
  const eps = ((x({}).endpoints as Record<string, any>)[name]).endpoints.flatMap((l: any) => l.lb_endpoints).map((e: any) => [e.endpoint.address.socket_address.port_value, e.metadata.filter_metadata['envoy.transport_socket_match']]);
  assert.deepEqual(eps.sort(), [[41000, { tlsMode: 'istio', peerExchange: 'istio-peer-exchange' }], [43000, { tlsMode: 'istio' }]]);
  // A proxy that does not run it: no filter, no match that offers it, its own inbound TCP chains without it.
  const plain = (x({ peerExchange: undefined }).clusters as Record<string, any>)[name];
  assert.equal(plain.filters, undefined);
  assert.deepEqual(tsm(plain), [['tlsMode-istio', { tlsMode: 'istio' }, ['istio']], ['tlsMode-disabled', {}, null]]);
  const withTcp = (w: object) => translate(meshOf([], [{ ...provenServer(), ...w }]), { ...provenServer(), ...w }).listeners['inbound|41010'] as any;
  const mtlsChain = (l: any) => l.filter_chains.find((c: any) => c.name === 'mtls');
  assert.deepEqual(mtlsChain(withTcp({})).filters.map((f: any) => f.name), ['istio.metadata_exchange', 'envoy.filters.network.tcp_proxy']);
  // Its TLS offers the exchange's protocol first, as Istio's ALPNDownstreamWithMxc: a server that picks by its own list (Envoy) takes it.
  assert.deepEqual(mtlsChain(withTcp({})).transport_socket.typed_config.common_tls_context.alpn_protocols, ['istio-peer-exchange', 'h2', 'http/1.1']);
  assert.deepEqual(mtlsChain(withTcp({ peerExchange: undefined })).filters.map((f: any) => f.name), ['envoy.filters.network.tcp_proxy']);
  assert.deepEqual(mtlsChain(withTcp({ peerExchange: undefined })).transport_socket.typed_config.common_tls_context.alpn_protocols, ['h2', 'http/1.1']);
  // The sidecar's own offer: istio-peer-exchange only on TCP where its cluster runs the exchange (HTTP exchanges it in headers).
  const t = { alpn: ['istio-peer-exchange', 'istio'] } as never;
  assert.deepEqual(offeredAlpn(t, 'tcp', 'istio-peer-exchange'), ['istio-peer-exchange', 'istio']);
  assert.deepEqual(offeredAlpn(t, 'tcp'), ['istio']);
  assert.deepEqual(offeredAlpn(t, 'http1', 'istio-peer-exchange'), ['istio-http/1.1', 'istio']);
  assert.deepEqual(offeredAlpn(t, 'http2'), ['istio-h2', 'istio']);
});

test("the server takes istio-peer-exchange only for a chain that runs the exchange (else the client's frame would reach the app): 'istio' then", () => {
  const tcp = (peerExchange?: object) => ({ name: 't', alpn: ['istio', 'istio-peer-exchange'], serve: 'tcp', tls: {}, tcp: { clusters: [], totalWeight: 0, idleTimeoutMs: 0, ...(peerExchange ? { peerExchange } : {}) } }) as never;
  const offer = ['istio-peer-exchange', 'istio'];
  assert.equal(selectAlpn([tcp({ protocol: 'istio-peer-exchange' })], offer), 'istio-peer-exchange');
  assert.equal(selectAlpn([tcp()], offer), 'istio');
  assert.equal(selectAlpn([tcp()], ['istio-peer-exchange']), undefined, 'nothing else offered: the handshake ends, rather than a frame in an app stream');
  assert.equal(selectAlpn([tcp()], ['istio-http/1.1', 'istio-peer-exchange', 'istio']), 'istio');
});

test("a peer that behaves as Istio's Envoy (it writes its frame only once it has read something) is not kept waiting: ours goes first", async () => {
  const { a, b, close } = await pair();
  try {
    setPeerPrincipal(b, SLEEP);
    let got = Buffer.alloc(0);
    a.on('data', (d) => {
      const first = got.length === 0;
      got = Buffer.concat([got, d]);
      if (first) a.write(Buffer.concat([istioFrame({ NAMESPACE: 'foo', WORKLOAD_NAME: 'sleep-v1', LABELS: { app: 'sleep' } }, 'id'), Buffer.from('220 ready\r\n')]));
    });
    const r = await exchange(b, new PeerMetadataCache(), [], 5_000);
    assert.ok('rest' in r, JSON.stringify(r));
    assert.equal(r.rest.toString(), '220 ready\r\n', 'what the peer sent after its frame');
    assert.equal(peerMetadataOf(b)?.app, 'sleep');
  } finally {
    close();
  }
});

test('an idle timeout past what a timer takes (a DestinationRule idleTimeout of 720h) does not end the exchange at once (a timer of more than 2^31-1 ms fires after 1 ms)', async () => {
  const { a, b, close } = await pair();
  try {
    setPeerPrincipal(b, SLEEP);
    const done = exchange(b, new PeerMetadataCache(), [], 720 * 3600 * 1000);
    // The peer's frame comes a little later than a millisecond.
    await new Promise((r) => setTimeout(r, 50));
    a.write(istioFrame({ NAMESPACE: 'foo', WORKLOAD_NAME: 'sleep-v1', LABELS: { app: 'sleep' } }, 'id'));
    const r = await done;
    assert.ok('rest' in r, JSON.stringify(r));
    assert.equal(peerMetadataOf(b)?.app, 'sleep');
  } finally {
    close();
  }
});
