// A Telemetry's metrics in the xDS (translate/telemetry-metrics.ts), as Istio's pilot merges them
// (pilot/pkg/model/telemetry.go mergeMetrics: providers, precedence, ALL_METRICS, modes, disabled,
// tag overrides), and the stats filter the sidecar gets and loads (xds-client/convert-stats.ts).
// No sockets.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Telemetry } from '../../src/api/types.ts';
import { checkResource } from '../../src/api/index.ts';
import { applicableTelemetries } from '../../src/api/telemetry-select.ts';
import type { MeshSnapshot } from '../../src/control/model/model.ts';
import { translate } from '../../src/control/translate/translate.ts';
import { istioStatsFilter, mergeMetrics } from '../../src/control/translate/telemetry-metrics.ts';
import { convertListener } from '../../src/proxy/xds-client/convert.ts';
import { encode, decode, TYPE } from '../../src/xds/protos.ts';
import { meshOf, workload } from '../snapshot.ts';

type Spec = Record<string, unknown>;
let created = 0;
const tel = (namespace: string, spec: Spec, name = `t${created}`): Telemetry => ({ ...(checkResource({ apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { name, namespace }, spec }, name) as Telemetry), created: ++created });
const W = { namespace: 'default', labels: { app: 'test' } };
const merged = (ts: Telemetry[], mc?: object) => mergeMetrics(applicableTelemetries(ts, W), mc as never);
const filter = (ts: Telemetry[], side: 'CLIENT' | 'SERVER', mc?: object) => istioStatsFilter(applicableTelemetries(ts, W), mc as never, side) as any;
const metricsOf = (ts: Telemetry[], side: 'CLIENT' | 'SERVER', mc?: object) => filter(ts, side, mc)?.typed_config.value.metrics;

const ALL_PROM = ['request_bytes', 'request_duration_milliseconds', 'request_messages_total', 'requests_total', 'response_bytes', 'response_messages_total', 'tcp_connections_closed_total', 'tcp_connections_opened_total', 'tcp_received_bytes_total', 'tcp_sent_bytes_total'];

