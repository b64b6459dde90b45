// A real Prometheus (Debian's /usr/bin/prometheus) scraping real sidecars' /stats/prometheus, and
// Istio's own PromQL against what it stored: reviews-v2 (namespace bookinfo, labels app=reviews,
// version=v2) serves HTTP on 9080, gRPC on 9090 and a TCP echo on 9000; productpage-v1 (app=
// productpage, version=v1) calls it through its sidecar over mTLS. Known traffic goes through, and
// the queries must give it back: counts per workload and response code, and the p99 of a known
// delay within its histogram bucket.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { request } from 'undici';
import { AuthzMesh, tcpEcho } from '../fixtures/authz-mesh.ts';
import type { SidecarProc } from '../proxy/mesh.ts';
import { stopProc } from '../proxy/mesh.ts';
import { tmpDir, waitFor } from '../helpers.ts';
import { freePort } from '../../src/util/net.ts';

const PROMETHEUS = '/usr/bin/prometheus';
/** The known delay of /slow: its requests fall in the (500, 1000] ms bucket of Envoy's defaults. */
const SLOW_MS = 600;
const HOST = 'reviews.bookinfo:9080';

const mesh = new AuthzMesh();
let reviews: SidecarProc;
let productpage: SidecarProc;
let outbound = 0;
let prom: ChildProcess | undefined;
let promUrl = '';

before(async () => {
  assert.ok(fs.existsSync(PROMETHEUS), `${PROMETHEUS} is missing: apt-get install prometheus (.ci/run installs it)`);
  await mesh.start('prometheus');
  const app = await mesh.httpApp('reviews', (req, res) => {
    const url = req.url ?? '/';
    if (url === '/missing') return void res.writeHead(404).end('no such review');
    if (url === '/fail') return void res.writeHead(503).end('overloaded');
    if (url === '/slow') return void setTimeout(() => res.end('slow'), SLOW_MS);
    res.end('ok');
  });
  const grpc = await grpcEchoApp();
  const echo = await mesh.echoApp();
  reviews = (await mesh.workload({ name: 'reviews-v2', namespace: 'bookinfo', sa: 'bookinfo-reviews', service: 'reviews', labels: { app: 'reviews', version: 'v2' }, ports: [['http', 9080, app], ['grpc', 9090, grpc], ['tcp-echo', 9000, echo]] })).proc;
  const pp = await mesh.workload({ name: 'productpage-v1', namespace: 'bookinfo', sa: 'bookinfo-productpage', labels: { app: 'productpage', version: 'v1' }, outbound: true });
  productpage = pp.proc;
  outbound = pp.outbound;
  await mesh.synced();
  // Prometheus scraping both sidecars' admin every second, its data in a temporary directory.
  const dir = tmpDir('prometheus');
  const port = await freePort();
  const targets = [reviews, productpage].map((s) => new URL(s.admin).host);
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), JSON.stringify({
    global: { scrape_interval: '1s', evaluation_interval: '1s' },
    scrape_configs: [{ job_name: 'weft-sidecars', metrics_path: '/stats/prometheus', static_configs: [{ targets }] }],
  }));
  prom = spawn(PROMETHEUS, [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  prom.stderr!.on('data', (d) => (stderr += d));
  promUrl = `http://127.0.0.1:${port}`;
  await waitFor(`Prometheus to be ready (${stderr.slice(-500)})`, async () => {
    if (prom!.exitCode !== null) throw new Error(`prometheus exited ${prom!.exitCode}: ${stderr.slice(-2000)}`);
    return (await request(`${promUrl}/-/ready`).then((r) => (r.body.dump(), r.statusCode), () => 0)) === 200;
  }, 30_000);
  await waitFor('both sidecars scraped and up', async () => (await query('sum(up{job="weft-sidecars"})'))[0]?.value === 2, 30_000);
});
after(async () => {
  await stopProc(prom);
  await mesh.close();
});

