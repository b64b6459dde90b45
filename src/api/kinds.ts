// The names a user may type for a kind on the command line or in an admin URL:
// "VirtualService", "virtualservice", "virtualservices", "vs" all mean VirtualService.
const ALIASES: Record<string, string> = {
  virtualservice: 'VirtualService',
  virtualservices: 'VirtualService',
  vs: 'VirtualService',
  destinationrule: 'DestinationRule',
  destinationrules: 'DestinationRule',
  dr: 'DestinationRule',
};

export const KIND_NAMES = ['VirtualService', 'DestinationRule'] as const;

export function resolveKind(name: string): string | undefined {
  return ALIASES[name.toLowerCase()];
}
