// VirtualService route actions through real sidecar processes: fault injection (abort, delay,
// percentages), header edits, rewrites, redirects and direct responses, with real requests.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'undici';
import { checkResource } from '../../src/api/index.ts';
import { assertShare, waitFor } from '../helpers.ts';
import { type Mesh, startMesh } from './mesh.ts';

const to = { destination: { host: 'app' } };
const VS = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'app' },
  spec: {
    hosts: ['app'],
    http: [
      { match: [{ uri: { prefix: '/direct' } }], directResponse: { status: 403, body: { string: 'not here' } } },
      { match: [{ uri: { prefix: '/fault/abort' } }], fault: { abort: { httpStatus: 418, percentage: { value: 100 } } }, route: [to] },
      { match: [{ uri: { prefix: '/fault/some' } }], fault: { abort: { httpStatus: 500, percentage: { value: 25 } } }, route: [to] },
      { match: [{ uri: { prefix: '/fault/delay' } }], fault: { delay: { fixedDelay: '7s', percentage: { value: 100 } } }, route: [to] },
      { match: [{ uri: { prefix: '/headers' } }], headers: { request: { set: { 'x-set': 'by-mesh' }, remove: ['x-secret'] }, response: { set: { 'x-mesh': 'yes' }, remove: ['x-internal'] } }, route: [to] },
      { match: [{ uri: { prefix: '/old/' } }], rewrite: { uri: '/new/' }, route: [to] },
      { match: [{ uri: { prefix: '/moved' } }], redirect: { uri: '/here', redirectCode: 302 } },
      { match: [{ uri: { prefix: '/cors' } }], corsPolicy: { allowOrigins: [{ exact: 'https://shop.example' }], allowMethods: ['GET', 'PUT'], maxAge: '1m' }, route: [to] },
      { match: [{ uri: { prefix: '/mirrored' } }], mirror: { host: 'app' }, mirrorPercentage: { value: 100 }, route: [to] },
      { route: [to] },
    ],
  },
};

describe('VirtualService route actions through two sidecars', () => {
  let m: Mesh;
  const seen: { host: string; body: string }[] = [];
  const agent = new Agent({ connections: 16 });
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const r = await request(`http://127.0.0.1:${m.outbound}${path}`, { headers: { host: 'app', ...headers }, dispatcher: agent });
    return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
  };

  before(async () => {
    m = await startMesh((req, res) => {
      if (req.url?.startsWith('/mirrored')) {
        let body = '';
        req.on('data', (d) => (body += d));
        req.on('end', () => {
          seen.push({ host: String(req.headers.host), body });
          // The copy's answer is a 500 that nobody may see.
          res.statusCode = String(req.headers.host).startsWith('app-shadow') ? 500 : 200;
          res.end('primary');
        });
        return;
      }
      res.setHeader('x-internal', 'leak');
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ path: req.url, headers: req.headers }));
    });
    m.cp.store.apply([checkResource(VS, 'test')]);
    await waitFor('the VirtualService in the client sidecar', async () => (await get('/direct')).status === 403);
  });
  after(async () => {
    await agent.close();
    await m?.close();
  });

  test('directResponse: the sidecar answers; the app never sees the request', async () => {
    const r = await get('/direct/x');
    assert.deepEqual([r.status, r.body, r.headers['content-type']], [403, 'not here', 'text/plain']);
  });

  test('fault abort at 100%: every one of 50 requests gets the configured status', async () => {
    const rs = await Promise.all(Array.from({ length: 50 }, () => get('/fault/abort')));
    assert.deepEqual([...new Set(rs.map((r) => r.status))], [418]);
    assert.equal(rs[0].headers['x-weft-error'], 'fault_abort');
  });

  test('fault abort at 25%: over 2,000 requests the aborted share is a fair draw at 25% (within five binomial deviations)', async (t) => {
    let aborted = 0;
    const n = 2000;
    for (let i = 0; i < n; i += 50) {
      const rs = await Promise.all(Array.from({ length: 50 }, () => get('/fault/some')));
      for (const r of rs) {
        if (r.status === 500) aborted++;
        else assert.equal(r.status, 200);
      }
    }
    const pct = (100 * aborted) / n;
    t.diagnostic(`${aborted} of ${n} aborted: ${pct.toFixed(1)}% (configured 25%)`);
    assertShare(aborted, n, 0.25, 'requests aborted');
  });

  test('fault delay of 7 s shows in the measured latency, and the request then arrives', async (t) => {
    const t0 = performance.now();
    const r = await get('/fault/delay');
    const ms = performance.now() - t0;
    t.diagnostic(`delayed request took ${ms.toFixed(0)} ms (configured 7000 ms)`);
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).path, '/fault/delay');
    assert.ok(ms >= 6990 && ms < 35_000, `${ms} ms`);
  });

  test('headers: set and removed on the way in and on the way out', async () => {
    const r = await get('/headers', { 'x-secret': 'pw', 'x-set': 'client' });
    const seen = JSON.parse(r.body).headers;
    assert.equal(seen['x-set'], 'by-mesh');
    assert.equal(seen['x-secret'], undefined);
    assert.equal(r.headers['x-mesh'], 'yes');
    assert.equal(r.headers['x-internal'], undefined);
  });

  test('rewrite: the app sees the rewritten path, with the query', async () => {
    assert.equal(JSON.parse((await get('/old/page?a=1')).body).path, '/new/page?a=1');
  });

  test('mirror: a copy of the request (body too) arrives with host -shadow, and its answer is dropped', async () => {
    const r = await request(`http://127.0.0.1:${m.outbound}/mirrored`, { method: 'POST', body: 'payload', headers: { host: 'app' }, dispatcher: agent });
    assert.deepEqual([r.statusCode, await r.body.text()], [200, 'primary']);
    await waitFor('the mirrored copy', async () => seen.length >= 2);
    assert.deepEqual(seen.map((x) => `${x.host.replace(/:\d+$/, '')} ${x.body}`).sort(), ['app payload', 'app-shadow payload']);
  });

  test('corsPolicy: the sidecar answers an allowed preflight itself, and adds Allow-Origin to the real request', async () => {
    const pre = await request(`http://127.0.0.1:${m.outbound}/cors`, { method: 'OPTIONS', headers: { host: 'app', origin: 'https://shop.example', 'access-control-request-method': 'PUT' }, dispatcher: agent });
    await pre.body.dump();
    assert.equal(pre.statusCode, 200);
    assert.deepEqual([pre.headers['access-control-allow-origin'], pre.headers['access-control-allow-methods'], pre.headers['access-control-max-age']], ['https://shop.example', 'GET,PUT', '60']);
    const real = await get('/cors/x', { origin: 'https://shop.example' });
    assert.equal(real.headers['access-control-allow-origin'], 'https://shop.example');
    assert.equal(JSON.parse(real.body).path, '/cors/x', 'the real request reached the app');
    const other = await get('/cors/x', { origin: 'https://evil.example' });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
  });

  test('redirect: 302 with the Location, the app never sees it', async () => {
    const r = await get('/moved/x?q=2');
    assert.deepEqual([r.status, r.headers.location], [302, 'http://app/here?q=2']);
  });
});
