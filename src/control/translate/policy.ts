// PURE: a DestinationRule's traffic policy for one cluster -> Envoy Cluster fields, as Istio's
// cluster builder does it. The policy that applies is the rule's, with the subset's replacing it
// field by field (loadBalancer, connectionPool, outlierDetection), and a portLevelSettings entry
// for the cluster's port replacing both. What this translates is what api/support.ts does not warn
// about; the rest is warned about there.
import type { DestinationRule } from '../../api/types.ts';
import { TYPE } from '../../xds/types.ts';
import type { PortHandling } from '../model/protocol.ts';
import { duration } from './duration.ts';
import { clusterAutoSni } from './mtls.ts';

type Obj = Record<string, any>;

interface Policy {
  loadBalancer?: Obj;
  connectionPool?: Obj;
  outlierDetection?: Obj;
  retryBudget?: Obj;
  /** The client's TLS (mtls.ts's clusterTls reads it). */
  tls?: Obj;
}

const FIELDS = ['loadBalancer', 'connectionPool', 'outlierDetection', 'retryBudget', 'tls'] as const;

/** The policy of a cluster: the rule's, then the subset's, each with its port-level settings for `port`. */
export function effectivePolicy(dr: DestinationRule | undefined, subset: string, port: number): Policy {
  const out: Policy = {};
  const layer = (tp: Obj | undefined) => {
    if (!tp) return;
    for (const f of FIELDS) if (tp[f] !== undefined) out[f] = tp[f];
    const pl = (tp.portLevelSettings as Obj[] | undefined)?.find((p) => p.port?.number === port);
    if (pl) for (const f of FIELDS) if (pl[f] !== undefined) out[f] = pl[f];
  };
  layer(dr?.spec.trafficPolicy as Obj | undefined);
  if (subset) layer(dr?.spec.subsets?.find((s) => s.name === subset)?.trafficPolicy as Obj | undefined);
  return out;
}

/** Every traffic policy of a rule: its own, its subsets', and each one's port-level settings. */
export function policyLayers(dr: DestinationRule): Obj[] {
  const layers = (tp: Obj | undefined): Obj[] => (tp ? [tp, ...((tp.portLevelSettings as Obj[] | undefined) ?? [])] : []);
  return [...layers(dr.spec.trafficPolicy as Obj | undefined), ...(dr.spec.subsets ?? []).flatMap((s) => layers(s.trafficPolicy as Obj | undefined))];
}

const LB: Record<string, string> = { ROUND_ROBIN: 'ROUND_ROBIN', LEAST_REQUEST: 'LEAST_REQUEST', LEAST_CONN: 'LEAST_REQUEST', RANDOM: 'RANDOM' };

/**
 * Envoy Cluster fields for a policy: lb_policy, connect_timeout, circuit_breakers,
 * upstream_connection_options, outlier_detection (Istio's applyConnectionPool and the rest; the
 * HTTP protocol options are protocolOptions() below). Istio sends every threshold, 2^32-1 where the
 * rule sets none; Weft sends only those the rule sets, and the sidecar's defaults stand in
 * (docs/config.md).
 */
