// The names a user may type for a kind on the command line or in an admin URL:
// "VirtualService", "virtualservice", "virtualservices", "vs" all mean VirtualService.
import { SUPPORTED_KINDS } from './validate.ts';

/** kubectl's short names for Istio kinds. */
const SHORT: Record<string, string> = { VirtualService: 'vs', DestinationRule: 'dr', LocalRateLimit: 'rl' };

export const KIND_NAMES: readonly string[] = SUPPORTED_KINDS.map((k) => k.kind);

export function resolveKind(name: string): string | undefined {
  const n = name.toLowerCase();
  return KIND_NAMES.find((k) => n === k.toLowerCase() || n === `${k.toLowerCase()}s` || n === SHORT[k]);
}
