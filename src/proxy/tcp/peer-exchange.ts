// Istio's metadata exchange over TCP (istio/proxy's envoy.filters.network.metadata_exchange, the
// istio.metadata_exchange filter Istio's pilot puts first on inbound TCP chains and on mesh
// clusters): where the mesh's mutual TLS negotiated the ALPN protocol "istio-peer-exchange", each
// side writes one frame before any byte of its own app, and takes the other's frame off the front
// of what it reads. A frame: the magic 0x3D230467 and the body's length (two 32-bit big-endian
// integers), then the body, a google.protobuf.Any of a Struct holding x-envoy-peer-metadata (the
// node's metadata, the Struct the HTTP exchange sends base64) and x-envoy-peer-metadata-id (the
// node id). Real Istio proxies read Weft's frames and Weft reads theirs.
//
// Each side writes its frame at once and waits for the peer's (bounded in size, and in time by the
// tcp_proxy's idle timeout) before the connection goes on: Weft's sidecars write theirs at once, and
// Istio's Envoy writes its own as soon as it reads anything (ours), so neither waits for the apps,
// whichever speaks first. What the peer sends is believed as over HTTP (http/peer-metadata.ts
// PeerMetadataCache: over the mesh's mutual TLS only, naming the namespace and workload its
// certificate proves) and kept on the socket (tls/peer.ts setPeerMetadata) for the TCP metrics. A
// peer whose first bytes are no frame (wrong magic) sends none: its bytes go on to the app as they
// came, as Envoy lets them. A frame over MAX_FRAME, a connection that ends mid-frame, or a wait
// past the idle timeout ends the connection: a byte that may be a frame never reaches an app.
import type net from 'node:net';
import { createHash } from 'node:crypto';
import { decode, encode } from '../../xds/protos.ts';
import { type OwnMetadata, type PeerMetadata, type PeerMetadataCache, MX_HEADER, MX_ID_HEADER, peerMetadataOfStruct } from '../http/peer-metadata.ts';
import { peerPrincipal, peerWorkload, setPeerMetadata } from '../tls/peer.ts';
import { timerMs } from '../../util/timer.ts';

export const MAGIC = 0x3d230467;
/** A frame's header: the magic and the body's length. */
export const FRAME_HEADER = 8;
const STRUCT = 'type.googleapis.com/google.protobuf.Struct';
/** A body past this is refused (a node's metadata is a few hundred bytes; Envoy's own bound is its 1 MiB buffer). */
export const MAX_FRAME = 64 * 1024;

/** This workload's frame, made once: header and Any, as Istio's filter writes it. */
export function ownFrame(own: OwnMetadata): Buffer {
  const node = decode(STRUCT, Buffer.from(own.value, 'base64'));
  const body = anyOf(STRUCT, encode(STRUCT, { [MX_HEADER]: node, [MX_ID_HEADER]: own.id }));
  const out = Buffer.alloc(FRAME_HEADER + body.length);
  out.writeUInt32BE(MAGIC, 0);
  out.writeUInt32BE(body.length, 4);
  body.copy(out, FRAME_HEADER);
  return out;
}

