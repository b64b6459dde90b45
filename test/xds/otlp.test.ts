// The sidecar's OTLP span encoder (src/xds/otlp.ts encodeTraces, written by hand into one buffer):
// the bytes protobufjs's Writer wrote before it, read back by the control plane's decoder and by the
// test collector's own wire reader (test/fixtures/otlp-collector.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import protobuf from 'protobufjs/light.js';
import { type OtlpSpan, SPAN_KIND, STATUS_ERROR, decodeTraces, encodeTraces } from '../../src/xds/otlp.ts';
import { exportRequest } from '../fixtures/otlp-collector.ts';

/** The encoder this one replaced: protobufjs's Writer, field by field (as until 2026-12-07). */
function viaWriter(service: string, scope: { name: string; version: string }, spans: readonly OtlpSpan[]): Buffer {
  const w = protobuf.Writer.create();
  const kv = (tag: number, k: string, v: string) => w.uint32(tag).fork().uint32(0x0a).string(k).uint32(0x12).fork().uint32(0x0a).string(v).ldelim().ldelim();
  w.uint32(0x0a).fork().uint32(0x0a).fork();
  kv(0x0a, 'service.name', service);
  w.ldelim().uint32(0x12).fork();
  w.uint32(0x0a).fork().uint32(0x0a).string(scope.name).uint32(0x12).string(scope.version).ldelim();
  for (const s of spans) {
    w.uint32(0x12).fork();
    w.uint32(0x0a).bytes(Buffer.from(s.traceId, 'hex'));
    w.uint32(0x12).bytes(Buffer.from(s.spanId, 'hex'));
    if (s.traceState) w.uint32(0x1a).string(s.traceState);
    if (s.parentSpanId) w.uint32(0x22).bytes(Buffer.from(s.parentSpanId, 'hex'));
    w.uint32(0x2a).string(s.name).uint32(0x30).int32(s.kind);
    w.uint32(0x39).fixed64(s.startNs.toString() as unknown as number).uint32(0x41).fixed64(s.endNs.toString() as unknown as number);
    for (const k in s.attributes) kv(0x4a, k, s.attributes[k]!);
    if (s.error) w.uint32(0x7a).fork().uint32(0x18).int32(STATUS_ERROR).ldelim();
    w.uint32(0x85).fixed32(1).ldelim();
  }
  w.ldelim().ldelim();
  return Buffer.from(w.finish());
}

const SPANS: OtlpSpan[] = [
  {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    name: 'bench-server.default.svc.cluster.local:80/*',
    kind: SPAN_KIND.SERVER,
    startNs: 1796679684415123456n,
    endNs: 1796679684416987654n,
    attributes: { 'component': 'proxy', 'http.url': 'http://bench-server/', 'http.status_code': '200', 'upstream_cluster': 'inbound|80||' },
    error: false,
    service: 'bench-server.default',
  },
  {
    // A parent, a tracestate, an error, lengths that take two and three varint bytes, text past ASCII, an empty value.
    traceId: 'ffffffffffffffffffffffffffffffff',
    spanId: '0000000000000001',
    parentSpanId: 'fedcba9876543210',
    traceState: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7',
    name: 'naïve ☃ operation',
    kind: SPAN_KIND.CLIENT,
    startNs: 0n,
    endNs: 18446744073709551615n,
    attributes: { 'http.url': `http://x/${'a'.repeat(200)}`, 'long': 'b'.repeat(20000), 'user_agent': 'curl/8 ü', 'empty': '', 'error': 'true' },
    error: true,
    service: 'bench-server.default',
  },
];

test('OTLP spans encode to the same bytes as protobufjs wrote them, and read back whole', () => {
  const scope = { name: 'weft', version: '0.1.0' };
  const bytes = Buffer.from(encodeTraces('bench-server.default', scope, SPANS));
  assert.deepEqual(bytes, viaWriter('bench-server.default', scope, SPANS));
  // The control plane's decoder (protobufjs) gets every field back.
  assert.deepEqual(decodeTraces(bytes), SPANS);
  // So does a wire reader that shares no code with either.
  const read = exportRequest(bytes);
  assert.equal(read.length, 2);
  assert.equal(read[1]!.parentSpanId, 'fedcba9876543210');
  assert.equal(read[1]!.endNs, 18446744073709551615n);
  assert.equal(read[1]!.statusCode, STATUS_ERROR);
  assert.equal(read[1]!.attributes['user_agent'], 'curl/8 ü');
  assert.equal(read[0]!.startNs, 1796679684415123456n);
  assert.equal(read[0]!.service, 'bench-server.default');
});

test('an empty batch and a span without attributes encode as protobufjs wrote them', () => {
  const scope = { name: 'weft', version: '' };
  assert.deepEqual(Buffer.from(encodeTraces('s', scope, [])), viaWriter('s', scope, []));
  const bare: OtlpSpan = { ...SPANS[0]!, attributes: {} };
  assert.deepEqual(Buffer.from(encodeTraces('s', scope, [bare])), viaWriter('s', scope, [bare]));
});
