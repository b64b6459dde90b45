// A real third-party xDS client against Weft's control plane: @grpc/grpc-js-xds, proxyless, asks
// for the listener named by its target, then routes, clusters and endpoints, and splits its calls
// 90/10 across two gRPC servers as a VirtualService says. The servers are registered in the
// registry directly, as a proxyless server would be (there is no sidecar in this path).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawn } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.ts';
import { checkResource } from '../../src/api/index.ts';
import { ROOT, assertShare, tmpDir } from '../helpers.ts';

const id = (b: Buffer) => b;
const SERVICE: grpc.ServiceDefinition = {
  Say: { path: '/weft.test.Hello/Say', requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id },
};

let cp: ControlPlane;
const log: string[] = [];
const servers: grpc.Server[] = [];

before(async () => {
  cp = await startControlPlane({ dataDir: tmpDir('grpc'), adminPort: 0, xdsPort: 0, insecureXdsPort: 0, log: (m) => log.push(m) });
  for (const version of ['v1', 'v2']) {
    const s = new grpc.Server();
    s.addService(SERVICE, { Say: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(version)) });
    const port = await new Promise<number>((resolve, reject) => s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    servers.push(s);
    cp.registry.register({ proxyId: `greeter-${version}`, name: `greeter-${version}`, namespace: 'default', service: 'greeter', servicePort: 80, labels: { app: 'greeter', version }, address: '127.0.0.1', inboundPort: port, appPort: port, healthy: true });
  }
  cp.store.apply(
    [
      { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'greeter' }, spec: { hosts: ['greeter'], http: [{ route: [{ destination: { host: 'greeter', subset: 'v1' }, weight: 90 }, { destination: { host: 'greeter', subset: 'v2' }, weight: 10 }] }] } },
      { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'greeter' }, spec: { host: 'greeter', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] } },
    ].map((r, i) => checkResource(r, `resource ${i}`)),
  );
});

after(async () => {
  for (const s of servers) s.forceShutdown();
  await cp?.close();
});

test('a grpc-js-xds client resolves xds:///greeter through Weft and splits its calls 90/10', async (t) => {
  const bootstrap = {
    xds_servers: [{ server_uri: cp.insecureXdsAddress, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: 'proxyless-client', locality: {} },
  };
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(ROOT, 'test/fixtures/grpc-xds-client.ts'), 'xds:///greeter', '1000'], {
      env: { ...process.env, GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(bootstrap) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let s = '';
    p.stdout.on('data', (d) => (s += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      code === 0 ? resolve(s) : reject(new Error(`client exited ${code}: ${s}`));
    });
  });
  const { replies, errors } = JSON.parse(out) as { replies: Record<string, number>; errors: string[] };
  assert.deepEqual(errors, []);
  const total = (replies.v1 ?? 0) + (replies.v2 ?? 0);
  assert.equal(total, 1000);
  const v2 = (replies.v2 ?? 0) / total;
  t.diagnostic(`v2 got ${(v2 * 100).toFixed(1)}% of 1,000 calls`);
  assertShare(replies.v2 ?? 0, total, 0.1, 'calls to v2');
  // It connected as a node of its own and NACKed nothing (grpc-js-xds validates every resource).
  // (On the plain-text port its key is apart from every proven proxy's.)
  assert.ok(log.some((l) => l.startsWith('proxy plaintext~proxyless-client connected')), log.join('\n'));
  assert.deepEqual(log.filter((l) => /NACK/.test(l)), []);
});
