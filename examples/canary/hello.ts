// The article's backend: a plain HTTP server that knows nothing of the mesh.
import http from 'node:http';

const version = process.env.VERSION ?? 'v1';
const port = Number(process.env.PORT ?? 8080);

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url?.split('?')[0] === '/hello') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`Hello from MyBackendService! version=${version}\n`);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end(`not found: ${req.method} ${req.url}\n`);
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
