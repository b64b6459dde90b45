// Generates src/xds/envoy-protos.json: the Envoy xDS types Weft uses, and only the types they
// reach, as a protobufjs JSON descriptor. Loading that with protobufjs/light costs a fraction of
// the memory of parsing the .proto files (no parser, and none of the thousands of types that only
// travel inside `Any`). test/xds/protos.test.ts checks that the committed file is up to date.
//   node src/xds/gen-protos.ts > src/xds/envoy-protos.json
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);

const FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/path/match/uri_template/v3/uri_template_match.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/network/ext_authz/v3/ext_authz.proto',
  'envoy/service/auth/v3/external_auth.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/config/trace/v3/opentelemetry.proto',
  'envoy/extensions/request_id/uuid/v3/uuid.proto',
  'envoy/extensions/access_loggers/filters/cel/v3/cel.proto',
  'udpa/type/v1/typed_struct.proto',
  'xds/type/v3/typed_struct.proto',
];

/** The messages Weft encodes or decodes by name; everything they reference comes along. */
export const ROOTS = [
  // Istio's stats filter (istio.stats, translate/telemetry-metrics.ts): its config is a TypedStruct.
  'udpa.type.v1.TypedStruct',
  'xds.type.v3.TypedStruct',
  'envoy.service.discovery.v3.DiscoveryRequest',
  'envoy.service.discovery.v3.DiscoveryResponse',
  'envoy.config.listener.v3.Listener',
  'envoy.config.route.v3.RouteConfiguration',
  'envoy.config.cluster.v3.Cluster',
  'envoy.config.endpoint.v3.ClusterLoadAssignment',
  'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  'envoy.extensions.filters.http.router.v3.Router',
  'envoy.extensions.filters.http.fault.v3.HTTPFault',
  'envoy.extensions.filters.http.cors.v3.Cors',
  'envoy.extensions.filters.http.cors.v3.CorsPolicy',
  'envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit',
  // RequestAuthentication: Envoy's JWT filter (translate/jwt.ts, proxy/http/jwt.ts).
  'envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication',
  'envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
  'envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig',
  'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  'envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
  'envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  // Transport sockets (automatic mTLS): clusters' transport_socket_matches, inbound mTLS chains.
  'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  'envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer',
  // SDS over ADS: the mesh roots (ROOTCA), which the control plane pushes to every sidecar (ca/).
  'envoy.extensions.transport_sockets.tls.v3.Secret',
  // AuthorizationPolicy (translate/authz.ts): the RBAC filters, and the URI template a path
  // template ({*}, {**}) becomes (it travels inside an Any of the permission's url_path).
  'envoy.extensions.filters.http.rbac.v3.RBAC',
  'envoy.extensions.filters.http.rbac.v3.RBACPerRoute',
  'envoy.extensions.filters.network.rbac.v3.RBAC',
  'envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig',
  // CUSTOM AuthorizationPolicy (translate/authz-extauthz.ts): the ext_authz filters, and the
  // Authorization service's messages the sidecar sends and reads (proxy/http/ext-authz-grpc.ts).
  'envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
  'envoy.extensions.filters.network.ext_authz.v3.ExtAuthz',
  'envoy.service.auth.v3.CheckRequest',
  'envoy.service.auth.v3.CheckResponse',
  // The mesh config's access log (translate/accesslog.ts): the access_log of HCMs and tcp_proxies.
  'envoy.extensions.access_loggers.file.v3.FileAccessLog',
  // Tracing (translate/tracing.ts): the HCM's tracing provider, Envoy's OpenTelemetry tracer.
  'envoy.config.trace.v3.OpenTelemetryConfig',
  // Istio's TCP metadata exchange (translate/peer-metadata.ts): inbound TCP chains' and clusters' filter.
  'envoy.tcp.metadataexchange.config.MetadataExchange',
  // Telemetry useRequestIdForTraceSampling (translate/tracing.ts): the HCM's request_id_extension.
  'envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig',
  // A Telemetry's access log filter (translate/accesslog.ts): Envoy's CEL access log filter.
  'envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter',
];

export function loadFullRoot(): protobuf.Root {
  const deps = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
  const includeDirs = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(deps, d));
  const pbDir = path.dirname(require.resolve('protobufjs/package.json'));
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string => {
    if (path.isAbsolute(target)) return target;
    for (const dir of [...includeDirs, pbDir]) {
      const full = path.join(dir, target);
      if (fs.existsSync(full)) return full;
    }
    return target;
  };
  root.loadSync(FILES, { keepCase: true });
  // Fields newer than the envoy-api grpc-js-xds vendors, as Envoy's own proto numbers them.
  const tracing = root.lookupType('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.Tracing');
  if (!tracing.fields.no_context_propagation) tracing.add(new protobuf.Field('no_context_propagation', 13, 'bool'));
  // Istio's TCP metadata exchange filter config (istio/proxy's
  // source/extensions/filters/network/metadata_exchange/config/metadata_exchange.proto), which no
  // vendored proto holds: the protocol its ALPN negotiates, and its workload discovery switch.
  protobuf.parse('syntax = "proto3"; package envoy.tcp.metadataexchange.config; message MetadataExchange { string protocol = 1; bool enable_discovery = 2; }', root, { keepCase: true });
  root.resolveAll();
  return root;
}

/** The JSON descriptor of ROOTS and every type they reach (fields, map values, nested types). */
export function prunedDescriptor(root: protobuf.Root): object {
  const keep = new Set<string>();
  const visit = (t: protobuf.ReflectionObject | null) => {
    if (!t || keep.has(t.fullName)) return;
    keep.add(t.fullName);
    // A nested type is emitted inside its parent, so the parent type must be kept too.
    if (t.parent instanceof protobuf.Type) visit(t.parent);
    if (t instanceof protobuf.Type) {
      for (const f of t.fieldsArray) visit(f.resolve().resolvedType);
      for (const n of t.nestedArray) if (n instanceof protobuf.Enum) visit(n);
    }
  };
  for (const name of [...ROOTS, 'google.protobuf.Any', 'google.protobuf.Struct', 'google.protobuf.Value', 'google.protobuf.ListValue']) visit(root.lookup(name));
  // Keep a namespace if it holds something kept; keep a type if it is kept (its own nested types
  // that are not reached are dropped).
  const prune = (obj: protobuf.NamespaceBase): Record<string, unknown> | undefined => {
    const nested: Record<string, unknown> = {};
    for (const child of obj.nestedArray) {
      if (child instanceof protobuf.Type || child instanceof protobuf.Enum) {
        if (!keep.has(child.fullName)) continue;
        const j = child.toJSON() as unknown as Record<string, unknown>;
        if (child instanceof protobuf.Type) {
          const inner = prune(child);
          if (inner) j.nested = inner;
          else delete j.nested;
          delete j.options;
          for (const f of Object.values((j.fields ?? {}) as Record<string, Record<string, unknown>>)) delete f.options;
        }
        nested[child.name] = j;
      } else if (child instanceof protobuf.Namespace) {
        const inner = prune(child);
        if (inner) nested[child.name] = { nested: inner };
      }
    }
    return Object.keys(nested).length ? nested : undefined;
  };
  return { nested: prune(root) };
}

if (import.meta.main) process.stdout.write(JSON.stringify(prunedDescriptor(loadFullRoot())) + '\n');
