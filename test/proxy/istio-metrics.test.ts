// Istio's standard metrics as the sidecar writes them, fed the request path's events: the full
// label set with Istio's values and fallbacks, Envoy's default histogram buckets, gRPC messages
// counted from their length-prefixed framing, TCP bytes of connections still open, and the
// sidecar's own health (weft_*). Real Prometheus reads them in test/e2e/prometheus.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { EMPTY_CONFIG, type RuntimeConfig } from '../../src/proxy/config.ts';
import type { Downstream } from '../../src/proxy/http/types.ts';
import { GrpcMessageCounter } from '../../src/proxy/http/grpc-frames.ts';
import { Telemetry } from '../../src/proxy/telemetry/events.ts';
import { ENVOY_BUCKETS, Histogram } from '../../src/proxy/telemetry/histogram.ts';
import { histogramLines } from '../../src/proxy/telemetry/exposition.ts';
import { IstioMetrics, REQUEST_LABELS, TCP_LABELS } from '../../src/proxy/telemetry/istio-metrics.ts';
import { HealthMetrics, versionNumber } from '../../src/proxy/telemetry/health-metrics.ts';
import { setPeerPrincipal } from '../../src/proxy/tls/peer.ts';
import { waitFor } from '../helpers.ts';
import { parseExposition } from '../fixtures/exposition.ts';

const parse = parseExposition;

const ME = 'spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews';
const PEER = 'spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage';

function metrics(labels: Record<string, string>, workload = 'reviews-v2'): { t: Telemetry; m: IstioMetrics } {
  const listeners = new Map([
    ['inbound|9080', { name: 'inbound|9080', direction: 'inbound' }],
    ['outbound', { name: 'outbound', direction: 'outbound' }],
  ]);
  const config = () => ({ ...EMPTY_CONFIG, listeners }) as unknown as RuntimeConfig;
  const t = new Telemetry();
  const m = new IstioMetrics(config, { workload, namespace: 'bookinfo', labels, service: 'reviews.bookinfo.svc.cluster.local', principal: () => ME });
  m.subscribe(t);
  return { t, m };
}

function request(o: { listener: string; peer?: string; peerWorkload?: string; grpc?: boolean; path?: string }): Downstream {
  const headers = o.grpc ? ['content-type', 'application/grpc'] : [];
  return { head: { method: 'GET', authority: 'reviews:9080', path: o.path ?? '/', query: '', headers, hasBody: false, protocol: o.grpc ? 'HTTP/2' : 'HTTP/1.1' }, listenerName: o.listener, remoteAddress: () => '127.0.0.1', sourcePrincipal: () => o.peer, peerWorkload: () => o.peerWorkload } as unknown as Downstream;
}

test('destination reporter over mTLS: every one of Istio\'s labels, in its order; the peer is what its certificate proves, its app and version "unknown"', () => {
  const { t, m } = metrics({ app: 'reviews', version: 'v2' });
  t.request.publish({ cluster: 'inbound|9080||', status: 503, reason: 'no_healthy_endpoint', durationMs: 12, bytesReceived: 3, bytesSent: 19, ds: request({ listener: 'inbound|9080', peer: PEER, peerWorkload: 'productpage-v1' }) });
  const s = parse(m.prometheus()).filter((x) => x.name === 'istio_requests_total');
  assert.equal(s.length, 1);
  assert.deepEqual(Object.keys(s[0]!.labels), [...REQUEST_LABELS]);
  assert.deepEqual(s[0]!.labels, {
    reporter: 'destination',
    source_workload: 'productpage-v1',
    source_canonical_service: 'unknown',
    source_canonical_revision: 'unknown',
    source_workload_namespace: 'bookinfo',
    source_principal: PEER,
    source_app: 'unknown',
    source_version: 'unknown',
    source_cluster: 'Kubernetes',
    destination_workload: 'reviews-v2',
    destination_workload_namespace: 'bookinfo',
    destination_principal: ME,
    destination_app: 'reviews',
    destination_version: 'v2',
    destination_service: 'reviews.bookinfo.svc.cluster.local',
    destination_canonical_service: 'reviews',
    destination_canonical_revision: 'v2',
    destination_service_name: 'reviews',
    destination_service_namespace: 'bookinfo',
    destination_cluster: 'Kubernetes',
    request_protocol: 'http',
    response_code: '503',
    grpc_response_status: '',
    response_flags: 'UH',
    connection_security_policy: 'mutual_tls',
  });
  assert.equal(s[0]!.value, 1);
});

