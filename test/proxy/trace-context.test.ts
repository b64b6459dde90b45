// The tracing layer of the request path (http/trace-context.ts): W3C and B3 propagation, the
// sampling decision (incoming decisions honoured; 0% and 100%), x-request-id; and the tracer's
// spans and bounded export queue (telemetry/tracer.ts). No sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { incoming, traceRequest } from '../../src/proxy/http/trace-context.ts';
import type { HeaderList, RequestHead } from '../../src/proxy/http/types.ts';
import type { TracingConfig } from '../../src/proxy/xds-client/convert-tracing.ts';
import { MAX_QUEUED_SPANS, Tracer, operationName, spanOf } from '../../src/proxy/telemetry/tracer.ts';
import { Telemetry } from '../../src/proxy/telemetry/events.ts';
import type { RuntimeConfig } from '../../src/proxy/config.ts';
import { EMPTY_CONFIG } from '../../src/proxy/config.ts';
import type { Downstream } from '../../src/proxy/http/types.ts';
import { seededRandom } from '../fixtures/seeded.ts';

const cfg = (randomSampling: number): TracingConfig => ({ randomSampling, clientSampling: 100, overallSampling: 100, customTags: [], maxPathTagLength: 256, noContextPropagation: false, requestIdSampling: true, packTraceReason: true, generateRequestId: true });
const head = (headers: HeaderList = []): RequestHead => ({ method: 'GET', authority: 'a.example', path: '/p', query: '', headers, hasBody: false, protocol: 'HTTP/1.1' });
const get = (h: HeaderList, n: string) => {
  const out: string[] = [];
  for (let i = 0; i < h.length; i += 2) if (h[i] === n) out.push(h[i + 1]!);
  return out.length > 1 ? out : out[0];
};

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

test('W3C: the incoming trace continues under a new span; traceparent passed on names that span; tracestate is kept; the sampled flag is honoured', () => {
  for (const [flags, sampled] of [['01', true], ['00', false]] as const) {
    const h = head(['traceparent', `00-${TRACE}-${PARENT}-${flags}`, 'tracestate', 'vendor=x', 'accept', '*/*']);
    const t = traceRequest(h, cfg(sampled ? 0 : 100), 0.5);
    assert.equal(t.traceId, TRACE);
    assert.equal(t.parentId, PARENT);
    assert.match(t.spanId, /^[0-9a-f]{16}$/);
    assert.notEqual(t.spanId, PARENT);
    assert.equal(t.sampled, sampled, `flags ${flags} decide, whatever the sampling percentage`);
    assert.equal(t.traceState, 'vendor=x');
    assert.equal(get(h.headers, 'traceparent'), `00-${TRACE}-${t.spanId}-${flags}`);
    assert.equal(get(h.headers, 'tracestate'), 'vendor=x');
    assert.equal(get(h.headers, 'accept'), '*/*');
    assert.equal(get(h.headers, 'b3'), undefined, 'B3 is written only where it came');
  }
});

test('a new trace drops the tracestate that came with no valid traceparent (W3C: it belongs to another trace); a continued trace keeps it', () => {
  const h = head(['traceparent', `ff-${TRACE}-${PARENT}-01`, 'tracestate', 'vendor=old', 'accept', '*/*']);
  const t = traceRequest(h, cfg(100), 0.5);
  assert.notEqual(t.traceId, TRACE);
  assert.equal(t.traceState, undefined);
  assert.equal(get(h.headers, 'tracestate'), undefined, 'not passed on');
  assert.equal(get(h.headers, 'accept'), '*/*');
  const alone = head(['tracestate', 'vendor=old']);
  traceRequest(alone, cfg(100), 0.5);
  assert.equal(get(alone.headers, 'tracestate'), undefined);
  const kept = head(['traceparent', `00-${TRACE}-${PARENT}-01`, 'tracestate', 'vendor=x']);
  traceRequest(kept, cfg(100), 0.5);
  assert.equal(get(kept.headers, 'tracestate'), 'vendor=x');
});

