// A request line that no URL parser takes ("GET //[ HTTP/1.1", a bad %-escape) gets a 400 from the
// control plane's admin API (also on its dashboard and signals routes) and from a sidecar's admin
// endpoint; neither process ends (review defect: the control plane exited on such a request).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { raw, startMesh } from './mesh.ts';

test('a request line no URL parser takes is a 400 at the control plane and at a sidecar, and both stay up', async () => {
  const mesh = await startMesh((_req, res) => res.end('ok'));
  try {
    const cpPort = Number(new URL(mesh.cp.adminUrl).port);
    const sidecarPort = Number(new URL(mesh.client.admin).port);
    for (const port of [cpPort, sidecarPort]) {
      for (const line of ['GET //[ HTTP/1.1', 'GET /api/v1/tap/%ZZ/x HTTP/1.1']) {
        const r = await raw(port, `${line}\r\nHost: x\r\nConnection: close\r\n\r\n`);
        assert.match(r.data, /^HTTP\/1\.1 (400|401|404)/, `${port} ${line}: ${r.data.slice(0, 80)}`);
      }
    }
    const first = await raw(cpPort, 'GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(first.data, /^HTTP\/1\.1 400/);
    // Both still answer.
    assert.equal((await request(`${mesh.cp.adminUrl}/healthz`)).statusCode, 200);
    assert.equal((await request(`${mesh.client.admin}/ready`)).statusCode, 200);
  } finally {
    await mesh.close();
  }
});
