// Istio's metadata exchange through a real control plane and real sidecar processes: sleep
// (app=sleep, version=v1) calls httpbin (app=httpbin, version=v2) over the mesh's mutual TLS.
// Each side's Istio metrics name the other's app, version and canonical service and revision, as
// Istio's do; neither app ever sees the x-envoy-peer-metadata headers; metadata an app forges is
// replaced; the sidecar's own answers (an AuthorizationPolicy's 403) carry the server's metadata.
// Over TCP (Istio's istio-peer-exchange frames), the TCP metrics name them too, and neither app
// ever reads a byte of the exchange, whichever speaks first.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { AuthzMesh } from '../fixtures/authz-mesh.ts';
import type { SidecarProc } from '../proxy/mesh.ts';
import { waitFor } from '../helpers.ts';
import { type ExpositionSample, parseExposition } from '../fixtures/exposition.ts';
import { encode } from '../../src/xds/protos.ts';
import net from 'node:net';

const mesh = new AuthzMesh();
let sleep = 0;
let httpbinInbound = 0;
let httpbin: SidecarProc;
let client: SidecarProc;
const HOST = 'httpbin.foo:8000';
/** The request headers the httpbin app got, by request path. */
const seen = new Map<string, Record<string, unknown>>();

before(async () => {
  await mesh.start('peer-metadata');
  const app = await mesh.httpApp('httpbin', (req, res) => {
    seen.set(req.url ?? '', req.headers);
    // The server app forges metadata that would pass every check (its own namespace and workload).
    if (req.url === '/forge') res.setHeader('x-envoy-peer-metadata', FORGED);
    res.end(`httpbin ${req.url}`);
  });
  // TCP: an echo that keeps what it read, and a server that greets first (as SMTP or MySQL do).
  const echo = await tcpApp((c) => c.on('data', (d) => (tcpRead.push(d), c.write(d))));
  const greeter = await tcpApp((c) => {
    c.write('220 greeter ready\r\n');
    c.on('data', (d) => (tcpRead.push(d), c.write(d)));
  });
  const w = await mesh.workload({ name: 'httpbin-v2', namespace: 'foo', sa: 'httpbin', service: 'httpbin', labels: { app: 'httpbin', version: 'v2' }, ports: [['http', 8000, app], ['tcp-echo', 9000, echo], ['tcp-greeter', 9001, greeter]] });
  httpbin = w.proc;
  httpbinInbound = w.inbound.get(8000)!;
  const s = await mesh.workload({ name: 'sleep-v1', namespace: 'foo', sa: 'sleep', labels: { app: 'sleep', version: 'v1' }, outbound: true });
  sleep = s.outbound;
  client = s.proc;
  await mesh.synced();
});
after(() => {
  for (const c of tcpClosers) c();
  return mesh.close();
});

/** What the TCP apps read, chunk by chunk. */
const tcpRead: Buffer[] = [];
const tcpClosers: (() => void)[] = [];

async function tcpApp(onConn: (c: net.Socket) => void): Promise<number> {
  const s = net.createServer((c) => {
    c.on('error', () => {});
    onConn(c);
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  tcpClosers.push(() => s.close());
  return (s.address() as net.AddressInfo).port;
}

/** A TCP tunnel through sleep's sidecar (CONNECT): every byte the client app got, until it has `until` (or the connection ends). */
function tunnel(target: string, send: string | undefined, until: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(sleep, '127.0.0.1', () => s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
    let buf = Buffer.alloc(0);
    let open = false;
    const timer = setTimeout(() => (s.destroy(), reject(new Error(`no ${JSON.stringify(until)} through ${target} within 20 s: got ${JSON.stringify(buf.toString('latin1'))}`))), 20_000);
    const finish = (v: string) => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    s.on('error', (e) => (clearTimeout(timer), reject(e)));
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!open) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        assert.ok(buf.toString('latin1').startsWith('HTTP/1.1 200'), buf.toString('latin1'));
        open = true;
        buf = buf.subarray(end + 4);
        if (send !== undefined) s.write(send);
      }
      if (buf.toString('latin1').includes(until)) finish(buf.toString('latin1'));
    });
    s.on('end', () => finish(buf.toString('latin1')));
  });
}

