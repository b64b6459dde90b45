// The dashboard's config panel in Chromium, on what goes wrong: a resource the analysis finds an
// error in, and a real sidecar's NACK (the control plane is made to send a CEL condition, which
// the sidecar cannot evaluate, as test/e2e/authz-nack.test.ts does), shown with its reason
// without reloading the page.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../helpers.ts';
import { AuthzMesh, translateNackedWhen } from '../fixtures/authz-mesh.ts';
import { type Browser, openBrowser } from '../fixtures/browser.ts';

const UI_WAIT = 15_000;
const mesh = new AuthzMesh();
let browser: Browser;
let breakIt = false;

before(async () => {
  await mesh.start('dashboard-config', translateNackedWhen(() => breakIt));
  const app = await mesh.httpApp('httpbin');
  await mesh.workload({ name: 'httpbin-v1', namespace: 'foo', sa: 'httpbin', service: 'httpbin', labels: { app: 'httpbin', version: 'v1' }, ports: [['http', 8000, app]] });
  await mesh.apply([
    // Subset v2 is defined nowhere: IST0101.
    { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'httpbin', namespace: 'foo' }, spec: { hosts: ['httpbin'], http: [{ route: [{ destination: { host: 'httpbin', subset: 'v2' } }] }] } },
  ]);
  await mesh.setPolicies([{ metadata: { name: 'deny-admin', namespace: 'foo' }, spec: { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin'] } }] }] } }]);
  browser = await openBrowser();
});
after(async () => {
  await browser?.close();
  await mesh.close();
});

test('each resource\'s validation state: an analysis error and a warning, each naming the field', async () => {
  const { page } = browser;
  await page.goto(`${mesh.cp.adminUrl}/dashboard/`);
  const vs = page.locator('#resources tr[data-resource="VirtualService foo/httpbin"]');
  await vs.getByText('1 error', { exact: true }).waitFor({ timeout: UI_WAIT });
  assert.match((await vs.locator('td.msgs').textContent()) ?? '', /Error \[IST0101\] spec\.http\[0\]\.route\[0\]\.destination\.subset: .*v2/);
  // Istio warns of an HTTP-only DENY rule: it denies every TCP connection in its scope.
  const ap = page.locator('#resources tr[data-resource="AuthorizationPolicy foo/deny-admin"]');
  await ap.getByText('warnings', { exact: true }).waitFor({ timeout: UI_WAIT });
  assert.match((await ap.locator('td.msgs').textContent()) ?? '', /Warning \[IST0133\] spec\.rules\[0\]: .*deny all traffic to TCP ports/);
  await page.locator('#proxies tr[data-proxy="foo/httpbin-v1"]').getByText('current', { exact: true }).waitFor({ timeout: UI_WAIT });
});

test('a NACK shows on its proxy with the sidecar\'s reason, without a reload', async () => {
  const { page } = browser;
  await page.evaluate(() => ((window as any).__notReloaded = true));
  breakIt = true;
  mesh.cp.ads.requestPush();
  const nack = await waitFor('an LDS NACK from httpbin', async () => mesh.cp.ads.proxies().find((p) => p.workload.name === 'httpbin-v1')?.types.find((t) => t.type === 'LDS')?.nack);
  const row = page.locator('#proxies tr[data-proxy="foo/httpbin-v1"]');
  await row.getByText('NACKed', { exact: true }).waitFor({ timeout: UI_WAIT });
  const reasons = (await row.locator('td.msgs').textContent()) ?? '';
  assert.ok(reasons.includes(`LDS NACK of ${nack.version}: ${nack.reason}`), reasons);
  assert.match(reasons, /CEL conditions are not supported/);
  // LDS still holds the version before the one it refused.
  const lds = (await row.locator('.type[data-type="LDS"]').textContent()) ?? '';
  assert.match(lds, new RegExp(`^LDS \\d+ → ${nack.version}$`), lds);
  assert.equal(await page.evaluate(() => (window as any).__notReloaded), true);
  await browser.screenshot('dashboard-nack');
});
