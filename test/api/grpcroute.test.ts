// GRPCRoute validation: the CRD's shape and its CEL rules, each case naming the field it is about.
// The rules GRPCRoute shares with HTTPRoute (gateway-common.ts) are tested at length in
// httproute.test.ts; here each gets a case to show GRPCRoute has it too.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertAccepted, grpcRoute, validationProblems, type Spec } from './helpers.ts';

const PARENT = { group: '', kind: 'Service', name: 'users', port: 50051 };
const BACKEND = { name: 'users-v1', port: 50051 };
const route = (rule: Spec = {}, extra: Spec = {}): Spec => ({ parentRefs: [PARENT], rules: [{ backendRefs: [BACKEND], ...rule }], ...extra });
const R0 = 'spec.rules[0]';
const method = (m: Spec): Spec => ({ matches: [{ method: m }] });
const rhm = (mod: Spec): Spec => ({ type: 'RequestHeaderModifier', requestHeaderModifier: mod });

const SERVICE = 'must be a full protobuf service name such as "com.example.User": letters, digits and "_" in dot-separated parts, each not starting with a digit';
const METHOD = 'must be a protobuf method name such as "Login": letters, digits and "_", not starting with a digit';

const REJECTED: [string, Spec, string[]][] = [
  // ---- CEL: method matches ----
  ['a method match with neither service nor method', route(method({})), [`${R0}.matches[0].method: set service, method or both`]],
  ['an Exact method match with neither service nor method', route(method({ type: 'Exact' })), [`${R0}.matches[0].method: set service, method or both`]],
  ['a RegularExpression method match with neither', route(method({ type: 'RegularExpression' })), [`${R0}.matches[0].method: set service, method or both`]],
  ['a regex in service and method without type (Exact by default)', route(method({ service: 'foo.ba+r', method: 'Log*' })), [`${R0}.matches[0].method.service: ${SERVICE}`, `${R0}.matches[0].method.method: ${METHOD}`]],
  ['an Exact service with "/"', route(method({ type: 'Exact', service: 'com.example/User' })), [`${R0}.matches[0].method.service: ${SERVICE}`]],
  ['an Exact service part starting with a digit', route(method({ service: 'com.1example' })), [`${R0}.matches[0].method.service: ${SERVICE}`]],
  ['an Exact method with "()"', route(method({ method: 'Login()' })), [`${R0}.matches[0].method.method: ${METHOD}`]],
  ['an empty Exact service', route(method({ service: '', method: 'Login' })), [`${R0}.matches[0].method.service: ${SERVICE}`]],
  // ---- shape ----
  ['a method match type Prefix', route(method({ type: 'Prefix', service: 'a' })), [`${R0}.matches[0].method.type: must be one of Exact, RegularExpression (got "Prefix")`]],
  ['a service name over 1024 characters', route(method({ service: 'a'.repeat(1025) })), [`${R0}.matches[0].method.service: must be at most 1024 characters`]],
  ['an HTTPRoute filter type', route({ filters: [{ type: 'URLRewrite', urlRewrite: {} }] }), [`${R0}.filters[0].type: must be one of ResponseHeaderModifier, RequestHeaderModifier, RequestMirror, ExtensionRef (got "URLRewrite")`, `${R0}.filters[0].urlRewrite: unknown field`]],
  ['timeouts (HTTPRoute only)', route({ timeouts: { request: '1s' } }), [`${R0}.timeouts: unknown field`]],
  ['the same header matched twice', route({ matches: [{ headers: [{ name: 'env', value: 'a' }, { name: 'env', value: 'b' }] }] }), [`${R0}.matches[0].headers[1]: duplicate name "env" (already at ${R0}.matches[0].headers[0])`]],
  ['a hostname with a port', route({}, { hostnames: ['example.com:50051'] }), ['spec.hostnames[0]: must be a lower-case DNS name, optionally starting with "*." (e.g. "example.com", "*.example.com")']],
  ['17 rules', { rules: Array.from({ length: 17 }, () => ({ backendRefs: [BACKEND] })) }, ['spec.rules: must have at most 16 items']],
  // ---- CEL shared with HTTPRoute ----
  ['a RequestHeaderModifier filter without its field', route({ filters: [{ type: 'RequestHeaderModifier' }] }), [`${R0}.filters[0].requestHeaderModifier: required when type is RequestHeaderModifier`]],
  [
    'a RequestMirror filter with a header modifier',
    route({ filters: [{ type: 'RequestMirror', requestHeaderModifier: { remove: ['a'] } }] }),
    [`${R0}.filters[0].requestHeaderModifier: must not be set when type is RequestMirror`, `${R0}.filters[0].requestMirror: required when type is RequestMirror`],
  ],
  [
    'two RequestHeaderModifier and two ResponseHeaderModifier filters',
    route({
      filters: [
        rhm({ remove: ['a'] }),
        rhm({ remove: ['b'] }),
        { type: 'ResponseHeaderModifier', responseHeaderModifier: { remove: ['a'] } },
        { type: 'ResponseHeaderModifier', responseHeaderModifier: { remove: ['b'] } },
      ],
    }),
    [`${R0}.filters[1]: only one RequestHeaderModifier filter is allowed here; the first is ${R0}.filters[0]`, `${R0}.filters[3]: only one ResponseHeaderModifier filter is allowed here; the first is ${R0}.filters[2]`],
  ],
  ['a header set and removed', route({ filters: [rhm({ set: [{ name: 'grpc-x', value: '1' }], remove: ['GRPC-X'] })] }), [`${R0}.filters[0].requestHeaderModifier.remove[0]: header "GRPC-X" is already modified at ${R0}.filters[0].requestHeaderModifier.set[0]: a modifier acts on a header once (names are case-insensitive)`]],
  ['a mirror with percent and fraction', route({ filters: [{ type: 'RequestMirror', requestMirror: { backendRef: BACKEND, percent: 1, fraction: { numerator: 1 } } }] }), [`${R0}.filters[0].requestMirror: only one of percent or fraction may be set`]],
  ['a backendRef without port', route({ backendRefs: [{ name: 'users-v1' }] }), [`${R0}.backendRefs[0].port: required for a Service backend (group "" and kind Service, the defaults)`]],
  ['one Service port twice', { parentRefs: [PARENT, PARENT] }, ['spec.parentRefs[1]: duplicates spec.parentRefs[0]: references to one parent must differ in sectionName or port']],
  ['two rules named alike', { rules: [{ name: 'a', backendRefs: [BACKEND] }, { name: 'a', backendRefs: [BACKEND] }] }, ['spec.rules[1].name: duplicate rule name "a" (already at spec.rules[0].name)']],
  [
    '129 matches in all',
    { rules: [0, 1, 2].map((r) => ({ matches: Array.from({ length: 43 }, (_, i) => ({ method: { service: `s${r}`, method: `m${i}` } })), backendRefs: [BACKEND] })) },
    ['spec.rules: the rules have 129 matches in all; at most 128 are allowed'],
  ],
  ['session persistence without cookie', route({ sessionPersistence: { type: 'Cookie' } }), [`${R0}.sessionPersistence.cookie: required when type is Cookie`]],
];

