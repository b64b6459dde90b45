// Routing a TLS connection by the server name it asks for, without terminating it (Envoy's
// tls_inspector listener filter, then the tcp_proxy of the filter chain whose server_names match).
// The ClientHello is read as it comes (client-hello.ts) and not consumed: once a chain is chosen,
// every byte read so far goes upstream first, unchanged, and the rest is piped.
//
// Bounded as Envoy bounds it: a ClientHello over 64 KiB closes the connection; one that does not
// arrive within listener_filters_timeout closes it too, or (continue_on_listener_filters_timeout)
// is routed as having no server name; bytes that are not a ClientHello are routed as having no
// server name, as Envoy does. A client that ends or resets before deciding is closed with it.
import type net from 'node:net';
import { ClientHelloReader, type HelloOutcome, MAX_CLIENT_HELLO } from './client-hello.ts';
import { type TcpContext, proxyTcp } from './tcp.ts';
import { type SniConfig, chainFor, pickTcpCluster } from '../xds-client/convert.ts';

/**
 * Reads the ClientHello from `down` (after `head`, bytes already read), picks the chain its server
 * name matches and proxies there. `authority`: the CONNECT target the connection came with, where
 * an ORIGINAL_DST cluster connects.
 */
export function routeBySni(ctx: TcpContext, listener: string, sni: SniConfig, down: net.Socket, head: Buffer, authority?: string): void {
  const reader = new ClientHelloReader();
  const from = `${down.remoteAddress ?? 'a tunnel'}${down.remotePort ? `:${down.remotePort}` : ''}`;
  let decided = false;
  down.allowHalfOpen = true;
  const finish = (): boolean => {
    if (decided) return false;
    decided = true;
    if (timer) clearTimeout(timer);
    down.off('data', onData);
    down.off('end', onEnd);
    down.off('close', onClose);
    down.pause();
    return true;
  };
  const close = (why: string) => {
    if (!finish()) return;
    ctx.log(`TLS connection from ${from} to listener ${listener} closed: ${why}`);
    down.destroy();
  };
  const route = (serverName: string | undefined) => {
    if (!finish()) return;
    const chain = chainFor(sni, serverName);
    if (!chain) {
      ctx.log(`TLS connection from ${from} to listener ${listener} closed: no filter chain matches ${serverName === undefined ? 'a connection without a server name' : `server name "${serverName}"`}, and the listener has no default chain`);
      down.destroy();
      return;
    }
    proxyTcp(ctx, pickTcpCluster(chain.tcp, Math.random()), down, reader.bytes, chain.tcp.idleTimeoutMs, authority, chain.tcp);
  };
  const decide = (o: HelloOutcome) => {
    if (o.kind === 'tls') route(o.serverName);
    else if (o.kind === 'not_tls') route(undefined); // Envoy: no server name, so the default chain
    else if (o.kind === 'too_large') close(`its ClientHello is over ${MAX_CLIENT_HELLO / 1024} KiB`);
  };
  const onData = (d: Buffer) => decide(reader.feed(d));
  const onEnd = () => close('the client ended the connection before its ClientHello was complete');
  const onClose = () => finish();
  const timer = sni.timeoutMs > 0 ? setTimeout(() => (sni.continueOnTimeout ? route(undefined) : close(`no complete ClientHello within ${sni.timeoutMs} ms (listener_filters_timeout)`)), sni.timeoutMs) : undefined;
  down.on('data', onData);
  down.on('end', onEnd);
  down.on('close', onClose);
  if (head.length) decide(reader.feed(head));
  if (!decided) down.resume();
}
