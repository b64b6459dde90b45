// Request mirroring (Envoy's request_mirror_policies, Istio's mirror and mirrors): once a
// request's body is complete, a copy goes to each mirror cluster its fraction picks, with "-shadow"
// added to the host, as Envoy does. Whatever the copy's fate, the client never sees it: its answer
// is read and dropped, its failures ignored, and it is bounded by a timeout. Requests whose body
// was too large to keep are not mirrored.
import type { RuntimeConfig } from '../config.ts';
import type { RouteEntry } from '../xds-client/convert-route.ts';
import { hostname } from './local-reply.ts';
import { type Pools, upstreamProtocolFor } from '../upstream/pools.ts';
import { healthyEndpoints, nextEndpoint } from '../upstream/choose.ts';
import type { HeaderList, RequestHead, ResponseHandler, UpstreamCall } from './types.ts';

/** How long a mirrored copy may take when its route sets no timeout. */
export const MIRROR_TIMEOUT_MS = 30_000;

export interface MirrorContext {
  config: () => RuntimeConfig;
  pools: Pools;
  rr: Map<string, number>;
}

/** Sends the copies of one finished request; returns how many were sent. */
export function mirror(ctx: MirrorContext, cfg: RuntimeConfig, route: RouteEntry, head: RequestHead, body: readonly Buffer[], trailers: HeaderList, rand: () => number): number {
  let sent = 0;
  for (const m of route.mirrors ?? []) {
    if (!(rand() < m.fraction)) continue;
    const cluster = cfg.clusters.get(m.cluster);
    if (!cluster) continue;
    let eps;
    try {
      eps = healthyEndpoints(cfg, m.cluster, cluster);
    } catch {
      continue; // no endpoint: the copy is not sent, as Envoy drops it
    }
    const ep = nextEndpoint(ctx.rr, m.cluster, eps);
    const authority = m.shadowSuffix ? shadowHost(head.authority) : head.authority;
    const pool = ctx.pools.forEndpoint(ep, cluster, upstreamProtocolFor(cluster, head), authority);
    const length = body.reduce((n, b) => n + b.length, 0);
    const copy = new Copy(body, trailers, route.timeoutMs || MIRROR_TIMEOUT_MS);
    copy.call = pool.request(
      { method: head.method, target: head.query ? `${head.path}?${head.query}` : head.path, authority, headers: head.headers, body: head.hasBody ? length : 'none' },
      copy,
    );
    sent++;
  }
  return sent;
}

/** "reviews:80" -> "reviews-shadow:80", as Envoy names a shadow's host. */
export function shadowHost(authority: string): string {
  const host = hostname(authority);
  return `${host}-shadow${authority.slice(host.length)}`;
}

/** One mirrored copy: sends the body, drops the answer, ends on its own. */
class Copy implements ResponseHandler {
  call: UpstreamCall | undefined;
  private readonly body: readonly Buffer[];
  private readonly trailers: HeaderList;
  private readonly timer: NodeJS.Timeout;
  private done = false;

  constructor(body: readonly Buffer[], trailers: HeaderList, timeoutMs: number) {
    this.body = body;
    this.trailers = trailers;
    this.timer = setTimeout(() => this.finish(true), timeoutMs);
    this.timer.unref();
  }

  onRequestSent(call: UpstreamCall): void {
    this.call = call;
    if (this.done) return;
    for (const b of this.body) call.write(b);
    call.end(this.trailers);
  }
  onResponse(): void {}
  onData(): boolean {
    return true;
  }
  onEnd(): void {
    this.finish(false);
  }
  onError(): void {
    this.finish(false);
  }
  onUpgrade(_s: number, _h: HeaderList, socket: import('node:net').Socket): void {
    socket.destroy();
    this.finish(false);
  }

  private finish(abort: boolean): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    if (abort) this.call?.abort();
  }
}
