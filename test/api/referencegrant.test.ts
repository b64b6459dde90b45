// ReferenceGrant: the CRD's shape (its CRD has no CEL rules), each case naming the field it is
// about; and referencePermitted, the one answer `weft analyze` and the translation share to "may
// this route send traffic to that Service in another namespace?". What Weft warns about in a grant
// is in support.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkResource, referencePermitted, type ReferenceGrant } from '../../src/api/index.ts';
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

describe('referencePermitted', () => {
  const G = (name: string, namespace: string, spec: Spec) => checkResource(referenceGrant(spec, name, namespace), 'x') as ReferenceGrant;
  const GRANTS: ReferenceGrant[] = [
    G('reviews', 'store', { from: [FROM], to: [{ ...TO, name: 'reviews' }] }),
    G('grpc', 'media', { from: [{ ...FROM, kind: 'GRPCRoute' }], to: [TO] }),
    G('core', 'legacy', { from: [FROM], to: [{ group: 'core', kind: 'Service' }] }),
    G('acme', 'acme', { from: [{ ...FROM, group: 'acme.io' }], to: [TO] }),
    G('secrets', 'vault', { from: [FROM], to: [{ group: '', kind: 'Secret' }] }),
    // from and to must be in one grant: these two say nothing together.
    G('from-only', 'split', { from: [FROM], to: [{ group: '', kind: 'Secret' }] }),
    G('to-only', 'split', { from: [{ ...FROM, namespace: 'elsewhere' }], to: [TO] }),
    G('many', 'multi', { from: [{ ...FROM, namespace: 'a' }, FROM], to: [{ group: '', kind: 'ConfigMap' }, { ...TO, name: 'x' }, { ...TO, name: 'y' }] }),
  ];
  const CASES: [string, string, string, string, string, boolean][] = [
    // [why, route kind, route namespace, service namespace, service name, permitted]
    ['the same namespace needs no grant', 'HTTPRoute', 'shop', 'shop', 'reviews', true],
    ['a grant for the route kind and namespace, naming the Service', 'HTTPRoute', 'shop', 'store', 'reviews', true],
    ['... not another Service of that namespace', 'HTTPRoute', 'shop', 'store', 'ratings', false],
    ['... not another route kind', 'GRPCRoute', 'shop', 'store', 'reviews', false],
    ['... not another route namespace', 'HTTPRoute', 'other', 'store', 'reviews', false],
    ['a grant in another namespace than the Service\'s permits nothing', 'HTTPRoute', 'shop', 'shop2', 'reviews', false],
    ['a grant without a name: every Service of its namespace', 'GRPCRoute', 'shop', 'media', 'anything', true],
    ['... for its route kind only', 'HTTPRoute', 'shop', 'media', 'anything', false],
    ['the core group written "core"', 'HTTPRoute', 'shop', 'legacy', 'x', true],
    ['a from entry of another group', 'HTTPRoute', 'shop', 'acme', 'x', false],
    ['a to entry of another kind', 'HTTPRoute', 'shop', 'vault', 'x', false],
    ['from and to in two different grants', 'HTTPRoute', 'shop', 'split', 'x', false],
    ['entries combine with OR', 'HTTPRoute', 'shop', 'multi', 'y', true],
    ['... still naming the Service', 'HTTPRoute', 'shop', 'multi', 'z', false],
    ['no grants at all, another namespace', 'HTTPRoute', 'shop', 'nowhere', 'x', false],
  ];
  for (const [why, kind, namespace, toNamespace, name, permitted] of CASES) {
    test(`${why}: ${kind} ${namespace} -> Service ${toNamespace}/${name}: ${permitted ? 'permitted' : 'not permitted'}`, () => {
      assert.equal(referencePermitted(GRANTS, { kind, namespace }, { namespace: toNamespace, name }), permitted);
    });
  }

  test('resources of other kinds among the grants are ignored', () => {
    const lookalike = { ...GRANTS[1], kind: 'VirtualService' } as ReferenceGrant;
    assert.equal(referencePermitted([lookalike], { kind: 'GRPCRoute', namespace: 'shop' }, { namespace: 'media', name: 'x' }), false);
    assert.equal(referencePermitted([], { kind: 'GRPCRoute', namespace: 'shop' }, { namespace: 'shop', name: 'x' }), true);
  });
});
