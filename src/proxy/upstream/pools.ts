// Connection pools, one per cluster, endpoint address and protocol, as Envoy keeps them: keep-alive
// HTTP/1.1 connections (http1/client.ts) or multiplexed HTTP/2 sessions (http2/client.ts), as the
// cluster's protocol options say. A cluster's pools share its circuit breakers (resources.ts), so
// its limits hold across all of its endpoints. Pools outlive config snapshots: an endpoint that
// stays in its cluster across updates keeps its warm connections.
// An endpoint whose transport socket is TLS (the cluster's transport_socket_matches, by its
// metadata) has pools of its own, keyed by the TLS context too: TLS and plaintext connections to
// one address never mix, nor do connections made for different SNIs or SAN lists.
import { EndpointPool, type PoolStats } from '../http1/client.ts';
import { Http2Pool } from '../http2/client.ts';
import type { ResponseHandler, UpstreamCall, UpstreamRequest } from '../http/types.ts';
import type { ClusterConfig, ConnectionOptions, Endpoint, UpstreamTls } from '../xds-client/convert.ts';
import { type UpstreamLimits, upstreamLimits } from '../limits.ts';
import { ClusterResources } from './resources.ts';
import { transportFor } from '../xds-client/convert-tls.ts';
import type { TlsOrigin } from '../tls/upstream.ts';
import { poolKey, requestTls } from '../tls/origination.ts';
import type { TlsSecrets } from '../tls/secrets.ts';
import type { TlsStats } from '../tls/stats.ts';

/** What a pool is told of its cluster: limits, timeouts, and what its connections do. */
export interface PoolOptions extends ConnectionOptions {
  connectTimeoutMs: number;
  /** The cluster's circuit breakers, shared by all of its pools. */
  resources: ClusterResources;
  /** Concurrent streams per HTTP/2 connection (the cluster's max_concurrent_streams, or the sidecar's default), under the server's own SETTINGS_MAX_CONCURRENT_STREAMS. */
  maxStreamsPerSession: number;
}

/** What the request path needs of a pool, whatever the protocol. */
export interface UpstreamPool {
  readonly name: string;
  request(req: UpstreamRequest, handler: ResponseHandler): UpstreamCall;
  stats(): PoolStats;
  /** The cluster's options changed (a new config): applies to requests and connections from now on. */
  configure(opts: PoolOptions): void;
  close(): void;
  destroy(): void;
}

/** What one pool speaks: a 'downstream' cluster has pools of both. */
export type PoolProtocol = 'http1' | 'http2';

/** The protocol of a cluster's pools when the request does not decide it. */
function defaultProtocol(cluster: Pick<ClusterConfig, 'protocol'>): PoolProtocol {
  return cluster.protocol === 'http2' ? 'http2' : 'http1';
}

/** The protocol a request goes upstream in: the cluster's, or for a cluster that follows the client (use_downstream_protocol_config) the client's own. */
export function upstreamProtocolFor(cluster: Pick<ClusterConfig, 'protocol'>, head: { protocol: string }): PoolProtocol {
  if (cluster.protocol === 'downstream') return head.protocol === 'HTTP/2' ? 'http2' : 'http1';
  return cluster.protocol;
}

type PoolCluster = Pick<ClusterConfig, 'name' | 'connectTimeoutMs' | 'protocol' | 'limits' | 'connection'> & Partial<Pick<ClusterConfig, 'type' | 'transportSocket' | 'transportSocketMatches' | 'autoSni'>>;

/**
 * Pools for destinations that requests name (ORIGINAL_DST clusters: the hosts an app reaches
 * through ALLOW_ANY, or a ServiceEntry with resolution NONE) are kept apart: past this many, the
 * least recently used one with nothing in flight is closed for each new one, so an app that calls
 * many hosts does not grow the sidecar without bound (only as far as it has requests in flight).
 */
export const MAX_DYNAMIC_POOLS = 128;