test("source reporter over plain text: the server is all \"unknown\"; this workload's canonical service and revision fall back as Istio's do", () => {
  const { t, m } = metrics({ 'app.kubernetes.io/name': 'reviews-k8s', 'service.istio.io/canonical-revision': 'r7' });
  t.request.publish({ cluster: 'outbound|9080||ratings.bookinfo.svc.cluster.local', status: 200, durationMs: 1, ds: request({ listener: 'outbound' }) });
  const [s] = parse(m.prometheus()).filter((x) => x.name === 'istio_requests_total');
  assert.equal(s!.labels.reporter, 'source');
  assert.equal(s!.labels.source_app, 'reviews-k8s', 'app: the app label, else app.kubernetes.io/name');
  assert.equal(s!.labels.source_version, 'unknown');
  assert.equal(s!.labels.source_canonical_service, 'reviews-k8s');
  assert.equal(s!.labels.source_canonical_revision, 'r7');
  assert.equal(s!.labels.source_principal, 'unknown', 'no mTLS: this end proves nothing either');
  for (const k of ['destination_workload', 'destination_workload_namespace', 'destination_principal', 'destination_app', 'destination_version', 'destination_canonical_service', 'destination_canonical_revision', 'destination_cluster']) assert.equal(s!.labels[k], 'unknown', k);
  assert.equal(s!.labels.destination_service, 'ratings.bookinfo.svc.cluster.local');
  assert.equal(s!.labels.destination_service_name, 'ratings');
  assert.equal(s!.labels.destination_service_namespace, 'bookinfo');
  assert.equal(s!.labels.connection_security_policy, 'unknown', 'as Istio: the source side does not know');
  // No labels at all: the workload's name and "latest".
  const bare = metrics({}, 'details-v1');
  bare.t.request.publish({ cluster: 'outbound|9080||details.bookinfo.svc.cluster.local', status: 200, ds: request({ listener: 'outbound' }) });
  const [b] = parse(bare.m.prometheus()).filter((x) => x.name === 'istio_requests_total');
  assert.equal(b!.labels.source_canonical_service, 'details-v1');
  assert.equal(b!.labels.source_canonical_revision, 'latest');
});

test("histograms: Envoy's default buckets (Istio's), cumulative, +Inf equal to _count, _sum the total; series grow with edges, not with paths", () => {
  const { t, m } = metrics({ app: 'reviews' });
  const durations = [0.2, 3, 3, 40, 120, 400, 400, 5000];
  for (let i = 0; i < durations.length; i++) {
    t.request.publish({ cluster: 'inbound|9080||', status: 200, durationMs: durations[i], bytesReceived: 0, bytesSent: 10 ** i, ds: request({ listener: 'inbound|9080', peer: PEER, peerWorkload: 'productpage-v1', path: `/p/${i}?id=${Math.random()}` }) });
  }
  const all = parse(m.prometheus());
  const buckets = all.filter((x) => x.name === 'istio_request_duration_milliseconds_bucket');
  assert.deepEqual(buckets.map((b) => b.labels.le), [...ENVOY_BUCKETS.map(String), '+Inf']);
  const at = (le: string) => buckets.find((b) => b.labels.le === le)!.value;
  assert.equal(at('0.5'), 1);
  assert.equal(at('5'), 3);
  assert.equal(at('50'), 4);
  assert.equal(at('250'), 5);
  assert.equal(at('500'), 7);
  assert.equal(at('5000'), 8);
  assert.equal(at('+Inf'), 8);
  assert.equal(all.find((x) => x.name === 'istio_request_duration_milliseconds_count')!.value, 8);
  assert.equal(all.find((x) => x.name === 'istio_request_duration_milliseconds_sum')!.value, durations.reduce((a, b) => a + b, 0));
  assert.equal(all.find((x) => x.name === 'istio_response_bytes_sum')!.value, 11111111);
  assert.equal(all.filter((x) => x.name === 'istio_requests_total').length, 1, 'eight paths, one series');
  assert.equal(all.filter((x) => x.name === 'istio_request_bytes_count').length, 1);
});

