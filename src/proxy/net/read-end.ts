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
  // A flush may queue another (a write that ends an exchange): the loop takes it too.
  try {
    for (let i = 0; i < queued; i++) {
      const x = queue[i]!;
      queue[i] = undefined;
      x.flush();
    }
  } finally {
    for (let i = 0; i < queued; i++) queue[i] = undefined;
    queued = 0;
  }
}

/** Calls x.flush() when the read in progress has been handled, or at the end of this tick. */
export function flushAtReadEnd(x: Flushable): void {
  if (depth > 0) queue[queued++] = x;
  else process.nextTick(flushNow, x);
}

function flushNow(x: Flushable): void {
  x.flush();
}
