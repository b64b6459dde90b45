// The telemetry subscribers (access log, Istio metrics) run inside the request path's publish: one
// that failed would surface as an uncaught exception and end the sidecar. A failure is logged and
// the event skipped; the next events are counted as before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EMPTY_CONFIG, type RuntimeConfig } from '../../src/proxy/config.ts';
import type { Downstream } from '../../src/proxy/http/types.ts';
import { AccessLogger } from '../../src/proxy/telemetry/access-log.ts';
import { Telemetry } from '../../src/proxy/telemetry/events.ts';
import { IstioMetrics } from '../../src/proxy/telemetry/istio-metrics.ts';

test('a subscriber that meets a broken event logs it and skips it; the sidecar keeps counting', async () => {
  const listeners = new Map([['inbound|1', { name: 'inbound|1', direction: 'inbound' }]]);
  const config = () => ({ ...EMPTY_CONFIG, listeners }) as unknown as RuntimeConfig;
  const logs: string[] = [];
  const t = new Telemetry();
  new AccessLogger({ config, identity: () => 'spiffe://cluster.local/ns/a/sa/me', log: (m) => logs.push(m) }).subscribe(t);
  const metrics = new IstioMetrics(config, { workload: 'me', namespace: 'a', principal: () => 'spiffe://cluster.local/ns/a/sa/me' }, (m) => logs.push(m));
  metrics.subscribe(t);
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown) => uncaught.push(e);
  process.on('uncaughtException', onUncaught);
  try {
    const broken = { head: { method: 'GET', authority: 'a', path: '/', query: '', headers: [], hasBody: false, protocol: 'HTTP/1.1' }, listenerName: 'inbound|1', remoteAddress: () => '127.0.0.1', sourcePrincipal: () => {
      throw new Error('the HTTP/2 session is gone');
    } } as unknown as Downstream;
    t.request.publish({ cluster: 'inbound|80||', status: 200, ds: broken });
    const ok = { ...broken, sourcePrincipal: () => 'spiffe://cluster.local/ns/b/sa/client' } as unknown as Downstream;
    t.request.publish({ cluster: 'inbound|80||', status: 200, ds: ok });
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => process.nextTick(r));
  } finally {
    process.off('uncaughtException', onUncaught);
  }
  assert.deepEqual(uncaught, []);
  assert.ok(logs.some((l) => /BUG: metrics failed on an event \(skipped\): Error: the HTTP\/2 session is gone/.test(l)), logs.join('\n'));
  const rows = metrics.json().requests;
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.source_principal, 'spiffe://cluster.local/ns/b/sa/client');
  assert.equal(rows[0]!.source_workload_namespace, 'b');
  assert.equal(rows[0]!.destination_principal, 'spiffe://cluster.local/ns/a/sa/me');
  assert.equal(rows[0]!.connection_security_policy, 'mutual_tls');
  assert.equal(rows[0]!.count, 1);
});
