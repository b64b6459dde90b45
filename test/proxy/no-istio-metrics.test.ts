// weft proxy --no-istio-metrics: the sidecar keeps none of Istio's standard metrics (as Envoy's
// bootstrap stats_matcher reject_all), while its peer, started without it, does; Weft's own
// weft_* health metrics stay. The bench's telemetry-off sidecars run with it (bench/telemetry.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startMesh } from './mesh.ts';

test('--no-istio-metrics: no istio_* series on that sidecar after traffic; its peer has them; weft_* stay', async () => {
  const mesh = await startMesh((_req, res) => res.end('ok'), { clientArgs: ['--no-istio-metrics'] });
  try {
    for (let i = 0; i < 5; i++) {
      const r = await request(`http://127.0.0.1:${mesh.outbound}/x${i}`, { headers: { host: 'app' } });
      assert.equal(r.statusCode, 200);
      await r.body.dump();
    }
    const text = async (admin: string) => (await (await request(`${admin}/stats/prometheus`)).body.text());
    const client = await text(mesh.client.admin);
    const server = await text(mesh.server.admin);
    assert.doesNotMatch(client, /^istio_/m, 'the --no-istio-metrics sidecar exports no Istio metric');
    assert.match(client, /^weft_/m, "its own weft_* metrics stay");
    assert.match(server, /^istio_requests_total\{reporter="destination"[^}]*\} [5-9]\d*$/m, 'the server sidecar, started without it, counted the requests');
  } finally {
    await mesh.close();
  }
});
