// The effective mTLS mode of a workload's port, by Istio's precedence (api/peer-auth.ts): each
// level, UNSET inheritance, portLevelMtls, and the oldest of several policies at one level.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MtlsMode, PeerAuthentication, PeerAuthenticationSpec } from '../../src/api/types.ts';
import { type PolicyTarget, portMtlsMode, workloadMtls } from '../../src/api/peer-auth.ts';

let revision = 0;
/** A stored policy: each one made later than the one before, unless `created` says otherwise. */
function pa(namespace: string, name: string, spec: PeerAuthenticationSpec, created = ++revision): PeerAuthentication {
  return { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name, namespace }, spec, created };
}
const mode = (m: MtlsMode) => ({ mode: m });
const web: PolicyTarget = { namespace: 'shop', labels: { app: 'web', version: 'v1' } };
const at = (policies: PeerAuthentication[], port = 80, w = web) => portMtlsMode(workloadMtls(policies, w), port);

describe('the level that applies', () => {
  test('no policy: PERMISSIVE', () => assert.equal(at([]), 'PERMISSIVE'));
  test('mesh-wide (no selector, in istio-system)', () => assert.equal(at([pa('istio-system', 'default', { mtls: mode('STRICT') })]), 'STRICT'));
  test('namespace-wide beats mesh-wide', () => {
    assert.equal(at([pa('istio-system', 'default', { mtls: mode('STRICT') }), pa('shop', 'ns', { mtls: mode('DISABLE') })]), 'DISABLE');
  });
  test('an empty selector is namespace-wide', () => assert.equal(at([pa('shop', 'ns', { selector: {}, mtls: mode('STRICT') })]), 'STRICT'));
  test('a workload policy beats the namespace-wide one', () => {
    const ps = [pa('shop', 'ns', { mtls: mode('STRICT') }), pa('shop', 'web', { selector: { matchLabels: { app: 'web' } }, mtls: mode('PERMISSIVE') })];
    assert.equal(at(ps), 'PERMISSIVE');
  });
  test('a workload policy whose labels do not match does not apply', () => {
    assert.equal(at([pa('shop', 'db', { selector: { matchLabels: { app: 'db' } }, mtls: mode('STRICT') })]), 'PERMISSIVE');
  });
  test("another namespace's policies do not apply, with or without selector", () => {
    assert.equal(at([pa('other', 'ns', { mtls: mode('STRICT') }), pa('other', 'web', { selector: { matchLabels: { app: 'web' } }, mtls: mode('STRICT') })]), 'PERMISSIVE');
  });
  test('a policy with a selector in the root namespace applies to no one (Istio), not even its own workloads', () => {
    const sel = pa('istio-system', 'sel', { selector: { matchLabels: { app: 'web' } }, mtls: mode('STRICT') });
    assert.equal(at([sel]), 'PERMISSIVE');
    assert.equal(at([sel], 80, { namespace: 'istio-system', labels: { app: 'web' } }), 'PERMISSIVE');
  });
  test("in the root namespace, its policy without selector is the mesh's and the workload's namespace's at once", () => {
    assert.equal(at([pa('istio-system', 'default', { mtls: mode('DISABLE') })], 80, { namespace: 'istio-system', labels: {} }), 'DISABLE');
  });
});

describe('UNSET inherits from the level above', () => {
  const mesh = pa('istio-system', 'default', { mtls: mode('STRICT') });
  test('a namespace policy UNSET (or with no mtls at all) keeps the mesh mode', () => {
    assert.equal(at([mesh, pa('shop', 'ns', { mtls: mode('UNSET') })]), 'STRICT');
    assert.equal(at([mesh, pa('shop', 'ns', {})]), 'STRICT');
  });
  test('a workload policy UNSET keeps the namespace mode, and the mesh mode through an UNSET namespace', () => {
    const w = pa('shop', 'web', { selector: { matchLabels: { app: 'web' } }, mtls: mode('UNSET') });
    assert.equal(at([mesh, pa('shop', 'ns', { mtls: mode('DISABLE') }), w]), 'DISABLE');
    assert.equal(at([mesh, pa('shop', 'ns2', { mtls: {} }), w]), 'STRICT');
  });
  test('UNSET at every level: PERMISSIVE', () => assert.equal(at([pa('istio-system', 'default', {}), pa('shop', 'ns', { mtls: mode('UNSET') })]), 'PERMISSIVE'));
});

describe('portLevelMtls', () => {
  const w = (spec: PeerAuthenticationSpec) => pa('shop', 'web', { selector: { matchLabels: { app: 'web' } }, ...spec });
  test('overrides its port only', () => {
    const ps = [w({ mtls: mode('STRICT'), portLevelMtls: { '8080': mode('DISABLE') } })];
    assert.equal(at(ps, 8080), 'DISABLE');
    assert.equal(at(ps, 80), 'STRICT');
  });
  test('an UNSET port (or one without a mode) takes the workload mode, itself inherited', () => {
    const ps = [pa('shop', 'ns', { mtls: mode('STRICT') }), w({ portLevelMtls: { '8080': mode('UNSET'), '9090': {} } })];
    assert.equal(at(ps, 8080), 'STRICT');
    assert.equal(at(ps, 9090), 'STRICT');
  });
  test('a port-level mode overrides a namespace-wide STRICT', () => {
    assert.equal(at([pa('shop', 'ns', { mtls: mode('STRICT') }), w({ portLevelMtls: { '80': mode('PERMISSIVE') } })], 80), 'PERMISSIVE');
  });
  test("only the winning workload policy's ports count", () => {
    const ps = [w({ mtls: mode('STRICT') }), pa('shop', 'web-later', { selector: { matchLabels: { version: 'v1' } }, portLevelMtls: { '80': mode('DISABLE') } })];
    assert.equal(at(ps, 80), 'STRICT');
  });
});

describe('several policies at one level: the oldest wins, then by name', () => {
  test('namespace-wide: the oldest, whatever the input order', () => {
    const old = pa('shop', 'zz-old', { mtls: mode('DISABLE') }, 1);
    const young = pa('shop', 'aa-young', { mtls: mode('STRICT') }, 2);
    assert.equal(at([young, old]), 'DISABLE');
    assert.equal(at([old, young]), 'DISABLE');
  });
  test('created together: the first by name', () => {
    assert.equal(at([pa('shop', 'b', { mtls: mode('DISABLE') }, 5), pa('shop', 'a', { mtls: mode('STRICT') }, 5)]), 'STRICT');
  });
  test('workload policies: the oldest that selects the workload', () => {
    const ps = [
      pa('shop', 'young', { selector: { matchLabels: { app: 'web' } }, mtls: mode('DISABLE') }, 9),
      pa('shop', 'old', { selector: { matchLabels: { version: 'v1' } }, mtls: mode('STRICT') }, 3),
      pa('shop', 'oldest-other', { selector: { matchLabels: { app: 'db' } }, mtls: mode('PERMISSIVE') }, 1),
    ];
    assert.equal(at(ps), 'STRICT');
  });
  test('mesh-wide: the oldest in the root namespace', () => {
    assert.equal(at([pa('istio-system', 'b', { mtls: mode('STRICT') }, 2), pa('istio-system', 'a', { mtls: mode('DISABLE') }, 1)]), 'DISABLE');
  });
});
