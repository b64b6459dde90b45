// The benchmark's upstream: a minimal server answering every request with a small body. The same
// server sits behind all paths of `npm run bench` (bench/run.ts).
//
// Usage: node bench/server.ts [PORT] [--proto h1|h2|grpc]   (default port 0: a free port)
//   h1    node:http, GET / (and /p<N>) -> 200 (the default; also the bench's "Node floor" for memory)
//   h2    node:http2 cleartext (prior knowledge), GET / -> 200
//   grpc  @grpc/grpc-js, unary GRPC_METHOD answering the same bytes
// Prints `BENCH_SERVER_READY <port>` on stdout once it listens; SIGTERM/SIGINT stop it. The h2 and
// grpc modules are loaded only in their modes, so that the h1 server's memory stays a bare
// node:http server's.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

export const BODY = Buffer.from('hello from the bench server\n');
/** The unary method of the gRPC server; request and response are raw bytes. */
export const GRPC_METHOD = '/weft.bench.Bench/Hello';

const HEADERS = { 'content-type': 'text/plain', 'content-length': String(BODY.length) };

async function serveH1(port: number): Promise<() => void> {
  const server = http.createServer({ keepAliveTimeout: 120_000 }, (req, res) => {
    // GET / and GET /p<N> (the telemetry soak spreads its requests over paths).
    if (req.method !== 'GET' || (req.url !== '/' && !req.url?.startsWith('/p'))) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    res.writeHead(200, HEADERS);
    res.end(BODY);
  });
  // Connections from the proxies stay open for the whole run.
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  ready((server.address() as AddressInfo).port);
  return () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
}

async function serveH2(port: number): Promise<() => void> {
  const http2 = await import('node:http2');
  const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
  server.on('stream', (stream, headers) => {
    if (headers[':method'] !== 'GET' || headers[':path'] !== '/') {
      stream.respond({ ':status': 404 });
      stream.end();
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': BODY.length });
    stream.end(BODY);
  });
  server.setTimeout(0);
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  ready((server.address() as AddressInfo).port);
  return () => server.close(() => process.exit(0));
}

async function serveGrpc(port: number): Promise<() => void> {
  const grpc = await import('@grpc/grpc-js');
  const raw = (b: Buffer) => b;
  const server = new grpc.Server();
  server.addService(
    { Hello: { path: GRPC_METHOD, requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } },
    { Hello: (_call: unknown, cb: (err: null, res: Buffer) => void) => cb(null, BODY) },
  );
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  ready(bound);
  return () => server.tryShutdown(() => process.exit(0));
}

function ready(port: number): void {
  process.stdout.write(`BENCH_SERVER_READY ${port}\n`);
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { proto: { type: 'string', default: 'h1' } } });
  const serve = { h1: serveH1, h2: serveH2, grpc: serveGrpc }[values.proto!];
  if (!serve) throw new Error(`--proto: expected h1, h2 or grpc, got ${values.proto}`);
  const stop = await serve(Number(positionals[0] ?? 0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
