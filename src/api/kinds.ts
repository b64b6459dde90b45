// The names a user may type for a kind on the command line or in an admin URL:
// "VirtualService", "virtualservice", "virtualservices", "vs" all mean VirtualService;
// "serviceentries" (kubectl's plural) means ServiceEntry.
import { SUPPORTED_KINDS } from './validate.ts';

/** kubectl's short names for Istio kinds and ConfigMap, and the Gateway API CRD's for ReferenceGrant (its routes have none). */
const SHORT: Record<string, string> = { VirtualService: 'vs', DestinationRule: 'dr', ServiceEntry: 'se', WorkloadEntry: 'we', LocalRateLimit: 'rl', ReferenceGrant: 'refgrant', PeerAuthentication: 'pa', RequestAuthentication: 'ra', Telemetry: 'telemetry', ConfigMap: 'cm' };

export const KIND_NAMES: readonly string[] = SUPPORTED_KINDS.map((k) => k.kind);

export function resolveKind(name: string): string | undefined {
  const n = name.toLowerCase();
  return KIND_NAMES.find((k) => n === k.toLowerCase() || n === plural(k.toLowerCase()) || n === SHORT[k]);
}

/** "sidecar" -> "sidecars", "serviceentry" -> "serviceentries" */
function plural(name: string): string {
  return name.endsWith('y') ? `${name.slice(0, -1)}ies` : `${name}s`;
}
