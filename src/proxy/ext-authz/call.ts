// One request the sidecar makes on its own account to a cluster of its config (the external
// authorizer of a CUSTOM AuthorizationPolicy), through the same pools as forwarded requests: the
// cluster's endpoints (round robin over the healthy ones), its transport socket (mTLS to a mesh
// endpoint) and circuit breakers apply. The whole answer is read into memory, up to a bound; it
// ends by a timeout or abort(), never hangs.
import type { RuntimeConfig } from '../config.ts';
import type { Pools, PoolProtocol } from '../upstream/pools.ts';
import { healthyEndpoints, nextEndpoint } from '../upstream/choose.ts';
import type { HeaderList, ResponseHandler, UpstreamCall, UpstreamRequest } from '../http/types.ts';

export interface ClusterCallContext {
  config: () => RuntimeConfig;
  pools: Pools;
  rr: Map<string, number>;
}

export interface Reply {
  status: number;
  headers: HeaderList;
  body: Buffer;
  trailers: HeaderList;
}

/** An answer larger than this is cut (an authorizer's answer is a status, a few headers and a short body). */
export const MAX_REPLY_BYTES = 1024 * 1024;

/** A call under way: its outcome (a failure says why, naming the cluster), and how to give up on it. */
export interface ClusterCall {
  readonly reply: Promise<Reply>;
  abort(): void;
}

export function callCluster(ctx: ClusterCallContext, clusterName: string, protocol: PoolProtocol | undefined, req: UpstreamRequest, body: Buffer | undefined, timeoutMs: number): ClusterCall {
  const cfg = ctx.config();
  const cluster = cfg.clusters.get(clusterName);
  if (!cluster) return failed(`the sidecar has no cluster ${clusterName}`);
  let pool;
  let endpoint: string;
  try {
    const ep = nextEndpoint(ctx.rr, clusterName, healthyEndpoints(cfg, clusterName, cluster));
    endpoint = `${ep.address}:${ep.port}`;
    pool = ctx.pools.forEndpoint(ep, cluster, protocol);
  } catch (e) {
    return failed((e as Error).message);
  }
  const h = new Collector(body, `${endpoint} in cluster ${clusterName}`, timeoutMs);
  h.call = pool.request(req, h);
  return { reply: h.promise, abort: () => h.finish(new Error('cancelled: the client went away')) };
}

function failed(message: string): ClusterCall {
  const reply = Promise.reject(new Error(message));
  reply.catch(() => {});
  return { reply, abort: () => {} };
}

class Collector implements ResponseHandler {
  call: UpstreamCall | undefined;
  readonly promise: Promise<Reply>;
  private resolve!: (r: Reply) => void;
  private reject!: (e: Error) => void;
  private readonly body: Buffer | undefined;
  private readonly where: string;
  private readonly timer: NodeJS.Timeout | undefined;
  private status = 0;
  private headers: HeaderList = [];
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  private done = false;

  constructor(body: Buffer | undefined, where: string, timeoutMs: number) {
    this.body = body;
    this.where = where;
    this.promise = new Promise<Reply>((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    this.promise.catch(() => {});
    if (Number.isFinite(timeoutMs)) {
      this.timer = setTimeout(() => this.finish(new Error(`timed out after ${timeoutMs} ms waiting for ${where}`)), timeoutMs);
      this.timer.unref();
    }
  }

  onRequestSent(call: UpstreamCall): void {
    this.call = call;
    if (this.done) return;
    if (this.body?.length) call.write(this.body);
    call.end();
  }
  onResponse(status: number, headers: HeaderList): void {
    this.status = status;
    this.headers = headers.slice();
  }
  onData(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    if (this.bytes > MAX_REPLY_BYTES) this.finish(new Error(`${this.where} answered more than ${MAX_REPLY_BYTES} bytes`));
    else this.chunks.push(chunk);
    return true;
  }
  onEnd(trailers: HeaderList): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.resolve({ status: this.status, headers: this.headers, body: Buffer.concat(this.chunks), trailers: trailers.slice() });
  }
  onError(err: { message: string; code?: string }): void {
    this.finish(new Error(`${this.where}: ${err.code ? `${err.code} ` : ''}${err.message}`), false);
  }
  onUpgrade(_s: number, _h: HeaderList, socket: import('node:net').Socket): void {
    socket.destroy();
    this.finish(new Error(`${this.where} switched protocols`));
  }

  finish(e: Error, abort = true): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    if (abort) this.call?.abort();
    this.reject(e);
  }
}
