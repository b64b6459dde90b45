// RE2 in both places: every regex `weft apply` accepts loads in the sidecar (no NACK) and matches
// as RE2 (Envoy's engine) does, and no pattern can make matching slow.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkResource } from '../../src/api/index.ts';
import { meshOf, request, routeOf, sidecarSnapshot, workload } from '../snapshot.ts';
import { decide } from '../../src/proxy/http/forward.ts';

const workloads = [
  workload('reviews-v1', { service: 'reviews', port: 41000, labels: { version: 'v1' } }),
  workload('reviews-v2', { service: 'reviews', port: 42000, labels: { version: 'v2' } }),
  workload('client', { port: 43000 }),
];
const client = workloads[2];
const V1 = 'outbound|80|v1|reviews.default.svc.cluster.local';
const V2 = 'outbound|80|v2|reviews.default.svc.cluster.local';

function config(match: object): object[] {
  return [
    { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews' }, spec: { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] } },
    { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews' }, spec: { hosts: ['reviews'], http: [{ match: [match], route: [{ destination: { host: 'reviews', subset: 'v2' } }] }, { route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] } },
  ];
}

const accepted = (c: object[]) => {
  try {
    c.forEach((r, i) => checkResource(r, `config[${i}]`));
    return true;
  } catch {
    return false;
  }
};

// Patterns from the issue (each used to pass `weft apply` and then be NACKed, or mean something
// else than in Envoy), RE2-only syntax, and ordinary ones.
const PATTERNS: { re: string; yes: string[]; no: string[] }[] = [
  { re: '(?i)/api/.*', yes: ['/API/users', '/api/x'], no: ['/apix'] },
  { re: '/users/(?P<id>[0-9]+)', yes: ['/users/42'], no: ['/users/x'] },
  { re: '/[[:digit:]]+', yes: ['/123'], no: ['/:d', '/digit'] },
  { re: '/\\pL+', yes: ['/héllo'], no: ['/123'] },
  { re: '/\\Qa.b\\E', yes: ['/a.b'], no: ['/axb'] },
  { re: '/v[0-9]+/.*', yes: ['/v1/x', '/v22/'], no: ['/v/x', '/x/v1/x'] },
  { re: '/a|/b', yes: ['/a', '/b'], no: ['/ab'] },
];

for (const p of PATTERNS) {
  test(`regex ${JSON.stringify(p.re)}: accepted by weft apply, loaded by the sidecar, matched as RE2 (whole path)`, () => {
    for (const where of ['uri', 'header', 'query'] as const) {
      const match = where === 'uri' ? { uri: { regex: p.re } } : where === 'header' ? { headers: { 'x-v': { regex: p.re } } } : { queryParams: { v: { regex: p.re } } };
      const c = config(match);
      assert.ok(accepted(c), `${where}: weft apply accepts it`);
      const cfg = sidecarSnapshot(meshOf(c, workloads), client); // throws if the sidecar NACKs
      const req = (v: string) => (where === 'uri' ? request('reviews', v) : where === 'header' ? request('reviews', '/', ['x-v', v]) : request('reviews', `/?v=${encodeURIComponent(v)}`));
      for (const v of p.yes) assert.equal(routeOf(cfg, req(v)), V2, `${where} ${JSON.stringify(v)} matches`);
      for (const v of p.no) assert.equal(routeOf(cfg, req(v)), V1, `${where} ${JSON.stringify(v)} does not match`);
    }
  });
}

test('what RE2 refuses, weft apply refuses too (lookaround, back-references), naming the field', () => {
  for (const re of ['/a(?=b)', '(a)\\1', '/x(?<!y)']) {
    assert.throws(() => config({ uri: { regex: re } }).forEach((r, i) => checkResource(r, `config[${i}]`)), /spec\.http\[0\]\.match\[0\]\.uri\.regex: invalid RE2 regex/);
  }
});

test('a pathological regex cannot slow a request: matching stays linear in the path', (t) => {
  const cfg = sidecarSnapshot(meshOf(config({ uri: { regex: '/(x+x+)+y' } }), workloads), client);
  const path = `/${'x'.repeat(4000)}`; // a backtracking engine would never finish this
  decide(cfg, 'outbound', request('reviews', path), 0.5);
  const runs = 20;
  const start = performance.now();
  for (let i = 0; i < runs; i++) assert.equal(decide(cfg, 'outbound', request('reviews', path), 0.5).clusterName, V1);
  const perRequest = (performance.now() - start) / runs;
  t.diagnostic(`route decision with /(x+x+)+y over a ${path.length}-byte path: ${perRequest.toFixed(3)} ms`);
  assert.ok(perRequest < 10, `${perRequest.toFixed(1)} ms per request (target 1 ms; the bound is generous for a loaded machine)`);
});