test('an invalid traceparent (version ff, all-zero ids, bad length) starts a new trace', () => {
  for (const tp of [`ff-${TRACE}-${PARENT}-01`, `00-${'0'.repeat(32)}-${PARENT}-01`, `00-${TRACE}-${'0'.repeat(16)}-01`, `00-${TRACE.slice(1)}-${PARENT}-01`, `00-${TRACE}-${PARENT}-01-extra`]) {
    const h = head(['traceparent', tp]);
    const t = traceRequest(h, cfg(100), 0.5);
    assert.notEqual(t.traceId, TRACE, tp);
    assert.equal(t.parentId, undefined, tp);
    assert.equal(get(h.headers, 'traceparent'), `00-${t.traceId}-${t.spanId}-01`);
  }
});

test('B3 single: continued (64-bit trace ids left-padded), rewritten as b3 with the new span, plus traceparent; "0" and "1"/"d" alone decide sampling', () => {
  const h = head(['b3', `a3ce929d0e0e4736-${PARENT}-1`]);
  const t = traceRequest(h, cfg(0), 0.5);
  assert.equal(t.traceId, '0000000000000000a3ce929d0e0e4736');
  assert.equal(t.parentId, PARENT);
  assert.equal(t.sampled, true);
  assert.equal(get(h.headers, 'b3'), `0000000000000000a3ce929d0e0e4736-${t.spanId}-1`);
  assert.equal(get(h.headers, 'traceparent'), `00-0000000000000000a3ce929d0e0e4736-${t.spanId}-01`);
  assert.equal(traceRequest(head(['b3', '0']), cfg(100), 0).sampled, false);
  for (const v of ['1', 'd']) {
    const hh = head(['b3', v]);
    const tt = traceRequest(hh, cfg(0), 0.99);
    assert.equal(tt.sampled, true, v);
    assert.equal(get(hh.headers, 'b3'), `${tt.traceId}-${tt.spanId}-1`);
  }
});

test('B3 multi: continued, the x-b3-* headers rewritten (span, parent, sampled), the old ones gone', () => {
  const h = head(['x-b3-traceid', TRACE, 'x-b3-spanid', PARENT, 'x-b3-parentspanid', 'ffffffffffffffff', 'x-b3-sampled', '1']);
  const t = traceRequest(h, cfg(0), 0.5);
  assert.deepEqual([t.traceId, t.parentId, t.sampled], [TRACE, PARENT, true]);
  assert.equal(get(h.headers, 'x-b3-traceid'), TRACE);
  assert.equal(get(h.headers, 'x-b3-spanid'), t.spanId);
  assert.equal(get(h.headers, 'x-b3-parentspanid'), PARENT);
  assert.equal(get(h.headers, 'x-b3-sampled'), '1');
  assert.equal(get(h.headers, 'traceparent'), `00-${TRACE}-${t.spanId}-01`);
  // x-b3-flags: 1 (debug) samples; x-b3-sampled: 0 does not.
  assert.equal(traceRequest(head(['x-b3-traceid', TRACE, 'x-b3-spanid', PARENT, 'x-b3-flags', '1']), cfg(0), 0.5).sampled, true);
  assert.equal(traceRequest(head(['x-b3-traceid', TRACE, 'x-b3-spanid', PARENT, 'x-b3-sampled', '0']), cfg(100), 0).sampled, false);
  // W3C wins over B3 when both came.
  assert.equal(traceRequest(head(['x-b3-traceid', 'a'.repeat(32), 'x-b3-spanid', PARENT, 'traceparent', `00-${TRACE}-${PARENT}-01`]), cfg(0), 0.5).traceId, TRACE);
});