async function requestsTotal(p: SidecarProc, reporter: string): Promise<ExpositionSample[]> {
  return parseExposition(await (await request(`${p.admin}/stats/prometheus`)).body.text()).filter((x) => x.name === 'istio_requests_total' && x.labels.reporter === reporter);
}

const MX = ['x-envoy-peer-metadata', 'x-envoy-peer-metadata-id'];
const FORGED = Buffer.from(encode('type.googleapis.com/google.protobuf.Struct', { NAMESPACE: 'foo', WORKLOAD_NAME: 'httpbin-v2', LABELS: { app: 'forged', version: 'forged' } })).toString('base64');

test("each side's metrics name the other's app, version and canonical service; the apps never see the exchange's headers; a forged one is replaced", async () => {
  // The client app forges metadata: the sidecar sends its own in its place.
  const r = await request(`http://127.0.0.1:${sleep}/get`, { headers: { host: HOST, 'x-envoy-peer-metadata': 'Zm9yZ2Vk', 'x-envoy-peer-metadata-id': 'forged' } });
  assert.equal(r.statusCode, 200);
  await r.body.text();
  for (const h of MX) assert.equal(r.headers[h], undefined, `the client app got ${h} in the answer`);
  assert.ok(seen.has('/get'), 'the server app got the request');
  for (const h of MX) assert.equal(seen.get('/get')![h], undefined, `the server app got ${h}`);
  const server = await waitFor('httpbin to count the request with its peer labels', async () => (await requestsTotal(httpbin, 'destination')).find((x) => x.labels.source_workload === 'sleep-v1'), 20_000);
  assert.deepEqual(
    [server.labels.source_app, server.labels.source_version, server.labels.source_canonical_service, server.labels.source_canonical_revision, server.labels.source_cluster],
    ['sleep', 'v1', 'sleep', 'v1', 'Kubernetes'],
    JSON.stringify(server.labels),
  );
  assert.deepEqual([server.labels.destination_app, server.labels.destination_version], ['httpbin', 'v2'], 'its own labels');
  const source = await waitFor('sleep to count the request with its peer labels', async () => (await requestsTotal(client, 'source')).find((x) => x.labels.destination_workload === 'httpbin-v2' && x.labels.response_code === '200'), 20_000);
  assert.deepEqual(
    [source.labels.destination_app, source.labels.destination_version, source.labels.destination_canonical_service, source.labels.destination_canonical_revision],
    ['httpbin', 'v2', 'httpbin', 'v2'],
    JSON.stringify(source.labels),
  );
  assert.deepEqual([source.labels.source_app, source.labels.source_version], ['sleep', 'v1'], 'its own labels');
});