export class Pools {
  private readonly pools = new Map<string, { member: string; pool: UpstreamPool }>();
  /** ORIGINAL_DST destinations' pools, least recently used first; config updates leave them be. */
  private readonly dynamic = new Map<string, UpstreamPool>();
  /** Each cluster's circuit breakers, by name: they outlive config snapshots, as its pools do. */
  private readonly resources = new Map<string, ClusterResources>();
  private readonly limits: UpstreamLimits;
  /**
   * The pool each (cluster, endpoint, protocol) of a config snapshot got, so that a request finds
   * it without building key strings or applying the cluster's options again. Config objects are
   * immutable (an update makes new ones); a retain() may close pools, so entries of an earlier
   * generation are looked up afresh.
   */
  private readonly byEndpoint = new WeakMap<PoolCluster, WeakMap<Endpoint, Partial<Record<PoolProtocol, { pool: UpstreamPool; generation: number }>>>>();
  private generation = 0;

  /** The workload certificate, for endpoints the mesh reaches over mutual TLS; none: such endpoints cannot be reached. */
  private readonly tls: { secrets: TlsSecrets; stats?: TlsStats } | undefined;

  constructor(limits: UpstreamLimits = upstreamLimits(), tls?: { secrets: TlsSecrets; stats?: TlsStats }) {
    this.limits = limits;
    this.tls = tls;
  }

  /**
   * get() for an endpoint object of the current config, remembered per (cluster, endpoint).
   * `protocol` is the request's own for a cluster that follows the client's (use_downstream_protocol_config).
   */
  forEndpoint(ep: Endpoint, cluster: PoolCluster, protocol: PoolProtocol = defaultProtocol(cluster), authority?: string): UpstreamPool {
    if (cluster.type === 'ORIGINAL_DST') return this.forDestination(ep, cluster, protocol, this.tlsFor(ep, cluster, authority));
    // auto_sni / auto_san_validation: the request's host is part of the TLS, so of the pool.
    if (cluster.autoSni && authority !== undefined) {
      const tls = this.tlsFor(ep, cluster, authority);
      return this.get(ep.address, ep.port, cluster, protocol, tls);
    }
    let m = this.byEndpoint.get(cluster);
    let cached = m?.get(ep);
    const hit = cached?.[protocol];
    if (hit && hit.generation === this.generation) return hit.pool;
    const pool = this.get(ep.address, ep.port, cluster, protocol, transportFor(cluster, ep));
    if (!m) this.byEndpoint.set(cluster, (m = new WeakMap()));
    if (!cached) m.set(ep, (cached = {}));
    cached[protocol] = { pool, generation: this.generation };
    return pool;
  }

  /** The pool for one endpoint of a cluster, made on first use; its options follow the cluster's. */
  get(address: string, port: number, cluster: PoolCluster, protocol: PoolProtocol = defaultProtocol(cluster), tls?: UpstreamTls): UpstreamPool {
    const member = memberKey(cluster.name, address, port);
    const key = tls ? `${protocol}|${member}|tls ${poolKey(tls)}` : `${protocol}|${member}`;
    let p = this.pools.get(key);
    const opts = this.optionsFor(cluster);
    if (!p) {
      p = { member, pool: this.newPool(address, port, protocol, opts, tls && this.origin(tls)) };
      this.pools.set(key, p);
    } else p.pool.configure(opts);
    return p.pool;
  }

  /** The circuit breakers of a cluster (made on first use), with its current limits. */
  resourcesOf(cluster: Pick<ClusterConfig, 'name' | 'limits'>): ClusterResources {
    const limits = {
      maxConnections: cluster.limits.maxConnections ?? this.limits.maxConnections,
      maxPending: cluster.limits.maxPending ?? this.limits.maxPending,
      // Istio always sends these as 2^32-1 unless a DestinationRule sets them: no limit where none is given.
      maxRequests: cluster.limits.maxRequests ?? Infinity,
      maxRetries: cluster.limits.maxRetries ?? Infinity,
      ...(cluster.limits.retryBudget ? { retryBudget: cluster.limits.retryBudget } : {}),
    };
    let r = this.resources.get(cluster.name);
    if (!r) this.resources.set(cluster.name, (r = new ClusterResources(cluster.name, limits)));
    else r.limits = limits;
    return r;
  }

