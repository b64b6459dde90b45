// PeerAuthentication rules beyond the schema's shape: the CRD's CEL rules and Istio's
// ValidatePeerAuthentication (pkg/config/validation/validation.go). Messages are ours; the rules
// are Istio's.

import type { FieldError } from './types.ts';
import { key, type Obj } from './schema.ts';
import { Findings, asObj, checkSelectorLabels, entriesOf, isSet } from './common.ts';

export function validatePeerAuthentication(spec: Obj): FieldError[] {
  const f = new Findings();
  const matchLabels = asObj(asObj(spec.selector)?.matchLabels);
  checkSelectorLabels(f, matchLabels, 'spec.selector.matchLabels');
  // CEL "portLevelMtls requires selector" (on spec): a namespace- or mesh-wide policy has no
  // workload whose ports it could name. An empty selector is no selector.
  if (isSet(spec.portLevelMtls) && Object.keys(matchLabels ?? {}).length === 0) {
    f.report('spec', 'portLevelMtls needs a selector with matchLabels: a namespace-wide or mesh-wide policy cannot set modes per port');
  }
  // The keys are uint32 in Istio's API (a key that is not one fails to convert), and CEL
  // "port must be between 1-65535".
  for (const [k] of entriesOf(spec.portLevelMtls)) f.report(key('spec.portLevelMtls', k), checkPortKey(k));
  return f.errors;
}

function checkPortKey(k: string): string | undefined {
  if (!/^[0-9]+$/.test(k)) return `"${k}" is not a port number`;
  const n = Number(k);
  return n >= 1 && n <= 65535 ? undefined : `port ${k} must be between 1 and 65535`;
}
