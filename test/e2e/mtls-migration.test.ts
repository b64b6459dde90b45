// Istio's "Mutual TLS Migration" task, as a user runs it: `weft up examples/mtls` (httpbin and
// sleep in namespace foo, each with its service account), then PeerAuthentication applied with
// `weft apply`. Real processes throughout; the "legacy" client outside the mesh is this test,
// connecting straight to httpbin's sidecar.
//   1. As it comes (PERMISSIVE): sleep -> httpbin is mutual TLS (httpbin's sidecar saw sleep's
//      SPIFFE id), and the legacy client still gets through in plain text.
//   2. strict.yaml (STRICT in foo): every plain-text attempt from the legacy client is refused
//      (HTTP/1.1, HTTP/2 with prior knowledge and raw TCP, 100 each), while sleep still gets 200.
//   3. disable.yaml (DISABLE in foo): sleep's sidecar follows (plain text to httpbin; no new
//      handshake on httpbin's side), and the legacy client gets through again.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { request } from 'undici';
import { ROOT, type Up, startUp, waitFor, weft } from '../helpers.ts';

let up: Up;
let inbound: { host: string; port: number };
let httpbinAdmin: string;
const SLEEP = 'spiffe://cluster.local/ns/foo/sa/sleep';

const stats = async () => (await (await request(`${httpbinAdmin}/stats`)).body.json()) as { tls: { downstream: { handshakes: number } }; sources: Record<string, number> };

/** What sleep gets for GET /headers from httpbin.foo, through its sidecar (curl under weft exec). */
async function fromSleep(): Promise<{ code: string; body: string }> {
  const r = await weft(['exec', 'sleep', '--', 'curl', '-s', '-m', '10', '-w', '\n%{http_code}', 'http://httpbin.foo:8000/headers'], up.env);
  const lines = r.stdout.trimEnd().split('\n');
  return { code: lines.pop() ?? '', body: lines.join('\n') };
}

/** A plain-text HTTP/1.1 GET straight to httpbin's sidecar: its status, or the error. */
function legacyH1(): Promise<string> {
  return new Promise((resolve) => {
    const req = http.get({ host: inbound.host, port: inbound.port, path: '/headers', agent: false, timeout: 5000, headers: { host: 'httpbin.foo:8000' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.statusCode)));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
  });
}

/** The same over HTTP/2 with prior knowledge. */
function legacyH2(): Promise<string> {
  return new Promise((resolve) => {
    const s = http2.connect(`http://${inbound.host}:${inbound.port}`);
    let settled = false;
    const done = (v: string) => {
      if (settled) return;
      settled = true;
      s.destroy();
      resolve(v);
    };
    s.on('error', (e: NodeJS.ErrnoException) => done(`error ${e.code ?? e.message}`));
    s.on('close', () => done('error closed'));
    const timer = setTimeout(() => done('error timeout'), 5000);
    s.on('close', () => clearTimeout(timer));
    const req = s.request({ ':path': '/headers', ':authority': 'httpbin.foo:8000' });
    req.on('response', (h) => done(String(h[':status'])));
    req.on('error', (e: NodeJS.ErrnoException) => done(`error ${e.code ?? e.message}`));
    req.end();
  });
}

/** Raw TCP: what comes back for a request line, before the connection closes. */
function legacyTcp(): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect(inbound.port, inbound.host, () => c.write('GET /headers HTTP/1.0\r\nHost: httpbin.foo\r\n\r\n'));
    let got = '';
    c.setTimeout(5000, () => c.destroy());
    c.on('data', (d) => (got += d));
    c.on('error', () => {});
    c.on('close', () => resolve(got ? got.split('\r\n')[0] : 'closed, nothing back'));
  });
}