/** An HTTP/2 (h2c) gRPC server that echoes every message back, then ends with grpc-status 0 in trailers. */
async function grpcEchoApp(): Promise<number> {
  const http2 = process.getBuiltinModule('node:http2');
  const s = http2.createServer();
  s.on('stream', (st) => {
    st.on('error', () => {});
    st.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    st.on('wantTrailers', () => st.sendTrailers({ 'grpc-status': '0' }));
    st.on('data', (d: Buffer) => st.write(d));
    st.on('end', () => st.end());
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const close = mesh.close.bind(mesh);
  mesh.close = async () => {
    await close();
    s.close();
  };
  return (s.address() as import('node:net').AddressInfo).port;
}

type Sample = { metric: Record<string, string>; value: number };

/** An instant query through Prometheus's HTTP API (at `time`, seconds, or now). */
async function query(q: string, time?: number): Promise<Sample[]> {
  const url = `${promUrl}/api/v1/query?query=${encodeURIComponent(q)}${time !== undefined ? `&time=${time}` : ''}`;
  const r = await request(url);
  const body = (await r.body.json()) as { status: string; error?: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  assert.equal(body.status, 'success', `${q}: ${body.error}`);
  return body.data.result.map((x) => ({ metric: x.metric, value: Number(x.value[1]) }));
}

/** Results keyed by one label's value. */
const by = (ss: Sample[], label: string) => Object.fromEntries(ss.map((s) => [s.metric[label]!, s.value]));

/** A GET through productpage's sidecar on a new connection (a new client port every time). */
function get(p: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: outbound, path: p, headers: { host: HOST }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
  });
}

/** Runs `jobs` with at most `n` under way at once. */
async function pool<T>(jobs: (() => Promise<T>)[], n: number): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]!();
    }
  }));
  return out;
}

const CODES = '{reporter="destination",destination_workload="reviews-v2",request_protocol="http"}';

/**
 * Waits until Prometheus has both sidecars' counts of the edge productpage -> reviews: `client`
 * by code as the client saw them (reporter source), and the server's (three tries per 503); returns
 * the time (s) of a query that had them.
 */
function scraped(what: string, client: Record<number, number>): Promise<number> {
  return waitFor(`${what} scraped`, async () => {
    const t = Date.now() / 1000;
    const got = await query('sum by (reporter, response_code) (istio_requests_total{destination_workload="reviews-v2",request_protocol="http"})', t);
    const n = (reporter: string, code: string) => got.find((s) => s.metric.reporter === reporter && s.metric.response_code === code)?.value;
    const ok = Object.entries(client).every(([code, c]) => n('source', code) === c && n('destination', code) === (code === '503' ? 3 * c : c));
    return ok ? t : undefined;
  }, 30_000);
}

