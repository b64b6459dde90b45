// Istio's Telemetry accessLogging through real sidecar processes: httpbin (namespace foo, answers
// /status/<code> with that code) and sleep (foo, app=sleep, calls it through its sidecar). The
// mesh config has no accessLogFile: what is logged is the Telemetries' doing, to each sidecar's
// stdout (the built-in `envoy` provider), as a sidecar container's in Istio. Absence is proven by
// order: lines are written in the order exchanges end, so a later line that is there shows an
// earlier one that is not was never written.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { AuthzMesh, call, tcpEcho, telemetry } from '../fixtures/authz-mesh.ts';
import type { SidecarProc } from '../proxy/mesh.ts';
import { waitFor } from '../helpers.ts';

const mesh = new AuthzMesh();
let sleep = 0;
let httpbin: SidecarProc;
let client: SidecarProc;
const HOST = 'httpbin.foo:8000';

before(async () => {
  await mesh.start('telemetry-accesslog');
  const app = await mesh.httpApp('httpbin', (req, res) => {
    const code = /^\/status\/(\d{3})/.exec(req.url ?? '')?.[1];
    res.statusCode = code ? Number(code) : 200;
    res.end(`httpbin ${req.url}`);
  });
  const echo = await mesh.echoApp();
  httpbin = (await mesh.workload({ name: 'httpbin-v1', namespace: 'foo', sa: 'httpbin', service: 'httpbin', labels: { app: 'httpbin' }, ports: [['http', 8000, app], ['tcp-echo', 9000, echo]] })).proc;
  const s = await mesh.workload({ name: 'sleep', namespace: 'foo', sa: 'sleep', labels: { app: 'sleep' }, outbound: true });
  sleep = s.outbound;
  client = s.proc;
  await mesh.synced();
});
after(() => mesh.close());

/** The access log lines (Istio's default TEXT format) a sidecar wrote from `from` on, once the one for `last` has come. */
async function linesUpTo(p: SidecarProc, from: number, last: string, what: string): Promise<string[]> {
  return waitFor(`${what}'s line for ${last}`, async () => {
    const lines = p.stdout().slice(from).split('\n').filter((l) => l.startsWith('['));
    return lines.some((l) => l.includes(`"GET ${last} `)) ? lines : undefined;
  }, 20_000);
}

/** "GET /status/503 503" of each line: the request and the response code. */
const requests = (lines: string[]) => lines.map((l) => /"(GET \S+) HTTP\/1\.1" (\d+)/.exec(l)?.slice(1).join(' ') ?? l);

test('filter response.code >= 400 (namespace-wide): both sidecars log the errors only (500, not 503, which the client retries: the server would log each attempt)', async () => {
  await mesh.setTelemetries(telemetry('errors-only', { accessLogging: [{ providers: [{ name: 'envoy' }], filter: { expression: 'response.code >= 400' } }] }));
  const [s0, c0] = [httpbin.stdout().length, client.stdout().length];
  for (const [path, code] of [['/ok', 200], ['/status/500', 500], ['/status/201', 201], ['/status/404', 404]] as const) {
    assert.equal((await call(sleep, HOST, path)).status, code, path);
  }
  assert.deepEqual(requests(await linesUpTo(httpbin, s0, '/status/404', 'httpbin')), ['GET /status/500 500', 'GET /status/404 404']);
  assert.deepEqual(requests(await linesUpTo(client, c0, '/status/404', 'sleep')), ['GET /status/500 500', 'GET /status/404 404']);
});

test("disabled: true for one workload (a selector): it logs nothing, the others still do; removing it logs again", async () => {
  const errors = telemetry('errors-only', { accessLogging: [{ providers: [{ name: 'envoy' }], filter: { expression: 'response.code >= 400' } }] });
  await mesh.setTelemetries(errors, telemetry('quiet-sleep', { selector: { matchLabels: { app: 'sleep' } }, accessLogging: [{ disabled: true }] }));
  const [s0, c0] = [httpbin.stdout().length, client.stdout().length];
  for (const path of ['/status/500', '/status/502']) assert.equal((await call(sleep, HOST, path)).status, Number(path.slice(-3)));
  assert.deepEqual(requests(await linesUpTo(httpbin, s0, '/status/502', 'httpbin')), ['GET /status/500 500', 'GET /status/502 502']);
  // sleep's own Telemetry gone, a request it logs: the first line sleep wrote since is that one.
  await mesh.setTelemetries(errors);
  assert.equal((await call(sleep, HOST, '/status/418')).status, 418);
  assert.deepEqual(requests(await linesUpTo(client, c0, '/status/418', 'sleep')), ['GET /status/418 418']);
});