/** `weft apply` of a file of examples/mtls, or of YAML on stdin; resolves once both sidecars ACKed it. */
async function applyAndSync(what: { file: string } | { yaml: string }): Promise<void> {
  const r = 'file' in what ? await weft(['apply', '-f', path.join(ROOT, 'examples/mtls', what.file)], up.env) : await weft(['apply', '-f', '-'], up.env, what.yaml);
  assert.equal(r.code, 0, r.stderr);
  const revision = /\(revision (\d+)\)/.exec(r.stdout)![1];
  await waitFor(`every sidecar to ACK revision ${revision}`, async () => {
    const g = await weft(['get', 'proxies'], up.env);
    const rows = g.stdout.trim().split('\n').slice(1);
    return rows.length === 2 && rows.every((row) => new RegExp(`\\s${revision}\\s+current\\s+-$`).test(row));
  }, 10_000);
}

before(async () => {
  up = await startUp(path.join(ROOT, 'examples/mtls'));
  const h = up.state.workloads.find((w) => w.name === 'httpbin')!;
  const [host, port] = h.ports![0].inbound.split(':');
  inbound = { host, port: Number(port) };
  httpbinAdmin = h.admin!;
});
after(async () => {
  await up?.stop();
});

test('as it comes: sleep -> httpbin is mutual TLS, and a client outside the mesh still gets through (PERMISSIVE)', async () => {
  const r = await fromSleep();
  assert.equal(r.code, '200', r.body);
  const s = await stats();
  assert.ok(s.tls.downstream.handshakes >= 1, JSON.stringify(s.tls));
  assert.ok((s.sources[SLEEP] ?? 0) >= 1, `httpbin's sidecar saw sleep's identity: ${JSON.stringify(s.sources)}`);
  assert.equal(await legacyH1(), '200');
});

/** A plain-text HTTP/1.1 keep-alive connection and an HTTP/2 session to httpbin's sidecar, kept open between requests. */
function legacyKeptOpen() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const h2 = http2.connect(`http://${inbound.host}:${inbound.port}`);
  h2.on('error', () => {});
  const h1Get = () =>
    new Promise<string>((resolve) => {
      const req = http.get({ host: inbound.host, port: inbound.port, path: '/headers', agent, timeout: 5000, headers: { host: 'httpbin.foo:8000' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.statusCode)));
      });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
    });
  const h2Get = () =>
    new Promise<string>((resolve) => {
      if (h2.destroyed || h2.closed) return resolve('error session closed');
      const req = h2.request({ ':path': '/headers', ':authority': 'httpbin.foo:8000' });
      req.setTimeout(5000, () => req.close());
      req.on('response', (h) => {
        req.resume();
        resolve(String(h[':status']));
      });
      req.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
      req.on('close', () => resolve(`error stream closed (${req.rstCode})`));
      req.end();
    });
  const sockets = () => Object.values(agent.sockets).flat().length + Object.values(agent.freeSockets).flat().length;
  return { h1Get, h2Get, sockets, close: () => (agent.destroy(), h2.destroy()) };
}

test('STRICT in foo: 100 plain-text attempts each over HTTP/1.1, HTTP/2 and raw TCP are all refused; sleep still gets 200', async (t) => {
  // Connections a legacy client opened while PERMISSIVE: after STRICT, they carry nothing more either.
  const kept = legacyKeptOpen();
  t.after(() => kept.close());
  assert.deepEqual([await kept.h1Get(), await kept.h2Get()], ['200', '200']);
  assert.equal(kept.sockets(), 1, 'the HTTP/1.1 connection is kept alive for the next request');
  await applyAndSync({ file: 'strict.yaml' });
  const onOld = [await kept.h1Get(), await kept.h2Get()];
  t.diagnostic(`requests on the connections opened before STRICT: ${JSON.stringify(onOld)}`);
  assert.ok(onOld.every((v) => v.startsWith('error')), `no answer on a plain-text connection opened before STRICT: ${JSON.stringify(onOld)}`);
  const results: Record<string, Record<string, number>> = { h1: {}, h2: {}, tcp: {} };
  for (let i = 0; i < 100; i++) {
    for (const [k, f] of [['h1', legacyH1], ['h2', legacyH2], ['tcp', legacyTcp]] as const) {
      const v = await f();
      results[k][v] = (results[k][v] ?? 0) + 1;
    }
  }
  t.diagnostic(`outcomes: ${JSON.stringify(results)}`);
  for (const k of ['h1', 'h2'] as const) assert.ok(Object.keys(results[k]).every((v) => v.startsWith('error')), `${k}: ${JSON.stringify(results[k])}`);
  assert.deepEqual(results.tcp, { 'closed, nothing back': 100 });
  const r = await fromSleep();
  assert.equal(r.code, '200', r.body);
});

