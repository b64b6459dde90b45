// TLS origination (DestinationRule tls SIMPLE and MUTUAL) through a real sidecar process: the app
// sends plain HTTP to its sidecar, and the sidecar speaks TLS to HTTPS servers outside the mesh,
// with certificates made here by a test CA (openssl). Istio's "Egress TLS Origination" task's
// shape (a ServiceEntry on port 80 with targetPort to the HTTPS port, a DestinationRule with
// SIMPLE and no CA: the default roots, here the test CA through NODE_EXTRA_CA_CERTS), the CA, SAN
// and SNI checks, a client certificate for a server that requires one, and a file that cannot be
// read (a NACK naming the cluster and the file, the last good config serving on); TLS under a
// TCP tunnel, and to a passthrough (resolution NONE) destination.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Agent, request } from 'undici';
import { checkResource } from '../../src/api/index.ts';
import { type ControlPlane, startControlPlane } from '../../src/control/control-plane.ts';
import { freePort } from '../../src/util/net.ts';
import { tmpDir, waitFor } from '../helpers.ts';
import { type SidecarProc, listen, spawnSidecar, stopMesh } from '../proxy/mesh.ts';

const dir = tmpDir('tls-origination');
const file = (name: string) => path.join(dir, name);

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

/** A CA: key and self-signed certificate, at <name>.key and <name>.pem. */
function makeCa(name: string): void {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-keyout', file(`${name}.key`), '-out', file(`${name}.pem`), '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
}

/** A certificate for `cn` with DNS SANs `names`, signed by CA `ca`, at <name>.key and <name>.pem. */
function makeCert(name: string, ca: string, cn: string, names: string[]): void {
  openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', `/CN=${cn}`);
  fs.writeFileSync(file(`${name}.ext`), `basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n${names.length ? `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\n` : ''}`);
  openssl('x509', '-req', '-in', file(`${name}.csr`), '-CA', file(`${ca}.pem`), '-CAkey', file(`${ca}.key`), '-CAcreateserial', '-days', '1', '-out', file(`${name}.pem`), '-extfile', file(`${name}.ext`));
}

let cp: ControlPlane;
let outbound = 0;
const sidecars: SidecarProc[] = [];
const servers: https.Server[] = [];
/** Raw TLS servers (no HTTP): each ends its connections itself. */
const tlsServers: (tls.Server | http2.Http2SecureServer)[] = [];
/** The HTTPS servers: `simple` takes any client, `mutual` requires a certificate from client-ca. */
const port = { simple: 0, mutual: 0, tcp: 0, h2: 0 };

const res = (kind: string, name: string, spec: object) => checkResource({ apiVersion: 'networking.istio.io/v1', kind, metadata: { name }, spec }, 'test');

/** What a server saw: the SNI, the ALPN, the client certificate's CN, the path. */
function answer(req: import('node:http').IncomingMessage, r: import('node:http').ServerResponse): void {
  const s = req.socket as TLSSocket;
  const peer = s.getPeerCertificate();
  r.end(`sni=${s.servername || '-'} alpn=${s.alpnProtocol || '-'} client=${peer && peer.subject ? peer.subject.CN : '-'} ${req.url}`);
}

before(async () => {
  makeCa('ca');
  makeCa('other-ca');
  makeCa('client-ca');
  makeCert('server', 'ca', 'api.example.test', ['api.example.test', '*.wild.example.test']);
  makeCert('client', 'client-ca', 'sleep-client', []);
  const read = (n: string) => fs.readFileSync(file(n));
  const simple = https.createServer({ key: read('server.key'), cert: read('server.pem') }, answer);
  const mutual = https.createServer({ key: read('server.key'), cert: read('server.pem'), ca: read('client-ca.pem'), requestCert: true, rejectUnauthorized: true }, answer);
  servers.push(simple, mutual);
  port.simple = await listen(simple);
  port.mutual = await listen(mutual);
  // A TLS server speaking raw TCP: it says the SNI and the client's first line, then closes.
  const tcp = tls.createServer({ key: read('server.key'), cert: read('server.pem') }, (c) => {
    c.on('error', () => {});
    c.once('data', (d) => c.end(`sni=${(c as TLSSocket).servername || '-'} alpn=${c.alpnProtocol || '-'} got=${String(d).trim()}\n`));
  });
  tlsServers.push(tcp);
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
  port.tcp = (tcp.address() as AddressInfo).port;
  // HTTP/2 only (no HTTP/1.1 fallback): ALPN must say h2.
  const h2 = http2.createSecureServer({ key: read('server.key'), cert: read('server.pem') }, (req, r) => {
    r.end(`h2 sni=${(req.stream.session!.socket as TLSSocket).servername} alpn=${req.stream.session!.alpnProtocol} ${req.url}`);
  });
  tlsServers.push(h2);
  await new Promise<void>((r) => h2.listen(0, '127.0.0.1', () => r()));
  port.h2 = (h2.address() as AddressInfo).port;
  cp = await startControlPlane({ dataDir: tmpDir('tls-origination-cp'), adminPort: 0, xdsPort: 0, heartbeatMs: 2000 });
  outbound = await freePort();
  // The default roots of the sidecar's Node: its bundled ones and, as a machine would add its own, the test CA.
  sidecars.push(await spawnSidecar(cp, ['--workload', 'sleep', '--outbound-port', String(outbound)], { NODE_EXTRA_CA_CERTS: file('ca.pem') }));
});

