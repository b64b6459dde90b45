// A small httpbin: GET /headers answers with the request's headers as JSON (as httpbin.org does),
// anything else with 200 "ok". A plain HTTP server that knows nothing of the mesh or of TLS.
import http from 'node:http';

const port = Number(process.env.PORT ?? 8000);

const server = http.createServer((req, res) => {
  if (req.url?.split('?')[0] === '/headers') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ headers: req.headers }, null, 2) + '\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('ok\n');
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
