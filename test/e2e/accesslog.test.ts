// The access log and Istio's request metrics through real sidecar processes: httpbin (namespace
// foo, service account httpbin) serves HTTP on 8000 and a TCP echo on 9000; sleep (foo, sa sleep)
// calls it through its sidecar, over mTLS (automatic, PERMISSIVE) unless a PeerAuthentication says
// DISABLE. The mesh config (accessLogFile /dev/stdout, accessLogEncoding, accessLogFormat) is
// Istio's ConfigMap istio-system/istio, data.mesh, applied to the control plane's store as `weft
// apply` applies it; each sidecar's stdout is its access log, as a sidecar container's is in Istio.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Pool, request } from 'undici';
import type { MeshConfig } from '../../src/api/meshconfig.ts';
import { checkResource } from '../../src/api/index.ts';
import { stringify } from 'yaml';
import { AuthzMesh, call, tcpEcho } from '../fixtures/authz-mesh.ts';
import { type SidecarProc, raw } from '../proxy/mesh.ts';
import http2 from 'node:http2';
import { freePort } from '../../src/util/net.ts';
import { waitFor } from '../helpers.ts';

const mesh = new AuthzMesh();
let sleep = 0;
let httpbin: SidecarProc;
let client: SidecarProc;
let appPort = 0;
const HOST = 'httpbin.foo:8000';
const SLEEP_ID = 'spiffe://cluster.local/ns/foo/sa/sleep';
const HTTPBIN_ID = 'spiffe://cluster.local/ns/foo/sa/httpbin';
const SERVICE = 'httpbin.foo.svc.cluster.local';