after(async () => {
  await stopMesh(sidecars, servers, cp);
  for (const t of tlsServers) t.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const agent = new Agent({ connections: 4 });
async function get(host: string, path = '/') {
  const r = await request(`http://127.0.0.1:${outbound}${path}`, { headers: { host }, dispatcher: agent });
  return { status: r.statusCode, body: await r.body.text(), error: r.headers['x-weft-error'] as string | undefined };
}

/** A ServiceEntry for `host`: port 80 (HTTP) whose connections go to `target` on 127.0.0.1 (targetPort, as the egress task's). */
function entry(name: string, host: string, target: number, labels: Record<string, string> = {}) {
  return res('ServiceEntry', name, { hosts: [host], ports: [{ number: 80, name: 'http-port', protocol: 'HTTP', targetPort: target }], resolution: 'STATIC', endpoints: [{ address: '127.0.0.1', labels }] });
}

/** Waits until `host` answers as `ok` says (the config reached the sidecar). */
function until(what: string, host: string, ok: (x: Awaited<ReturnType<typeof get>>) => boolean, path = '/') {
  let last: unknown;
  return waitFor(what, async () => {
    const x = await get(host, path);
    last = x;
    return ok(x) && x;
  }).catch((e) => {
    throw new Error(`${(e as Error).message}; last answer: ${JSON.stringify(last)}`);
  });
}

test('the egress TLS origination task: plain HTTP from the app, TLS from the sidecar with SNI from the host, checked against the default roots and the host', async () => {
  // Before the DestinationRule: plain text to an HTTPS port, which the server cannot read.
  cp.store.apply([entry('api', 'api.example.test', port.simple)]);
  await until('the entry to route', 'api.example.test', (x) => x.status !== 404 && x.error !== 'no_route');
  cp.store.apply([res('DestinationRule', 'api', { host: 'api.example.test', trafficPolicy: { portLevelSettings: [{ port: { number: 80 }, tls: { mode: 'SIMPLE' } }] } })]);
  const r = await until('TLS origination', 'api.example.test', (x) => x.status === 200, '/politics');
  // auto_sni: the request's host; no ALPN (the mesh's istio-http/1.1 is not offered to a server outside it).
  assert.equal(r.body, 'sni=api.example.test alpn=- client=- /politics');
  // A name the certificate covers by its wildcard: SNI and the SAN check follow the host.
  cp.store.apply([entry('wild', 'a.wild.example.test', port.simple), res('DestinationRule', 'wild', { host: 'a.wild.example.test', trafficPolicy: { tls: { mode: 'SIMPLE' } } })]);
  assert.equal((await until('the wildcard host', 'a.wild.example.test', (x) => x.status === 200)).body, 'sni=a.wild.example.test alpn=- client=- /');
});

test("SIMPLE: the server's certificate must chain to caCertificates and name the host (auto SAN validation) or one of subjectAltNames; insecureSkipVerify skips both", async () => {
  const dr = (tls: object) => res('DestinationRule', 'alias', { host: 'alias.example.test', trafficPolicy: { tls: { mode: 'SIMPLE', ...tls } } });
  cp.store.apply([entry('alias', 'alias.example.test', port.simple), dr({ caCertificates: file('ca.pem'), subjectAltNames: ['api.example.test'], sni: 'api.example.test' })]);
  const ok = await until('SIMPLE with the right CA', 'alias.example.test', (x) => x.status === 200);
  assert.equal(ok.body, 'sni=api.example.test alpn=- client=- /');

  // Another CA: 503, saying the certificate does not chain to the roots of that file.
  cp.store.apply([dr({ caCertificates: file('other-ca.pem'), subjectAltNames: ['api.example.test'], sni: 'api.example.test' })]);
  const wrongCa = await until('the wrong CA to be refused', 'alias.example.test', (x) => x.status === 503 && /other-ca/.test(x.body));
  assert.equal(wrongCa.error, 'connect_failed');
  assert.match(wrongCa.body, new RegExp(`cluster outbound\\|80\\|\\|alias\\.example\\.test: upstream TLS: the server's certificate does not chain to the roots of ${file('other-ca.pem').replace(/[.]/g, '\\.')}`));

  // The right CA, a SAN the certificate does not have.
  cp.store.apply([dr({ caCertificates: file('ca.pem'), subjectAltNames: ['billing.example.test'], sni: 'api.example.test' })]);
  const wrongSan = await until('the SAN mismatch to be refused', 'alias.example.test', (x) => x.status === 503 && /billing/.test(x.body));
  assert.match(wrongSan.body, /upstream TLS: the server's certificate names api\.example\.test, \*\.wild\.example\.test, none of billing\.example\.test/);

  // No sni and no subjectAltNames: the host must be named by the certificate (Istio's auto_san_validation).
  cp.store.apply([dr({ caCertificates: file('ca.pem') })]);
  const wrongHost = await until('the host the certificate does not name to be refused', 'alias.example.test', (x) => x.status === 503 && /none of alias/.test(x.body));
  assert.match(wrongHost.body, /names api\.example\.test, \*\.wild\.example\.test, none of alias\.example\.test/);

  // insecureSkipVerify: the other CA and the host are not checked.
  cp.store.apply([dr({ insecureSkipVerify: true })]);
  const skipped = await until('insecureSkipVerify', 'alias.example.test', (x) => x.status === 200);
  assert.equal(skipped.body, 'sni=alias.example.test alpn=- client=- /');
});

test('MUTUAL at the subset level: the client certificate reaches a server that requires one; SIMPLE to it fails', async () => {
  cp.store.apply([
    entry('secure', 'secure.example.test', port.mutual, { version: 'v1' }),
    res('VirtualService', 'secure', { hosts: ['secure.example.test'], http: [{ route: [{ destination: { host: 'secure.example.test', subset: 'v1' } }] }] }),
    res('DestinationRule', 'secure', {
      host: 'secure.example.test',
      trafficPolicy: { tls: { mode: 'SIMPLE', caCertificates: file('ca.pem'), subjectAltNames: ['api.example.test'] } },
      subsets: [{ name: 'v1', labels: { version: 'v1' }, trafficPolicy: { tls: { mode: 'MUTUAL', caCertificates: file('ca.pem'), subjectAltNames: ['api.example.test'], clientCertificate: file('client.pem'), privateKey: file('client.key') } } }],
    }),
  ]);
  const r = await until('MUTUAL to the subset', 'secure.example.test', (x) => x.status === 200);
  assert.equal(r.body, 'sni=secure.example.test alpn=- client=sleep-client /');

  // The rule's own SIMPLE (no client certificate): the server refuses (under TLS 1.3 its alert
  // comes after the client's handshake, so the request is what fails).
  cp.store.apply([res('VirtualService', 'secure', { hosts: ['secure.example.test'], http: [{ route: [{ destination: { host: 'secure.example.test' } }] }] })]);
  const refused = await until('SIMPLE to a server that requires a certificate to fail', 'secure.example.test', (x) => x.status !== 200);
  assert.ok(refused.status === 502 || refused.status === 503, refused.body);
  assert.match(refused.body, /cluster outbound\|80\|\|secure\.example\.test.*CERTIFICATE_REQUIRED/);
});

test('a file that cannot be read is a NACK naming the cluster and the file; the last good TLS serves on; a new push reads the files again', async () => {
  const ca = file('rotating-ca.pem');
  fs.copyFileSync(file('other-ca.pem'), ca);
  const dr = (caCertificates: string, timeout = '5s') => res('DestinationRule', 'files', { host: 'files.example.test', trafficPolicy: { connectionPool: { tcp: { connectTimeout: timeout } }, tls: { mode: 'SIMPLE', caCertificates, subjectAltNames: ['api.example.test'] } } });
  cp.store.apply([entry('files', 'files.example.test', port.simple), dr(ca)]);
  await until('the wrong roots first', 'files.example.test', (x) => x.status === 503);
  // The same path, now holding the right CA: read again when the cluster's configuration changes.
  fs.copyFileSync(file('ca.pem'), ca);
  cp.store.apply([dr(ca, '6s')]);
  await until('the file to be read again', 'files.example.test', (x) => x.status === 200);

  cp.store.apply([dr(file('missing-ca.pem'))]);
  const nack = await waitFor('a CDS NACK', async () => cp.ads.proxies().find((p) => p.workload.name === 'sleep')?.types.find((t) => t.type === 'CDS')?.nack);
  assert.match(nack.reason, new RegExp(`cluster outbound\\|80\\|\\|files\\.example\\.test: transport_socket: CA certificates file ${file('missing-ca.pem').replace(/[.]/g, '\\.')} cannot be read \\(ENOENT\\)`));
  // A file that is no certificate: the same.
  fs.writeFileSync(file('garbage.pem'), 'not a certificate');
  cp.store.apply([dr(file('garbage.pem'))]);
  const cds = () => cp.ads.proxies().find((p) => p.workload.name === 'sleep')?.types.find((t) => t.type === 'CDS');
  await waitFor('the NACK of the bad file', async () => /garbage\.pem: holds no PEM certificate/.test(cds()?.nack?.reason ?? '')).catch((e) => {
    throw new Error(`${(e as Error).message}: ${JSON.stringify(cds())}`);
  });
  // The sidecar kept its last good clusters: TLS with the right roots still.
  assert.equal((await get('files.example.test')).status, 200);
  assert.equal(sidecars[0]!.proc.exitCode, null);
  // Put right, the next push is taken again (else every later CDS response would be NACKed too).
  cp.store.apply([dr(ca, '7s')]);
  await waitFor('CDS taken again', async () => cds() && !cds()!.nack);
});

test('resolution NONE (a passthrough cluster: the request names where it goes): TLS is originated there too', async () => {
  // The app asks for the entry's address; the sidecar goes there, to the targetPort.
  cp.store.apply([
    res('ServiceEntry', 'none', { hosts: ['pt.example.test'], addresses: ['127.0.0.1'], ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: port.simple }], resolution: 'NONE' }),
    res('DestinationRule', 'none', { host: 'pt.example.test', trafficPolicy: { tls: { mode: 'SIMPLE', caCertificates: file('ca.pem'), subjectAltNames: ['api.example.test'], sni: 'api.example.test' } } }),
  ]);
  const r = await until('TLS to the passthrough destination', '127.0.0.1', (x) => x.status === 200);
  assert.equal(r.body, 'sni=api.example.test alpn=- client=- /');
});

/** CONNECT host:port through the sidecar, send a line of plain text; resolves with what came back after the 200. */
function tcpThrough(hostPort: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(outbound, '127.0.0.1', () => s.write(`CONNECT ${hostPort} HTTP/1.1\r\nHost: ${hostPort}\r\n\r\n`));
    let buf = '';
    s.setEncoding('latin1');
    s.on('data', (d) => {
      buf += d;
      if (buf.startsWith('HTTP/1.1 200') && buf.endsWith('\r\n\r\n')) s.write('hello\n');
    });
    s.on('error', reject);
    s.on('close', () => resolve(buf));
  });
}

