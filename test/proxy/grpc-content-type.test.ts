// PURE: which requests the request path takes for gRPC (src/proxy/http/grpc.ts isGrpc): by their
// content-type, as Envoy's Grpc::Common::isGrpcRequestHeaders reads it (application/grpc, or it
// followed by "+", ";" or "-"), in either case; the first content-type decides.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isGrpc } from '../../src/proxy/http/grpc.ts';

test('a request is gRPC by its content-type: application/grpc and its +proto, ;charset and -web forms, in any case; not text/html, application/json, application/grpcx or a bare prefix', () => {
  const yes = ['application/grpc', 'application/grpc+proto', 'application/grpc;charset=utf-8', 'application/grpc-web', 'application/grpc-web+proto', 'Application/GRPC', 'APPLICATION/GRPC+JSON'];
  const no = ['', 'text/html', 'application/json', 'application/grpcx', 'application/grp', 'application/gRPc2', 'application/xgrpc', 'xapplication/grpc', 'application/jrpc', 'application/Grpc.', 'g'.repeat(16)];
  for (const v of yes) assert.equal(isGrpc(['content-type', v]), true, v);
  for (const v of no) assert.equal(isGrpc(['content-type', v]), false, v);
  assert.equal(isGrpc([]), false, 'no content-type');
  assert.equal(isGrpc(['accept', 'application/grpc']), false, 'another header');
  assert.equal(isGrpc(['content-type', 'text/html', 'content-type', 'application/grpc']), false, 'the first content-type decides');
  assert.equal(isGrpc(['x', 'y', 'content-type', 'application/grpc']), true, 'after other headers');
});
