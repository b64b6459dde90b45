// What Istio's metrics cost the request path: nanoseconds per request event of the IstioMetrics
// subscriber (telemetry/istio-metrics.ts), against a subscriber that does nothing, and what one
// scrape of /stats/prometheus's Istio part costs with many edges. A focused measurement, not part
// of `npm run bench`: node bench/metrics-subscriber.ts
import { EMPTY_CONFIG, type RuntimeConfig } from '../src/proxy/config.ts';
import type { Downstream } from '../src/proxy/http/types.ts';
import { type RequestEvent, Telemetry } from '../src/proxy/telemetry/events.ts';
import { IstioMetrics } from '../src/proxy/telemetry/istio-metrics.ts';
import { istioStatsConfig } from '../src/proxy/xds-client/convert-stats.ts';
import { TYPE } from '../src/xds/types.ts';

const listeners = new Map([['inbound|9080', { name: 'inbound|9080', direction: 'inbound' }]]);
const runtime = { ...EMPTY_CONFIG, listeners } as unknown as RuntimeConfig;
const config = () => runtime;
const self = { workload: 'reviews-v2', namespace: 'bookinfo', labels: { app: 'reviews', version: 'v2' }, service: 'reviews.bookinfo.svc.cluster.local', principal: () => 'spiffe://cluster.local/ns/bookinfo/sa/reviews' };

/** An inbound request over mTLS from one of `peers` client workloads, as forward.ts publishes it. */
export function events(peers: number): RequestEvent[] {
  return Array.from({ length: peers }, (_, i) => ({
    cluster: 'inbound|9080||',
    status: i % 10 === 0 ? 503 : 200,
    durationMs: 1 + (i % 7),
    bytesReceived: 0,
    bytesSent: 120,
    ds: { head: { method: 'GET', authority: 'reviews:9080', path: `/r/${i}`, query: '', headers: ['user-agent', 'bench', 'accept', '*/*'], hasBody: false, protocol: 'HTTP/1.1' }, listenerName: 'inbound|9080', remoteAddress: () => '127.0.0.1', sourcePrincipal: () => `spiffe://cluster.local/ns/bookinfo/sa/client-${i}`, peerWorkload: () => `client-${i}` } as unknown as Downstream,
  }));
}

/** ns per publish over `n` events after a warm-up, the median of five rounds. */
export function nsPerEvent(t: Telemetry, evs: RequestEvent[], n = 300_000): number {
  for (let i = 0; i < 50_000; i++) t.request.publish(evs[i % evs.length]!);
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) t.request.publish(evs[i % evs.length]!);
    rounds.push(Number(process.hrtime.bigint() - t0) / n);
  }
  return rounds.sort((a, b) => a - b)[2]!;
}

if (import.meta.main) {
  const evs = events(10);
  const noop = new Telemetry();
  noop.request.subscribe(() => {});
  const base = nsPerEvent(noop, evs);
  const t = new Telemetry();
  const m = new IstioMetrics(config, self);
  m.subscribe(t);
  const istio = nsPerEvent(t, evs);
  console.log(`publish to a subscriber that does nothing: ${base.toFixed(0)} ns/event`);
  console.log(`IstioMetrics (a counter and three histograms, 25 labels): ${istio.toFixed(0)} ns/event, ${(istio - base).toFixed(0)} ns more`);
  // With a Telemetry's metrics (Istio's stats filter on the listener): one metric dropped (no CEL),
  // then a label from a request header on every metric (one CEL expression per request).
  for (const [what, metrics] of [
    ['a Telemetry dropping istio_requests_total (no CEL)', [{ name: 'requests_total', drop: true }]],
    ["a Telemetry adding a label from request.headers['user-agent'] to every metric (CEL per request)", [{ dimensions: { agent: "request.headers['user-agent']" } }]],
  ] as const) {
    const stats = istioStatsConfig('bench', { typed_config: { '@type': TYPE.typedStruct, type_url: 'type.googleapis.com/stats.PluginConfig', value: { metrics } } });
    const withStats = { ...runtime, listeners: new Map([['inbound|9080', { name: 'inbound|9080', direction: 'inbound', istioStats: stats }]]) } as unknown as RuntimeConfig;
    const tt = new Telemetry();
    new IstioMetrics(() => withStats, self).subscribe(tt);
    const ns = nsPerEvent(tt, evs);
    console.log(`IstioMetrics with ${what}: ${ns.toFixed(0)} ns/event, ${(ns - base).toFixed(0)} ns more`);
  }
  for (const edges of [10, 100, 1000]) {
    const mm = new IstioMetrics(config, self);
    const t = new Telemetry();
    mm.subscribe(t);
    for (const e of events(edges)) t.request.publish(e);
    mm.prometheus(); // the first scrape writes each series' labels once
    const t0 = performance.now();
    const text = mm.prometheus();
    console.log(`a scrape with ${edges} edges: ${(performance.now() - t0).toFixed(1)} ms, ${(text.length / 1024).toFixed(0)} KB of text`);
  }
}
