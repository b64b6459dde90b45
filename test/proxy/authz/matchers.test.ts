// Each RBAC matcher kind and combinator, against Envoy's semantics (matchers.cc, header_utility,
// StringMatcherImpl, CidrRange, MetadataMatcher).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { matches, matchesId } from './helpers.ts';
import { allowIf } from './helpers.ts';

const header = (h: object) => ({ header: h });
const path = (p: object) => ({ url_path: { path: p } });

describe('StringMatcher (via url_path)', () => {
  test('exact, prefix, suffix, contains', () => {
    assert.equal(matches(path({ exact: '/a' }), { uri: '/a' }), true);
    assert.equal(matches(path({ exact: '/a' }), { uri: '/a/' }), false);
    assert.equal(matches(path({ prefix: '/api/' }), { uri: '/api/v1' }), true);
    assert.equal(matches(path({ prefix: '/api/' }), { uri: '/api' }), false);
    assert.equal(matches(path({ suffix: '.png' }), { uri: '/x/y.png' }), true);
    assert.equal(matches(path({ contains: 'adm' }), { uri: '/x/admin/y' }), true);
    assert.equal(matches(path({ contains: 'adm' }), { uri: '/x/ADMIN/y' }), false);
  });

  test('ignore_case folds ASCII only, as absl does', () => {
    assert.equal(matches(path({ exact: '/Admin', ignore_case: true }), { uri: '/aDMIN' }), true);
    assert.equal(matches(path({ prefix: '/ADM', ignoreCase: true }), { uri: '/admin' }), true);
    assert.equal(matches(path({ suffix: '.PNG', ignore_case: true }), { uri: '/a.png' }), true);
    assert.equal(matches(path({ contains: 'MIN', ignore_case: true }), { uri: '/xadminx' }), true);
    // U+212A KELVIN SIGN lower-cases to 'k' in Unicode, but not in Envoy.
    assert.equal(matches(path({ exact: '/k', ignore_case: true }), { uri: '/\u212a' }), false);
  });

  test('safe_regex must match the whole value (RE2)', () => {
    assert.equal(matches(path({ safe_regex: { regex: '/a.*' } }), { uri: '/abc' }), true);
    assert.equal(matches(path({ safe_regex: { regex: 'b' } }), { uri: '/abc' }), false);
    assert.equal(matches(path({ safeRegex: { googleRe2: {}, regex: '/[a-c]+' } }), { uri: '/abc' }), true);
  });

  test('".+" and ".*" (Istio\'s "*") keep RE2\'s meaning: any characters but a newline', () => {
    const plus = { requested_server_name: { safe_regex: { regex: '.+' } } };
    const star = { requested_server_name: { safe_regex: { regex: '.*' } } };
    assert.equal(matches(plus, { sni: 'a' }), true);
    assert.equal(matches(plus, { sni: '' }), false);
    assert.equal(matches(plus, { sni: 'a\nb' }), false);
    assert.equal(matches(star, { sni: '' }), true);
    assert.equal(matches(star, { sni: 'a\nb' }), false);
  });

  test('configs Envoy refuses are refused, naming the field', () => {
    assert.throws(() => allowIf(path({ safe_regex: { regex: '.*' }, ignore_case: true })), /url_path\.path\.ignore_case: ignore_case has no effect for safe_regex/);
    assert.throws(() => allowIf(path({ prefix: '' })), /url_path\.path\.prefix: must not be empty/);
    assert.throws(() => allowIf(path({ safe_regex: { regex: '(' } })), /url_path\.path\.safe_regex\.regex: invalid RE2/);
    assert.throws(() => allowIf(path({ exact: '/a', prefix: '/b' })), /only one of exact, prefix/);
    assert.throws(() => allowIf(path({})), /one of exact, prefix, suffix, contains, safe_regex, custom is required/);
    assert.throws(() => allowIf(path({ custom: { name: 'x' } })), /custom string matcher extensions are not supported/);
  });
});

describe('url_path', () => {
  test('matches the path without query string and fragment', () => {
    assert.equal(matches(path({ exact: '/a' }), { uri: '/a?x=1' }), true);
    assert.equal(matches(path({ exact: '/a' }), { uri: '/a#frag' }), true);
    assert.equal(matches(path({ suffix: '=1' }), { uri: '/a?x=1' }), false);
  });

  test('no :path, no match; the explicit path wins over the header', () => {
    assert.equal(matches(path({ prefix: '/' }), { headers: [':method', 'CONNECT'] }), false);
    assert.equal(matches(path({ exact: '/b' }), { uri: '/a', path: '/b?q' }), true);
  });
});

