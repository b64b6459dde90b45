// The llhttp (WebAssembly) parser wrapper: a parser freed from inside its own callback (a handler
// that gives up on an exchange when its response head arrives, as a retry does) must not leave
// its state to the next parser allocated in the same memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HC_CONTINUE, OK, PAUSED, Parser, TYPE_RESPONSE } from '../../src/proxy/http1/llhttp.ts';

function parser(onHead: (status: number) => void = () => {}): { p: Parser; fields: string[] } {
  const fields: string[] = [];
  const p = new Parser(TYPE_RESPONSE, {
    onMessageBegin: () => 0,
    onUrl: () => 0,
    onStatus: () => 0,
    onHeaderField: (b) => (fields.push(b), 0),
    onHeaderValue: (b) => (fields.push(b), 0),
    onHeadersComplete: (status) => (onHead(status), HC_CONTINUE),
    onBody: () => 0,
    onMessageComplete: () => PAUSED,
  });
  return { p, fields };
}

test('a parser destroyed inside its own callback frees only after execute() returns; the next parser starts clean', () => {
  let next: ReturnType<typeof parser> | undefined;
  const first = parser(() => {
    first.p.destroy();
    next = parser(); // allocated while the first one's execute() is still running
  });
  const ret = first.p.execute(Buffer.from('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\nx-a: 1\r\n\r\ndown'));
  assert.ok(ret === OK || ret === PAUSED, `the first parser finished its input (${ret})`);
  assert.ok(next);
  const r = next.p.execute(Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-b: 2\r\n\r\nok'));
  assert.equal(r, PAUSED, 'a whole message, paused at its end');
  assert.deepEqual(next.fields, ['content-length', '2', 'x-b', '2']);
  assert.throws(() => first.p.execute(Buffer.from('x')), /after destroy/);
  // What a caller may still ask of it before it learns it is gone touches no freed memory.
  first.p.resume();
  assert.equal(first.p.keepAlive, false);
  assert.equal(first.p.needsEof, false);
  assert.equal(first.p.finish(), OK);
  next.p.destroy();
});
