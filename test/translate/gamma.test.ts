// Simulation tests for the Gateway API's mesh routes (GAMMA: HTTPRoute and GRPCRoute whose
// parentRefs name a Service): translate, load as the sidecar does (a NACK fails the test), and
// run the request path's pure layers. No sockets.
import { test } from 'node:test';
import type { RequestHead } from '../../src/proxy/http/types.ts';
import assert from 'node:assert/strict';
import type { Workload } from '../../src/control/model/model.ts';
import { meshOf, request, routeOf, sidecarSnapshot, simulate, workload } from '../snapshot.ts';

const svc = (name: string, namespace = 'default') => `${name}.${namespace}.svc.cluster.local`;
const C = (name: string, port = 80, namespace = 'default') => `outbound|${port}||${svc(name, namespace)}`;
const parent = (name: string, extra: object = {}) => ({ group: '', kind: 'Service', name, ...extra });
const backend = (name: string, port = 80, extra: object = {}) => ({ name, port, ...extra });
const httpRoute = (name: string, spec: object, namespace = 'default') => ({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name, namespace }, spec });
const grpcRoute = (name: string, spec: object, namespace = 'default') => ({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GRPCRoute', metadata: { name, namespace }, spec });

const workloads: Workload[] = [
  workload('reviews', { service: 'reviews', port: 41000 }),
  workload('reviews-v1', { service: 'reviews-v1', port: 41100 }),
  workload('reviews-v2', { service: 'reviews-v2', port: 41200 }),
  workload('client', { port: 43000 }),
];
const client = workloads[3];
const cfgOf = (...routes: object[]) => sidecarSnapshot(meshOf(routes, workloads), client);
const pairs = (l: string[]) => Array.from({ length: l.length / 2 }, (_, i) => `${l[2 * i]}: ${l[2 * i + 1]}`);

test('a producer HTTPRoute splits a Service\'s traffic over its backendRefs by weight', () => {
  const cfg = cfgOf(httpRoute('split', { parentRefs: [parent('reviews')], rules: [{ backendRefs: [backend('reviews-v1', 80, { weight: 90 }), backend('reviews-v2', 80, { weight: 10 })] }] }));
  assert.equal(routeOf(cfg, request('reviews'), 0.05), C('reviews-v1'));
  assert.equal(routeOf(cfg, request('reviews'), 0.89), C('reviews-v1'));
  assert.equal(routeOf(cfg, request('reviews'), 0.95), C('reviews-v2'));
  // Every name of the Service is routed, and other Services are untouched.
  assert.equal(routeOf(cfg, request('reviews.default.svc.cluster.local'), 0.95), C('reviews-v2'));
  assert.equal(routeOf(cfg, request('reviews-v1'), 0.95), C('reviews-v1'));
});

test('PathPrefix matches whole path segments: /api takes /api and /api/x, never /apix', () => {
  const cfg = cfgOf(
    httpRoute('paths', {
      parentRefs: [parent('reviews')],
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/api' } }], backendRefs: [backend('reviews-v2')] },
        { backendRefs: [backend('reviews-v1')] },
      ],
    }),
  );
  assert.equal(routeOf(cfg, request('reviews', '/api')), C('reviews-v2'));
  assert.equal(routeOf(cfg, request('reviews', '/api/x?q=1')), C('reviews-v2'));
  assert.equal(routeOf(cfg, request('reviews', '/apix')), C('reviews-v1'));
});

test("precedence across rules and routes: Exact path, then the longest prefix, then method, then most headers, then most query params, then route order", () => {
  const cfg = cfgOf(
    // Route "a" comes first by name, but its catch-all loses to every more specific match of "b".
    httpRoute('a', { parentRefs: [parent('reviews')], rules: [{ backendRefs: [backend('reviews')] }, { matches: [{ path: { type: 'PathPrefix', value: '/shop' }, headers: [{ name: 'x-a', value: '1' }] }], backendRefs: [backend('reviews-v1')] }] }),
    httpRoute('b', {
      parentRefs: [parent('reviews')],
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/shop' } }], backendRefs: [backend('reviews-v2')] },
        { matches: [{ path: { type: 'Exact', value: '/shop/cart' } }], backendRefs: [backend('reviews-v1')] },
        { matches: [{ path: { type: 'PathPrefix', value: '/shop/items' }, method: 'POST' }], backendRefs: [backend('reviews-v1')] },
        { matches: [{ path: { type: 'PathPrefix', value: '/shop/items' } }], backendRefs: [backend('reviews')] },
      ],
    }),
  );
  assert.equal(routeOf(cfg, request('reviews', '/shop/cart')), C('reviews-v1'), 'Exact first');
  assert.equal(routeOf(cfg, request('reviews', '/shop/items/1', [], 'POST')), C('reviews-v1'), 'a method match before one without, same prefix');
  assert.equal(routeOf(cfg, request('reviews', '/shop/items/1')), C('reviews'), 'the longer prefix');
  assert.equal(routeOf(cfg, request('reviews', '/shop/x', ['x-a', '1'])), C('reviews-v1'), 'same prefix: the one with more header matches, though in a later route');
  assert.equal(routeOf(cfg, request('reviews', '/shop/x')), C('reviews-v2'));
  assert.equal(routeOf(cfg, request('reviews', '/other')), C('reviews'));
});

