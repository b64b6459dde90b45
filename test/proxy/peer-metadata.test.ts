// Istio's metadata exchange in the sidecar (http/peer-metadata.ts, xds-client/convert-peer-metadata.ts,
// telemetry/istio-labels.ts): the header's encoding as Istio's proxies write and read it, what a
// peer's metadata must prove to be believed, the bound on what one peer may bring, the headers
// taken off and put on, and the filter's config. No sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_PER_PEER, MX_HEADER, MX_ID_HEADER, PeerMetadataCache, answerHeaders, decodePeerMetadata, ownMetadata, takeMetadataHeaders, withOwnMetadata } from '../../src/proxy/http/peer-metadata.ts';
import { peerMetadataConfig } from '../../src/proxy/xds-client/convert-peer-metadata.ts';
import { provenPeer } from '../../src/proxy/telemetry/istio-labels.ts';
import { decode, encode } from '../../src/xds/protos.ts';
import { INBOUND_PEER_METADATA, OUTBOUND_PEER_METADATA } from '../../src/control/translate/peer-metadata.ts';

const STRUCT = 'type.googleapis.com/google.protobuf.Struct';
const SLEEP = 'spiffe://cluster.local/ns/foo/sa/sleep';
const own = (labels: Record<string, string> = { app: 'sleep', version: 'v1' }, workload = 'sleep-v1', namespace = 'foo') =>
  ownMetadata({ nodeId: `sidecar~10.0.0.1~${workload}-1-ab.${namespace}~${namespace}.svc.cluster.local`, name: `${workload}-1-ab`, namespace, workload, cluster: 'Kubernetes', labels, canonicalService: labels.app ?? workload, canonicalRevision: labels.version ?? 'latest' });

test("this workload's header is base64 of a google.protobuf.Struct with Istio's flat node keys, and reads back", () => {
  const m = own({ app: 'sleep', version: 'v1', team: 'a' });
  const s = decode(STRUCT, Buffer.from(m.value, 'base64'));
  assert.deepEqual(s, {
    NAME: 'sleep-v1-1-ab',
    NAMESPACE: 'foo',
    WORKLOAD_NAME: 'sleep-v1',
    CLUSTER_ID: 'Kubernetes',
    LABELS: { app: 'sleep', version: 'v1', team: 'a', 'service.istio.io/canonical-name': 'sleep', 'service.istio.io/canonical-revision': 'v1' },
  });
  assert.equal(m.id, 'sidecar~10.0.0.1~sleep-v1-1-ab.foo~foo.svc.cluster.local');
  assert.deepEqual({ ...decodePeerMetadata(m.value) }, { workload: 'sleep-v1', namespace: 'foo', app: 'sleep', version: 'v1', canonicalService: 'sleep', canonicalRevision: 'v1', cluster: 'Kubernetes' });
});

test("an Istio proxy's header, with the fields Weft does not read (lists, nested platform metadata), gives its labels", () => {
  const istio = {
    APP_CONTAINERS: 'reviews',
    CLUSTER_ID: 'Kubernetes',
    INSTANCE_IPS: '10.244.0.12',
    ISTIO_VERSION: '1.24.0',
    LABELS: { app: 'reviews', version: 'v3', 'security.istio.io/tlsMode': 'istio', 'service.istio.io/canonical-name': 'reviews', 'service.istio.io/canonical-revision': 'v3' },
    MESH_ID: 'cluster.local',
    NAME: 'reviews-v3-7d8f9c-x2x4z',
    NAMESPACE: 'default',
    OWNER: 'kubernetes://apis/apps/v1/namespaces/default/deployments/reviews-v3',
    PLATFORM_METADATA: { gcp_project: 'p' },
    WORKLOAD_NAME: 'reviews-v3',
    ALIST: ['a', 1, true, null],
  };
  const value = Buffer.from(encode(STRUCT, istio)).toString('base64');
  assert.deepEqual({ ...decodePeerMetadata(value) }, { workload: 'reviews-v3', namespace: 'default', app: 'reviews', version: 'v3', canonicalService: 'reviews', canonicalRevision: 'v3', cluster: 'Kubernetes' });
  // Unpadded, as Envoy's decodeWithoutPadding also takes it.
  assert.equal(decodePeerMetadata(value.replace(/=+$/, ''))?.app, 'reviews');
});

test('what is not base64 of a Struct, or too long, is no metadata (never a throw)', () => {
  for (const v of ['', 'not base64!', '%%%', Buffer.from([0xff, 0xff, 0xff, 0x0f]).toString('base64'), 'A'.repeat(9000), Buffer.from('\n\x05\n\x03foo').toString('base64')]) {
    const m = decodePeerMetadata(v);
    assert.ok(m === undefined || (m.app === undefined && m.workload === undefined), JSON.stringify(v.slice(0, 40)));
  }
});

test("a peer's metadata is believed over mutual TLS only, and only where it names its certificate's namespace and workload", () => {
  const c = new PeerMetadataCache();
  const v = own().value;
  assert.equal(c.accept(v, undefined, 'sleep-v1'), undefined, 'no mTLS: nothing');
  assert.equal(c.accept(v, 'spiffe://cluster.local/ns/bar/sa/sleep', 'sleep-v1'), undefined, 'another namespace than its SPIFFE id');
  assert.equal(c.accept(v, SLEEP, 'httpbin'), undefined, "another workload than its certificate's");
  assert.equal(c.accept('garbage', SLEEP, 'sleep-v1'), undefined);
  assert.equal(c.accept(v, 'spiffe://cluster.local/weird', 'sleep-v1'), undefined, 'a SPIFFE id without a namespace');
  assert.equal(c.accept(own({}).value, SLEEP, 'sleep-v1')?.app, undefined, 'no app label: its canonical service is the workload');
  const bare = Buffer.from(encode(STRUCT, { NAMESPACE: 'foo', WORKLOAD_NAME: 'sleep-v1' })).toString('base64');
  assert.equal(c.accept(bare, SLEEP, 'sleep-v1'), undefined, 'metadata with no label the metrics take (it would make a second series of the same labels)');
  assert.equal(c.refused, 5);
  const a = c.accept(v, SLEEP, 'sleep-v1');
  assert.equal(a?.app, 'sleep');
  // The same content is the same object (the metrics key series by it), from a new string too.
  assert.equal(c.accept(`${v} `.trim(), SLEEP, 'sleep-v1'), a);
  assert.equal(c.accept(own().value, SLEEP, undefined)?.app, 'sleep', 'a certificate that names no workload: the namespace must agree');
});