describe("Istio's mergeMetrics: root, namespace and workload Telemetries", () => {
  // The mesh removes request_protocol from every metric; the namespace turns the server's request
  // count off; the workload adds a label from a header to its client request count and replaces
  // request_protocol of its request durations.
  const root = tel('istio-system', { metrics: [{ providers: [{ name: 'prometheus' }], overrides: [{ match: { metric: 'ALL_METRICS' }, tagOverrides: { request_protocol: { operation: 'REMOVE' } } }] }] });
  const ns = tel('default', { metrics: [{ overrides: [{ match: { metric: 'REQUEST_COUNT', mode: 'SERVER' }, disabled: true }] }] });
  const wl = tel('default', {
    selector: { matchLabels: { app: 'test' } },
    metrics: [{ overrides: [{ match: { metric: 'REQUEST_COUNT', mode: 'CLIENT' }, tagOverrides: { user: { value: "request.headers['x-user']" } } }, { match: { metric: 'REQUEST_DURATION' }, tagOverrides: { request_protocol: { operation: 'UPSERT', value: 'request.protocol' } } }] }],
  });

  test('each metric of each side has the overrides of every level, later ones winning tag by tag', () => {
    const m = merged([root, ns, wl]).get('prometheus')!;
    const remove = { name: 'request_protocol', remove: true, value: '' };
    const client = Object.fromEntries(m.CLIENT.map((o) => [o.name, o]));
    assert.deepEqual(client.REQUEST_COUNT, { name: 'REQUEST_COUNT', disabled: false, tags: [remove, { name: 'user', remove: false, value: "request.headers['x-user']" }] });
    assert.deepEqual(client.REQUEST_DURATION, { name: 'REQUEST_DURATION', disabled: false, tags: [{ name: 'request_protocol', remove: false, value: 'request.protocol' }] });
    assert.deepEqual(client.TCP_SENT_BYTES, { name: 'TCP_SENT_BYTES', disabled: false, tags: [remove] });
    assert.equal(m.CLIENT.length, 10, 'ALL_METRICS: every metric');
    const server = Object.fromEntries(m.SERVER.map((o) => [o.name, o]));
    assert.deepEqual(server.REQUEST_COUNT, { name: 'REQUEST_COUNT', disabled: true, tags: [remove] });
    assert.deepEqual(server.REQUEST_DURATION!.tags, [{ name: 'request_protocol', remove: false, value: 'request.protocol' }]);
  });

  test("the xDS: a stats filter per side, one entry per metric in the order of their Istio names, Istio's PluginConfig fields", () => {
    const server = metricsOf([root, ns, wl], 'SERVER');
    // In the order of Istio's names (GRPC_REQUEST_MESSAGES, ..., TCP_SENT_BYTES), as generateStatsConfig writes them.
    assert.deepEqual(server.map((x: any) => x.name), ['request_messages_total', 'response_messages_total', 'requests_total', 'request_duration_milliseconds', 'request_bytes', 'response_bytes', 'tcp_connections_closed_total', 'tcp_connections_opened_total', 'tcp_received_bytes_total', 'tcp_sent_bytes_total']);
    assert.deepEqual(server.find((x: any) => x.name === 'requests_total'), { name: 'requests_total', tags_to_remove: ['request_protocol'], drop: true });
    assert.deepEqual(server.find((x: any) => x.name === 'request_duration_milliseconds'), { name: 'request_duration_milliseconds', dimensions: { request_protocol: 'request.protocol' } });
    const client = metricsOf([root, ns, wl], 'CLIENT');
    assert.deepEqual(client.find((x: any) => x.name === 'requests_total'), { name: 'requests_total', dimensions: { user: "request.headers['x-user']" }, tags_to_remove: ['request_protocol'] });
    const f = filter([root, ns, wl], 'CLIENT');
    assert.equal(f.name, 'istio.stats');
    assert.equal(f.typed_config['@type'], 'type.googleapis.com/udpa.type.v1.TypedStruct');
    assert.equal(f.typed_config.type_url, 'type.googleapis.com/stats.PluginConfig');
  });

  test('a later level turns on again what an earlier one turned off; the workload level wins', () => {
    const on = tel('default', { selector: { matchLabels: { app: 'test' } }, metrics: [{ overrides: [{ match: { metric: 'REQUEST_COUNT', mode: 'SERVER' }, disabled: false }] }] });
    assert.equal(metricsOf([ns, on], 'SERVER').find((x: any) => x.name === 'requests_total').drop, undefined);
    // A selector for other workloads: not this one's.
    const elsewhere = tel('default', { selector: { matchLabels: { app: 'other' } }, metrics: [{ overrides: [{ match: { metric: 'REQUEST_COUNT', mode: 'SERVER' }, disabled: false }] }] });
    assert.equal(metricsOf([ns, elsewhere], 'SERVER').find((x: any) => x.name === 'requests_total').drop, true);
  });

  test('CLIENT_AND_SERVER (or no mode) is both sides; CLIENT and SERVER one', () => {
    const both = tel('default', { metrics: [{ overrides: [{ match: { metric: 'REQUEST_SIZE', mode: 'CLIENT_AND_SERVER' }, disabled: true }] }] });
    assert.deepEqual(metricsOf([both], 'CLIENT'), [{ name: 'request_bytes', drop: true }]);
    assert.deepEqual(metricsOf([both], 'SERVER'), [{ name: 'request_bytes', drop: true }]);
    const client = tel('default', { metrics: [{ overrides: [{ match: { metric: 'REQUEST_SIZE', mode: 'CLIENT' }, disabled: true }] }] });
    assert.deepEqual(metricsOf([client], 'CLIENT'), [{ name: 'request_bytes', drop: true }]);
    assert.equal(filter([client], 'SERVER'), undefined, "the server side has Istio's defaults: no filter");
  });

  test("no Telemetry, or one that overrides nothing: no filter (the sidecars' defaults)", () => {
    assert.equal(filter([], 'SERVER'), undefined);
    assert.equal(filter([tel('default', { metrics: [{ providers: [{ name: 'prometheus' }] }] })], 'CLIENT'), undefined);
  });

  test('every metric disabled turns the provider off on the side its mode names only (Istio: no stats filter there; review defect: both sides), until a later override on that side turns it on', () => {
    const off = tel('istio-system', { metrics: [{ overrides: [{ match: { metric: 'ALL_METRICS', mode: 'CLIENT' }, disabled: true }] }] });
    const dropAll = ALL_PROM.map((name) => ({ name, drop: true }));
    assert.deepEqual(metricsOf([off], 'CLIENT'), dropAll);
    assert.equal(filter([off], 'SERVER'), undefined, 'the server side keeps the defaults: reporter="destination" series stay');
    const both = tel('istio-system', { metrics: [{ overrides: [{ disabled: true }] }] });
    assert.deepEqual(metricsOf([both], 'SERVER'), dropAll, 'no match at all is every metric on both sides (Istio isAllMetrics)');
    assert.deepEqual(metricsOf([both], 'CLIENT'), dropAll);
    const back = tel('default', { metrics: [{ overrides: [{ match: { metric: 'REQUEST_COUNT', mode: 'SERVER' }, tagOverrides: { x: { value: "'y'" } } }] }] });
    assert.deepEqual(metricsOf([both, back], 'SERVER'), [{ name: 'requests_total', dimensions: { x: "'y'" } }], 'turned on again on the server side');
    assert.deepEqual(metricsOf([both, back], 'CLIENT'), dropAll, 'still off on the client side');
    const modeOnly = tel('default', { metrics: [{ overrides: [{ match: { mode: 'SERVER' } }] }] });
    const byName = (ms: { name: string }[]) => [...ms].sort((a, b) => (a.name < b.name ? -1 : 1));
    assert.deepEqual(byName(metricsOf([both, modeOnly], 'SERVER')), byName(ALL_PROM.map((name) => ({ name }))), 'an override with only a mode turns that side on again, with nothing changed (as Istio writes it)');
  });

  test('providers: the last entry naming some decides; one without prometheus reports no Istio metrics (every metric dropped)', () => {
    const sd = tel('default', { metrics: [{ providers: [{ name: 'stackdriver' }] }] });
    assert.deepEqual(metricsOf([sd], 'SERVER'), ALL_PROM.map((name) => ({ name, drop: true })));
    const root = tel('istio-system', { metrics: [{ providers: [{ name: 'stackdriver' }] }] });
    const prom = tel('default', { metrics: [{ providers: [{ name: 'prometheus' }] }] });
    assert.equal(filter([root, prom], 'SERVER'), undefined, 'prometheus again: the defaults');
    // The mesh config's default providers, when no entry names any.
    assert.deepEqual(metricsOf([], 'SERVER', { defaultProviders: { metrics: ['stackdriver'] } }), ALL_PROM.map((name) => ({ name, drop: true })));
    // An override under a provider out of scope (a later entry names only another) is not applied.
    const overridden = tel('istio-system', { metrics: [{ providers: [{ name: 'prometheus' }], overrides: [{ match: { metric: 'REQUEST_COUNT' }, disabled: true }] }] });
    const other = tel('default', { metrics: [{ providers: [{ name: 'stackdriver' }] }] });
    assert.deepEqual(metricsOf([overridden, other], 'SERVER'), ALL_PROM.map((name) => ({ name, drop: true })));
  });

  test("a tag override the sidecars cannot evaluate is left out; a customMetric is passed by its name (Istio's)", () => {
    const t = tel('default', { metrics: [{ overrides: [{ match: { customMetric: 'requests_total' }, tagOverrides: { peer: { value: 'upstream_peer.labels["app"]' }, host: { value: 'request.host' } } }] }] });
    assert.deepEqual(metricsOf([t], 'CLIENT'), [{ name: 'requests_total', dimensions: { host: 'request.host' } }]);
  });
});

