// Istio's protocol selection, as a table: appProtocol first, else the port name's prefix, else
// unspecified (detected). https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type PortHandling, type Protocol, portHandling, selectProtocol } from '../../src/control/model/protocol.ts';

const table: [port: { name?: string; appProtocol?: string }, protocol: Protocol, handling: PortHandling][] = [
  // The port name: "<protocol>" or "<protocol>-<suffix>", case-insensitive.
  [{ name: 'http' }, 'HTTP', 'http'],
  [{ name: 'http-web' }, 'HTTP', 'http'],
  [{ name: 'HTTP-Web' }, 'HTTP', 'http'],
  [{ name: 'http2' }, 'HTTP2', 'http2'],
  [{ name: 'http2-api' }, 'HTTP2', 'http2'],
  [{ name: 'grpc' }, 'GRPC', 'http2'],
  [{ name: 'grpc-api' }, 'GRPC', 'http2'],
  [{ name: 'grpc-web' }, 'GRPC-Web', 'http2'],
  [{ name: 'grpc-web-ui' }, 'GRPC-Web', 'http2'],
  [{ name: 'https' }, 'HTTPS', 'tcp'],
  [{ name: 'tcp' }, 'TCP', 'tcp'],
  [{ name: 'tcp-db' }, 'TCP', 'tcp'],
  [{ name: 'tls-ingress' }, 'TLS', 'tcp'],
  [{ name: 'mongo' }, 'Mongo', 'tcp'],
  [{ name: 'mysql-primary' }, 'MySQL', 'tcp'],
  [{ name: 'redis' }, 'Redis', 'tcp'],
  [{ name: 'udp-dns' }, 'UDP', 'udp'],
  // Only a prefix up to the first "-" counts: "web-http" and "httpx" are not HTTP.
  [{ name: 'web-http' }, 'Unsupported', 'detect'],
  [{ name: 'httpx' }, 'Unsupported', 'detect'],
  [{ name: 'web' }, 'Unsupported', 'detect'],
  [{ name: '' }, 'Unsupported', 'detect'],
  [{}, 'Unsupported', 'detect'],
  // appProtocol comes first, whatever the name says.
  [{ name: 'api', appProtocol: 'grpc' }, 'GRPC', 'http2'],
  [{ name: 'http-web', appProtocol: 'tcp' }, 'TCP', 'tcp'],
  [{ name: 'tcp-db', appProtocol: 'HTTP' }, 'HTTP', 'http'],
  [{ name: 'x', appProtocol: 'kubernetes.io/h2c' }, 'HTTP2', 'http2'],
  [{ name: 'x', appProtocol: 'kubernetes.io/ws' }, 'HTTP', 'http'],
  [{ name: 'x', appProtocol: 'kubernetes.io/wss' }, 'HTTPS', 'tcp'],
  // As in Istio, an appProtocol it does not know is not a fallback to the name: detected.
  [{ name: 'http-web', appProtocol: 'postgresql' }, 'Unsupported', 'detect'],
  // Review: names that are properties of every JavaScript object are no protocols either (a port
  // named "constructor" was taken for opaque TCP, its HTTP never routed).
  [{ name: 'constructor' }, 'Unsupported', 'detect'],
  [{ name: 'constructor-api' }, 'Unsupported', 'detect'],
  [{ name: 'x', appProtocol: 'constructor' }, 'Unsupported', 'detect'],
  [{ name: 'x', appProtocol: '__proto__' }, 'Unsupported', 'detect'],
  [{ name: 'x', appProtocol: 'toString' }, 'Unsupported', 'detect'],
];

for (const [port, protocol, handling] of table) {
  test(`protocol of ${JSON.stringify(port)} is ${protocol} (${handling})`, () => {
    assert.equal(selectProtocol(port), protocol);
    assert.equal(portHandling(port), handling);
  });
}
