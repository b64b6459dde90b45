// The benchmark's upstream: a minimal node:http server answering every request with a small
// body. The same server sits behind all three paths of `npm run bench` (bench/run.ts).
//
// Usage: node bench/server.ts [PORT]   (default 0: a free port). Prints `BENCH_SERVER_READY <port>`
// on stdout once it listens; SIGTERM/SIGINT stop it.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const BODY = Buffer.from('hello from the bench server\n');
const HEADERS = { 'content-type': 'text/plain', 'content-length': String(BODY.length) };

const server = http.createServer({ keepAliveTimeout: 120_000 }, (req, res) => {
  if (req.method !== 'GET' || req.url !== '/') {
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

server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`BENCH_SERVER_READY ${(server.address() as AddressInfo).port}\n`);
});

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
