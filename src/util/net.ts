// Small socket helpers shared by the CLI, the sidecar, tests and benchmarks.
import fs from 'node:fs';
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

/** Binds `port` on loopback (0: any), reads the port, releases it; undefined when it is taken. */
function probe(port: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', (e: NodeJS.ErrnoException) => (e.code === 'EADDRINUSE' || e.code === 'EACCES' ? resolve(undefined) : reject(e)));
    s.listen(port, '127.0.0.1', () => {
      const got = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(got));
    });
  });
}

/**
 * Ports below the kernel's ephemeral range, where no outgoing connection and no bind to port 0
 * takes a port by itself: a port found free there stays free until someone binds it by number.
 * (A port found with a bind to port 0 could be handed to the next such bind, or to an outgoing
 * connection, before the process it was meant for got to bind it.) Undefined where the range is
 * unknown or leaves no room.
 */
function quietRange(): [number, number] | undefined {
  try {
    const [lo] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return lo > 12_000 ? [10_000, lo - 1] : undefined;
  } catch {
    return undefined;
  }
}

/** A port that was free a moment ago, below the ephemeral range where there is one (quietRange), else any. */
export async function freePort(): Promise<number> {
  const range = quietRange();
  if (range) {
    for (let i = 0; i < 50; i++) {
      const port = await probe(range[0] + Math.floor(Math.random() * (range[1] - range[0] + 1)));
      if (port !== undefined) return port;
    }
  }
  const any = await probe(0);
  if (any === undefined) throw new Error('no free port on 127.0.0.1');
  return any;
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
