// The canonical path (src/proxy/http/path.ts) with Istio's BASE normalization, as review found it
// must be for AuthorizationPolicy paths: a backslash is a slash, and an encoded NUL is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalPath } from '../../src/proxy/http/path.ts';

const base = { normalize: true, mergeSlashes: false };

test('a backslash is a slash, before dot segments are removed; %00 is refused (400); without normalization both stay', () => {
  assert.equal(canonicalPath('/admin\\x', base), '/admin/x');
  assert.equal(canonicalPath('/x\\..\\admin', base), '/admin');
  assert.equal(canonicalPath('/admin%00', base), undefined);
  assert.equal(canonicalPath('/admin%5Cx', base), '/admin%5Cx', 'an encoded backslash is left encoded, as Envoy leaves it');
  assert.equal(canonicalPath('/admin\\x', { normalize: false, mergeSlashes: false }), '/admin\\x');
});
