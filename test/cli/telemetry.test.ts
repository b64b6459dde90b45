// `weft apply`, `get`, `delete` and `analyze` with Istio's Telemetry, against a running control
// plane: kubectl's names for the kind, the warnings (what is not applied yet, providers the mesh
// does not have) on stderr, and what analyze reports of the stored Telemetries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpDir, weft } from '../helpers.ts';

const TELEMETRIES = `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  accessLogging:
  - providers: [{name: envoy}, {name: otel}]
    filter: {expression: "response.code >= 400"}
  tracing:
  - randomSamplingPercentage: 10
---
apiVersion: telemetry.istio.io/v1alpha1
kind: Telemetry
metadata: {name: a, namespace: shop}
spec:
  accessLogging:
  - filter: {expression: "response.code >= 500"}
---
apiVersion: telemetry.istio.io/v1alpha1
kind: Telemetry
metadata: {name: b, namespace: shop}
spec: {}
`;

test('apply, get (telemetry, telemetries), analyze and delete a Telemetry against a running control plane', async () => {
  const { startControlPlane } = await import('../../src/control/control-plane.ts');
  const cp = await startControlPlane({ dataDir: tmpDir('cli-telemetry'), adminPort: 0, xdsPort: 0 });
  process.env.WEFT_ADMIN_TOKEN = cp.adminToken;
  const admin = ['--admin', cp.adminUrl];
  try {
    const a = await weft(['apply', '-f', '-', ...admin], {}, TELEMETRIES);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout, 'Telemetry istio-system/mesh-default created (revision 1)\nTelemetry shop/a created (revision 2)\nTelemetry shop/b created (revision 3)\n');
    assert.doesNotMatch(a.stderr, /spec\.tracing/, 'tracing (randomSamplingPercentage) is applied: no warning');
    assert.match(a.stderr, /^Warning: Telemetry istio-system\/mesh-default: spec\.accessLogging\[0\]\.providers\[1\]: provider "otel" is not among the mesh config's extensionProviders/m);

    const list = await weft(['get', 'telemetries', ...admin]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^NAMESPACE\s+NAME\s+REVISION\s+WARNINGS\n/);
    assert.match(list.stdout, /istio-system\s+mesh-default\s+1\s+0\n/, 'its tracing is applied: no warning stored with it');
    const one = await weft(['get', 'telemetry', 'a', '-n', 'shop', '-o', 'yaml', ...admin]);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /apiVersion: telemetry\.istio\.io\/v1alpha1\nkind: Telemetry\n/);
    assert.match(one.stdout, /expression: response\.code >= 500\n/);

    const an = await weft(['analyze', ...admin]);
    assert.match(an.stdout, /Warning \[IST0157\] \(Telemetry shop\/a\) spec\.accessLogging\[0\]\.providers: The Telemetry a in namespace "shop" with empty providers will be ignored\./);
    assert.match(an.stdout, /Error \[IST0160\] \(Telemetry shop\/b\) spec: The Telemetries \[a b\] in namespace "shop" have no workload selector/);
    assert.equal(an.code, 1, 'IST0160 is an error');

    const del = await weft(['delete', 'telemetry', 'b', '-n', 'shop', ...admin]);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(del.stdout, 'Telemetry shop/b deleted (revision 4)\n');
  } finally {
    await cp.close();
  }
});
