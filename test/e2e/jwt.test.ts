// RequestAuthentication through real sidecars (Istio's "Authentication policy" task, end-user
// part): a control plane, the app's sidecar and a client's sidecar as processes; a JWKS server run
// here on 127.0.0.1; tokens signed here with jose. One RequestAuthentication in namespace default
// with three rules:
//   - issuer A: the default location (Authorization: Bearer), audience "weft", the payload and the
//     sub claim to headers the app sees;
//   - issuer C: a header with a prefix and a query parameter, forwardOriginalToken;
//   - issuer B: a JWKS URI nobody listens on.
// Every answer is checked as the client sees it: status, Envoy's body, www-authenticate, and what
// the app got.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { checkResource } from '../../src/api/index.ts';
import { freePort } from '../../src/util/net.ts';
import { waitFor } from '../helpers.ts';
import { type Mesh, startMesh } from '../proxy/mesh.ts';

const A = 'https://a.example';
const B = 'https://b.example';
const C = 'https://c.example';

let mesh: Mesh;
let jwksServer: http.Server;
let jwksHits = 0;
let discoveryHits = 0;
const base = () => `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}`;
/** Issuers named with neither jwks nor jwksUri: their keys are found by OpenID discovery. */
const D = () => `${base()}/d`;
const E = () => `${base()}/e`;
let priv: CryptoKey;
let otherPriv: CryptoKey;
let jwk: JWK;
/** The headers the app saw on its last request. */
let seen: http.IncomingHttpHeaders = {};
let seenUrl = '';

const now = () => Math.floor(Date.now() / 1000);
function token(claims: Record<string, unknown> = {}, key: CryptoKey = priv): Promise<string> {
  return new SignJWT({ iss: A, sub: 'alice', aud: 'weft', exp: now() + 600, ...claims }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(key);
}

async function call(headers: Record<string, string> = {}, path = '/headers'): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  const r = await request(`http://127.0.0.1:${mesh.outbound}${path}`, { headers: { host: 'app', ...headers } });
  return { status: r.statusCode, body: await r.body.text(), headers: r.headers };
}

async function refused(headers: Record<string, string>, status: number, message: string, path = '/headers'): Promise<void> {
  const r = await call(headers, path);
  assert.equal(r.status, status, r.body);
  assert.equal(r.body, `weft: ${message}\n`);
  assert.equal(r.headers['x-weft-error'], 'jwt_authn_denied');
  assert.equal(r.headers['x-weft-error-detail'], message);
  assert.match(String(r.headers['www-authenticate']), /^Bearer realm="http:\/\/app\/headers[^"]*", error="invalid_token"$/);
}

