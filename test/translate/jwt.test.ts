// RequestAuthentication -> Envoy's jwt_authn filter on a workload's inbound HCMs, in Istio's shape
// (policy_applier.go): which policies apply to which sidecar, providers and requirements, the
// filter's place (first, before authorization and the router), mTLS chains alike, and a protobuf
// round trip of the whole listener.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { translate } from '../../src/control/translate/translate.ts';
import { PushCache } from '../../src/control/push/cache.ts';
import { UNRESOLVED_JWKS, jwtAuthnFilter, jwtPoliciesFor } from '../../src/control/translate/jwt.ts';
import { TYPE, decode, encode } from '../../src/xds/protos.ts';
import { meshOf, workload } from '../snapshot.ts';

const ra = (name: string, namespace: string, spec: object) => ({ apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name, namespace }, spec });
const server = workload('server', { service: 'server', serviceAccount: 'server-sa', labels: { app: 'server' }, port: 41000 });

const hcmFilters = (l: any): any[][] => l.filter_chains.map((c: any) => c.filters.find((f: any) => f.typed_config['@type'] === TYPE.hcm)?.typed_config.http_filters ?? []);

describe('which RequestAuthentications apply to a sidecar (as Istio)', () => {
  const all = meshOf(
    [
      ra('ns-wide', 'default', { jwtRules: [{ issuer: 'a', jwks: '{"keys":[]}' }] }),
      ra('mine', 'default', { selector: { matchLabels: { app: 'server' } }, jwtRules: [{ issuer: 'b', jwks: '{"keys":[]}' }] }),
      ra('theirs', 'default', { selector: { matchLabels: { app: 'other' } }, jwtRules: [{ issuer: 'c', jwks: '{"keys":[]}' }] }),
      ra('mesh', 'istio-system', { jwtRules: [{ issuer: 'd', jwks: '{"keys":[]}' }] }),
      ra('root-selected', 'istio-system', { selector: { matchLabels: { app: 'server' } }, jwtRules: [{ issuer: 'e', jwks: '{"keys":[]}' }] }),
      ra('other-ns', 'other', { jwtRules: [{ issuer: 'f', jwks: '{"keys":[]}' }] }),
      ra('waypoint', 'default', { targetRef: { kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'w' }, jwtRules: [{ issuer: 'g', jwks: '{"keys":[]}' }] }),
    ],
    [],
  ).requestAuthentications;
  test('its namespace\'s (selector matching, or none) and the root namespace\'s without a selector; never one with a targetRef', () => {
    assert.deepEqual(jwtPoliciesFor(all, server).map((r) => r.metadata.name).sort(), ['mesh', 'mine', 'ns-wide']);
  });
  test('no policy: no filter', () => {
    assert.equal(jwtAuthnFilter([], server), undefined);
  });
});

describe("the filter, in Istio's shape", () => {
  test('one rule: a provider per rule, requires_any {provider, allow_missing}, every field mapped', () => {
    const mesh = meshOf(
      [
        ra('r', 'default', {
          jwtRules: [
            {
              issuer: 'https://issuer.example',
              audiences: ['a1', 'a2'],
              jwksUri: 'https://keys.example:8443/jwks.json',
              timeout: '2s',
              fromHeaders: [{ name: 'x-jwt', prefix: 'Token ' }],
              fromParams: ['token'],
              outputPayloadToHeader: 'x-payload',
              outputClaimToHeaders: [{ header: 'x-sub', claim: 'sub' }],
              forwardOriginalToken: true,
              spaceDelimitedClaims: ['roles'],
            },
          ],
        }),
      ],
      [server],
    );
    const f = jwtAuthnFilter(mesh.requestAuthentications, server) as any;
    assert.deepEqual(f, {
      name: 'envoy.filters.http.jwt_authn',
      typed_config: {
        '@type': TYPE.jwtAuthn,
        providers: {
          'origins-0': {
            issuer: 'https://issuer.example',
            audiences: ['a1', 'a2'],
            remote_jwks: { http_uri: { uri: 'https://keys.example:8443/jwks.json', cluster: 'outbound|8443||keys.example', timeout: { seconds: 2 } } },
            forward: true,
            from_headers: [{ name: 'x-jwt', value_prefix: 'Token ' }],
            from_params: ['token'],
            forward_payload_header: 'x-payload',
            claim_to_headers: [{ header_name: 'x-sub', claim_name: 'sub' }],
            payload_in_metadata: 'payload',
            normalize_payload_in_metadata: { space_delimited_claims: ['scope', 'permission', 'roles'] },
          },
        },
        rules: [{ match: { prefix: '/' }, requires: { requires_any: { requirements: [{ provider_name: 'origins-0' }, { allow_missing: {} }] } } }],
        bypass_cors_preflight: true,
      },
    });
  });

  test('several rules: sorted by issuer; any provider, or all of {provider or allow_missing}', () => {
    const mesh = meshOf(
      [ra('r1', 'default', { jwtRules: [{ issuer: 'z', jwks: '{"keys":[]}' }] }), ra('r2', 'default', { jwtRules: [{ issuer: 'a', jwksUri: 'http://k/jwks' }] })],
      [server],
    );
    const tc = (jwtAuthnFilter(mesh.requestAuthentications, server) as any).typed_config;
    assert.deepEqual(Object.entries(tc.providers).map(([k, v]: [string, any]) => [k, v.issuer, v.local_jwks ?? v.remote_jwks.http_uri.timeout]), [
      ['origins-0', 'a', { seconds: 5 }],
      ['origins-1', 'z', { inline_string: '{"keys":[]}' }],
    ]);
    const opt = (n: string) => ({ requires_any: { requirements: [{ provider_name: n }, { allow_missing: {} }] } });
    assert.deepEqual(tc.rules[0].requires, { requires_any: { requirements: [{ provider_name: 'origins-0' }, { provider_name: 'origins-1' }, { requires_all: { requirements: [opt('origins-0'), opt('origins-1')] } }] } });
  });
});

