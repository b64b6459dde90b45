// Reading sockets into one shared buffer, as net's `onread` option does, instead of a fresh Buffer
// per read pushed through the socket's Readable stream. A proxy reads twice per request; the
// allocation, the Readable bookkeeping and the 'data' event cost more than the parsing.
//
// Whoever reads this way parses each read at once and copies what must outlive the read (body
// bytes that are written on, bytes kept for later): the next read overwrites the buffer.
//
// Sockets Weft connects itself (upstream pools) use the public `onread` option of net.connect.
// Sockets a net.Server accepts, and TLS sockets (tls.connect has no onread), have no such option, so readInto() sets the same two fields net's
// Socket constructor sets for `onread` (found by their symbols' descriptions) and hands the buffer
// to the handle, as net does. Where this Node has no such fields, readInto() returns false and the
// caller reads through 'data' events as before (test/proxy/read-buffer.test.ts checks which
// applies on the Node we ship with).
import net from 'node:net';

/** The buffer every socket read this way reads into. Valid only inside the read callback. */
export const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

type ReadCallback = (nread: number, buf: Buffer) => boolean;

const fields = ((): { buffer: symbol; callback: symbol } | undefined => {
  const probe = new net.Socket();
  const syms = Object.getOwnPropertySymbols(probe);
  probe.destroy();
  const buffer = syms.find((s) => s.description === 'kBuffer');
  const callback = syms.find((s) => s.description === 'kBufferCb');
  return buffer && callback ? { buffer, callback } : undefined;
})();

interface Handle {
  useUserBuffer?(buf: Uint8Array): void;
}

/**
 * Makes an accepted socket deliver its reads to `cb` in READ_BUFFER (cb's false pauses reading, as
 * with onread). False when this Node does not allow it: read through 'data' events then.
 */
export function readInto(socket: net.Socket, cb: ReadCallback): boolean {
  const s = socket as unknown as Record<symbol, unknown> & { _handle?: Handle | null };
  const h = s._handle;
  // A TLS socket (mutual TLS between sidecars, tls/) reads the same way: its handle (node's
  // TLSWrap) is a stream like a TCP one, and hands each run of decrypted bytes to the buffer it was
  // given. Its 'data' path costs a Buffer and the Readable bookkeeping per record, as plain text did.
  if (!fields || !h || typeof h.useUserBuffer !== 'function') return false;
  const now = s[fields.buffer];
  if (now !== null && now !== READ_BUFFER) return false; // its own onread: not ours to change
  s[fields.callback] = cb;
  if (now === null) {
    s[fields.buffer] = READ_BUFFER;
    h.useUserBuffer(READ_BUFFER);
  }
  return true;
}

/**
 * Points a socket's reads, from now on, back into its Readable stream ('data' events, pipe(),
 * pause()), each read copied out of the shared buffer: for a connection handed over as a byte
 * stream (a CONNECT tunnel, an upgrade). A socket never switched by readInto() is left as it is.
 */
export function readAsStream(socket: net.Socket): void {
  const s = socket as unknown as Record<symbol, unknown>;
  if (!fields || !s[fields.buffer]) return;
  s[fields.callback] = (n: number, buf: Buffer) => socket.push(Buffer.from(buf.subarray(0, n)));
}

/** Whether readInto() can switch sockets on this Node (for the test that keeps it honest). */
export const canReadInto = fields !== undefined;