test('matches: header and query parameter, exact and RegularExpression; a request that matches no rule of the Service gets 404', () => {
  const cfg = cfgOf(
    httpRoute('m', {
      parentRefs: [parent('reviews')],
      rules: [
        { matches: [{ headers: [{ name: 'X-User', value: 'jason' }] }], backendRefs: [backend('reviews-v2')] },
        { matches: [{ queryParams: [{ type: 'RegularExpression', name: 'v', value: '[0-9]+' }] }], backendRefs: [backend('reviews-v1')] },
      ],
    }),
  );
  assert.equal(routeOf(cfg, request('reviews', '/', ['x-user', 'jason'])), C('reviews-v2'));
  assert.equal(routeOf(cfg, request('reviews', '/?v=12')), C('reviews-v1'));
  assert.equal(routeOf(cfg, request('reviews', '/?v=x')), '404 no_route');
});

test('filters: header modifiers on the request and the response, per rule and per backend', () => {
  const cfg = cfgOf(
    httpRoute('h', {
      parentRefs: [parent('reviews')],
      rules: [
        {
          filters: [
            { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Set', value: 'new' }], add: [{ name: 'x-add', value: 'more' }], remove: ['x-secret'] } },
            { type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'x-by', value: 'mesh' }], remove: ['server'] } },
          ],
          backendRefs: [backend('reviews-v1', 80, { filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { add: [{ name: 'x-backend', value: 'v1' }] } }] })],
        },
      ],
    }),
  );
  const s = simulate(cfg, request('reviews', '/', ['x-set', 'old', 'x-add', 'one', 'x-secret', 's']));
  assert.equal(s.kind, 'forward');
  if (s.kind !== 'forward') return;
  assert.deepEqual(pairs(s.head.headers).sort(), ['x-add: more', 'x-add: one', 'x-backend: v1', 'x-set: new']);
  assert.deepEqual(pairs(s.responseHeaders(['server', 'app', 'content-type', 'text/plain'])).sort(), ['content-type: text/plain', 'x-by: mesh']);
});

