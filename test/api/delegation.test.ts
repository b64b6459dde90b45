// VirtualService delegation's merge (src/api/delegation.ts), rule by rule as Istio's
// (pilot/pkg/model/virtualservice.go): when a delegate route's match fits its root route's, what
// the merged match and route are, and which VirtualServices come out.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeDelegates, mergeHTTPRoute } from '../../src/api/delegation.ts';
import type { HTTPMatchRequest, HTTPRoute, VirtualService } from '../../src/api/types.ts';

const route = { destination: { host: 'reviews' } };
const fits = (root: HTTPMatchRequest, leaf: HTTPMatchRequest) => mergeHTTPRoute({ match: [root] }, { match: [leaf], route: [route] }) !== undefined;

describe('a delegate match fits its root match (Istio\'s hasConflict)', () => {
  const uri = (kind: 'exact' | 'prefix' | 'regex', v: string): HTTPMatchRequest => ({ uri: { [kind]: v } });
  const h = (name: string, kind: 'exact' | 'prefix', v: string) => ({ [name]: { [kind]: v } });
  const cases: [string, HTTPMatchRequest, HTTPMatchRequest, boolean][] = [
    ['a prefix within the root prefix', uri('prefix', '/productpage'), uri('prefix', '/productpage/v2'), true],
    ['an exact within the root prefix', uri('prefix', '/productpage/v2'), uri('exact', '/productpage/v2'), true],
    ['a shorter prefix than the root\'s', uri('prefix', '/productpage/v2'), uri('prefix', '/productpage'), false],
    ['an exact under a root exact: only the same', uri('exact', '/a'), uri('exact', '/a'), true],
    ['another exact', uri('exact', '/a'), uri('exact', '/b'), false],
    ['a prefix under a root exact', uri('exact', '/a'), uri('prefix', '/a'), false],
    ['no uri under a root regex', uri('regex', '^/productpage'), {}, true],
    ['a regex under no root uri', {}, uri('regex', '^/productpage'), true],
    ['a prefix under a root regex', uri('regex', '^/productpage'), uri('prefix', '/productpage'), false],
    ['a regex under a root prefix', uri('prefix', '/productpage'), uri('regex', '^/productpage'), false],
    ['a regex under the same root regex', uri('regex', '^/a'), uri('regex', '^/a'), false],
    ['a suffix under a root prefix (Istio knows no suffix there)', uri('prefix', '/a'), { uri: { suffix: '.png' } }, false],
    ['headers: equal', { headers: h('x', 'exact', 'h1') }, { headers: h('x', 'exact', 'h1') }, true],
    ['headers: not equal', { headers: h('x', 'exact', 'h1') }, { headers: h('x', 'exact', 'h2') }, false],
    ['headers: an exact within a prefix', { headers: h('x', 'prefix', 'h1') }, { headers: h('x', 'exact', 'h1-v1') }, true],
    ['headers: a prefix outside a prefix', { headers: h('x', 'prefix', 'h1') }, { headers: h('x', 'prefix', 'h2') }, false],
    ['headers: different names', { headers: h('x', 'exact', 'h1') }, { headers: h('y', 'exact', 'h2') }, true],
    ['headers: a name only an Object has', { headers: h('x', 'exact', 'h1') }, { headers: h('constructor', 'exact', 'h2') }, true],
    ['withoutHeaders: outside the root\'s', { withoutHeaders: h('x', 'prefix', 'h1') }, { withoutHeaders: h('x', 'exact', 'h2') }, false],
    ['queryParams: outside the root\'s', { queryParams: h('q', 'exact', '1') }, { queryParams: h('q', 'exact', '2') }, false],
    ['a method under the root\'s', { method: { exact: 'GET' } }, { method: { exact: 'GET' } }, true],
    ['another method', { method: { exact: 'GET' } }, { method: { exact: 'POST' } }, false],
    ['ignoreUriCase differs', { ignoreUriCase: true }, {}, false],
    ['a port where the root has none', {}, { port: 8080 }, true],
    ['no port where the root has one', { port: 8080 }, {}, true],
    ['another port', { port: 8080 }, { port: 8090 }, false],
    ['sourceLabels: another value', { sourceLabels: { a: 'b' } }, { sourceLabels: { a: 'c' } }, false],
    ['sourceLabels: more of them', { sourceLabels: { a: 'b' } }, { sourceLabels: { a: 'b', c: 'd' } }, true],
    ['sourceNamespace: another', { sourceNamespace: 'test1' }, { sourceNamespace: 'test2' }, false],
    ['sourceNamespace: unset under the root\'s', { sourceNamespace: 'test1' }, {}, false],
    ['gateways: more than the root\'s', { gateways: ['ingress'] }, { gateways: ['ingress', 'mesh'] }, false],
    ['gateways: among the root\'s', { gateways: ['ingress', 'mesh'] }, { gateways: ['mesh'] }, true],
  ];
  for (const [name, root, leaf, want] of cases) test(name, () => assert.equal(fits(root, leaf), want));
});