test('DISABLE in foo: sleep follows with plain text (no new handshake at httpbin), and the outside client gets through again', async () => {
  await applyAndSync({ file: 'disable.yaml' });
  const before = (await stats()).tls.downstream.handshakes;
  for (let i = 0; i < 3; i++) {
    const r = await fromSleep();
    assert.equal(r.code, '200', r.body);
  }
  assert.equal((await stats()).tls.downstream.handshakes, before, 'no TLS handshake at httpbin once DISABLE is applied');
  assert.equal(await legacyH1(), '200');
});

test("a client's DestinationRule tls: ISTIO_MUTUAL expecting another identity is refused at the handshake (503 naming it); with httpbin's identity, mTLS; DISABLE, plain text", async () => {
  const del = await weft(['delete', '-f', path.join(ROOT, 'examples/mtls/disable.yaml')], up.env);
  assert.equal(del.code, 0, del.stderr);
  const rule = (tls: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin, namespace: foo}
spec:
  host: httpbin.foo.svc.cluster.local
  trafficPolicy:
    tls: ${tls}
`;
  const apply = (tls: string) => applyAndSync({ yaml: rule(tls) });
  await apply('{mode: ISTIO_MUTUAL, subjectAltNames: ["spiffe://cluster.local/ns/foo/sa/somebody-else"]}');
  const wrong = await fromSleep();
  assert.equal(wrong.code, '503', wrong.body);
  assert.match(wrong.body, /somebody-else|subject alt|SAN|certificate/i);
  await apply('{mode: ISTIO_MUTUAL, subjectAltNames: ["spiffe://cluster.local/ns/foo/sa/httpbin"]}');
  // Requests httpbin's sidecar took over mTLS, by the client identity it proved.
  const fromSleepSeen = async () => (await stats()).sources[SLEEP] ?? 0;
  const before = await fromSleepSeen();
  const ok = await fromSleep();
  assert.equal(ok.code, '200', ok.body);
  assert.equal(await fromSleepSeen(), before + 1, 'the request came over mTLS, from sleep');
  await apply('{mode: DISABLE}');
  assert.equal((await fromSleep()).code, '200');
  assert.equal(await fromSleepSeen(), before + 1, 'plain text: no client identity at httpbin');
});

test('TLS session resumption between the sidecars: with a new connection per request, the later handshakes resume the first session', async () => {
  await applyAndSync({ yaml: `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin, namespace: foo}
spec:
  host: httpbin.foo.svc.cluster.local
  trafficPolicy:
    connectionPool: {http: {maxRequestsPerConnection: 1}}
` });
  const s0 = (await stats()).tls.downstream as { handshakes: number; resumed: number };
  for (let i = 0; i < 5; i++) assert.equal((await fromSleep()).code, '200');
  const s1 = (await stats()).tls.downstream as { handshakes: number; resumed: number };
  // A connection from before the rule may take one more request; every other request makes one.
  assert.ok(s1.handshakes - s0.handshakes >= 4, `a handshake per request: ${JSON.stringify({ s0, s1 })}`);
  assert.ok(s1.resumed - s0.resumed >= 3, `all but the first new one resumed: ${JSON.stringify({ s0, s1 })}`);
});

