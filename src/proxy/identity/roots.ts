// The secret ROOTCA over SDS (on the ADS stream): the mesh roots the control plane pushes, which
// change while it rotates its root (docs/ca.md). Istio's agent serves Envoy the same secret:
//   { name: 'ROOTCA', validation_context: { trusted_ca: { inline_bytes: <PEM roots> } } }
// Anything else is refused (NACK) naming the field, and the roots in use stay.
import { pemCertificates } from '../../util/pem.ts';
import { ROOTCA } from '../../xds/types.ts';

const { X509Certificate } = process.getBuiltinModule('node:crypto');

/** What of the workload certificate the roots go to (WorkloadCertificates has it). */
export interface RootsHolder {
  setRoots(pem: string): void;
}

/** Takes an SDS response's secrets: undefined (ACK) or why not (NACK). No secret at all changes nothing. */
export function applyRoots(holder: RootsHolder, secrets: Record<string, any>[]): string | undefined {
  let pem: string | undefined;
  for (const s of secrets) {
    if (s.name !== ROOTCA) return `secret "${s.name ?? ''}": this sidecar takes only the secret ${ROOTCA} over SDS (its own key and certificate never travel)`;
    const ca = s.validation_context?.trusted_ca;
    const text = typeof ca?.inline_bytes === 'string' ? Buffer.from(ca.inline_bytes, 'base64').toString('utf8') : ca?.inline_bytes instanceof Uint8Array ? Buffer.from(ca.inline_bytes).toString('utf8') : ca?.inline_string;
    if (typeof text !== 'string') return `secret ${ROOTCA}: validation_context.trusted_ca must hold the roots inline (inline_bytes or inline_string)`;
    const blocks = pemCertificates(text);
    if (!blocks.length) return `secret ${ROOTCA}: validation_context.trusted_ca holds no PEM certificate`;
    for (const [i, b] of blocks.entries()) {
      let c: InstanceType<typeof X509Certificate>;
      try {
        c = new X509Certificate(b);
      } catch (e) {
        return `secret ${ROOTCA}: validation_context.trusted_ca certificate ${i + 1} cannot be read (${(e as Error).message})`;
      }
      if (!c.ca) return `secret ${ROOTCA}: validation_context.trusted_ca certificate ${i + 1} (${c.subject.replace(/\n/g, ', ')}) is not a CA certificate`;
    }
    pem = blocks.join('');
  }
  if (pem !== undefined) holder.setRoots(pem);
  return undefined;
}
