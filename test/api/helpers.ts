// Shared by the src/api tests: build resources and read the error a bad one gets.

import assert from 'node:assert/strict';
import { formatProblem, inspect, checkResource, ConfigError } from '../../src/api/index.ts';

export type Spec = Record<string, unknown>;

export function virtualService(spec: Spec, name = 'r'): Record<string, unknown> {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name }, spec };
}

export function destinationRule(spec: Spec, name = 'r'): Record<string, unknown> {
  return { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name }, spec };
}

export function serviceEntry(spec: Spec, name = 'r'): Record<string, unknown> {
  return { apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name }, spec };
}

export function workloadEntry(spec: Spec, name = 'r'): Record<string, unknown> {
  return { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name }, spec };
}

export function sidecar(spec: Spec, name = 'r'): Record<string, unknown> {
  return { apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name }, spec };
}

export function httpRoute(spec: Spec, name = 'r', namespace?: string): Record<string, unknown> {
  return { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name, ...(namespace ? { namespace } : {}) }, spec };
}

export function grpcRoute(spec: Spec, name = 'r', namespace?: string): Record<string, unknown> {
  return { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GRPCRoute', metadata: { name, ...(namespace ? { namespace } : {}) }, spec };
}

export function referenceGrant(spec: Spec, name = 'r', namespace?: string): Record<string, unknown> {
  return { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'ReferenceGrant', metadata: { name, ...(namespace ? { namespace } : {}) }, spec };
}

/** What validation alone says of `obj` (no support.ts refusals), a "path: message" line a problem. */
export function validationProblems(obj: unknown): string[] {
  return inspect(obj, 'request item 0', true).problems.map((p) => `${p.path}: ${p.message}`);
}

/** A VirtualService spec with one HTTP route to `reviews`, merged with `extra`. */
export function vsSpec(route: Spec = {}, extra: Spec = {}): Spec {
  return { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }], ...route }], ...extra };
}

/** The ConfigError that checkResource throws for `obj` (fails the test when it accepts it). */
export function rejection(obj: unknown, where = 'request item 0'): ConfigError {
  try {
    checkResource(obj, where);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the resource to be rejected, but it was accepted');
}

/** Assert `obj` is rejected with exactly this message. */
export function assertRejected(obj: unknown, message: string): void {
  assert.equal(rejection(obj).message, message);
}

/** Valid as Istio sees it (Weft may still refuse a field it cannot apply yet: see support.test.ts). */
export function assertAccepted(obj: unknown): void {
  const { problems } = inspect(obj, 'request item 0', true);
  if (problems.length) assert.fail(`expected the resource to be accepted, got: ${problems.map(formatProblem).join('\n')}`);
}

export function peerAuthentication(spec: Spec, name = 'r', namespace?: string): Record<string, unknown> {
  return { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name, ...(namespace ? { namespace } : {}) }, spec };
}

export function authorizationPolicy(spec: Spec, name = 'r', namespace?: string): Record<string, unknown> {
  return { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name, ...(namespace ? { namespace } : {}) }, spec };
}

export function requestAuthentication(spec: Spec, name = 'r', namespace?: string): Record<string, unknown> {
  return { apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name, ...(namespace ? { namespace } : {}) }, spec };
}

export function telemetry(spec: Spec, name = 'r', namespace?: string, apiVersion = 'telemetry.istio.io/v1'): Record<string, unknown> {
  return { apiVersion, kind: 'Telemetry', metadata: { name, ...(namespace ? { namespace } : {}) }, spec };
}