  /** An ORIGINAL_DST destination's pool: reused while among the MAX_DYNAMIC_POOLS most recent, else made afresh. */
  private forDestination(ep: Endpoint, cluster: PoolCluster, protocol: PoolProtocol, tls?: UpstreamTls): UpstreamPool {
    const key = `${protocol}|${memberKey(cluster.name, ep.address, ep.port)}${tls ? `|tls ${poolKey(tls)}` : ''}`;
    const opts = this.optionsFor(cluster);
    let pool = this.dynamic.get(key);
    if (pool) {
      this.dynamic.delete(key); // to the most recent end
      pool.configure(opts);
    } else {
      pool = this.newPool(ep.address, ep.port, protocol, opts, tls && this.origin(tls));
      if (this.dynamic.size >= MAX_DYNAMIC_POOLS) this.evictIdle();
    }
    this.dynamic.set(key, pool);
    return pool;
  }

  /** Closes the least recently used destination pool that has nothing in flight; while every one is busy, none. */
  private evictIdle(): void {
    for (const [key, pool] of this.dynamic) {
      const s = pool.stats();
      if (s.busy || s.pending || s.connecting || s.streams) continue;
      this.dynamic.delete(key);
      pool.close();
      return;
    }
  }

  /** The cluster's circuit breakers and connection options, with the sidecar's defaults (limits.ts) where it sets none. */
  private optionsFor(cluster: PoolCluster): PoolOptions {
    return {
      ...cluster.connection,
      connectTimeoutMs: cluster.connectTimeoutMs,
      resources: this.resourcesOf(cluster),
      maxStreamsPerSession: cluster.connection?.maxConcurrentStreams ?? this.limits.maxStreamsPerSession,
    };
  }

  /** The endpoint's transport socket; with auto_sni, the request's host in it (tls/origination.ts). */
  private tlsFor(ep: Endpoint, cluster: PoolCluster, authority: string | undefined): UpstreamTls | undefined {
    const tls = transportFor(cluster, ep);
    return tls?.files && cluster.autoSni && authority !== undefined ? requestTls(tls, cluster.autoSni, authority) : tls;
  }

  private newPool(address: string, port: number, protocol: PoolProtocol, opts: PoolOptions, tls?: TlsOrigin): UpstreamPool {
    return protocol === 'http2' ? new Http2Pool(address, port, opts, tls) : new EndpointPool(address, port, opts, tls);
  }

  /** TLS to an endpoint with the workload certificate; without one (a sidecar built without it, in tests) connections fail saying so. */
  private origin(tls: UpstreamTls): TlsOrigin {
    const secrets = this.tls?.secrets ?? {
      current: () => {
        throw Object.assign(new Error('upstream TLS: this sidecar has no workload certificate'), { code: 'tls_handshake' });
      },
    };
    return { tls, secrets, ...(this.tls?.stats ? { stats: this.tls.stats } : {}) };
  }

  /**
   * Closes the pools of endpoints no longer in their cluster (`keep` holds memberKey()s); their
   * requests in flight finish first. The circuit breakers of clusters that are gone are forgotten
   * (pools still draining keep theirs).
   */
  retain(keep: Set<string>, clusters?: ReadonlySet<string>): void {
    this.generation++;
    for (const [key, p] of this.pools) {
      if (keep.has(p.member)) continue;
      this.pools.delete(key);
      p.pool.close();
    }
    if (clusters) for (const name of this.resources.keys()) if (!clusters.has(name)) this.resources.delete(name);
  }

  stats(): PoolStats[] {
    return [...[...this.pools.values()].map((p) => p.pool), ...this.dynamic.values()].map((p) => p.stats());
  }

  async close(): Promise<void> {
    for (const p of this.pools.values()) p.pool.destroy();
    for (const p of this.dynamic.values()) p.destroy();
    this.pools.clear();
    this.dynamic.clear();
  }
}

/** Which cluster an endpoint belongs to, as retain() is told: "cluster|address:port". */
export function memberKey(cluster: string, address: string, port: number): string {
  return `${cluster}|${address}:${port}`;
}
