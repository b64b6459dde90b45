// The golden signals' parts without sockets: the Prometheus text parser against garbage and huge
// input, counters turned into deltas across resets, the histogram quantile as Prometheus computes
// it, and the views' error ratio and mTLS share.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { parsePrometheusText } from '../../src/control/signals/prom-text.ts';
import { MAX_RECORD_SERIES, RecordBuilder, TargetCounters, WANTED } from '../../src/control/signals/window.ts';
import { histogramQuantile, signalsOver, windowOf } from '../../src/control/signals/views.ts';
import { Collector, SCRAPE_TIMEOUT_MS, fetchBounded, peerHost } from '../../src/control/signals/collector.ts';
import { listen, waitFor } from '../helpers.ts';

const want = (n: string) => WANTED.has(n);
const BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

test('the parser reads labels with escapes, +Inf, exponents and timestamps; skips other metrics and comments', () => {
  const text = [
    '# HELP istio_requests_total Requests.',
    '# TYPE istio_requests_total counter',
    'istio_requests_total{reporter="destination",destination_workload="a\\"b\\\\c\\nd",response_code="200"} 12 1700000000000',
    'istio_request_duration_milliseconds_bucket{le="+Inf"} 1.5e3',
    'weft_requests_total{cluster="x"} 5',
    'process_start_time_seconds 1700000000.25',
    '',
  ].join('\n');
  const r = parsePrometheusText(text, { want, maxSeries: 100 });
  assert.equal(r.bad, 0, r.firstError);
  assert.deepEqual(r.samples.map((s) => [s.name, { ...s.labels }, s.value]), [
    ['istio_requests_total', { reporter: 'destination', destination_workload: 'a"b\\c\nd', response_code: '200' }, 12],
    ['istio_request_duration_milliseconds_bucket', { le: '+Inf' }, 1500],
    ['process_start_time_seconds', {}, 1700000000.25],
  ]);
});

test('garbage: every malformed line is skipped and counted, the first one named by line; the good lines around it survive', () => {
  const text = [
    'istio_requests_total{reporter="source"} 1',
    'istio_requests_total{reporter="source" 2',
    'istio_requests_total{reporter=source} 3',
    'istio_requests_total{reporter="x",reporter="y"} 4',
    'istio_requests_total{reporter="x\\q"} 5',
    'istio_requests_total{reporter="x"} twelve',
    'istio_requests_total{reporter="x"} 1 2 3',
    '{} 7',
    '\u0000\u0001\u0002',
    'istio_requests_total{__proto__="p"} 8',
  ].join('\n');
  const r = parsePrometheusText(text, { want, maxSeries: 100 });
  assert.equal(r.bad, 8);
  assert.match(r.firstError!, /^line 2: istio_requests_total: /);
  assert.deepEqual(r.samples.map((s) => s.value), [1, 8]);
  assert.equal(Object.getPrototypeOf(r.samples[1]!.labels), null, 'a __proto__ label is only a label');
  assert.equal(r.samples[1]!.labels.__proto__, 'p');
});

test('huge input: a 2 MB line is refused by length, series beyond the bound are left out, and the parse stays fast', () => {
  const long = `istio_requests_total{reporter="${'x'.repeat(2_000_000)}"} 1`;
  const many = Array.from({ length: 50_000 }, (_, i) => `istio_requests_total{reporter="source",response_code="${i}"} ${i}`).join('\n');
  const t0 = performance.now();
  const r = parsePrometheusText(`${long}\n${many}`, { want, maxSeries: 20_000 });
  const took = performance.now() - t0;
  assert.equal(r.bad, 1);
  assert.match(r.firstError!, /^line 1: longer than 65536 characters/);
  assert.equal(r.samples.length, 20_000);
  assert.ok(r.truncated);
  assert.ok(took < 5000, `parse took ${took} ms`);
  // An unterminated label value in a very long line ends the line's parse, not the process.
  const open = parsePrometheusText(`istio_requests_total{a="${'\\"'.repeat(30_000)}`, { want, maxSeries: 10 });
  assert.equal(open.bad, 1);
});

