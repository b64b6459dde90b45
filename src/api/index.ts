// The public surface of src/api: Istio VirtualService, DestinationRule, ServiceEntry, WorkloadEntry
// and Sidecar, Istio's PeerAuthentication, AuthorizationPolicy and RequestAuthentication, its mesh config (the ConfigMap istio-system/istio), Weft's LocalRateLimit, and the Gateway API's HTTPRoute, GRPCRoute and ReferenceGrant,
// parsed and validated; whether a ReferenceGrant lets a route use a Service in another namespace.

export * from './types.ts';
export { parseConfig } from './parse.ts';
export { checkResource, formatProblem, inspect, manifestOf, validateResource, refusalsOf, warningsOf, SUPPORTED_KINDS, type SupportedKind } from './validate.ts';
export { MESH_CONFIGMAP, type MeshConfig } from './meshconfig.ts';
export { meshConfigOf } from './meshconfig-support.ts';
export { analyze, liveMeshOf, type AnalysisMessage, type RegisteredWorkload } from './analyze.ts';