test('URLRewrite: ReplacePrefixMatch keeps what follows the prefix, ReplaceFullPath replaces the path, hostname the authority', () => {
  const cfg = cfgOf(
    httpRoute('rw', {
      parentRefs: [parent('reviews')],
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/old' } }], filters: [{ type: 'URLRewrite', urlRewrite: { hostname: 'new.example', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' } } }], backendRefs: [backend('reviews-v1')] },
        { matches: [{ path: { type: 'PathPrefix', value: '/strip' } }], filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } }], backendRefs: [backend('reviews-v1')] },
        { matches: [{ path: { type: 'PathPrefix', value: '/full' } }], filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplaceFullPath', replaceFullPath: '/one' } } }], backendRefs: [backend('reviews-v1')] },
      ],
    }),
  );
  const up = (path: string) => {
    const s = simulate(cfg, request('reviews', path));
    assert.equal(s.kind, 'forward', JSON.stringify(s));
    return s.kind === 'forward' ? `${s.head.authority} ${s.head.path}${s.head.query ? `?${s.head.query}` : ''}` : '';
  };
  assert.equal(up('/old/a/b?q=1'), 'new.example /new/a/b?q=1');
  assert.equal(up('/old'), 'new.example /new');
  assert.equal(up('/strip/x'), 'reviews /x');
  assert.equal(up('/strip'), 'reviews /');
  assert.equal(up('/full/x/y'), 'reviews /one');
});

test('RequestRedirect: scheme, hostname, port, path and status code (302 by default)', () => {
  const cfg = cfgOf(
    httpRoute('redir', {
      parentRefs: [parent('reviews')],
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/moved' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'elsewhere.example', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/here' } } }] },
        { matches: [{ path: { type: 'Exact', value: '/secure' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', statusCode: 301 } }] },
        { matches: [{ path: { type: 'Exact', value: '/port' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { port: 8443 } }] },
      ],
    }),
  );
  const loc = (path: string) => {
    const s = simulate(cfg, request('reviews', path));
    assert.equal(s.kind, 'local', JSON.stringify(s));
    return s.kind === 'local' ? `${s.status} ${s.headers.location}` : '';
  };
  assert.equal(loc('/moved/a?x=1'), '302 http://elsewhere.example/here/a?x=1');
  assert.equal(loc('/secure'), '301 https://reviews/secure');
  assert.equal(loc('/port'), '302 http://reviews:8443/port');
});

test('a rule with no backend, or backends that all weigh 0, answers 500', () => {
  const cfg = cfgOf(httpRoute('none', { parentRefs: [parent('reviews')], rules: [{ matches: [{ path: { type: 'Exact', value: '/a' } }] }, { backendRefs: [backend('reviews-v1', 80, { weight: 0 })] }] }));
  for (const p of ['/a', '/b']) {
    const s = simulate(cfg, request('reviews', p));
    assert.equal(s.kind === 'local' && s.status, 500, JSON.stringify(s));
  }
});

test('timeouts and retry: request is the route timeout, backendRequest the per-try timeout; retry attempts and codes', () => {
  const cfg = cfgOf(httpRoute('t', { parentRefs: [parent('reviews')], rules: [{ timeouts: { request: '3s', backendRequest: '1s' }, retry: { attempts: 4, codes: [500, 502] }, backendRefs: [backend('reviews-v1')] }] }));
  const r = [...cfg.routes.get('outbound')!.exact.get('reviews')!.routes][0];
  assert.equal(r.timeoutMs, 3000);
  assert.equal(r.retry?.numRetries, 4);
  assert.equal(r.retry?.perTryTimeoutMs, 1000);
  assert.deepEqual([...(r.retry?.retriableStatusCodes ?? [])].sort(), [500, 502]);
  // No retry and no backendRequest: Istio's default retry policy, as for a VirtualService.
  const d = [...cfgOf(httpRoute('d', { parentRefs: [parent('reviews')], rules: [{ backendRefs: [backend('reviews-v1')] }] })).routes.get('outbound')!.exact.get('reviews')!.routes][0];
  assert.equal(d.retry?.numRetries, 2);
});

test('RequestMirror: a copy to the mirror backend, by its percent', () => {
  const cfg = cfgOf(httpRoute('mirror', { parentRefs: [parent('reviews')], rules: [{ filters: [{ type: 'RequestMirror', requestMirror: { backendRef: backend('reviews-v2'), percent: 25 } }], backendRefs: [backend('reviews-v1')] }] }));
  const r = [...cfg.routes.get('outbound')!.exact.get('reviews')!.routes][0];
  assert.deepEqual(r.mirrors?.map((m) => [m.cluster, m.fraction]), [[C('reviews-v2'), 0.25]]);
  assert.ok(cfg.clusters.has(C('reviews-v2')));
});