const labels = (code: string, extra: Record<string, string> = {}) => ({ reporter: 'destination', destination_workload: 'w', destination_workload_namespace: 'ns', destination_service: 's.ns.svc.cluster.local', response_code: code, connection_security_policy: 'mutual_tls', ...extra });
const own = () => true;
const req = (value: number, code = '200') => ({ name: 'istio_requests_total', labels: labels(code), value });
const start = (t: number) => ({ name: 'process_start_time_seconds', labels: {}, value: t });

test('deltas: a new sidecar counts from zero, then differences; a counter that went down is a restart, counted from its new value', () => {
  const c = new TargetCounters(1_000_000);
  const sum = (d: { requests: number }[]) => d.reduce((s, x) => s + x.requests, 0);
  assert.equal(sum(c.ingest([start(2000), req(5)], own).deltas), 5, 'started after the collector: from zero');
  assert.equal(sum(c.ingest([start(2000), req(12)], own).deltas), 7);
  const reset = c.ingest([start(2000), req(3)], own);
  assert.equal(sum(reset.deltas), 3, 'reset: the new value');
  assert.ok(reset.restarted);
  // A new start time: every series counts from zero, even one higher than before.
  assert.equal(sum(c.ingest([start(3000), req(20)], own).deltas), 20);
  // A sidecar older than the collector (the control plane restarted): the first scrape is a baseline.
  const old = new TargetCounters(5_000_000);
  assert.equal(sum(old.ingest([start(100), req(1000)], own).deltas), 0);
  assert.equal(sum(old.ingest([start(100), req(1010)], own).deltas), 10);
});

test('deltas: series of another workload, negative, NaN or infinite values are rejected and counted', () => {
  const c = new TargetCounters(0);
  const r = c.ingest([start(1), req(1), req(-1, '201'), req(NaN, '202'), req(Infinity, '203'), { name: 'istio_requests_total', labels: labels('200', { destination_workload: 'other' }), value: 9 }], (l) => l.destination_workload === 'w');
  assert.equal(r.rejected, 4);
  assert.equal(r.deltas.length, 1);
});

test("histogram_quantile as Prometheus's: linear within the bucket, the first bucket from 0, +Inf gives the highest finite bound, no data is null", () => {
  // 100 observations: 50 in (0,1], 40 in (1,5], 10 in (5,10].
  const les = [1, 5, 10, Infinity];
  const cum = [50, 90, 100, 100];
  assert.equal(histogramQuantile(0.5, les, cum), 1);
  assert.equal(histogramQuantile(0.25, les, cum), 0.5);
  assert.equal(histogramQuantile(0.7, les, cum), 3); // 1 + 4 * (70-50)/40
  assert.equal(histogramQuantile(0.95, les, cum), 7.5);
  assert.equal(histogramQuantile(0.99, [1, 5, Infinity], [50, 90, 100]), 5, 'in +Inf: the highest finite bound');
  assert.equal(histogramQuantile(0.5, les, [0, 0, 0, 0]), null);
  assert.equal(histogramQuantile(0.5, [1, 5], [1, 2]), null, 'no +Inf bucket');
});

test('views: 270 OK and 30 503 over mTLS and 100 OK in plain text give an error ratio of 0.075 and an mTLS share of 0.75; latency is null without histograms, interpolated with them', () => {
  const b = new RecordBuilder();
  const c = new TargetCounters(0);
  b.add(c.ingest([start(1), req(270), req(30, '503'), { name: 'istio_requests_total', labels: labels('200', { connection_security_policy: 'none' }), value: 100 }], own).deltas);
  const items = signalsOver([b.build(60_000, 60)], 'workload', 'destination', 60);
  assert.equal(items.length, 1);
  assert.equal(items[0]!.name, 'ns/w');
  assert.equal(items[0]!.requests, 400);
  assert.equal(items[0]!.errorRatio, 0.075);
  assert.equal(items[0]!.latencyMs, null);
  assert.equal(items[0]!.mtls.share, 0.75);
  assert.ok(Math.abs(items[0]!.rps - 400 / 60) < 1e-5, String(items[0]!.rps));
  // With Istio's buckets: 100 requests at 3 ms (in (1,5]) and 100 at 30 ms (in (25,50]).
  const h = new RecordBuilder();
  const hc = new TargetCounters(0);
  const bucket = (le: number, v: number) => ({ name: 'istio_request_duration_milliseconds_bucket', labels: { ...labels('200'), le: le === Infinity ? '+Inf' : String(le) }, value: v });
  const samples = [start(1), req(200), ...[...BUCKETS, Infinity].map((le) => bucket(le, le < 5 ? 0 : le < 50 ? 100 : 200))];
  h.add(hc.ingest(samples, own).deltas);
  const [it] = signalsOver([h.build(60_000, 60)], 'workload', 'destination', 60);
  assert.deepEqual(it!.latencyMs, { p50: 5, p95: 47.5, p99: 49.5 });
});