before(async () => {
  const kp = await generateKeyPair('RS256', { extractable: true });
  priv = kp.privateKey;
  jwk = { ...(await exportJWK(kp.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  otherPriv = (await generateKeyPair('RS256')).privateKey;
  jwksServer = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    // OpenID discovery: issuer <base>/d's document points to the key set; <base>/e has none.
    if (req.url === '/d/.well-known/openid-configuration') {
      discoveryHits++;
      return res.end(JSON.stringify({ issuer: D(), jwks_uri: `${base()}/jwks.json` }));
    }
    if (req.url?.endsWith('/.well-known/openid-configuration')) {
      res.statusCode = 404;
      return res.end('{}');
    }
    jwksHits++;
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', () => r()));
  const jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
  const nobody = `http://127.0.0.1:${await freePort()}/jwks.json`;
  mesh = await startMesh((req, res) => {
    seen = req.headers;
    seenUrl = req.url ?? '';
    res.end('ok');
  });
  mesh.cp.store.apply([
    checkResource(
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'RequestAuthentication',
        metadata: { name: 'jwt', namespace: 'default' },
        spec: {
          jwtRules: [
            { issuer: A, jwksUri, audiences: ['weft'], outputPayloadToHeader: 'x-jwt-payload', outputClaimToHeaders: [{ header: 'x-sub', claim: 'sub' }] },
            { issuer: B, jwksUri: nobody, timeout: '1s', fromHeaders: [{ name: 'x-b-token' }] },
            { issuer: C, jwksUri, fromHeaders: [{ name: 'x-c-token', prefix: 'Token ' }], fromParams: ['c_token'], forwardOriginalToken: true },
          ],
        },
      },
      'ra',
    ),
  ]);
  const expired = await token({ exp: now() - 3600 });
  await waitFor('the app sidecar to verify tokens', async () => (await call({ authorization: `Bearer ${expired}` })).status === 401);
});

after(async () => {
  await mesh?.close();
  jwksServer?.closeAllConnections();
  jwksServer?.close();
});

describe('RequestAuthentication through real sidecars', () => {
  test('no token: passes (RequestAuthentication alone requires none)', async () => {
    const r = await call();
    assert.equal(r.status, 200);
  });

  test('a valid token: passes; the app sees the payload (base64url) and the sub claim as headers, not the token, not a spoofed x-sub', async () => {
    const t = await token();
    const r = await call({ authorization: `Bearer ${t}`, 'x-sub': 'mallory' });
    assert.equal(r.status, 200, r.body);
    assert.equal(seen.authorization, undefined);
    assert.equal(seen['x-sub'], 'alice');
    assert.equal(seen['x-jwt-payload'], t.split('.')[1]);
    assert.equal(JSON.parse(Buffer.from(String(seen['x-jwt-payload']), 'base64url').toString()).iss, A);
  });

  test('expired: 401 "Jwt is expired", with www-authenticate', async () => {
    await refused({ authorization: `Bearer ${await token({ exp: now() - 3600 })}` }, 401, 'Jwt is expired');
  });

  test('not yet valid: 401 "Jwt not yet valid"', async () => {
    await refused({ authorization: `Bearer ${await token({ nbf: now() + 3600 })}` }, 401, 'Jwt not yet valid');
  });

  test('an issuer no rule has: 401 "Jwt issuer is not configured"', async () => {
    await refused({ authorization: `Bearer ${await token({ iss: 'https://evil.example' })}` }, 401, 'Jwt issuer is not configured');
  });

  test('an audience not allowed: 403 "Audiences in Jwt are not allowed" (Envoy\'s status for it)', async () => {
    await refused({ authorization: `Bearer ${await token({ aud: 'someone-else' })}` }, 403, 'Audiences in Jwt are not allowed');
  });

  test('a bad signature: 401 "Jwt verification fails"', async () => {
    await refused({ authorization: `Bearer ${await token({}, otherPriv)}` }, 401, 'Jwt verification fails');
  });

  test('a header with a prefix (forwardOriginalToken: the app gets it too), and a query parameter', async () => {
    const t = await token({ iss: C, aud: undefined });
    assert.equal((await call({ 'x-c-token': `Token ${t}` })).status, 200);
    assert.equal(seen['x-c-token'], `Token ${t}`);
    assert.equal((await call({}, `/headers?c_token=${t}`)).status, 200);
    assert.equal(seenUrl, `/headers?c_token=${t}`);
    await refused({}, 401, 'Jwt is expired', `/headers?c_token=${await token({ iss: C, exp: now() - 3600 })}`);
  });

  test('a JWKS nobody serves: requests with its tokens get 401 "Jwks remote fetch is failed"; others are served', async () => {
    await refused({ 'x-b-token': await token({ iss: B }) }, 401, 'Jwks remote fetch is failed');
    // The sidecar says which key set it cannot fetch, and why.
    const dump = (await (await request(`${mesh.server.admin}/config_dump`)).body.json()) as { jwksErrors: Record<string, string> };
    assert.deepEqual(Object.keys(dump.jwksErrors).length, 1);
    assert.match(Object.values(dump.jwksErrors)[0]!, /ECONNREFUSED/);
    assert.equal((await call()).status, 200);
    assert.equal((await call({ authorization: `Bearer ${await token()}` })).status, 200);
  });

  test('the key set is fetched once and cached (both rules that name it share one fetch per 10 minutes)', async () => {
    const before = jwksHits;
    for (let i = 0; i < 5; i++) assert.equal((await call({ authorization: `Bearer ${await token()}` })).status, 200);
    assert.equal(jwksHits, before);
    assert.ok(jwksHits >= 1 && jwksHits <= 2, `${jwksHits} fetches`);
  });
});

// Istio's "require a valid token" step: RequestAuthentication says which tokens are good, an
// AuthorizationPolicy on requestPrincipals says a token is needed; the JWT layer's findings reach
// the RBAC layer (dynamic metadata), as Envoy's jwt_authn hands them to its RBAC filter.
describe('RequestAuthentication with an AuthorizationPolicy on requestPrincipals', () => {
  const policy = checkResource(
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'require-alice', namespace: 'default' },
      spec: { action: 'ALLOW', rules: [{ from: [{ source: { requestPrincipals: [`${A}/alice`] } }], when: [{ key: 'request.auth.claims[group]', values: ['admins'] }] }] },
    },
    'ap',
  );
  before(async () => {
    mesh.cp.store.apply([policy]);
    await waitFor('the app sidecar to require a token', async () => (await call()).status === 403);
  });
  after(() => {
    mesh.cp.store.delete({ kind: 'AuthorizationPolicy', namespace: 'default', name: 'require-alice' });
  });

  test('no token: 403 RBAC: access denied (no ALLOW policy matched)', async () => {
    const r = await call();
    assert.equal(r.status, 403);
    assert.equal(r.body, 'RBAC: access denied');
    assert.equal(r.headers['x-weft-authz-policy'], 'none');
  });

  test("alice's valid token with the claim group=admins: 200; without the claim, or another subject: 403", async () => {
    assert.equal((await call({ authorization: `Bearer ${await token({ group: 'admins' })}` })).status, 200);
    assert.equal((await call({ authorization: `Bearer ${await token({ group: 'users' })}` })).status, 403);
    assert.equal((await call({ authorization: `Bearer ${await token({ sub: 'bob', group: 'admins' })}` })).status, 403);
  });

  test('an invalid token is still a 401 from the JWT layer, before authorization', async () => {
    await refused({ authorization: `Bearer ${await token({ exp: now() - 3600, group: 'admins' })}` }, 401, 'Jwt is expired');
  });
});

