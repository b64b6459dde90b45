// Counts gRPC messages in a body as it streams past, without buffering: each message is a 5-byte
// prefix (a compressed flag and a 4-byte big-endian length) and that many bytes (gRPC over HTTP/2,
// "Length-Prefixed-Message"). A message counts when its prefix is complete. PURE.

export class GrpcMessageCounter {
  count = 0;
  /** Bytes of the current prefix seen so far (0..4), or -1 inside a message's payload. */
  private prefixSeen = 0;
  private length = 0;
  /** Payload bytes of the current message still to come. */
  private remaining = 0;

  feed(chunk: Uint8Array): void {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.remaining > 0) {
        const skip = Math.min(this.remaining, n - i);
        this.remaining -= skip;
        i += skip;
        continue;
      }
      // Within a prefix: byte 0 is the flag, bytes 1..4 the length.
      if (this.prefixSeen > 0) this.length = this.length * 256 + chunk[i]!;
      this.prefixSeen++;
      i++;
      if (this.prefixSeen === 5) {
        this.count++;
        this.remaining = this.length;
        this.prefixSeen = 0;
        this.length = 0;
      }
    }
  }
}