test('grpc: a grpc_response_status other than 0 is an error even with HTTP 200', () => {
  const b = new RecordBuilder();
  b.add(new TargetCounters(0).ingest([start(1), { name: 'istio_requests_total', labels: labels('200', { grpc_response_status: '14' }), value: 3 }, { name: 'istio_requests_total', labels: labels('200', { grpc_response_status: '0' }), value: 1 }], own).deltas);
  assert.equal(signalsOver([b.build(1, 1)], 'service', 'destination', 1)[0]!.errorRatio, 0.75);
});

test('a scrape is bounded: a body past the limit and a server that never finishes fail with a sentence, in time', async () => {
  const s = http.createServer((req, res) => {
    if (req.url === '/big') {
      res.writeHead(200);
      res.end('x'.repeat(100_000));
    } else res.writeHead(200).write('istio_requests_total 1\n'); // never ends
  });
  const port = await listen(s);
  try {
    await assert.rejects(fetchBounded(`http://127.0.0.1:${port}/big`, 2000, 50_000), /larger than 50000 bytes/);
    const t0 = Date.now();
    await assert.rejects(fetchBounded(`http://127.0.0.1:${port}/slow`, 300, 50_000), /no complete answer within 300 ms/);
    assert.ok(Date.now() - t0 < 1500);
    await assert.rejects(fetchBounded(`http://127.0.0.1:1/x`, 1000, 10), /ECONNREFUSED/);
  } finally {
    s.closeAllConnections();
    s.close();
  }
});

test('peerHost: the IP of a gRPC peer, or nothing', () => {
  assert.equal(peerHost('127.0.0.1:5000'), '127.0.0.1');
  assert.equal(peerHost('ipv4:10.0.0.2:5000'), '10.0.0.2');
  assert.equal(peerHost('[::1]:5000'), '::1');
  assert.equal(peerHost('ipv6:[::1]:5000'), '::1');
  assert.equal(peerHost('unix:/tmp/x'), undefined);
  assert.equal(peerHost('evil.example:80'), undefined);
});