test('sampling with no incoming decision: 0% samples none, 100% all; otherwise drawn from x-request-id as Envoy draws it (first 8 hex digits modulo 10,000); x-envoy-force-trace samples at 0%', () => {
  let n0 = 0;
  let n100 = 0;
  let n1 = 0;
  for (let i = 0; i < 20_000; i++) {
    if (traceRequest(head(), cfg(0), Math.random()).sampled) n0++;
    if (traceRequest(head(), cfg(100), Math.random()).sampled) n100++;
    if (traceRequest(head(), cfg(1), Math.random()).sampled) n1++;
  }
  assert.deepEqual([n0, n100], [0, 20_000]);
  assert.ok(n1 > 100 && n1 < 400, `1% of 20,000 requests with made ids: ${n1} sampled`);
  // 0x1387 = 4999 and 0x1388 = 5000: at 50%, the draw decides, whatever `rand` says.
  const id = (first8: string) => `${first8}-0000-4000-8000-000000000000`;
  assert.equal(traceRequest(head(['x-request-id', id('00001387')]), cfg(50), 0.99).sampled, true);
  assert.equal(traceRequest(head(['x-request-id', id('00001388')]), cfg(50), 0.01).sampled, false);
  // An id that gives no draw (not 8 hex digits first): `rand` decides.
  assert.equal(traceRequest(head(['x-request-id', 'req-7']), cfg(50), 0.49).sampled, true);
  assert.equal(traceRequest(head(['x-request-id', 'req-7']), cfg(50), 0.51).sampled, false);
  assert.equal(traceRequest(head(['x-envoy-force-trace', 'true']), cfg(0), 0.99).sampled, true);
  const h = head();
  const t = traceRequest(h, cfg(0), 0.5);
  assert.equal(get(h.headers, 'traceparent'), `00-${t.traceId}-${t.spanId}-00`, 'unsampled: the context still goes on, flagged 00');
});

test("the decision travels in x-request-id (Envoy's pack_trace_reason): a hop that gets only the request id takes the same decision; overall_sampling 0 unpacks it", () => {
  // Hop 1 samples at 1%: find a request it sampled and one it did not.
  let yes: string | undefined;
  let no: string | undefined;
  for (let i = 0; i < 100_000 && (!yes || !no); i++) {
    const h = head();
    const t = traceRequest(h, cfg(1), Math.random());
    if (t.sampled) yes = get(h.headers, 'x-request-id') as string;
    else no = get(h.headers, 'x-request-id') as string;
  }
  assert.ok(yes && no);
  assert.equal(yes[14], '9', `a sampled request's id is marked: ${yes}`);
  assert.equal(no[14], '4', `an unsampled one keeps its version digit: ${no}`);
  // Hop 2: the app forwarded x-request-id only (no traceparent), and hop 2 samples at 0%.
  const h2 = head(['x-request-id', yes]);
  const t2 = traceRequest(h2, cfg(0), 0.99);
  assert.equal(t2.sampled, true, 'sampled upstream: sampled here too');
  assert.equal(get(h2.headers, 'x-request-id'), yes, 'the id passed on unchanged');
  assert.equal(traceRequest(head(['x-request-id', no]), cfg(1), 0).sampled, false, 'the same draw at the same rate: not sampled, whatever rand says');
  // A marked id past overall_sampling 0: not sampled, and unmarked for the hops after.
  const h3 = head(['x-request-id', yes]);
  const t3 = traceRequest(h3, { ...cfg(100), overallSampling: 0 }, 0);
  assert.equal(t3.sampled, false);
  assert.equal((get(h3.headers, 'x-request-id') as string)[14], '4');
  // x-client-trace-id: sampled by client_sampling, marked 'b'.
  const h4 = head(['x-client-trace-id', 'c1', 'x-request-id', `00000000-0000-4000-8000-000000000000`]);
  assert.equal(traceRequest(h4, { ...cfg(0), clientSampling: 100 }, 0.5).sampled, true);
  assert.equal((get(h4.headers, 'x-request-id') as string)[14], 'b');
});

