// The cluster's load balancing for opaque TCP (review: the TCP path round-robined whatever the
// DestinationRule said), on real sockets: the sidecar's outbound listener in process, in front
// of real TCP servers that say who they are. consistentHash useSourceIp keeps a client on one
// endpoint, as Istio's tcp_proxy hash policy; endpoint weights share the connections.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { RuntimeConfig } from '../../src/proxy/config.ts';
import { Telemetry } from '../../src/proxy/telemetry/events.ts';
import { freePort } from '../../src/util/net.ts';
import { meshOf, sidecarSnapshot, workload } from '../snapshot.ts';
import { outboundListener } from './outbound-listener.ts';
import { listen } from '../helpers.ts';

const closers: (() => void)[] = [];
after(() => {
  for (const c of closers.splice(0)) c();
});

/** A TCP server that writes its name to each connection and closes it. */
async function named(name: string): Promise<number> {
  const server = net.createServer((c) => {
    c.on('error', () => {});
    c.end(name);
  });
  const port = await listen(server);
  closers.push(() => server.close());
  return port;
}

/** The client sidecar's outbound listener, in process, for this config. */
async function outbound(config: object[], workloads = [workload('client', { port: 43000 })], connectionLimit = 100, telemetry = new Telemetry()): Promise<number> {
  const client = workloads[workloads.length - 1];
  const cfg: RuntimeConfig = sidecarSnapshot(meshOf(config, workloads), client);
  return outboundListener(cfg, closers, { connectionLimit, telemetry });
}

/** CONNECT to `target` through the listener; the name the server wrote. */
function reach(port: number, target: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
    let buf = '';
    s.on('data', (d) => (buf += d.toString('latin1')));
    s.on('error', reject);
    // What came after the CONNECT's answer; a connection closed without one is "refused".
    s.on('close', () => resolve(buf.includes('\r\n\r\n') ? buf.split('\r\n\r\n')[1] : 'refused'));
  });
}

const se = (name: string, endpoints: object[]) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name, namespace: 'default' },
  spec: { hosts: [`${name}.example.com`], ports: [{ number: 5432, name: 'tcp', protocol: 'TCP' }], resolution: 'STATIC', endpoints },
});
const dr = (name: string, trafficPolicy: object) => ({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name, namespace: 'default' }, spec: { host: `${name}.example.com`, trafficPolicy } });

test('TCP: consistentHash useSourceIp keeps one client on one endpoint, as Istio\'s tcp_proxy hash policy', async () => {
  const ports = await Promise.all(['a', 'b', 'c'].map(named));
  const endpoints = ports.map((p) => ({ address: '127.0.0.1', ports: { tcp: p } }));
  const hashed = await outbound([se('db', endpoints), dr('db', { loadBalancer: { consistentHash: { useSourceIp: true } } })]);
  const got = new Set<string>();
  for (let i = 0; i < 12; i++) got.add(await reach(hashed, 'db.example.com:5432'));
  assert.equal(got.size, 1, [...got].join());
  // Round robin (no rule) spreads the same connections over all three.
  const plain = await outbound([se('db', endpoints)]);
  const spread = new Set<string>();
  for (let i = 0; i < 12; i++) spread.add(await reach(plain, 'db.example.com:5432'));
  assert.equal(spread.size, 3);
});

test('TCP: endpoint weights share the connections (3 to 1)', async (t) => {
  const [heavy, light] = await Promise.all([named('heavy'), named('light')]);
  const port = await outbound([se('w', [{ address: '127.0.0.1', ports: { tcp: heavy }, weight: 3 }, { address: '127.0.0.1', ports: { tcp: light }, weight: 1 }])]);
  const counts: Record<string, number> = { heavy: 0, light: 0 };
  for (let i = 0; i < 200; i++) {
    const who = await reach(port, 'w.example.com:5432');
    counts[who] = (counts[who] ?? 0) + 1;
  }
  t.diagnostic(`200 connections: ${JSON.stringify(counts)}`);
  assert.ok(counts.heavy >= 125 && counts.heavy <= 175, JSON.stringify(counts));
});

test('TCP: outlier detection ejects an endpoint that refuses connections; later connections go straight to the other', async () => {
  const good = await named('good');
  const deadPort = await freePort();
  const telemetry = new Telemetry();
  let failed = 0;
  telemetry.tcp.subscribe((e) => {
    if (e.kind === 'connect_failed') failed++;
  });
  const port = await outbound([se('o', [{ address: '127.0.0.1', ports: { tcp: deadPort } }, { address: '127.0.0.1', ports: { tcp: good } }]), dr('o', { outlierDetection: { consecutive5xxErrors: 1, interval: '10s', baseEjectionTime: '60s', maxEjectionPercent: 50 } })], undefined, 100, telemetry);
  // Every connection gets through (a refused connect is tried again elsewhere)...
  for (let i = 0; i < 10; i++) assert.equal(await reach(port, 'o.example.com:5432'), 'good');
  // ...and after the first refusal the dead endpoint is ejected: no connection tries it again (round robin alone: every other one).
  assert.ok(failed <= 1, `${failed} failed connects in 10 tunnels`);
});

test('review: a closed CONNECT tunnel no longer counts against the sidecar\'s connection limit (every tunnel kept its slot, and after as many as the limit, connections were refused)', async () => {
  const one = await named('one');
  const port = await outbound([se('t', [{ address: '127.0.0.1', ports: { tcp: one } }])], undefined, 10);
  for (let i = 0; i < 30; i++) assert.equal(await reach(port, 't.example.com:5432'), 'one', `tunnel ${i + 1}`);
});

test('review: a refused CONNECT (no route, nowhere to connect) is closed and leaves the connection limit (each kept its slot, and after as many as the limit the sidecar refused everything)', async () => {
  const deadPort = await freePort();
  const port = await outbound([se('gone', [{ address: '127.0.0.1', ports: { tcp: deadPort } }])], undefined, 5);
  const status = (target: string) =>
    new Promise<string>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
      let buf = '';
      s.on('data', (d) => {
        buf += d.toString('latin1');
        // The client, as curl does: it has its answer, and goes (reset or not).
        if (buf.includes('\r\n\r\n')) s.destroy();
      });
      s.on('error', () => {});
      s.on('close', () => resolve(buf.split('\r\n')[0] || 'closed without an answer'));
    });
  for (let i = 0; i < 15; i++) {
    assert.match(await status('gone.example.com:5432'), /^HTTP\/1.1 503/, `refused connect ${i + 1}`);
    assert.match(await status('nowhere.invalid:1'), /^HTTP\/1.1 (404|503)/, `no route ${i + 1}`);
  }
});