test('gRPC: messages each way and grpc_response_status; request_protocol "grpc"', () => {
  const { t, m } = metrics({ app: 'reviews' });
  t.request.publish({ cluster: 'inbound|9080||', status: 200, grpcStatus: '0', requestMessages: 3, responseMessages: 5, ds: request({ listener: 'inbound|9080', grpc: true }) });
  t.request.publish({ cluster: 'inbound|9080||', status: 200, grpcStatus: '14', requestMessages: 1, responseMessages: 0, ds: request({ listener: 'inbound|9080', grpc: true }) });
  const all = parse(m.prometheus());
  const req = all.filter((x) => x.name === 'istio_requests_total');
  assert.deepEqual(req.map((r) => [r.labels.request_protocol, r.labels.grpc_response_status, r.value]), [['grpc', '0', 1], ['grpc', '14', 1]]);
  assert.deepEqual(all.filter((x) => x.name === 'istio_request_messages_total').map((r) => r.value), [3, 1]);
  assert.deepEqual(all.filter((x) => x.name === 'istio_response_messages_total').map((r) => r.value), [5, 0]);
});

test('grpc_response_status: codes 0-16 as numbers; whatever else an upstream sends is one "unknown" series, never a series per value (review defect)', () => {
  const { t, m } = metrics({ app: 'reviews' });
  for (let i = 0; i < 500; i++) t.request.publish({ cluster: 'inbound|9080||', status: 200, grpcStatus: `bogus-${i}`, ds: request({ listener: 'inbound|9080', grpc: true }) });
  for (const s of ['99', '17', '007', '-1', '']) t.request.publish({ cluster: 'inbound|9080||', status: 200, grpcStatus: s, ds: request({ listener: 'inbound|9080', grpc: true }) });
  t.request.publish({ cluster: 'inbound|9080||', status: 200, grpcStatus: '16', ds: request({ listener: 'inbound|9080', grpc: true }) });
  const req = parse(m.prometheus()).filter((x) => x.name === 'istio_requests_total');
  assert.deepEqual(req.map((r) => [r.labels.grpc_response_status, r.value]), [['unknown', 505], ['16', 1]]);
});

test('gRPC framing: messages counted however the bytes are split, without keeping them', () => {
  const message = (n: number) => {
    const b = Buffer.alloc(5 + n, 7);
    b[0] = 0;
    b.writeUInt32BE(n, 1);
    return b;
  };
  const stream = Buffer.concat([message(0), message(1), message(300), message(70_000), message(4)]);
  for (const size of [1, 2, 3, 5, 7, 64, 4096, stream.length]) {
    const c = new GrpcMessageCounter();
    for (let i = 0; i < stream.length; i += size) c.feed(stream.subarray(i, i + size));
    assert.equal(c.count, 5, `chunks of ${size}`);
  }
  const c = new GrpcMessageCounter();
  c.feed(message(10).subarray(0, 8));
  assert.equal(c.count, 1, 'a message counts once its prefix is complete');
});

