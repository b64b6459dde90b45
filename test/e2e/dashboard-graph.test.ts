// The dashboard's service graph in Chromium over two hops (client -> front -> backend, real
// processes and sidecars): a workload that serves a service is drawn as that service, so the
// graph is one chain of three boxes, left to right, each edge with its figures.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type Up, loadThrough, startUp } from '../helpers.ts';
import { type Browser, openBrowser } from '../fixtures/browser.ts';

let up: Up;
let browser: Browser;

before(async () => {
  up = await startUp('test/fixtures/chain', ['--heartbeat', '1s']);
  browser = await openBrowser();
});
after(async () => {
  await browser?.close();
  if (up && up.proc.exitCode === null) await up.stop();
});

test('client -> front -> backend: three boxes in three columns, two edges with their figures', async () => {
  const load = await loadThrough(up.env, 'client', { url: 'http://front/', n: 200, concurrency: 4 });
  assert.deepEqual(load.status, { 200: 200 });
  assert.deepEqual(Object.keys(load.bodies), ['backend-v1'], 'front answered with what backend said');
  const { page } = browser;
  await page.goto(`${up.state.admin}/dashboard/`);
  for (const edge of ['client -> front', 'front -> backend']) {
    await page.locator(`#graph svg g[data-edge="${edge}"]`).waitFor({ timeout: 30_000 });
    const cells = (await page.locator(`#graph tr[data-edge="${edge}"] td`).allTextContents()).map((c) => c.trim());
    assert.equal(cells[0], edge);
    assert.ok(Number.parseFloat(cells[1]) > 0, `${edge} rate ${cells[1]}`);
    assert.equal(cells[2], '0%', `${edge} errors`);
    assert.equal(cells[4], 'mTLS', `${edge} mTLS`);
  }
  const boxes = await page.locator('#graph svg g.node').evaluateAll((gs) => gs.map((g) => ({ name: g.getAttribute('data-node'), x: Number(g.querySelector('rect')?.getAttribute('x')) })));
  assert.deepEqual(boxes.map((b) => b.name).sort(), ['backend', 'client', 'front'], 'one box per service and one for the client; none for the workloads front-v1 or backend-v1');
  const x = Object.fromEntries(boxes.map((b) => [b.name, b.x]));
  assert.ok(x.client < x.front && x.front < x.backend, `left to right: ${JSON.stringify(x)}`);
  await browser.screenshot('dashboard-graph-chain');
});