test('a consumer route (another namespace) applies to its own namespace\'s clients, before the producer route; others get the producer\'s', () => {
  // The consumer's backend is in its own namespace here (the producer's works too: see below).
  const ws = [...workloads, workload('client-c', { namespace: 'c', port: 44000 }), workload('client-d', { namespace: 'd', port: 45000 }), workload('reviews-c', { namespace: 'c', service: 'reviews-c', port: 44100 })];
  const mesh = meshOf(
    [
      httpRoute('producer', { parentRefs: [parent('reviews')], rules: [{ backendRefs: [backend('reviews-v1')] }] }),
      httpRoute('consumer', { parentRefs: [parent('reviews', { namespace: 'default' })], rules: [{ backendRefs: [backend('reviews-c')] }] }, 'c'),
    ],
    ws,
  );
  assert.equal(routeOf(sidecarSnapshot(mesh, ws[4]), request('reviews.default')), C('reviews-c', 80, 'c'));
  assert.equal(routeOf(sidecarSnapshot(mesh, ws[5]), request('reviews.default')), C('reviews-v1'));
  assert.equal(routeOf(sidecarSnapshot(mesh, client), request('reviews')), C('reviews-v1'));
});

test('a parentRef port limits the route to that port of the Service; a Gateway parent attaches the route to nothing here', () => {
  const multi = workload('api', { service: 'api', port: 46000, ports: [{ name: 'http', port: 80, inboundPort: 46000, appPort: 46001 }, { name: 'http-admin', port: 9090, inboundPort: 46002, appPort: 46003 }] });
  const ws = [...workloads, multi];
  const mesh = meshOf(
    [
      httpRoute('admin', { parentRefs: [parent('api', { port: 9090 })], rules: [{ backendRefs: [backend('reviews-v1')] }] }),
      httpRoute('gw', { parentRefs: [{ name: 'my-gateway' }], rules: [{ backendRefs: [backend('reviews-v2')] }] }),
    ],
    ws,
  );
  const cfg = sidecarSnapshot(mesh, client);
  assert.equal(routeOf(cfg, request('api:9090')), C('reviews-v1'));
  assert.equal(routeOf(cfg, request('api')), C('api'));
  assert.equal(routeOf(cfg, request('reviews')), C('reviews'));
});

test('GRPCRoute: a method match is a match on the gRPC path; service only, method only, and headers', () => {
  const grpc = workload('greeter', { service: 'greeter', port: 47000, ports: [{ name: 'grpc', port: 50051, inboundPort: 47000, appPort: 47001 }] });
  const v2 = workload('greeter-v2', { service: 'greeter-v2', port: 47100, ports: [{ name: 'grpc', port: 50051, inboundPort: 47100, appPort: 47101 }] });
  const ws = [...workloads, grpc, v2];
  const G = (name: string) => C(name, 50051);
  const cfg = sidecarSnapshot(
    meshOf(
      [
        grpcRoute('greeter', {
          parentRefs: [parent('greeter', { port: 50051 })],
          rules: [
            { matches: [{ method: { service: 'helloworld.Greeter', method: 'SayHello' } }], backendRefs: [backend('greeter-v2', 50051)] },
            { matches: [{ method: { method: 'Ping' } }, { headers: [{ name: 'x-canary', value: 'yes' }] }], backendRefs: [backend('greeter-v2', 50051)] },
            { matches: [{ method: { service: 'helloworld.Greeter' } }], backendRefs: [backend('greeter', 50051)] },
          ],
        }),
      ],
      ws,
    ),
    client,
  );
  const call = (path: string, headers: string[] = []) => routeOf(cfg, request('greeter:50051', path, ['content-type', 'application/grpc', ...headers], 'POST'));
  assert.equal(call('/helloworld.Greeter/SayHello'), G('greeter-v2'));
  assert.equal(call('/helloworld.Greeter/SayBye'), G('greeter'));
  assert.equal(call('/other.Service/Ping'), G('greeter-v2'));
  assert.equal(call('/other.Service/Else', ['x-canary', 'yes']), G('greeter-v2'));
  assert.equal(call('/other.Service/Else'), '404 no_route');
});

