// The sidecar's side of TLS origination (docs/mtls.md, "TLS origination"), without a control plane:
// the shapes it converts (Istio's SDS file names, Envoy's filename data sources, an empty
// validation context), what it refuses by name, the files it reads (a NACK naming the cluster and
// the file when one cannot be used), Envoy's SAN matching, the request host's SNI and SAN, and
// real handshakes against a server with a certificate made here.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { ConvertError, convertCluster } from '../../src/proxy/xds-client/convert.ts';
import { loadClusterFiles, requestTls, sanMismatchOf } from '../../src/proxy/tls/origination.ts';
import { TLS_HANDSHAKE, connectTls } from '../../src/proxy/tls/upstream.ts';
import { TYPE } from '../../src/xds/types.ts';
import { tmpDir } from '../helpers.ts';

const dir = tmpDir('origination');
const file = (n: string) => path.join(dir, n);
const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
const noSecrets = { current: () => { throw new Error('no workload certificate here'); } };

function makeCa(name: string): void {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-keyout', file(`${name}.key`), '-out', file(`${name}.pem`), '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
}
function makeCert(name: string, ca: string, san: string): void {
  openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', `/CN=${name}`);
  fs.writeFileSync(file(`${name}.ext`), `basicConstraints=CA:FALSE\nsubjectAltName=${san}\n`);
  openssl('x509', '-req', '-in', file(`${name}.csr`), '-CA', file(`${ca}.pem`), '-CAkey', file(`${ca}.key`), '-CAcreateserial', '-days', '1', '-out', file(`${name}.pem`), '-extfile', file(`${name}.ext`));
}
/** A CRL of `ca` revoking `revoked` (openssl ca needs its little database). */
function makeCrl(ca: string, revoked: string, out: string): void {
  const db = file(`${ca}-db`);
  fs.mkdirSync(db, { recursive: true });
  fs.writeFileSync(path.join(db, 'index.txt'), '');
  fs.writeFileSync(path.join(db, 'crlnumber'), '01\n');
  fs.writeFileSync(path.join(db, 'ca.cnf'), `[ca]\ndefault_ca=d\n[d]\ndatabase=${db}/index.txt\ncrlnumber=${db}/crlnumber\ndefault_md=sha256\ndefault_crl_days=1\ncertificate=${file(`${ca}.pem`)}\nprivate_key=${file(`${ca}.key`)}\n`);
  openssl('ca', '-config', path.join(db, 'ca.cnf'), '-revoke', file(`${revoked}.pem`));
  openssl('ca', '-config', path.join(db, 'ca.cnf'), '-gencrl', '-out', out);
}