export function clusterPolicyFields(p: Policy): Obj {
  const out: Obj = {};
  const simple = p.loadBalancer?.simple as string | undefined;
  if (simple && LB[simple]) out.lb_policy = LB[simple];
  const ch = p.loadBalancer?.consistentHash as Obj | undefined;
  if (ch && hashPolicyOf(ch)) {
    if (ch.maglev) {
      out.lb_policy = 'MAGLEV';
      out.maglev_lb_config = { table_size: { value: ch.maglev.tableSize || 65537 } };
    } else {
      out.lb_policy = 'RING_HASH';
      out.ring_hash_lb_config = { minimum_ring_size: { value: ch.ringHash?.minimumRingSize || ch.minimumRingSize || 1024 } };
    }
  }
  // Istio's warmup (or its older warmupDurationSecs): Envoy's slow start, for ROUND_ROBIN and LEAST_REQUEST only.
  const lb = p.loadBalancer;
  const warmup = (lb?.warmup as Obj | undefined) ?? (lb?.warmupDurationSecs ? { duration: lb.warmupDurationSecs } : undefined);
  const policyName = out.lb_policy ?? 'ROUND_ROBIN';
  if (warmup && (policyName === 'ROUND_ROBIN' || policyName === 'LEAST_REQUEST')) {
    const slow_start_config = {
      slow_start_window: duration(warmup.duration),
      ...(warmup.aggression !== undefined && warmup.aggression !== null ? { aggression: { default_value: warmup.aggression, runtime_key: 'upstream.slow_start.aggression' } } : {}),
      min_weight_percent: { value: warmup.minimumPercent ?? 10 },
    };
    out[policyName === 'ROUND_ROBIN' ? 'round_robin_lb_config' : 'least_request_lb_config'] = { slow_start_config };
  }
  const tcp = p.connectionPool?.tcp as Obj | undefined;
  const http = p.connectionPool?.http as Obj | undefined;
  if (tcp?.connectTimeout) out.connect_timeout = duration(tcp.connectTimeout);
  const threshold: Obj = {};
  // As Istio: 0 says nothing (it cannot tell 0 from unset).
  if (tcp && tcp.maxConnections > 0) threshold.max_connections = { value: tcp.maxConnections };
  if (http && http.http1MaxPendingRequests > 0) threshold.max_pending_requests = { value: http.http1MaxPendingRequests };
  if (http && http.http2MaxRequests > 0) threshold.max_requests = { value: http.http2MaxRequests };
  if (http && http.maxRetries > 0) threshold.max_retries = { value: http.maxRetries };
  // Envoy's retry budget (it replaces max_retries): retries under way at most percent% of the
  // requests under way and waiting, and never fewer than minRetryConcurrency (20% and 3 unset).
  const budget = p.retryBudget;
  if (budget) {
    threshold.retry_budget = {
      ...(budget.percent !== undefined && budget.percent !== null ? { budget_percent: { value: budget.percent } } : {}),
      ...(budget.minRetryConcurrency > 0 ? { min_retry_concurrency: { value: budget.minRetryConcurrency } } : {}),
    };
  }
  if (Object.keys(threshold).length) out.circuit_breakers = { thresholds: [threshold] };
  const ka = tcp?.tcpKeepalive as Obj | undefined;
  if (ka) {
    // SO_KEEPALIVE, and the idle time before probes in whole seconds, as Istio; probes and interval
    // are not sent: the sidecar cannot set them (api/support.ts warns).
    const time = ka.time ? duration(ka.time).seconds : 0;
    out.upstream_connection_options = { tcp_keepalive: time > 0 ? { keepalive_time: { value: time } } : {} };
  }
  const od = p.outlierDetection;
  if (od) {
    // Istio's defaults: 5 consecutive 5xx, a 10 s interval, 30 s base ejection, 10% at most.
    const consecutive5xx = od.consecutive5xxErrors ?? od.consecutiveErrors ?? 5;
    const o: Obj = {
      consecutive_5xx: { value: consecutive5xx },
      enforcing_consecutive_5xx: { value: consecutive5xx > 0 ? 100 : 0 },
      interval: duration(od.interval ?? '10s'),
      base_ejection_time: duration(od.baseEjectionTime ?? '30s'),
      max_ejection_percent: { value: od.maxEjectionPercent ?? 10 },
      enforcing_success_rate: { value: 0 },
    };
    if (od.consecutiveGatewayErrors > 0) {
      o.consecutive_gateway_failure = { value: od.consecutiveGatewayErrors };
      o.enforcing_consecutive_gateway_failure = { value: 100 };
    }
    // Istio's split of local-origin failures (connect failures, resets, timeouts) from the upstream's 5xx.
    if (od.splitExternalLocalOriginErrors) {
      o.split_external_local_origin_errors = true;
      if (od.consecutiveLocalOriginFailures > 0) {
        o.consecutive_local_origin_failure = { value: od.consecutiveLocalOriginFailures };
        o.enforcing_consecutive_local_origin_failure = { value: 100 };
      }
      o.enforcing_local_origin_success_rate = { value: 0 };
    }
    out.outlier_detection = o;
    // Istio: below minHealthPercent healthy hosts, the cluster ignores ejections (Envoy's panic mode).
    out.common_lb_config = { healthy_panic_threshold: { value: od.minHealthPercent ?? 0 } };
  }
  return out;
}

