// Stopping the control plane never waits on its clients: a client that opens a call on the xDS
// port and then neither sends nor closes anything (nor heeds the server's GOAWAY) must not hold
// close() for good. grpc-js's tryShutdown waits for every session's streams to end; close() forces
// them after a grace. (Found when a CI run's teardown waited in close() until the test file timed out.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startControlPlane } from '../../src/control/control-plane.ts';
import { SHUTDOWN_GRACE_MS } from '../../src/control/ads/server.ts';
import { tmpDir } from '../helpers.ts';
import { PREFACE, T, frame, request } from '../proxy/h2raw.ts';

test('close() ends within its grace while a raw client holds a call open on the xDS port and ignores GOAWAY', async () => {
  const cp = await startControlPlane({ dataDir: tmpDir('cp-close'), adminPort: 0, xdsPort: 0, insecureXdsPort: 0, scrapeIntervalMs: 0, log: () => {} });
  const [host, port] = [cp.insecureXdsAddress!.slice(0, cp.insecureXdsAddress!.lastIndexOf(':')), Number(cp.insecureXdsAddress!.slice(cp.insecureXdsAddress!.lastIndexOf(':') + 1))];
  const s = net.connect(port, host);
  s.on('error', () => {});
  s.on('data', () => {}); // read and ignore everything, GOAWAY included
  await new Promise<void>((resolve) => s.once('connect', () => resolve()));
  const call = request(1, [[':method', 'POST'], [':scheme', 'http'], [':path', '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources'], [':authority', 'xds'], ['content-type', 'application/grpc'], ['te', 'trailers']], false);
  s.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0), call]));
  // The server has the call once it answers (its SETTINGS, the ack of ours): give it a round trip.
  await new Promise<void>((resolve) => s.once('data', () => setImmediate(resolve)));
  const t0 = performance.now();
  await cp.close();
  const took = performance.now() - t0;
  s.destroy();
  // The grace, and the rest of close() (about 0.1 s): well under the 10 s it took before.
  assert.ok(took < SHUTDOWN_GRACE_MS * 2.5, `close() took ${took.toFixed(0)} ms`);
});
