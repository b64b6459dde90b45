// The two small parsers behind RBAC rules: Envoy's URI templates, and IP addresses / CIDR ranges
// (checked against node:net as an independent oracle).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockList, isIP } from 'node:net';
import { compileFullMatch } from '../../../src/proxy/http/regex.ts';
import { AddressSlot, compileCidr, parseIp } from '../../../src/proxy/authz/ip.ts';
import { uriTemplateRegex } from '../../../src/proxy/authz/uri-template.ts';

describe('URI templates, as Envoy matches them', () => {
  const full = (template: string, path: string) => compileFullMatch(uriTemplateRegex(template)).test(path);
  test('paths each template matches', () => {
    const cases: [string, string][] = [
      ['/**.m3u8', '/media/1234/manifest.m3u8'],
      ['/**.mpd', '/manifest.mpd'],
      ['/{path=**}.m3u8', '/media/1234/manifest.m3u8'],
      ['/{foo}/**.ts', '/foo/12314341/format/123/hls/segment_0000000001.ts'],
      ['/media/{contentId=*}/**', '/media/eff456/ll-sd-out.js'],
      ['/api/*/*/**', '/api/v1/1234/broadcasts/get'],
      ['/{version=api/*}/*', '/api/v1/1234'],
      ['/api/*/*/', '/api/v1/1234/'],
      ['/api/*/{resource=*}/{method=**}', '/api/v1/1234/broadcasts/get'],
      ['/v1/**', '/v1/broadcasts/12345/live'],
      ['/{foo=*}/{bar=*}/{fo=*}/{fum=*}/*', '/foo/bar/fo/fum/123'],
      ['/api/{VERSION}/{version}/{verSION}', '/api/v1/v2/v3'],
      ['/abc/*/{var1}/def/{var2=*/ghi/**}.jkl', '/abc/123/456/def/789/ghi/%20/($).jkl'],
      ['/(abc)+', '/(abc)+'],
    ];
    for (const [t, p] of cases) assert.equal(full(t, p), true, `${t} ~ ${p}`);
  });
  test('paths it does not', () => {
    const cases: [string, string][] = [
      ['/media/*.m4s', '/media/12345/f/123/s00002.m4s'],
      ['/media/*', '/media/eff456/ll-sd-out.js'],
      ['/api/*/v1/*', '/api/v1/1234/'],
      ['/api/*/{resource=*}/{method=*}', '/api/v1/1234/broadcasts/get'],
      ['/api/*/v1/**', '/api/v1/1234/'],
      ['/api/*/1234/', '/api/*/1234/'], // '*' in a path is no pchar
      ['/(abc)+', '/abcabc'],
    ];
    for (const [t, p] of cases) assert.equal(full(t, p), false, `${t} !~ ${p}`);
  });
  test('templates refused', () => {
    for (const t of ['', 'a', '/a b', '/**/*', '/{foo=**}/{bar}', '/{a}/{b}/{c}/{d}/{e}/{f}', '/{abcdefghijklmnopq}', '/{1a}', '/{a=}', '/{a', '/a*b/c', '/{a=b//c}']) {
      assert.throws(() => uriTemplateRegex(t), Error, JSON.stringify(t));
    }
  });
});

describe('IP addresses and CIDR ranges', () => {
  test('parses what node:net calls an IP, and nothing else', () => {
    const samples = ['1.2.3.4', '255.255.255.255', '0.0.0.0', '256.1.1.1', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1..2.3', '1.2.3.4 ', '',
      '::', '::1', '1::', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '1::8', 'fe80::1%eth0',
      '::ffff:1.2.3.4', '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:7:1.2.3.4', '::1.2.3.4', '12345::', 'g::', ':1::', '1:::2', '1::2::3', ':', '1:', 'abcd:EF01::'];
    const w = new Uint32Array(4);
    for (const s of samples) assert.equal(parseIp(s, w), isIP(s), JSON.stringify(s));
  });
  test('ranges match as node:net BlockList does', () => {
    // A fixed pseudo-random walk: ranges of every length against addresses near them.
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const v4 = () => [0, 0, 0, 0].map(() => rnd(4) === 0 ? 10 : rnd(256)).join('.');
    const v6 = () => Array.from({ length: 8 }, () => (rnd(3) === 0 ? 'fd00' : rnd(65536).toString(16))).join(':');
    for (let i = 0; i < 400; i++) {
      const six = i % 2 === 1;
      const base = six ? v6() : v4();
      const len = rnd(six ? 129 : 33);
      const m = compileCidr('t', { address_prefix: base, prefix_len: len });
      const bl = new BlockList();
      bl.addSubnet(base, len, six ? 'ipv6' : 'ipv4');
      for (let k = 0; k < 20; k++) {
        const a = six ? v6() : v4();
        assert.equal(m(new AddressSlot().set(a)), bl.check(a, six ? 'ipv6' : 'ipv4'), `${a} in ${base}/${len}`);
      }
      assert.equal(m(new AddressSlot().set(base)), true);
    }
  });
  test('an address slot parses once, and reads IPv4-mapped addresses as IPv4', () => {
    const s = new AddressSlot().set('::ffff:10.1.2.3');
    assert.equal(s.family, 4);
    assert.equal(s.w[0], (10 << 24) + (1 << 16) + (2 << 8) + 3);
    assert.equal(new AddressSlot().set('not an ip').family, 0);
    assert.equal(new AddressSlot().set(undefined).family, 0);
  });
});
