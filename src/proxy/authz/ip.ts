// IP addresses and config.core.v3.CidrRange, as Envoy's Network::Address::CidrRange: the prefix is
// truncated to its length (10.1.2.3/8 is 10.0.0.0/8), an IPv4 range never matches an IPv6 address
// nor the reverse, and a request address the sidecar got as IPv4-mapped IPv6 (::ffff:a.b.c.d, from
// a dual-stack socket) counts as the IPv4 address, as Envoy reads such sockets.
import { fail, fields, int, str } from './fields.ts';

/** Parses `s` into `out` (one word for IPv4, four for IPv6, big-endian); returns 4, 6, or 0 if invalid. */
export function parseIp(s: string, out: Uint32Array): 0 | 4 | 6 {
  if (s.indexOf(':') < 0) {
    const v = parseV4(s, 0, s.length);
    if (v < 0) return 0;
    out[0] = v;
    return 4;
  }
  return parseV6(s, out) ? 6 : 0;
}

function parseV4(s: string, from: number, to: number): number {
  let v = 0;
  let parts = 0;
  let i = from;
  while (i < to) {
    let n = 0;
    const start = i;
    while (i < to) {
      const c = s.charCodeAt(i);
      if (c < 0x30 || c > 0x39) break;
      n = n * 10 + (c - 0x30);
      i++;
    }
    const len = i - start;
    // inet_pton's rules: 1-3 digits, no leading zero, at most 255.
    if (len === 0 || len > 3 || n > 255 || (len > 1 && s.charCodeAt(start) === 0x30)) return -1;
    v = v * 256 + n;
    parts++;
    if (i === to) break;
    if (s.charCodeAt(i) !== 0x2e || parts === 4) return -1;
    i++;
    if (i === to) return -1;
  }
  return parts === 4 ? v : -1;
}

const groups = new Uint16Array(8);

function parseV6(s: string, out: Uint32Array): boolean {
  let end = s.length;
  const zone = s.indexOf('%');
  if (zone >= 0) end = zone;
  let n = 0;
  let gap = -1;
  let i = 0;
  if (s.startsWith('::')) {
    gap = 0;
    i = 2;
  } else if (s.charCodeAt(0) === 0x3a) return false;
  while (i < end) {
    // An IPv4 tail: the rest holds a dot before any further colon.
    const colon = s.indexOf(':', i);
    const dot = s.indexOf('.', i);
    if (dot >= 0 && dot < end && (colon < 0 || colon > end || dot < colon)) {
      if (n > 6) return false;
      const v4 = parseV4(s, i, end);
      if (v4 < 0) return false;
      groups[n++] = v4 >>> 16;
      groups[n++] = v4 & 0xffff;
      i = end;
      break;
    }
    let g = 0;
    let digits = 0;
    while (i < end && digits <= 4) {
      const h = hex(s.charCodeAt(i));
      if (h < 0) break;
      g = g * 16 + h;
      digits++;
      i++;
    }
    if (digits === 0 || digits > 4 || n === 8) return false;
    groups[n++] = g;
    if (i === end) break;
    if (s.charCodeAt(i) !== 0x3a) return false;
    i++;
    if (s.charCodeAt(i) === 0x3a) {
      if (gap >= 0) return false;
      gap = n;
      i++;
    } else if (i === end) return false;
  }
  if (gap < 0 ? n !== 8 : n > 7) return false;
  // Expand the '::' gap with zero groups.
  const fill = 8 - n;
  for (let k = 0; k < 4; k++) out[k] = 0;
  for (let k = 0, at = 0; k < n; k++, at++) {
    if (k === gap) at += fill;
    const w = at >> 1;
    out[w] = at & 1 ? (out[w] | groups[k]) >>> 0 : (groups[k] << 16) >>> 0;
  }
  return true;
}

function hex(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/**
 * The parsed form of one request address, kept between calls so that a policy with dozens of
 * CIDR rules parses each address once per request, and allocates nothing.
 */
export class AddressSlot {
  raw: string | undefined = undefined;
  family: 0 | 4 | 6 = 0;
  readonly w = new Uint32Array(4);

  set(s: string | undefined): this {
    if (s === this.raw) return this;
    this.raw = s;
    if (s === undefined || s === '') {
      this.family = 0;
      return this;
    }
    this.family = parseIp(s, this.w);
    // IPv4-mapped (::ffff:a.b.c.d) counts as IPv4.
    if (this.family === 6 && this.w[0] === 0 && this.w[1] === 0 && this.w[2] === 0xffff) {
      this.w[0] = this.w[3];
      this.family = 4;
    }
    return this;
  }
}

export type CidrMatch = (a: AddressSlot) => boolean;

function mask(bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
}

export function compileCidr(where: string, c: unknown): CidrMatch {
  const f = fields(where, c, ['address_prefix', 'prefix_len']);
  const addr = str(`${where}.address_prefix`, f.address_prefix);
  const len = int(`${where}.prefix_len`, f.prefix_len, 0, true);
  if (len < 0 || len > 128) fail(`${where}.prefix_len`, 'must be between 0 and 128');
  const w = new Uint32Array(4);
  const family = parseIp(addr, w);
  if (family === 0) fail(`${where}.address_prefix`, `malformed IP address: ${JSON.stringify(addr)}`);
  if (family === 4) {
    // Envoy clamps an IPv4 length above 32 to 32.
    const m = mask(Math.min(len, 32));
    const want = (w[0] & m) >>> 0;
    return (a) => a.family === 4 && ((a.w[0] & m) >>> 0) === want;
  }
  const masks = [0, 1, 2, 3].map((k) => mask(len - 32 * k));
  const want = masks.map((m, k) => (w[k] & m) >>> 0);
  return (a) => {
    if (a.family !== 6) return false;
    for (let k = 0; k < 4; k++) if (((a.w[k] & masks[k]) >>> 0) !== want[k]) return false;
    return true;
  };
}
