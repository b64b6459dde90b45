// A tiny key-value store over plain TCP, server-first like SMTP or MySQL: it greets on connect,
// then takes lines "SET key value", "GET key", "QUIT". Its admin port answers HTTP with a count.
import http from 'node:http';
import net from 'node:net';
import readline from 'node:readline';

const data = new Map<string, string>();
const kv = net.createServer((c) => {
  c.write('+OK kv ready\r\n');
  c.on('error', () => {});
  const lines = readline.createInterface({ input: c });
  lines.on('error', () => {}); // a client that resets (the sidecar's health probe does) is just gone
  lines.on('line', (line) => {
    const [cmd, key, ...rest] = line.trim().split(' ');
    switch (cmd?.toUpperCase()) {
      case 'SET':
        data.set(key, rest.join(' '));
        c.write('+OK\r\n');
        break;
      case 'GET':
        c.write(data.has(key) ? `$${data.get(key)}\r\n` : '-not found\r\n');
        break;
      case 'QUIT':
        c.end('+bye\r\n');
        break;
      default:
        c.write(`-unknown command ${cmd}\r\n`);
    }
  });
});
kv.listen(Number(process.env.PORT_TCP_KV), '127.0.0.1');
const admin = http.createServer((_q, r) => r.end(`kv holds ${data.size} key(s)\n`));
admin.listen(Number(process.env.PORT_ADMIN), '127.0.0.1');
process.on('SIGTERM', () => {
  kv.close();
  admin.close();
  process.exit(0);
});
