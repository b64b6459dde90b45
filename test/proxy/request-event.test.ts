// A request's event has one shape (events.ts requestEvent): the same fields in the same order
// whatever the exchange had, so that the subscribers' reads of it stay monomorphic. A field made
// conditional (a spread, an `if`) would give events of several shapes again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requestEvent } from '../../src/proxy/telemetry/events.ts';

test("a request's event has the same fields in the same order, with or without an exchange's detail", () => {
  const bare = requestEvent('-', 400, 'bad_request', undefined, undefined, undefined, undefined, undefined);
  const full = requestEvent('outbound|80||a.default.svc.cluster.local', 200, undefined, '127.0.0.1:8080', 1.5, 'spiffe://cluster.local/ns/default/sa/a', undefined, {
    route: 'default',
    operation: 'op',
    bytesReceived: 1,
    bytesSent: 2,
    upstreamLocal: '127.0.0.1:40000',
    upstreamPeer: 'spiffe://cluster.local/ns/default/sa/b',
    upstreamWorkload: 'b',
    responseHeaders: [':status', '200'],
    responseTrailers: ['grpc-status', '0'],
    grpcStatus: '0',
    requestMessages: 1,
    responseMessages: 1,
    authzPolicy: 'ns[default]-policy[p]-rule[0]',
    transportFailure: 'x',
  });
  assert.deepEqual(Object.keys(bare), Object.keys(full));
  assert.equal(bare.status, 400);
  assert.equal(bare.reason, 'bad_request');
  assert.equal(full.route, 'default');
  assert.equal(full.responseMessages, 1);
});