/** A google.protobuf.Any: type_url (field 1) and value (field 2), each length-delimited. */
function anyOf(typeUrl: string, value: Uint8Array): Buffer {
  const url = Buffer.from(typeUrl);
  return Buffer.concat([Buffer.from([0x0a]), varint(url.length), url, Buffer.from([0x12]), varint(value.length), Buffer.from(value)]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

/** The fields of an Any (type_url, value); undefined where the bytes are not one. */
function readAny(b: Buffer): { typeUrl: string; value: Buffer } | undefined {
  let at = 0;
  let typeUrl = '';
  let value: Buffer = Buffer.alloc(0);
  const next = (): number | undefined => {
    let v = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (at >= b.length) return undefined;
      const byte = b[at++]!;
      v += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return v;
    }
    return undefined;
  };
  while (at < b.length) {
    const tag = next();
    if (tag === undefined || (tag & 7) !== 2) return undefined; // Any's two fields are length-delimited
    const len = next();
    if (len === undefined || at + len > b.length) return undefined;
    const bytes = b.subarray(at, at + len);
    at += len;
    if (tag >>> 3 === 1) typeUrl = bytes.toString();
    else if (tag >>> 3 === 2) value = bytes;
  }
  return { typeUrl, value };
}

/** What a frame's body says of the peer (its node's metadata); undefined where it says nothing the metrics take. */
export function metadataOfBody(body: Buffer): PeerMetadata | undefined {
  const any = readAny(body);
  if (!any || any.typeUrl !== STRUCT) return undefined;
  let s: Record<string, unknown>;
  try {
    s = decode(STRUCT, any.value);
  } catch {
    return undefined;
  }
  const node = s[MX_HEADER];
  return node !== null && typeof node === 'object' && !Array.isArray(node) ? peerMetadataOfStruct(node as Record<string, unknown>) : undefined;
}

/** What reading the front of a connection gave: the peer's frame body (or none), and the bytes after it. */
export type FrameRead =
  | { kind: 'more' }
  | { kind: 'frame'; body: Buffer; rest: Buffer }
  /** The first bytes are no frame: all of them go on as they came. */
  | { kind: 'none'; rest: Buffer }
  | { kind: 'too_large'; size: number };

/** Reads a frame off the front of a byte stream, chunk by chunk. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  feed(chunk: Buffer): FrameRead {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    // The magic is judged as soon as its bytes are there: a peer that sends no frame is not kept waiting for eight bytes.
    for (let i = 0; i < Math.min(4, this.buf.length); i++) if (this.buf[i] !== MAGIC_BYTES[i]) return { kind: 'none', rest: this.buf };
    if (this.buf.length < FRAME_HEADER) return { kind: 'more' };
    const size = this.buf.readUInt32BE(4);
    if (size > MAX_FRAME) return { kind: 'too_large', size };
    if (this.buf.length < FRAME_HEADER + size) return { kind: 'more' };
    return { kind: 'frame', body: this.buf.subarray(FRAME_HEADER, FRAME_HEADER + size), rest: this.buf.subarray(FRAME_HEADER + size) };
  }

  /** The bytes read so far (a peer that stopped mid-frame, or the wait that ended). */
  get bytes(): Buffer {
    return this.buf;
  }
}

const MAGIC_BYTES = [(MAGIC >>> 24) & 0xff, (MAGIC >>> 16) & 0xff, (MAGIC >>> 8) & 0xff, MAGIC & 0xff];

export interface ExchangeContext {
  /** This workload's frame (ownFrame). */
  frame: Buffer;
  /** The peers' metadata taken so far (shared by every connection of the sidecar). */
  cache: PeerMetadataCache;
  log: (msg: string) => void;
}

/**
 * The exchange on a connection whose mutual TLS negotiated it: writes this workload's frame, reads
 * the peer's (believed as http/peer-metadata.ts says, and set on the socket), then calls `go` with
 * the bytes read after the frame, the socket paused. A peer that sends no frame: `go` with what it
 * sent. A frame too large, or a connection that ends first: closed, and `failed` says why. `what`
 * names the connection in log lines.
 */
