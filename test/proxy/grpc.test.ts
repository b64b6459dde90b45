// gRPC through two sidecars with real @grpc/grpc-js clients and servers: h2c prior knowledge to
// the outbound listener, and grpc_proxy (CONNECT, then h2c in the tunnel); metadata, trailers,
// status codes and deadlines end to end; a 90/10 split; the sidecar's own errors as gRPC statuses.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import type { ControlPlane } from '../../src/control/control-plane.ts';
import { freePort } from '../../src/util/net.ts';
import { checkResource } from '../../src/api/index.ts';
import { assertShare, waitFor } from '../helpers.ts';
import { type SidecarProc, controlPlaneWithH2, startSidecarProc } from './h2util.ts';

const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()),
};
const method = (name: string, responseStream: boolean) => ({
  path: `/test.Greeter/${name}`,
  requestStream: false,
  responseStream,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
});
const GREETER = { hello: method('Hello', false), count: method('Count', true), slow: method('Slow', false), fail: method('Fail', false) } as grpc.ServiceDefinition;
const GreeterClient = grpc.makeGenericClientConstructor(GREETER, 'Greeter');

interface Reply {
  value: any;
  metadata: grpc.Metadata | undefined;
  status: grpc.StatusObject;
}

function unary(client: grpc.Client, name: string, req: unknown, opts: grpc.CallOptions = {}, md = new grpc.Metadata()): Promise<Reply> {
  return new Promise((resolve) => {
    let value: any;
    let metadata: grpc.Metadata | undefined;
    const call = (client as any)[name](req, md, opts, (_err: grpc.ServiceError | null, v: any) => (value = v));
    call.on('metadata', (m: grpc.Metadata) => (metadata = m));
    call.on('status', (status: grpc.StatusObject) => setImmediate(() => resolve({ value, metadata, status })));
  });
}

