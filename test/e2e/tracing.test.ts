// Distributed traces through real sidecar processes, two hops: sleep (a client, namespace foo)
// calls frontend through its sidecar; frontend's app calls backend through its own sidecar,
// forwarding only the traceparent header it got; backend's app answers. Each request is one trace
// of four spans: sleep's CLIENT span (the root), frontend's SERVER span under it (the parent the
// app sees), frontend's CLIENT span under that, backend's SERVER span under it. They are reported
// over OTLP/HTTP to the control plane's built-in receiver (GET /api/v1/traces) when no provider is
// configured, and to an external collector (a real HTTP server decoding the protobuf on its own)
// named as an opentelemetry extension provider.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { request } from 'undici';
import { AuthzMesh, call } from '../fixtures/authz-mesh.ts';
import { type Collector, startCollector } from '../fixtures/otlp-collector.ts';
import { waitFor } from '../helpers.ts';
import type { SidecarProc } from '../proxy/mesh.ts';

const mesh = new AuthzMesh();
let sleep = 0;
let frontendOut = 0;
let sleepProc: SidecarProc;
let collector: Collector;
/** The headers each app got, last first. */
const seen: { frontend: http.IncomingHttpHeaders[]; backend: http.IncomingHttpHeaders[] } = { frontend: [], backend: [] };
const FRONTEND = 'frontend.foo.svc.cluster.local';
const BACKEND = 'backend.foo.svc.cluster.local';

before(async () => {
  await mesh.start('tracing');
  collector = await startCollector();
  const backendApp = await mesh.httpApp('backend', (req, res) => {
    seen.backend.unshift(req.headers);
    res.end('backend ok');
  });
  // frontend's app forwards only traceparent, as an app instrumented with W3C context alone does.
  const frontendApp = await mesh.httpApp('frontend', (req, res) => {
    seen.frontend.unshift(req.headers);
    const tp = req.headers.traceparent;
    request(`http://127.0.0.1:${frontendOut}/from-frontend`, { headers: { host: 'backend.foo:8000', ...(typeof tp === 'string' ? { traceparent: tp } : {}) } })
      .then(async (r) => res.writeHead(r.statusCode).end(`frontend <- ${await r.body.text()}`))
      .catch((e: Error) => res.writeHead(502).end(e.message));
  });
  await mesh.workload({ name: 'backend-v1', namespace: 'foo', sa: 'backend', service: 'backend', labels: { app: 'backend' }, ports: [['http', 8000, backendApp]] });
  const f = await mesh.workload({ name: 'frontend-v1', namespace: 'foo', sa: 'frontend', service: 'frontend', labels: { app: 'frontend' }, ports: [['http', 8000, frontendApp]], outbound: true });
  frontendOut = f.outbound;
  const s = await mesh.workload({ name: 'sleep', namespace: 'foo', sa: 'sleep', labels: { app: 'sleep' }, outbound: true });
  sleep = s.outbound;
  sleepProc = s.proc;
  await mesh.apply([
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'collector', namespace: 'obs' },
      spec: { hosts: ['otel-collector.example'], location: 'MESH_EXTERNAL', resolution: 'STATIC', ports: [{ number: collector.port, name: 'http', protocol: 'HTTP' }], endpoints: [{ address: '127.0.0.1' }] },
    },
  ]);
});
after(async () => {
  await mesh.close();
  collector?.close();
});

interface Span {
  spanId: string;
  parentSpanId?: string;
  service: string;
  name: string;
  kind: string;
  durationMs: number;
  error: boolean;
  attributes: Record<string, string>;
}

async function admin(path: string): Promise<{ status: number; body: any }> {
  const r = await request(`${mesh.cp.adminUrl}${path}`);
  return { status: r.statusCode, body: await r.body.json() };
}

/** The trace the frontend app's last request belongs to: its traceparent's trace id and parent (frontend's SERVER span). */
function frontendContext(): { traceId: string; serverSpan: string; requestId: string } {
  const tp = String(seen.frontend[0]?.traceparent ?? '');
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(tp);
  assert.ok(m, `the frontend app got a sampled traceparent: ${tp}`);
  return { traceId: m[1]!, serverSpan: m[2]!, requestId: String(seen.frontend[0]!['x-request-id']) };
}

