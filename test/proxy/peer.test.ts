// tls/peer.ts: who the verified peer of a connection is, kept on its socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { peerPrincipal, peerWorkload, setPeerPrincipal } from '../../src/proxy/tls/peer.ts';

const PEER = 'spiffe://cluster.local/ns/default/sa/sleep';

test("a socket's peer identity is set whole at the handshake: reading the workload later (telemetry) adds no property to the socket, so every mTLS socket keeps one shape", () => {
  // The workload known at the handshake (what tls/inbound.ts and tls/upstream.ts pass), or none.
  for (const workload of ['sleep', null] as const) {
    const socket = {};
    setPeerPrincipal(socket, PEER, workload);
    const keys = Reflect.ownKeys(socket);
    assert.equal(peerPrincipal(socket), PEER);
    assert.equal(peerWorkload(socket), workload ?? undefined);
    assert.deepEqual(Reflect.ownKeys(socket), keys, `workload ${workload}`);
  }
  // Not known at the handshake: read from the certificate when first asked, into the property already there.
  const socket = { getPeerCertificate: () => ({ subjectaltname: `URI:${PEER}`, subject: { CN: 'sleep-v1' } }) };
  setPeerPrincipal(socket, PEER);
  const keys = Reflect.ownKeys(socket);
  assert.equal(peerWorkload(socket), 'sleep-v1');
  assert.deepEqual(Reflect.ownKeys(socket), keys);
  // No mTLS: nothing is set, and there is no workload.
  const plain = {};
  setPeerPrincipal(plain, undefined, 'sleep');
  assert.deepEqual(Reflect.ownKeys(plain), []);
  assert.equal(peerWorkload(plain), undefined);
});
