// Work held back until the socket read being processed has been handled: a response head waits
// there for the body bytes and the end that came in the same read, so that they leave in one write.
// Reads that do this (the HTTP/1.1 codecs' onRead) bracket their work with readStarted() and
// readEnded(); outside such a read, a flush waits for the end of the tick instead (process.nextTick).
// Not nextTick for every response: the tick queue costs more than the write it batches.

export interface Flushable {
  flush(): void;
}

let depth = 0;
const queue: (Flushable | undefined)[] = [];
let queued = 0;

export function readStarted(): void {
  depth++;
}

/** Flushes what was held back, once the outermost read ends. */
export function readEnded(): void {
  if (--depth > 0 || queued === 0) return;
  // Every flush runs, even after one throws (a bug): a response left unflushed would hang its
  // client. The first error goes on to the read's caller. (A flush queues nothing here: the
  // read is over, so flushAtReadEnd would use nextTick.)
  let failed: { e: unknown } | undefined;
  const n = queued;
  queued = 0;
  for (let i = 0; i < n; i++) {
    const x = queue[i]!;
    queue[i] = undefined;
    try {
      x.flush();
    } catch (e) {
      failed ??= { e };
    }
  }
  if (failed) throw failed.e;
}

/** Calls x.flush() when the read in progress has been handled, or at the end of this tick. */
export function flushAtReadEnd(x: Flushable): void {
  if (depth > 0) queue[queued++] = x;
  else process.nextTick(flushNow, x);
}

function flushNow(x: Flushable): void {
  x.flush();
}