let server: tls.Server;
let port = 0;
/** A second server, whose certificate ca's CRL does not revoke. */
let server2: tls.Server;
let port2 = 0;
before(async () => {
  makeCa('ca');
  makeCa('other');
  makeCert('srv', 'ca', 'DNS:api.example.test,IP:127.0.0.1');
  makeCert('client', 'ca', 'DNS:client');
  makeCrl('ca', 'srv', file('revoked.crl'));
  makeCrl('other', 'client', file('other.crl')); // a CRL of another CA: revokes nothing of ca's
  server = tls.createServer({ key: fs.readFileSync(file('srv.key')), cert: fs.readFileSync(file('srv.pem')) }, (s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as AddressInfo).port;
  server2 = tls.createServer({ key: fs.readFileSync(file('client.key')), cert: fs.readFileSync(file('client.pem')) }, (s) => s.end());
  await new Promise<void>((r) => server2.listen(0, '127.0.0.1', () => r()));
  port2 = (server2.address() as AddressInfo).port;
});
after(() => {
  server.close();
  server2.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const cluster = (common: object, extra: object = {}) => ({
  name: 'outbound|443||api.example.test',
  type: 'STATIC',
  load_assignment: { cluster_name: 'x', endpoints: [] },
  transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: { '@type': TYPE.upstreamTls, common_tls_context: common, ...extra } },
  metadata: { filter_metadata: { istio: { alpn_override: 'false' } } },
});
const roots = (name: string, dvc: object = {}) => ({ combined_validation_context: { default_validation_context: dvc, validation_context_sds_secret_config: { name } } });

/** Converts and loads, then handshakes with the test server; resolves with 'ok' or the error message. */
async function handshake(common: object, extra: object = {}, to = port): Promise<string> {
  const c = convertCluster(cluster(common, extra));
  await loadClusterFiles([c]);
  return await new Promise((resolve) => {
    const s = connectTls('127.0.0.1', to, { tls: c.transportSocket!, secrets: noSecrets }, 'http1');
    s.once('secureConnect', () => {
      s.destroy();
      resolve('ok');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === TLS_HANDSHAKE ? e.message : `not a handshake failure: ${e.code} ${e.message}`));
  });
}

test("converts Istio's file secrets, Envoy's filename data sources and an empty validation context; NACKs what it cannot read", () => {
  const sds = convertCluster(cluster({ tls_certificate_sds_secret_configs: [{ name: 'file-cert:/c.pem~/k.pem' }], ...roots('file-root:/ca.pem', { crl: { filename: '/crl.pem' }, match_subject_alt_names: [{ exact: 'a' }] }) }));
  assert.deepEqual(sds.transportSocket!.files, { cert: { certFile: '/c.pem', keyFile: '/k.pem' }, roots: { caFile: '/ca.pem' }, crlFile: '/crl.pem' });
  assert.deepEqual(sds.transportSocket!.sans, ['a']);
  const inline = convertCluster(cluster({ tls_certificates: [{ certificate_chain: { filename: '/c.pem' }, private_key: { filename: '/k.pem' } }], validation_context: { trusted_ca: { filename: '/ca.pem' } } }));
  assert.deepEqual(inline.transportSocket!.files, { cert: { certFile: '/c.pem', keyFile: '/k.pem' }, roots: { caFile: '/ca.pem' } });
  assert.deepEqual(convertCluster(cluster({ validation_context: {} })).transportSocket!.files, { roots: 'none' });
  const nack = (c: object, re: RegExp) => assert.throws(() => convertCluster(c), (e: unknown) => e instanceof ConvertError && re.test(e.message));
  const C = 'cluster outbound\\|443\\|\\|api\\.example\\.test: transport_socket\\.typed_config\\.common_tls_context';
  nack(cluster({ tls_certificate_sds_secret_configs: [{ name: 'file-cert:/c.pem' }], ...roots('file-root:/ca.pem') }), new RegExp(`^${C}\\.tls_certificate_sds_secret_configs\\[0\\]\\.name: "file-cert:/c.pem" is no secret this sidecar has`));
  nack(cluster({ ...roots('vault-ca') }), new RegExp(`^${C}\\.combined_validation_context\\.validation_context_sds_secret_config\\.name: "vault-ca" is no secret`));
  nack(cluster({ validation_context: { trusted_ca: { inline_string: 'x' } } }), new RegExp(`^${C}\\.validation_context\\.trusted_ca: only a filename data source is supported`));
  nack(cluster({ validation_context: { match_subject_alt_names: [{ exact: 'a' }] } }), /subject alt names and a CRL need roots to verify the server against/);
  nack(cluster({ validation_context: { trusted_ca: { filename: '/ca.pem' }, match_typed_subject_alt_names: [] } }), /validation_context\.match_typed_subject_alt_names: not supported/);
  nack(cluster({}), new RegExp(`^${C}: needs one of combined_validation_context and validation_context`));
  nack({ ...cluster({ validation_context: {} }), typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': TYPE.httpProtocolOptions, upstream_http_protocol_options: { auto_sni: true, override_auto_sni_header: ':authority' } } } }, /upstream_http_protocol_options\.override_auto_sni_header: not supported/);
});

test('the files are read when the cluster comes: a missing file, a key that is not the certificate\'s, a bad CRL are errors naming the cluster and the file', async () => {
  const fails = async (common: object, re: RegExp) => {
    await assert.rejects(loadClusterFiles([convertCluster(cluster(common))]), (e: unknown) => e instanceof ConvertError && re.test(e.message));
  };
  await fails(roots(`file-root:${file('nope.pem')}`), /^cluster outbound\|443\|\|api\.example\.test: transport_socket: CA certificates file .*nope\.pem cannot be read \(ENOENT\)$/);
  await fails({ tls_certificate_sds_secret_configs: [{ name: `file-cert:${file('client.pem')}~${file('srv.key')}` }], ...roots(`file-root:${file('ca.pem')}`) }, /transport_socket: client certificate .*client\.pem and private key .*srv\.key: .*key values mismatch/);
  await fails(roots(`file-root:${dir}`), /transport_socket: CA certificates file .* is not a regular file$/);
  fs.writeFileSync(file('bad.crl'), '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n');
  await fails(roots(`file-root:${file('ca.pem')}`, { crl: { filename: file('bad.crl') } }), /transport_socket: CRL file .*bad\.crl: /);
});

test('real handshakes: the CA file, the default roots, SANs by DNS and IP, a revoked certificate, insecureSkipVerify', async () => {
  const ca = roots(`file-root:${file('ca.pem')}`);
  assert.equal(await handshake(ca), 'ok');
  assert.equal(await handshake(roots(`file-root:${file('ca.pem')}`, { match_subject_alt_names: [{ exact: 'API.example.test' }] })), 'ok', 'DNS names match without regard to case');
  assert.equal(await handshake(roots(`file-root:${file('ca.pem')}`, { match_subject_alt_names: [{ exact: '127.0.0.1' }] })), 'ok', 'an IP SAN');
  assert.match(await handshake(roots(`file-root:${file('ca.pem')}`, { match_subject_alt_names: [{ exact: 'other.example.test' }] })), /^upstream TLS: the server's certificate names api\.example\.test, 127\.0\.0\.1, none of other\.example\.test$/);
  assert.match(await handshake(roots(`file-root:${file('other.pem')}`)), /^upstream TLS: the server's certificate does not chain to the roots of .*other\.pem \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)$/);
  // The default roots (Node's bundled ones) do not hold the test CA.
  assert.match(await handshake(roots('file-root:system')), /does not chain to the default roots/);
  assert.match(await handshake(roots(`file-root:${file('ca.pem')}`, { crl: { filename: file('revoked.crl') } })), /^upstream TLS: the server's certificate is revoked \(CERT_REVOKED\)/);
  assert.equal(await handshake(roots(`file-root:${file('ca.pem')}`, { crl: { filename: file('revoked.crl') } }), {}, port2), 'ok', 'a certificate the CRL does not list');
  // Envoy's rule with a CRL: every CA of the chain needs one; another CA's CRL does not do.
  assert.match(await handshake(roots(`file-root:${file('ca.pem')}`, { crl: { filename: file('other.crl') } })), /no CRL of the server certificate's issuer is given \(UNABLE_TO_GET_CRL/);
  assert.equal(await handshake({ validation_context: {} }), 'ok', 'insecureSkipVerify: nothing is checked');
});

test("Envoy's SAN matching: a wildcard covers one label; auto SNI and SAN take the request's host without its port, and no SNI for an IP", () => {
  const cert = { subjectaltname: 'DNS:*.example.com, URI:spiffe://td/ns/a/sa/b, IP Address:10.0.0.1' } as tls.PeerCertificate;
  assert.equal(sanMismatchOf(['a.example.com'], cert), undefined);
  assert.match(sanMismatchOf(['a.b.example.com'], cert) ?? '', /none of a\.b\.example\.com/);
  assert.match(sanMismatchOf(['example.com'], cert) ?? '', /none of/);
  assert.equal(sanMismatchOf(['spiffe://td/ns/a/sa/b'], cert), undefined);
  assert.equal(sanMismatchOf(['10.0.0.1'], cert), undefined);
  assert.equal(sanMismatchOf([], cert), undefined);
  const base = convertCluster(cluster(roots('file-root:system'))).transportSocket!;
  const byName = requestTls(base, { sni: true, san: true }, 'api.example.com:8443');
  assert.deepEqual([byName.sni, byName.sans], ['api.example.com', ['api.example.com']]);
  assert.notEqual(byName.key, base.key, 'its own pools');
  assert.equal(requestTls(base, { sni: true, san: true }, 'api.example.com:8443'), byName, 'made once per host');
  const byIp = requestTls(base, { sni: true, san: true }, '[::1]:443');
  assert.deepEqual([byIp.sni, byIp.sans], [undefined, ['::1']]);
  assert.deepEqual(requestTls(base, { sni: true, san: false }, 'x.test').sans, []);
});
