// The control plane's trace receiver (POST /v1/traces, OTLP/HTTP protobuf), the bounded store
// behind it, and the admin API that reads it (GET /api/v1/traces, /api/v1/traces/<id>). Real
// sockets on loopback; the admin server is the control plane's own (createAdminServer).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type http from 'node:http';
import { request } from 'undici';
import { MAX_ATTRIBUTES, MAX_BYTES, MAX_KEY, MAX_NAME, MAX_VALUE, TraceStore } from '../../src/control/traces/store.ts';
import { type TraceReceiver, startTraceReceiver } from '../../src/control/traces/receiver.ts';
import { createAdminServer } from '../../src/control/admin/server.ts';
import { type OtlpSpan, encodeTraces } from '../../src/xds/otlp.ts';

const store = new TraceStore(3, 10);
let receiver: TraceReceiver;
let admin: http.Server;
let adminUrl = '';
const logs: string[] = [];

before(async () => {
  receiver = await startTraceReceiver(store, '127.0.0.1', 0, (m) => logs.push(m));
  admin = createAdminServer({ store: undefined as never, registry: undefined as never, ads: undefined as never, version: 't', token: 'tok', traces: store }) as http.Server;
  await new Promise<void>((r) => admin.listen(0, '127.0.0.1', () => r()));
  adminUrl = `http://127.0.0.1:${(admin.address() as AddressInfo).port}`;
});
after(async () => {
  await receiver.close();
  admin.closeAllConnections();
  admin.close();
});

const id = (n: number, len: number) => n.toString(16).padStart(len, '0');
const span = (trace: number, spanN: number, parent: number | undefined, service: string, startMs: number, durMs: number, error = false): OtlpSpan => ({
  traceId: id(trace, 32),
  spanId: id(spanN, 16),
  ...(parent ? { parentSpanId: id(parent, 16) } : {}),
  name: `${service}:80/*`,
  kind: parent ? 2 : 3,
  startNs: BigInt(startMs) * 1_000_000n,
  endNs: BigInt(startMs + durMs) * 1_000_000n,
  attributes: { 'http.status_code': error ? '503' : '200' },
  error,
  service,
});

async function post(service: string, spans: OtlpSpan[], type = 'application/x-protobuf', body?: Uint8Array): Promise<number> {
  const r = await request(`http://127.0.0.1:${receiver.port}/v1/traces`, { method: 'POST', headers: { 'content-type': type }, body: Buffer.from(body ?? encodeTraces(service, { name: 'test', version: '1' }, spans)) });
  await r.body.dump();
  return r.statusCode;
}

const get = async (path: string) => {
  const r = await request(`${adminUrl}${path}`);
  return { status: r.statusCode, body: (await r.body.json()) as any };
};

test('spans sent over OTLP/HTTP are grouped by trace: a summary (root service and operation, duration, span count, error) and the spans with their parents', async () => {
  const t0 = Date.parse('2026-12-06T10:00:00Z');
  assert.equal(await post('a.ns', [span(1, 1, undefined, 'a.ns', t0, 50)]), 200);
  assert.equal(await post('b.ns', [span(1, 2, 1, 'b.ns', t0 + 10, 30, true)]), 200);
  const list = await get('/api/v1/traces');
  assert.equal(list.status, 200);
  assert.deepEqual(list.body.items[0], { traceId: id(1, 32), rootService: 'a.ns', operation: 'a.ns:80/*', start: '2026-12-06T10:00:00.000Z', durationMs: 50, spanCount: 2, error: true, services: ['a.ns', 'b.ns'] });
  const t = await get(`/api/v1/traces/${id(1, 32).toUpperCase()}`);
  assert.equal(t.status, 200);
  assert.deepEqual(t.body.spans.map((s: any) => [s.spanId, s.parentSpanId, s.service, s.kind, s.durationMs, s.error]), [
    [id(1, 16), undefined, 'a.ns', 'CLIENT', 50, false],
    [id(2, 16), id(1, 16), 'b.ns', 'SERVER', 30, true],
  ]);
  assert.equal(t.body.spans[1].start, '2026-12-06T10:00:00.010Z');
});

