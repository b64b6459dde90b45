// PEM certificate blocks: a bundle (several roots, a chain) split into its certificates. No
// imports, so that the sidecar and the control plane both may use it.

const BLOCK = /-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+?-----END CERTIFICATE-----/g;

/** Each CERTIFICATE block of `text`, in order, as PEM ending in a newline; anything between is ignored. */
export function pemCertificates(text: string): string[] {
  return (text.match(BLOCK) ?? []).map((b) => `${b.replace(/\r\n/g, '\n')}\n`);
}
