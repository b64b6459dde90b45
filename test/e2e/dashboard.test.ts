// The dashboard, as a person sees it: `weft up examples/canary` (real processes: control plane,
// two backend versions and a client, each with its sidecar), real traffic through the client's
// sidecar, and Debian's Chromium showing the page `weft dashboard` prints. Screenshots are kept in
// test-artifacts/ for a person to look at.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { request } from 'undici';
import { ROOT, type Up, startUp, weft } from '../helpers.ts';
import { type Browser, openBrowser } from '../fixtures/browser.ts';

const UI_WAIT = 15_000;

describe('the dashboard in Chromium (weft up examples/canary)', () => {
  let up: Up;
  let browser: Browser;
  let url: string;

  before(async () => {
    up = await startUp('examples/canary', ['--heartbeat', '1s']);
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
    if (up && up.proc.exitCode === null) await up.stop();
  });

  test('`weft dashboard` prints the URL the control plane serves it at', async () => {
    const r = await weft(['dashboard'], up.env);
    assert.equal(r.code, 0, r.stderr);
    url = r.stdout.trim();
    assert.equal(url, `${up.state.admin}/dashboard/`);
    const page = await request(url);
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(await page.body.text(), /<title>Weft dashboard<\/title>/);
  });

  test('the config panel: every resource valid, every proxy current at the store\'s revision', async () => {
    const { page } = browser;
    await page.goto(url);
    const vs = page.locator('#resources tr[data-resource="VirtualService default/my-backend-service"]');
    await vs.getByText('valid', { exact: true }).waitFor({ timeout: UI_WAIT });
    await page.locator('#resources tr[data-resource="DestinationRule default/my-backend-service"]').getByText('valid', { exact: true }).waitFor({ timeout: UI_WAIT });
    const { revision } = await (await request(`${up.state.admin}/version`)).body.json() as { revision: number };
    for (const w of ['client', 'hello-v1', 'hello-v2']) {
      const row = page.locator(`#proxies tr[data-proxy="default/${w}"]`);
      await row.getByText('current', { exact: true }).waitFor({ timeout: UI_WAIT });
      assert.equal((await row.locator('td').nth(1).textContent())?.trim(), String(revision), `${w}'s ACKed revision`);
    }
    await browser.screenshot('dashboard-config');
  });

  test('the split panel shows the VirtualService\'s intended 90/10', async () => {
    const split = browser.page.locator('.split[data-vs="default/my-backend-service"]');
    await split.waitFor({ timeout: UI_WAIT });
    assert.equal(await split.locator('tr[data-destination="my-backend-service v1"] td.intended').textContent(), '90%');
    assert.equal(await split.locator('tr[data-destination="my-backend-service v2"] td.intended').textContent(), '10%');
  });

  test('a change shows without reloading the page: weft apply of the 50/50 split', async () => {
    const { page } = browser;
    // A reload would lose this mark.
    await page.evaluate(() => ((window as any).__notReloaded = true));
    const r = await weft(['apply', '-f', path.join(ROOT, 'examples/canary/split-50-50.yaml')], up.env);
    assert.equal(r.code, 0, r.stderr);
    const v1 = page.locator('.split[data-vs="default/my-backend-service"] tr[data-destination="my-backend-service v1"] td.intended');
    await page.waitForFunction(() => document.querySelector('.split[data-vs="default/my-backend-service"] tr[data-destination="my-backend-service v1"] td.intended')?.textContent === '50%', undefined, { timeout: UI_WAIT });
    assert.equal(await v1.textContent(), '50%');
    assert.equal(await page.evaluate(() => (window as any).__notReloaded), true);
    const back = await weft(['apply', '-f', path.join(ROOT, 'examples/canary/istio.yaml')], up.env);
    assert.equal(back.code, 0, back.stderr);
    await page.waitForFunction(() => document.querySelector('.split[data-vs="default/my-backend-service"] tr[data-destination="my-backend-service v1"] td.intended')?.textContent === '90%', undefined, { timeout: UI_WAIT });
  });

  test('read-only and self-contained: only GET, only the control plane\'s own files, nothing from elsewhere', async () => {
    const post = await request(url, { method: 'POST', body: 'x' });
    assert.equal(post.statusCode, 405);
    assert.match(await post.body.text(), /read-only/);
    for (const p of ['/dashboard/serve.ts', '/dashboard/%2e%2e%2fserve.ts', '/dashboard/..%2f..%2f..%2fpackage.json', '/dashboard/nope.js']) {
      const r = await request(`${up.state.admin}${p}`);
      assert.equal(r.statusCode, 404, p);
      await r.body.text();
    }
    const page = await request(url);
    await page.body.text();
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'.*connect-src 'self'/);
    const origin = new URL(url).origin;
    const elsewhere = browser.requests.filter((u) => new URL(u).origin !== origin);
    assert.deepEqual(elsewhere, [], 'the page requested something from outside the control plane');
    assert.ok(browser.requests.some((u) => u.endsWith('/api/v1/proxies')), 'the page polls the admin API');
    assert.deepEqual(browser.errors, [], 'the page logged errors');
    assert.deepEqual(browser.failed.filter((f) => !/ \S+\/api\/v1\/signals/.test(f)), [], 'requests that failed');
  });
});