test('a TCP port: the sidecar originates TLS under the tunnel, with the rule\'s sni and SAN check', async () => {
  cp.store.apply([
    res('ServiceEntry', 'db', { hosts: ['db.example.test'], ports: [{ number: 5432, name: 'tcp', protocol: 'TCP' }], resolution: 'STATIC', endpoints: [{ address: '127.0.0.1', ports: { tcp: port.tcp } }] }),
    res('DestinationRule', 'db', { host: 'db.example.test', trafficPolicy: { tls: { mode: 'SIMPLE', caCertificates: file('ca.pem'), subjectAltNames: ['api.example.test'], sni: 'api.example.test' } } }),
  ]);
  const got = await waitFor('TLS under the tunnel', async () => {
    const x = await tcpThrough('db.example.test:5432');
    return x.includes('sni=') && x;
  });
  assert.match(got, /^HTTP\/1\.1 200 [^]*\r\n\r\nsni=api\.example\.test alpn=- got=hello\n$/);
});

test('an HTTP/2 port: the sidecar offers h2 over the TLS it originates, and the server speaks HTTP/2', async () => {
  cp.store.apply([
    res('ServiceEntry', 'h2', { hosts: ['h2.example.test'], ports: [{ number: 80, name: 'http2', protocol: 'HTTP2', targetPort: port.h2 }], resolution: 'STATIC', endpoints: [{ address: '127.0.0.1' }] }),
    res('DestinationRule', 'h2', { host: 'h2.example.test', trafficPolicy: { tls: { mode: 'SIMPLE', caCertificates: file('ca.pem'), subjectAltNames: ['api.example.test'] } } }),
  ]);
  const r = await until('HTTP/2 over originated TLS', 'h2.example.test', (x) => x.status === 200, '/v2');
  assert.equal(r.body, 'h2 sni=h2.example.test alpn=h2 /v2');
});