/** The four spans of a two-hop trace, checked: one trace, each span's parent the one before it, names, kinds, services. */
function checkTwoHops(spans: readonly Span[], ctx: { serverSpan: string; requestId: string }, rootParent?: string): void {
  const byKind = (service: string, kind: string) => {
    const s = spans.filter((x) => x.service === service && x.kind === kind);
    assert.equal(s.length, 1, `one ${kind} span of ${service}: ${JSON.stringify(spans.map((x) => [x.service, x.kind, x.name]))}`);
    return s[0]!;
  };
  assert.equal(spans.length, 4);
  const sleepClient = byKind('sleep.foo', 'CLIENT');
  const frontServer = byKind('frontend.foo', 'SERVER');
  const frontClient = byKind('frontend.foo', 'CLIENT');
  const backServer = byKind('backend.foo', 'SERVER');
  assert.equal(sleepClient.parentSpanId, rootParent);
  assert.equal(frontServer.parentSpanId, sleepClient.spanId);
  assert.equal(frontServer.spanId, ctx.serverSpan, "the frontend app's parent is frontend's SERVER span");
  assert.equal(frontClient.parentSpanId, frontServer.spanId, 'the app forwarded only traceparent: the CLIENT span continues from it');
  assert.equal(backServer.parentSpanId, frontClient.spanId);
  const backendTp = String(seen.backend[0]?.traceparent ?? '');
  assert.ok(backendTp.includes(`-${backServer.spanId}-`), `the backend app's parent is backend's SERVER span: ${backendTp}`);
  assert.equal(sleepClient.name, `${FRONTEND}:8000/*`);
  assert.equal(frontServer.name, `${FRONTEND}:8000/*`);
  assert.equal(frontClient.name, `${BACKEND}:8000/*`);
  assert.equal(backServer.name, `${BACKEND}:8000/*`);
  assert.equal(sleepClient.attributes['upstream_cluster'], `outbound|8000||${FRONTEND}`);
  assert.equal(frontServer.attributes['upstream_cluster'], 'inbound|8000||');
  for (const s of spans) {
    assert.equal(s.attributes['http.status_code'], '200', s.name);
    assert.equal(s.attributes['component'], 'proxy');
    assert.equal(s.attributes['http.method'], 'GET');
    assert.match(s.attributes['node_id'] ?? '', /^sidecar~127\.0\.0\.1~/);
    assert.equal(s.error, false);
    assert.ok(s.durationMs >= 0 && s.durationMs < 30_000, String(s.durationMs));
  }
  assert.equal(sleepClient.attributes['http.url'], 'http://frontend.foo:8000/hello');
  assert.equal(frontServer.attributes['istio.canonical_service'], 'frontend');
  assert.equal(backServer.attributes['istio.namespace'], 'foo');
  // x-request-id: made at the edge (sleep's sidecar), kept by frontend's; the app did not forward it, so the next hop made its own.
  assert.equal(sleepClient.attributes['guid:x-request-id'], ctx.requestId);
  assert.equal(frontServer.attributes['guid:x-request-id'], ctx.requestId);
  assert.notEqual(frontClient.attributes['guid:x-request-id'], ctx.requestId);
  assert.equal(backServer.attributes['guid:x-request-id'], frontClient.attributes['guid:x-request-id']);
}

test('no provider configured: enableTracing sends every sampled request to the control plane receiver, one trace of four correctly parented spans (GET /api/v1/traces)', async () => {
  await mesh.setMeshConfig({ enableTracing: true, defaultConfig: { tracing: { sampling: 100 } } });
  const a = await call(sleep, 'frontend.foo:8000', '/hello');
  assert.equal(a.status, 200, a.body);
  assert.equal(a.body, 'frontend <- backend ok');
  const ctx = frontendContext();
  const summary = await waitFor('the trace at the receiver with its four spans', async () => {
    const list = await admin('/api/v1/traces');
    return list.body.items.find((t: any) => t.traceId === ctx.traceId && t.spanCount === 4);
  }, 20_000);
  assert.equal(summary.rootService, 'sleep.foo');
  assert.equal(summary.operation, `${FRONTEND}:8000/*`);
  assert.equal(summary.error, false);
  assert.deepEqual(summary.services, ['backend.foo', 'frontend.foo', 'sleep.foo']);
  const trace = await admin(`/api/v1/traces/${ctx.traceId}`);
  assert.equal(trace.status, 200);
  checkTwoHops(trace.body.spans, ctx);
  assert.equal((await admin(`/api/v1/traces/${'f'.repeat(32)}`)).status, 404);
  // The client sidecar counts what it exported (/stats tracing).
  const stats = (await (await request(`${sleepProc.admin}/stats`)).body.json()) as any;
  assert.ok(stats.tracing.exporters.some((x: any) => x.cluster === 'weft_traces_receiver' && x.exported >= 1 && x.dropped === 0), JSON.stringify(stats.tracing));
});

