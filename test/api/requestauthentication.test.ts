// RequestAuthentication (security.istio.io v1, v1beta1): Istio's schema, CEL rules and webhook
// rules (validateJwtRule), each error naming the resource and the field; what Weft applies, and
// the one thing it warns of (targetRefs, which Istio's sidecars ignore). Istio's own dataset
// documents run in conformance.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkResource, warningsOf } from '../../src/api/index.ts';
import { resolveKind } from '../../src/api/kinds.ts';
import { supportOf } from '../../src/api/support.ts';
import { assertAccepted, assertRejected, type Spec } from './helpers.ts';

const R = 'RequestAuthentication default/r';
const ra = (spec: Spec, apiVersion = 'security.istio.io/v1') => ({ apiVersion, kind: 'RequestAuthentication', metadata: { name: 'r' }, spec });
const rule = (extra: Spec = {}) => ({ jwtRules: [{ issuer: 'https://issuer.example', jwksUri: 'https://issuer.example/jwks', ...extra }] });

const REJECTED: [string, Spec, string][] = [
  ['a rule with neither issuer nor jwksUri (validateJwtRule)', { jwtRules: [{ jwks: '{"keys":[{"kty":"RSA","n":"x","e":"AQAB"}]}' }] }, `${R}: spec.jwtRules[0].issuer: required unless jwksUri is set (a rule without an issuer takes tokens of any issuer that its jwksUri key set verifies)`],
  ['an empty issuer (CRD minLength)', { jwtRules: [{ issuer: '' }] }, `${R}: spec.jwtRules[0].issuer: must not be empty`],
  ['an empty audience', rule({ audiences: [''] }), `${R}: spec.jwtRules[0].audiences[0]: must not be empty`],
  ['jwks and jwksUri both (CEL)', rule({ jwks: '{"keys":[]}' }), `${R}: spec.jwtRules[0]: only one of jwks and jwksUri can be set (got jwksUri, jwks)`],
  ['jwksUri and jwks_uri both (CEL)', rule({ jwks_uri: 'https://x/jwks' }), `${R}: spec.jwtRules[0]: only one of jwks and jwksUri can be set (got jwksUri, jwks_uri)`],
  ['a jwksUri that is not http(s) (CEL, ParseJwksURI)', rule({ jwksUri: 'ftp://x/jwks' }), `${R}: spec.jwtRules[0].jwksUri: url must have scheme http:// or https://`],
  ['a jwks_uri that is no URL', { jwtRules: [{ issuer: 'i', jwks_uri: 'not a url' }] }, `${R}: spec.jwtRules[0].jwks_uri: "not a url" is not a URL`],
  ['a jwksUri over 2048 characters', rule({ jwksUri: `https://x/${'a'.repeat(2048)}` }), `${R}: spec.jwtRules[0].jwksUri: must be at most 2048 characters`],
  ['jwks that is not JSON (jwk.Parse)', { jwtRules: [{ issuer: 'i', jwks: 'not json' }] }, `${R}: spec.jwtRules[0].jwks: jwks parse error: not JSON (Unexpected token 'o', "not json" is not valid JSON)`],
  ['jwks with a key without kty', { jwtRules: [{ issuer: 'i', jwks: '{"keys":[{"n":"x"}]}' }] }, `${R}: spec.jwtRules[0].jwks: jwks parse error: key 0 has no "kty" (key type)`],
  ['a header location without a name', rule({ fromHeaders: [{ prefix: 'Bearer ' }] }), `${R}: spec.jwtRules[0].fromHeaders[0].name: required`],
  ['an empty query parameter', rule({ fromParams: [''] }), `${R}: spec.jwtRules[0].fromParams[0]: must not be empty`],
  ['a claim header that is no header name (CRD pattern)', rule({ outputClaimToHeaders: [{ header: 'x y', claim: 'sub' }] }), `${R}: spec.jwtRules[0].outputClaimToHeaders[0].header: must be a header name of letters, digits, "-" and "_"`],
  ['a claim header without its claim', rule({ outputClaimToHeaders: [{ header: 'x-sub' }] }), `${R}: spec.jwtRules[0].outputClaimToHeaders[0].claim: required`],
  ['a timeout under 1ms (CEL)', rule({ jwksUri: 'https://x/jwks', timeout: '0.5ms' }), `${R}: spec.jwtRules[0].timeout: must be a valid duration greater than 1ms`],
  ['a timeout that is no duration', rule({ timeout: 'soon' }), `${R}: spec.jwtRules[0].timeout: must be a duration such as "5s" or "500ms"`],
  ['more than 64 space-delimited claims', rule({ spaceDelimitedClaims: Array.from({ length: 65 }, (_, i) => `c${i}`) }), `${R}: spec.jwtRules[0].spaceDelimitedClaims: must have at most 64 items`],
  ['selector and targetRef both (CEL)', { selector: { matchLabels: { app: 'a' } }, targetRef: { kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'g' } }, `${R}: spec: only one of selector, targetRef and targetRefs may be set (got selector, targetRef)`],
  ['a targetRef to another namespace (CEL)', { targetRef: { kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'g', namespace: 'other' } }, `${R}: spec.targetRef.namespace: must be empty: a policy cannot target another namespace`],
  ['a wildcard label in the selector', { selector: { matchLabels: { app: 'a*' } } }, `${R}: spec.selector.matchLabels[app]: wildcard not allowed in label value match`],
  ['a presence not in the enum', rule({ presence: 'ALWAYS' }), `${R}: spec.jwtRules[0].presence: must be one of OPTIONAL, REQUIRED (got "ALWAYS")`],
  ['an unknown field', rule({ issuers: ['x'] }), `${R}: spec.jwtRules[0].issuers: unknown field`],
];