test("a header filter on the server side only (match SERVER): httpbin logs the requests that carry it; sleep, by the mesh config, nothing", async () => {
  await mesh.setTelemetries(telemetry('debug', { accessLogging: [{ match: { mode: 'SERVER' }, providers: [{ name: 'envoy' }], filter: { expression: "request.headers['x-debug'] == 'true' && request.url_path.startsWith('/dbg')" } }] }));
  const [s0, c0] = [httpbin.stdout().length, client.stdout().length];
  assert.equal((await call(sleep, HOST, '/dbg/1', { headers: { 'x-debug': 'true' } })).status, 200);
  assert.equal((await call(sleep, HOST, '/dbg/2')).status, 200);
  assert.equal((await call(sleep, HOST, '/other', { headers: { 'x-debug': 'true' } })).status, 200);
  assert.equal((await call(sleep, HOST, '/dbg/3', { headers: { 'X-Debug': 'true' } })).status, 200);
  assert.deepEqual(requests(await linesUpTo(httpbin, s0, '/dbg/3', 'httpbin')), ['GET /dbg/1 200', 'GET /dbg/3 200']);
  // The client side: no Telemetry entry for it and no accessLogFile: no access log at all.
  await mesh.setTelemetries(telemetry('client-on', { accessLogging: [{ match: { mode: 'CLIENT' }, providers: [{ name: 'envoy' }] }] }));
  assert.equal((await call(sleep, HOST, '/client-on')).status, 200);
  assert.deepEqual(requests(await linesUpTo(client, c0, '/client-on', 'sleep')), ['GET /client-on 200']);
});

/** httpbin's istio_tcp_connections_closed_total, all series summed. */
async function tcpClosed(): Promise<number> {
  const text = await (await request(`${httpbin.admin}/stats/prometheus`)).body.text();
  return text.split('\n').filter((l) => l.startsWith('istio_tcp_connections_closed_total{')).reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

test('TCP connections: the filter reads what a connection has (mTLS, its cluster); response.code, which it has not, logs none', async () => {
  await mesh.setTelemetries(telemetry('tcp', { accessLogging: [{ match: { mode: 'SERVER' }, providers: [{ name: 'envoy' }], filter: { expression: "response.code >= 400 || (connection.mtls && xds.cluster_name == 'inbound|9000||' && request.duration >= duration('0s'))" } }] }));
  const s0 = httpbin.stdout().length;
  assert.equal(await tcpEcho(sleep, 'httpbin.foo:9000'), 'echoed');
  const lines = await waitFor('the TCP line', async () => {
    const ls = httpbin.stdout().slice(s0).split('\n').filter((l) => l.startsWith('['));
    return ls.length ? ls : undefined;
  }, 20_000);
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(lines[0], /"- - -" 0 .* inbound\|9000\|\| /);
  // Without mTLS's part the same connection is not logged: a later HTTP error is the first line.
  await mesh.setTelemetries(telemetry('tcp', { accessLogging: [{ match: { mode: 'SERVER' }, providers: [{ name: 'envoy' }], filter: { expression: 'response.code >= 400' } }] }));
  const s1 = httpbin.stdout().length;
  const closed0 = await tcpClosed();
  assert.equal(await tcpEcho(sleep, 'httpbin.foo:9000'), 'echoed');
  // The close is counted by the same event the access log takes: once counted, its line (if any) is written.
  await waitFor('the connection to close on httpbin', async () => (await tcpClosed()) > closed0);
  assert.equal((await call(sleep, HOST, '/status/409')).status, 409);
  assert.deepEqual(requests(await linesUpTo(httpbin, s1, '/status/409', 'httpbin')), ['GET /status/409 409']);
});
