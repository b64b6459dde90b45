// Header fields as llhttp delivers them (in pieces, possibly split across reads), collected into a
// HeaderList, with the limits Envoy applies by default; and header blocks written back as bytes.
import type { HeaderList } from '../http/types.ts';

/** Envoy's defaults: max_request_headers_kb 60, max_headers_count 100. */
export const MAX_HEADER_BYTES = 60 * 1024;
export const MAX_HEADER_COUNT = 100;

/**
 * Fields named here never cross the proxy (RFC 9110 7.6.1): they describe one connection, not the
 * message. Host becomes the authority; Content-Length and Transfer-Encoding are framing, which the
 * proxy writes anew for the next hop; Expect is answered by the proxy itself.
 */
function hopByHop(n: string): boolean {
  // By length first: a switch over the names compares the string with each of them in turn, and
  // most names are ruled out by their length alone.
  switch (n.length) {
    case 2:
      return n === 'te';
    case 4:
      return n === 'host';
    case 6:
      return n === 'expect';
    case 7:
      return n === 'upgrade' || n === 'trailer';
    case 10:
      return n === 'connection' || n === 'keep-alive';
    case 14:
      return n === 'content-length';
    case 16:
      return n === 'proxy-connection';
    case 17:
      return n === 'transfer-encoding';
  }
  return false;
}

export class HeaderCollector {
  /** The fields so far. reset() starts a new list, so a list handed on stays as it was. */
  list: HeaderList = [];
  bytes = 0;
  private field = '';
  private value = '';
  private inValue = false;

  reset(): void {
    // A new list, not length = 0 (a slow path in V8, and the old list may have been handed on).
    if (this.list.length) this.list = [];
    this.bytes = 0;
    this.field = '';
    this.value = '';
    this.inValue = false;
  }

  /** Returns false once a limit is passed. */
  onField(s: string): boolean {
    if (this.inValue) this.flush();
    this.field = this.field ? this.field + s : s;
    this.bytes += s.length;
    return this.bytes <= MAX_HEADER_BYTES;
  }

  onValue(s: string): boolean {
    this.inValue = true;
    this.value = this.value ? this.value + s : s;
    this.bytes += s.length;
    return this.bytes <= MAX_HEADER_BYTES;
  }

  /** Ends the block; false if it holds more than MAX_HEADER_COUNT fields. */
  finish(): boolean {
    if (this.inValue || this.field) this.flush();
    return this.list.length / 2 <= MAX_HEADER_COUNT;
  }

  private flush(): void {
    this.list.push(this.field.toLowerCase(), this.value);
    this.field = '';
    this.value = '';
    this.inValue = false;
  }
}

/**
 * The fields of a head the HTTP/1.1 codecs act on (framing, Host, Expect, Upgrade, Keep-Alive),
 * found in one pass over the list: the first of each, as get() finds it; Host counted. Reused
 * from message to message.
 */
export class FramingFields {
  hosts = 0;
  host: string | undefined;
  contentLength: string | undefined;
  transferEncoding: string | undefined;
  expect: string | undefined;
  upgrade: string | undefined;
  keepAlive: string | undefined;

  scan(h: HeaderList): void {
    this.hosts = 0;
    this.host = this.contentLength = this.transferEncoding = this.expect = this.upgrade = this.keepAlive = undefined;
    for (let i = 0; i < h.length; i += 2) {
      const n = h[i];
      // By length first: most fields are none of these, and most lengths rule them out.
      switch (n.length) {
        case 4:
          if (n === 'host') {
            if (this.hosts++ === 0) this.host = h[i + 1];
          }
          break;
        case 6:
          if (n === 'expect' && this.expect === undefined) this.expect = h[i + 1];
          break;
        case 7:
          if (n === 'upgrade' && this.upgrade === undefined) this.upgrade = h[i + 1];
          break;
        case 10:
          if (n === 'keep-alive' && this.keepAlive === undefined) this.keepAlive = h[i + 1];
          break;
        case 14:
          if (n === 'content-length' && this.contentLength === undefined) this.contentLength = h[i + 1];
          break;
        case 17:
          if (n === 'transfer-encoding' && this.transferEncoding === undefined) this.transferEncoding = h[i + 1];
          break;
      }
    }
  }
}

/**
 * A string of its own: header text is a substring of the whole read's text (llhttp.ts), which it
 * keeps alive; a value kept past its request (a connection's last Host) is copied first.
 */
export function ownString(s: string): string {
  return Buffer.from(s, 'latin1').toString('latin1');
}

export function get(h: HeaderList, name: string): string | undefined {
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
  return undefined;
}

/** The end-to-end fields of a block: without hop-by-hop ones and those the Connection field names. */
export function endToEnd(h: HeaderList, keep?: string): HeaderList {
  let named: Set<string> | undefined;
  for (let i = 0; i < h.length; i += 2) {
    const n = h[i];
    if (n.length !== 10 || n !== 'connection') continue;
    const v = h[i + 1];
    // Most often a single token (keep-alive, close): no list to split.
    if (v.indexOf(',') < 0) named = connectionOption(v, keep, named);
    else for (const t of v.split(',')) named = connectionOption(t, keep, named);
  }
  const out: HeaderList = [];
  for (let i = 0; i < h.length; i += 2) {
    const n = h[i];
    if ((hopByHop(n) && n !== keep) || named?.has(n)) continue;
    out.push(n, h[i + 1]);
  }
  return out;
}