test('a round over hostile targets (garbage, a body without end, one that never finishes, one refused, one reporting another workload, one another service, one that proved no identity): each named, the honest one counted, the round on time', async () => {
  const honest = (workload: string, n: number, service = 's.ns.svc.cluster.local') => `process_start_time_seconds ${Date.now() / 1000}\nistio_requests_total{reporter="destination",destination_workload="${workload}",destination_workload_namespace="ns",destination_service="${service}",response_code="200",connection_security_policy="mutual_tls"} ${n}\n`;
  const behaviours: Record<string, http.RequestListener> = {
    good: (_q, res) => res.end(honest('good', 4)),
    garbage: (_q, res) => res.end('\u0000{{{ not prometheus\nistio_requests_total{reporter="destination" 1\n'),
    endless: (_q, res) => {
      res.writeHead(200);
      const chunk = 'istio_requests_total{reporter="x"} 1\n'.repeat(10_000);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    },
    stall: (_q, res) => void res.writeHead(200).write('istio_requests_total'),
    liar: (_q, res) => res.end(honest('victim', 100)),
    // Its own workload, but serving a service it did not register.
    impostor: (_q, res) => res.end(honest('impostor', 100, 'payments.ns.svc.cluster.local')),
  };
  const servers: http.Server[] = [];
  const proxies: any[] = [];
  for (const [name, handler] of Object.entries(behaviours)) {
    const srv = http.createServer(handler);
    servers.push(srv);
    proxies.push({ id: name, peer: '127.0.0.1:5555', workload: { name, namespace: 'ns', serviceAccount: 'sa', service: 's', adminPort: await listen(srv) } });
  }
  // The honest exposition again, from a proxy on the plain-text xDS port (no identity proved).
  proxies.push({ ...proxies[0], id: 'unproven', workload: { ...proxies[0].workload, serviceAccount: undefined } });
  proxies.push({ id: 'refused', peer: 'ipv4:127.0.0.1:5555', workload: { name: 'refused', namespace: 'ns', serviceAccount: 'sa', adminPort: 1 } });
  proxies.push({ id: 'silent', peer: '127.0.0.1:5555', workload: { name: 'silent', namespace: 'ns', serviceAccount: 'sa' } });
  const logs: string[] = [];
  const c = new Collector({ proxies: () => proxies, intervalMs: 0, log: (m) => logs.push(m), now: () => Date.now() + 0 });
  try {
    const t0 = Date.now();
    await c.round();
    assert.ok(Date.now() - t0 < SCRAPE_TIMEOUT_MS + 2000, `the round took ${Date.now() - t0} ms`);
    const st = Object.fromEntries(c.targetStatus().map((t) => [t.proxy, t]));
    assert.equal(st.good!.ok, true);
    assert.match(st.garbage!.error!, /2 line\(s\) did not parse \(line 1: no metric name\)/);
    assert.match(st.endless!.error!, /scrape of http:\/\/127\.0\.0\.1:\d+\/stats\/prometheus failed: (larger than 4194304 bytes|no complete answer within 2000 ms)/);
    assert.match(st.stall!.error!, /no complete answer within 2000 ms/);
    assert.match(st.refused!.error!, /ECONNREFUSED/);
    assert.match(st.silent!.error!, /announced no admin port/);
    assert.match(st.unproven!.error!, /proved no identity \(plain-text xDS port\): not scraped/);
    assert.equal(st.liar!.rejectedSeries, 1, 'a series of another workload is not counted');
    assert.equal(st.impostor!.rejectedSeries, 1, 'nor one of a service the workload does not serve');
    assert.equal(logs.length, 4, `logged: the four that failed, not the one without an admin port (Envoy, gRPC clients): ${logs.join('\n')}`);
    const items = signalsOver(c.rounds.records, 'workload', 'destination', 1);
    assert.deepEqual(items.map((i) => [i.name, i.requests]), [['ns/good', 4]]);
  } finally {
    for (const srv of servers) {
      srv.closeAllConnections();
      srv.close();
    }
  }
});

test('a control plane with collection off (scrape interval 0) says so on the signals endpoints, and answers 400 naming a bad window or view', async () => {
  const { startControlPlane } = await import('../../src/control/control-plane.ts');
  const { tmpDir } = await import('../helpers.ts');
  const off = await startControlPlane({ dataDir: tmpDir('signals-off'), adminPort: 0, xdsPort: 0, scrapeIntervalMs: 0 });
  const on = await startControlPlane({ dataDir: tmpDir('signals-on'), adminPort: 0, xdsPort: 0, scrapeIntervalMs: 60_000 });
  try {
    const r = await fetch(`${off.adminUrl}/api/v1/signals`);
    assert.equal(r.status, 503);
    assert.match((await r.json()).error, /collects no signals \(weft control --scrape-interval 0\)/);
    const w = await fetch(`${on.adminUrl}/api/v1/signals?window=1h`);
    assert.equal(w.status, 400);
    assert.match((await w.json()).error, /window "1h": expected a duration like 30s or 5m, at most 15m/);
    const targets = await (await fetch(`${on.adminUrl}/api/v1/signals/targets`)).json();
    assert.deepEqual([targets.intervalSeconds, targets.droppedSeries, targets.targets], [60, 0, []]);
    const b = await fetch(`${on.adminUrl}/api/v1/signals/series?by=edge`);
    assert.equal(b.status, 400);
    const ok = await (await fetch(`${on.adminUrl}/api/v1/signals?by=service`)).json();
    assert.deepEqual([ok.by, ok.reporter, ok.items], ['service', 'destination', []]);
    assert.equal((await fetch(`${on.adminUrl}/api/v1/signals`, { method: 'POST' })).status, 405);
  } finally {
    await off.close();
    await on.close();
  }
});

