// A client sidecar's outbound listener in process, for tests of its CONNECT handling: the
// sidecar's own listener and TCP path on a snapshot of the translated config, without the rest of
// the sidecar process.
import type { RuntimeConfig } from '../../src/proxy/config.ts';
import { connectTarget } from '../../src/proxy/http/forward.ts';
import { ConnectionBudget, createListener } from '../../src/proxy/listeners/listener.ts';
import type { TcpContext } from '../../src/proxy/tcp/tcp.ts';
import { Telemetry } from '../../src/proxy/telemetry/events.ts';
import { Pools } from '../../src/proxy/upstream/pools.ts';
import { listen } from '../helpers.ts';

/**
 * Listens on a free loopback port; returns it. `closers` gets what stops it. `rand` picks among a
 * route's weighted clusters (a fixed value makes the choice fixed).
 */
export async function outboundListener(cfg: RuntimeConfig, closers: (() => void)[], o: { connectionLimit?: number; telemetry?: Telemetry; rand?: () => number } = {}): Promise<number> {
  const pools = new Pools();
  const tcp: TcpContext = { config: () => cfg, telemetry: o.telemetry ?? new Telemetry(), balance: { rr: new Map() }, log: () => {}, resources: (c) => pools.resourcesOf(c) };
  const l = cfg.listeners.get('outbound')!;
  const rand = o.rand ?? Math.random;
  const server = createListener(
    { onRequest: () => {}, connectTarget: (authority) => connectTarget(cfg, 'outbound', authority, rand()), onRejected: () => {}, log: () => {}, tcp, internal: (_name, socket) => socket.destroy() },
    () => ({ name: 'outbound', path: l.path, headersTimeoutMs: l.requestHeadersTimeoutMs, idleTimeoutMs: l.idleTimeoutMs, kind: l.kind }),
    new ConnectionBudget(o.connectionLimit ?? 100),
  );
  const port = await listen(server);
  closers.push(() => {
    server.close();
    void pools.close();
  });
  return port;
}
