// The secret ROOTCA as the sidecar takes it over SDS (src/proxy/identity/roots.ts): the roots
// inline; anything else NACKed naming the field, the roots in use left as they were.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { applyRoots } from '../../src/proxy/identity/roots.ts';
import { issue, makeRoot } from '../fixtures/cacerts.ts';
import { tmpDir } from '../helpers.ts';

test('ROOTCA: roots inline are taken; another secret, no roots, garbage or a certificate that is no CA is NACKed and changes nothing', () => {
  const dir = tmpDir('roots');
  makeRoot(dir, 'Root A');
  issue(dir, 'leaf', 'a leaf', { ca: false });
  const root = fs.readFileSync(path.join(dir, 'root-cert.pem'), 'utf8');
  const leaf = fs.readFileSync(path.join(dir, 'leaf-cert.pem'), 'utf8');
  const got: string[] = [];
  const holder = { setRoots: (pem: string) => got.push(pem) };
  const secret = (trusted_ca: object, name = 'ROOTCA') => ({ name, validation_context: { trusted_ca } });
  assert.equal(applyRoots(holder, [secret({ inline_bytes: Buffer.from(root + root).toString('base64') })]), undefined);
  assert.equal(got.length, 1);
  assert.equal(got[0].match(/BEGIN CERTIFICATE/g)!.length, 2, 'both roots of the bundle');
  assert.equal(applyRoots(holder, []), undefined, 'no secret: nothing changes');
  const refusals: [object[], RegExp][] = [
    [[secret({ inline_string: root }, 'default')], /secret "default": this sidecar takes only the secret ROOTCA/],
    [[secret({ filename: '/etc/ssl/root.pem' })], /secret ROOTCA: validation_context.trusted_ca must hold the roots inline/],
    [[secret({ inline_string: 'hello' })], /secret ROOTCA: validation_context.trusted_ca holds no PEM certificate/],
    [[secret({ inline_string: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' })], /certificate 1 cannot be read/],
    [[secret({ inline_string: root + leaf })], /certificate 2 \(.*CN=a leaf\) is not a CA certificate/],
  ];
  for (const [s, re] of refusals) assert.match(applyRoots(holder, s as Record<string, any>[]) ?? 'accepted', re);
  assert.equal(got.length, 1, 'nothing refused reached the certificate');
});