/** Sets the mesh config (the ConfigMap istio-system/istio), the PeerAuthentication mode and the AuthorizationPolicies, then waits for every sidecar's ACK. */
async function configure(mc: MeshConfig, mtls: 'PERMISSIVE' | 'DISABLE' = 'PERMISSIVE', policies: object[] = []): Promise<void> {
  const store = mesh.cp.store;
  for (const kind of ['PeerAuthentication', 'AuthorizationPolicy'] as const) for (const r of store.list(kind)) store.delete({ kind: r.kind, namespace: r.metadata.namespace!, name: r.metadata.name });
  store.apply([
    checkResource({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' }, data: { mesh: stringify(mc) } }, 'istio'),
    checkResource({ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: 'foo' }, spec: { mtls: { mode: mtls } } }, 'pa'),
    ...policies.map((p, i) => checkResource({ apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', ...p }, `policy ${i}`)),
  ]);
  await mesh.synced();
}

before(async () => {
  await mesh.start('accesslog');
  appPort = await mesh.httpApp('httpbin');
  const echo = await mesh.echoApp();
  const h = await mesh.workload({ name: 'httpbin-v1', namespace: 'foo', sa: 'httpbin', service: 'httpbin', labels: { app: 'httpbin' }, ports: [['http', 8000, appPort], ['tcp-echo', 9000, echo]] });
  httpbin = h.proc;
  const s = await mesh.workload({ name: 'sleep', namespace: 'foo', sa: 'sleep', outbound: true });
  sleep = s.outbound;
  client = s.proc;
  await mesh.synced();
});
after(() => mesh.close());

/** The lines a sidecar logged from `from` (a length of its stdout) on, once `n` of them have come. */
async function linesOf(p: SidecarProc, from: number, n: number, what: string): Promise<string[]> {
  return waitFor(`${n} access log line(s) of ${what}`, async () => {
    const lines = p.stdout().slice(from).split('\n').filter(Boolean);
    return lines.length >= n ? lines : undefined;
  }, 20_000);
}

/** istio_requests_total (or another metric) of a sidecar: each series' labels and value. */
async function series(p: SidecarProc, metric = 'istio_requests_total'): Promise<{ labels: Record<string, string>; value: number }[]> {
  const text = await (await request(`${p.admin}/stats/prometheus`)).body.text();
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${metric}\\{(.*)\\} (\\d+)$`).exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of m[1]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    out.push({ labels, value: Number(m[2]) });
  }
  return out;
}

const sum = (ss: { labels: Record<string, string>; value: number }[], want: Record<string, string>) => ss.filter((s) => Object.entries(want).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);

test("TEXT (Istio's default format) to /dev/stdout: one line per request on each side, with the request, the cluster and the upstream", async () => {
  await configure({ accessLogFile: '/dev/stdout' });
  const [s0, c0] = [httpbin.stdout().length, client.stdout().length];
  const a = await call(sleep, HOST, '/get?x=1', { headers: { 'user-agent': 'curl/8.5', 'x-request-id': 'req-1' } });
  assert.equal(a.status, 200, a.body);
  const [server] = await linesOf(httpbin, s0, 1, 'httpbin');
  const [clientLine] = await linesOf(client, c0, 1, 'sleep');
  // [START_TIME] "METHOD PATH PROTOCOL" CODE FLAGS DETAILS TERMINATION "FAILURE" RECEIVED SENT DURATION SERVICE_TIME "XFF" "UA" "ID" "AUTHORITY" "UPSTREAM_HOST" CLUSTER UPSTREAM_LOCAL DOWNSTREAM_LOCAL DOWNSTREAM_REMOTE SNI ROUTE
  const LINE = /^\[(\S+)\] "GET \/get\?x=1 HTTP\/1\.1" 200 - via_upstream - "-" 0 (\d+) (\d+) - "-" "curl\/8\.5" "req-1" "httpbin\.foo:8000" "([^"]+)" (\S+) (\S+) (\S+) (\S+) (\S+) (\S+)$/;
  const sm = LINE.exec(server!);
  assert.ok(sm, `server line: ${server}`);
  assert.ok(Math.abs(Date.parse(sm[1]!) - Date.now()) < 60_000, sm[1]);
  assert.equal(Number(sm[2]), 'httpbin GET /get?x=1'.length, 'bytes sent: the body');
  assert.equal(sm[4], `127.0.0.1:${appPort}`, 'upstream host: the app');
  assert.equal(sm[5], 'inbound|8000||');
  assert.equal(sm[10], 'default', 'route name');
  const cm = LINE.exec(clientLine!);
  assert.ok(cm, `client line: ${clientLine}`);
  assert.equal(cm[5], `outbound|8000||${SERVICE}`);
  assert.equal(cm[4], sm[7], "the client's upstream host is the server's downstream local address");
  assert.equal(cm[6], sm[8], "the client's upstream local address is the server's downstream remote address");
});

const JSON_FORMAT = JSON.stringify({
  code: '%RESPONSE_CODE%',
  details: '%RESPONSE_CODE_DETAILS%',
  flags: '%RESPONSE_FLAGS%',
  peer: '%DOWNSTREAM_PEER_URI_SAN%',
  local: '%DOWNSTREAM_LOCAL_URI_SAN%',
  upstream_peer: '%UPSTREAM_PEER_URI_SAN%',
  cluster: '%UPSTREAM_CLUSTER%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  id: '%REQ(X-REQUEST-ID)%',
  policy: '%DYNAMIC_METADATA(envoy.filters.http.rbac:enforced_effective_policy_id)%',
  bytes: '%BYTES_SENT%',
});

test("mTLS: the server's line has the client's SPIFFE id as downstream peer, the client's has the server's as upstream peer; both sidecars' istio_requests_total name both principals", async () => {
  await configure({ accessLogFile: '/dev/stdout', accessLogEncoding: 'JSON', accessLogFormat: JSON_FORMAT });
  const [s0, c0] = [httpbin.stdout().length, client.stdout().length];
  const [srvBefore, cliBefore] = [await series(httpbin), await series(client)];
  assert.equal((await call(sleep, HOST, '/mtls', { headers: { 'x-request-id': 'm1' } })).status, 200);
  const server = JSON.parse((await linesOf(httpbin, s0, 1, 'httpbin'))[0]!);
  const cl = JSON.parse((await linesOf(client, c0, 1, 'sleep'))[0]!);
  assert.deepEqual(server, { code: 200, details: 'via_upstream', flags: '-', peer: SLEEP_ID, local: HTTPBIN_ID, upstream_peer: null, cluster: 'inbound|8000||', path: '/mtls', id: 'm1', policy: null, bytes: 17 });
  assert.deepEqual(cl, { code: 200, details: 'via_upstream', flags: '-', peer: null, local: null, upstream_peer: HTTPBIN_ID, cluster: `outbound|8000||${SERVICE}`, path: '/mtls', id: 'm1', policy: null, bytes: 17 });
  const edge = { source_principal: SLEEP_ID, destination_principal: HTTPBIN_ID, source_workload: 'sleep', source_workload_namespace: 'foo', destination_workload: 'httpbin-v1', destination_workload_namespace: 'foo', destination_service: SERVICE, request_protocol: 'http', response_code: '200', response_flags: '-' };
  const srv = { ...edge, reporter: 'destination', connection_security_policy: 'mutual_tls' };
  const cli = { ...edge, reporter: 'source', connection_security_policy: 'unknown' };
  assert.equal(sum(await series(httpbin), srv) - sum(srvBefore, srv), 1, JSON.stringify(await series(httpbin)));
  assert.equal(sum(await series(client), cli) - sum(cliBefore, cli), 1, JSON.stringify(await series(client)));
});

test('an AuthorizationPolicy denial: 403 on the line, the deciding policy in the details and the RBAC metadata; metrics count it', async () => {
  const deny = { metadata: { name: 'deny-admin', namespace: 'foo' }, spec: { selector: { matchLabels: { app: 'httpbin' } }, action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin'] } }] }] } };
  await configure({ accessLogFile: '/dev/stdout', accessLogEncoding: 'JSON', accessLogFormat: JSON_FORMAT }, 'PERMISSIVE', [deny]);
  const s0 = httpbin.stdout().length;
  const a = await call(sleep, HOST, '/admin');
  assert.equal(a.status, 403);
  const line = JSON.parse((await linesOf(httpbin, s0, 1, 'httpbin'))[0]!);
  const id = 'ns[foo]-policy[deny-admin]-rule[0]';
  assert.equal(line.code, 403);
  assert.equal(line.details, `rbac_access_denied_matched_policy[${id}]`);
  assert.equal(line.policy, id);
  assert.equal(line.peer, SLEEP_ID);
  assert.equal(line.bytes, 'RBAC: access denied'.length);
  assert.ok(sum(await series(httpbin), { reporter: 'destination', response_code: '403', source_principal: SLEEP_ID }) >= 1);
});

test('JSON with Istio default keys: every line parses, with its typed values', async () => {
  await configure({ accessLogFile: '/dev/stdout', accessLogEncoding: 'JSON' });
  const s0 = httpbin.stdout().length;
  for (const p of ['/a', '/b?c=d', '/%7Eq']) assert.equal((await call(sleep, HOST, p)).status, 200);
  const lines = (await linesOf(httpbin, s0, 3, 'httpbin')).map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.path), ['/a', '/b?c=d', '/~q']);
  for (const l of lines) {
    assert.equal(l.response_code, 200);
    assert.equal(l.upstream_cluster, 'inbound|8000||');
    assert.equal(typeof l.duration, 'number');
    assert.equal(l.x_forwarded_for, null);
    assert.equal(l.route_name, 'default');
  }
});

test('TCP over mTLS: istio_tcp_connections_opened/closed_total with both principals, and a line per connection', async () => {
  await configure({ accessLogFile: '/dev/stdout', accessLogEncoding: 'JSON', accessLogFormat: JSON_FORMAT });
  const s0 = httpbin.stdout().length;
  assert.equal(await tcpEcho(sleep, 'httpbin.foo:9000'), 'echoed');
  const line = JSON.parse((await linesOf(httpbin, s0, 1, 'httpbin'))[0]!);
  assert.deepEqual([line.code, line.peer, line.cluster, line.bytes], [0, SLEEP_ID, 'inbound|9000||', 4]);
  const want = { reporter: 'destination', source_principal: SLEEP_ID, destination_principal: HTTPBIN_ID, connection_security_policy: 'mutual_tls', destination_service: SERVICE };
  assert.ok(sum(await series(httpbin, 'istio_tcp_connections_opened_total'), want) >= 1);
  await waitFor('the closed connection to be counted', async () => sum(await series(httpbin, 'istio_tcp_connections_closed_total'), want) >= 1);
  const src = { reporter: 'source', source_principal: SLEEP_ID, destination_principal: HTTPBIN_ID, destination_service: SERVICE };
  assert.ok(sum(await series(client, 'istio_tcp_connections_opened_total'), src) >= 1, JSON.stringify(await series(client, 'istio_tcp_connections_opened_total')));
});

test("a TCP connection an AuthorizationPolicy denies: a line with the deciding policy in CONNECTION_TERMINATION_DETAILS, as Envoy's tcp_proxy writes it", async () => {
  const deny = { metadata: { name: 'deny-tcp', namespace: 'foo' }, spec: { selector: { matchLabels: { app: 'httpbin' } }, action: 'DENY', rules: [{ to: [{ operation: { ports: ['9000'] } }] }] } };
  await configure({ accessLogFile: '/dev/stdout', accessLogFormat: '%RESPONSE_CODE% %RESPONSE_FLAGS% %CONNECTION_TERMINATION_DETAILS% %BYTES_RECEIVED% %DOWNSTREAM_PEER_URI_SAN%\n' }, 'PERMISSIVE', [deny]);
  const s0 = httpbin.stdout().length;
  assert.notEqual(await tcpEcho(sleep, 'httpbin.foo:9000'), 'echoed');
  const [line] = await linesOf(httpbin, s0, 1, 'httpbin');
  assert.equal(line, `0 - rbac_access_denied_matched_policy[ns[foo]-policy[deny-tcp]-rule[0]] 0 ${SLEEP_ID}`);
});

test('PeerAuthentication DISABLE: plain text, the principals are "unknown" and the policy "none"; no peer on the line', async () => {
  await configure({ accessLogFile: '/dev/stdout', accessLogEncoding: 'JSON', accessLogFormat: JSON_FORMAT }, 'DISABLE');
  const s0 = httpbin.stdout().length;
  const before = await series(httpbin);
  const plain = { reporter: 'destination', source_principal: 'unknown', destination_principal: 'unknown', source_workload: 'unknown', connection_security_policy: 'none', destination_workload: 'httpbin-v1', response_code: '200' };
  // The client may still hold an mTLS connection made before: wait for one that is plain.
  await waitFor('a request in plain text', async () => {
    assert.equal((await call(sleep, HOST, '/plain')).status, 200);
    return sum(await series(httpbin), plain) > sum(before, plain);
  });
  const lines = (await linesOf(httpbin, s0, 1, 'httpbin')).map((l) => JSON.parse(l));
  assert.ok(lines.some((l) => l.peer === null && l.local === null && l.code === 200), JSON.stringify(lines));
});

test('a load of 2,000 requests: every line parses, one per request on each side, and the counters match', async () => {
  await configure({ accessLogFile: '/dev/stdout', accessLogEncoding: 'JSON' });
  const N = 2000;
  const [s0, c0] = [httpbin.stdout().length, client.stdout().length];
  const want = { reporter: 'destination', destination_service: SERVICE, response_code: '200', source_principal: SLEEP_ID };
  const before = sum(await series(httpbin), want);
  const pool = new Pool(`http://127.0.0.1:${sleep}`, { connections: 20 });
  try {
    let next = 0;
    const worker = async () => {
      while (next < N) {
        const i = next++;
        const r = await pool.request({ path: `/load/${i}`, method: 'GET', headers: { host: HOST, 'x-request-id': `load-${i}` } });
        await r.body.dump();
        assert.equal(r.statusCode, 200);
      }
    };
    await Promise.all(Array.from({ length: 20 }, worker));
  } finally {
    await pool.close();
  }
  for (const [p, from, who] of [[httpbin, s0, 'httpbin'], [client, c0, 'sleep']] as const) {
    const lines = (await linesOf(p, from, N, who)).map((l) => JSON.parse(l));
    const ids = new Set(lines.filter((l) => l.path.startsWith('/load/')).map((l) => l.request_id));
    assert.equal(ids.size, N, `${who}: one line per request`);
  }
  await waitFor('the destination counter', async () => sum(await series(httpbin), want) - before === N || undefined);
  const st = (await (await request(`${httpbin.admin}/stats`)).body.json()) as { accessLog: { dropped: number }[] };
  assert.equal(st.accessLog.reduce((a, f) => a + f.dropped, 0), 0, 'no line dropped');
});

test('an access log file that cannot be written: reported naming the file and the listener, requests unharmed, lines counted as dropped', async () => {
  const bad = '/nonexistent-weft-dir/access.log';
  await configure({ accessLogFile: bad });
  assert.equal((await call(sleep, HOST, '/still-works')).status, 200);
  await waitFor('the report', async () => httpbin.stderr().includes(`access log ${bad} of listener inbound|`));
  await waitFor('the dropped line', async () => {
    const st = (await (await request(`${httpbin.admin}/stats`)).body.json()) as { accessLog: { path: string; dropped: number; error?: string }[] };
    const f = st.accessLog.find((x) => x.path === bad);
    return f && f.error && f.dropped >= 1;
  });
});

test('accessLogFile unset (Istio\'s default): no access log, the files closed; the metrics still count', async () => {
  await configure({ accessLogFile: '/dev/stdout' });
  assert.equal((await call(sleep, HOST, '/on')).status, 200);
  await configure({});
  const s0 = httpbin.stdout().length;
  const want = { reporter: 'destination', source_principal: SLEEP_ID, response_code: '200' };
  const before = sum(await series(httpbin), want);
  assert.equal((await call(sleep, HOST, '/off')).status, 200);
  await waitFor('the request to be counted', async () => sum(await series(httpbin), want) > before);
  const st = (await (await request(`${httpbin.admin}/stats`)).body.json()) as { accessLog: unknown[] };
  assert.deepEqual(st.accessLog, [], 'no file open');
  assert.ok(!httpbin.stdout().slice(s0).includes('/off'), httpbin.stdout().slice(s0));
});

test("a destination that refuses the connection: 503 UF, with Envoy's transport failure reason on the line and in the details", async () => {
  const { freePort } = await import('../../src/util/net.ts');
  const closed = await freePort(); // nothing listens there
  await configure({ accessLogFile: '/dev/stdout', accessLogFormat: '%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %UPSTREAM_CLUSTER%\n' });
  const c0 = client.stdout().length;
  // A host the mesh does not know goes where it names (ALLOW_ANY, Istio's default): nothing listens there.
  const r = await call(sleep, `127.0.0.1:${closed}`, '/');
  assert.equal(r.status, 503, r.body);
  const [line] = await linesOf(client, c0, 1, 'sleep');
  assert.equal(line, '503 UF upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused} "delayed_connect_error:_Connection_refused" PassthroughCluster');
});

test("requests the sidecar refuses before routing are logged and counted, as Envoy's HCM logs a local reply: a malformed head and one too large (DPE, nothing of the request), a Host that is no host (DPE, with its request line and headers), an HTTP/2 stream whose path has a malformed escape, a CONNECT to a port nothing listens on (UF)", async () => {
  const format = { method: '%REQ(:METHOD)%', path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%', protocol: '%PROTOCOL%', code: '%RESPONSE_CODE%', flags: '%RESPONSE_FLAGS%', details: '%RESPONSE_CODE_DETAILS%', ua: '%REQ(USER-AGENT)%', authority: '%REQ(:AUTHORITY)%', remote: '%DOWNSTREAM_REMOTE_ADDRESS%', cluster: '%UPSTREAM_CLUSTER%' };
  await configure({ accessLogFile: '/dev/stdout', accessLogEncoding: 'JSON', accessLogFormat: JSON.stringify(format) });
  const before = await series(client);
  const c0 = client.stdout().length;
  // One at a time, so that the lines come in this order.
  const answers = [
    await raw(sleep, 'GET / HTTP/1.1\r\nthis is no header\r\n\r\n'),
    await raw(sleep, `GET /big HTTP/1.1\r\nHost: ${HOST}\r\nx-big: ${'a'.repeat(70 * 1024)}\r\n\r\n`),
    await raw(sleep, 'GET /where?q=1 HTTP/1.1\r\nHost: no host\r\nUser-Agent: refused/1\r\n\r\n'),
  ];
  assert.deepEqual(answers.map((a) => a.data.slice(0, 12)), ['HTTP/1.1 400', 'HTTP/1.1 431', 'HTTP/1.1 400']);
  const session = http2.connect(`http://127.0.0.1:${sleep}`);
  try {
    const status = await new Promise<number>((resolve, reject) => {
      const s = session.request({ ':path': '/h2%zz', ':authority': HOST, 'user-agent': 'refused/2' });
      s.on('response', (h) => resolve(Number(h[':status'])));
      s.on('error', reject);
      s.resume();
      s.end();
    });
    assert.equal(status, 400);
  } finally {
    session.close();
  }
  const closedPort = await freePort();
  assert.match((await raw(sleep, `CONNECT 127.0.0.1:${closedPort} HTTP/1.1\r\nHost: 127.0.0.1:${closedPort}\r\n\r\n`)).data, /^HTTP\/1\.1 503 /);
  // Only this test's lines (an earlier test's connection may still log as it closes): the refusals' flags.
  const lines = await waitFor('the five refusals logged', async () => {
    const got = client.stdout().slice(c0).split('\n').flatMap((l) => {
      try {
        return [JSON.parse(l)];
      } catch {
        return []; // another format's line
      }
    }).filter((l) => l.flags === 'DPE' || l.flags === 'UF');
    return got.length >= 5 ? got : undefined;
  }, 20_000);
  const pick = ({ method, path, protocol, code, flags, details, ua, authority }: Record<string, unknown>) => ({ method, path, protocol, code, flags, details, ua, authority });
  assert.deepEqual(lines.slice(0, 4).map(pick), [
    { method: null, path: null, protocol: 'HTTP/1.1', code: 400, flags: 'DPE', details: 'bad_request', ua: null, authority: null },
    { method: null, path: null, protocol: 'HTTP/1.1', code: 431, flags: 'DPE', details: 'request_headers_too_large', ua: null, authority: null },
    { method: 'GET', path: '/where?q=1', protocol: 'HTTP/1.1', code: 400, flags: 'DPE', details: 'bad_request', ua: 'refused/1', authority: 'no host' },
    { method: 'GET', path: '/h2%zz', protocol: 'HTTP/2', code: 400, flags: 'DPE', details: 'bad_request', ua: 'refused/2', authority: HOST },
  ]);
  const connect = lines[4]!;
  assert.deepEqual([connect.method, connect.authority, connect.code, connect.flags], ['CONNECT', `127.0.0.1:${closedPort}`, 503, 'UF'], JSON.stringify(connect));
  for (const l of lines) assert.match(String(l.remote), /^127\.0\.0\.1:\d+$/, 'the client connection is on every line');
  // Istio's metrics count them on the source reporter, as Envoy's stats filter does a local reply.
  const after_ = await series(client);
  const grew = (want: Record<string, string>) => sum(after_, want) - sum(before, want);
  assert.equal(grew({ reporter: 'source', response_code: '400', response_flags: 'DPE' }), 3, JSON.stringify(after_));
  assert.equal(grew({ reporter: 'source', response_code: '431', response_flags: 'DPE' }), 1);
  assert.equal(grew({ reporter: 'source', response_code: '503', response_flags: 'UF' }), 1);
});
