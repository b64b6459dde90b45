// Simulation tests for what a VirtualService route does besides choosing a cluster: fault
// injection, header edits, rewrites, redirects and direct responses. Translate, load as the
// sidecar does (a NACK fails the test), and run the request path's pure layers. No sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { meshOf, request, simulate, sidecarSnapshot, workload } from '../snapshot.ts';

const workloads = [
  workload('reviews-v1', { service: 'reviews', port: 41000, labels: { version: 'v1' } }),
  workload('reviews-v2', { service: 'reviews', port: 42000, labels: { version: 'v2' } }),
  workload('client', { port: 43000 }),
];
const REVIEWS = 'reviews.default.svc.cluster.local';
const dr = { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews' }, spec: { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] } };
const cfgWith = (...http: object[]) => sidecarSnapshot(meshOf([dr, { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews' }, spec: { hosts: ['reviews'], http } }], workloads), workloads[2]);
const to = (subset?: string) => ({ destination: { host: 'reviews', ...(subset ? { subset } : {}) } });

test('fault abort at 100%: every request gets the configured status, and nothing is forwarded', () => {
  const cfg = cfgWith({ fault: { abort: { httpStatus: 418, percentage: { value: 100 } } }, route: [to()] });
  for (const r of [0, 0.5, 0.999999]) {
    const s = simulate(cfg, request('reviews'), { cluster: 0.5, delay: r, abort: r });
    assert.deepEqual([s.kind, (s as any).status, (s as any).code], ['error', 418, 'fault_abort']);
  }
});

test('fault abort without a percentage means every request (Istio: 100%)', () => {
  const s = simulate(cfgWith({ fault: { abort: { httpStatus: 503 } }, route: [to()] }), request('reviews'), { cluster: 0.5, delay: 0.9, abort: 0.9 });
  assert.equal((s as any).status, 503);
});

test('fault percentages are fractions of requests: 10% aborts, 90% forwarded', () => {
  const cfg = cfgWith({ fault: { abort: { httpStatus: 500, percentage: { value: 10 } } }, route: [to()] });
  assert.equal(simulate(cfg, request('reviews'), { cluster: 0.5, delay: 0, abort: 0.099 }).kind, 'error');
  assert.equal(simulate(cfg, request('reviews'), { cluster: 0.5, delay: 0, abort: 0.101 }).kind, 'forward');
});

test('fault delay: the request is held for the fixed delay, then forwarded; a gRPC abort carries its status', () => {
  const cfg = cfgWith({ fault: { delay: { fixedDelay: '7s', percentage: { value: 100 } } }, route: [to('v1')] });
  const s = simulate(cfg, request('reviews'));
  assert.equal(s.kind, 'forward');
  assert.equal((s as any).delayMs, 7000);
  assert.equal((s as any).cluster, `outbound|80|v1|${REVIEWS}`);
  const g = cfgWith({ fault: { abort: { grpcStatus: 'UNAVAILABLE' } }, route: [to()] });
  const e = simulate(g, request('reviews'));
  assert.equal(e.kind, 'error');
});

test('headers: request set/add/remove reach the upstream, response set/add/remove reach the client', () => {
  const cfg = cfgWith({
    headers: { request: { set: { 'x-set': 'new' }, add: { 'x-add': 'more' }, remove: ['x-secret'] }, response: { set: { 'x-served-by': 'reviews' }, remove: ['server'] } },
    route: [to()],
  });
  const s = simulate(cfg, request('reviews', '/', ['x-set', 'old', 'x-add', 'one', 'x-secret', 's3cr3t', 'x-keep', 'k']));
  assert.equal(s.kind, 'forward');
  const h = (s as any).head.headers as string[];
  const pairs = (l: string[]) => Array.from({ length: l.length / 2 }, (_, i) => `${l[2 * i]}: ${l[2 * i + 1]}`);
  assert.deepEqual(pairs(h).sort(), ['x-add: more', 'x-add: one', 'x-keep: k', 'x-set: new'].sort());
  assert.deepEqual(pairs((s as any).responseHeaders(['server', 'app', 'content-type', 'text/plain'])).sort(), ['content-type: text/plain', 'x-served-by: reviews']);
});

test("a destination's header edits apply when that destination is chosen", () => {
  const cfg = cfgWith({
    route: [
      { ...to('v1'), weight: 50, headers: { request: { set: { 'x-version': 'v1' } }, response: { add: { 'x-from': 'v1' } } } },
      { ...to('v2'), weight: 50, headers: { request: { set: { 'x-version': 'v2' } } } },
    ],
  });
  const v1 = simulate(cfg, request('reviews'), { cluster: 0.1, delay: 0, abort: 0 }) as any;
  const v2 = simulate(cfg, request('reviews'), { cluster: 0.9, delay: 0, abort: 0 }) as any;
  assert.deepEqual([v1.cluster, v1.head.headers], [`outbound|80|v1|${REVIEWS}`, ['x-version', 'v1']]);
  assert.deepEqual([v2.cluster, v2.head.headers], [`outbound|80|v2|${REVIEWS}`, ['x-version', 'v2']]);
  assert.deepEqual(v1.responseHeaders([]), ['x-from', 'v1']);
  assert.deepEqual(v2.responseHeaders([]), []);
});

test('rewrite uri replaces the matched prefix; authority replaces the host; uriRegexRewrite substitutes groups', () => {
  const cfg = cfgWith(
    { match: [{ uri: { prefix: '/old/' } }], rewrite: { uri: '/new/', authority: 'reviews.internal' }, route: [to()] },
    { match: [{ uri: { prefix: '/svc/' } }], rewrite: { uriRegexRewrite: { match: '^/svc/([^/]+)(/.*)$', rewrite: '\\2/instance/\\1' } }, route: [to()] },
    { match: [{ uri: { exact: '/exact' } }], rewrite: { uri: '/whole' }, route: [to()] },
    { route: [to()] },
  );
  const a = simulate(cfg, request('reviews', '/old/page?x=1')) as any;
  assert.deepEqual([a.head.path, a.head.query, a.head.authority], ['/new/page', 'x=1', 'reviews.internal']);
  assert.equal((simulate(cfg, request('reviews', '/svc/foo/v1/api')) as any).head.path, '/v1/api/instance/foo');
  assert.equal((simulate(cfg, request('reviews', '/exact')) as any).head.path, '/whole');
  assert.equal((simulate(cfg, request('reviews', '/other')) as any).head.path, '/other');
});

test('headers.request.set of host rewrites the authority', () => {
  const s = simulate(cfgWith({ headers: { request: { set: { host: 'elsewhere' } } }, route: [to()] }), request('reviews')) as any;
  assert.equal(s.head.authority, 'elsewhere');
});

test('redirect: the Location carries each part the rule sets, with its code; the query stays', () => {
  const cfg = cfgWith(
    { match: [{ uri: { prefix: '/a' } }], redirect: { uri: '/b', authority: 'new.example.com' } },
    { match: [{ uri: { prefix: '/tls' } }], redirect: { scheme: 'https', redirectCode: 308 } },
    { match: [{ uri: { prefix: '/port' } }], redirect: { port: 8080, redirectCode: 302 } },
    { route: [to()] },
  );
  const a = simulate(cfg, request('reviews', '/a/x?q=1')) as any;
  assert.deepEqual([a.kind, a.status, a.headers.location], ['local', 301, 'http://new.example.com/b?q=1']);
  const t = simulate(cfg, request('reviews:80', '/tls')) as any;
  assert.deepEqual([t.status, t.headers.location], [308, 'https://reviews/tls']);
  const p = simulate(cfg, request('reviews', '/port')) as any;
  assert.deepEqual([p.status, p.headers.location], [302, 'http://reviews:8080/port']);
});

test('directResponse: the sidecar answers with the status and body; nothing is forwarded', () => {
  const cfg = cfgWith({ match: [{ uri: { prefix: '/admin' } }], directResponse: { status: 403, body: { string: 'no admin here' } }, headers: { response: { set: { 'x-why': 'policy' } } } }, { route: [to()] });
  const s = simulate(cfg, request('reviews', '/admin/users')) as any;
  assert.deepEqual([s.kind, s.status, s.body, s.headers['content-type'], s.headers['x-why']], ['local', 403, 'no admin here', 'text/plain', 'policy']);
  assert.equal(simulate(cfg, request('reviews', '/ok')).kind, 'forward');
  const empty = simulate(cfgWith({ directResponse: { status: 204 } }), request('reviews')) as any;
  assert.deepEqual([empty.status, empty.body], [204, '']);
});

test('mirror and mirrors: the copy goes to the mirror destination\'s cluster by its percentage (100% when unset), and that cluster exists', async () => {
  const { matchRoute } = await import('../../src/proxy/http/forward.ts');
  const one = cfgWith({ mirror: { host: 'reviews', subset: 'v2' }, mirrorPercentage: { value: 12.5 }, route: [to('v1')] });
  assert.deepEqual(matchRoute(one, 'outbound', request('reviews').head).mirrors, [{ cluster: `outbound|80|v2|${REVIEWS}`, fraction: 0.125, shadowSuffix: true }]);
  assert.ok(one.clusters.has(`outbound|80|v2|${REVIEWS}`));
  const many = cfgWith({ mirrors: [{ destination: { host: 'reviews', subset: 'v1' } }, { destination: { host: 'reviews', subset: 'v2' }, percentage: { value: 50 } }], route: [to()] });
  assert.deepEqual(
    matchRoute(many, 'outbound', request('reviews').head).mirrors!.map((m) => [m.cluster.split('|')[2], m.fraction]),
    [['v1', 1], ['v2', 0.5]],
  );
});

test('corsPolicy: an allowed origin\'s preflight is answered with the allowed methods, headers and max age; its requests get Allow-Origin; another origin passes untouched', async () => {
  const { matchRoute } = await import('../../src/proxy/http/forward.ts');
  const { corsOutcome } = await import('../../src/proxy/http/cors.ts');
  const cfg = cfgWith({
    corsPolicy: { allowOrigins: [{ exact: 'https://shop.example' }, { regex: 'https://.*\\.dev\\.example' }], allowMethods: ['GET', 'POST'], allowHeaders: ['x-token'], exposeHeaders: ['x-trace'], maxAge: '24h', allowCredentials: true },
    route: [to()],
  });
  const outcome = (method: string, headers: string[]) => {
    const req = request('reviews', '/', headers, method);
    return corsOutcome(matchRoute(cfg, 'outbound', req.head).cors!, req.head);
  };
  assert.deepEqual(outcome('OPTIONS', ['origin', 'https://shop.example', 'access-control-request-method', 'POST']), {
    kind: 'preflight',
    headers: ['access-control-allow-origin', 'https://shop.example', 'access-control-allow-credentials', 'true', 'access-control-allow-methods', 'GET,POST', 'access-control-allow-headers', 'x-token', 'access-control-max-age', '86400'],
  });
  assert.deepEqual(outcome('GET', ['origin', 'https://a.dev.example']), {
    kind: 'actual',
    headers: ['access-control-allow-origin', 'https://a.dev.example', 'access-control-allow-credentials', 'true', 'access-control-expose-headers', 'x-trace'],
  });
  assert.deepEqual(outcome('OPTIONS', ['origin', 'https://evil.example', 'access-control-request-method', 'POST']), { kind: 'none' }, 'forwarded to the upstream, as Envoy does');
  assert.deepEqual(outcome('GET', []), { kind: 'none' });
});

test('directResponse body.bytes is sent as the bytes it encodes (review: it was decoded twice)', () => {
  const s = simulate(cfgWith({ directResponse: { status: 200, body: { bytes: Buffer.from('hello').toString('base64') } } }), request('reviews')) as any;
  assert.deepEqual([s.status, s.body], [200, 'hello']);
});

test('corsPolicy allowing "*" allows every origin, as Envoy (review)', async () => {
  const { matchRoute } = await import('../../src/proxy/http/forward.ts');
  const { corsOutcome } = await import('../../src/proxy/http/cors.ts');
  const cfg = cfgWith({ corsPolicy: { allowOrigins: [{ exact: '*' }], allowMethods: ['GET'] }, route: [to()] });
  const req = request('reviews', '/', ['origin', 'https://app.example.com', 'access-control-request-method', 'GET'], 'OPTIONS');
  assert.equal(corsOutcome(matchRoute(cfg, 'outbound', req.head).cors!, req.head).kind, 'preflight');
});
