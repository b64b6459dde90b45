// Envoy's internal listeners: listeners bound to no socket, which a connection reaches through a
// cluster whose endpoint names one (envoy_internal_address). In Weft's sidecar that connection is a
// CONNECT tunnel whose route sends it to such a cluster; it is then served as the listener would
// serve a connection it accepted: its tcp_proxy, or the chain its tls_inspector picks.
import type net from 'node:net';
import type { RuntimeConfig } from '../config.ts';
import { routeBySni } from '../tcp/sni.ts';
import { type TcpContext, proxyTcp } from '../tcp/tcp.ts';
import { pickTcpCluster } from '../xds-client/convert.ts';

/** Serves a tunnel (its 200 sent, `head` the bytes after the CONNECT) on internal listener `name`. */
export function serveInternal(ctx: TcpContext, cfg: RuntimeConfig, name: string, socket: net.Socket, head: Buffer, authority: string): void {
  const l = cfg.listeners.get(name);
  if (l?.internal && l.kind === 'sni') routeBySni(ctx, name, l.sni!, socket, head, authority);
  else if (l?.internal && l.kind === 'tcp') proxyTcp(ctx, pickTcpCluster(l.tcp!, Math.random()), socket, head, l.tcp!.idleTimeoutMs, authority, l.tcp!);
  else {
    // The listener went away between the route's choice and now (a config swap): say so and close.
    ctx.log(`CONNECT tunnel to ${authority} closed: internal listener ${name} is not known to the sidecar any more`);
    socket.destroy();
  }
}
