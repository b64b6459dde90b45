// Istio's metrics on a listener with Istio's stats filter (a Telemetry's metrics section:
// translate/telemetry-metrics.ts -> xds-client/convert-stats.ts), as a scrape of
// /stats/prometheus shows them: a metric dropped on one side only, a label removed, a label added
// from a request header ("unknown" without it), a standard label replaced, and the TCP metrics.
// The filter comes through the same listener conversion the xDS client uses. No sockets but one
// TCP pair.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { EMPTY_CONFIG, type RuntimeConfig } from '../../src/proxy/config.ts';
import type { Downstream } from '../../src/proxy/http/types.ts';
import { Telemetry } from '../../src/proxy/telemetry/events.ts';
import { IstioMetrics, REQUEST_LABELS } from '../../src/proxy/telemetry/istio-metrics.ts';
import { convertListener } from '../../src/proxy/xds-client/convert.ts';
import { TYPE } from '../../src/xds/types.ts';
import { setPeerPrincipal } from '../../src/proxy/tls/peer.ts';
import { waitFor } from '../helpers.ts';
import { parseExposition } from '../fixtures/exposition.ts';

const parse = parseExposition;

const ME = 'spiffe://cluster.local/ns/bookinfo/sa/reviews';
const PEER = 'spiffe://cluster.local/ns/bookinfo/sa/productpage';

const stats = (metrics: object[]) => ({ name: 'istio.stats', typed_config: { '@type': TYPE.typedStruct, type_url: 'type.googleapis.com/stats.PluginConfig', value: { metrics } } });

/** A listener as the control plane sends it, with the stats filter before the router (or none). */
function listener(name: string, direction: 'INBOUND' | 'OUTBOUND', metrics?: object[]): object {
  const http_filters = [...(metrics ? [stats(metrics)] : []), { name: 'envoy.filters.http.router', typed_config: { '@type': TYPE.router } }];
  return {
    name,
    traffic_direction: direction,
    address: { socket_address: { address: '127.0.0.1', port_value: 15000 } },
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': TYPE.hcm, stat_prefix: name, route_config: { name, virtual_hosts: [] }, http_filters } }] }],
  };
}

function sidecar(inbound?: object[], outbound?: object[]) {
  const listeners = new Map([
    ['inbound|9080', convertListener(listener('inbound|9080', 'INBOUND', inbound))],
    ['outbound', convertListener(listener('outbound', 'OUTBOUND', outbound))],
  ]);
  const config = () => ({ ...EMPTY_CONFIG, listeners }) as unknown as RuntimeConfig;
  const t = new Telemetry();
  const m = new IstioMetrics(config, { workload: 'reviews-v2', namespace: 'bookinfo', labels: { app: 'reviews', version: 'v2' }, service: 'reviews.bookinfo.svc.cluster.local', principal: () => ME });
  m.subscribe(t);
  return { t, m, scrape: () => parse(m.prometheus()) };
}

function request(listener: string, headers: string[] = [], path = '/'): Downstream {
  return { head: { method: 'GET', authority: 'reviews:9080', path, query: '', headers, hasBody: false, protocol: 'HTTP/1.1' }, listenerName: listener, remoteAddress: () => '127.0.0.1', sourcePrincipal: () => (listener === 'outbound' ? undefined : PEER), peerWorkload: () => 'productpage-v1' } as unknown as Downstream;
}

const inbound = (headers?: string[], path?: string) => ({ cluster: 'inbound|9080||', status: 200, durationMs: 3, bytesReceived: 0, bytesSent: 10, ds: request('inbound|9080', headers, path) });
const outbound = (headers?: string[]) => ({ cluster: 'outbound|9080||ratings.bookinfo.svc.cluster.local', status: 200, durationMs: 5, bytesReceived: 0, bytesSent: 7, ds: request('outbound', headers), upstreamPeer: 'spiffe://cluster.local/ns/bookinfo/sa/ratings', upstreamWorkload: 'ratings-v1' });

test('REQUEST_COUNT disabled for SERVER: istio_requests_total{reporter="destination"} is gone, the source side still has it, and the server keeps its other metrics', () => {
  const { t, scrape } = sidecar([{ name: 'requests_total', drop: true }]);
  t.request.publish(inbound());
  t.request.publish(outbound());
  const s = scrape();
  const reporters = (name: string) => s.filter((x) => x.name === name).map((x) => x.labels.reporter);
  assert.deepEqual(reporters('istio_requests_total'), ['source']);
  assert.deepEqual(new Set(reporters('istio_request_duration_milliseconds_count')), new Set(['destination', 'source']));
  assert.deepEqual(Object.keys(s.find((x) => x.name === 'istio_request_duration_milliseconds_count' && x.labels.reporter === 'destination')!.labels), [...REQUEST_LABELS], 'the standard labels, in order');
});

