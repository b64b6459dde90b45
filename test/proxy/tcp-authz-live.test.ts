// Found by review: a policy change that reaches the sidecar while a TCP connection's external
// authorizer (a CUSTOM policy's gRPC provider) is being asked must decide that connection too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LiveTcpConnections, admitConnection } from '../../src/proxy/tcp/authz.ts';
import { splitNetworkRbac } from '../../src/proxy/xds-client/convert-authz.ts';
import { Telemetry } from '../../src/proxy/telemetry/events.ts';
import { socketPair } from '../fixtures/socket-pair.ts';

const denyAll = splitNetworkRbac('x', [
  { name: 'envoy.filters.network.rbac', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC', stat_prefix: 'tcp.', rules: { action: 'DENY', policies: { 'ns[foo]-policy[deny-all]-rule[0]': { permissions: [{ any: true }], principals: [{ any: true }] } } } } },
]).rbac;
/** An external authorizer on a cluster the sidecar does not have: failOpen, so it would allow. */
const ext = [{ name: 'envoy.filters.network.ext_authz', extAuthz: { service: { kind: 'grpc' as const, cluster: 'no-such-cluster', authority: 'a' }, timeoutMs: 1000, failOpen: true, statusOnError: 403 } }];


for (const change of ['a DENY policy', 'STRICT'] as const) {
  test(`${change} arriving while the external authorizer is asked closes the connection, and the check ends refused`, async () => {
    const { server: sock, close } = await socketPair();
    try {
      let filters: readonly unknown[] = ext;
      let strict = false;
      const live = new LiveTcpConnections();
      const ctx = { telemetry: new Telemetry(), log: () => {}, live, extAuthz: { config: () => ({ clusters: new Map() }), pools: {}, rr: new Map() } };
      const verdict = admitConnection(ctx as never, 'inbound|9001', sock, () => filters as never, { refusedNow: () => strict });
      assert.ok(verdict instanceof Promise, 'the authorizer is being asked');
      // The change reaches the sidecar meanwhile: sidecar.ts decides every live connection again.
      if (change === 'a DENY policy') filters = denyAll;
      else strict = true;
      assert.equal(live.recheck(ctx), 1, 'the connection under check is decided again');
      assert.equal(await verdict, false);
      assert.ok(sock.destroyed);
    } finally {
      close();
    }
  });
}