test("Istio's PromQL over a real Prometheus: requests by workload and code, and the p99 of a known delay within its bucket; series grow with edges, not paths or client ports", async () => {
  // One request of each outcome first, so that every series exists in Prometheus before the measured
  // traffic. A 503 is tried three times (Istio's default retry policy: 2 retries on 503), so the
  // server's sidecar (reporter destination) sees three for each the client's (source) sees.
  assert.deepEqual([await get('/warm'), await get('/missing'), await get('/fail')], [200, 404, 503]);
  const t0 = await scraped('the warm-up', { 200: 1, 404: 1, 503: 1 });

  // 200 requests: 140 fast 200s on 50 distinct paths, 20 404s, 20 503s, 20 of SLOW_MS; each on its own connection.
  const paths = [...Array.from({ length: 140 }, (_, i) => `/ok/${i % 50}?id=${i}`), ...Array(20).fill('/missing'), ...Array(20).fill('/fail'), ...Array(20).fill('/slow')];
  const codes = await pool(paths.map((p) => () => get(p)), 20);
  assert.deepEqual(codes.filter((c) => c === 200).length, 160);

  const t1 = await scraped('the traffic', { 200: 161, 404: 21, 503: 21 });
  const window = `${Math.round((t1 - t0) * 1000)}ms`;

  // Exactly the traffic sent, on both sides of the edge (the counters' change over the traffic).
  for (const [reporter, tries] of [['destination', 3], ['source', 1]] as const) {
    const sel = `{reporter="${reporter}",destination_service="reviews.bookinfo.svc.cluster.local",request_protocol="http"}`;
    const sent = await query(`sum by (destination_workload, response_code) (istio_requests_total${sel} - istio_requests_total${sel} offset ${window})`, t1);
    assert.deepEqual(sent.map((s) => [s.metric.destination_workload, s.metric.response_code, s.value]).sort(), [['reviews-v2', '200', 160], ['reviews-v2', '404', 20], ['reviews-v2', '503', 20 * tries]], reporter);
  }
  // Istio's dashboard query, as written there; rate()'s extrapolation over the last minute may add, never lose.
  const rate = by(await query('sum(rate(istio_requests_total{reporter="destination"}[1m])) by (destination_workload, response_code)', t1), 'response_code');
  for (const [code, n] of [['200', 160], ['404', 20], ['503', 60]] as const) {
    assert.ok(rate[code]! * 60 >= n && rate[code]! * 60 <= 2 * (n + 1), `rate of ${code}: ${rate[code]}/s over 1m for ${n} requests`);
  }

  // The p99 of the 240 the server saw: the 20 slow ones are its top 8%, so it lies in their bucket, (500, 1000].
  const exact = await query(`histogram_quantile(0.99, sum by (le, destination_workload) (istio_request_duration_milliseconds_bucket${CODES} - istio_request_duration_milliseconds_bucket${CODES} offset ${window}))`, t1);
  assert.equal(exact.length, 1);
  // 220 fast ones under 500 ms and 20 in (500, 1000]: rank 237.6 of 240 is 17.6/20 of the way into the bucket.
  assert.equal(Math.round(exact[0]!.value), 940, `p99 ${exact[0]!.value}`);
  const p99 = await query('histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination"}[1m])) by (le, destination_workload))', t1);
  assert.deepEqual(p99.map((s) => s.metric.destination_workload), ['reviews-v2']);
  assert.ok(p99[0]!.value > 500 && p99[0]!.value <= 1000, `p99 over rate(): ${p99[0]!.value} ms, for requests of ${SLOW_MS} ms`);

  // Both ends' labels: each side its own app and version, and the other's from Istio's metadata exchange (over mTLS, matching its certificate).
  const dst = await query(`count by (source_workload, source_app, destination_app, destination_version, destination_canonical_service, destination_canonical_revision, connection_security_policy) (istio_requests_total${CODES})`, t1);
  assert.deepEqual(dst.map((s) => s.metric), [{ source_workload: 'productpage-v1', source_app: 'productpage', destination_app: 'reviews', destination_version: 'v2', destination_canonical_service: 'reviews', destination_canonical_revision: 'v2', connection_security_policy: 'mutual_tls' }]);
  const src = await query('count by (source_app, source_version, source_canonical_service, destination_workload, destination_app) (istio_requests_total{reporter="source"})', t1);
  assert.deepEqual(src.map((s) => s.metric), [{ source_app: 'productpage', source_version: 'v1', source_canonical_service: 'productpage', destination_workload: 'reviews-v2', destination_app: 'reviews' }]);

  // 50 paths, 203 client connections: three series per side (one per code), on the sidecar and in Prometheus.
  assert.equal((await query('count(istio_requests_total{destination_workload="reviews-v2",request_protocol="http"})', t1))[0]!.value, 6);
  const text = await (await request(`${reviews.admin}/stats/prometheus`)).body.text();
  assert.equal(text.split('\n').filter((l) => l.startsWith('istio_requests_total{') && l.includes('request_protocol="http"')).length, 3);
  // Standard text: Prometheus's own linter finds nothing but Istio's name in milliseconds, which dashboards need as it is.
  const lint = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  const problems = `${lint.stdout}${lint.stderr}`.split('\n').filter((l) => l && !/^istio_request_duration_milliseconds use base unit "seconds"/.test(l));
  assert.deepEqual(problems, [], `promtool exited ${lint.status}`);

  // The sidecars' own health, scraped alike.
  assert.deepEqual((await query('weft_xds_connected', t1)).map((s) => s.value), [1, 1]);
  for (const s of await query('weft_workload_cert_expiry_seconds', t1)) assert.ok(s.value > 0, JSON.stringify(s));
  // The config versions as each sidecar's /config_dump gives them.
  for (const sc of [reviews, productpage]) {
    const dump = (await (await request(`${sc.admin}/config_dump`)).body.json()) as { xds: { types: Record<string, { version: string }> } };
    const got = by(await query(`weft_xds_config_version{instance="${new URL(sc.admin).host}"}`, t1), 'type');
    assert.deepEqual(got, Object.fromEntries(Object.entries(dump.xds.types).map(([t, v]) => [t, Number(v.version)])));
  }
});

