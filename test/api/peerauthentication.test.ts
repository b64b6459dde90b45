// PeerAuthentication (security.istio.io v1, v1beta1): Istio's schema, CEL rules and webhook rules,
// each error naming the resource and the field. Istio's own fixtures run in conformance.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkResource } from '../../src/api/index.ts';
import { supportOf } from '../../src/api/support.ts';
import { assertAccepted, assertRejected, peerAuthentication, validationProblems, virtualService, vsSpec, type Spec } from './helpers.ts';

const R = 'PeerAuthentication default/r';
const SEL = { matchLabels: { app: 'db' } };

const REJECTED: [string, Spec, string][] = [
  ['a mode not in the enum', { mtls: { mode: 'MUTUAL' } }, `${R}: spec.mtls.mode: must be one of UNSET, DISABLE, PERMISSIVE, STRICT (got "MUTUAL")`],
  ['a port-level mode not in the enum', { selector: SEL, portLevelMtls: { '80': { mode: 'strict' } } }, `${R}: spec.portLevelMtls[80].mode: must be one of UNSET, DISABLE, PERMISSIVE, STRICT (got "strict")`],
  ['portLevelMtls without a selector (CEL on spec)', { portLevelMtls: { '80': { mode: 'STRICT' } } }, `${R}: spec: portLevelMtls needs a selector with matchLabels: a namespace-wide or mesh-wide policy cannot set modes per port`],
  ['portLevelMtls with a selector without labels (an empty selector is none)', { selector: {}, portLevelMtls: { '80': { mode: 'STRICT' } } }, `${R}: spec: portLevelMtls needs a selector with matchLabels: a namespace-wide or mesh-wide policy cannot set modes per port`],
  ['an empty portLevelMtls (CRD minProperties)', { selector: SEL, portLevelMtls: {} }, `${R}: spec.portLevelMtls: must have at least one entry`],
  ['a port key that is no number', { selector: SEL, portLevelMtls: { http: { mode: 'STRICT' } } }, `${R}: spec.portLevelMtls[http]: "http" is not a port number`],
  ['port 0 (CEL)', { selector: SEL, portLevelMtls: { '0': { mode: 'STRICT' } } }, `${R}: spec.portLevelMtls[0]: port 0 must be between 1 and 65535`],
  ['port 65536 (CEL)', { selector: SEL, portLevelMtls: { '65536': { mode: 'STRICT' } } }, `${R}: spec.portLevelMtls[65536]: port 65536 must be between 1 and 65535`],
  ['a wildcard label value in the selector', { selector: { matchLabels: { app: 'd*' } } }, `${R}: spec.selector.matchLabels[app]: wildcard not allowed in label value match`],
  ['an empty label key in the selector', { selector: { matchLabels: { '': 'x' } } }, `${R}: spec.selector.matchLabels[]: label key must not be empty`],
  ['a label value over 63 characters (CRD maxLength)', { selector: { matchLabels: { app: 'x'.repeat(64) } } }, `${R}: spec.selector.matchLabels[app]: must be at most 63 characters`],
  ['an unknown field', { mtls: { mode: 'STRICT', strict: true } }, `${R}: spec.mtls.strict: unknown field`],
];

describe('PeerAuthentication: rejected, naming the field', () => {
  for (const [title, spec, message] of REJECTED) test(title, () => assertRejected(peerAuthentication(spec), message));
});

describe('PeerAuthentication: accepted, and applied (nothing refused or warned)', () => {
  const ACCEPTED: [string, Spec][] = [
    ['empty: a namespace-wide policy that inherits (UNSET)', {}],
    ['mesh-wide STRICT', { mtls: { mode: 'STRICT' } }],
    ['every mode', { mtls: { mode: 'UNSET' } }],
    ['DISABLE', { mtls: { mode: 'DISABLE' } }],
    ['an empty selector (namespace-wide)', { selector: {}, mtls: { mode: 'PERMISSIVE' } }],
    ['port-level modes with a selector, UNSET and no mode too', { selector: SEL, mtls: { mode: 'STRICT' }, portLevelMtls: { '8080': { mode: 'DISABLE' }, '9090': { mode: 'UNSET' }, '1': {} } }],
  ];
  for (const [title, spec] of ACCEPTED) {
    test(title, () => {
      assertAccepted(peerAuthentication(spec));
      const r = checkResource(peerAuthentication(spec), 'x');
      assert.deepEqual(supportOf(r.kind, r.spec), { rejected: [], warnings: [] });
    });
  }
  test('v1beta1 too, not v1alpha1', () => {
    assertAccepted({ ...peerAuthentication({}), apiVersion: 'security.istio.io/v1beta1' });
    assert.throws(() => checkResource({ ...peerAuthentication({}), apiVersion: 'security.istio.io/v1alpha1' }, 'x'), /kind PeerAuthentication \(security\.istio\.io\/v1alpha1\) is not supported/);
  });
});

test('istio.io/dry-run on a PeerAuthentication (or any Istio kind but AuthorizationPolicy) is refused, as Istio refuses it: it would read as "not enforced" where the policy is', () => {
  const annotated = (obj: Record<string, unknown>) => ({ ...obj, metadata: { ...(obj.metadata as object), annotations: { 'istio.io/dry-run': 'true' } } });
  assert.deepEqual(validationProblems(annotated(peerAuthentication({ mtls: { mode: 'STRICT' } }))), [
    'metadata.annotations[istio.io/dry-run]: only an AuthorizationPolicy can be dry-run: remove the annotation (PeerAuthentication has no dry-run, it is applied)',
  ]);
  assert.deepEqual(validationProblems(annotated(virtualService(vsSpec()))), [
    'metadata.annotations[istio.io/dry-run]: only an AuthorizationPolicy can be dry-run: remove the annotation (VirtualService has no dry-run, it is applied)',
  ]);
  assert.deepEqual(validationProblems(peerAuthentication({ mtls: { mode: 'STRICT' } })), []);
});