test('bounded: the oldest traces go past the trace or span limit; a span sent twice is kept once', async () => {
  const t0 = Date.now();
  for (let n = 10; n < 15; n++) await post('s', [span(n, 1, undefined, 's', t0, 1), span(n, 2, 1, 's', t0, 1)]);
  const kept = (await get('/api/v1/traces')).body;
  assert.deepEqual(kept.items.map((t: any) => t.traceId), [id(14, 32), id(13, 32), id(12, 32)], 'at most 3 traces, newest first');
  assert.ok(kept.spans <= 10);
  assert.equal((await get(`/api/v1/traces/${id(10, 32)}`)).status, 404);
  await post('s', [span(14, 2, 1, 's', t0, 1)]);
  assert.equal((await get(`/api/v1/traces/${id(14, 32)}`)).body.summary.spanCount, 2);
  assert.equal((await get('/api/v1/traces?limit=1')).body.items.length, 1);
  assert.equal((await get('/api/v1/traces?limit=x')).status, 400);
});

test('what is not an OTLP/HTTP protobuf export is refused with a reason, never stored; the admin API takes GET only', async () => {
  const before = store.stats().received;
  assert.equal(await post('s', [], 'application/json', Buffer.from('{}')), 415);
  assert.equal(await post('s', [], 'application/x-protobuf', Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])), 400);
  assert.equal(store.stats().received, before);
  assert.match(logs.join('\n'), /not an OTLP ExportTraceServiceRequest/);
  const r = await request(`http://127.0.0.1:${receiver.port}/v1/metrics`, { method: 'POST', body: 'x' });
  assert.equal(r.statusCode, 404);
  await r.body.dump();
  assert.equal((await get('/api/v1/traces/not-an-id')).status, 404);
  const del = await request(`${adminUrl}/api/v1/traces`, { method: 'DELETE', headers: { authorization: 'Bearer tok' } });
  assert.equal(del.statusCode, 405);
  await del.body.dump();
});

test('bounded by size too: a span with a huge name, attribute or many attributes is kept cut; spans of large attributes never hold more than MAX_BYTES (review defect: only the span count was bounded)', () => {
  const s = new TraceStore(1000, 20_000);
  const attrs: Record<string, string> = {};
  for (let i = 0; i < 500; i++) attrs[`k${i}`.padEnd(300, 'k')] = 'v'.repeat(4 << 20 >> 8);
  const huge: OtlpSpan = { ...span(1, 1, undefined, 'x'.repeat(5000), Date.now(), 1), name: 'n'.repeat(1 << 20), traceState: 't'.repeat(10_000), attributes: { ...attrs, big: 'b'.repeat(4 << 20) } };
  s.add([huge]);
  const got = s.get(id(1, 32))!.spans[0]!;
  assert.ok(got.name.length <= MAX_NAME + 3 && got.service.length <= MAX_NAME + 3);
  assert.equal(Object.keys(got.attributes).length, MAX_ATTRIBUTES);
  for (const [k, v] of Object.entries(got.attributes)) assert.ok(k.length <= MAX_KEY + 3 && v.length <= MAX_VALUE + 3);
  // 20,000 spans of 64 attributes of 1 KiB would be 1.3 GB; the store keeps at most MAX_BYTES of them.
  const big: Record<string, string> = {};
  for (let i = 0; i < 64; i++) big[`a${i}`] = 'x'.repeat(1024);
  for (let n = 0; n < 2000; n++) s.add([{ ...span(100 + n, 1, undefined, 's', Date.now(), 1), attributes: big }]);
  const st = s.stats();
  assert.ok(st.bytes <= MAX_BYTES, `${st.bytes} > ${MAX_BYTES}`);
  assert.ok(st.traces < 2000 && st.traces > 100, `kept ${st.traces} traces`);
});
