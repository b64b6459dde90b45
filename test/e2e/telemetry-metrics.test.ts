// Istio's Telemetry metrics through a real control plane and real sidecar processes: httpbin
// (namespace foo) and sleep (foo, app=sleep, calls it through its sidecar), each sidecar's
// /stats/prometheus scraped as Prometheus would. A Telemetry turns the server side's request
// count off and gives the client side's a label from a request header; deleting it brings
// Istio's defaults back.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { AuthzMesh, call, telemetry } from '../fixtures/authz-mesh.ts';
import type { SidecarProc } from '../proxy/mesh.ts';
import { waitFor } from '../helpers.ts';
import { type ExpositionSample, parseExposition } from '../fixtures/exposition.ts';

const mesh = new AuthzMesh();
let sleep = 0;
let httpbin: SidecarProc;
let client: SidecarProc;
const HOST = 'httpbin.foo:8000';

before(async () => {
  await mesh.start('telemetry-metrics');
  const app = await mesh.httpApp('httpbin', (req, res) => res.end(`httpbin ${req.url}`));
  httpbin = (await mesh.workload({ name: 'httpbin-v1', namespace: 'foo', sa: 'httpbin', service: 'httpbin', labels: { app: 'httpbin' }, ports: [['http', 8000, app]] })).proc;
  const s = await mesh.workload({ name: 'sleep', namespace: 'foo', sa: 'sleep', labels: { app: 'sleep' }, outbound: true });
  sleep = s.outbound;
  client = s.proc;
  await mesh.synced();
});
after(() => mesh.close());

type Sample = ExpositionSample;

/** A sidecar's /stats/prometheus, its samples of `name`. */
async function scrape(p: SidecarProc, name: string): Promise<Sample[]> {
  return parseExposition(await (await request(`${p.admin}/stats/prometheus`)).body.text()).filter((x) => x.name === name);
}

const sum = (s: Sample[]) => s.reduce((a, x) => a + x.value, 0);
const destination = (s: Sample[]) => s.filter((x) => x.labels.reporter === 'destination');

test('a Telemetry: the server side reports no request count (its other metrics stay), the client side labels it by the x-user header', async () => {
  await mesh.setTelemetries(
    telemetry('metrics', {
      metrics: [
        {
          providers: [{ name: 'prometheus' }],
          overrides: [
            { match: { metric: 'REQUEST_COUNT', mode: 'SERVER' }, disabled: true },
            { match: { metric: 'REQUEST_COUNT', mode: 'CLIENT' }, tagOverrides: { user: { value: "request.headers['x-user']" }, request_protocol: { operation: 'REMOVE' } } },
          ],
        },
      ],
    }),
  );
  for (const user of ['alice', 'alice', 'bob']) assert.equal((await call(sleep, HOST, '/get', { headers: { 'x-user': user } })).status, 200);
  assert.equal((await call(sleep, HOST, '/anonymous')).status, 200);
  // The server's histograms count the four requests: its request count would have by now.
  await waitFor('httpbin to count the requests', async () => sum(destination(await scrape(httpbin, 'istio_request_duration_milliseconds_count'))) >= 4, 20_000);
  assert.deepEqual(destination(await scrape(httpbin, 'istio_requests_total')), [], 'no istio_requests_total{reporter="destination"}');
  const byUser = await waitFor('sleep to count the requests by user', async () => {
    const s = (await scrape(client, 'istio_requests_total')).filter((x) => x.labels.user !== undefined);
    return sum(s) >= 4 ? s : undefined;
  }, 20_000);
  assert.deepEqual(Object.fromEntries(byUser.map((x) => [x.labels.user, x.value])), { alice: 2, bob: 1, unknown: 1 });
  for (const x of byUser) {
    assert.equal(x.labels.reporter, 'source');
    assert.equal(x.labels.request_protocol, undefined, 'REMOVE: request_protocol left out');
    assert.equal(x.labels.destination_service, 'httpbin.foo.svc.cluster.local');
    assert.equal(x.labels.response_code, '200');
  }
  // The client's histograms keep Istio's labels.
  const hist = (await scrape(client, 'istio_request_duration_milliseconds_count')).filter((x) => x.labels.reporter === 'source');
  assert.ok(hist.length >= 1 && hist.every((x) => x.labels.request_protocol === 'http' && x.labels.user === undefined), JSON.stringify(hist));
});

test('deleting the Telemetry brings the defaults back: the server counts its requests again, the client without the user label', async () => {
  await mesh.setTelemetries();
  const before = sum((await scrape(client, 'istio_requests_total')).filter((x) => x.labels.user === undefined));
  assert.equal((await call(sleep, HOST, '/again', { headers: { 'x-user': 'carol' } })).status, 200);
  const server = await waitFor('httpbin to count the request again', async () => {
    const s = destination(await scrape(httpbin, 'istio_requests_total'));
    return sum(s) >= 1 ? s : undefined;
  }, 20_000);
  assert.equal(server[0]!.labels.request_protocol, 'http');
  await waitFor('sleep to count it with the standard labels', async () => sum((await scrape(client, 'istio_requests_total')).filter((x) => x.labels.user === undefined)) > before, 20_000);
  const carol = (await scrape(client, 'istio_requests_total')).filter((x) => x.labels.user === 'carol');
  assert.deepEqual(carol, [], 'no user label any more');
});