test('matches merge: each delegate match with every root match it fits; one that fits none drops the route', () => {
  const root: HTTPRoute = { name: 'r', match: [{ name: 'a', uri: { prefix: '/a' }, headers: { x: { exact: '1' } } }, { uri: { prefix: '/b' }, port: 8080, sourceLabels: { app: 'c' } }] };
  const merged = mergeHTTPRoute(root, { name: 'd', match: [{ name: 'm', headers: { y: { exact: '2' } } }], route: [route] });
  assert.deepEqual(merged, {
    name: 'r-d',
    match: [
      { name: 'a-m', uri: { prefix: '/a' }, headers: { x: { exact: '1' }, y: { exact: '2' } } },
      { name: 'm', uri: { prefix: '/b' }, headers: { y: { exact: '2' } }, port: 8080, sourceLabels: { app: 'c' } },
    ],
    route: [route],
  });
  assert.equal(mergeHTTPRoute(root, { match: [{ uri: { prefix: '/a/x' } }, { uri: { prefix: '/c' } }], route: [route] }), undefined);
  // No matches on either side: the other side's.
  assert.deepEqual(mergeHTTPRoute({ match: [{ uri: { prefix: '/a' } }] }, { route: [route] })?.match, [{ uri: { prefix: '/a' } }]);
  assert.deepEqual(mergeHTTPRoute({}, { match: [{ uri: { prefix: '/a' } }], route: [route] })?.match, [{ uri: { prefix: '/a' } }]);
});

test('a delegate route takes from its root what it leaves unset; names join', () => {
  const root: HTTPRoute = { name: 'root', timeout: '3s', retries: { attempts: 1 }, fault: { abort: { httpStatus: 500 } }, headers: { request: { set: { a: 'b' } } }, mirrors: [{ destination: { host: 'm' } }], directResponse: { status: 503 } };
  assert.deepEqual(mergeHTTPRoute(root, { route: [route], timeout: '1s', mirrors: [] }), { name: 'root', route: [route], timeout: '1s', retries: { attempts: 1 }, fault: { abort: { httpStatus: 500 } }, headers: { request: { set: { a: 'b' } } }, mirrors: [{ destination: { host: 'm' } }], directResponse: { status: 503 } });
  assert.equal(mergeHTTPRoute({}, { name: 'd', route: [route] })?.name, 'd');
  assert.equal(mergeHTTPRoute({ name: '' }, { route: [route] })?.name, undefined);
});

test('which VirtualServices come out: roots merged, delegates left out, the rest as they were (the same objects)', () => {
  const vs = (name: string, spec: VirtualService['spec'], namespace = 'default'): VirtualService => ({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace }, spec });
  const plain = vs('plain', { hosts: ['a'], http: [{ route: [route] }] });
  assert.equal(mergeDelegates([plain]).virtualServices[0], plain, 'nothing to merge: the input itself');
  const root = vs('root', { hosts: ['reviews'], http: [{ delegate: { name: 'd', namespace: 'shop' } }, { delegate: { name: 'd', namespace: 'shop' } }] });
  const d = vs('d', { http: [{ route: [{ destination: { host: 'reviews' } }], mirror: { host: 'shadow.other' } }] }, 'shop');
  const { virtualServices } = mergeDelegates([plain, root, d]);
  assert.equal(virtualServices.length, 2);
  assert.equal(virtualServices[0], plain);
  assert.deepEqual(virtualServices[1].spec.http, [0, 1].map(() => ({ route: [{ destination: { host: 'reviews.shop.svc.cluster.local' } }], mirror: { host: 'shadow.other' } })));
  assert.deepEqual(d.spec.http, [{ route: [{ destination: { host: 'reviews' } }], mirror: { host: 'shadow.other' } }], 'the delegate itself is left alone');
  assert.deepEqual(root.spec.http?.[0], { delegate: { name: 'd', namespace: 'shop' } }, 'and so is the root');
});
