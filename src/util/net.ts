// Small socket helpers shared by the CLI, the sidecar, tests and benchmarks.
import net from 'node:net';

/** "127.0.0.1:8080", or "[::1]:8080" for an IPv6 address: how an endpoint is named in logs and errors. */
export function endpointName(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Does something accept TCP connections on host:port within timeoutMs? */
export function canConnect(port: number, timeoutMs = 1000, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** A port that was free a moment ago: bind port 0 on loopback, read it, release it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Free ports for processes started together: freePort() releases the port it found, so two
 * calls at once can return the same one. This hands out each port at most once.
 */
export class PortAllocator {
  private readonly given = new Set<number>();

  async next(): Promise<number> {
    for (;;) {
      const p = await freePort();
      if (!this.given.has(p)) {
        this.given.add(p);
        return p;
      }
    }
  }
}