test("the server sidecar's own answer (an AuthorizationPolicy's 403) carries its metadata: the client's series of 403s names httpbin's app", async () => {
  await mesh.setPolicies([{ metadata: { name: 'deny-admin', namespace: 'foo' }, spec: { selector: { matchLabels: { app: 'httpbin' } }, action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin'] } }] }] } }]);
  try {
    const r = await request(`http://127.0.0.1:${sleep}/admin`, { headers: { host: HOST } });
    assert.equal(r.statusCode, 403);
    await r.body.text();
    for (const h of MX) assert.equal(r.headers[h], undefined, `the client app got ${h} in the 403`);
    const denied = await waitFor("sleep to count the 403", async () => (await requestsTotal(client, 'source')).find((x) => x.labels.response_code === '403'), 20_000);
    assert.deepEqual([denied.labels.destination_app, denied.labels.destination_version], ['httpbin', 'v2'], JSON.stringify(denied.labels));
  } finally {
    await mesh.setPolicies([]);
  }
});

test("metadata the server app writes in its answer (HTTP/1.1, naming its own workload) never passes and is never believed", async () => {
  for (let i = 0; i < 3; i++) {
    const r = await request(`http://127.0.0.1:${sleep}/forge`, { headers: { host: HOST } });
    assert.equal(r.statusCode, 200);
    await r.body.text();
    for (const h of MX) assert.equal(r.headers[h], undefined, `the client app got ${h}`);
  }
  const series = await waitFor('sleep to count the /forge requests', async () => {
    const s = (await requestsTotal(client, 'source')).filter((x) => x.labels.destination_workload === 'httpbin-v2' && x.labels.response_code === '200');
    return s.reduce((a, x) => a + x.value, 0) >= 4 ? s : undefined;
  }, 20_000);
  assert.deepEqual([...new Set(series.map((x) => x.labels.destination_app))], ['httpbin'], JSON.stringify(series.map((x) => x.labels)));
});

test('a client in plain text (no mTLS) that sends the headers gets no metadata back, and its own is not believed', async () => {
  const r = await request(`http://127.0.0.1:${httpbinInbound}/plain`, { headers: { host: HOST, 'x-envoy-peer-metadata-id': 'x', 'x-envoy-peer-metadata': FORGED } });
  assert.equal(r.statusCode, 200);
  await r.body.text();
  for (const h of MX) assert.equal(r.headers[h], undefined, `a plaintext client got ${h}`);
  assert.ok(seen.has('/plain'));
  for (const h of MX) assert.equal(seen.get('/plain')![h], undefined, `the server app got ${h}`);
  const s = await waitFor('httpbin to count the plaintext request', async () => (await requestsTotal(httpbin, 'destination')).find((x) => x.labels.connection_security_policy === 'none'), 20_000);
  assert.equal(s.labels.source_app, 'unknown', JSON.stringify(s.labels));
});

async function tcpOpened(p: SidecarProc, reporter: string): Promise<ExpositionSample[]> {
  return parseExposition(await (await request(`${p.admin}/stats/prometheus`)).body.text()).filter((x) => x.name === 'istio_tcp_connections_opened_total' && x.labels.reporter === reporter);
}

test("TCP over the mesh's mTLS: Istio's istio-peer-exchange frames give each side's TCP metrics the other's app and version; neither app reads a byte of them, whichever speaks first", async () => {
  tcpRead.length = 0;
  // The client speaks first: the app gets exactly what the client sent, and the client exactly the echo.
  assert.equal(await tunnel('httpbin.foo:9000', 'ping-1234', 'ping-1234'), 'ping-1234');
  // The server speaks first: its greeting is the first byte the client gets.
  const greeting = await tunnel('httpbin.foo:9001', undefined, '\r\n');
  assert.equal(greeting, '220 greeter ready\r\n', 'the client app got the greeting alone');
  assert.equal(await tunnel('httpbin.foo:9001', 'hello', 'hello'), '220 greeter ready\r\nhello');
  assert.equal(Buffer.concat(tcpRead).toString('latin1'), 'ping-1234hello', 'the server apps read only what the clients sent');
  const server = await waitFor('httpbin to count the TCP connections with their peer labels', async () => {
    const s = (await tcpOpened(httpbin, 'destination')).filter((x) => x.labels.source_workload === 'sleep-v1');
    return s.reduce((a, x) => a + x.value, 0) >= 3 ? s : undefined;
  }, 20_000);
  for (const x of server) {
    assert.deepEqual([x.labels.source_app, x.labels.source_version, x.labels.source_canonical_service, x.labels.source_canonical_revision], ['sleep', 'v1', 'sleep', 'v1'], JSON.stringify(x.labels));
    assert.equal(x.labels.connection_security_policy, 'mutual_tls');
  }
  const source = await waitFor('sleep to count the TCP connections with their peer labels', async () => {
    const s = (await tcpOpened(client, 'source')).filter((x) => x.labels.destination_workload === 'httpbin-v2');
    return s.reduce((a, x) => a + x.value, 0) >= 3 ? s : undefined;
  }, 20_000);
  for (const x of source) assert.deepEqual([x.labels.destination_app, x.labels.destination_version, x.labels.destination_canonical_service], ['httpbin', 'v2', 'httpbin'], JSON.stringify(x.labels));
});
