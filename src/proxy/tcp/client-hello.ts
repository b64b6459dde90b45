// PURE: the server name a TLS client asks for, and the application protocols (ALPN) it offers,
// read from its ClientHello (Envoy's tls_inspector).
// The bytes are only looked at: whoever feeds them forwards them unchanged once this has decided.
//
// Hostile input is the rule here, not the exception: the first flight of a tunnel is whatever the
// app sends. So:
//   - the parser is incremental (each byte is looked at about once, however the flight is cut up)
//     and never throws;
//   - it keeps at most `max` bytes waiting (Envoy's 64 KiB, its TLS_MAX_CLIENT_HELLO): a hello
//     that needs more, or says it is longer, is "too large", and Envoy closes such a connection;
//   - anything that is not a well-formed ClientHello is "not TLS", which Envoy routes as a
//     connection without a server name (the default filter chain), as BoringSSL's parse errors are
//     there. Time is the caller's to bound (listener_filters_timeout).
// The record layer may cut the ClientHello into several records (a large one must be: a record
// holds at most 16 KiB); they are put back together. The server_name extension is taken as
// BoringSSL takes it: exactly one host_name, 1 to 255 bytes, no NUL; the name is lower-cased (as
// Envoy stores it), and one with bytes outside printable ASCII is treated as no name, since no
// filter chain's server_names could match it.

/** Envoy's tls_inspector reads at most this much of a ClientHello. */
export const MAX_CLIENT_HELLO = 64 * 1024;

export type HelloOutcome =
  | { kind: 'more' }
  /** A ClientHello; serverName is its SNI host_name, if it has one; alpn the protocols it offers, in its order (none: []). */
  | { kind: 'tls'; serverName: string | undefined; alpn: string[] }
  | { kind: 'not_tls'; why: string }
  | { kind: 'too_large' };

const MORE: HelloOutcome = { kind: 'more' };
const TOO_LARGE: HelloOutcome = { kind: 'too_large' };

const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const MAX_RECORD = 16_384;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;

export class ClientHelloReader {
  private buf = Buffer.alloc(0);
  private len = 0;
  /** Offset of the next record header not yet read. */
  private next = 0;
  /** Where the handshake bytes read so far lie in buf (record payloads), and how many. */
  private readonly fragments: [number, number][] = [];
  private hsLen = 0;
  /** Handshake bytes needed: the 4-byte header until it is read, then the whole message. */
  private need = 4;
  private outcome: HelloOutcome = MORE;
  private readonly max: number;

  constructor(max = MAX_CLIENT_HELLO) {
    this.max = max;
  }

  /** Every byte fed so far, unchanged: what goes upstream first. */
  get bytes(): Buffer {
    return this.buf.subarray(0, this.len);
  }

  /** Takes the next bytes of the flight; 'more' until the reader has decided, then what it decided. */
  feed(chunk: Buffer): HelloOutcome {
    this.append(chunk);
    if (this.outcome.kind !== 'more') return this.outcome;
    this.outcome = this.parse();
    if (this.outcome.kind === 'more' && this.len >= this.max) this.outcome = TOO_LARGE;
    return this.outcome;
  }

  private append(chunk: Buffer): void {
    if (this.len + chunk.length > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.len + chunk.length, Math.min(this.buf.length * 2 || 1024, this.max)));
      this.buf.copy(grown, 0, 0, this.len);
      this.buf = grown;
    }
    chunk.copy(this.buf, this.len);
    this.len += chunk.length;
  }

  private parse(): HelloOutcome {
    const b = this.buf;
    for (;;) {
      if (this.hsLen >= this.need) {
        if (this.need === 4) {
          const head = this.handshake(4);
          if (head[0] !== HANDSHAKE_CLIENT_HELLO) return notTls(`the first handshake message is of type ${head[0]}, not a ClientHello`);
          const length = head.readUIntBE(1, 3);
          if (4 + length > this.max) return TOO_LARGE;
          this.need = 4 + length;
          continue;
        }
        return parseClientHello(this.handshake(this.need).subarray(4));
      }
      // The next record: what of its header is here must already be right (garbage fails fast).
      const at = this.next;
      const have = this.len - at;
      if (have >= 1 && b[at] !== RECORD_HANDSHAKE) {
        if (at === 0 && b[0]! & 0x80) return notTls('an SSLv2-format ClientHello, which carries no server name');
        return notTls(at === 0 ? 'the first byte is not that of a TLS handshake record' : `a record of type ${b[at]} inside the ClientHello`);
      }
      if (have >= 2 && b[at + 1] !== 3) return notTls(`record major version ${b[at + 1]} is not TLS's (3)`);
      if (have < 5) return MORE;
      const length = b.readUInt16BE(at + 3);
      if (length === 0 || length > MAX_RECORD) return notTls(`a handshake record of ${length} bytes (1 to ${MAX_RECORD})`);
      if (have < 5 + length) return MORE;
      this.fragments.push([at + 5, at + 5 + length]);
      this.hsLen += length;
      this.next = at + 5 + length;
    }
  }

  /** The first n handshake bytes, from the record payloads. */
  private handshake(n: number): Buffer {
    const [first] = this.fragments;
    if (first && first[1] - first[0] >= n) return this.buf.subarray(first[0], first[0] + n);
    const out = Buffer.allocUnsafe(n);
    let o = 0;
    for (const [s, e] of this.fragments) {
      if (o >= n) break;
      o += this.buf.copy(out, o, s, Math.min(e, s + n - o));
    }
    return out;
  }
}