test('x-request-id: kept when it came, made (a UUID) at the edge when not', () => {
  const kept = head(['x-request-id', 'req-7']);
  assert.equal(traceRequest(kept, cfg(0), 0.5).requestId, 'req-7');
  assert.deepEqual(kept.headers.filter((x) => x === 'x-request-id').length, 1);
  const made = head();
  const t = traceRequest(made, cfg(0), 0.5);
  assert.match(t.requestId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(get(made.headers, 'x-request-id'), t.requestId);
  assert.notEqual(traceRequest(head(), cfg(0), 0.5).traceId, t.traceId, 'each new trace its own id');
});

test("span names: Istio's operation names by cluster (outbound host:port/*, inbound the workload's service), ingress/egress where no route took it", () => {
  assert.equal(operationName('outbound|9080|v1|reviews.default.svc.cluster.local', false, undefined), 'reviews.default.svc.cluster.local:9080/*');
  assert.equal(operationName('inbound|9080||', true, 'reviews.default.svc.cluster.local'), 'reviews.default.svc.cluster.local:9080/*');
  assert.equal(operationName('-', true, 'x'), 'ingress');
  assert.equal(operationName('-', false, undefined), 'egress');
  assert.equal(operationName('PassthroughCluster', false, undefined), 'PassthroughCluster');
});

test('the export queue is bounded: past it spans are dropped and counted, never blocking; unsampled requests queue nothing; a failed export is counted', async () => {
  const listener = { name: 'outbound', direction: 'outbound', tracing: { ...cfg(100), export: { cluster: 'nowhere', authority: 'c', path: '/v1/traces', timeoutMs: 1000, headers: [], serviceName: 's.ns' } } };
  const config = { ...EMPTY_CONFIG, listeners: new Map([['outbound', listener]]) } as unknown as RuntimeConfig;
  const logs: string[] = [];
  const tracer = new Tracer({ config: () => config, calls: { config: () => config, pools: undefined as never, rr: new Map() }, nodeId: 'n1', log: (m) => logs.push(m) });
  const tel = new Telemetry();
  tracer.subscribe(tel);
  const ds = (sampled: boolean) => ({ head: head(), listenerName: 'outbound', remoteAddress: () => '127.0.0.1', trace: { traceId: TRACE, spanId: PARENT, sampled, requestId: 'r', startMs: 1, parentId: undefined, traceState: undefined } }) as unknown as Downstream;
  for (let i = 0; i < 100; i++) tel.request.publish({ cluster: 'outbound|80||a.example', status: 200, ds: ds(false) });
  assert.deepEqual(tracer.stats().exporters, [], 'unsampled: no span, no exporter');
  const N = MAX_QUEUED_SPANS + 250;
  for (let i = 0; i < N; i++) tel.request.publish({ cluster: 'outbound|80||a.example', status: 200, ds: ds(true) });
  const s = tracer.stats().exporters[0]!;
  assert.deepEqual([s.queued, s.dropped], [MAX_QUEUED_SPANS, 250]);
  await tracer.flush();
  const after = tracer.stats().exporters[0]!;
  assert.deepEqual([after.queued, after.failed, after.exported], [0, MAX_QUEUED_SPANS, 0]);
  assert.match(after.lastError ?? '', /no cluster nowhere/);
  assert.equal(logs.length, 1, 'the failure is logged once while it repeats');
  assert.equal(tracer.prometheus(), [
    '# HELP weft_tracing_spans_total Spans by exporter cluster and outcome (exported, dropped: the queue was full, failed: the export failed).',
    '# TYPE weft_tracing_spans_total counter',
    'weft_tracing_spans_total{cluster="nowhere",outcome="exported"} 0',
    'weft_tracing_spans_total{cluster="nowhere",outcome="dropped"} 250',
    `weft_tracing_spans_total{cluster="nowhere",outcome="failed"} ${MAX_QUEUED_SPANS}`,
    '',
  ].join('\n'));
  tracer.close();
});

test('B3 headers that came beside a traceparent are rewritten too (W3C decides the context): the next hop that reads B3 joins the same trace', () => {
  const h = head(['traceparent', `00-${TRACE}-${PARENT}-01`, 'x-b3-traceid', TRACE, 'x-b3-spanid', PARENT, 'x-b3-sampled', '1']);
  const t = traceRequest(h, cfg(0), 0.5);
  assert.equal(get(h.headers, 'x-b3-spanid'), t.spanId);
  assert.equal(get(h.headers, 'x-b3-traceid'), TRACE);
  const single = head(['traceparent', `00-${TRACE}-${PARENT}-01`, 'b3', `${TRACE}-${PARENT}-1`]);
  const u = traceRequest(single, cfg(0), 0.5);
  assert.equal(get(single.headers, 'b3'), `${TRACE}-${u.spanId}-1`);
});

test("a span: Envoy's tags (url cut to max_path_tag_length, method, status, flags, cluster, peer, request id), the HCM's custom tags, gRPC status from the trailers as an error", () => {
  const c: TracingConfig = { ...cfg(100), maxPathTagLength: 30, customTags: [{ tag: 'lit', kind: 'literal', value: 'v' }, { tag: 'user', kind: 'header', name: 'x-user', defaultValue: 'anon' }, { tag: 'dry', kind: 'metadata', filter: 'envoy.filters.http.rbac', path: ['k'] }] };
  const ds = (headers: HeaderList, path = '/p') => ({ head: { ...head(headers), path, query: 'q=1' }, remoteAddress: () => '10.0.0.7', dynamicMetadata: { 'envoy.filters.http.rbac': { k: 'policy-1' } } }) as unknown as Downstream;
  const tc = { traceId: TRACE, spanId: PARENT, parentId: 'aaaaaaaaaaaaaaaa', sampled: true, requestId: 'rid', startMs: performance.now() - 5, traceState: undefined };
  const s = spanOf({ cluster: 'outbound|80||a.example', status: 503, reason: 'upstream_timeout', endpoint: '10.0.0.9:80', bytesReceived: 3, bytesSent: 9, ds: ds(['user-agent', 'ua/1']) }, tc, c, false, { nodeId: 'node-1' });
  assert.deepEqual([s.name, s.kind, s.parentSpanId, s.error], ['a.example:80/*', 3, 'aaaaaaaaaaaaaaaa', true]);
  assert.ok(s.endNs > s.startNs);
  assert.deepEqual(s.attributes, {
    'component': 'proxy', 'node_id': 'node-1', 'guid:x-request-id': 'rid', 'http.url': 'http://a.example/p?q=1', 'http.method': 'GET', 'downstream_cluster': '-', 'user_agent': 'ua/1',
    'http.protocol': 'HTTP/1.1', 'peer.address': '10.0.0.7', 'request_size': '3', 'response_flags': 'UT', 'http.status_code': '503', 'response_size': '9',
    'upstream_cluster': 'outbound|80||a.example', 'upstream_cluster.name': 'outbound|80||a.example', 'upstream_address': '10.0.0.9:80', 'error': 'true', 'lit': 'v', 'user': 'anon', 'dry': 'policy-1',
  });
  const long = spanOf({ cluster: 'inbound|80||', status: 200, ds: ds(['x-user', 'bob'], '/'.padEnd(100, 'x')) }, tc, c, true, { nodeId: 'n', service: 'a.ns.svc.cluster.local' });
  assert.equal(long.attributes['http.url']!.length, 30);
  assert.deepEqual([long.name, long.kind, long.error, long.attributes.user], ['a.ns.svc.cluster.local:80/*', 2, false, 'bob']);
  assert.equal(spanOf({ cluster: 'outbound|80||a.example', operation: 'a.example:80/api*', status: 200, ds: ds([]) }, tc, c, false, { nodeId: 'n' }).name, 'a.example:80/api*', "the route's decorator names the span");
  const grpc = (status: string) => spanOf({ cluster: 'inbound|80||', status: 200, responseTrailers: ['grpc-status', status], ds: ds(['content-type', 'application/grpc']) }, tc, c, true, { nodeId: 'n' });
  assert.deepEqual([grpc('14').error, grpc('14').attributes['grpc.status_code'], grpc('14').attributes.error], [true, '14', 'true']);
  assert.deepEqual([grpc('0').error, grpc('0').attributes['grpc.status_code']], [false, '0']);
});

test("an x-request-id Envoy draws nothing from (not 8 hex digits first) is passed on as it came, even at 36 characters; a lone x-b3-spanid is no B3 context", () => {
  const id = 'zzzzzzzz-0000-4000-8000-000000000000';
  const h = head(['x-request-id', id]);
  assert.equal(traceRequest(h, cfg(100), 0.5).sampled, true, 'drawn at random instead');
  assert.equal(get(h.headers, 'x-request-id'), id, 'not marked: it is the client\'s own id');
  const lone = head(['x-b3-spanid', PARENT]);
  const t = traceRequest(lone, cfg(0), 0.5);
  assert.equal(t.parentId, undefined);
  assert.equal(get(lone.headers, 'x-b3-spanid'), undefined, 'a stale B3 header is not passed on');
  assert.equal(get(lone.headers, 'x-b3-traceid'), undefined, 'and no B3 context is made up');
});

test('an empty x-request-id is none: a new one is made, with tracing and without (Envoy makes one where the value is empty)', async () => {
  const { ensureRequestId } = await import('../../src/proxy/http/trace-context.ts');
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  const traced = head(['x-request-id', '']);
  assert.match(traceRequest(traced, cfg(0), 0.5).requestId, UUID);
  assert.match(String(get(traced.headers, 'x-request-id')), UUID);
  const plain = head(['x-request-id', '', 'accept', '*/*']);
  ensureRequestId(plain);
  assert.match(String(get(plain.headers, 'x-request-id')), UUID);
  const kept = head(['x-request-id', 'r-1']);
  ensureRequestId(kept);
  assert.equal(get(kept.headers, 'x-request-id'), 'r-1');
});

test('a traceparent is read as the W3C grammar reads it (checked against the regular expression it replaced, on valid and mutated headers)', () => {
  const oracle = (tp: string) => {
    const m = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/.exec(tp.trim());
    if (!m || m[1] === 'ff' || (m[1] === '00' && m[5]) || m[2] === '0'.repeat(32) || m[3] === '0'.repeat(16)) return {};
    return { traceId: m[2], parentId: m[3], sampled: (parseInt(m[4]!, 16) & 1) === 1 };
  };
  // Seeded: a failure is the same on every run.
  const random = seededRandom(0x5eed);
  const hex = (n: number) => Array.from({ length: n }, () => '0123456789abcdef'[Math.floor(random() * 16)]).join('');
  const seeds = ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00', '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-extra', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`, `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`, 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', ' 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x', '02-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x', '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-a\nb', '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-a\rb', '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-a b'];
  for (let i = 0; i < 3000; i++) {
    let s = i < seeds.length ? seeds[i]! : `${hex(2)}-${hex(32)}-${hex(16)}-${hex(2)}${i % 7 === 0 ? `-${hex(3)}` : ''}`;
    // Mutations: a character replaced by one from outside the grammar (past ASCII too: \u0130's
    // low byte is "0", \u0161's is "a"), or by a zero, upper case, or a cut.
    if (i >= seeds.length && i % 3 === 0) {
      const at = Math.floor(random() * s.length);
      const outside = 'G0A-0 \u0130\u0161\u00e9';
      s = s.slice(0, at) + outside[Math.floor(random() * outside.length)] + s.slice(at + 1);
    } else if (i >= seeds.length && i % 5 === 0) s = s.slice(0, Math.floor(random() * s.length));
    else if (i >= seeds.length && i % 11 === 0) s = `${i % 2 ? '00' : 'ff'}-${'0'.repeat(32)}-${hex(16)}-01`;
    // A valid traceparent comes back whole (tp), its ids read out of it where they are asked for.
    const { tp, ...got } = incoming(['traceparent', s]);
    assert.deepEqual(tp === undefined ? got : { traceId: tp.slice(3, 35), parentId: tp.slice(36, 52), ...got }, oracle(s), JSON.stringify(s));
  }
});