describe('what the sidecar gets', () => {
  const server = workload('server', { service: 'server', labels: { app: 'server' }, ports: [{ name: 'http', port: 80, inboundPort: 41000, appPort: 41001 }, { name: 'tcp-db', port: 5432, inboundPort: 41010, appPort: 41011 }] });
  const telemetry = (name: string, spec: Spec) => ({ apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { name, namespace: 'default' }, spec });
  const mesh = (objs: object[]): MeshSnapshot => meshOf(objs, [server]);
  const t = telemetry('ns', {
    metrics: [{ overrides: [{ match: { metric: 'REQUEST_COUNT', mode: 'SERVER' }, disabled: true }, { match: { metric: 'ALL_METRICS', mode: 'CLIENT' }, tagOverrides: { user: { value: "request.headers['x-user']" }, destination_app: { operation: 'REMOVE' } } }] }],
  });

  test('the filter sits before the router of every HCM and before every tcp_proxy, each side its own; it survives the wire', () => {
    const { listeners } = translate(mesh([t]), server) as { listeners: Record<string, any> };
    const statsOf = (l: any) => JSON.stringify(l).match(/"type_url":"type.googleapis.com\/stats.PluginConfig","value":(\{.*?\]\})/)?.[1];
    const http = listeners['inbound|41000'].filter_chains.flatMap((c: any) => c.filters).find((f: any) => f.typed_config['@type'] === TYPE.hcm).typed_config.http_filters;
    assert.deepEqual(http.slice(-2).map((f: any) => f.name), ['istio.stats', 'envoy.filters.http.router']);
    const tcpChain = listeners['inbound|41010'].filter_chains.find((c: any) => c.filters.some((f: any) => f.typed_config['@type'] === TYPE.tcpProxy));
    assert.deepEqual(tcpChain.filters.slice(-2).map((f: any) => f.name), ['istio.stats', 'envoy.filters.network.tcp_proxy']);
    assert.match(statsOf(listeners['inbound|41000'])!, /"drop":true/);
    assert.match(statsOf(listeners.outbound)!, /x-user/);
    for (const l of Object.values(listeners)) {
      const wire = decode(TYPE.listener, encode(TYPE.listener, l));
      assert.deepEqual(JSON.parse(JSON.stringify(wire)), JSON.parse(JSON.stringify(l)));
    }
  });

  test('the sidecar loads it per listener: the server drops its request count, the client adds user and removes destination_app', () => {
    const { listeners } = translate(mesh([t]), server) as { listeners: Record<string, any> };
    const inbound = convertListener(listeners['inbound|41000']);
    const groups = inbound.istioStats!.http;
    assert.equal(groups.length, 1);
    assert.equal(groups[0]!.standard, true);
    assert.equal(groups[0]!.mask & 1, 0, 'requests_total is not reported');
    assert.ok(convertListener(listeners['inbound|41010']).istioStats, 'the TCP chain has it too');
    const outbound = convertListener(listeners.outbound);
    const g = outbound.istioStats!.http[0]!;
    assert.equal(outbound.istioStats!.http.length, 1);
    assert.ok(!g.names.includes('destination_app'));
    assert.equal(g.names.at(-1), 'user');
    // No Telemetry: no filter, the defaults.
    const plain = translate(mesh([]), server) as { listeners: Record<string, any> };
    assert.equal(convertListener(plain.listeners['inbound|41000']).istioStats, undefined);
    assert.doesNotMatch(JSON.stringify(plain.listeners), /istio\.stats/);
  });

  test('a stats filter the sidecar cannot apply is NACKed naming the field', () => {
    const { listeners } = translate(mesh([t]), server) as { listeners: Record<string, any> };
    const bad = JSON.parse(JSON.stringify(listeners.outbound).replaceAll("request.headers['x-user']", 'node.id'));
    assert.throws(() => convertListener(bad), /typed_config\.value\.metrics\[\d+\]\.dimensions\.user: "node\.id" cannot be evaluated by this sidecar/);
    const extra = JSON.parse(JSON.stringify(listeners.outbound).replace('"metrics":[', '"rotation_interval":"10s","metrics":['));
    assert.throws(() => convertListener(extra), /typed_config\.value\.rotation_interval: not supported/);
  });
});
