// A raw HTTP/2 client for hostile-input tests: frames written by hand (HPACK literals without
// Huffman or indexing), frames read back as type/flags/stream/payload, no flow control of its own.
import net from 'node:net';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
export const T = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const F = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 } as const;

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

function hpackInt(n: number, prefixBits: number, first: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (n < max) return Buffer.from([first | n]);
  const out = [first | max];
  n -= max;
  while (n >= 128) {
    out.push((n % 128) + 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** A header block of literal fields (never indexed, no Huffman). */
export function headerBlock(fields: [string, string][]): Buffer {
  const parts: Buffer[] = [];
  for (const [n, v] of fields) {
    parts.push(Buffer.from([0x00]), hpackInt(Buffer.byteLength(n), 7, 0), Buffer.from(n), hpackInt(Buffer.byteLength(v), 7, 0), Buffer.from(v));
  }
  return Buffer.concat(parts);
}

/** HEADERS (+ CONTINUATION frames past 16 KiB) for one request. */
export function request(stream: number, fields: [string, string][], endStream: boolean): Buffer {
  const block = headerBlock(fields);
  const out: Buffer[] = [];
  for (let off = 0; off === 0 || off < block.length; off += 16384) {
    const part = block.subarray(off, off + 16384);
    const last = off + 16384 >= block.length;
    out.push(frame(off === 0 ? T.HEADERS : T.CONTINUATION, (last ? F.END_HEADERS : 0) | (off === 0 && endStream ? F.END_STREAM : 0), stream, part));
  }
  return Buffer.concat(out);
}

export function rst(stream: number, code = 8): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code);
  return frame(T.RST_STREAM, 0, stream, p);
}

export interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

/** A raw connection: the preface and an empty SETTINGS are sent; frames received are collected. */
export class RawH2 {
  readonly socket: net.Socket;
  readonly frames: Frame[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];

  constructor(port: number, opts: { read?: boolean } = {}) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('error', () => {});
    this.socket.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0)]));
    if (opts.read === false) this.socket.pause();
    this.socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 9) {
        const len = this.buf.readUIntBE(0, 3);
        if (this.buf.length < 9 + len) break;
        const f = { type: this.buf[3], flags: this.buf[4], stream: this.buf.readUInt32BE(5) & 0x7fffffff, payload: this.buf.subarray(9, 9 + len) };
        this.buf = this.buf.subarray(9 + len);
        if (f.type === T.SETTINGS && !(f.flags & F.ACK)) this.socket.write(frame(T.SETTINGS, F.ACK, 0));
        this.frames.push(f);
      }
      this.wake();
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  write(b: Buffer): Promise<void> {
    return new Promise((resolve) => this.socket.write(b, () => resolve()));
  }

  /** Resolves once `pred` holds over the frames received (or the connection closed). */
  async until(pred: (frames: Frame[]) => boolean): Promise<void> {
    while (!pred(this.frames) && !this.closed) await new Promise<void>((r) => this.waiters.push(r));
  }

  destroy(): void {
    this.socket.destroy();
  }
}
