// A connection's addresses as the access log writes them (src/proxy/net/addresses.ts): made once
// per connection and kept in its holder, never another connection's; IPv6 in brackets, an IPv4-mapped
// client as plain IPv4, as Envoy writes them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { hostPort, hostPortsOf } from '../../src/proxy/net/addresses.ts';

test('hostPort writes IPv4, IPv6 (in brackets) and IPv4-mapped addresses as Envoy does; the address alone without a port', () => {
  assert.equal(hostPort('10.0.0.1', 8080), '10.0.0.1:8080');
  assert.equal(hostPort('::1', 8080), '[::1]:8080');
  assert.equal(hostPort('::ffff:10.0.0.1', 8080), '10.0.0.1:8080');
  assert.equal(hostPort('fe80::1', undefined), 'fe80::1');
});

test("each connection's addresses are its own, kept in its holder from the first read (the same object), and still there after it closed; a socket not yet connected is not kept", async () => {
  const accepted: net.Socket[] = [];
  const server = net.createServer((s) => accepted.push(s));
  server.listen(0, '::1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const clients: net.Socket[] = [];
  try {
    const early = new net.Socket();
    const earlyHolder = { hostPorts: undefined };
    const before = hostPortsOf(earlyHolder, early);
    assert.deepEqual(before, { local: ':0', remote: ':0' });
    for (let i = 0; i < 2; i++) {
      const c = net.connect(port, '::1');
      clients.push(c);
      await once(c, 'connect');
    }
    await new Promise<void>((resolve) => (accepted.length === 2 ? resolve() : server.on('connection', () => accepted.length === 2 && resolve())));
    const holders = accepted.map(() => ({ hostPorts: undefined }));
    const seen = accepted.map((s, i) => hostPortsOf(holders[i]!, s));
    for (const [i, s] of accepted.entries()) {
      assert.deepEqual(seen[i], { local: `[::1]:${port}`, remote: `[::1]:${s.remotePort}` });
      assert.equal(hostPortsOf(holders[i]!, s), seen[i], 'kept: the same object');
    }
    assert.notEqual(seen[0]!.remote, seen[1]!.remote, "two connections' client ports");
    // The client side of the first: its own ends, the other way round.
    const peer = accepted.findIndex((s) => s.remotePort === clients[0]!.localPort);
    assert.ok(peer >= 0);
    assert.deepEqual(hostPortsOf({ hostPorts: undefined }, clients[0]), { local: seen[peer]!.remote, remote: `[::1]:${port}` });
    clients[0]!.destroy();
    await once(accepted[peer]!, 'close');
    assert.equal(hostPortsOf(holders[peer]!, accepted[peer]), seen[peer], 'after the close: still the kept one');
    // Not connected then: made again once it is.
    assert.notEqual(hostPortsOf(earlyHolder, early), before);
  } finally {
    for (const c of clients) c.destroy();
    for (const s of accepted) s.destroy();
    server.close();
  }
});