test('the Gateway API\'s defaults: a parentRef of kind Service without group "" is no Service (its group is the Gateway API\'s); of two header matches with one name, the first counts', () => {
  const cfg = cfgOf(
    httpRoute('nogroup', { parentRefs: [{ kind: 'Service', name: 'reviews' }], rules: [{ backendRefs: [backend('reviews-v2')] }] }),
    httpRoute('dup', {
      parentRefs: [parent('reviews-v1')],
      rules: [
        { matches: [{ headers: [{ name: 'x-a', value: '1' }, { name: 'X-A', value: '2' }] }], backendRefs: [backend('reviews-v2')] },
        { backendRefs: [backend('reviews-v1')] },
      ],
    }),
  );
  assert.equal(routeOf(cfg, request('reviews')), C('reviews'));
  assert.equal(routeOf(cfg, request('reviews-v1', '/', ['x-a', '1'])), C('reviews-v2'));
  assert.equal(routeOf(cfg, request('reviews-v1', '/', ['x-a', '2'])), C('reviews-v1'));
});

test('a backend in another namespace needs no ReferenceGrant (GEP-1294, as Istio): the canonical consumer route, to the producer\'s Service, works; a grant changes nothing', () => {
  const ws = [...workloads, workload('store-reviews', { namespace: 'store', service: 'reviews', port: 44200 }), workload('shop-client', { namespace: 'shop', port: 44300 })];
  const front = workload('front', { namespace: 'shop', service: 'front', port: 44400 });
  const route = httpRoute(
    'to-store',
    { parentRefs: [parent('front')], rules: [{ filters: [{ type: 'RequestMirror', requestMirror: { backendRef: backend('reviews', 80, { namespace: 'store' }) } }], backendRefs: [backend('reviews', 80, { namespace: 'store' })] }] },
    'shop',
  );
  const grant = { apiVersion: 'gateway.networking.k8s.io/v1beta1', kind: 'ReferenceGrant', metadata: { name: 'g', namespace: 'store' }, spec: { from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'other' }], to: [{ group: '', kind: 'Service', name: 'nothing' }] } };
  for (const config of [[route], [route, grant]]) {
    const cfg = sidecarSnapshot(meshOf(config, [...ws, front]), ws[5]);
    assert.equal(routeOf(cfg, request('front')), C('reviews', 80, 'store'));
    assert.equal([...cfg.routes.get('outbound')!.exact.get('front')!.routes][0].mirrors?.length, 1);
  }
});

test('review: a trailing "/" of a PathPrefix is ignored; ReplacePrefixMatch "" is "/"; a prefix "/" replaced keeps the rest; a route with no rules answers 500', () => {
  const cfg = cfgOf(
    httpRoute('r', {
      parentRefs: [parent('reviews')],
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/foo/' } }], filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '' } } }], backendRefs: [backend('reviews-v1')] },
        { matches: [{ path: { type: 'PathPrefix', value: '/' } }], filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/xyz' } } }], backendRefs: [backend('reviews-v2')] },
      ],
    }),
    httpRoute('empty', { parentRefs: [parent('reviews-v1')] }),
  );
  const up = (path: string) => {
    const s = simulate(cfg, request('reviews', path));
    return s.kind === 'forward' ? `${s.cluster.split('|')[3].split('.')[0]} ${s.head.path}` : JSON.stringify(s);
  };
  assert.equal(up('/foo'), 'reviews-v1 /');
  assert.equal(up('/foo/bar'), 'reviews-v1 /bar');
  assert.equal(up('/foox'), 'reviews-v2 /xyz/foox');
  assert.equal(up('/'), 'reviews-v2 /xyz');
  const e = simulate(cfg, request('reviews-v1'));
  assert.equal(e.kind === 'local' && e.status, 500);
});