test('the inbound HCM (plaintext and mTLS chains) has the JWT filter first (after Istio\'s metadata exchange), the router last; the listener round-trips through protobuf', () => {
  const mesh = meshOf([ra('r', 'default', { jwtRules: [{ issuer: 'i', jwksUri: 'http://k/jwks', fromHeaders: [{ name: 'x-t', prefix: 'B ' }] }] })], [server]);
  const l = translate(mesh, server).listeners['inbound|41000'] as any;
  const perChain = hcmFilters(l).filter((fs) => fs.length);
  assert.ok(perChain.length >= 2, 'plaintext and mTLS chains');
  for (const fs of perChain) assert.deepEqual(fs.map((f: any) => f.name), ['istio.metadata_exchange', 'envoy.filters.http.jwt_authn', 'envoy.filters.http.router']);
  assert.deepEqual(decode(TYPE.listener, encode(TYPE.listener, l)), l);
  // A workload no policy takes gets no filter.
  const other = workload('other', { service: 'other', namespace: 'elsewhere', port: 41100 });
  const lo = translate(meshOf([ra('r', 'default', { jwtRules: [{ issuer: 'i', jwksUri: 'http://k/jwks' }] })], [other]), other).listeners['inbound|41100'] as any;
  for (const fs of hcmFilters(lo)) assert.ok(!fs.some((f: any) => f.name === 'envoy.filters.http.jwt_authn'));
});

test('a RequestAuthentication change reaches the proxies it selects through the push step, and only those', () => {
  const other = workload('other', { service: 'other', namespace: 'elsewhere', port: 41200 });
  const ra0 = ra('r', 'default', { selector: { matchLabels: { app: 'server' } }, jwtRules: [{ issuer: 'i', jwksUri: 'http://k/jwks' }] });
  const before = meshOf([], [server, other]);
  const after = { ...meshOf([ra0], [server, other]), revision: 2 };
  const cache = new PushCache();
  const names = (m: typeof before, w: typeof server, port: number) => hcmFilters(cache.resources(m, w).listeners[`inbound|${port}`])[0]!.map((f: any) => f.name);
  assert.deepEqual(names(before, server, 41000), ['istio.metadata_exchange', 'envoy.filters.http.router']);
  assert.deepEqual(names(after, server, 41000), ['istio.metadata_exchange', 'envoy.filters.http.jwt_authn', 'envoy.filters.http.router']);
  assert.deepEqual(cache.resources(after, other).listeners['inbound|41200'], cache.resources(before, other).listeners['inbound|41200']);

});

test('an issuer with neither jwks nor jwksUri: the jwks_uri OpenID discovery found, else a key set no token verifies against', () => {
  const mesh = meshOf([ra('r', 'default', { jwtRules: [{ issuer: 'https://found.example' }, { issuer: 'https://lost.example' }] })], [server]);
  const tc = (jwtAuthnFilter(mesh.requestAuthentications, server, undefined, new Map([['https://found.example', 'https://keys.found.example/jwks']])) as any).typed_config;
  assert.deepEqual(tc.providers['origins-0'].remote_jwks.http_uri.uri, 'https://keys.found.example/jwks');
  assert.deepEqual(tc.providers['origins-1'].local_jwks, { inline_string: UNRESOLVED_JWKS });
  const keys = JSON.parse(UNRESOLVED_JWKS).keys;
  assert.equal(keys.length, 1);
  assert.equal(Buffer.from(keys[0].n, 'base64url').length, 256, 'an RSA-2048 public key');
});

test('found by review: an issuer named like an Object property, or a discovered jwks_uri that is no URL, gets the key set no token verifies against; the push goes on', () => {
  const mesh = meshOf([ra('r', 'default', { jwtRules: [{ issuer: 'constructor' }, { issuer: '__proto__' }, { issuer: 'https://weird.example' }] })], [server]);
  const tc = (jwtAuthnFilter(mesh.requestAuthentications, server, undefined, new Map([['https://weird.example', 'https://a:99999/k']])) as any).typed_config;
  assert.deepEqual(Object.values(tc.providers).map((p: any) => [p.issuer, p.local_jwks?.inline_string === UNRESOLVED_JWKS]), [
    ['__proto__', true],
    ['constructor', true],
    ['https://weird.example', true],
  ]);
});