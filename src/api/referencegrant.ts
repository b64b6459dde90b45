// ReferenceGrant (gateway.networking.k8s.io): what lets a Gateway-bound route refer to a Service
// in another namespace. Weft reads it (so that config written for a cluster applies unchanged),
// but has nothing for it to govern yet: it attaches no route to a Gateway, and mesh routes (whose
// parents are Services) reach backends of any namespace without a grant (GEP-1294, as Istio does).
// support.ts says so, on the resource.
import type { FieldError } from './types.ts';

/** The ReferenceGrant CRD has no CEL rules: its schema (gateway-schema.ts) says all there is to check. */
export function validateReferenceGrant(): FieldError[] {
  return [];
}