test('review: GRPCRoute precedence is Istio\'s (a service before a method alone); a regex is grouped; GRPCRoutes and HTTPRoutes on one Service are not merged (the GRPCRoutes apply)', () => {
  const cfg = cfgOf(
    grpcRoute('g', {
      parentRefs: [parent('reviews')],
      rules: [
        { matches: [{ method: { method: 'SayHello' } }], backendRefs: [backend('reviews-v2')] },
        { matches: [{ method: { service: 'helloworld.Greeter' } }], backendRefs: [backend('reviews-v1')] },
        { matches: [{ method: { type: 'RegularExpression', service: 'admin\\.Svc', method: 'Get|List' } }], backendRefs: [backend('reviews-v2')] },
      ],
    }),
    httpRoute('h', { parentRefs: [parent('reviews')], rules: [{ backendRefs: [backend('reviews-v2')] }] }),
  );
  const call = (path: string) => routeOf(cfg, request('reviews', path, ['content-type', 'application/grpc'], 'POST'));
  assert.equal(call('/helloworld.Greeter/SayHello'), C('reviews-v1'));
  assert.equal(call('/other.Svc/SayHello'), C('reviews-v2'));
  assert.equal(call('/admin.Svc/List'), C('reviews-v2'));
  assert.equal(call('/x/List'), '404 no_route', 'the regex is one path pattern, not two alternatives');
  assert.equal(call('/other.Svc/X'), '404 no_route', 'the HTTPRoute does not apply beside the GRPCRoute');
});

