// Weft's LocalRateLimit: validated as a kind of its own, translated into Envoy's local rate limit
// filter on the selected workloads' inbound routes, and enforced by their sidecars with a token
// bucket per limit: past it, 429 naming the limit.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'undici';
import { checkResource } from '../../src/api/index.ts';
import { RateLimiter } from '../../src/proxy/http/ratelimit.ts';
import { matchRoute } from '../../src/proxy/http/forward.ts';
import { waitFor } from '../helpers.ts';
import { meshOf, request as simRequest, sidecarSnapshot, workload } from '../snapshot.ts';
import { type Mesh, startMesh } from './mesh.ts';

const limit = (spec: object, name = 'app', namespace = 'default') => ({ apiVersion: 'ratelimit.weft.io/v1alpha1', kind: 'LocalRateLimit', metadata: { name, namespace }, spec });
const WRITES = limit({ limits: [{ name: 'writes', match: { method: 'POST', path: { prefix: '/api' } }, requests: 5, per: '1h' }] });

test('validation: what a LocalRateLimit must say, each problem naming its field', () => {
  checkResource(WRITES, 'x');
  checkResource(limit({ selector: { matchLabels: { app: 'reviews' } }, limits: [{ requests: 100, per: '1s', burst: 200 }] }), 'x');
  const bad: [object, RegExp][] = [
    [limit({ limits: [] }), /spec\.limits: at least one limit is required/],
    [limit({ limits: [{ requests: 10, per: '1s', burst: 5 }] }), /spec\.limits\[0\]\.burst: must be at least requests \(10\)/],
    [limit({ limits: [{ requests: 10, per: 'soon' }] }), /spec\.limits\[0\]\.per: /],
    [limit({ limits: [{ requests: 0, per: '1s' }] }), /spec\.limits\[0\]\.requests/],
    [limit({ limits: [{ requests: 1, per: '1s', match: { method: 'FETCH' } }] }), /spec\.limits\[0\]\.match\.method: "FETCH" is not an HTTP method/],
    [limit({ limits: [{ requests: 1, per: '1s', name: 'a' }, { requests: 1, per: '1s', name: 'a' }] }), /spec\.limits\[1\]\.name: "a" is used twice/],
  ];
  for (const [obj, re] of bad) assert.throws(() => checkResource(obj, 'x'), (e: Error) => re.test(e.message), String(re));
});

test('translation: the selected workload\'s inbound route carries the bucket; another workload\'s does not', () => {
  const ws = [workload('reviews-v1', { service: 'reviews', port: 41000, labels: { app: 'reviews' } }), workload('ratings', { service: 'ratings', port: 42000, labels: { app: 'ratings' } })];
  const mesh = meshOf([limit({ selector: { matchLabels: { app: 'reviews' } }, limits: [{ name: 'all', requests: 100, per: '1s', burst: 150 }] })], ws);
  const rl = (w: (typeof ws)[number]) => matchRoute(sidecarSnapshot(mesh, w), `inbound|${w.inboundPort}`, simRequest('x', '/any').head).rateLimit;
  assert.deepEqual(rl(ws[0]), { name: 'default/app.all', maxTokens: 150, tokensPerFill: 100, fillMs: 1000 });
  assert.equal(rl(ws[1]), undefined);
});

test('the token bucket: a burst up to its size, then one request per refill', () => {
  const b = new RateLimiter();
  const l = { name: 'x', maxTokens: 3, tokensPerFill: 1, fillMs: 100 };
  assert.deepEqual([1, 2, 3, 4].map(() => b.take(l, 0)), [true, true, true, false]);
  assert.equal(b.take(l, 99), false);
  assert.equal(b.take(l, 100), true);
  assert.equal(b.take(l, 150), false);
  assert.deepEqual([b.take(l, 10_000), b.take(l, 10_000), b.take(l, 10_000), b.take(l, 10_000)], [true, true, true, false], 'refills to the bucket size, no more');
});

describe('LocalRateLimit through real sidecars', () => {
  let m: Mesh;
  const agent = new Agent({ connections: 8 });
  const call = async (method: string, path: string) => {
    const r = await request(`http://127.0.0.1:${m.outbound}${path}`, { method: method as 'GET', headers: { host: 'app' }, body: method === 'POST' ? 'x' : undefined, dispatcher: agent });
    return { status: r.statusCode, body: await r.body.text(), error: r.headers['x-weft-error'] };
  };
  before(async () => {
    m = await startMesh((req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
  });
  after(async () => {
    await agent.close();
    await m?.close();
  });

  test('past the limit, 429 naming it; requests its match does not take are not limited', async (t) => {
    m.cp.store.apply([checkResource(WRITES, 'test')]);
    // The limit is in the server sidecar once a POST is refused.
    const first = await waitFor('the limit in the server sidecar', async () => {
      const r = await call('POST', '/api/orders');
      return r.status === 429 && r;
    });
    assert.equal(first.error, 'rate_limited');
    assert.match(first.body, /local rate limit default\/app\.writes exceeded: 5 request\(s\) every 3600000 ms, at most 5 at once/);
    const gets = await Promise.all(Array.from({ length: 20 }, () => call('GET', '/api/orders')));
    assert.ok(gets.every((r) => r.status === 200), 'GETs are not limited');
    const posts = await Promise.all(Array.from({ length: 5 }, () => call('POST', '/api/orders')));
    t.diagnostic(`after the bucket emptied: ${posts.map((r) => r.status).join(' ')}`);
    assert.ok(posts.every((r) => r.status === 429), 'the bucket stays empty for the hour');
    assert.equal((await call('POST', '/other')).status, 200, 'another path is not limited');
  });
});
