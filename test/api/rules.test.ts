import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkDuration, checkRegex, checkWildcardDomain, hostSubsetOf, hostsOverlap, parseDuration } from '../../src/api/rules.ts';

describe('durations', () => {
  test('parse like Kubernetes CEL duration() and Go time.ParseDuration', () => {
    assert.equal(parseDuration('1.5s'), 1_500_000_000n);
    assert.equal(parseDuration('100ms'), 100_000_000n);
    assert.equal(parseDuration('0.001s'), 1_000_000n);
    assert.equal(parseDuration('1h30m'), 5_400_000_000_000n);
    assert.equal(parseDuration('.5s'), 500_000_000n);
    assert.equal(parseDuration('0'), 0n);
    for (const bad of ['', '10', 's', '1.5', '1e3s', '1 s', '5 minutes', '1d']) assert.equal(parseDuration(bad), undefined, bad);
  });

  test('min1ms means at least 1ms, in whole milliseconds', () => {
    assert.equal(checkDuration(parseDuration('1ms'), 'min1ms'), undefined);
    assert.equal(checkDuration(parseDuration('999us'), 'min1ms'), 'must be a duration of at least 1ms');
    assert.equal(checkDuration(parseDuration('1500us'), 'min1ms'), 'must be a whole number of milliseconds');
    assert.equal(checkDuration(parseDuration('0s'), 'any'), undefined);
    assert.equal(checkDuration(parseDuration('-1s'), 'any'), 'must not be negative');
  });
});

describe('hosts', () => {
  test('wildcard domains as Istio allows them', () => {
    for (const ok of ['reviews', 'reviews.shop.svc.cluster.local', '*.example.com', '*', '*-foo.example.com', 'istio.io.']) {
      assert.equal(checkWildcardDomain(ok), undefined, ok);
    }
    assert.equal(checkWildcardDomain('a.*.com'), 'domain name "a.*.com" invalid (label "*" invalid)');
    assert.equal(checkWildcardDomain('example.123'), 'domain name "example.123" invalid (top level domain "123" cannot be all-numeric)');
    assert.equal(checkWildcardDomain(''), 'must not be empty');
  });

  test('overlap and subset, as Istio host.Name Matches and SubsetOf', () => {
    assert.ok(hostsOverlap('*.example.com', 'a.example.com'));
    assert.ok(hostsOverlap('*.com', '*.example.com'));
    assert.ok(!hostsOverlap('a.example.com', 'b.example.com'));
    assert.ok(hostSubsetOf('a.example.com', '*.example.com'));
    assert.ok(hostSubsetOf('*.a.example.com', '*.example.com'));
    assert.ok(!hostSubsetOf('*.example.com', 'a.example.com'));
  });
});

describe('regex (RE2, through re2js)', () => {
  test('accepts RE2 syntax, also where JavaScript has none', () => {
    for (const ok of ['jas.n', '^/api/v[0-9]+/.*$', '(?i)abc', '/(?P<id>\\d+)', '[[:digit:]]+', '(?i:a)b', '\\pL+', '\\Qa.b\\E']) assert.equal(checkRegex(ok), undefined, ok);
  });

  test('rejects what RE2 rejects', () => {
    assert.match(checkRegex('a(b') ?? '', /^invalid RE2 regex: missing closing \)/);
    assert.match(checkRegex('(a)\\1') ?? '', /RE2/);
    assert.match(checkRegex('a(?!b)') ?? '', /RE2/);
    assert.equal(checkRegex('a'.repeat(1025)), 'regex is too large, max length allowed is 1024');
  });
});