describe('RequestAuthentication: rejected, naming the field', () => {
  for (const [title, spec, message] of REJECTED) test(title, () => assertRejected(ra(spec), message));
});

describe('RequestAuthentication: accepted, and applied (nothing refused or warned)', () => {
  const ACCEPTED: [string, Spec][] = [
    ['empty: no rules (nothing verified)', {}],
    [
      'every field of a rule',
      {
        selector: { matchLabels: { app: 'httpbin' } },
        jwtRules: [
          {
            issuer: 'https://issuer.example',
            audiences: ['a', 'b'],
            jwksUri: 'https://issuer.example/jwks.json',
            fromHeaders: [{ name: 'x-jwt', prefix: 'Token ' }, { name: 'x-raw' }],
            fromParams: ['token'],
            fromCookies: ['session'],
            outputPayloadToHeader: 'x-jwt-payload',
            forwardOriginalToken: true,
            outputClaimToHeaders: [{ header: 'x-sub', claim: 'sub' }, { header: 'x_nested', claim: 'a.b' }],
            spaceDelimitedClaims: ['roles'],
            presence: 'OPTIONAL',
            timeout: '2s',
          },
        ],
      },
    ],
    ['inline jwks: a set, and one key', { jwtRules: [{ issuer: 'a', jwks: '{"keys":[{"kty":"RSA","n":"x","e":"AQAB"}]}' }, { issuer: 'b', jwks: '{"kty":"EC","crv":"P-256","x":"x","y":"y"}' }] }],
    ['jwks_uri, protobuf\'s spelling', { jwtRules: [{ issuer: 'i', jwks_uri: 'http://jwks.default.svc:8080/jwks' }] }],
    // validateJwtRule asks for an issuer or a jwksUri: without an issuer, tokens of any issuer.
    ['no issuer, with a jwksUri (or jwks_uri)', { jwtRules: [{ jwksUri: 'https://keys.example/jwks' }, { jwks_uri: 'https://keys2.example/jwks' }] }],
  ];
  for (const [title, spec] of ACCEPTED) {
    test(title, () => {
      assertAccepted(ra(spec));
      const r = checkResource(ra(spec), 'x');
      assert.deepEqual(supportOf(r.kind, r.spec), { rejected: [], warnings: [] });
    });
  }
  test('v1beta1 too, not v1alpha1', () => {
    checkResource(ra(rule(), 'security.istio.io/v1beta1'), 'x');
    assert.throws(() => checkResource(ra(rule(), 'security.istio.io/v1alpha1'), 'x'), /kind RequestAuthentication \(security\.istio\.io\/v1alpha1\) is not supported/);
  });
  test('"ra" and "requestauthentications" name the kind', () => {
    assert.equal(resolveKind('ra'), 'RequestAuthentication');
    assert.equal(resolveKind('requestauthentications'), 'RequestAuthentication');
  });
});

test('a targetRef is accepted with a warning: it attaches the policy to gateways and waypoints, never to a sidecar (as in Istio)', () => {
  const r = checkResource(ra({ targetRef: { kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'g' }, ...rule() }), 'x');
  assert.deepEqual(
    warningsOf(r).map((w) => `${w.resource}: ${w.path}`),
    [`${R}: spec.targetRef`],
  );
  assert.match(warningsOf(r)[0]!.message, /^accepted, not applied: a policy with a targetRef applies to Gateways and waypoints, never to sidecars/);
});

test('a rule with neither jwks nor jwksUri is taken, with no warning: its keys are found by OpenID discovery of the issuer, as istiod does', () => {
  assertAccepted(ra({ jwtRules: [{ issuer: 'https://issuer.example' }] }));
  const r = checkResource(ra({ jwtRules: [{ issuer: 'a', jwks: '{"keys":[]}' }, { issuer: 'https://issuer.example' }] }), 'x');
  assert.deepEqual(warningsOf(r), []);
});

test('presence REQUIRED is valid but refused, naming the field (it would otherwise let token-less requests through)', () => {
  assertAccepted(ra(rule({ presence: 'REQUIRED' })));
  assert.throws(() => checkResource(ra(rule({ presence: 'REQUIRED' })), 'x'), /^ConfigError: RequestAuthentication default\/r: spec\.jwtRules\[0\]\.presence: REQUIRED is not supported yet/);
});