test('gRPC: messages each way counted from the framing, grpc_response_status from the trailers; TCP bytes both ways', async () => {
  const http2 = process.getBuiltinModule('node:http2');
  const session = http2.connect(`http://127.0.0.1:${outbound}`);
  const frame = (s: string) => {
    const b = Buffer.alloc(5 + s.length);
    b.writeUInt32BE(s.length, 1);
    b.write(s, 5);
    return b;
  };
  try {
    const echoed = await new Promise<number>((resolve, reject) => {
      const st = session.request({ ':method': 'POST', ':path': '/reviews.Reviews/Echo', ':authority': 'reviews.bookinfo:9090', 'content-type': 'application/grpc', te: 'trailers' });
      let n = 0;
      st.on('data', (d: Buffer) => (n += d.length));
      st.on('trailers', (t) => assert.equal(t['grpc-status'], '0'));
      st.on('end', () => resolve(n));
      st.on('error', reject);
      // Three messages, the second split across two writes.
      st.write(frame('one'));
      const two = frame('second message');
      st.write(two.subarray(0, 7));
      st.write(two.subarray(7));
      st.end(frame('3'));
    });
    assert.equal(echoed, 5 * 3 + 3 + 14 + 1);
  } finally {
    session.close();
  }
  assert.equal(await tcpEcho(outbound, 'reviews.bookinfo:9000', 'hello'), 'echoed');
  const got = await waitFor('the gRPC and TCP series scraped', async () => {
    const t = Date.now() / 1000;
    const v = async (q: string) => (await query(q, t))[0]?.value;
    const r = {
      requestMessages: await v('sum(istio_request_messages_total{reporter="destination",grpc_response_status="0",request_protocol="grpc"})'),
      responseMessages: await v('sum(istio_response_messages_total{reporter="destination",grpc_response_status="0"})'),
      sourceMessages: await v('sum(istio_request_messages_total{reporter="source",destination_workload="reviews-v2"})'),
      tcpReceived: await v('sum(istio_tcp_received_bytes_total{reporter="destination",destination_workload="reviews-v2"})'),
      tcpSent: await v('sum(istio_tcp_sent_bytes_total{reporter="destination"})'),
      closed: await v('sum(istio_tcp_connections_closed_total{reporter="destination"})'),
    };
    // Every figure, from one evaluation time: a scrape stored between two of these queries (a CI run
    // saw the first query miss what the second found) is read again on the next try.
    return Object.values(r).every((x) => x !== undefined) && r.closed === 1 ? r : undefined;
  }, 30_000);
  assert.deepEqual(got, { requestMessages: 3, responseMessages: 3, sourceMessages: 3, tcpReceived: 5, tcpSent: 5, closed: 1 });
});
