// ReferenceGrant (gateway.networking.k8s.io): what lets a route refer to a Service in another
// namespace. The grant lives in the Service's namespace: that namespace, not the route's, says who
// may send it traffic. referencePermitted is the one answer to "may this route use that backend?":
// `weft analyze` (WEFT0002) and the translation (control/translate/gamma.ts) both ask it, so what
// the analyzer warns of is what the mesh does.

import type { FieldError, ReferenceGrant } from './types.ts';
import { GATEWAY_GROUP } from './gateway-common.ts';

/** The route that refers: its kind ("HTTPRoute", "GRPCRoute", group gateway.networking.k8s.io) and namespace. */
export interface ReferenceFrom {
  readonly kind: string;
  readonly namespace: string;
}

/** The Service referred to (group "" and kind Service: the only backends Weft's routes have). */
export interface ServiceReference {
  readonly namespace: string;
  readonly name: string;
}

/**
 * May a route of kind `from.kind` in namespace `from.namespace` refer to the Service
 * `to.namespace`/`to.name`? Yes within one namespace; across namespaces only when a ReferenceGrant
 * in the Service's namespace has a `from` entry {group: gateway.networking.k8s.io, kind: the
 * route's kind, namespace: the route's namespace} and a `to` entry {group: "" (or "core"), kind:
 * Service, name: absent (every Service) or the Service's}. Entries combine with OR, as the Gateway
 * API says. Pure: `grants` may hold resources of other kinds, which are ignored.
 */
export function referencePermitted(grants: readonly ReferenceGrant[], from: ReferenceFrom, to: ServiceReference): boolean {
  if (from.namespace === to.namespace) return true;
  return grants.some(
    (g) =>
      g.kind === 'ReferenceGrant' &&
      g.metadata.namespace === to.namespace &&
      (g.spec.from ?? []).some((f) => f.group === GATEWAY_GROUP && f.kind === from.kind && f.namespace === from.namespace) &&
      (g.spec.to ?? []).some((t) => (t.group === '' || t.group === 'core') && t.kind === 'Service' && (t.name === undefined || t.name === to.name)),
  );
}

/** The ReferenceGrant CRD has no CEL rules: its schema (gateway-schema.ts) says all there is to check. */
export function validateReferenceGrant(): FieldError[] {
  return [];
}
