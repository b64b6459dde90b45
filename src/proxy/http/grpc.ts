// PURE: what the request path needs to know about gRPC, read from the request headers.
import type { HeaderList } from './types.ts';

const GRPC_TYPE = /^application\/grpc([+;-]|$)/i;
/** Where "application/grpc" has its "g" (either case): a content-type without one there is not gRPC's. */
const G_AT = 12;

/** A gRPC request: content-type application/grpc, application/grpc+proto, application/grpc-web... */
export function isGrpc(h: HeaderList): boolean {
  for (let i = 0; i < h.length; i += 2) {
    // By length first (as edits.ts headerValue): a name that came off the wire is a string of its
    // own, and comparing it with another is a call into V8 even where the lengths differ.
    const n = h[i]!;
    if (n.length !== 12 || n !== 'content-type') continue;
    const v = h[i + 1]!;
    // Most content-types (text/html, application/json) are told apart by one character, before the expression runs.
    return (v.charCodeAt(G_AT) | 0x20) === 0x67 && GRPC_TYPE.test(v);
  }
  return false;
}

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** The deadline a gRPC client sent (grpc-timeout: up to 8 digits and a unit), in ms; undefined if none or malformed. */
export function grpcTimeoutMs(h: HeaderList): number | undefined {
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] !== 'grpc-timeout') continue;
    const m = /^(\d{1,8})([HMSmun])$/.exec(h[i + 1].trim());
    if (!m) return undefined;
    return Math.max(1, Math.ceil(Number(m[1]) * UNIT_MS[m[2]]));
  }
  return undefined;
}