test('REMOVE drops the label from the exposition, and its series merge (request_protocol of http and grpc alike)', () => {
  const { t, scrape } = sidecar([{ name: 'requests_total', tags_to_remove: ['request_protocol', 'response_code', 'not_a_label'] }]);
  t.request.publish(inbound());
  t.request.publish({ ...inbound(), status: 503 });
  const s = scrape().filter((x) => x.name === 'istio_requests_total');
  assert.equal(s.length, 1);
  assert.equal(s[0]!.value, 2);
  assert.equal('request_protocol' in s[0]!.labels, false);
  assert.equal('response_code' in s[0]!.labels, false);
  assert.equal(s[0]!.labels.reporter, 'destination');
  // Its histograms keep every label.
  const d = scrape().filter((x) => x.name === 'istio_request_duration_milliseconds_count');
  assert.deepEqual(new Set(d.map((x) => x.labels.response_code)), new Set(['200', '503']));
});

test("UPSERT adds a label whose value is the request header's; without the header it is \"unknown\"; a series per value the user asked for", () => {
  const { t, scrape } = sidecar(undefined, [{ name: 'requests_total', dimensions: { user: "request.headers['x-user']", destination_app: "'ratings'" } }]);
  t.request.publish(outbound(['x-user', 'alice']));
  t.request.publish(outbound(['x-user', 'alice']));
  t.request.publish(outbound(['x-user', 'bob']));
  t.request.publish(outbound());
  const s = scrape().filter((x) => x.name === 'istio_requests_total');
  assert.deepEqual(Object.fromEntries(s.map((x) => [x.labels.user, x.value])), { alice: 2, bob: 1, unknown: 1 });
  const labels = Object.keys(s[0]!.labels);
  assert.equal(labels.at(-1), 'user', 'an added label comes after the standard ones');
  assert.equal(labels.length, REQUEST_LABELS.length + 1);
  assert.equal(s[0]!.labels.destination_app, 'ratings', 'a standard label replaced in place');
  assert.equal(labels.indexOf('destination_app'), REQUEST_LABELS.indexOf('destination_app'));
  // The other metrics: the standard labels, one series (no header in them).
  assert.equal(scrape().filter((x) => x.name === 'istio_request_bytes_count').length, 1);
});

test('series still grow with edges, never with paths, unless a label asks for them; a non-string value is printed as Envoy prints it', () => {
  const { t, scrape } = sidecar([{ name: 'requests_total', dimensions: { size: 'response.size', ok: 'response.code == 200' } }]);
  for (let i = 0; i < 50; i++) t.request.publish(inbound([], `/item/${i}`));
  const s = scrape().filter((x) => x.name === 'istio_requests_total');
  assert.equal(s.length, 1);
  assert.equal(s[0]!.labels.size, '10');
  assert.equal(s[0]!.labels.ok, 'true');
});

test("an expression that does not parse: a standard label it would replace is left out, a label it would add is not added (Envoy's stats filter)", () => {
  const { t, scrape } = sidecar([{ name: 'requests_total', dimensions: { response_code: 'response.code +', extra: "request.headers['" } }]);
  t.request.publish(inbound());
  const s = scrape().find((x) => x.name === 'istio_requests_total')!;
  assert.equal('response_code' in s.labels, false);
  assert.equal('extra' in s.labels, false);
  assert.equal(Object.keys(s.labels).length, REQUEST_LABELS.length - 1);
});

test('the filter for all metrics (no name) relabels every metric; a drop without a name drops none (as the filter does)', () => {
  const { t, scrape } = sidecar([{ dimensions: { env: "'prod'" } }, { drop: true }]);
  t.request.publish(inbound());
  const s = scrape();
  for (const name of ['istio_requests_total', 'istio_request_duration_milliseconds_count', 'istio_request_bytes_count', 'istio_response_bytes_count']) {
    assert.equal(s.find((x) => x.name === name)?.labels.env, 'prod', name);
  }
});

test('a listener without the filter reports the defaults beside one that has it; no duplicate series when both reach the same labels', () => {
  const { t, scrape } = sidecar([{ name: 'requests_total', drop: true }], undefined);
  t.request.publish(outbound());
  t.request.publish(inbound());
  const s = scrape();
  const seen = new Set<string>();
  for (const x of s) {
    const key = `${x.name}${JSON.stringify(x.labels)}`;
    assert.ok(!seen.has(key), `duplicate series ${key}`);
    seen.add(key);
  }
  assert.equal(s.filter((x) => x.name === 'istio_requests_total').length, 1);
});