async function startGreeter(version: string, seenDeadlines: number[]): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(GREETER, {
    hello: (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => {
      const md = new grpc.Metadata();
      md.set('x-version', version);
      call.sendMetadata(md);
      const trailer = new grpc.Metadata();
      trailer.set('x-echo', String(call.metadata.get('x-echo')[0] ?? ''));
      trailer.set('x-bin-bin', Buffer.from([0, 1, 2, 255]));
      cb(null, { hello: call.request.name, version }, trailer);
    },
    count: (call: grpc.ServerWritableStream<any, any>) => {
      for (let i = 0; i < call.request.n; i++) call.write({ i, version });
      call.end();
    },
    slow: (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => {
      const d = call.getDeadline();
      seenDeadlines.push((d instanceof Date ? d.getTime() : Number(d)) - Date.now());
      const t = setTimeout(() => cb(null, { late: true }), call.request.ms);
      call.on('cancelled', () => clearTimeout(t));
    },
    fail: (_call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => {
      const md = new grpc.Metadata();
      md.set('x-why', 'because');
      cb({ code: grpc.status.NOT_FOUND, details: 'no such greeting: héllo %', metadata: md });
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { server, port };
}

describe('gRPC through two sidecars (real sidecar processes, grpc-js)', () => {
  let cp: ControlPlane;
  let outbound: number;
  const sidecars: SidecarProc[] = [];
  const servers: grpc.Server[] = [];
  const clients: grpc.Client[] = [];
  const deadlines: number[] = [];
  const greeterPorts = { v1: 0, v2: 0 };
  let direct: grpc.Client;
  let stall: http2.Http2Server;

  before(async () => {
    cp = await controlPlaneWithH2(/greeter|gone|stall/);
    const v1 = await startGreeter('v1', deadlines);
    const v2 = await startGreeter('v2', deadlines);
    greeterPorts.v1 = v1.port;
    greeterPorts.v2 = v2.port;
    servers.push(v1.server, v2.server);
    // v1 behind its own sidecar; v2 registered directly (the client sidecar talks HTTP/2 to it).
    const inbound = await freePort();
    sidecars.push(await startSidecarProc(cp, ['--workload', 'greeter-v1', '--service', 'greeter', '--label', 'version=v1', '--inbound-port', String(inbound), '--app-port', String(v1.port)]));
    cp.registry.register({ proxyId: 'greeter-v2', name: 'greeter-v2', namespace: 'default', service: 'greeter', servicePort: 80, labels: { version: 'v2' }, address: '127.0.0.1', inboundPort: v2.port, appPort: v2.port, healthy: true });
    // An HTTP/2 app that takes gRPC calls and never answers, nor enforces any deadline itself: a
    // deadline that fires can only be the sidecar's.
    stall = http2.createServer();
    stall.on('stream', (st) => st.on('error', () => {}));
    await new Promise<void>((r) => stall.listen(0, '127.0.0.1', () => r()));
    const stallPort = (stall.address() as import('node:net').AddressInfo).port;
    cp.registry.register({ proxyId: 'stall-1', name: 'stall-1', namespace: 'default', service: 'stall', servicePort: 80, labels: {}, address: '127.0.0.1', inboundPort: stallPort, appPort: stallPort, healthy: true });
    cp.registry.register({ proxyId: 'gone-1', name: 'gone-1', namespace: 'default', service: 'gone', servicePort: 80, labels: {}, address: '127.0.0.1', inboundPort: 1, appPort: 1, healthy: false });
    cp.store.apply([
      checkResource({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'greeter' }, spec: { host: 'greeter', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] } }, 'test'),
      checkResource({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'greeter' }, spec: { hosts: ['greeter'], http: [{ route: [{ destination: { host: 'greeter', subset: 'v1' }, weight: 90 }, { destination: { host: 'greeter', subset: 'v2' }, weight: 10 }] }] } }, 'test'),
    ]);
    outbound = await freePort();
    sidecars.push(await startSidecarProc(cp, ['--workload', 'client', '--outbound-port', String(outbound)]));
    direct = new GreeterClient(`127.0.0.1:${outbound}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'greeter' });
    clients.push(direct);
    await waitFor('the greeter route', async () => (await unary(direct, 'hello', { name: 'x' })).status.code === grpc.status.OK);
  });
  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(sidecars.map((s) => s.stop()));
    for (const s of servers) s.forceShutdown();
    stall?.close();
    await cp?.close();
  });

  test('unary: reply, initial metadata and trailers (text and binary) arrive intact', async () => {
    const md = new grpc.Metadata();
    md.set('x-echo', 'ping');
    const r = await unary(direct, 'hello', { name: 'ann' }, {}, md);
    assert.equal(r.status.code, grpc.status.OK, r.status.details);
    assert.equal(r.value.hello, 'ann');
    assert.equal(r.metadata?.get('x-version')[0], r.value.version);
    assert.equal(r.status.metadata.get('x-echo')[0], 'ping');
    assert.deepEqual(r.status.metadata.get('x-bin-bin')[0], Buffer.from([0, 1, 2, 255]));
  });

  test('server streaming: every message, in order', async () => {
    const msgs: any[] = [];
    const status = await new Promise<grpc.StatusObject>((resolve) => {
      const call = (direct as any).count({ n: 50 });
      call.on('data', (m: any) => msgs.push(m));
      call.on('error', () => {});
      call.on('status', resolve);
    });
    assert.equal(status.code, grpc.status.OK, status.details);
    assert.deepEqual(msgs.map((m) => m.i), [...Array(50).keys()]);
  });

  test('an application error: status code, details and trailing metadata arrive intact', async () => {
    const r = await unary(direct, 'fail', {});
    assert.equal(r.status.code, grpc.status.NOT_FOUND);
    assert.equal(r.status.details, 'no such greeting: héllo %');
    assert.equal(r.status.metadata.get('x-why')[0], 'because');
  });

  test('deadlines: the app sees the client deadline, and a late answer is DEADLINE_EXCEEDED', async () => {
    deadlines.length = 0;
    const r = await unary(direct, 'slow', { ms: 5000 }, { deadline: Date.now() + 2000 });
    assert.equal(r.status.code, grpc.status.DEADLINE_EXCEEDED);
    assert.equal(deadlines.length, 1, 'the app got the call');
    assert.ok(deadlines[0] > 0 && deadlines[0] <= 2000, String(deadlines[0]));
  });

  test('the sidecar honours grpc-timeout itself: DEADLINE_EXCEEDED naming the cluster', async () => {
    // A raw HTTP/2 client with no deadline of its own, to an app that never answers and enforces
    // no deadline: the answer must come from the sidecar.
    const session = http2.connect(`http://127.0.0.1:${outbound}`);
    try {
      const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, 11]), Buffer.from('{"ms":5000}')]);
      const { headers, trailers } = await new Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders }>((resolve, reject) => {
        const s = session.request({ ':method': 'POST', ':path': '/test.Greeter/Slow', ':authority': 'stall', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '300m' });
        let headers: http2.IncomingHttpHeaders = {};
        let trailers: http2.IncomingHttpHeaders = {};
        s.on('response', (h) => (headers = h));
        s.on('trailers', (t) => (trailers = t));
        s.on('data', () => {});
        s.on('end', () => resolve({ headers, trailers }));
        s.on('error', reject);
        s.end(frame);
      });
      const all = { ...headers, ...trailers };
      assert.equal(headers[':status'], 200);
      assert.equal(all['grpc-status'], '4');
      assert.equal(all['x-weft-error'], 'upstream_timeout');
      assert.match(decodeURIComponent(String(all['grpc-message'])), /cluster outbound\|80\|\|stall\.default\.svc\.cluster\.local did not complete the response within the gRPC deadline \(grpc-timeout\) of 300 ms/);
    } finally {
      session.close();
    }
  });

  test('through grpc_proxy: CONNECT to the outbound sidecar, then HTTP/2 in the tunnel', async () => {
    const saved = { grpc_proxy: process.env.grpc_proxy, no_grpc_proxy: process.env.no_grpc_proxy, no_proxy: process.env.no_proxy };
    process.env.grpc_proxy = `http://127.0.0.1:${outbound}`;
    delete process.env.no_grpc_proxy;
    delete process.env.no_proxy;
    let viaProxy: grpc.Client;
    try {
      viaProxy = new GreeterClient('dns:///greeter:80', grpc.credentials.createInsecure());
    } finally {
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    clients.push(viaProxy);
    const r = await unary(viaProxy, 'hello', { name: 'via-proxy' });
    assert.equal(r.status.code, grpc.status.OK, r.status.details);
    assert.equal(r.value.hello, 'via-proxy');
    const msgs: any[] = [];
    await new Promise<void>((resolve) => {
      const call = (viaProxy as any).count({ n: 5 });
      call.on('data', (m: any) => msgs.push(m));
      call.on('error', () => {});
      call.on('status', () => resolve());
    });
    assert.equal(msgs.length, 5);
  });

  test('a 90/10 split over 1,000 calls is a fair draw at 90% (within five binomial deviations)', async (t) => {
    const counts: Record<string, number> = { v1: 0, v2: 0 };
    const batch = 50;
    for (let i = 0; i < 1000; i += batch) {
      const rs = await Promise.all(Array.from({ length: batch }, () => unary(direct, 'hello', { name: 'n' })));
      for (const r of rs) {
        assert.equal(r.status.code, grpc.status.OK, r.status.details);
        counts[r.value.version]++;
      }
    }
    const pct = (counts.v1 / 1000) * 100;
    t.diagnostic(`90/10 split over 1000 gRPC calls: v1 ${pct.toFixed(1)}%, v2 ${(100 - pct).toFixed(1)}%`);
    assertShare(counts.v1, 1000, 0.9, 'calls to v1');
  });

  test('a service with no healthy endpoint: UNAVAILABLE naming the cluster', async () => {
    const gone = new GreeterClient(`127.0.0.1:${outbound}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'gone' });
    clients.push(gone);
    const r = await waitFor('the gone route', async () => {
      const x = await unary(gone, 'hello', { name: 'x' });
      return x.status.metadata.get('x-weft-error')[0] === 'no_healthy_endpoint' && x;
    });
    assert.equal(r.status.code, grpc.status.UNAVAILABLE);
    assert.match(r.status.details, /no healthy endpoint in cluster outbound\|80\|\|gone\.default\.svc\.cluster\.local/);
  });

  test('a service the mesh does not have passes through (ALLOW_ANY); nothing listening there: UNAVAILABLE naming it', async () => {
    const closed = await freePort();
    const none = new GreeterClient(`127.0.0.1:${outbound}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': `127.0.0.1:${closed}` });
    clients.push(none);
    const r = await unary(none, 'hello', { name: 'x' });
    assert.equal(r.status.code, grpc.status.UNAVAILABLE);
    assert.match(r.status.details, new RegExp(`connection refused by 127\\.0\\.0\\.1:${closed} in cluster PassthroughCluster`));
  });

  test('a GRPCRoute on a Service: a method match goes to its backend, the rest to the Service (the Gateway API mesh route, through the sidecar)', async () => {
    const port = (version: 'v1' | 'v2') => greeterPorts[version];
    for (const [name, version] of [['greeter-one', 'v1'], ['greeter-two', 'v2']] as const) {
      cp.registry.register({ proxyId: name, name, namespace: 'default', service: name, servicePort: 80, labels: {}, address: '127.0.0.1', inboundPort: port(version), appPort: port(version), ports: [{ name: 'grpc', port: 80, inboundPort: port(version), appPort: port(version) }], healthy: true });
    }
    cp.store.apply([
      checkResource(
        {
          apiVersion: 'gateway.networking.k8s.io/v1',
          kind: 'GRPCRoute',
          metadata: { name: 'greeter-two' },
          spec: {
            parentRefs: [{ group: '', kind: 'Service', name: 'greeter-two', port: 80 }],
            rules: [
              { matches: [{ method: { service: 'test.Greeter', method: 'Hello' } }], backendRefs: [{ name: 'greeter-one', port: 80 }] },
              { backendRefs: [{ name: 'greeter-two', port: 80 }] },
            ],
          },
        },
        'test',
      ),
    ]);
    const two2 = new GreeterClient(`127.0.0.1:${outbound}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'greeter-two' });
    clients.push(two2);
    const hello = await waitFor('the GRPCRoute to apply', async () => {
      const r = await unary(two2, 'hello', { name: 'g' });
      return r.status.code === grpc.status.OK && r.value.version === 'v1' && r;
    });
    assert.equal(hello.value.hello, 'g');
    // Another method of the same Service: its own backend.
    const items: any[] = await new Promise((resolve, reject) => {
      const got: any[] = [];
      const call = (two2 as any).count({ n: 3 });
      call.on('data', (d: any) => got.push(d));
      call.on('end', () => resolve(got));
      call.on('error', reject);
    });
    assert.deepEqual(items.map((x) => x.version), ['v2', 'v2', 'v2']);
  });
});
