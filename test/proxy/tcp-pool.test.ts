// A DestinationRule's connectionPool for opaque TCP, on real sockets: the sidecar's outbound
// listener in process (its CONNECT handling, on the sidecar's own conversion of the translated
// config) in front of real TCP echo servers. TCP tunnels close at tcp.idleTimeout and
// tcp.maxConnectionDuration, as Istio's tcp_proxy, and count against tcp.maxConnections.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { once } from 'node:events';
import type { RuntimeConfig } from '../../src/proxy/config.ts';
import { meshOf, sidecarSnapshot, workload } from '../snapshot.ts';
import { outboundListener } from './outbound-listener.ts';
import { listen, waitFor } from '../helpers.ts';

const closers: (() => void)[] = [];
after(() => {
  for (const c of closers.splice(0)) c();
});

/** A TCP echo server that remembers its connections. */
async function echo() {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((c) => {
    connections++;
    sockets.add(c);
    c.on('close', () => sockets.delete(c));
    c.on('error', () => {});
    c.pipe(c);
  });
  const port = await listen(server);
  closers.push(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return {
    port,
    sockets,
    get connections() {
      return connections;
    },
  };
}

/** The client sidecar's outbound listener, in process, for service "db" (a tcp- port) served by `port`, with the DestinationRule's traffic policy. */
async function outboundFor(port: number, trafficPolicy: object): Promise<number> {
  const db = workload('db', { service: 'db', port, ports: [{ name: 'tcp-db', port: 5432, inboundPort: port, appPort: port + 1 }] });
  const client = workload('client', { port: 43000 });
  const cfg: RuntimeConfig = sidecarSnapshot(meshOf([{ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'db' }, spec: { host: 'db', trafficPolicy } }], [db, client]), client);
  return outboundListener(cfg, closers, { rand: () => 0.5 });
}

/** CONNECT db:5432 through the listener: the socket and the head of its answer, once there is one. */
function connect(port: number): { socket: net.Socket; answer: Promise<string>; closed: Promise<number> } {
  const socket = net.connect(port, '127.0.0.1', () => socket.write('CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n'));
  socket.on('error', () => {});
  closers.push(() => socket.destroy());
  let buf = '';
  const answer = new Promise<string>((resolve) => {
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      if (!buf.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      resolve(buf);
    };
    socket.on('data', onData);
  });
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
  return { socket, answer, closed };
}

test('tcp.idleTimeout closes an idle TCP tunnel (the listener alone would keep it an hour)', async () => {
  const db = await echo();
  const port = await outboundFor(db.port, { connectionPool: { tcp: { idleTimeout: '300ms' } } });
  const t = connect(port);
  assert.match(await t.answer, /^HTTP\/1.1 200/);
  const open = performance.now();
  t.socket.write('ping');
  const ms = (await t.closed) - open;
  assert.ok(ms >= 250 && ms < 5000, `closed after ${ms.toFixed(0)} ms idle`);
  await waitFor('the upstream side closed too', async () => db.sockets.size === 0);
});

test('tcp.maxConnectionDuration closes a TCP tunnel that is never idle', async () => {
  const db = await echo();
  const port = await outboundFor(db.port, { connectionPool: { tcp: { maxConnectionDuration: '500ms' } } });
  const t = connect(port);
  assert.match(await t.answer, /^HTTP\/1.1 200/);
  const open = performance.now();
  const chatter = setInterval(() => t.socket.write('x'), 50);
  const ms = (await t.closed) - open;
  clearInterval(chatter);
  assert.ok(ms >= 450 && ms < 5000, `closed after ${ms.toFixed(0)} ms`);
});

test('tcp.maxConnections counts TCP tunnels: one open, one waits for it, the next is a 503 naming the limits', async (t) => {
  const db = await echo();
  const port = await outboundFor(db.port, { connectionPool: { tcp: { maxConnections: 1, tcpKeepalive: { time: '33s' } }, http: { http1MaxPendingRequests: 1 } } });
  const first = connect(port);
  assert.match(await first.answer, /^HTTP\/1.1 200/);
  const second = connect(port);
  await waitFor('the second CONNECT read by the sidecar', async () => second.socket.bytesWritten > 0);
  const third = connect(port);
  const over = await third.answer;
  assert.match(over, /^HTTP\/1.1 503/);
  assert.match(over, /x-weft-error: overflow/);
  assert.match(over, /too many connections to cluster outbound\|5432\|\|db\.default\.svc\.cluster\.local: 1 connections open to the cluster's endpoints and 1 request waiting \(the limits are max_connections 1 and max_pending_requests 1\)/);
  assert.equal(db.connections, 1, 'the waiting tunnel has no upstream connection yet');
  // The upstream connection has the rule's keepalive.
  const [s] = [...db.sockets];
  const ss = execFileSync('ss', ['-tnoH', 'state', 'established', `( sport = :${s.remotePort} )`], { encoding: 'utf8' });
  t.diagnostic(ss.trim());
  assert.match(ss, /timer:\(keepalive,(3[0-3])sec/);
  first.socket.destroy();
  assert.match(await second.answer, /^HTTP\/1.1 200/, 'the waiting tunnel opens once the first closes');
  assert.equal(db.connections, 2);
});