describe('uri_template', () => {
  const tpl = (t: string) => ({
    uri_template: { name: 'uri-template', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig', path_template: t } },
  });
  test("'*' is one segment, '**' any text, as Istio's {*} and {**}", () => {
    assert.equal(matches(tpl('/path/template/*'), { uri: '/path/template/a' }), true);
    assert.equal(matches(tpl('/path/template/*'), { uri: '/path/template/a?q=1' }), true);
    assert.equal(matches(tpl('/path/template/*'), { uri: '/path/template/a/b' }), false);
    assert.equal(matches(tpl('/path/template/*'), { uri: '/path/template/' }), false);
    assert.equal(matches(tpl('/**/path/template'), { uri: '/x/y/path/template' }), true);
    assert.equal(matches(tpl('/**/path/template'), { uri: '/path/template' }), false); // "/" + "" + "/path..." needs "//"
    assert.equal(matches(tpl('/**.mpd'), { uri: '/content/123/manifest.mpd' }), true);
    assert.equal(matches(tpl('/videos/{id}/{rest=**}'), { uri: '/videos/7/a/b.m4s' }), true);
  });
  test('templates Envoy refuses are refused', () => {
    assert.throws(() => allowIf(tpl('/**/*')), /path_template: "\/\*\*\/\*": glob after text glob/);
    assert.throws(() => allowIf(tpl('no-slash')), /invalid pattern/);
    assert.throws(() => allowIf(tpl('/{a}/{a}')), /repeated variable name/);
    assert.throws(() => allowIf({ uri_template: { name: 'x', typed_config: { '@type': 'type.googleapis.com/other', path_template: '/a' } } }), /unsupported path matcher/);
  });
});

describe('header', () => {
  const h = (name: string, m: object) => header({ name, ...m });
  test('repeated headers are joined with ","', () => {
    const r = { extra: ['x-a', '1', 'x-b', 'z', 'x-a', '2'] };
    assert.equal(matches(h('x-a', { string_match: { exact: '1,2' } }), r), true);
    assert.equal(matches(h('x-a', { string_match: { exact: '1' } }), r), false);
  });
  test('names are case-insensitive; pseudo-headers are headers', () => {
    assert.equal(matches(h('X-A', { exact_match: 'v' }), { extra: ['x-a', 'v'] }), true);
    assert.equal(matches(h(':method', { string_match: { exact: 'POST' } }), { method: 'POST' }), true);
    assert.equal(matches(h(':authority', { string_match: { suffix: '.svc.cluster.local' } })), true);
  });
  test('a missing header matches nothing, inverted or not, unless treated as empty', () => {
    assert.equal(matches(h('x-none', { string_match: { exact: 'v' } })), false);
    assert.equal(matches(h('x-none', { string_match: { exact: 'v' }, invert_match: true })), false);
    assert.equal(matches(h('x-none', { string_match: { exact: 'v' }, invert_match: true, treat_missing_header_as_empty: true })), true);
    assert.equal(matches(h('x-none', { string_match: { exact: '' }, treat_missing_header_as_empty: true })), true);
    assert.equal(matches(h('x-a', { string_match: { exact: 'v' }, invert_match: true }), { extra: ['x-a', 'w'] }), true);
  });
  test('present_match, and no specifier meaning present', () => {
    assert.equal(matches(h('x-a', { present_match: true }), { extra: ['x-a', ''] }), true);
    assert.equal(matches(h('x-a', {}), { extra: ['x-a', ''] }), true);
    assert.equal(matches(h('x-a', {})), false);
    assert.equal(matches(h('x-a', { present_match: false })), true);
    assert.equal(matches(h('x-a', { present_match: true, invert_match: true })), true);
    assert.equal(matches(h('x-a', { present_match: true, invert_match: true }), { extra: ['x-a', 'v'] }), false);
  });
  test('legacy matchers and range_match', () => {
    assert.equal(matches(h('x-a', { exact_match: '' }), { extra: ['x-a', 'anything'] }), true);
    assert.equal(matches(h('x-a', { prefix_match: 'ab' }), { extra: ['x-a', 'abc'] }), true);
    assert.equal(matches(h('x-a', { suffix_match: 'bc' }), { extra: ['x-a', 'abc'] }), true);
    assert.equal(matches(h('x-a', { contains_match: 'b' }), { extra: ['x-a', 'abc'] }), true);
    assert.equal(matches(h('x-a', { safe_regex_match: { regex: 'a.c' } }), { extra: ['x-a', 'abc'] }), true);
    const range = h('x-n', { range_match: { start: '-10', end: 10 } });
    assert.equal(matches(range, { extra: ['x-n', '-10'] }), true);
    assert.equal(matches(range, { extra: ['x-n', ' 9 '] }), true);
    assert.equal(matches(range, { extra: ['x-n', '10'] }), false);
    assert.equal(matches(range, { extra: ['x-n', '1.5'] }), false);
    assert.equal(matches(range, { extra: ['x-n', '99999999999999999999'] }), false);
  });
  test('two specifiers, or an unknown field, are refused', () => {
    assert.throws(() => allowIf(h('x', { exact_match: 'a', prefix_match: 'b' })), /only one of exact_match, prefix_match/);
    assert.throws(() => allowIf(h('x', { regex_match: 'a' })), /permissions\[0\]\.header\.regex_match: unknown or unsupported field/);
    assert.throws(() => allowIf(h('', {})), /header\.name: not a valid header name/);
  });
});

describe('addresses and ports', () => {
  const cidr = (address_prefix: string, prefix_len?: unknown) => ({ address_prefix, ...(prefix_len === undefined ? {} : { prefix_len }) });
  test('destination_ip: IPv4 and IPv6 ranges, truncated to their length', () => {
    assert.equal(matches({ destination_ip: cidr('10.0.0.0', 8) }), true);
    assert.equal(matches({ destination_ip: cidr('10.9.9.9', 8) }), true);
    assert.equal(matches({ destination_ip: cidr('10.0.0.2', 32) }), false);
    assert.equal(matches({ destinationIp: { addressPrefix: '10.0.0.1', prefixLen: { value: 32 } } }), true);
    assert.equal(matches({ destination_ip: cidr('0.0.0.0') }), true); // no length: /0
    assert.equal(matches({ destination_ip: cidr('10.0.0.1', 64) }), true); // IPv4 lengths above 32 are 32
    assert.equal(matches({ destination_ip: cidr('fd00::', 8) }, { destinationIp: 'fd12:3456::1' }), true);
    assert.equal(matches({ destination_ip: cidr('fd00::', 16) }, { destinationIp: 'fd12:3456::1' }), false);
    assert.equal(matches({ destination_ip: cidr('2001:db8::1', 128) }, { destinationIp: '2001:0db8:0:0:0:0:0:1' }), true);
    assert.equal(matches({ destination_ip: cidr('::', 0) }, { destinationIp: '10.0.0.1' }), false); // families never mix
  });
  test('an IPv4-mapped IPv6 request address counts as IPv4', () => {
    assert.equal(matches({ destination_ip: cidr('10.0.0.0', 24) }, { destinationIp: '::ffff:10.0.0.1' }), true);
  });
  test('source_ip, direct_remote_ip and remote_ip read their own addresses', () => {
    const r = { sourceIp: '1.1.1.1', directRemoteIp: '2.2.2.2', remoteIp: '3.3.3.3' };
    assert.equal(matchesId({ source_ip: cidr('1.1.1.1', 32) }, r), true);
    assert.equal(matchesId({ direct_remote_ip: cidr('2.2.2.2', 32) }, r), true);
    assert.equal(matchesId({ remote_ip: cidr('3.3.3.3', 32) }, r), true);
    assert.equal(matchesId({ remote_ip: cidr('1.1.1.1', 32) }, r), false);
    // Without proxy protocol or x-forwarded-for, all three are the connection's peer.
    assert.equal(matchesId({ remote_ip: cidr('1.1.1.0', 24) }, { sourceIp: '1.1.1.1' }), true);
    assert.equal(matchesId({ direct_remote_ip: cidr('1.1.1.0', 24) }, { sourceIp: '1.1.1.1' }), true);
  });
  test('malformed ranges are refused', () => {
    assert.throws(() => allowIf({ destination_ip: cidr('10.0.0', 8) }), /destination_ip\.address_prefix: malformed IP address/);
    assert.throws(() => allowIf({ destination_ip: cidr('10.0.0.1', 129) }), /prefix_len: must be between 0 and 128/);
    assert.throws(() => allowIf({ destination_ip: cidr('1::2::3', 8) }), /malformed/);
  });
  test('destination_port and destination_port_range [start, end)', () => {
    assert.equal(matches({ destination_port: 8080 }), true);
    assert.equal(matches({ destinationPort: 80 }), false);
    assert.equal(matches({ destination_port_range: { start: 8000, end: 8081 } }), true);
    assert.equal(matches({ destination_port_range: { start: 8000, end: 8080 } }), false);
    assert.throws(() => allowIf({ destination_port_range: { start: 10, end: 10 } }), /range start 10 cannot be greater or equal than range end 10/);
    assert.throws(() => allowIf({ destination_port: 70000 }), /destination_port: must be between 0 and 65535/);
  });
  test('requested_server_name: no SNI is the empty name', () => {
    assert.equal(matches({ requested_server_name: { suffix: '.example.com' } }, { sni: 'a.example.com' }), true);
    assert.equal(matches({ requested_server_name: { safe_regex: { regex: '.+' } } }), false);
    assert.equal(matches({ requested_server_name: { exact: '' } }), true);
  });
});

describe('authenticated', () => {
  const name = (m: object) => ({ authenticated: { principal_name: m } });
  test('needs a verified peer; no principal_name means any peer', () => {
    assert.equal(matchesId({ authenticated: {} }), false);
    assert.equal(matchesId({ authenticated: {} }, { peer: 'spiffe://cluster.local/ns/a/sa/b' }), true);
    assert.equal(matchesId(name({ exact: 'spiffe://cluster.local/ns/a/sa/b' }), { peer: 'spiffe://cluster.local/ns/a/sa/b' }), true);
    assert.equal(matchesId(name({ exact: 'spiffe://cluster.local/ns/a/sa/b' })), false);
  });
  test('URI SANs, then DNS SANs, then the subject', () => {
    const peer = { uriSans: ['spiffe://td/ns/a/sa/b'], dnsSans: ['b.a.svc'], subject: 'CN=b,O=a' };
    assert.equal(matchesId(name({ prefix: 'spiffe://td/' }), { peer }), true);
    assert.equal(matchesId(name({ exact: 'b.a.svc' }), { peer }), true);
    assert.equal(matchesId(name({ exact: 'CN=b,O=a' }), { peer }), true);
    assert.equal(matchesId(name({ exact: 'other' }), { peer }), false);
  });
  test('TLS without a client certificate: authenticated, but with no name to match', () => {
    const peer = { uriSans: [] };
    assert.equal(matchesId({ authenticated: {} }, { peer }), true);
    assert.equal(matchesId(name({ safe_regex: { regex: '.+' } }), { peer }), false);
  });
});

describe('metadata (Istio request principals and claims)', () => {
  const jwt = 'envoy.filters.http.jwt_authn';
  const claim = (key: string, value: object, invert = false) => ({ metadata: { filter: jwt, path: [{ key: 'payload' }, { key }], value, ...(invert ? { invert } : {}) } });
  const md = { [jwt]: { payload: { iss: 'https://issuer', sub: 'alice', aud: ['a1', 'a2'], azp: 'web', n: 3, ok: true, none: null, nested1: { nested2: 'deep' } } } };
  test('string, list and or matches, as Istio writes request.auth.* conditions', () => {
    assert.equal(matchesId(claim('iss', { string_match: { exact: 'https://issuer' } }), { metadata: md }), true);
    const aud = { or_match: { value_matchers: [{ list_match: { one_of: { string_match: { exact: 'a2' } } } }, { string_match: { exact: 'a2' } }] } };
    assert.equal(matchesId(claim('aud', aud), { metadata: md }), true); // a list
    assert.equal(matchesId(claim('azp', { orMatch: { valueMatchers: [{ listMatch: { oneOf: { stringMatch: { exact: 'web' } } } }, { stringMatch: { exact: 'web' } }] } }), { metadata: md }), true); // a string
    assert.equal(matchesId(claim('iss', { string_match: { exact: 'https://issuer' } }, true), { metadata: md }), false);
    assert.equal(matchesId({ metadata: { filter: jwt, path: [{ key: 'payload' }, { key: 'nested1' }, { key: 'nested2' }], value: { string_match: { exact: 'deep' } } } }, { metadata: md }), true);
  });
  test("istio_authn's shape: keys with dots are single path segments", () => {
    const authn = { istio_authn: { 'request.auth.principal': 'https://issuer/alice', 'request.auth.claims': { groups: ['dev', 'ops'] } } };
    const principal = { metadata: { filter: 'istio_authn', path: [{ key: 'request.auth.principal' }], value: { string_match: { exact: 'https://issuer/alice' } } } };
    const group = { metadata: { filter: 'istio_authn', path: [{ key: 'request.auth.claims' }, { key: 'groups' }], value: { list_match: { one_of: { string_match: { exact: 'ops' } } } } } };
    assert.equal(matchesId(principal, { metadata: authn }), true);
    assert.equal(matchesId(group, { metadata: authn }), true);
    assert.equal(matchesId(group, { metadata: { istio_authn: { request: { auth: { claims: { groups: ['ops'] } } } } } }), false);
  });
  test('present, null, number and bool matches; missing is not null', () => {
    assert.equal(matchesId(claim('sub', { present_match: true }), { metadata: md }), true);
    assert.equal(matchesId(claim('nope', { present_match: true }), { metadata: md }), false);
    assert.equal(matchesId(claim('nope', { present_match: true }, true), { metadata: md }), true);
    assert.equal(matchesId(claim('sub', { present_match: false }), { metadata: md }), false); // Envoy: never matches
    assert.equal(matchesId(claim('none', { null_match: {} }), { metadata: md }), true);
    assert.equal(matchesId(claim('nope', { null_match: {} }), { metadata: md }), false);
    assert.equal(matchesId(claim('n', { double_match: { range: { start: 1, end: 3 } } }), { metadata: md }), false);
    assert.equal(matchesId(claim('n', { double_match: { exact: 3 } }), { metadata: md }), true);
    assert.equal(matchesId(claim('ok', { bool_match: true }), { metadata: md }), true);
    assert.equal(matchesId(claim('sub', { string_match: { exact: 'alice' } })), false); // no metadata at all
    // A path through a non-struct value finds nothing.
    assert.equal(matchesId({ metadata: { filter: jwt, path: [{ key: 'payload' }, { key: 'sub' }, { key: 'x' }], value: { present_match: true } } }, { metadata: md }), false);
  });
  test('sourced_metadata reads dynamic or route metadata', () => {
    const m = { metadata_matcher: { filter: 'f', path: [{ key: 'k' }], value: { string_match: { exact: 'v' } } } };
    assert.equal(matchesId({ sourced_metadata: m }, { metadata: { f: { k: 'v' } } }), true);
    assert.equal(matchesId({ sourced_metadata: { ...m, metadata_source: 'ROUTE' } }, { metadata: { f: { k: 'v' } } }), false);
    assert.equal(matchesId({ sourced_metadata: { ...m, metadata_source: 'ROUTE' } }, { routeMetadata: { f: { k: 'v' } } }), true);
  });
  test('malformed matchers are refused', () => {
    assert.throws(() => allowIf({ any: true }, { metadata: { filter: jwt, path: [], value: { present_match: true } } }), /principals\[0\]\.metadata\.path: at least one segment/);
    assert.throws(() => allowIf({ any: true }, claim('x', { or_match: { value_matchers: [{ present_match: true }] } })), /needs at least 2 matchers/);
  });
});

describe('combinators', () => {
  const t = { destination_port: 8080 };
  const f = { destination_port: 1 };
  test('and_rules, or_rules, not_rule', () => {
    assert.equal(matches({ and_rules: { rules: [t, t] } }), true);
    assert.equal(matches({ and_rules: { rules: [t, f] } }), false);
    assert.equal(matches({ or_rules: { rules: [f, t] } }), true);
    assert.equal(matches({ or_rules: { rules: [f, f] } }), false);
    assert.equal(matches({ not_rule: f }), true);
    assert.equal(matches({ not_rule: { not_rule: t } }), true);
    assert.equal(matches({ andRules: { rules: [{ orRules: { rules: [f, t] } }, { notRule: f }] } }), true);
  });
  test('and_ids, or_ids, not_id', () => {
    const yes = { any: true };
    const no = { not_id: { any: true } };
    assert.equal(matchesId({ and_ids: { ids: [yes, yes] } }), true);
    assert.equal(matchesId({ and_ids: { ids: [yes, no] } }), false);
    assert.equal(matchesId({ or_ids: { ids: [no, yes] } }), true);
    assert.equal(matchesId({ or_ids: { ids: [no, no] } }), false);
    assert.equal(matchesId(no), false);
  });
  test('empty sets, any: false and unknown kinds are refused', () => {
    assert.throws(() => allowIf({ and_rules: { rules: [] } }), /and_rules\.rules: at least one rule is required/);
    assert.throws(() => allowIf({ any: true }, { or_ids: { ids: [] } }), /or_ids\.ids: at least one id is required/);
    assert.throws(() => allowIf({ any: false }), /permissions\[0\]\.any: must be true/);
    assert.throws(() => allowIf({ matcher: { name: 'x' } }), /matcher: RBAC matcher extensions are not supported/);
    assert.throws(() => allowIf({ any: true }, { filter_state: { key: 'k' } }), /principals\[0\]\.filter_state: filter state is not supported/);
    assert.throws(() => allowIf({ any: true, destination_port: 1 }), /only one of any, destination_port/);
    assert.throws(() => allowIf({ bogus: 1 }), /permissions\[0\]\.bogus: unknown or unsupported field/);
  });
});
