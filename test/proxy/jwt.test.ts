// The JWT layer (src/proxy/http/jwt.ts) on its own: a RequestAuthentication translated by the control
// plane (translate/jwt.ts), converted as the sidecar converts it (convert-jwt.ts), then requests.
// Tokens are signed here with jose; a remote key set is a function the test controls.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { jwtAuthnFilter } from '../../src/control/translate/jwt.ts';
import { jwtAuthnConfig, type JwtAuthnConfig } from '../../src/proxy/xds-client/convert-jwt.ts';
import { ConvertError } from '../../src/proxy/xds-client/convert-util.ts';
import { authenticate, type JwtOutcome } from '../../src/proxy/http/jwt.ts';
import { JwksCache } from '../../src/proxy/http/jwks.ts';
import type { JWTRule } from '../../src/api/types.ts';
import type { RequestHead } from '../../src/proxy/http/types.ts';

const ISS = 'https://issuer.example';
const W = { namespace: 'default', labels: {} };
let priv: CryptoKey;
let otherPriv: CryptoKey;
let jwk: JWK;

before(async () => {
  const kp = await generateKeyPair('RS256', { extractable: true });
  priv = kp.privateKey;
  jwk = { ...(await exportJWK(kp.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  otherPriv = (await generateKeyPair('RS256')).privateKey;
});

const now = () => Math.floor(Date.now() / 1000);

function sign(claims: Record<string, unknown> = {}, key: CryptoKey = priv, kid = 'k1'): Promise<string> {
  return new SignJWT({ sub: 'alice', aud: 'weft', iss: ISS, iat: now(), exp: now() + 3600, ...claims }).setProtectedHeader({ alg: 'RS256', kid }).sign(key);
}

/** The sidecar's config for these rules, by way of the control plane's translation. */
function config(rules: JWTRule[]): JwtAuthnConfig {
  const ra = { apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name: 'r', namespace: 'default' }, spec: { jwtRules: rules } };
  const f = jwtAuthnFilter([ra as any], W) as any;
  return jwtAuthnConfig('listener inbound|80: http_filters[0].typed_config', f.typed_config);
}

const inline = (extra: Partial<JWTRule> = {}): JWTRule => ({ issuer: ISS, jwks: JSON.stringify({ keys: [jwk] }), ...extra });

function head(headers: string[] = [], query = '', method = 'GET'): RequestHead {
  return { method, authority: 'server:80', path: '/x', query, headers, hasBody: false, protocol: 'HTTP/1.1' };
}

async function run(cfg: JwtAuthnConfig, h: RequestHead, jwks = new JwksCache()): Promise<JwtOutcome> {
  return authenticate(cfg, h, { jwks });
}

function refused(o: JwtOutcome, status: number, body: string): void {
  assert.equal(o.ok, false, 'expected a refusal');
  if (o.ok) return;
  assert.equal(o.error.status, status);
  assert.equal(o.error.message, body);
  assert.equal(o.error.code, 'jwt_authn_denied');
  assert.deepEqual(o.error.headers, ['www-authenticate', `Bearer realm="http://server:80/x", error="invalid_token"`]);
}

const value = (h: string[], name: string) => {
  const i = h.findIndex((x, j) => j % 2 === 0 && x === name);
  return i < 0 ? undefined : h[i + 1];
};

describe('JWT layer: Envoy\'s outcomes for Istio\'s rules', () => {
  test('a valid token passes: the payload in metadata (jwt_authn "payload", istio_authn), the Authorization header removed', async () => {
    const token = await sign({ azp: 'cli', groups: ['dev'] });
    const h = head(['authorization', `Bearer ${token}`, 'x-other', '1']);
    const o = await run(config([inline()]), h);
    assert.ok(o.ok);
    const payload = (o.metadata['envoy.filters.http.jwt_authn'] as any).payload;
    assert.equal(payload.sub, 'alice');
    assert.equal(payload.iss, ISS);
    assert.deepEqual(o.metadata.istio_authn!['request.auth.principal'], `${ISS}/alice`);
    assert.deepEqual(o.metadata.istio_authn!['request.auth.audiences'], 'weft');
    assert.deepEqual(o.metadata.istio_authn!['request.auth.presenter'], 'cli');
    assert.deepEqual((o.metadata.istio_authn!['request.auth.claims'] as any).groups, ['dev']);
    assert.deepEqual(h.headers, ['x-other', '1']);
  });

  test('no token passes at once (no promise), with no metadata', () => {
    const o = authenticate(config([inline()]), head(), { jwks: new JwksCache() });
    assert.ok(!(o instanceof Promise));
    assert.deepEqual(o, { ok: true, metadata: {} });
  });

  test('expired: 401 "Jwt is expired", past the 60 s clock skew only', async () => {
    refused(await run(config([inline()]), head(['authorization', `Bearer ${await sign({ exp: now() - 61 })}`])), 401, 'Jwt is expired');
    assert.ok((await run(config([inline()]), head(['authorization', `Bearer ${await sign({ exp: now() - 30 })}`]))).ok);
  });

  test('not yet valid: 401 "Jwt not yet valid" (Envoy\'s words), past the skew only', async () => {
    refused(await run(config([inline()]), head(['authorization', `Bearer ${await sign({ nbf: now() + 120 })}`])), 401, 'Jwt not yet valid');
    assert.ok((await run(config([inline()]), head(['authorization', `Bearer ${await sign({ nbf: now() + 30 })}`]))).ok);
  });

  test('another issuer: 401 "Jwt issuer is not configured"', async () => {
    refused(await run(config([inline()]), head(['authorization', `Bearer ${await sign({ iss: 'https://evil.example' })}`])), 401, 'Jwt issuer is not configured');
  });

  test('an audience not allowed: 403 "Audiences in Jwt are not allowed" (Envoy answers 403 for this one); scheme and trailing slash do not count', async () => {
    const cfg = config([inline({ audiences: ['https://api.example/'] })]);
    refused(await run(cfg, head(['authorization', `Bearer ${await sign({ aud: 'other' })}`])), 403, 'Audiences in Jwt are not allowed');
    assert.ok((await run(cfg, head(['authorization', `Bearer ${await sign({ aud: ['x', 'api.example'] })}`]))).ok);
  });

  test('a bad signature: "Jwt verification fails"; a key the set lacks: Envoy\'s kid/alg message', async () => {
    refused(await run(config([inline()]), head(['authorization', `Bearer ${await sign({}, otherPriv)}`])), 401, 'Jwt verification fails');
    refused(await run(config([inline()]), head(['authorization', `Bearer ${await sign({}, otherPriv, 'k9')}`])), 401, "Jwks doesn't have key to match kid or alg from Jwt");
  });

  test('garbage: not three parts', async () => {
    refused(await run(config([inline()]), head(['authorization', 'Bearer abc'])), 401, 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections');
  });

  test('fromHeaders with a prefix, and fromParams; the default locations then no longer apply', async () => {
    const cfg = config([inline({ fromHeaders: [{ name: 'X-Jwt', prefix: 'Token ' }], fromParams: ['tok'] })]);
    const token = await sign();
    const h = head(['x-jwt', `Token ${token}`]);
    assert.ok((await run(cfg, h)).ok);
    assert.equal(value(h.headers, 'x-jwt'), undefined, 'the header token is removed');
    const q = head([], `a=1&tok=${token}`);
    assert.ok((await run(cfg, q)).ok);
    assert.equal(q.query, `a=1&tok=${token}`, 'a query token stays (Envoy does not remove it)');
    refused(await run(cfg, head(['x-jwt', `Token ${await sign({ exp: now() - 100 })}`])), 401, 'Jwt is expired');
    // As Envoy: the prefix anywhere in the value, the token the base64url run after it.
    assert.ok((await run(cfg, head(['x-jwt', `scheme, Token ${token}; more`]))).ok);
    // Authorization is not a location of this rule: its token is not looked at.
    assert.ok((await run(cfg, head(['authorization', 'Bearer garbage']))).ok);
  });

  test('outputPayloadToHeader (base64url payload), outputClaimToHeaders (nested, lists as base64 JSON); spoofed copies removed first', async () => {
    const cfg = config([inline({ outputPayloadToHeader: 'x-jwt-payload', outputClaimToHeaders: [{ header: 'x-sub', claim: 'sub' }, { header: 'x-team', claim: 'org.team' }, { header: 'x-groups', claim: 'groups' }, { header: 'x-none', claim: 'absent' }] })]);
    const token = await sign({ org: { team: 'core' }, groups: ['a', 'b'] });
    const h = head(['authorization', `Bearer ${token}`, 'x-sub', 'mallory', 'x-none', 'spoofed']);
    assert.ok((await run(cfg, h)).ok);
    assert.equal(value(h.headers, 'x-jwt-payload'), token.split('.')[1]);
    assert.equal(JSON.parse(Buffer.from(value(h.headers, 'x-jwt-payload')!, 'base64url').toString()).sub, 'alice');
    assert.equal(value(h.headers, 'x-sub'), 'alice');
    assert.equal(value(h.headers, 'x-team'), 'core');
    assert.equal(value(h.headers, 'x-groups'), Buffer.from('["a","b"]').toString('base64'));
    assert.equal(value(h.headers, 'x-none'), undefined);
  });

  test('forwardOriginalToken keeps the token', async () => {
    const token = await sign();
    const h = head(['authorization', `Bearer ${token}`]);
    assert.ok((await run(config([inline({ forwardOriginalToken: true })]), h)).ok);
    assert.equal(value(h.headers, 'authorization'), `Bearer ${token}`);
  });

  test('scope is split into a list in the metadata (Istio\'s space-delimited claims)', async () => {
    const o = await run(config([inline({ spaceDelimitedClaims: ['roles'] })]), head(['authorization', `Bearer ${await sign({ scope: 'read write', roles: 'a b' })}`]));
    assert.ok(o.ok);
    const p = (o.metadata['envoy.filters.http.jwt_authn'] as any).payload;
    assert.deepEqual([p.scope, p.roles], [['read', 'write'], ['a', 'b']]);
  });

  test('two rules: a token of either issuer passes, a bad one of either fails', async () => {
    const kp2 = await generateKeyPair('ES256', { extractable: true });
    const jwk2 = { ...(await exportJWK(kp2.publicKey)), kid: 'e1', alg: 'ES256' };
    const cfg = config([inline(), { issuer: 'https://other.example', jwks: JSON.stringify({ keys: [jwk2] }) }]);
    const t2 = await new SignJWT({ sub: 'bob' }).setProtectedHeader({ alg: 'ES256', kid: 'e1' }).setIssuer('https://other.example').setExpirationTime(now() + 60).sign(kp2.privateKey);
    const o = await run(cfg, head(['authorization', `Bearer ${t2}`]));
    assert.ok(o.ok);
    assert.equal((o.metadata['envoy.filters.http.jwt_authn'] as any).payload.sub, 'bob');
    assert.ok((await run(cfg, head(['authorization', `Bearer ${await sign()}`]))).ok);
    refused(await run(cfg, head(['authorization', `Bearer ${await sign({ exp: now() - 100 })}`])), 401, 'Jwt is expired');
    refused(await run(cfg, head(['authorization', `Bearer ${await sign({ iss: 'https://third.example' })}`])), 401, 'Jwt issuer is not configured');
  });

  test('a CORS preflight passes untouched (bypass_cors_preflight)', async () => {
    const o = await run(config([inline()]), head(['origin', 'https://a', 'access-control-request-method', 'GET', 'authorization', 'Bearer bad'], '', 'OPTIONS'));
    assert.ok(o.ok);
  });
});

describe('remote key sets (jwksUri)', () => {
  const remote = (timeout = '1s') => config([{ issuer: ISS, jwksUri: 'http://keys.example/jwks', timeout }]);

  test('fetched once for requests that arrive together, then cached; refetched after cache_duration', async () => {
    let fetches = 0;
    let clock = 0;
    const jwks = new JwksCache(async () => {
      fetches++;
      await new Promise((r) => setTimeout(r, 20));
      return { keys: [jwk] };
    }, () => clock);
    const cfg = remote();
    const token = await sign();
    const all = await Promise.all([1, 2, 3].map(() => run(cfg, head(['authorization', `Bearer ${token}`]), jwks)));
    assert.ok(all.every((o) => o.ok));
    assert.equal(fetches, 1);
    clock = 599_000;
    assert.ok((await run(cfg, head(['authorization', `Bearer ${token}`]), jwks)).ok);
    assert.equal(fetches, 1, 'still fresh (Envoy\'s default: 10 min)');
    clock = 601_000;
    assert.ok((await run(cfg, head(['authorization', `Bearer ${token}`]), jwks)).ok);
    assert.equal(fetches, 2);
  });

  test('unreachable: requests with tokens fail "Jwks remote fetch is failed"; without, they pass; the next request tries again', async () => {
    let up = false;
    const jwks = new JwksCache(async () => {
      if (!up) throw new Error('connect ECONNREFUSED');
      return { keys: [jwk] };
    });
    const cfg = remote();
    refused(await run(cfg, head(['authorization', `Bearer ${await sign()}`]), jwks), 401, 'Jwks remote fetch is failed');
    assert.match(jwks.lastError.get('http://keys.example/jwks')!, /ECONNREFUSED/);
    assert.ok((await run(cfg, head(), jwks)).ok);
    up = true;
    assert.ok((await run(cfg, head(['authorization', `Bearer ${await sign()}`]), jwks)).ok);
  });

  test('a rule without an issuer (valid with a jwksUri) takes a token of any issuer its key set verifies, and no token its key set does not', async () => {
    const jwks = new JwksCache(async () => ({ keys: [jwk] }));
    const cfg = config([{ jwksUri: 'http://keys.example/jwks' }]);
    for (const iss of [ISS, 'https://anyone.example']) {
      const o = await run(cfg, head(['authorization', `Bearer ${await sign({ iss })}`]), jwks);
      assert.ok(o.ok, iss);
      assert.equal((o.metadata['envoy.filters.http.jwt_authn'] as any).payload.iss, iss);
    }
    refused(await run(cfg, head(['authorization', `Bearer ${await sign({}, otherPriv)}`]), jwks), 401, 'Jwt verification fails');
  });

  test('a document that is no key set counts as a failed fetch', async () => {
    const jwks = new JwksCache(async () => ({ hello: 'world' }));
    refused(await run(remote(), head(['authorization', `Bearer ${await sign()}`]), jwks), 401, 'Jwks remote fetch is failed');
  });
});

describe('convert: NACKs name the field the sidecar cannot honour', () => {
  const base = () => (jwtAuthnFilter([{ apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name: 'r', namespace: 'default' }, spec: { jwtRules: [inline()] } } as any], W) as any).typed_config;
  const nack = (tc: any, message: RegExp) => assert.throws(() => jwtAuthnConfig('listener l: http_filters[0].typed_config', tc), (e: Error) => e instanceof ConvertError && message.test(e.message));
  test('filter fields', () => {
    nack({ ...base(), requirement_map: { a: { provider_name: 'origins-0' } } }, /^listener l: http_filters\[0\]\.typed_config\.requirement_map: not supported/);
    nack({ ...base(), filter_state_rules: { name: 'x' } }, /typed_config\.filter_state_rules: not supported/);
  });
  test('provider fields', () => {
    const tc = base();
    tc.providers['origins-0'].require_expiration = true;
    nack(tc, /typed_config\.providers\["origins-0"\]\.require_expiration: not supported/);
    const tc2 = base();
    tc2.providers['origins-0'].local_jwks = { filename: '/etc/jwks.json' };
    nack(tc2, /providers\["origins-0"\]\.local_jwks: only inline_string and inline_bytes/);
    const tc3 = base();
    tc3.providers['origins-0'].local_jwks = { inline_string: 'nope' };
    nack(tc3, /providers\["origins-0"\]\.local_jwks: Jwks is an invalid JSON/);
    const tc4 = base();
    delete tc4.providers['origins-0'].local_jwks;
    tc4.providers['origins-0'].remote_jwks = { http_uri: { uri: 'http://k/jwks', cluster: 'c', timeout: { seconds: 1 } }, async_fetch: {} };
    nack(tc4, /remote_jwks\.async_fetch: not supported/);
  });
  test('rules', () => {
    const tc = base();
    tc.rules[0].match = { safe_regex: { regex: '.*' } };
    nack(tc, /rules\[0\]\.match\.safe_regex: not supported/);
    const tc2 = base();
    tc2.rules[0].requires = { provider_name: 'nobody' };
    nack(tc2, /rules\[0\]\.requires\.provider_name: no provider "nobody"/);
  });
});

describe('convert: the filter on a listener', () => {
  const server = { proxyId: 's', name: 's-1', namespace: 'default', service: 's', servicePort: 80, labels: {}, address: '127.0.0.1', inboundPort: 41000, appPort: 41001, serviceAccount: 'sa' } as any;
  const listener = async () => {
    const { translate } = await import('../../src/control/translate/translate.ts');
    const { meshOf } = await import('../snapshot.ts');
    const ra = { apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name: 'r', namespace: 'default' }, spec: { jwtRules: [inline()] } };
    return translate(meshOf([ra], [server]), server).listeners['inbound|41000'] as any;
  };
  test("the translated inbound listener converts, with the JWT layer's config (mTLS and plaintext chains alike)", async () => {
    const { convertListener } = await import('../../src/proxy/xds-client/convert.ts');
    const l = convertListener(await listener());
    assert.deepEqual([...l.jwt!.providers.keys()], ['origins-0']);
    assert.equal(l.jwt!.bypassCorsPreflight, true);
  });
  test('a JWT filter after another filter (but the metadata exchange) is a NACK (the sidecar runs it first)', async () => {
    const { convertListener } = await import('../../src/proxy/xds-client/convert.ts');
    const l = await listener();
    for (const c of l.filter_chains) {
      const hcm = c.filters[0].typed_config;
      const jwt = hcm.http_filters?.find((f: any) => f.name === 'envoy.filters.http.jwt_authn');
      if (jwt) hcm.http_filters = [...hcm.http_filters.filter((f: any) => f !== jwt), jwt];
    }
    assert.throws(() => convertListener(l), /http_filters\[\d+\]: the JWT filter must be the first HTTP filter, but for the metadata exchange/);
  });
});

describe("requirements beyond Istio's shapes, as Envoy's verifiers decide them", () => {
  const tc = (requires: object) => {
    const t = (jwtAuthnFilter([{ apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name: 'r', namespace: 'default' }, spec: { jwtRules: [inline()] } } as any], W) as any).typed_config;
    return jwtAuthnConfig('l', { ...t, rules: [{ match: { prefix: '/' }, requires }] });
  };
  test('a provider alone: no token is 401 "Jwt is missing", whose www-authenticate has no error', async () => {
    const o = await run(tc({ provider_name: 'origins-0' }), head());
    assert.ok(!o.ok && o.error.status === 401 && o.error.message === 'Jwt is missing');
    assert.deepEqual(!o.ok && o.error.headers, ['www-authenticate', 'Bearer realm="http://server:80/x"']);
  });
  test('allow_missing_or_failed: a bad token passes, a good one still gives its metadata', async () => {
    const cfg = tc({ requires_any: { requirements: [{ provider_name: 'origins-0' }, { allow_missing_or_failed: {} }] } });
    assert.ok((await run(cfg, head(['authorization', `Bearer ${await sign({ exp: now() - 1000 })}`]))).ok);
    const o = await run(cfg, head(['authorization', `Bearer ${await sign()}`]));
    assert.ok(o.ok && (o.metadata['envoy.filters.http.jwt_authn'] as any).payload.sub === 'alice');
  });
  test('a rule for another path verifies nothing there', async () => {
    const t = (jwtAuthnFilter([{ apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name: 'r', namespace: 'default' }, spec: { jwtRules: [inline()] } } as any], W) as any).typed_config;
    const cfg = jwtAuthnConfig('l', { ...t, rules: [{ match: { path: '/private' }, requires: { provider_name: 'origins-0' } }] });
    assert.ok((await run(cfg, head(['authorization', 'Bearer junk']))).ok);
  });
});
