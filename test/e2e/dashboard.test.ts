// The dashboard, as a person sees it: `weft up examples/canary` (real processes: control plane,
// two backend versions and a client, each with its sidecar), real traffic through the client's
// sidecar, and Debian's Chromium showing the page `weft dashboard` prints. Screenshots are kept in
// test-artifacts/ for a person to look at.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { request } from 'undici';
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI, ROOT, type Up, alive, lineMatching, loadThrough, shareBound, startUp, waitFor, weft } from '../helpers.ts';
import { type Browser, openBrowser } from '../fixtures/browser.ts';

const UI_WAIT = 15_000;
const TRACING = `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |-
    enableTracing: true
    defaultConfig:
      tracing:
        sampling: 100
`;

describe('the dashboard in Chromium (weft up examples/canary)', () => {
  let up: Up;
  let browser: Browser;
  let url: string;
  let restartedControl: ChildProcess | undefined;

  before(async () => {
    up = await startUp('examples/canary', ['--heartbeat', '1s']);
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
    if (restartedControl && restartedControl.exitCode === null) restartedControl.kill('SIGKILL');
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

  test('real traffic: the edge client -> my-backend-service with its rate, errors, p99 and mTLS; the observed 90/10 beside the intended; the RED charts', async (t) => {
    const { page } = browser;
    // Tracing on, every request sampled: the sidecars report their spans to the control plane.
    const tracing = await weft(['apply', '-f', '-'], up.env, TRACING);
    assert.equal(tracing.code, 0, tracing.stderr);
    const { revision } = (await (await request(`${up.state.admin}/version`)).body.json()) as { revision: number };
    // Every sidecar has the tracing config once the page says it ACKed that revision.
    for (const w of ['client', 'hello-v1', 'hello-v2']) {
      await page.waitForFunction(
        ([sel, rev]) => {
          const tds = document.querySelectorAll(`${sel} td`);
          return tds[1]?.textContent?.trim() === rev && tds[2]?.textContent === 'current';
        },
        [`#proxies tr[data-proxy="default/${w}"]`, String(revision)] as const,
        { timeout: UI_WAIT },
      );
    }
    const load = await loadThrough(up.env, 'client', { url: 'http://my-backend-service/hello', n: 2000, concurrency: 16 });
    assert.equal(load.status['200'], 2000, JSON.stringify(load.status));
    // The graph: an arrow, and its row with the figures.
    await page.locator('#graph svg g[data-edge="client -> my-backend-service"]').waitFor({ timeout: 30_000 });
    const row = page.locator('#graph tr[data-edge="client -> my-backend-service"]');
    await row.waitFor({ timeout: UI_WAIT });
    const cells = (await row.locator('td').allTextContents()).map((c) => c.trim());
    t.diagnostic(`edge row: ${cells.join(' | ')}`);
    assert.equal(cells[0], 'client -> my-backend-service');
    assert.match(cells[1], /^\d+(\.\d+)?\/s$/, 'rate');
    assert.ok(Number.parseFloat(cells[1]) > 0, 'rate');
    assert.equal(cells[2], '0%', 'errors: every request was a 200');
    assert.match(cells[3], /^(≤ )?\d+(\.\d+)? m?s$/, 'p99');
    assert.equal(cells[4], 'mTLS', 'sidecar to sidecar is mutual TLS');
    // The split: every request of the load counted, v2's share a fair draw at 10%, beside the intended.
    const split = page.locator('.split[data-vs="default/my-backend-service"]');
    await page.waitForFunction(() => Number(document.querySelector('.split[data-vs="default/my-backend-service"]')?.getAttribute('data-requests')) >= 2000, undefined, { timeout: 30_000 });
    const share = async (subset: string) => Number.parseFloat((await split.locator(`tr[data-destination="my-backend-service ${subset}"] td.observed`).textContent()) ?? '');
    const [v1, v2] = [await share('v1'), await share('v2')];
    const want = (((load.bodies['Hello from MyBackendService! version=v2'] ?? 0) / 2000) * 100);
    t.diagnostic(`observed on the page: v1 ${v1}%, v2 ${v2}%; the load's own count of v2: ${want.toFixed(1)}%`);
    const bound = 100 * shareBound(2000, 0.1);
    assert.ok(Math.abs(v2 - 10) <= bound, `v2 ${v2}%, want 10% ± ${bound.toFixed(1)} (five binomial deviations)`);
    assert.ok(Math.abs(v2 - want) <= 0.5, `the page's v2 share ${v2}% is the load's ${want.toFixed(1)}%`);
    assert.ok(Math.abs(v1 + v2 - 100) <= 1, `v1 ${v1}% + v2 ${v2}%`);
    assert.equal(await split.locator('tr[data-destination="my-backend-service v1"] td.intended').textContent(), '90%');
    assert.equal(await split.locator('tr[data-destination="my-backend-service v2"] td.intended').textContent(), '10%');
    // The RED charts: the service's rate now.
    const red = page.locator('#red .red[data-service="my-backend-service"] .chart[data-chart="rate"] b');
    await red.waitFor({ timeout: UI_WAIT });
    assert.notEqual(await red.textContent(), '–');
    await browser.screenshot('dashboard-traffic');
  });

  test('a trace of that traffic, with its waterfall: the client sidecar\'s span and, under it, the backend\'s', async (t) => {
    const { page } = browser;
    const first = page.locator('#traces .trace-list tbody tr').first();
    await first.waitFor({ timeout: 30_000 });
    const id = await first.getAttribute('data-trace');
    assert.match(id ?? '', /^[0-9a-f]{32}$/);
    await first.click();
    const fall = page.locator(`#traces .waterfall[data-trace="${id}"]`);
    await fall.waitFor({ timeout: UI_WAIT });
    const spans = (await fall.locator('.span .lbl').allTextContents()).map((x) => x.replace(/\s+/g, ' ').trim());
    t.diagnostic(`waterfall of ${id}: ${spans.join(' / ')}`);
    assert.ok(spans.length >= 2, `spans: ${spans.join(' / ')}`);
    assert.match(spans[0], /^client client\b/, 'the root: the client sidecar\'s CLIENT span');
    assert.ok(spans.slice(1).some((x) => /^server my-backend-service\b/.test(x)), `a SERVER span of my-backend-service under it: ${spans.join(' / ')}`);
    // The same trace as the API has it: the page shows what the control plane keeps.
    const api = (await (await request(`${up.state.admin}/api/v1/traces/${id}`)).body.json()) as { spans: unknown[] };
    assert.equal(spans.length, api.spans.length);
    // A span's attributes open on a click.
    await fall.locator('.span').first().click();
    await page.locator('#traces table.attrs').first().waitFor({ timeout: UI_WAIT });
    await browser.screenshot('dashboard-trace');
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
    assert.deepEqual(browser.failed, [], 'requests that failed');
  });

  test('the control plane killed: the page says so and keeps what it last showed; restarted: live again, without a reload', async () => {
    const { page } = browser;
    await page.evaluate(() => ((window as any).__notReloaded = true));
    const status = page.locator('#status');
    process.kill(up.state.controlPid, 'SIGKILL');
    await waitFor('the control plane to die', async () => !alive(up.state.controlPid));
    await page.waitForFunction(() => document.querySelector('#status')?.classList.contains('down'), undefined, { timeout: UI_WAIT });
    assert.match((await status.textContent()) ?? '', /cannot reach the control plane.*showing what it said at/);
    assert.equal(await page.locator('#graph tr[data-edge="client -> my-backend-service"]').count(), 1, 'the last edges stay on screen');
    await browser.screenshot('dashboard-control-plane-down');
    restartedControl = spawn(process.execPath, [CLI, 'control', ...up.state.controlArgs], { env: { ...process.env, ...up.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    await lineMatching(restartedControl, /^WEFT_READY /);
    await page.waitForFunction(() => document.querySelector('#status')?.classList.contains('live'), undefined, { timeout: UI_WAIT });
    // The sidecars reconnect, and the page shows them current again.
    await page.locator('#proxies tr[data-proxy="default/client"]').getByText('current', { exact: true }).waitFor({ timeout: 30_000 });
    assert.equal(await page.evaluate(() => (window as any).__notReloaded), true);
  });
});