test('TCP: opened/closed and both byte counters with the TCP label set; bytes of an open connection show at each scrape', async () => {
  const { t, m } = metrics({ app: 'reviews' });
  const server = net.createServer((c) => c.pipe(c));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const up = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((r) => up.once('connect', r));
  const down = new net.Socket();
  setPeerPrincipal(down, PEER);
  try {
    t.tcp.publish({ kind: 'open', cluster: 'inbound|9000||', endpoint: 'x', listener: 'inbound|9080', down, up });
    up.write('hello');
    await waitFor('the echo', async () => up.bytesRead === 5);
    const open = parse(m.prometheus());
    const v = (name: string) => open.find((x) => x.name === name)!;
    assert.deepEqual(Object.keys(v('istio_tcp_received_bytes_total').labels), [...TCP_LABELS]);
    assert.equal(v('istio_tcp_received_bytes_total').value, 5);
    assert.equal(v('istio_tcp_sent_bytes_total').value, 5);
    assert.equal(v('istio_tcp_connections_opened_total').value, 1);
    assert.equal(v('istio_tcp_connections_closed_total').value, 0);
    assert.equal(v('istio_tcp_connections_opened_total').labels.request_protocol, 'tcp');
    assert.equal(v('istio_tcp_connections_opened_total').labels.source_principal, PEER);
    up.write('more!');
    await waitFor('the echo', async () => up.bytesRead === 10);
    t.tcp.publish({ kind: 'close', cluster: 'inbound|9000||', endpoint: 'x', listener: 'inbound|9080', down, up, bytesSent: up.bytesWritten, bytesReceived: up.bytesRead });
    const closed = parse(m.prometheus());
    const c = (name: string) => closed.find((x) => x.name === name)!.value;
    assert.equal(c('istio_tcp_received_bytes_total'), 10, 'counted once, whether at a scrape or at the close');
    assert.equal(c('istio_tcp_sent_bytes_total'), 10);
    assert.equal(c('istio_tcp_connections_closed_total'), 1);
  } finally {
    up.destroy();
    server.close();
  }
});

test('exposition: a histogram without labels, and label values escaped', () => {
  const h = new Histogram([1, 2]);
  h.observe(1.5);
  const out: string[] = [];
  histogramLines(out, 'x', '', h);
  assert.deepEqual(out, ['x_bucket{le="1"} 0', 'x_bucket{le="2"} 1', 'x_bucket{le="+Inf"} 1', 'x_sum 1.5', 'x_count 1']);
});

test("the sidecar's health: xDS versions and state, certificate expiry, event-loop delay of a blocked loop, memory, connections", async () => {
  const h = new HealthMetrics({
    xds: () => ({ connected: true, reconnects: 2, types: { CDS: { version: '17' }, LDS: { version: 'v-abc', lastNack: 'bad' } } }),
    certNotAfter: () => Date.now() + 3600_000,
    downstreamConnections: () => 4,
    upstreamConnections: () => ({ http: 3, tcp: 1 }),
  }, 100);
  try {
    // The event loop held for 150 ms at each poll, as a synchronous hot spot would, until a window shows it.
    const s = await waitFor('a window with the blocked loop', async () => {
      const s = parse(h.prometheus());
      if (s.find((x) => x.name === 'weft_event_loop_delay_max_seconds')!.value >= 0.1) return s;
      const block = Date.now() + 150;
      while (Date.now() < block);
      return undefined;
    }, 10_000);
    const v = (name: string, labels: Record<string, string> = {}) => s.find((x) => x.name === name && Object.entries(labels).every(([k, l]) => x.labels[k] === l))?.value;
    assert.ok(v('weft_event_loop_delay_p99_seconds')! <= v('weft_event_loop_delay_max_seconds')!);
    assert.equal(v('weft_xds_connected'), 1);
    assert.equal(v('weft_xds_reconnects_total'), 2);
    assert.equal(v('weft_xds_config_version', { type: 'CDS' }), 17);
    assert.equal(v('weft_xds_config_version', { type: 'LDS' }), versionNumber('v-abc'));
    assert.equal(v('weft_xds_config_rejected', { type: 'LDS' }), 1);
    assert.equal(v('weft_xds_config_rejected', { type: 'CDS' }), 0);
    assert.ok(Math.abs(v('weft_workload_cert_expiry_seconds')! - 3600) <= 60);
    assert.ok(v('weft_process_resident_memory_bytes')! > v('weft_process_heap_used_bytes')!);
    assert.equal(v('weft_downstream_connections'), 4);
    assert.equal(v('weft_upstream_connections', { kind: 'http' }), 3);
    assert.equal(v('weft_upstream_connections', { kind: 'tcp' }), 1);
  } finally {
    h.stop();
  }
});
