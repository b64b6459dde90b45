// Loop detection for requests the sidecar sends where their own authority says (ORIGINAL_DST:
// ALLOW_ANY's passthrough, ServiceEntries with resolution NONE). Such a request names its
// destination, and a name can lead back to the sidecar itself in ways no check of the name can
// see (127.1, [::ffff:127.0.0.1], a DNS name for 127.0.0.1, ...): each hop would send it again,
// until the sidecar ran out of sockets. So, as RFC 9110 (7.6.3) has proxies do, the sidecar adds
// a Via entry of its own to what it passes through, and refuses a request that already has it.
import { randomBytes } from 'node:crypto';
import type { HeaderList } from './types.ts';

/** This sidecar's Via entry: unique per process. */
export const OWN_VIA = `1.1 weft-${randomBytes(6).toString('hex')}`;

/** Did this request pass through this very sidecar already? */
export function cameBack(headers: HeaderList): boolean {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === 'via' && headers[i + 1].includes(OWN_VIA)) return true;
  return false;
}

/** The headers with this sidecar's Via entry appended. */
export function withOwnVia(headers: HeaderList): HeaderList {
  return [...headers, 'via', OWN_VIA];
}
