// Where access log lines go: one writer per file path, shared by every logger that names it. The
// request path never waits for it: a line is copied into a buffer outside the JS heap, and the
// buffer is written as Envoy writes its access logs (bootstrap file_flush_interval_msec, 1 s, and a
// 64 KiB buffer): once FLUSH_BYTES are buffered, else FLUSH_MS after the first line, by an fs write
// stream (libuv's thread pool: a slow disk or a stalled reader of /dev/stdout never blocks the event
// loop). A text format's plain-ASCII line is written into the buffer as bytes (format.ts
// writeText), not made a string; other lines are copied at once, not kept as strings until the
// flush: strings kept for up to a second outlived the young generation's collections (1 MB
// semi-spaces), were copied by each and then promoted, and that garbage collection was most of
// what an access log cost a request. Operators must not write to the log they are rendered for
// (a line being written sits past what the buffer holds). When a writer's backlog passes
// MAX_BACKLOG bytes, lines are dropped and counted instead. A path that
// cannot be opened or written is reported once (naming it) and its lines are counted as dropped;
// nothing here throws.
import type { WriteStream } from 'node:fs';
import { type FormatParts, type LogEntry, NO_ROOM, renderText, writeText } from './format.ts';

/** node:fs without an ESM import (src/proxy/sidecar.ts says why). */
const { createWriteStream, fstatSync } = process.getBuiltinModule('node:fs');

/** What a writer may hold unwritten before it drops lines. */
export const MAX_BACKLOG = 4 * 1024 * 1024;
/** Envoy's defaults: flush a file's buffer at 64 KiB, or a second after its first line. */
export const FLUSH_BYTES = 64 * 1024;
export const FLUSH_MS = 1000;
/** Buffers kept for reuse once the stream has written them. */
const SPARE_BUFFERS = 2;

export class LogFile {
  readonly path: string;
  written = 0;
  dropped = 0;
  /** Why the file cannot be written, once it could not. */
  failed: string | undefined;
  private stream: WriteStream | NodeJS.WritableStream & { writableLength: number };
  /** The lines not yet handed to the stream: `used` bytes of `buf`, `lines` of them. */
  private buf: Buffer = Buffer.allocUnsafeSlow(FLUSH_BYTES);
  /**
   * Buffers the stream has written, taken again at the next flush rather than a new one. A new
   * 64 KiB buffer at each flush (six a second at 1,000 requests a second) lived until the next
   * flush, long enough to be promoted, and V8 counts the memory behind promoted buffers against
   * its limits until a full collection frees it: that started a full collection every 25 s, where
   * with the log off there was none in minutes (2026-12-08).
   */
  private readonly spare: Buffer[] = [];
  private used = 0;
  private lines = 0;
  /** Changes whenever what the buffer holds is handed over (format.ts writeText copies from earlier lines while it stays). */
  private epoch = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(path: string, onError: (path: string, message: string) => void) {
    this.path = path;
    this.stream = open(path, (message) => {
      if (this.failed) return;
      this.failed = message;
      // Lines still buffered never reach the file: dropped, no longer written.
      this.dropped += this.lines;
      this.written -= this.lines;
      this.used = 0;
      this.epoch++;
      this.lines = 0;
      onError(path, message);
    });
  }

  /**
   * Appends a text format's line for `e`, written straight into the buffer (format.ts writeText),
   * or drops and counts it. Never blocks.
   */
  writeText(parts: FormatParts, e: LogEntry): void {
    if (this.failed || this.closed) {
      this.dropped++;
      return;
    }
    // A format whose own text is not plain ASCII, or whose writer cannot be made: writeText says NOT_ASCII at once, having written nothing.
    let end = writeText(parts, e, this.buf, this.used, this.epoch);
    if (end === NO_ROOM && this.used > 0) {
      this.flush();
      end = writeText(parts, e, this.buf, 0, this.epoch);
    }
    // A line longer than the buffer, or not plain ASCII, goes as a string.
    if (end < 0) return this.write(renderText(parts, e));
    if (this.used + this.stream.writableLength + (end - this.used) > MAX_BACKLOG) {
      this.dropped++;
      return;
    }
    this.used = end;
    this.added();
  }