export function exchangePeerMetadata(socket: net.Socket, x: ExchangeContext, what: string, timeoutMs: number, go: (rest: Buffer) => void, failed: (why: string) => void = () => {}): void {
  if (socket.destroyed) {
    // Gone before the exchange began (its client closed meanwhile): no close is coming to end it.
    queueMicrotask(() => failed('it closed before the metadata exchange'));
    return;
  }
  const reader = new FrameReader();
  let done = false;
  const finish = (): boolean => {
    if (done) return false;
    done = true;
    if (timer) clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('close', onClose);
    socket.off('error', onError);
    socket.pause();
    return true;
  };
  const fail = (why: string, log = true) => {
    if (log) x.log(`${what}: closed: ${why}`);
    socket.destroy();
    failed(why);
  };
  const onData = (chunk: Buffer) => {
    const r = reader.feed(chunk);
    if (r.kind === 'more') return;
    if (!finish()) return;
    if (r.kind === 'too_large') return fail(`its metadata exchange frame is ${r.size} bytes, over the ${MAX_FRAME} allowed`);
    if (r.kind === 'frame') {
      // The cache is keyed by the body's digest (a frame may be 64 KiB; the cache keeps 1,024).
      const body = r.body;
      const meta = x.cache.accept(createHash('sha256').update(body).digest('base64'), peerPrincipal(socket), peerWorkload(socket), () => metadataOfBody(body));
      if (meta) setPeerMetadata(socket, meta);
      (socket as WithExchanged)[EXCHANGED]!.read = FRAME_HEADER + r.body.length;
    }
    go(r.rest);
  };
  const onEnd = () => {
    if (!finish()) return;
    // An end before a whole frame: what came of it is no app's data (a peer that sends no frame sends none of its magic).
    fail(reader.bytes.length ? 'it ended in the middle of its metadata exchange frame' : 'it ended before its metadata exchange frame', reader.bytes.length > 0);
  };
  const onClose = () => finish() && fail('it closed before its metadata exchange frame', false);
  const onError = () => {}; // its close follows
  // The connection's idle timeout (0: none, as Envoy's filter waits): a peer that negotiated the
  // exchange and sends nothing is closed as an idle connection is, never let on without its frame
  // taken off (a late frame would reach the app).
  const timer = timeoutMs > 0 ? setTimeout(() => finish() && fail(`no complete metadata exchange frame within ${timeoutMs} ms (the connection's idle timeout)`), timerMs(timeoutMs)) : undefined;
  timer?.unref();
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('close', onClose);
  socket.on('error', onError);
  (socket as WithExchanged)[EXCHANGED] = { written: x.frame.length, read: 0 };
  try {
    socket.write(x.frame);
  } catch {
    // A socket that is already gone: its close ends the exchange.
  }
  socket.resume();
}

const EXCHANGED = Symbol('weft.exchangedBytes');
type WithExchanged = { [EXCHANGED]?: { written: number; read: number } };

/** The bytes written to a socket for its app, the exchange's frame not counted (as Istio's TCP metrics count them). */
export function payloadWritten(socket: net.Socket): number {
  return socket.bytesWritten - ((socket as WithExchanged)[EXCHANGED]?.written ?? 0);
}

/** The bytes read from a socket for its app, the peer's frame not counted. */
export function payloadRead(socket: net.Socket): number {
  return socket.bytesRead - ((socket as WithExchanged)[EXCHANGED]?.read ?? 0);
}

const PENDING = Symbol('weft.exchangePending');
type WithPending = { [PENDING]?: boolean };

/** A dialed connection whose exchange is still to run (the client side: tcp.ts dial), by its first user. */
export function markExchange(socket: net.Socket): void {
  (socket as WithPending)[PENDING] = true;
}

/**
 * Runs a dialed connection's pending exchange (markExchange), once: then `go` with the bytes the
 * server sent after its frame (the socket paused); `failed` where the exchange ended the
 * connection. Without one pending (or without the sidecar's exchange context), `go` at once with none.
 */
export function afterExchange(socket: net.Socket, x: ExchangeContext | undefined, what: () => string, timeoutMs: number, go: (rest: Buffer) => void, failed: (why: string) => void): void {
  if (!x || !exchangePending(socket)) return go(NOTHING);
  (socket as WithPending)[PENDING] = false;
  exchangePeerMetadata(socket, x, what(), timeoutMs, go, failed);
}

/** Whether a dialed connection's exchange is still to run (markExchange). */
export function exchangePending(socket: net.Socket): boolean {
  return (socket as WithPending)[PENDING] === true;
}

const NOTHING = Buffer.alloc(0);
