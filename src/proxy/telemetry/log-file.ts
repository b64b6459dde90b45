// Where access log lines go: one writer per file path, shared by every logger that names it. The
// request path never waits for it: a line is appended to a buffer, and the buffer is written as
// Envoy writes its access logs (bootstrap file_flush_interval_msec, 1 s, and a 64 KiB buffer): once
// FLUSH_BYTES are buffered, else FLUSH_MS after the first line, by an fs write stream (libuv's
// thread pool: a slow disk or a stalled reader of /dev/stdout never blocks the event loop). A write
// per turn of the event loop, as before, cost each request some 8 us of the sidecar's CPU at 1,000
// rps (the thread pool's hop and its completion), most of what an access log cost. When a writer's backlog passes MAX_BACKLOG
// bytes, lines are dropped and counted instead. A path that cannot be opened or written is
// reported once (naming it) and its lines are counted as dropped; nothing here throws.
import type { WriteStream } from 'node:fs';

/** node:fs without an ESM import (src/proxy/sidecar.ts says why). */
const { createWriteStream, fstatSync } = process.getBuiltinModule('node:fs');

/** What a writer may hold unwritten before it drops lines. */
export const MAX_BACKLOG = 4 * 1024 * 1024;
/** Envoy's defaults: flush a file's buffer at 64 KiB, or a second after its first line. */
export const FLUSH_BYTES = 64 * 1024;
export const FLUSH_MS = 1000;

export class LogFile {
  readonly path: string;
  written = 0;
  dropped = 0;
  /** Why the file cannot be written, once it could not. */
  failed: string | undefined;
  private stream: WriteStream | NodeJS.WritableStream & { writableLength: number };
  private pending = '';
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(path: string, onError: (path: string, message: string) => void) {
    this.path = path;
    this.stream = open(path, (message) => {
      if (this.failed) return;
      this.failed = message;
      // Lines still buffered never reach the file: dropped, no longer written.
      const lines = this.pending ? this.pending.split('\n').length - 1 : 0;
      this.dropped += lines;
      this.written -= lines;
      this.pending = '';
      onError(path, message);
    });
  }

  /** Appends a line (newline included), or drops and counts it. Never blocks. */
  write(line: string): void {
    if (this.failed || this.closed || this.pending.length + this.stream.writableLength + line.length > MAX_BACKLOG) {
      this.dropped++;
      return;
    }
    this.pending += line;
    this.written++;
    if (this.pending.length >= FLUSH_BYTES) this.flush();
    else if (!this.timer) this.timer = setTimeout(() => this.flush(), FLUSH_MS).unref();
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (!this.pending || this.failed) return;
    const chunk = this.pending;
    this.pending = '';
    this.stream.write(chunk);
  }

  /** Writes what is buffered and closes the file (not standard output). */
  close(): void {
    this.closed = true;
    this.flush();
    if (this.stream !== process.stdout && this.stream !== process.stderr) this.stream.end();
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
