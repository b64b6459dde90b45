// Mutual TLS between real sidecar processes, with the contract's xDS shapes set on translate's
// output by test/fixtures/mtls.ts (the shapes translate emits for PeerAuthentication, set here per
// server and with SANs the test chooses; test/e2e/mtls-migration.test.ts drives the same through
// PeerAuthentication itself, as a user would): HTTP/1.1, HTTP/2 and a TCP
// tunnel over mTLS; the server sidecar knows the client's SPIFFE id; STRICT refuses plaintext of
// every kind (none reaches the app); PERMISSIVE takes both; a client certificate from another CA is
// refused at the handshake; a server whose SAN is not the one asked for is refused by the client.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { type ControlPlane, startControlPlane } from '../../src/control/control-plane.ts';
import { freePort } from '../../src/util/net.ts';
import { tmpDir, waitFor } from '../helpers.ts';
import { type SidecarProc, raw, spawnSidecar, stopProc } from '../proxy/mesh.ts';
import { workloadCert } from '../fixtures/mesh-creds.ts';
import { generateMtls, spiffe } from '../fixtures/mtls.ts';

const CLIENT_SA = 'client-sa';
const CLIENT_ID = spiffe('default', CLIENT_SA);
const WRONG_ID = spiffe('default', 'somebody-else');

let cp: ControlPlane;
const closers: (() => unknown)[] = [];
const sidecars: SidecarProc[] = [];
let outbound = 0;
/** Requests (or connections) each app saw. */
const hits = { http: 0, h2: 0, tcp: 0 };
/** Inbound ports of the STRICT and PERMISSIVE servers: [http, http2, tcp]. */
let strictIn: number[] = [];
let permissiveIn: number[] = [];
let strictAdmin = '';

async function apps(): Promise<number[]> {
  const h1 = http.createServer((req, res) => {
    hits.http++;
    res.end(JSON.stringify({ app: 'http', version: req.httpVersion, url: req.url }));
  });
  const h2 = http2.createServer((req, res) => {
    hits.h2++;
    res.end(JSON.stringify({ app: 'h2', version: req.httpVersion, url: req.url }));
  });
  const echo = net.createServer((c) => {
    hits.tcp++;
    c.on('error', () => {});
    c.pipe(c);
  });
  const ports: number[] = [];
  for (const s of [h1, h2, echo] as net.Server[]) {
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    ports.push((s.address() as AddressInfo).port);
    closers.push(() => {
      (s as http.Server).closeAllConnections?.();
      s.close();
    });
  }
  return ports;
}

async function server(workload: string, service: string): Promise<{ inbound: number[]; proc: SidecarProc }> {
  const [h1, h2, echo] = await apps();
  const inbound = [await freePort(), await freePort(), await freePort()];
  const proc = await spawnSidecar(cp, ['--workload', workload, '--service', service, '--port', `http:80:${inbound[0]}:${h1}`, '--port', `http2-web:81:${inbound[1]}:${h2}`, '--port', `tcp-echo:9000:${inbound[2]}:${echo}`]);
  sidecars.push(proc);
  return { inbound, proc };
}

before(async () => {
  cp = await startControlPlane({
    dataDir: tmpDir('mtls'),
    adminPort: 0,
    xdsPort: 0,
    heartbeatMs: 2000,
    generate: generateMtls({
      mode: (proxy) => (proxy.name === 'strict-1' ? 'STRICT' : 'PERMISSIVE'),
      // The client is told to expect another identity for "wrongsan": it must refuse that server.
      sans: (cluster, computed) => (cluster.includes('|wrongsan.') ? [WRONG_ID] : computed),
    }),
  });
  const s = await server('strict-1', 'strict');
  strictIn = s.inbound;
  strictAdmin = s.proc.admin;
  permissiveIn = (await server('permissive-1', 'permissive')).inbound;
  await server('wrongsan-1', 'wrongsan');
  outbound = await freePort();
  sidecars.push(await spawnSidecar(cp, ['--workload', 'client', '--outbound-port', String(outbound)], {}, CLIENT_SA));
  await waitFor('the client to reach strict over mTLS', async () => {
    const r = await request(`http://127.0.0.1:${outbound}/`, { headers: { host: 'strict' } }).catch(() => undefined);
    if (!r) return false;
    await r.body.dump();
    return r.statusCode === 200;
  }, 20_000);
});

