// OpenID discovery in the control plane (control/oidc.ts), against a real HTTP server: the
// issuer's document read once, a change announced, a failure retried and then resolved, a
// refresh that fails keeping what was found, issuers no longer asked for forgotten.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { OidcDiscovery, discoverable, discoveryUrl } from '../../src/control/oidc.ts';

let server: http.Server;
let base = '';
/** What each issuer path answers: a jwks_uri, or a status. */
const answers = new Map<string, string | number>();
const hits = new Map<string, number>();

before(async () => {
  server = http.createServer((req, res) => {
    const issuer = (req.url ?? '').replace('/.well-known/openid-configuration', '');
    hits.set(issuer, (hits.get(issuer) ?? 0) + 1);
    const a = answers.get(issuer);
    if (typeof a === 'string') return res.end(JSON.stringify({ issuer: base + issuer, jwks_uri: a }));
    res.statusCode = a ?? 404;
    res.end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

/** A discovery whose changes resolve `changed()` promises, one per change. */
function discovery(o: { refreshMs?: number; retryMs?: number } = {}) {
  let wake: (() => void) | undefined;
  const logs: string[] = [];
  const d = new OidcDiscovery({ onChange: () => wake?.(), log: (m) => logs.push(m), ...o });
  const changed = () => new Promise<void>((r) => (wake = r));
  return { d, changed, logs };
}

test("the issuer's discovery URL, as istiod makes it (a trailing slash dropped)", () => {
  assert.equal(discoveryUrl('https://accounts.example/'), 'https://accounts.example/.well-known/openid-configuration');
  assert.equal(discoveryUrl('https://example/realms/x'), 'https://example/realms/x/.well-known/openid-configuration');
});

test('found by review: only an http(s) issuer with a host and no query or fragment is fetched; a jwks_uri that is no fetchable URL is not taken', async (t) => {
  assert.equal(discoverable('https://accounts.example/realms/x'), undefined);
  for (const bad of ['constructor', 'https://a.example/?x=1', 'https://a.example/#f', 'file:///etc', 'https://a.example?']) assert.ok(discoverable(bad), bad);
  const { d, logs } = discovery({ retryMs: 60_000 });
  t.after(() => d.close());
  const before = hits.get('/q') ?? 0;
  d.resolve([`${base}/q?target=x`]);
  while (!d.errorOf(`${base}/q?target=x`)) await new Promise((r) => setTimeout(r, 10));
  assert.equal(hits.get('/q') ?? 0, before, 'nothing fetched');
  assert.match(logs.join('\n'), /query or fragment/);
  answers.set('/w', 'https://a:99999/k');
  d.resolve([`${base}/w`]);
  while (!d.errorOf(`${base}/w`)) await new Promise((r) => setTimeout(r, 10));
  assert.match(d.errorOf(`${base}/w`)!, /names a jwks_uri Weft cannot fetch/);
  assert.deepEqual(d.resolve([`${base}/w`]), new Map());
});

test('an issuer is resolved once, announced as a change, then served from memory', async (t) => {
  const { d, changed } = discovery();
  t.after(() => d.close());
  answers.set('/a', 'https://keys.example/a.json');
  const c = changed();
  assert.deepEqual(d.resolve([`${base}/a`]), new Map(), 'not known yet');
  await c;
  assert.deepEqual(d.resolve([`${base}/a`]), new Map([[`${base}/a`, 'https://keys.example/a.json']]));
  assert.equal(d.version, 1);
  assert.equal(hits.get('/a'), 1);
});

test('a document that is missing, or has no http(s) jwks_uri, is tried again until it works; the failure is logged once', async (t) => {
  const { d, changed, logs } = discovery({ retryMs: 20 });
  t.after(() => d.close());
  answers.set('/b', 500);
  const issuer = `${base}/b`;
  d.resolve([issuer]);
  // Failures change nothing: wait for a few tries.
  while ((hits.get('/b') ?? 0) < 3) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(d.resolve([issuer]), new Map());
  assert.match(d.errorOf(issuer) ?? '', /answered 500/);
  assert.equal(logs.filter((l) => l.includes('failed')).length, 1, logs.join('\n'));
  answers.set('/b', 'file:///etc/passwd');
  while (!/names a jwks_uri Weft cannot fetch: url must have scheme/.test(d.errorOf(issuer) ?? '')) await new Promise((r) => setTimeout(r, 20));
  const c = changed();
  answers.set('/b', 'http://keys.example/b.json');
  await c;
  assert.deepEqual(d.resolve([issuer]), new Map([[issuer, 'http://keys.example/b.json']]));
  assert.match(logs.at(-1)!, /works again/);
});

test('a refresh that fails keeps the jwks_uri found before; one that finds another announces it', async (t) => {
  const { d, changed } = discovery({ refreshMs: 20, retryMs: 20 });
  t.after(() => d.close());
  answers.set('/c', 'https://keys.example/c1.json');
  const issuer = `${base}/c`;
  let c = changed();
  d.resolve([issuer]);
  await c;
  answers.set('/c', 503);
  const seen = hits.get('/c')!;
  while ((hits.get('/c') ?? 0) < seen + 2) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(d.resolve([issuer]), new Map([[issuer, 'https://keys.example/c1.json']]));
  c = changed();
  answers.set('/c', 'https://keys.example/c2.json');
  await c;
  assert.deepEqual(d.resolve([issuer]), new Map([[issuer, 'https://keys.example/c2.json']]));
});

test('an issuer no longer asked for is forgotten: its refreshes stop', async (t) => {
  const { d } = discovery({ refreshMs: 20 });
  t.after(() => d.close());
  answers.set('/f', 'https://keys.example/f.json');
  answers.set('/g', 'https://keys.example/g1.json');
  d.resolve([`${base}/f`, `${base}/g`]);
  while (d.resolve([`${base}/f`, `${base}/g`]).size < 2) await new Promise((r) => setTimeout(r, 10));
  d.resolve([`${base}/g`]);
  const n = hits.get('/f')!;
  // g goes on being refreshed every 20 ms: once it has been fetched five more times, f would have been too.
  const g = hits.get('/g')!;
  while (hits.get('/g')! < g + 5) await new Promise((r) => setTimeout(r, 10));
  assert.ok(hits.get('/f')! <= n + 1, `fetched ${hits.get('/f')! - n} more times after it was forgotten`);
});
