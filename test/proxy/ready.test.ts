// A sidecar whose request path is stuck is not ready, and says so: /ready names what is stuck,
// and the endpoint it reports turns unhealthy, so that other sidecars stop sending it traffic.
// Here the server sidecar's pool to its app allows one connection (circuit_breakers, as a
// DestinationRule's connectionPool would set), and the app holds requests without answering.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import { request } from 'undici';
import { STALL_MS } from '../../src/proxy/health.ts';
import { waitFor } from '../helpers.ts';
import { type Mesh, startMesh } from './mesh.ts';

describe('readiness follows the request path', () => {
  let m: Mesh;
  const held: http.ServerResponse[] = [];
  before(async () => {
    m = await startMesh(
      (req, res) => {
        if (req.url === '/hold') held.push(res);
        else res.end('ok');
      },
      { clusters: { 'inbound|80||': { circuit_breakers: { thresholds: [{ max_connections: { value: 1 }, max_pending_requests: { value: 100 } }] } } } },
    );
  });
  after(async () => {
    for (const r of held) r.end();
    await m?.close();
  });

  const ready = async (admin: string) => {
    const r = await request(`${admin}/ready`);
    return { status: r.statusCode, text: await r.body.text() };
  };
  const endpointHealthy = () => m.cp.registry.list().find((w) => w.name === 'app-1')?.healthy;

  test('requests stuck waiting for the app make the sidecar not ready and its endpoint unhealthy, until they move', async () => {
    assert.equal((await ready(m.server.admin)).status, 200);
    assert.equal(endpointHealthy(), true);
    const t0 = performance.now();
    // Two requests straight to the server sidecar: one takes the only connection, one waits.
    const pending = [0, 1].map(() => request(`http://127.0.0.1:${m.inbound}/hold`, { headers: { host: 'app' }, headersTimeout: 120_000 }).then(async (r) => (await r.body.text(), r.statusCode)));
    const notReady = await waitFor('/ready to say the path is stuck', async () => {
      const r = await ready(m.server.admin);
      return r.status === 503 && r.text;
    }, 5 * STALL_MS);
    console.log(`# not ready ${(performance.now() - t0).toFixed(0)} ms after the stall began: ${notReady.trim()}`);
    assert.match(notReady, new RegExp(`requests to 127\\.0\\.0\\.1:${m.appPort} have waited \\d+ ms for a connection \\(1 queued, 1 connections busy\\)`));
    await waitFor('the control plane to see the endpoint unhealthy', async () => endpointHealthy() === false, 5 * STALL_MS);
    // The app answers; the queue drains; the sidecar is ready and healthy again.
    for (let i = 0; i < 2; i++) {
      await waitFor('a held request to reach the app', async () => held.length > 0);
      held.shift()!.end('released');
    }
    assert.deepEqual(await Promise.all(pending), [200, 200]);
    await waitFor('/ready to recover', async () => (await ready(m.server.admin)).status === 200, 10_000);
    await waitFor('the endpoint to be healthy again', async () => endpointHealthy() === true, 10_000);
  });
});
