// ReferenceGrant: the CRD's shape (its CRD has no CEL rules), each case naming the field it is
// about. What Weft warns about in a grant is in support.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkResource } from '../../src/api/index.ts';
import { assertAccepted, referenceGrant, validationProblems, type Spec } from './helpers.ts';

const FROM = { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'shop' };
const TO = { group: '', kind: 'Service' };
const grant = (extra: Spec = {}): Spec => ({ from: [FROM], to: [TO], ...extra });

const NAMESPACE = 'must be a DNS-1123 label: at most 63 lower-case letters, digits or "-", starting and ending with a letter or digit';
const KIND = 'must be a kind such as "Service": letters, digits and "-", starting with a letter';
const GROUP = 'must be empty (the core group) or a DNS subdomain such as "gateway.networking.k8s.io"';

describe('ReferenceGrant: rejected, naming the field', () => {
  const REJECTED: [string, Spec, string[]][] = [
    ['no from', { to: [TO] }, ['spec.from: required']],
    ['no to', { from: [FROM] }, ['spec.to: required']],
    ['an empty from (minItems 1)', grant({ from: [] }), ['spec.from: must not be empty']],
    ['an empty to (minItems 1)', grant({ to: [] }), ['spec.to: must not be empty']],
    ['17 from entries (maxItems 16)', grant({ from: Array.from({ length: 17 }, () => FROM) }), ['spec.from: must have at most 16 items']],
    ['17 to entries (maxItems 16)', grant({ to: Array.from({ length: 17 }, (_, i) => ({ ...TO, name: `s${i}` })) }), ['spec.to: must have at most 16 items']],
    ['a from entry without namespace', grant({ from: [{ group: FROM.group, kind: FROM.kind }] }), ['spec.from[0].namespace: required']],
    ['a from entry without group or kind', grant({ from: [{ namespace: 'shop' }] }), ['spec.from[0].group: required', 'spec.from[0].kind: required']],
    ['a to entry without kind', grant({ to: [{ group: '' }] }), ['spec.to[0].kind: required']],
    ['a to entry without group (no default: "" must be written)', grant({ to: [{ kind: 'Service' }] }), ['spec.to[0].group: required']],
    ['a from namespace in upper case', grant({ from: [{ ...FROM, namespace: 'Shop' }] }), [`spec.from[0].namespace: ${NAMESPACE}`]],
    ['an empty from namespace', grant({ from: [{ ...FROM, namespace: '' }] }), ['spec.from[0].namespace: must not be empty']],
    ['a from kind "*"', grant({ from: [{ ...FROM, kind: '*' }] }), [`spec.from[0].kind: ${KIND}`]],
    ['a to group "*"', grant({ to: [{ ...TO, group: '*' }] }), [`spec.to[0].group: ${GROUP}`]],
    ['an empty to name (minLength 1)', grant({ to: [{ ...TO, name: '' }] }), ['spec.to[0].name: must not be empty']],
    ['a to name over 253 characters', grant({ to: [{ ...TO, name: 'a'.repeat(254) }] }), ['spec.to[0].name: must be at most 253 characters']],
    ['a namespace in a to entry (a grant is for its own namespace)', grant({ to: [{ ...TO, namespace: 'store' }] }), ['spec.to[0].namespace: unknown field']],
    ['a name in a from entry', grant({ from: [{ ...FROM, name: 'reviews' }] }), ['spec.from[0].name: unknown field']],
  ];
  for (const [name, spec, problems] of REJECTED) {
    test(name, () => assert.deepEqual(validationProblems(referenceGrant(spec)), problems));
  }

  test('v1 and v1beta1 are read, v1alpha2 is not', () => {
    assertAccepted({ ...referenceGrant(grant()), apiVersion: 'gateway.networking.k8s.io/v1beta1' });
    assert.match(validationProblems({ ...referenceGrant(grant()), apiVersion: 'gateway.networking.k8s.io/v1alpha2' })[0] ?? '', /^: kind ReferenceGrant \(gateway\.networking\.k8s\.io\/v1alpha2\) is not supported; /);
  });
});

describe('ReferenceGrant: accepted', () => {
  const ACCEPTED: [string, Spec][] = [
    ['HTTPRoutes of a namespace to every Service', grant()],
    ['to one Service by name', grant({ to: [{ ...TO, name: 'reviews' }] })],
    ['several from and to entries, repeats allowed (list type atomic)', grant({ from: [FROM, FROM, { ...FROM, kind: 'GRPCRoute' }], to: [TO, TO, { group: 'core', kind: 'Service', name: 'a' }] })],
    ['kinds Weft has no use for (Gateway to Secret)', { from: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'edge' }], to: [{ group: '', kind: 'Secret' }] }],
    ['16 entries each', grant({ from: Array.from({ length: 16 }, (_, i) => ({ ...FROM, namespace: `ns-${i}` })), to: Array.from({ length: 16 }, (_, i) => ({ ...TO, name: `s${i}` })) })],
  ];
  for (const [name, spec] of ACCEPTED) {
    test(name, () => assertAccepted(referenceGrant(spec)));
  }
});