test('the filter gone (the Telemetry deleted): the metric it dropped is reported again, on the same series, counting from then on', () => {
  const listeners = new Map([['inbound|9080', convertListener(listener('inbound|9080', 'INBOUND', [{ name: 'requests_total', drop: true }]))]]);
  const config = () => ({ ...EMPTY_CONFIG, listeners }) as unknown as RuntimeConfig;
  const t = new Telemetry();
  const m = new IstioMetrics(config, { workload: 'reviews-v2', namespace: 'bookinfo', principal: () => ME });
  m.subscribe(t);
  t.request.publish(inbound());
  assert.equal(parse(m.prometheus()).find((x) => x.name === 'istio_requests_total'), undefined);
  listeners.set('inbound|9080', convertListener(listener('inbound|9080', 'INBOUND')));
  t.request.publish(inbound());
  const s = parse(m.prometheus());
  assert.equal(s.find((x) => x.name === 'istio_requests_total')!.value, 1);
  assert.equal(s.find((x) => x.name === 'istio_request_duration_milliseconds_count')!.value, 2);
});

test('TCP: a dropped metric is not reported, and an added label applies to the TCP series', async () => {
  const tcp = (name: string) => ({
    name,
    traffic_direction: 'INBOUND',
    address: { socket_address: { address: '127.0.0.1', port_value: 15001 } },
    filter_chains: [{ filters: [stats([{ name: 'tcp_connections_opened_total', drop: true }, { name: 'tcp_sent_bytes_total', dimensions: { port: 'string(upstream.port)' } }]), { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TYPE.tcpProxy, stat_prefix: name, cluster: 'inbound|9000||' } }] }],
  });
  const listeners = new Map([['inbound|9000', convertListener(tcp('inbound|9000'))]]);
  const config = () => ({ ...EMPTY_CONFIG, listeners }) as unknown as RuntimeConfig;
  const t = new Telemetry();
  const m = new IstioMetrics(config, { workload: 'db', namespace: 'bookinfo', principal: () => ME });
  m.subscribe(t);
  const server = net.createServer((c) => c.pipe(c));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const up = net.connect(port, '127.0.0.1');
  await new Promise((r) => up.once('connect', r));
  const down = new net.Socket();
  setPeerPrincipal(down, PEER);
  try {
    t.tcp.publish({ kind: 'open', cluster: 'inbound|9000||', endpoint: `127.0.0.1:${port}`, listener: 'inbound|9000', down, up });
    up.write('hello');
    await waitFor('the echo', async () => up.bytesRead === 5);
    t.tcp.publish({ kind: 'close', cluster: 'inbound|9000||', endpoint: `127.0.0.1:${port}`, listener: 'inbound|9000', down, up, bytesSent: up.bytesWritten, bytesReceived: up.bytesRead });
    const s = parse(m.prometheus());
    assert.equal(s.find((x) => x.name === 'istio_tcp_connections_opened_total'), undefined);
    assert.equal(s.find((x) => x.name === 'istio_tcp_connections_closed_total')!.value, 1);
    const sent = s.find((x) => x.name === 'istio_tcp_sent_bytes_total')!;
    assert.equal(sent.value, 5);
    assert.equal(sent.labels.port, String(port));
    assert.equal(s.find((x) => x.name === 'istio_tcp_received_bytes_total')!.labels.port, undefined);
  } finally {
    up.destroy();
    server.close();
  }
});

test('a tag name that is no Prometheus label name is written as Envoy writes it ("x-user" as x_user, a leading digit prefixed), and two entries adding one label make one label, the later entry winning: the scrape stays parseable (review defect: "x-user" broke it)', () => {
  const { t, m } = sidecar(undefined, [
    { dimensions: { 'x-user': "request.headers['x-user']", '9lives': "'cat'" } },
    { name: 'requests_total', dimensions: { 'x-user': "'fixed'" } },
  ]);
  t.request.publish(outbound(['x-user', 'alice']));
  const text = m.prometheus();
  const s = parse(text); // every sample line parses, or this fails
  const reqs = s.filter((x) => x.name === 'istio_requests_total');
  assert.equal(reqs.length, 1);
  assert.equal(reqs[0]!.labels.x_user, 'fixed', 'the later entry wins for its metric');
  assert.equal(reqs[0]!.labels._9lives, 'cat');
  assert.equal(text.split('\n').filter((l) => l.startsWith('istio_requests_total{')).every((l) => (l.match(/x_user=/g) ?? []).length === 1), true, 'one x_user label per line');
  assert.equal(s.find((x) => x.name === 'istio_request_bytes_count')!.labels.x_user, 'alice', 'the other metrics: the first entry');
});