test(`one peer identity brings at most ${MAX_PER_PEER} different metadata: past that its metadata is not believed (series cannot grow without bound)`, () => {
  const c = new PeerMetadataCache();
  const got: (string | undefined)[] = [];
  for (let i = 0; i < MAX_PER_PEER + 3; i++) got.push(c.accept(own({ app: 'sleep', version: `v${i}` }).value, SLEEP, 'sleep-v1')?.version);
  assert.deepEqual(got, [...Array.from({ length: MAX_PER_PEER }, (_, i) => `v${i}`), undefined, undefined, undefined]);
  assert.equal(c.refused, 3);
  // What it was allowed stays believed; another identity has its own allowance.
  assert.equal(c.accept(own({ app: 'sleep', version: 'v0' }).value, SLEEP, 'sleep-v1')?.version, 'v0');
  assert.equal(c.accept(own({ app: 'x', version: 'v99' }, 'other', 'foo').value, 'spiffe://cluster.local/ns/foo/sa/other', 'other')?.version, 'v99');
});

test('the headers are taken off a request or an answer in place, the others kept in order; an app\'s own are replaced on the way out', () => {
  const h = ['host', 'a', MX_HEADER, 'v1', 'accept', '*/*', MX_ID_HEADER, 'id', MX_HEADER, 'v2', 'x-b', 'b'];
  assert.deepEqual({ ...takeMetadataHeaders(h) }, { value: 'v1', id: 'id' });
  assert.deepEqual(h, ['host', 'a', 'accept', '*/*', 'x-b', 'b']);
  assert.deepEqual({ ...takeMetadataHeaders(h) }, { value: undefined, id: undefined });
  const m = own();
  // The answer echoes each header the request carried, as Istio's filter does.
  assert.deepEqual(answerHeaders(m, { value: 'v', id: 'i' }), [MX_ID_HEADER, m.id, MX_HEADER, m.value]);
  assert.deepEqual(answerHeaders(m, { value: undefined, id: '' }), [MX_ID_HEADER, m.id]);
  assert.deepEqual(answerHeaders(m, { value: 'v', id: undefined }), [MX_HEADER, m.value]);
  assert.equal(answerHeaders(m, { value: undefined, id: undefined }), undefined);
  const app = ['host', 'a', MX_HEADER, 'forged'];
  assert.deepEqual(withOwnMetadata(app, m), ['host', 'a', MX_ID_HEADER, m.id, MX_HEADER, m.value]);
  assert.deepEqual(app, ['host', 'a', MX_HEADER, 'forged'], "the route's header list is not changed");
});

test("a peer's labels: from its metadata where it sent some, else unknown; the certificate's workload wins", () => {
  const meta = decodePeerMetadata(own().value)!;
  assert.deepEqual(provenPeer(SLEEP, 'sleep-v1', meta), { workload: 'sleep-v1', namespace: 'foo', principal: SLEEP, app: 'sleep', version: 'v1', canonicalService: 'sleep', canonicalRevision: 'v1', cluster: 'Kubernetes' });
  assert.equal(provenPeer(SLEEP, 'sleep-v1').app, 'unknown');
  assert.equal(provenPeer(SLEEP, undefined, meta).workload, 'unknown', "the workload is only ever the certificate's");
  assert.equal(provenPeer(undefined, undefined, meta).app, 'unknown', 'no mTLS: nothing of the peer');
});

test("the filter's config: Istio's headers each way; another discovery method, or sharing with upstream, is refused naming the field", () => {
  const f = (value: unknown) => ({ typed_config: { '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct', type_url: 'type.googleapis.com/io.istio.http.peer_metadata.Config', value } });
  assert.deepEqual(peerMetadataConfig('l', OUTBOUND_PEER_METADATA), { downstreamDiscovery: false, downstreamPropagation: false, upstreamDiscovery: true, upstreamPropagation: true });
  assert.deepEqual(peerMetadataConfig('l', INBOUND_PEER_METADATA), { downstreamDiscovery: true, downstreamPropagation: true, upstreamDiscovery: false, upstreamPropagation: false });
  assert.throws(() => peerMetadataConfig('l', f({ upstream_discovery: [{ istio_headers: {} }, { workload_discovery: {} }] })), /l\.typed_config\.value\.upstream_discovery\[1\]: workload_discovery is not supported/);
  assert.throws(() => peerMetadataConfig('l', f({ downstream_discovery: [{ baggage: {} }] })), /downstream_discovery\[0\]: baggage is not supported/);
  assert.throws(() => peerMetadataConfig('l', f({ shared_with_upstream: true })), /shared_with_upstream: not supported/);
  assert.throws(() => peerMetadataConfig('l', f({ upstream_discovery: 'yes' })), /upstream_discovery: must be a list/);
  assert.throws(() => peerMetadataConfig('l', f({ nope: [] })), /value\.nope: not supported/);
});