after(async () => {
  if (process.env.MTLS_DEBUG) for (const s of sidecars) console.error(s.stderr().slice(-3000));
  await Promise.all(sidecars.map((s) => stopProc(s.proc)));
  for (const c of closers) c();
  await cp?.close();
});

const stats = async (admin: string) => (await (await request(`${admin}/stats`)).body.json()) as any;

async function get(host: string, path = '/'): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const r = await request(`http://127.0.0.1:${outbound}${path}`, { headers: { host } });
  return { status: r.statusCode, body: await r.body.text(), headers: r.headers };
}

test('HTTP/1.1 over mTLS, STRICT and PERMISSIVE servers; the server sidecar saw the client\'s SPIFFE id', async () => {
  for (const host of ['strict', 'permissive']) {
    const r = await get(host, '/h1');
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(JSON.parse(r.body), { app: 'http', version: '1.1', url: '/h1' });
  }
  const s = await stats(strictAdmin);
  assert.ok(s.sources[CLIENT_ID] >= 1, `sources: ${JSON.stringify(s.sources)}`);
  assert.ok(s.tls.downstream.handshakes >= 1);
  const c = await stats(sidecars.at(-1)!.admin);
  assert.ok(c.tls.upstream.handshakes >= 2, JSON.stringify(c.tls));
});

test('HTTP/2 (h2c from the app, prior knowledge) over mTLS: istio-h2 inside', async () => {
  const session = http2.connect(`http://127.0.0.1:${outbound}`);
  try {
    for (const host of ['strict:81', 'permissive:81']) {
      const body = await new Promise<string>((resolve, reject) => {
        const st = session.request({ ':path': '/h2', ':authority': host });
        let b = '';
        st.setEncoding('utf8');
        st.on('data', (d) => (b += d));
        st.on('end', () => resolve(b));
        st.on('error', reject);
      });
      assert.deepEqual(JSON.parse(body), { app: 'h2', version: '2.0', url: '/h2' }, host);
    }
  } finally {
    session.close();
  }
});

/** CONNECT host:9000 through the client sidecar; writes `msg` and resolves with the echo. */
function echoThrough(host: string, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(outbound, '127.0.0.1', () => s.write(`CONNECT ${host}:9000 HTTP/1.1\r\nHost: ${host}:9000\r\n\r\n`));
    let buf = '';
    s.setEncoding('latin1');
    s.on('data', (d) => {
      buf += d;
      const at = buf.indexOf('\r\n\r\n');
      if (at < 0) return;
      if (!buf.startsWith('HTTP/1.1 200')) return reject(new Error(buf));
      if (buf.length === at + 4) s.write(msg);
      if (buf.slice(at + 4) === msg) {
        s.destroy();
        resolve(msg);
      }
    });
    s.on('error', reject);
    s.on('close', () => reject(new Error(`closed: ${JSON.stringify(buf)}`)));
  });
}

test('a TCP tunnel (CONNECT to a TCP service) over mTLS', async () => {
  assert.equal(await echoThrough('strict', 'ping strict'), 'ping strict');
  assert.equal(await echoThrough('permissive', 'ping permissive'), 'ping permissive');
});


const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
const H2_SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

test('STRICT refuses plaintext HTTP/1.1, HTTP/2 and raw TCP to its inbound ports (100 each): all closed, none reaches the app', async () => {
  const before = { ...hits };
  const N = 100;
  const kinds: [string, number, Buffer | string][] = [
    ['HTTP/1.1', strictIn[0]!, 'GET / HTTP/1.1\r\nHost: strict\r\n\r\n'],
    ['HTTP/2', strictIn[1]!, Buffer.concat([Buffer.from(PREFACE), H2_SETTINGS])],
    ['TCP', strictIn[2]!, 'hello\n'],
  ];
  for (const [what, port, bytes] of kinds) {
    const got = await Promise.all(Array.from({ length: N }, () => raw(port, bytes, 5000)));
    assert.ok(got.every((g) => g.closed && g.data === ''), `${what}: ${got.filter((g) => !g.closed || g.data).length} of ${N} were answered or left open`);
  }
  assert.deepEqual(hits, before, 'nothing reached the apps');
  const s = await stats(strictAdmin);
  assert.ok(s.tls.downstream.failures.plaintext >= 3 * N, JSON.stringify(s.tls));
});

