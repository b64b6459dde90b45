// GRPCRoute rules beyond the schema's shape: the CEL rules (x-kubernetes-validations) of the
// Gateway API's GRPCRoute CRD on method matches; those it shares with HTTPRoute are in
// gateway-common.ts. CEL runs after defaulting: a method match without a type is Exact.

import type { FieldError } from './types.ts';
import { field, type Obj } from './schema.ts';
import { Findings, asObj, asStr, eachObj, isSet } from './common.ts';
import { checkBackendRefs, checkFilters, checkRouteSpec, type FilterKinds } from './gateway-common.ts';

export const GRPC_FILTER_KINDS: FilterKinds = {
  fields: {
    RequestHeaderModifier: 'requestHeaderModifier',
    ResponseHeaderModifier: 'responseHeaderModifier',
    RequestMirror: 'requestMirror',
    ExtensionRef: 'extensionRef',
  },
  once: ['RequestHeaderModifier', 'ResponseHeaderModifier'],
  apart: [],
};

export function validateGRPCRoute(spec: Obj): FieldError[] {
  const f = new Findings();
  // A rule without matches has none (GRPCRoute's CRD sets no default), and matches every call.
  checkRouteSpec(f, spec, 0);
  for (const [rule, p] of eachObj(spec.rules, 'spec.rules')) {
    for (const [match, mp] of eachObj(rule.matches, field(p, 'matches'))) checkMethodMatch(f, asObj(match.method), field(mp, 'method'));
    checkFilters(f, rule.filters, field(p, 'filters'), GRPC_FILTER_KINDS);
    checkBackendRefs(f, rule.backendRefs, field(p, 'backendRefs'), GRPC_FILTER_KINDS);
  }
  return f.errors;
}

// A protobuf service's full name ("com.example.User", a leading dot allowed) and a method's name.
const SERVICE = /^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$/i;
const METHOD = /^[A-Za-z_][A-Za-z_0-9]*$/;

function checkMethodMatch(f: Findings, method: Obj | undefined, p: string): void {
  if (!method) return;
  // CEL "One or both of 'service' or 'method' must be specified" (type is always set, by default).
  if (!isSet(method.service) && !isSet(method.method)) f.report(p, 'set service, method or both');
  if ((asStr(method.type) ?? 'Exact') !== 'Exact') return;
  const service = asStr(method.service);
  const name = asStr(method.method);
  // CEL "service (method) must only contain valid characters (matching ...)", for Exact matches.
  if (service !== undefined && !SERVICE.test(service)) f.report(field(p, 'service'), 'must be a full protobuf service name such as "com.example.User": letters, digits and "_" in dot-separated parts, each not starting with a digit');
  if (name !== undefined && !METHOD.test(name)) f.report(field(p, 'method'), 'must be a protobuf method name such as "Login": letters, digits and "_", not starting with a digit');
}