test('an opentelemetry provider (defaultProviders.tracing): the external collector gets the four spans over OTLP/HTTP protobuf with its headers; an incoming B3 context is continued', async () => {
  await mesh.setMeshConfig({
    extensionProviders: [{ name: 'otel', opentelemetry: { service: 'otel-collector.example', port: collector.port, http: { path: '/v1/traces', headers: [{ name: 'x-tenant', value: 't1' }] } } }],
    defaultProviders: { tracing: ['otel'] },
  });
  const b3Trace = '80f198ee56343ba864fe8b2a57d3eff7';
  const b3Span = 'e457b5a2e4d86bd1';
  const a = await call(sleep, 'frontend.foo:8000', '/hello', { headers: { 'x-b3-traceid': b3Trace, 'x-b3-spanid': b3Span, 'x-b3-sampled': '1', 'x-request-id': 'edge-1' } });
  assert.equal(a.status, 200, a.body);
  const ctx = frontendContext();
  assert.equal(ctx.traceId, b3Trace, 'the B3 trace continues');
  assert.equal(ctx.requestId, 'edge-1', 'x-request-id kept');
  // B3 multi came in: it is passed on, naming the same span as traceparent.
  assert.equal(seen.frontend[0]!['x-b3-traceid'], b3Trace);
  assert.equal(seen.frontend[0]!['x-b3-spanid'], ctx.serverSpan);
  const spans = await collector.until((s) => s.filter((x) => x.traceId === b3Trace).length >= 4);
  const mine = spans.filter((x) => x.traceId === b3Trace);
  const KIND: Record<number, string> = { 2: 'SERVER', 3: 'CLIENT' };
  checkTwoHops(mine.map((s) => ({ ...s, kind: KIND[s.kind] ?? String(s.kind), durationMs: Number(s.endNs - s.startNs) / 1e6, error: s.statusCode === 2 })), ctx, b3Span);
  assert.ok(collector.requests.every((h) => h['x-tenant'] === 't1' && h['content-type'] === 'application/x-protobuf'), JSON.stringify(collector.requests));
  // Not at the built-in receiver: spans go to the provider only.
  assert.equal((await admin(`/api/v1/traces/${b3Trace}`)).status, 404);
});

test('sampling 0% (Telemetry randomSamplingPercentage: 0): no spans for requests without a decision; an incoming sampled traceparent is still honoured', async () => {
  await mesh.setMeshConfig({ enableTracing: true });
  await mesh.apply([{ apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { name: 'mesh-default', namespace: 'istio-system' }, spec: { tracing: [{ randomSamplingPercentage: 0 }] } }]);
  const before = new Set((await admin('/api/v1/traces?limit=1000')).body.items.map((t: any) => t.traceId));
  for (let i = 0; i < 20; i++) assert.equal((await call(sleep, 'frontend.foo:8000', '/hello')).status, 200);
  assert.match(String(seen.frontend[0]!.traceparent), /-00$/, 'unsampled: the context still goes on, flagged 00');
  const forced = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
  assert.equal((await call(sleep, 'frontend.foo:8000', '/hello', { headers: { traceparent: `00-${forced}-1111111111111111-01` } })).status, 200);
  await waitFor('the sampled trace at the receiver', async () => (await admin(`/api/v1/traces/${forced}`)).body.spans?.length === 4, 20_000);
  // Spans leave each sidecar in order: the sampled one arrived, so none of the 20 before it was reported.
  const added = (await admin('/api/v1/traces?limit=1000')).body.items.map((t: any) => t.traceId).filter((id: string) => !before.has(id));
  assert.deepEqual(added, [forced]);
  for (const r of mesh.cp.store.list('Telemetry')) mesh.cp.store.delete({ kind: r.kind, namespace: r.metadata.namespace!, name: r.metadata.name });
  await mesh.synced();
});

test("enableTracing: false: no trace context is added, but the app still gets an x-request-id the sidecar made, as Envoy's HCM makes one (generate_request_id), and one that came is kept", async () => {
  await mesh.setMeshConfig({ enableTracing: false });
  assert.equal((await call(sleep, 'frontend.foo:8000', '/hello')).status, 200);
  const h = seen.frontend[0]!;
  assert.equal(h.traceparent, undefined, 'no tracing: no traceparent');
  assert.match(String(h['x-request-id']), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal((await call(sleep, 'frontend.foo:8000', '/hello', { headers: { 'x-request-id': 'mine-1' } })).status, 200);
  assert.equal(seen.frontend[0]!['x-request-id'], 'mine-1');
});