describe('GRPCRoute: rejected, naming the field', () => {
  for (const [name, spec, problems] of REJECTED) {
    test(name, () => assert.deepEqual(validationProblems(grpcRoute(spec)), problems));
  }

  test('only v1 is read', () => {
    assert.match(validationProblems({ ...grpcRoute(route()), apiVersion: 'gateway.networking.k8s.io/v1beta1' })[0] ?? '', /^: kind GRPCRoute \(gateway\.networking\.k8s\.io\/v1beta1\) is not supported; /);
  });
});

describe('GRPCRoute: accepted', () => {
  const ACCEPTED: [string, Spec][] = [
    ['a mesh route to a Service', route()],
    ['no rules', { parentRefs: [PARENT] }],
    ['an empty list of rules (GRPCRoute has no default and no minimum)', { parentRefs: [PARENT], rules: [] }],
    ['service and method', route(method({ service: 'com.example.User', method: 'Login' }))],
    ['a service only, with a leading dot and "_"', route(method({ type: 'Exact', service: '.grpc.reflection.v1_alpha.ServerReflection' }))],
    ['a method only', route(method({ method: 'Login' }))],
    ['upper-case service names ((?i) in the CRD)', route(method({ service: 'Com.Example.USER' }))],
    ['regular expressions in service and method', route(method({ type: 'RegularExpression', service: 'foo\\.ba+r', method: 'Log.*' }))],
    ['an empty RegularExpression service with a method', route(method({ type: 'RegularExpression', service: '', method: 'Login' }))],
    ['headers and a method in one match', route({ matches: [{ headers: [{ type: 'Exact', name: 'magic', value: 'foo' }], method: { service: 'com.example.Things', method: 'DoThing' } }] })],
    ['a rule without matches', route({ matches: [] })],
    [
      'every filter, RequestMirror and ExtensionRef repeated',
      route({
        filters: [
          rhm({ add: [{ name: 'my-header', value: 'foo' }] }),
          { type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'my-header', value: 'bar' }] } },
          { type: 'RequestMirror', requestMirror: { backendRef: { name: 'shadow', port: 50051 }, percent: 10 } },
          { type: 'RequestMirror', requestMirror: { backendRef: { name: 'shadow2', port: 50051 } } },
          { type: 'ExtensionRef', extensionRef: { group: 'acme.io', kind: 'Auth', name: 'a' } },
          { type: 'ExtensionRef', extensionRef: { group: 'acme.io', kind: 'Auth', name: 'a' } },
        ],
      }),
    ],
    ['weights', route({ backendRefs: [{ ...BACKEND, weight: 90 }, { name: 'users-v2', port: 50051, weight: 10 }] })],
    ['hostnames', route({}, { hostnames: ['foo.example.com', '*.example.com'] })],
    ['session persistence by header', route({ sessionPersistence: { type: 'Header', header: { name: 'x-session' } } })],
    ['128 matches in all, in 16 rules', { rules: Array.from({ length: 16 }, (_, r) => ({ matches: Array.from({ length: 8 }, (__, i) => ({ method: { service: `s${r}`, method: `m${i}` } })), backendRefs: [BACKEND] })) }],
  ];
  for (const [name, spec] of ACCEPTED) {
    test(name, () => assertAccepted(grpcRoute(spec)));
  }
});
