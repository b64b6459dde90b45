// Opaque TCP through the mesh, with real sidecar processes: client -> CONNECT to its outbound
// sidecar -> the server's inbound sidecar (tcp_proxy, or protocol detection) -> the app.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'undici';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.ts';
import { translate } from '../../src/control/translate/translate.ts';
import { TYPE } from '../../src/xds/types.ts';
import { freePort } from '../../src/util/net.ts';
import { CLI, lineMatching, tmpDir, waitFor } from '../helpers.ts';
import { spawnProxy } from './mesh.ts';
import { classify } from '../../src/proxy/tcp/detect.ts';

/** A TCP server; `greeting`, if given, is sent as soon as a client connects (server-first). */
async function tcpServer(greeting?: string): Promise<net.Server> {
  const s = net.createServer({ allowHalfOpen: true }, (c) => {
    if (greeting) c.write(greeting);
    c.pipe(c); // echo, and end when the client ends
    c.on('error', () => {});
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return s;
}
const portOf = (s: net.Server) => (s.address() as AddressInfo).port;

/** CONNECT host:port through the proxy; resolves with the tunnel once the proxy answered 200. */
function tunnel(proxyPort: number, authority: string): Promise<{ socket: net.Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(proxyPort, '127.0.0.1', () => s.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`));
    let buf: Buffer = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const i = buf.indexOf('\r\n\r\n');
      if (i < 0) return;
      s.off('data', onData);
      const head = buf.subarray(0, i).toString('latin1');
      if (!head.startsWith('HTTP/1.1 200')) {
        s.destroy();
        reject(new Error(`CONNECT ${authority}: ${head}\n${buf.subarray(i + 4)}`));
        return;
      }
      s.pause();
      resolve({ socket: s, rest: buf.subarray(i + 4) });
    };
    s.on('data', onData);
    s.on('error', reject);
    // Closed without an answer (a sidecar with no config yet): no-op once resolved.
    s.on('close', () => reject(new Error(`CONNECT ${authority}: closed without an answer: ${buf.toString('latin1')}`)));
  });
}

/** Reads from the socket until `n` bytes have arrived (starting with `rest`). */
function readBytes(s: net.Socket, n: number, rest: Buffer = Buffer.alloc(0)): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = rest;
    const check = () => {
      if (buf.length >= n) {
        s.off('data', onData);
        s.off('error', reject);
        s.pause();
        resolve(buf.toString());
      }
    };
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      check();
    };
    s.on('data', onData);
    s.once('error', reject);
    s.resume();
    check();
  });
}

function untilEnd(s: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    s.on('data', (d) => (got += d));
    s.once('end', () => resolve(got));
    s.resume();
  });
}

describe('opaque TCP through two sidecars (real sidecar processes)', () => {
  let cp: ControlPlane;
  const procs: ChildProcess[] = [];
  const servers: net.Server[] = [];
  let outbound: number;
  let clientAdmin: string;

  before(async () => {
    cp = await startControlPlane({ dataDir: tmpDir('cp'), adminPort: 0, xdsPort: 0, heartbeatMs: 1000 });
    const echo = await tcpServer();
    const greeterDeclared = await tcpServer('220 hello\r\n');
    const greeterUndeclared = await tcpServer('220 hello\r\n');
    servers.push(echo, greeterDeclared, greeterUndeclared);
    const web = http.createServer((q, r) => r.end(`web saw ${q.method} ${q.url}`));
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', () => r()));
    servers.push(web as unknown as net.Server);
    const [in1, in2, in3, in4] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const server = spawnProxy(cp, ['--workload', 'db-1', '--service', 'db',
      '--port', `tcp-echo:7000:${in1}:${portOf(echo)}`,
      '--port', `tcp-greet:7001:${in2}:${portOf(greeterDeclared)}`,
      '--port', `greet:7002:${in3}:${portOf(greeterUndeclared)}`,
      '--port', `web:7003:${in4}:${portOf(web as unknown as net.Server)}`,
    ]);
    procs.push(server);
    await lineMatching(server, /^WEFT_READY /);
    outbound = await freePort();
    const client = spawnProxy(cp, ['--workload', 'client', '--outbound-port', String(outbound)]);
    procs.push(client);
    clientAdmin = JSON.parse((await lineMatching(client, /^WEFT_READY /)).slice('WEFT_READY '.length)).admin;
    await waitFor('the client sidecar to know db', async () => {
      const dump = (await (await request(`${clientAdmin}/config_dump`)).body.json()) as any;
      return dump.routes?.[0]?.virtual_hosts?.some((v: any) => v.name === 'db.default.svc.cluster.local:7002');
    });
  });
  after(async () => {
    for (const p of procs) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => (p.exitCode !== null ? undefined : new Promise((r) => p.once('exit', r)))));
    for (const s of servers) s.close();
    await cp?.close();
  });

  test('echo through CONNECT to a tcp- port: bytes both ways, and a half-close passed on', async () => {
    const { socket, rest } = await tunnel(outbound, 'db:7000');
    socket.write('ping 1\n');
    assert.equal(await readBytes(socket, 7, rest), 'ping 1\n');
    const big = Buffer.alloc(1_000_000, 'x');
    socket.write(big);
    socket.end(); // FIN: the echo app ends after echoing everything, and that end comes back
    const back = await untilEnd(socket);
    assert.equal(back.length, big.length);
    socket.destroy();
  });

  test('a server-first protocol on a declared tcp- port: the greeting arrives before the client says anything', async () => {
    const { socket, rest } = await tunnel(outbound, 'db.default.svc.cluster.local:7001');
    assert.equal(await readBytes(socket, 11, rest), '220 hello\r\n');
    socket.write('QUIT\r\n');
    assert.equal(await readBytes(socket, 6), 'QUIT\r\n');
    socket.destroy();
  });

  test('a server-first protocol on a port of undeclared protocol: detection does not wait for the client', async () => {
    const { socket, rest } = await tunnel(outbound, 'db:7002');
    assert.equal(await readBytes(socket, 11, rest), '220 hello\r\n');
    socket.write('EHLO x\r\n');
    assert.equal(await readBytes(socket, 8), 'EHLO x\r\n');
    socket.destroy();
  });

  test('client bytes that are not HTTP, on a port of undeclared protocol, go over TCP too', async () => {
    const { socket, rest } = await tunnel(outbound, 'db:7002');
    socket.write('*1\r\n$4\r\nPING\r\n');
    assert.equal(await readBytes(socket, 11 + 14, rest), '220 hello\r\n*1\r\n$4\r\nPING\r\n');
    socket.destroy();
  });

  test('HTTP on a port of undeclared protocol is detected and routed as HTTP', async () => {
    const r = await request(`http://127.0.0.1:${outbound}/hi`, { headers: { host: 'db:7003' } });
    assert.equal(r.statusCode, 200);
    assert.equal(await r.body.text(), 'web saw GET /hi');
  });

  test('CONNECT to an authority the mesh does not know passes through to it (ALLOW_ANY); nothing there: 503 naming it', async () => {
    const outside = await tcpServer();
    servers.push(outside);
    const { socket, rest } = await tunnel(outbound, `127.0.0.1:${(outside.address() as net.AddressInfo).port}`);
    socket.write('*1\r\n$4\r\nPING\r\n'); // not HTTP: the tunnel is TCP
    assert.equal(await readBytes(socket, 14, rest), '*1\r\n$4\r\nPING\r\n');
    socket.destroy();
    const closed = await freePort();
    await assert.rejects(tunnel(outbound, `127.0.0.1:${closed}`), new RegExp(`503 Service Unavailable[\\s\\S]*connection refused by 127\\.0\\.0\\.1:${closed} in cluster PassthroughCluster`));
  });

  test('a connection that cannot be made is retried on another endpoint', async () => {
    const live = await tcpServer();
    servers.push(live);
    const dead = await freePort();
    for (const [id, port] of [['flaky-a', dead], ['flaky-b', portOf(live)]] as const) {
      cp.registry.register({ proxyId: id, name: id, namespace: 'default', service: 'flaky', servicePort: 9000, labels: {}, address: '127.0.0.1', inboundPort: port, appPort: port, ports: [{ name: 'tcp', port: 9000, inboundPort: port, appPort: port }], healthy: true });
    }
    await waitFor('the client sidecar to have both flaky endpoints', async () => {
      const dump = (await (await request(`${clientAdmin}/config_dump`)).body.json()) as any;
      return dump.endpoints?.find((e: any) => e.cluster_name === 'outbound|9000||flaky.default.svc.cluster.local')?.endpoints?.[0]?.lb_endpoints?.length === 2;
    });
    for (let i = 0; i < 4; i++) {
      const { socket, rest } = await tunnel(outbound, 'flaky:9000');
      socket.write(`n${i}`);
      assert.equal(await readBytes(socket, 2, rest), `n${i}`);
      socket.destroy();
    }
    const tcp = ((await (await request(`${clientAdmin}/stats`)).body.json()) as any).tcp;
    const flaky = tcp.find((r: any) => r.cluster === 'outbound|9000||flaky.default.svc.cluster.local');
    assert.ok(flaky.connectFailed >= 1, JSON.stringify(flaky));
    assert.equal(flaky.opened, 4);
  });

  test('/stats counts TCP connections and bytes per cluster', async () => {
    const row = await waitFor('the echo connection to be counted closed', async () => {
      const tcp = ((await (await request(`${clientAdmin}/stats`)).body.json()) as any).tcp;
      const r = tcp.find((x: any) => x.cluster === 'outbound|7000||db.default.svc.cluster.local');
      return r?.closed >= 1 && r;
    });
    assert.equal(row.opened, 1);
    assert.equal(row.bytesSent, 7 + 1_000_000);
    assert.equal(row.bytesReceived, 7 + 1_000_000);
    const prom = await (await request(`${clientAdmin}/stats/prometheus`)).body.text();
    assert.match(prom, /weft_tcp_sent_bytes_total\{cluster="outbound\|7000\|\|db\.default\.svc\.cluster\.local"\} 1000007/);
  });
});