/**
 * The cluster's HttpProtocolOptions (typed_extension_protocol_options), or undefined where it needs
 * none: the port's protocol (HTTP/2 for http2 and grpc ports), then as Istio's applyH2Upgrade and
 * applyConnectionPool have it:
 *   - h2UpgradePolicy UPGRADE makes the cluster HTTP/2 unless its protocol is already chosen (an
 *     HTTP/2 port, or a port of undeclared protocol, which Istio leaves to the client's protocol)
 *     or useClientProtocol is set; DEFAULT follows the mesh's h2UpgradePolicy, which is
 *     DO_NOT_UPGRADE (Weft has no MeshConfig);
 *   - idle_timeout (http.idleTimeout, else tcp.idleTimeout), max_requests_per_connection and
 *     max_connection_duration go in common_http_protocol_options;
 *   - on an HTTP/2 cluster, max_concurrent_streams and connection_keepalive (http2KeepAlive);
 *   - useClientProtocol: use_downstream_protocol_config, whatever was chosen before (and without
 *     the HTTP/2 options, as Istio's);
 *   - TLS origination (tls SIMPLE or MUTUAL) without an sni: upstream_http_protocol_options
 *     auto_sni and auto_san_validation (mtls.ts clusterAutoSni).
 */
export function protocolOptions(p: Policy, handling: PortHandling | undefined): Obj | undefined {
  const http = p.connectionPool?.http as Obj | undefined;
  const tcp = p.connectionPool?.tcp as Obj | undefined;
  // A port of undeclared protocol takes the client's own protocol upstream (Istio's
  // setUpstreamProtocol for sniffed ports): h2c in, h2c out.
  let upstream: 'http1' | 'http2' | 'downstream' | undefined = handling === 'http2' ? 'http2' : handling === 'detect' ? 'downstream' : undefined;
  if (http?.h2UpgradePolicy === 'UPGRADE' && !http.useClientProtocol && upstream === undefined && handling !== 'detect') upstream = 'http2';
  const common: Obj = {};
  const idle = http?.idleTimeout ?? tcp?.idleTimeout;
  if (idle !== undefined) common.idle_timeout = duration(idle);
  if (http?.maxRequestsPerConnection > 0) common.max_requests_per_connection = { value: http!.maxRequestsPerConnection };
  if (tcp?.maxConnectionDuration !== undefined) common.max_connection_duration = duration(tcp.maxConnectionDuration);
  if (http?.useClientProtocol) upstream = 'downstream';
  const autoSni = clusterAutoSni(p.tls);
  if (upstream === undefined && !Object.keys(common).length && !autoSni) return undefined;
  const h2: Obj = {};
  if (upstream === 'http2' && http?.maxConcurrentStreams > 0) h2.max_concurrent_streams = { value: http!.maxConcurrentStreams };
  if (upstream === 'http2' && http?.http2KeepAlive) {
    h2.connection_keepalive = { interval: duration(http.http2KeepAlive.interval), timeout: duration(http.http2KeepAlive.timeout) };
  }
  const options: Obj = { '@type': TYPE.httpProtocolOptions };
  if (Object.keys(common).length) options.common_http_protocol_options = common;
  if (autoSni) options.upstream_http_protocol_options = autoSni;
  if (upstream === 'downstream') options.use_downstream_protocol_config = { http_protocol_options: {}, http2_protocol_options: {} };
  // Envoy requires a protocol: HTTP/1.1 where nothing chose one (Istio's clusterWrapper.build).
  else options.explicit_http_config = upstream === 'http2' ? { http2_protocol_options: h2 } : { http_protocol_options: {} };
  return { [HTTP_PROTOCOL_OPTIONS]: options };
}

const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/**
 * Istio's consistentHash key -> an Envoy route hash_policy. useSourceIp hashes the client's
 * address: for a sidecar, its app, so all of one client's requests go to one endpoint, as in Istio.
 */
export function hashPolicyOf(ch: Obj | undefined): object | undefined {
  if (!ch) return undefined;
  if (ch.httpHeaderName) return { header: { header_name: ch.httpHeaderName } };
  if (ch.httpQueryParameterName) return { query_parameter: { name: ch.httpQueryParameterName } };
  if (ch.httpCookie) {
    const c = ch.httpCookie;
    const attributes = (c.attributes ?? []).map((a: Obj) => ({ name: a.name, ...(a.value ? { value: a.value } : {}) }));
    return { cookie: { name: c.name, ...(c.path ? { path: c.path } : {}), ...(c.ttl ? { ttl: duration(c.ttl) } : {}), ...(attributes.length ? { attributes } : {}) } };
  }
  if (ch.useSourceIp) return { connection_properties: { source_ip: true } };
  return undefined;
}
