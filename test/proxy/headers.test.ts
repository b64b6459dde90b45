// The HTTP/1.1 codecs' header helpers: what goes on the wire, byte for byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endToEnd, forHttp1, headBytes } from '../../src/proxy/http1/headers.ts';

test('headBytes writes a head byte for byte as the latin1 text of its lines', () => {
  const long = 'v'.repeat(40) + '\u00e9'; // past the byte-by-byte path, with a latin1 character
  const h = ['x-short', 'caf\u00e9', 'x-long', long, 'x-empty', ''];
  const got = headBytes('GET /p HTTP/1.1\r\nhost: svc\r\n', h, 'content-length: 3\r\n');
  const want = Buffer.from(`GET /p HTTP/1.1\r\nhost: svc\r\nx-short: caf\u00e9\r\nx-long: ${long}\r\nx-empty: \r\ncontent-length: 3\r\n\r\n`, 'latin1');
  assert.deepEqual(got, want);
  assert.equal(got[got.indexOf('caf') + 3], 0xe9);
  // No fields and no added lines: the first line and the blank line.
  assert.equal(headBytes('HTTP/1.1 204 No Content\r\n', [], '').toString('latin1'), 'HTTP/1.1 204 No Content\r\n\r\n');
});

test('endToEnd drops hop-by-hop fields and those the Connection field names, and keeps the rest in order', () => {
  const h = ['host', 'a', 'te', 'trailers', 'user-agent', 'u', 'connection', 'keep-alive, X-Hop', 'x-hop', '1', 'keep-alive', 'timeout=5', 'trailer', 't', 'upgrade', 'ws', 'proxy-connection', 'x', 'transfer-encoding', 'chunked', 'content-length', '3', 'expect', '100-continue', 'accept', '*/*', 'connections', 'kept'];
  assert.deepEqual(endToEnd(h), ['user-agent', 'u', 'accept', '*/*', 'connections', 'kept']);
  assert.deepEqual(endToEnd(['connection', ' X-Single ', 'x-single', '1', 'a', 'b']), ['a', 'b']); // one option, no comma
  assert.deepEqual(endToEnd(['upgrade', 'websocket', 'x', 'y'], 'upgrade'), ['upgrade', 'websocket', 'x', 'y']);
});

test('forHttp1 drops pseudo-headers and TE, and returns a clean list as it is', () => {
  const clean = ['accept', '*/*', 'tee', 'x'];
  assert.equal(forHttp1(clean), clean);
  assert.deepEqual(forHttp1([':path', '/', 'te', 'trailers', 'accept', '*/*']), ['accept', '*/*']);
});
