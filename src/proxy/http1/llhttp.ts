// llhttp, the HTTP/1.1 parser of Node and undici, compiled to WebAssembly (vendored from the
// pinned undici package by scripts/vendor-llhttp.ts). It is the sidecar's only HTTP/1.1 parser:
// it decides every message boundary, at exact byte offsets, on both sides of the proxy, so that
// the sidecar and the app behind it never disagree on where a request ends (request smuggling).
//
// One WebAssembly instance serves every parser of the process. Its callbacks fire synchronously
// inside execute(), so a module-level "current parser" is enough to route them.
// Not an ESM import, which runs the module's lazy getters (see src/proxy/sidecar.ts).
const fs = process.getBuiltinModule('node:fs');

export const TYPE_REQUEST = 1;
export const TYPE_RESPONSE = 2;

export const OK = 0;
export const PAUSED = 21;
export const PAUSED_UPGRADE = 22;

/** What a callback returns from onHeadersComplete. */
export const HC_CONTINUE = 0;
/** The message has no body whatever its headers say (a response to HEAD or CONNECT). */
export const HC_SKIP_BODY = 1;

interface LlhttpExports {
  memory: WebAssembly.Memory;
  _initialize(): void;
  llhttp_alloc(type: number): number;
  llhttp_free(p: number): void;
  malloc(n: number): number;
  free(p: number): void;
  llhttp_execute(p: number, data: number, len: number): number;
  llhttp_resume(p: number): void;
  llhttp_resume_after_upgrade(p: number): void;
  llhttp_reset(p: number): void;
  llhttp_finish(p: number): number;
  llhttp_get_error_pos(p: number): number;
  llhttp_get_error_reason(p: number): number;
  llhttp_errno_name(errno: number): number;
  llhttp_get_method(p: number): number;
  llhttp_method_name(m: number): number;
  llhttp_get_http_major(p: number): number;
  llhttp_get_http_minor(p: number): number;
  llhttp_get_status_code(p: number): number;
  llhttp_should_keep_alive(p: number): number;
  llhttp_message_needs_eof(p: number): number;
}

/**
 * The events of one parser. Each returns 0 to go on, or PAUSED to stop execute() there. The URL and
 * header pieces come as latin1 strings, made straight from the input (no Buffer per piece); a
 * piece may be one part of a field split across reads.
 */
export interface ParserEvents {
  onMessageBegin(): number;
  onUrl(s: string): number;
  onStatus(): number;
  onHeaderField(s: string): number;
  onHeaderValue(s: string): number;
  onHeadersComplete(statusCode: number, upgrade: boolean, keepAlive: boolean): number;
  onBody(b: Buffer): number;
  onMessageComplete(): number;
}

let current: ParserEvents | undefined;
const EMPTY = Buffer.alloc(0);
let input: Buffer = EMPTY;
let inputPtr = 0;
let inputSize = 0;

const view = (at: number, len: number): Buffer => input.subarray(at - inputPtr, at - inputPtr + len);
/**
 * The input of a small read as one latin1 string, made on the first URL or header piece of an
 * execute(): every piece after that is a substring of it, not a call into C++ of its own.
 */
let inputText: string | undefined;
const WHOLE_TEXT_MAX = 8 * 1024;
function text(at: number, len: number): string {
  const from = at - inputPtr;
  if (input.length > WHOLE_TEXT_MAX) return input.toString('latin1', from, from + len);
  inputText ??= input.toString('latin1');
  return inputText.substring(from, from + len);
}

const wasmModule = new WebAssembly.Module(fs.readFileSync(new URL('./llhttp/llhttp_simd.wasm', import.meta.url)));
const instance = new WebAssembly.Instance(wasmModule, {
  env: {
    wasm_on_message_begin: () => current!.onMessageBegin(),
    wasm_on_url: (_p: number, at: number, len: number) => current!.onUrl(text(at, len)),
    wasm_on_status: () => current!.onStatus(),
    wasm_on_header_field: (_p: number, at: number, len: number) => current!.onHeaderField(text(at, len)),
    wasm_on_header_value: (_p: number, at: number, len: number) => current!.onHeaderValue(text(at, len)),
    wasm_on_headers_complete: (_p: number, status: number, upgrade: number, keepAlive: number) => current!.onHeadersComplete(status, upgrade === 1, keepAlive === 1),
    wasm_on_body: (_p: number, at: number, len: number) => current!.onBody(view(at, len)),
    wasm_on_message_complete: () => current!.onMessageComplete(),
  },
});
const L = instance.exports as unknown as LlhttpExports;
L._initialize?.();
/** A view of the whole WebAssembly memory, made again only when the memory grows (which detaches it). */
let heap = new Uint8Array(L.memory.buffer);