test('PERMISSIVE takes plaintext too', async () => {
  const r = await request(`http://127.0.0.1:${permissiveIn[0]}/plain`, { headers: { host: 'permissive' } });
  assert.equal(r.statusCode, 200);
  assert.deepEqual(JSON.parse(await r.body.text()), { app: 'http', version: '1.1', url: '/plain' });
  const echo = await new Promise<string>((resolve, reject) => {
    const s = net.connect(permissiveIn[2]!, '127.0.0.1', () => s.write('plain tcp'));
    s.setEncoding('latin1');
    s.on('data', (d) => {
      s.destroy();
      resolve(d as unknown as string);
    });
    s.on('error', reject);
  });
  assert.equal(echo, 'plain tcp');
});

/** A TLS handshake with the strict inbound port: resolves with the peer's error, or 'connected'. */
async function handshake(port: number, creds: { keyPem: string; certPem: string } | undefined, ca: string, alpn = ['istio-http/1.1', 'istio']): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ port, host: '127.0.0.1', ca, ...(creds ? { key: creds.keyPem, cert: creds.certPem } : {}), ALPNProtocols: alpn, checkServerIdentity: () => undefined });
    s.on('secureConnect', () => {
      // TLS 1.3: the server checks the client certificate after the client's Finished; wait for its verdict.
      s.write('GET / HTTP/1.1\r\nHost: strict\r\n\r\n');
    });
    s.on('data', () => {
      s.destroy();
      resolve('connected');
    });
    s.on('error', (e) => resolve(`error: ${e.message}`));
    s.on('close', () => resolve('closed'));
  });
}

test('a client certificate from another CA, or none, is refused at the handshake; the mesh one is taken', async (t) => {
  const other = await startControlPlane({ dataDir: tmpDir('mtls-other-ca'), adminPort: 0, xdsPort: 0 });
  try {
    const before = hits.http;
    const foreign = await workloadCert(other, { serviceAccount: CLIENT_SA });
    const r1 = await handshake(strictIn[0]!, foreign, cp.trustBundle);
    assert.match(r1, /^(error|closed)/);
    const r2 = await handshake(strictIn[0]!, undefined, cp.trustBundle);
    assert.match(r2, /^(error|closed)/);
    assert.equal(hits.http, before);
    // The same with the mesh's own certificate gets through (the test itself is sound).
    assert.equal(await handshake(strictIn[0]!, await workloadCert(cp, { serviceAccount: CLIENT_SA }), cp.trustBundle), 'connected');
    // A mesh certificate offering no istio ALPN matches no chain: closed.
    assert.match(await handshake(strictIn[0]!, await workloadCert(cp, { serviceAccount: CLIENT_SA }), cp.trustBundle, ['h2', 'http/1.1']), /^(error|closed)/);
    const s = await stats(strictAdmin);
    t.diagnostic(JSON.stringify(s.tls.downstream));
    const f = s.tls.downstream.failures;
    assert.ok(f.untrusted_client_certificate >= 1 && f.no_filter_chain >= 1 && Object.keys(f).length >= 4, JSON.stringify(s.tls));
  } finally {
    await other.close();
  }
});

test('garbage that looks like TLS is closed and counted; the listener goes on', async () => {
  const junk = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x40]), Buffer.alloc(64, 0xaa)]);
  const r = await raw(strictIn[0]!, junk, 5000);
  assert.ok(r.closed && r.data === '');
  assert.equal((await get('strict', '/after')).status, 200);
});

test('a server whose certificate is not one of match_subject_alt_names is refused by the client: 503 naming the reason', async () => {
  const before = hits.http;
  const r = await get('wrongsan', '/');
  assert.equal(r.status, 503, r.body);
  assert.equal(r.headers['x-weft-error'], 'connect_failed');
  assert.match(r.body, /upstream TLS: certificate for spiffe:\/\/cluster\.local\/ns\/default\/sa\/default is not one of spiffe:\/\/cluster\.local\/ns\/default\/sa\/somebody-else/);
  assert.match(r.body, /outbound\|80\|\|wrongsan/);
  assert.equal(hits.http, before);
});