// Istio's jwtRules with an issuer alone: the control plane reads the issuer's OpenID discovery
// document for its jwks_uri (control/oidc.ts); an issuer whose document cannot be had gets a key set
// no token verifies against, so its tokens are refused, never let through.
describe('RequestAuthentication by OpenID discovery (an issuer, no jwks, no jwksUri)', () => {
  before(async () => {
    mesh.cp.store.apply([
      checkResource({ apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name: 'discovered', namespace: 'default' }, spec: { jwtRules: [{ issuer: D(), fromHeaders: [{ name: 'x-d-token' }] }, { issuer: E(), fromHeaders: [{ name: 'x-e-token' }] }] } }, 'ra'),
    ]);
    // Applied (a forged token is refused) and discovered (a good one passes): a sidecar without the
    // rule passes both, one with the rule but no keys yet refuses both.
    const good = await token({ iss: D(), aud: undefined });
    const forged = await token({ iss: D(), aud: undefined }, otherPriv);
    await waitFor("the app sidecar to verify D's tokens with the discovered keys", async () => (await call({ 'x-d-token': forged })).status === 401 && (await call({ 'x-d-token': good })).status === 200, 15_000);
  });
  after(() => {
    mesh.cp.store.delete({ kind: 'RequestAuthentication', namespace: 'default', name: 'discovered' });
  });

  test("the discovered issuer's valid token passes; a bad signature is 401; the document was read once", async () => {
    assert.equal((await call({ 'x-d-token': await token({ iss: D(), aud: undefined }) })).status, 200);
    await refused({ 'x-d-token': await token({ iss: D(), aud: undefined }, otherPriv) }, 401, 'Jwt verification fails');
    assert.equal(discoveryHits, 1);
  });

  test('an issuer whose discovery document is missing: its tokens, even well signed, are refused with 401; requests without one pass', async () => {
    await refused({ 'x-e-token': await token({ iss: E(), aud: undefined }) }, 401, "Jwks doesn't have key to match kid or alg from Jwt");
    assert.equal((await call()).status, 200);
  });
});