function cString(ptr: number): string {
  const mem = new Uint8Array(L.memory.buffer);
  let end = ptr;
  while (mem[end] !== 0) end++;
  return Buffer.from(L.memory.buffer, ptr, end - ptr).toString('latin1');
}

const methodNames: string[] = [];
export function methodName(m: number): string {
  return (methodNames[m] ??= cString(L.llhttp_method_name(m)));
}

export class Parser {
  private ptr: number;
  private readonly events: ParserEvents;
  /** Bytes of the last execute()'s input consumed: where a pause or an error happened, else all. */
  consumed = 0;

  constructor(type: number, events: ParserEvents) {
    this.ptr = L.llhttp_alloc(type);
    this.events = events;
  }

  /**
   * Feeds bytes; callbacks fire synchronously. Returns OK, PAUSED, PAUSED_UPGRADE, or an llhttp
   * error number (never throws on bad input); `consumed` says how far it got.
   */
  execute(data: Buffer): number {
    if (data.length > inputSize) {
      if (inputPtr) L.free(inputPtr);
      inputSize = Math.ceil(data.length / 4096) * 4096;
      inputPtr = L.malloc(inputSize);
    }
    // One input buffer serves every parser: a callback must never execute another parser (it would
    // overwrite the bytes the outer call is still reading). Continuations are scheduled instead.
    if (current) throw new Error('llhttp: execute() called from inside a parser callback');
    if (!this.ptr) throw new Error('llhttp: execute() after destroy()');
    if (heap.length === 0) heap = new Uint8Array(L.memory.buffer); // detached: the memory grew
    heap.set(data, inputPtr);
    current = this.events;
    input = data;
    try {
      const ret = L.llhttp_execute(this.ptr, inputPtr, data.length);
      this.consumed = ret === OK ? data.length : L.llhttp_get_error_pos(this.ptr) - inputPtr;
      return ret;
    } finally {
      current = undefined;
      input = EMPTY;
      inputText = undefined;
      if (this.freeAfterExecute) this.destroy();
    }
  }

  /** destroy() was called from one of this parser's own callbacks: it frees once execute() returns. */
  private freeAfterExecute = false;

  /** The end of the stream: completes a message that is delimited by the connection closing. */
  finish(): number {
    if (current) throw new Error('llhttp: finish() called from inside a parser callback');
    if (!this.ptr) return OK; // destroyed: nothing left to complete
    current = this.events;
    try {
      return L.llhttp_finish(this.ptr);
    } finally {
      current = undefined;
      if (this.freeAfterExecute) this.destroy();
    }
  }

  // After destroy() (ptr 0) the accessors below do nothing and read as an empty parser: a caller
  // that destroyed the parser from a callback may still look at it before it learns so, and
  // llhttp itself must never be handed address 0.
  resume(): void {
    if (this.ptr) L.llhttp_resume(this.ptr);
  }

  resumeAfterUpgrade(): void {
    if (this.ptr) L.llhttp_resume_after_upgrade(this.ptr);
  }

  reset(): void {
    if (this.ptr) L.llhttp_reset(this.ptr);
  }

  /** "HPE_INVALID_METHOD: Invalid method encountered", for an error result. */
  errorText(ret: number): { code: string; reason: string } {
    return { code: cString(L.llhttp_errno_name(ret)), reason: this.ptr ? cString(L.llhttp_get_error_reason(this.ptr)) : 'the parser was closed' };
  }

  get method(): string {
    return this.ptr ? methodName(L.llhttp_get_method(this.ptr)) : '';
  }
  get versionMajor(): number {
    return this.ptr ? L.llhttp_get_http_major(this.ptr) : 0;
  }
  get versionMinor(): number {
    return this.ptr ? L.llhttp_get_http_minor(this.ptr) : 0;
  }
  get statusCode(): number {
    return this.ptr ? L.llhttp_get_status_code(this.ptr) : 0;
  }
  get keepAlive(): boolean {
    return this.ptr ? L.llhttp_should_keep_alive(this.ptr) === 1 : false;
  }
  /** Whether the message in progress ends only when the connection closes. */
  get needsEof(): boolean {
    return this.ptr ? L.llhttp_message_needs_eof(this.ptr) === 1 : false;
  }

  /**
   * Frees the parser. From inside one of its own callbacks (a response handler that gives up on
   * the exchange, say) the free waits until execute() returns: freeing the memory llhttp is still
   * running on would let the next parser allocated there inherit its state.
   */
  destroy(): void {
    if (current === this.events && current !== undefined) {
      this.freeAfterExecute = true;
      return;
    }
    this.freeAfterExecute = false;
    if (this.ptr) L.llhttp_free(this.ptr);
    this.ptr = 0;
  }
}

/** Bytes of the parser's WebAssembly memory (it grows with the largest read and never shrinks). */
export function wasmMemoryBytes(): number {
  return L.memory.buffer.byteLength;
}
