// Small builders for the RBAC tests: a filter from one permission and principal, and a request
// with plausible defaults that each test overrides.
import { compileHttpRbac, type CompiledRbacFilter } from '../../../src/proxy/authz/rbac-config.ts';
import { evaluateRbac } from '../../../src/proxy/authz/rbac-engine.ts';
import type { RbacRequest } from '../../../src/proxy/authz/request.ts';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export interface Req extends Partial<Mutable<RbacRequest>> {
  method?: string;
  authority?: string;
  /** Extra headers, appended after the pseudo-headers. */
  extra?: string[];
  /** :path (with query); `path: undefined` in the RbacRequest sense is left to headers. */
  uri?: string;
}

export function req(r: Req = {}): RbacRequest {
  const { method = 'GET', authority = 'httpbin.foo.svc.cluster.local', uri = '/', extra = [], ...rest } = r;
  return {
    headers: [':method', method, ':path', uri, ':authority', authority, ...extra],
    destinationIp: '10.0.0.1',
    destinationPort: 8080,
    sourceIp: '10.0.0.2',
    ...rest,
  };
}

/** An ALLOW filter with one policy "p" of one permission and one principal. */
export function allowIf(permission: unknown, principal: unknown = { any: true }): CompiledRbacFilter {
  return compileHttpRbac('t', { rules: { policies: { p: { permissions: [permission], principals: [principal] } } } });
}

/** Whether the one-policy ALLOW filter lets `r` in, i.e. whether the rule matches. */
export function matches(permission: unknown, r: Req = {}, principal: unknown = { any: true }): boolean {
  return evaluateRbac(allowIf(permission, principal), req(r)).allowed;
}

/** Whether the principal matches (with permission any). */
export function matchesId(principal: unknown, r: Req = {}): boolean {
  return matches({ any: true }, r, principal);
}