test('deltas: a series missing from one scrape (left out past the bound) counts only its growth when it is back', () => {
  const c = new TargetCounters(0);
  const sum = (d: { requests: number }[]) => d.reduce((s, x) => s + x.requests, 0);
  assert.equal(sum(c.ingest([start(1), req(5), req(7, '503')], own).deltas), 12);
  assert.equal(sum(c.ingest([start(1), req(6)], own).deltas), 1, 'the 503 series is missing this time');
  assert.equal(sum(c.ingest([start(1), req(6), req(9, '503')], own).deltas), 2, 'back: 9 - 7, not 9');
});

test('a round that throws is logged and the next rounds still run', async () => {
  const logs: string[] = [];
  let calls = 0;
  const c = new Collector({
    proxies: () => {
      calls++;
      throw new Error('registry exploded');
    },
    intervalMs: 20,
    log: (m) => logs.push(m),
  });
  c.start();
  try {
    await waitFor('two failed rounds', async () => calls >= 2, 5000, 10);
  } finally {
    await c.stop();
  }
  assert.match(logs[0]!, /^BUG: signals round failed: Error: registry exploded/);
});

test("a round's record holds at most 2,000 label sets; the rest are dropped and counted", () => {
  const b = new RecordBuilder();
  b.add(Array.from({ length: 2500 }, (_, i) => ({ dims: ['destination', 'a', 'ns', 'w', 'ns', 's', String(i), '', 'none'], requests: 1 })));
  const r = b.build(1, 1);
  assert.equal(r.series.size, MAX_RECORD_SERIES);
  assert.equal(r.dropped, 500);
});

test('a sidecar that reconnects (same process, one round away) counts only what it served since, not its whole history again (review defect)', async () => {
  let count = 1000;
  let clock = 1_000_000; // ms, the collector's clock; the sidecar's process started 0.5 s after the collector
  const c = new Collector({ proxies: () => proxies, intervalMs: 0, log: () => {}, now: () => clock });
  const srv = http.createServer((_q, res) => res.end(`process_start_time_seconds ${1_000_500 / 1000}\nistio_requests_total{reporter="destination",destination_workload="w",destination_workload_namespace="ns",destination_service="s.ns.svc.cluster.local",response_code="200",connection_security_policy="mutual_tls"} ${count}\n`));
  const proxy = { id: 'sidecar~1', peer: '127.0.0.1:5555', workload: { name: 'w', namespace: 'ns', serviceAccount: 'sa', service: 's', adminPort: await listen(srv) } };
  let proxies: any[] = [proxy];
  try {
    clock += 5000;
    await c.round(); // first scrape of a sidecar newer than the collector: its 1,000 count
    proxies = []; // its xDS stream is down for a round
    count += 10;
    clock += 5000;
    await c.round();
    proxies = [proxy]; // back, the same process
    count += 10;
    clock += 5000;
    await c.round();
    const total = signalsOver(c.rounds.records, 'workload', 'destination', 3).find((i) => i.name === 'ns/w')!.requests;
    assert.ok(total < 1100, `counted ${total}: the reconnect counted the history again`);
    assert.ok(total >= 1000, `counted ${total}`);
  } finally {
    srv.closeAllConnections();
    srv.close();
  }
});

test('rps over a window that is not a whole number of rounds: steady 10 rps reads 10, never more (review defect: 16.7 over a 3 s window of 5 s rounds)', () => {
  const records = Array.from({ length: 20 }, () => ({ seconds: 5 }));
  for (const w of [3, 7, 32, 62]) {
    const inWindow = records.slice(-Math.ceil(w / 5)) as any[];
    const info = windowOf(inWindow, w * 1000, Date.now());
    const rps = (inWindow.length * 50) / info.covered;
    assert.equal(rps, 10, `window ${w} s: ${rps} rps over ${info.covered} s`);
  }
});

