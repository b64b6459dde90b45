// `weft up examples/polyglot`, driven as the README's tour drives it: an HTTP/1.1 service with
// curl, a gRPC service with a grpc-js client (through http_proxy: CONNECT, then HTTP/2), and a
// server-first TCP service with `curl -p` (CONNECT, then opaque TCP), all from the client workload.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type Up, startUp, waitFor, weft } from '../helpers.ts';

describe('weft up examples/polyglot (HTTP/1.1, gRPC and TCP in one mesh, real processes)', () => {
  let up: Up;
  before(async () => {
    up = await startUp('examples/polyglot');
  });
  after(async () => {
    if (up) assert.equal(await up.stop(), 0, up.output());
  });

  test('HTTP/1.1: curl through the client sidecar', async () => {
    const r = await weft(['exec', 'client', '--', 'curl', '-sS', 'http://web/hello'], up.env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'web: you asked for GET /hello');
  });

  test('gRPC: a grpc-js client through the client sidecar reaches the greeter over HTTP/2', async () => {
    const r = await waitFor('the greeter to answer', async () => {
      const x = await weft(['exec', 'client', '--', process.execPath, 'examples/polyglot/greet.ts', 'Ada'], up.env);
      return x.code === 0 && x;
    });
    assert.equal(r.stdout.trim(), 'Hello, Ada! (from greeter)');
    const bad = await weft(['exec', 'client', '--', process.execPath, 'examples/polyglot/greet.ts', ''], up.env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /gRPC error 3 \(INVALID_ARGUMENT\): name is required/);
  });

  test('TCP: a server-first protocol through CONNECT (curl -p)', async () => {
    const r = await weft(['exec', 'client', '--', 'sh', '-c', `printf 'SET a 1\\r\\nGET a\\r\\nQUIT\\r\\n' | curl -s -p -x "$HTTP_PROXY" telnet://kv:6000`], up.env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\+OK kv ready\r\n\+OK\r\n\$1\r\n/);
  });
});
