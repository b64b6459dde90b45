// Retries through real sidecars: Istio's default policy and VirtualService retries, the request
// body sent again, per-try timeouts, and the retry budget that keeps a failing upstream from a
// retry storm.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'undici';
import { checkResource } from '../../src/api/index.ts';
import { waitFor } from '../helpers.ts';
import { type Mesh, startMesh } from './mesh.ts';

const to = { destination: { host: 'app' } };
const VS = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'app' },
  spec: {
    hosts: ['app'],
    http: [
      { match: [{ uri: { prefix: '/flaky' } }], retries: { attempts: 3, retryOn: '5xx' }, route: [to] },
      { match: [{ uri: { prefix: '/down' } }], retries: { attempts: 2, retryOn: '5xx' }, route: [to] },
      { match: [{ uri: { prefix: '/slow' } }], retries: { attempts: 2, perTryTimeout: '200ms', retryOn: '5xx' }, route: [to] },
      { match: [{ uri: { prefix: '/never' } }], retries: { attempts: 0 }, route: [to] },
      { match: [{ uri: { prefix: '/ready' } }], directResponse: { status: 204 } },
      { route: [to] }, // Istio's default policy: 503 is retried twice
    ],
  },
};

describe('retries through two sidecars', () => {
  let m: Mesh;
  const hits = new Map<string, number>();
  const agent = new Agent({ connections: 64 });
  const call = async (path: string, opts: { method?: string; body?: string } = {}) => {
    const r = await request(`http://127.0.0.1:${m.outbound}${path}`, { method: (opts.method ?? 'GET') as 'GET', body: opts.body, headers: { host: 'app' }, dispatcher: agent });
    return { status: r.statusCode, body: await r.body.text() };
  };

  before(async () => {
    m = await startMesh((req, res) => {
      const key = new URL(req.url!, 'http://x').pathname;
      const n = (hits.get(key) ?? 0) + 1;
      hits.set(key, n);
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        if (key === '/flaky' || key === '/echo') {
          // Fails every other request it receives: half of all tries.
          res.statusCode = n % 2 === 1 ? 503 : 200;
          return res.end(`${key} try ${n}: ${body}`);
        }
        if (key === '/down' || key === '/never' || key === '/budget') {
          res.statusCode = 503;
          return res.end('down');
        }
        if (key === '/slow') {
          if (n % 2 === 1) return; // the first try never answers
          return res.end('slow second try');
        }
        res.end('ok');
      });
    });
    m.cp.store.apply([checkResource(VS, 'test')]);
    await waitFor('the VirtualService in the client sidecar', async () => (await call('/ready')).status === 204);
  });
  after(async () => {
    await agent.close();
    await m?.close();
  });

  test('retries turn an upstream that fails half its requests into full success', async (t) => {
    hits.delete('/flaky');
    let ok = 0;
    const n = 100;
    for (let i = 0; i < n; i++) if ((await call('/flaky')).status === 200) ok++;
    t.diagnostic(`${ok} of ${n} succeeded; the upstream answered ${hits.get('/flaky')} tries, half of them 503`);
    assert.ok(ok / n >= 0.99, `${ok} of ${n}`);
  });

  test("Istio's default policy retries a 503, and sends the request body again", async () => {
    hits.delete('/echo');
    const r = await call('/echo', { method: 'POST', body: 'the same body' });
    assert.deepEqual(r, { status: 200, body: '/echo try 2: the same body' });
  });

  test('attempts 0 turns retries off; exhausted retries answer with the upstream\'s last status', async () => {
    hits.delete('/never');
    assert.equal((await call('/never')).status, 503);
    assert.equal(hits.get('/never'), 1);
    hits.delete('/down');
    assert.equal((await call('/down')).status, 503);
    assert.equal(hits.get('/down'), 3, 'one try and two retries');
  });

  test('a per-try timeout ends a try that hangs, and the retry answers', async () => {
    hits.delete('/slow');
    const t0 = performance.now();
    const r = await call('/slow');
    assert.deepEqual(r, { status: 200, body: 'slow second try' });
    assert.ok(performance.now() - t0 < 5000);
  });

  test('the retry budget: an upstream failing every request gets at most 1.25x the offered load', async (t) => {
    hits.delete('/budget');
    // 2,000 requests in 5 s (400 a second): retries may add 20% of them plus 10 a second over the
    // 10 s window, that is 500: 1.25x at most, though every request asks for two retries.
    const offered = 2000;
    const results: Promise<number>[] = [];
    await new Promise<void>((resolve) => {
      let sent = 0;
      const timer = setInterval(() => {
        for (let i = 0; i < 4 && sent < offered; i++, sent++) results.push(call('/budget').then((r) => r.status));
        if (sent >= offered) {
          clearInterval(timer);
          resolve();
        }
      }, 10);
    });
    const statuses = await Promise.all(results);
    const upstream = hits.get('/budget') ?? 0;
    t.diagnostic(`offered ${offered}, upstream saw ${upstream} (${(upstream / offered).toFixed(3)}x); without a budget it would be ${3 * offered}`);
    assert.ok(statuses.every((s) => s === 503));
    assert.ok(upstream <= 1.25 * offered, `${upstream} tries for ${offered} requests`);
    assert.ok(upstream > offered, 'some retries were made');
  });
});