/** Adds a Connection option naming a field to drop (not close or keep-alive, which name none). */
function connectionOption(t: string, keep: string | undefined, named: Set<string> | undefined): Set<string> | undefined {
  const n = t.trim().toLowerCase();
  if (n && n !== 'close' && n !== 'keep-alive' && n !== keep) (named ??= new Set()).add(n);
  return named;
}

/**
 * The fields an HTTP/1.1 request carries upstream: no HTTP/2 pseudo-header, and no TE (an HTTP/2
 * client's "te: trailers" is hop-by-hop, and HTTP/1.1 trailers need no asking).
 */
export function forHttp1(h: HeaderList): HeaderList {
  let clean = true;
  for (let i = 0; i < h.length; i += 2) if (notForHttp1(h[i])) clean = false;
  if (clean) return h;
  const out: HeaderList = [];
  for (let i = 0; i < h.length; i += 2) if (!notForHttp1(h[i])) out.push(h[i], h[i + 1]);
  return out;
}

function notForHttp1(n: string): boolean {
  return n.charCodeAt(0) === 58 || (n.length === 2 && n === 'te');
}

/**
 * A message head as bytes: its first line (with its CRLF), "name: value" lines for the fields,
 * the lines the codec adds (framing, each with its CRLF), and the blank line. Written piece by
 * piece into one Buffer: no string is built (concatenating makes a tree of string pieces per head,
 * which the write then flattens, and the garbage collector then sweeps).
 */
export function headBytes(first: string, h: HeaderList, tail: string): Buffer {
  let n = first.length + tail.length + 2;
  for (let i = 0; i < h.length; i += 2) n += h[i].length + h[i + 1].length + 4;
  const b = Buffer.allocUnsafe(n);
  let at = put(b, first, 0);
  for (let i = 0; i < h.length; i += 2) {
    at = put(b, h[i], at);
    b[at++] = 58; // ':'
    b[at++] = 32;
    at = put(b, h[i + 1], at);
    b[at++] = 13;
    b[at++] = 10;
  }
  at = put(b, tail, at);
  b[at++] = 13;
  b[at] = 10;
  return b;
}

/**
 * Writes s as latin1 (each character's low byte, as Buffer's 'latin1' does) at `at`; returns where
 * it ended. Short strings byte by byte: a call into C++ costs more than copying them.
 */
function put(b: Buffer, s: string, at: number): number {
  const n = s.length;
  if (n > 32) return at + b.write(s, at, 'latin1');
  for (let i = 0; i < n; i++) b[at + i] = s.charCodeAt(i);
  return at + n;
}

/** "name: value\r\n" for each field. */
export function serialize(h: HeaderList): string {
  let s = '';
  for (let i = 0; i < h.length; i += 2) s += `${h[i]}: ${h[i + 1]}\r\n`;
  return s;
}

/** The last-chunk and trailer section of a chunked body. */
export function lastChunk(trailers: HeaderList | undefined): string {
  return trailers && trailers.length ? `0\r\n${serialize(trailers)}\r\n` : '0\r\n\r\n';
}

const CRLF = Buffer.from('\r\n');
/** Writes one chunk of a chunked body (the caller corks). */
export function writeChunk(sock: { write(b: Buffer | string, enc?: BufferEncoding): boolean }, chunk: Buffer): boolean {
  sock.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
  sock.write(chunk);
  return sock.write(CRLF);
}

/** Messages up to this size leave as one Buffer (one plain write); larger ones through writev. */
const ASSEMBLE_MAX = 16 * 1024;

/**
 * Writes the pieces of a message (a head as a latin1 string, body bytes) in one system call: small
 * ones copied into one Buffer and written plainly (no cork, no writev, no per-piece bookkeeping in
 * the stream), larger ones corked into one writev. Returns what the last write returned.
 */
export function writeMessage(sock: import('node:net').Socket, parts: (string | Buffer)[]): boolean {
  if (parts.length === 1) {
    const p = parts[0];
    return typeof p === 'string' ? sock.write(p, 'latin1') : sock.write(p);
  }
  let total = 0;
  for (const p of parts) total += p.length;
  if (total <= ASSEMBLE_MAX) {
    const buf = Buffer.allocUnsafe(total);
    let at = 0;
    for (const p of parts) at += typeof p === 'string' ? buf.write(p, at, 'latin1') : p.copy(buf, at);
    return sock.write(buf);
  }
  sock.cork();
  let ok = true;
  for (const p of parts) ok = typeof p === 'string' ? sock.write(p, 'latin1') : sock.write(p);
  sock.uncork();
  return ok;
}

/**
 * Holds a socket's writes until the current callback returns, so that a head, a small body and
 * its end leave in one writev: a system call per write is most of a proxy's cost.
 */
export function corkForThisTick(s: import('node:net').Socket): void {
  if (s.writableCorked) return;
  s.cork();
  process.nextTick(uncork, s);
}

function uncork(s: import('node:net').Socket): void {
  s.uncork();
}