  /** Appends a line (newline included), or drops and counts it. Never blocks. */
  write(line: string): void {
    if (this.failed || this.closed) {
      this.dropped++;
      return;
    }
    // UTF-8 takes at most 3 bytes per UTF-16 unit: the exact length only where that bound does not fit.
    let room = this.buf.length - this.used;
    const bytes = line.length * 3 <= room ? -1 : Buffer.byteLength(line);
    if (this.used + this.stream.writableLength + (bytes < 0 ? line.length : bytes) > MAX_BACKLOG) {
      this.dropped++;
      return;
    }
    if (bytes > room) {
      this.flush();
      room = this.buf.length;
      if (bytes > room) {
        // A line longer than the buffer goes on its own.
        this.written++;
        this.stream.write(Buffer.from(line));
        return;
      }
    }
    this.used += this.buf.write(line, this.used);
    this.added();
  }

  /** A line is in the buffer. Flushed at 64 KiB, or when what is left would not hold a typical line. */
  private added(): void {
    this.written++;
    this.lines++;
    if (this.used >= FLUSH_BYTES - 512) this.flush();
    else if (!this.timer) this.timer = setTimeout(() => this.flush(), FLUSH_MS).unref();
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (!this.used || this.failed) return;
    // The stream keeps the chunk until it is written. A buffer less than half full (the timer's
    // flush of a quiet second) is copied out at its size and the buffer kept, so that a stalled
    // file holds what its backlog counts, not 64 KiB per flush (review defect); a fuller one is
    // handed over whole and the next lines go to a spare one (a new one only where none is free).
    let chunk: Buffer;
    let written: (() => void) | undefined;
    if (this.used < this.buf.length / 2) chunk = Buffer.from(this.buf.subarray(0, this.used));
    else {
      const whole = this.buf;
      chunk = whole.subarray(0, this.used);
      this.buf = this.spare.pop() ?? Buffer.allocUnsafeSlow(FLUSH_BYTES);
      // Once written (or failed: the stream holds it no longer), it is free for a later flush.
      written = () => {
        if (this.spare.length < SPARE_BUFFERS) this.spare.push(whole);
      };
    }
    this.used = 0;
    this.lines = 0;
    this.epoch++;
    this.stream.write(chunk, written);
  }

  /** Writes what is buffered and closes the file (not standard output); resolves once it is written. */
  close(): Promise<void> {
    this.closed = true;
    this.flush();
    if (this.stream === process.stdout || this.stream === process.stderr) return Promise.resolve();
    const s = this.stream as NodeJS.WritableStream & { destroyed?: boolean; closed?: boolean };
    // A stream that failed is closed already: no 'close' would come.
    if (s.destroyed || s.closed) return Promise.resolve();
    return new Promise((resolve) => {
      s.once('close', () => resolve());
      s.once('error', () => resolve());
      s.end();
    });
  }
}
/**
 * The write stream of a path: an fs write stream (libuv's thread pool), /dev/stdout and /dev/stderr
 * too, opened anew (process.stdout writes synchronously to a pipe or file on Linux). Where the
 * process's standard output is a socket (a parent that spawned it with a socket pair), it cannot be
 * opened by name: the process's own stream is used, whose writes to a socket are asynchronous.
 */
function open(path: string, onError: (message: string) => void): WriteStream | NodeJS.WritableStream & { writableLength: number } {
  const std = path === '/dev/stdout' ? process.stdout : path === '/dev/stderr' ? process.stderr : undefined;
  if (std && isSocket(path === '/dev/stdout' ? 1 : 2)) return std;
  let s: WriteStream;
  try {
    s = createWriteStream(path, { flags: 'a' });
  } catch (e) {
    queueMicrotask(() => onError((e as Error).message));
    return process.stderr;
  }
  s.on('error', (e: NodeJS.ErrnoException) => onError(`${e.code ?? 'error'}: ${e.message}`));
  return s;
}

function isSocket(fd: number): boolean {
  try {
    return fstatSync(fd).isSocket();
  } catch {
    return false;
  }
}