test('each request passes on its own trace: a continued trace, then one whose traceparent is invalid and whose B3 names that same trace (the first one\'s bytes reused only while they are its)', () => {
  const other = 'a'.repeat(32);
  const first = head(['traceparent', `00-${TRACE}-${PARENT}-01`]);
  traceRequest(first, cfg(0), 0.5);
  assert.match(String(get(first.headers, 'traceparent')), new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
  // Invalid (an all-zero parent), so B3 decides: the same trace id as the first request's.
  const second = head(['traceparent', `00-${other}-${'0'.repeat(16)}-01`, 'b3', `${TRACE}-${PARENT}-1`]);
  const t = traceRequest(second, cfg(0), 0.5);
  assert.equal(t.traceId, TRACE);
  assert.equal(get(second.headers, 'traceparent'), `00-${TRACE}-${t.spanId}-01`);
  // A new trace after a continued one: its own new id, not the last one's.
  const third = head([]);
  const u = traceRequest(third, cfg(100), 0.5);
  assert.notEqual(u.traceId, TRACE);
  assert.equal(get(third.headers, 'traceparent'), `00-${u.traceId}-${u.spanId}-01`);
});

test("use_request_id_for_trace_sampling false (Telemetry useRequestIdForTraceSampling: false): the draw is random, an id's mark decides nothing and is never written; an incoming trace flag still decides", () => {
  const noRid = (p: number): TracingConfig => ({ ...cfg(p), requestIdSampling: false });
  const id = (first8: string, mark = '4') => `${first8}-0000-${mark}000-8000-000000000000`;
  // 0x1387 = 4999: drawn from the id this is sampled at 50%; with the id unused, `rand` decides.
  const low = head(['x-request-id', id('00001387')]);
  const t = traceRequest(low, noRid(50), 0.99);
  assert.equal(t.sampled, false, 'the id does not decide');
  assert.equal(get(low.headers, 'x-request-id'), id('00001387'), 'nor is a decision written into it');
  assert.equal(traceRequest(head(['x-request-id', id('00001388')]), noRid(50), 0.01).sampled, true);
  // A mark made upstream ('9', sampled) decides nothing either.
  const marked = head(['x-request-id', id('00001388', '9')]);
  assert.equal(traceRequest(marked, noRid(0), 0.5).sampled, false);
  assert.equal(get(marked.headers, 'x-request-id'), id('00001388', '9'), 'passed on as it came');
  assert.equal(traceRequest(head(['traceparent', `00-${TRACE}-${PARENT}-01`]), noRid(0), 0.99).sampled, true, "the incoming traceparent's flag decides");
  let n = 0;
  for (let i = 0; i < 20_000; i++) if (traceRequest(head(), noRid(10), Math.random()).sampled) n++;
  assert.ok(n > 1_000 && n < 3_000, `10% of 20,000: ${n} sampled (Envoy's OpenTelemetry tracer with no sampler would trace all of them)`);
});

test('pack_trace_reason false: the decision is still drawn from the id (every hop takes the same one) but never written into it', () => {
  const noPack = (p: number): TracingConfig => ({ ...cfg(p), packTraceReason: false });
  const id = '00001387-0000-4000-8000-000000000000';
  const h = head(['x-request-id', id]);
  assert.equal(traceRequest(h, noPack(50), 0.99).sampled, true);
  assert.equal(get(h.headers, 'x-request-id'), id, 'unmarked');
});

test('no_context_propagation (Telemetry disableContextPropagation): the span is made in the incoming trace, but no trace header is written or rewritten; x-request-id still is', () => {
  const off: TracingConfig = { ...cfg(100), noContextPropagation: true };
  const bare = head(['accept', '*/*']);
  const t = traceRequest(bare, off, 0.5);
  assert.equal(t.sampled, true, 'the span is still sampled and reported');
  assert.equal(get(bare.headers, 'traceparent'), undefined, 'none made');
  assert.equal(get(bare.headers, 'x-request-id'), t.requestId);
  const came = ['traceparent', `00-${TRACE}-${PARENT}-01`, 'tracestate', 'v=1', 'b3', `${TRACE}-${PARENT}-1`, 'x-b3-traceid', TRACE, 'x-request-id', 'r-1'];
  const h = head([...came]);
  const t2 = traceRequest(h, off, 0.5);
  assert.equal(t2.traceId, TRACE, "this hop's span joins the incoming trace");
  assert.equal(t2.parentId, PARENT);
  assert.deepEqual(h.headers, came, 'the headers pass as they came');
});

test("generate_request_id false with tracing: a request that came without x-request-id goes on without one (the decision drawn at random); one that came with it keeps it", () => {
  const noGen: TracingConfig = { ...cfg(100), generateRequestId: false };
  const h = head(['accept', '*/*']);
  const t = traceRequest(h, noGen, 0.5);
  assert.equal(get(h.headers, 'x-request-id'), undefined);
  assert.equal(t.requestId, '');
  assert.equal(t.sampled, true);
  assert.equal(get(h.headers, 'traceparent'), `00-${t.traceId}-${t.spanId}-01`);
  const b3 = head(['b3', `${TRACE}-${PARENT}-1`]);
  traceRequest(b3, noGen, 0.5);
  assert.equal(get(b3.headers, 'x-request-id'), undefined, 'nor on the path that rewrites B3');
  assert.equal(traceRequest(head(['x-request-id', 'r-1']), noGen, 0.5).requestId, 'r-1');
  assert.equal(traceRequest(head(), { ...cfg(0), generateRequestId: false }, 0.5).sampled, false);
});