describe('tcp_proxy idle timeout (real sidecar processes)', () => {
  let cp: ControlPlane;
  const procs: ChildProcess[] = [];
  let echo: net.Server;
  const appSockets: net.Socket[] = [];
  /** App connections that carried bytes (the sidecar's health probe connects too, and says nothing). */
  const talked: net.Socket[] = [];
  let outbound: number;

  before(async () => {
    // The control plane gives every tcp_proxy a 700 ms idle timeout.
    cp = await startControlPlane({
      dataDir: tmpDir('cp'), adminPort: 0, xdsPort: 0, heartbeatMs: 1000,
      generate: (mesh, proxy) => {
        const r = translate(mesh, proxy);
        for (const l of Object.values(r.listeners) as any[]) {
          for (const fc of l.filter_chains ?? []) for (const f of fc.filters ?? []) if (f.typed_config?.['@type'] === TYPE.tcpProxy) f.typed_config.idle_timeout = { nanos: 700_000_000 };
        }
        return r;
      },
    });
    echo = net.createServer({ allowHalfOpen: true }, (c) => {
      appSockets.push(c);
      c.once('data', () => talked.push(c));
      c.pipe(c);
      c.on('error', () => {});
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    const inbound = await freePort();
    const server = spawnProxy(cp, ['--workload', 'db-1', '--service', 'db', '--port', `tcp-echo:7000:${inbound}:${portOf(echo)}`]);
    procs.push(server);
    await lineMatching(server, /^WEFT_READY /);
    outbound = await freePort();
    const client = spawnProxy(cp, ['--workload', 'client', '--outbound-port', String(outbound)]);
    procs.push(client);
    await lineMatching(client, /^WEFT_READY /);
    await waitFor('a tunnel to db:7000', async () => {
      const t = await tunnel(outbound, 'db:7000').catch(() => undefined);
      t?.socket.destroy();
      return t !== undefined;
    });
  });
  after(async () => {
    for (const p of procs) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => (p.exitCode !== null ? undefined : new Promise((r) => p.once('exit', r)))));
    for (const s of appSockets) s.destroy();
    echo?.close();
    await cp?.close();
  });

  test('an idle connection is closed at the idle timeout, on the app side and the client side', async () => {
    const { socket, rest } = await tunnel(outbound, 'db:7000');
    const seen = talked.length;
    socket.write('hi');
    assert.equal(await readBytes(socket, 2, rest), 'hi');
    // The app connection that carried this 'hi', not one of the health probe's.
    const app = await waitFor('the app connection', async () => talked[seen]);
    const t0 = performance.now();
    const appClosed = new Promise<number>((resolve) => app.once('close', () => resolve(performance.now() - t0)));
    const clientEnded = new Promise<number>((resolve) => {
      socket.once('end', () => resolve(performance.now() - t0));
      socket.once('close', () => resolve(performance.now() - t0));
      socket.resume();
    });
    const [appMs, clientMs] = await Promise.all([appClosed, clientEnded]);
    console.log(`# idle tcp_proxy connection closed after ${appMs.toFixed(0)} ms (app side), ${clientMs.toFixed(0)} ms (client side); idle timeout 700 ms`);
    assert.ok(appMs >= 600 && clientMs >= 600, `closed too early: ${appMs} / ${clientMs} ms`);
    assert.ok(appMs < 10_000 && clientMs < 10_000);
    socket.destroy();
  });

  test('a connection that keeps moving bytes outlives the idle timeout', async () => {
    const { socket, rest } = await tunnel(outbound, 'db:7000');
    let closed = false;
    socket.once('close', () => (closed = true));
    let pending = rest;
    const t0 = performance.now();
    // Round trips, back to back, for three idle timeouts: never idle, so never closed.
    let n = 0;
    while (performance.now() - t0 < 2100) {
      socket.write(`m${n % 10}`);
      assert.equal(await readBytes(socket, 2, pending), `m${n % 10}`);
      pending = Buffer.alloc(0);
      n++;
    }
    assert.equal(closed, false, `closed after ${n} round trips`);
    socket.destroy();
  });
});

test('detection: what counts as the start of an HTTP request', () => {
  const c = (s: string) => classify(Buffer.from(s));
  assert.equal(c('GET / HTTP/1.1\r\n'), 'http');
  assert.equal(c('PRI * HTTP/2.0\r\n'), 'http');
  assert.equal(c('GE'), 'more');
  assert.equal(c('GET /x HT'), 'more');
  assert.equal(c('GET key\r\n'), 'other'); // a Redis inline command, not HTTP
  assert.equal(c('*1\r\n$4\r\nPING\r\n'), 'other');
  assert.equal(c('\x16\x03\x01'), 'other'); // a TLS ClientHello
  assert.equal(c('HELLO there'), 'other');
});