test('review: a port-limited consumer route leaves the producer routes on the other ports; a user VirtualService cannot pose as consumer routes; a retry backoff of 0s is no NACK', () => {
  const api = workload('api', { service: 'api', port: 46000, ports: [{ name: 'http', port: 80, inboundPort: 46000, appPort: 46001 }, { name: 'http-admin', port: 9090, inboundPort: 46002, appPort: 46003 }] });
  const clientC = workload('client-c', { namespace: 'c', port: 44000 });
  const ws = [...workloads, api, clientC];
  const mesh = meshOf(
    [
      httpRoute('producer', { parentRefs: [parent('api')], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/public' } }], retry: { attempts: 1, backoff: '0s' }, backendRefs: [backend('api')] }] }),
      httpRoute('consumer', { parentRefs: [parent('api', { namespace: 'default', port: 9090 })], rules: [{ backendRefs: [backend('reviews-v1', 80, { namespace: 'default' })] }] }, 'c'),
      { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'consumer.x', namespace: 'evil', annotations: { 'weft.io/from-routes': 'HTTPRoute evil/x' } }, spec: { hosts: ['reviews.default.svc.cluster.local'], http: [{ route: [{ destination: { host: 'reviews-v2.default.svc.cluster.local' } }] }] } },
      { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'owner', namespace: 'default' }, spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews-v1' } }] }] } },
    ],
    ws,
  );
  mesh.virtualServices.forEach((v) => Object.assign(v, { created: v.metadata.name === 'owner' ? 1 : 2 }));
  const cfg = sidecarSnapshot(mesh, clientC); // a NACK throws
  assert.equal(routeOf(cfg, request('api.default:9090')), C('reviews-v1'));
  assert.equal(routeOf(cfg, request('api.default', '/public/x')), C('api'));
  assert.equal(routeOf(cfg, request('api.default', '/admin')), '404 no_route', "the producer route's matches still hold on port 80");
  assert.equal(routeOf(sidecarSnapshot(mesh, client), request('reviews')), C('reviews-v1'), 'the older VirtualService applies');
});

test('review: a GRPCRoute on one port of a Service leaves its HTTPRoutes to the other ports', () => {
  const ports = (base: number) => [{ name: 'http', port: 80, inboundPort: base, appPort: base + 1 }, { name: 'grpc', port: 9090, inboundPort: base + 2, appPort: base + 3 }];
  const api = workload('api', { service: 'api', port: 46000, ports: ports(46000) });
  const v2 = workload('api-v2', { service: 'api-v2', port: 47000, ports: ports(47000) });
  const cfg = sidecarSnapshot(
    meshOf(
      [
        httpRoute('web', { parentRefs: [parent('api', { port: 80 })], rules: [{ backendRefs: [backend('api-v2', 80)] }] }),
        grpcRoute('rpc', { parentRefs: [parent('api', { port: 9090 })], rules: [{ matches: [{ method: { service: 'x.Y' } }], backendRefs: [backend('api-v2', 9090)] }] }),
      ],
      [...workloads, api, v2],
    ),
    client,
  );
  assert.equal(routeOf(cfg, request('api')), C('api-v2'));
  assert.equal(routeOf(cfg, request('api:9090', '/x.Y/Z', [], 'POST')), C('api-v2', 9090));
  assert.equal(routeOf(cfg, request('api:9090', '/other/Z', [], 'POST')), '404 no_route', 'the HTTPRoute is not merged into the GRPCRoutes on their port');
});

test('CORS filter: an allowed origin\'s preflight is answered, a wildcard host matches any labels to its left (the Gateway API\'s rule), maxAge is 5 s unless set', async () => {
  const { corsOutcome } = await import('../../src/proxy/http/cors.ts');
  const { matchRoute } = await import('../../src/proxy/http/forward.ts');
  const cors = { allowOrigins: ['https://shop.example', 'https://*.dev.example'], allowMethods: ['GET', 'POST'], allowHeaders: ['x-token'], exposeHeaders: ['x-trace'], allowCredentials: true };
  const cfg = cfgOf(httpRoute('cors', { parentRefs: [parent('reviews')], rules: [{ filters: [{ type: 'CORS', cors }], backendRefs: [backend('reviews-v1')] }] }));
  const outcome = (method: string, headers: string[]) => {
    const head: RequestHead = { method, authority: 'reviews', path: '/', query: '', headers, hasBody: false, protocol: 'HTTP/1.1' };
    return corsOutcome(matchRoute(cfg, 'outbound', head).cors!, head);
  };
  assert.deepEqual(outcome('OPTIONS', ['origin', 'https://shop.example', 'access-control-request-method', 'POST']), {
    kind: 'preflight',
    headers: ['access-control-allow-origin', 'https://shop.example', 'access-control-allow-credentials', 'true', 'access-control-allow-methods', 'GET,POST', 'access-control-allow-headers', 'x-token', 'access-control-max-age', '5'],
  });
  assert.equal(outcome('GET', ['origin', 'https://a.b.dev.example']).kind, 'actual', 'the wildcard takes several labels');
  assert.equal(outcome('GET', ['origin', 'https://dev.example']).kind, 'none', 'but at least one');
  assert.equal(outcome('GET', ['origin', 'https://evil.example']).kind, 'none');
  const any = cfgOf(httpRoute('cors', { parentRefs: [parent('reviews')], rules: [{ filters: [{ type: 'CORS', cors: { allowOrigins: ['*'], maxAge: 60 } }], backendRefs: [backend('reviews-v1')] }] }));
  const head: RequestHead = { method: 'OPTIONS', authority: 'reviews', path: '/', query: '', headers: ['origin', 'https://x.example', 'access-control-request-method', 'GET'], hasBody: false, protocol: 'HTTP/1.1' };
  const o = corsOutcome(matchRoute(any, 'outbound', head).cors!, head);
  assert.equal(o.kind, 'preflight');
  assert.deepEqual(o.kind === 'preflight' && o.headers.slice(-2), ['access-control-max-age', '60']);
});