function notTls(why: string): HelloOutcome {
  return { kind: 'not_tls', why };
}

/** A whole ClientHello body (after its 4-byte header): its server name, or why it is no ClientHello. */
export function parseClientHello(body: Buffer): HelloOutcome {
  let p = 0;
  const has = (n: number) => p + n <= body.length;
  const bad = (what: string) => notTls(`a malformed ClientHello (${what})`);
  if (!has(2 + 32)) return bad('too short');
  p += 2 + 32; // legacy_version, random
  const sessionId = body[p++];
  if (sessionId === undefined || sessionId > 32 || !has(sessionId)) return bad('session id');
  p += sessionId;
  if (!has(2)) return bad('cipher suites');
  const suites = body.readUInt16BE(p);
  p += 2;
  if (suites < 2 || suites % 2 !== 0 || !has(suites)) return bad('cipher suites');
  p += suites;
  const compression = body[p++];
  if (compression === undefined || compression < 1 || !has(compression)) return bad('compression methods');
  p += compression;
  if (p === body.length) return { kind: 'tls', serverName: undefined, alpn: [] }; // no extensions at all
  if (!has(2)) return bad('extensions');
  const extEnd = p + 2 + body.readUInt16BE(p);
  p += 2;
  if (extEnd !== body.length) return bad('the extensions do not fill the message');
  const seen = new Set<number>();
  let serverName: string | undefined;
  let alpn: string[] = [];
  while (p < extEnd) {
    if (!has(4)) return bad('an extension header');
    const type = body.readUInt16BE(p);
    const length = body.readUInt16BE(p + 2);
    p += 4;
    if (!has(length)) return bad(`extension ${type} runs past the message`);
    if (seen.has(type)) return bad(`extension ${type} twice`);
    seen.add(type);
    if (type === EXT_SERVER_NAME) {
      const name = hostName(body.subarray(p, p + length));
      if (name === null) return bad('server_name');
      serverName = name;
    }
    if (type === EXT_ALPN) {
      const protocols = protocolNames(body.subarray(p, p + length));
      if (!protocols) return bad('application_layer_protocol_negotiation');
      alpn = protocols;
    }
    p += length;
  }
  return { kind: 'tls', serverName, alpn };
}

/**
 * The ALPN extension's ProtocolNameList (RFC 7301 3.1): a 2-byte length, then names of 1 to 255
 * bytes each, at least one; null if malformed (BoringSSL refuses such a hello). Names are bytes;
 * they are compared as latin1 strings, which keeps every byte.
 */
function protocolNames(ext: Buffer): string[] | null {
  if (ext.length < 2 || ext.readUInt16BE(0) !== ext.length - 2 || ext.length === 2) return null;
  const out: string[] = [];
  for (let p = 2; p < ext.length; ) {
    const n = ext[p]!;
    if (n === 0 || p + 1 + n > ext.length) return null;
    out.push(ext.toString('latin1', p + 1, p + 1 + n));
    p += 1 + n;
  }
  return out;
}

/** The server_name extension's host_name (undefined: a name no server name could match); null if malformed. */
function hostName(ext: Buffer): string | undefined | null {
  if (ext.length < 2 || ext.readUInt16BE(0) !== ext.length - 2) return null;
  // Exactly one entry, a host_name (type 0), as BoringSSL requires.
  if (ext.length < 2 + 3 || ext[2] !== 0) return null;
  const n = ext.readUInt16BE(3);
  if (n === 0 || n > 255 || 5 + n !== ext.length) return null;
  const name = ext.subarray(5);
  if (name.includes(0)) return null;
  for (const c of name) if (c < 0x21 || c > 0x7e) return undefined;
  return name.toString('latin1').toLowerCase();
}