test("a round's record is shared between sidecars: one that reports thousands of label sets keeps its share, and every other sidecar's series still count", () => {
  const b = new RecordBuilder(3);
  const flood = Array.from({ length: 3 * MAX_RECORD_SERIES }, (_, i) => ({ dims: ['destination', `ns/noisy`, `path-${i}`], requests: 1 }));
  // The noisy sidecar is scraped first, with its histogram buckets too.
  b.add([...flood, ...flood.map((d) => ({ ...d, le: 5 }))]);
  b.add([{ dims: ['destination', 'ns/quiet-1', 'x'], requests: 7 }, { dims: ['destination', 'ns/quiet-1', 'x'], requests: 7, le: 5 }]);
  b.add([{ dims: ['destination', 'ns/quiet-2', 'x'], requests: 9 }]);
  const r = b.build(1, 1);
  assert.equal(r.series.get(['destination', 'ns/quiet-1', 'x'].join('\u0000'))?.requests, 7);
  assert.ok(r.series.get(['destination', 'ns/quiet-1', 'x'].join('\u0000'))?.buckets, 'its histogram too');
  assert.equal(r.series.get(['destination', 'ns/quiet-2', 'x'].join('\u0000'))?.requests, 9);
  const noisy = [...r.series.values()].filter((a) => a.dims[1] === 'ns/noisy').length;
  assert.equal(noisy, Math.floor(MAX_RECORD_SERIES / 3), 'the noisy sidecar gets its share');
  assert.equal(r.dropped, 3 * MAX_RECORD_SERIES - noisy, 'the label sets left out are counted once each');
  assert.ok(r.series.size <= MAX_RECORD_SERIES);
});

test('after a control-plane restart, the first round (every sidecar older than it, so only baselines) is not recorded: a steady 10 rps reads 10 over the first minute, not 8% less', async () => {
  let count = 50_000;
  let clock = 1_000_000; // ms; the sidecar's process started long before the collector
  const c = new Collector({ proxies: () => [proxy] as any[], intervalMs: 0, log: () => {}, now: () => clock });
  const srv = http.createServer((_q, res) => res.end(`process_start_time_seconds ${(1_000_000 - 3_600_000) / 1000}\nistio_requests_total{reporter="destination",destination_workload="w",destination_workload_namespace="ns",destination_service="s.ns.svc.cluster.local",response_code="200",connection_security_policy="mutual_tls"} ${count}\n`));
  const proxy = { id: 'sidecar~1', peer: '127.0.0.1:5555', workload: { name: 'w', namespace: 'ns', serviceAccount: 'sa', service: 's', adminPort: await listen(srv) } };
  try {
    for (let i = 0; i < 12; i++) {
      clock += 5000;
      count += 50; // 10 rps
      await c.round();
    }
    const info = windowOf(c.rounds.records, 60_000, clock);
    const [item] = signalsOver(c.rounds.records, 'workload', 'destination', info.covered);
    assert.equal(item!.rps, 10, `rps ${item!.rps} over ${info.covered} s`);
    assert.equal(c.roundCount, 12);
  } finally {
    srv.closeAllConnections();
    srv.close();
  }
});

test("the dashboard's series are computed once per recorded round, however often they are polled, and anew after the next round", async () => {
  const { cachedSeries } = await import('../../src/control/admin/signals.ts');
  const c = new Collector({ proxies: () => [], intervalMs: 0, log: () => {}, now: () => 1 });
  let computed = 0;
  const get = (key: string) => cachedSeries(c, key, () => ++computed);
  c.rounds.push({ t: 1000, seconds: 5, series: new Map(), dropped: 0 });
  assert.deepEqual([get('a'), get('a'), get('a')], [1, 1, 1]);
  assert.equal(get('b'), 2, 'another query: its own answer');
  c.rounds.push({ t: 6000, seconds: 5, series: new Map(), dropped: 0 });
  assert.equal(get('a'), 3, 'a new round: computed again');
  assert.equal(get('a'), 3);
});

test("a sidecar's idle label sets (no traffic this round) take no room: its active ones and every other sidecar's count; a label set with a count and buckets is one", () => {
  const b = new RecordBuilder(40); // a share of 50 each
  const idle = Array.from({ length: 600 }, (_, i) => [{ dims: ['destination', 'ns/busy', `idle-${i}`], requests: 0 }, { dims: ['destination', 'ns/busy', `idle-${i}`], requests: 0, le: 5 }]).flat();
  const active = Array.from({ length: 30 }, (_, i) => [{ dims: ['destination', 'ns/busy', `on-${i}`], requests: 2 }, { dims: ['destination', 'ns/busy', `on-${i}`], requests: 2, le: 5 }]).flat();
  b.add([...idle, ...active]);
  const r = b.build(1, 1);
  assert.equal(r.series.size, 30, 'the 30 active label sets, once each');
  assert.equal(r.dropped, 0);
  assert.ok([...r.series.values()].every((a) => a.requests === 2 && a.buckets));
});
