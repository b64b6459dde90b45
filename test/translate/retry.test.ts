// Retry policies: Istio's translation (its default policy, attempts 0, retryOn with status codes,
// perTryTimeout), loaded by the sidecar, and the decisions the sidecar makes with them. No sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchRoute } from '../../src/proxy/http/forward.ts';
import { RetryBudgets, backoffMs, retriableFailure, retriableResponse } from '../../src/proxy/http/retry.ts';
import { meshOf, request, sidecarSnapshot, workload } from '../snapshot.ts';

const workloads = [workload('reviews-v1', { service: 'reviews', port: 41000 }), workload('client', { port: 43000 })];
const policyFor = (retries: object | undefined, path = '/') => {
  const vs = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews' }, spec: { hosts: ['reviews'], http: [{ ...(retries ? { retries } : {}), route: [{ destination: { host: 'reviews' } }] }] } };
  return matchRoute(sidecarSnapshot(meshOf([vs], workloads), workloads[1]), 'outbound', request('reviews', path).head).retry;
};

test("no retries in the VirtualService: Istio's default policy (2 retries, other hosts, connect failures, refused streams, 503, gRPC UNAVAILABLE and CANCELLED)", () => {
  const p = policyFor(undefined)!;
  assert.equal(p.numRetries, 2);
  assert.deepEqual([...p.on].sort(), ['cancelled', 'connect-failure', 'refused-stream', 'retriable-status-codes', 'unavailable']);
  assert.deepEqual([...p.retriableStatusCodes], [503]);
  assert.equal(p.otherHosts, true);
  // And the route of a service no VirtualService names has it too.
  const plain = matchRoute(sidecarSnapshot(meshOf([], workloads), workloads[1]), 'outbound', request('reviews').head).retry!;
  assert.equal(plain.numRetries, 2);
});

test('attempts 0 turns retries off; retryOn with status codes and perTryTimeout are carried', () => {
  assert.equal(policyFor({ attempts: 0 }), undefined);
  const p = policyFor({ attempts: 4, retryOn: 'gateway-error,409,reset', perTryTimeout: '250ms' })!;
  assert.equal(p.numRetries, 4);
  assert.deepEqual([...p.on].sort(), ['gateway-error', 'reset', 'retriable-status-codes']);
  assert.deepEqual([...p.retriableStatusCodes], [409]);
  assert.equal(p.perTryTimeoutMs, 250);
});

test('which outcomes are retried, as Envoy decides', () => {
  const dflt = policyFor(undefined)!;
  assert.equal(retriableResponse(dflt, 503, []), true);
  assert.equal(retriableResponse(dflt, 500, []), false);
  assert.equal(retriableResponse(dflt, 200, ['grpc-status', '14']), true, 'gRPC UNAVAILABLE');
  assert.equal(retriableResponse(dflt, 200, ['grpc-status', '13']), false, 'gRPC INTERNAL is not in the default');
  assert.equal(retriableFailure(dflt, 'connect'), true);
  assert.equal(retriableFailure(dflt, 'reset'), false, 'a reset after the request was sent is not retried by default');
  const fivexx = policyFor({ attempts: 2, retryOn: '5xx' })!;
  assert.equal(retriableResponse(fivexx, 500, []), true);
  assert.equal(retriableResponse(fivexx, 404, []), false);
  for (const f of ['connect', 'reset', 'timeout'] as const) assert.equal(retriableFailure(fivexx, f), true, f);
});

test('back-off: full jitter under an interval that doubles, capped at 10x the base', () => {
  const p = policyFor(undefined)!;
  assert.equal(backoffMs(p, 1, 0.999), 24);
  assert.equal(backoffMs(p, 2, 0.999), 49);
  assert.equal(backoffMs(p, 10, 0.999), 249);
  assert.equal(backoffMs(p, 3, 0), 0);
});

test('the retry budget: 20% of the requests of the last 10 s, plus 10 a second', () => {
  const b = new RetryBudgets();
  const t0 = 5_000_000;
  let allowed = 0;
  for (let i = 0; i < 1000; i++) b.request('c', t0);
  for (let i = 0; i < 1000; i++) if (b.tryRetry('c', t0)) allowed++;
  assert.equal(allowed, 300, '0.2 x 1000 + 100');
  assert.equal(b.tryRetry('other', t0), true, 'each cluster has its own');
  // Ten seconds later the window is empty again.
  assert.equal(b.tryRetry('c', t0 + 10_500), true);
});
