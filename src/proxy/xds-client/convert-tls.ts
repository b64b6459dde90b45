// PURE: Envoy's TLS transport sockets -> what the sidecar's TLS layer (proxy/tls/) needs, for the
// shapes of the mTLS contract (Istio's automatic mTLS): UpstreamTlsContext on clusters (or in their
// transport_socket_matches), DownstreamTlsContext on listener filter chains, raw_buffer, and the
// endpoint metadata that picks a cluster's transport socket.
//
// The sidecar is its own SDS server: a context names its key and certificate 'default' and its
// roots 'ROOTCA' (as Istio's agent serves Envoy), which the sidecar resolves to its workload
// certificate (proxy/identity/workload-cert.ts). Everything else a TLS context may say is refused
// by name rather than ignored: a context the sidecar cannot honour must not silently become a
// weaker one (an ignored SAN matcher would accept any workload of the mesh).
import { TYPE } from '../../xds/types.ts';
import { fail } from './convert-util.ts';

/** TLS the sidecar originates to an endpoint (UpstreamTlsContext). Key 'default', roots 'ROOTCA'. */
export interface UpstreamTls {
  /** sni: the server name sent in the ClientHello. */
  sni?: string;
  /** common_tls_context.alpn_protocols, before the HTTP/TCP prefix the sidecar adds (tls/alpn.ts). */
  alpn: readonly string[];
  /** match_subject_alt_names, exact: the server's URI SAN must be one of them (none: any certificate of the mesh). */
  sans: readonly string[];
  /** tls_params' protocol versions, within what the sidecar speaks (1.2 and 1.3). */
  versions: TlsVersions;
  /** Tells pools apart: connections made with different contexts are never shared. */
  key: string;
}

/** TLS versions as node:tls names them; the sidecar never goes below 1.2 (the contract's minimum). */
export interface TlsVersions {
  min: 'TLSv1.2' | 'TLSv1.3';
  max: 'TLSv1.2' | 'TLSv1.3';
}

/** TLS the sidecar terminates on a filter chain (DownstreamTlsContext). Key 'default', roots 'ROOTCA'. */
export interface DownstreamTls {
  /** common_tls_context.alpn_protocols: what the server prefers of the client's offer. */
  alpn: readonly string[];
  /** require_client_certificate: the handshake fails without a certificate that chains to ROOTCA. */
  requireClientCert: boolean;
  versions: TlsVersions;
}

/** A cluster's transport_socket_matches entry: `tls` undefined means raw_buffer (plaintext). */
export interface TransportSocketMatch {
  name: string;
  match: Readonly<Record<string, string>>;
  tls?: UpstreamTls;
}

/** The one SDS config source the contract allows: the sidecar's own secrets, never a stream. */
const SECRET_CERT = 'default';
const SECRET_ROOTS = 'ROOTCA';
const TLS_SOCKET = 'envoy.transport_sockets.tls';
const RAW_SOCKET = 'envoy.transport_sockets.raw_buffer';
/** The filter_metadata key Envoy reads an endpoint's transport socket match from. */
export const TRANSPORT_SOCKET_MATCH = 'envoy.transport_socket_match';

/**
 * google.protobuf.Struct as plain JSON: the decoder hands Structs over in their message form
 * ({ fields: { k: { stringValue } } }), a hand-written resource (a test) in JSON form; both are read.
 * Only string values can match (Istio's tlsMode); others are kept as their JSON text.
 */
export function plainStruct(s: any): Record<string, string> {
  if (s == null || typeof s !== 'object') return {};
  const isMessage = s.fields && typeof s.fields === 'object' && Object.keys(s).length === 1;
  const entries: [string, any][] = Object.entries(isMessage ? s.fields : s);
  const value = (v: any): string => {
    if (!isMessage) return typeof v === 'string' ? v : JSON.stringify(v);
    if (v && typeof v === 'object' && 'stringValue' in v) return String(v.stringValue);
    if (v && typeof v === 'object' && 'string_value' in v) return String(v.string_value);
    return JSON.stringify(v);
  };
  return Object.fromEntries(entries.map(([k, v]) => [k, value(v)]));
}

/** An endpoint's metadata.filter_metadata['envoy.transport_socket_match'], as plain strings (empty: none). */
export function endpointSocketMatch(metadata: any): Record<string, string> | undefined {
  const m = metadata?.filter_metadata?.[TRANSPORT_SOCKET_MATCH];
  if (m == null) return undefined;
  const plain = plainStruct(m);
  return Object.keys(plain).length ? plain : undefined;
}

/**
 * A cluster's transport_socket (undefined: plaintext) and transport_socket_matches. Envoy's
 * transport_socket_match_criteria and per-host transport sockets other than by metadata are refused.
 */
export function clusterTransport(where: string, c: any): { transportSocket?: UpstreamTls; transportSocketMatches?: TransportSocketMatch[] } {
  if (c.transport_socket_match_criteria != null) fail(`${where}: transport_socket_match_criteria`, 'not supported (transport_socket_matches by endpoint metadata is)');
  const out: { transportSocket?: UpstreamTls; transportSocketMatches?: TransportSocketMatch[] } = {};
  if (c.transport_socket != null) {
    const t = upstreamSocket(`${where}: transport_socket`, c.transport_socket);
    if (t) out.transportSocket = t;
  }
  const matches: any[] = c.transport_socket_matches ?? [];
  if (matches.length) {
    const names = new Set<string>();
    out.transportSocketMatches = matches.map((m, i) => {
      const w = `${where}: transport_socket_matches[${i}]`;
      for (const k of Object.keys(m)) if (!['name', 'match', 'transport_socket'].includes(k)) fail(`${w}.${k}`, 'not supported');
      const name = String(m.name ?? '');
      if (!name) fail(`${w}.name`, 'required');
      if (names.has(name)) fail(`${w}.name`, `"${name}" twice`);
      names.add(name);
      if (m.transport_socket == null) fail(`${w}.transport_socket`, 'required');
      const tls = upstreamSocket(`${w}.transport_socket`, m.transport_socket);
      return { name, match: plainStruct(m.match), ...(tls ? { tls } : {}) };
    });
  }
  return out;
}

/** A transport socket on the client side: an UpstreamTlsContext, or raw_buffer (undefined). */
function upstreamSocket(where: string, ts: any): UpstreamTls | undefined {
  const type = ts.typed_config?.['@type'];
  if (type === TYPE.rawBuffer || (!type && ts.name === RAW_SOCKET)) return undefined;
  if (type !== TYPE.upstreamTls) fail(`${where}.typed_config`, `unsupported transport socket ${type ?? ts.name ?? '(none)'} (UpstreamTlsContext and RawBuffer are)`);
  if (ts.name && ts.name !== TLS_SOCKET) fail(`${where}.name`, `"${ts.name}" does not go with an UpstreamTlsContext (${TLS_SOCKET})`);
  const u = ts.typed_config;
  const w = `${where}.typed_config`;
  for (const k of Object.keys(u)) {
    if (!['@type', 'common_tls_context', 'sni', 'allow_renegotiation', 'max_session_keys'].includes(k)) fail(`${w}.${k}`, 'not supported (common_tls_context and sni are)');
  }
  // Renegotiation is off in Node's TLS 1.2 client as in Envoy's default; asked for, it cannot be had.
  if ((u.allow_renegotiation?.value ?? u.allow_renegotiation) === true) fail(`${w}.allow_renegotiation`, 'not supported');
  // max_session_keys only sizes a session cache (resumption): nothing about whom is trusted; accepted and unused.
  const sni = u.sni == null || u.sni === '' ? undefined : String(u.sni);
  if (sni !== undefined && (sni.length > 255 || !/^[\x21-\x7e]+$/.test(sni))) fail(`${w}.sni`, `"${sni}" is no server name`);
  const common = commonContext(`${w}.common_tls_context`, u.common_tls_context);
  const key = JSON.stringify([sni ?? '', common.alpn, common.sans, common.versions]);
  return { ...(sni !== undefined ? { sni } : {}), alpn: common.alpn, sans: common.sans, versions: common.versions, key };
}

/**
 * A filter chain's transport_socket on the server side: a DownstreamTlsContext (undefined for
 * raw_buffer or none). The chain needs a client certificate: a mesh server that let any client in
 * would not be mutual TLS, so require_client_certificate must be true.
 */
export function downstreamSocket(where: string, ts: any): DownstreamTls | undefined {
  if (ts == null) return undefined;
  const type = ts.typed_config?.['@type'];
  if (type === TYPE.rawBuffer || (!type && ts.name === RAW_SOCKET)) return undefined;
  if (type !== TYPE.downstreamTls) fail(`${where}.typed_config`, `unsupported transport socket ${type ?? ts.name ?? '(none)'} (DownstreamTlsContext and RawBuffer are)`);
  if (ts.name && ts.name !== TLS_SOCKET) fail(`${where}.name`, `"${ts.name}" does not go with a DownstreamTlsContext (${TLS_SOCKET})`);
  const d = ts.typed_config;
  const w = `${where}.typed_config`;
  for (const k of Object.keys(d)) {
    if (!['@type', 'common_tls_context', 'require_client_certificate', 'require_sni', 'disable_stateless_session_resumption', 'disable_stateful_session_resumption'].includes(k)) {
      fail(`${w}.${k}`, 'not supported (common_tls_context and require_client_certificate are)');
    }
  }
  if ((d.require_sni?.value ?? d.require_sni) === true) fail(`${w}.require_sni`, 'not supported');
  const require = (d.require_client_certificate?.value ?? d.require_client_certificate) === true;
  if (!require) fail(`${w}.require_client_certificate`, 'must be true: the sidecar terminates mutual TLS only');
  const common = commonContext(`${w}.common_tls_context`, d.common_tls_context);
  // A server-side SAN list would restrict which clients of the mesh may connect: that is
  // authorization's business (AuthorizationPolicy), which the contract leaves out here.
  if (common.sans.length) fail(`${w}.common_tls_context.combined_validation_context.default_validation_context.match_subject_alt_names`, 'not supported on a server-side context');
  return { alpn: common.alpn, requireClientCert: true, versions: common.versions };
}

/**
 * CommonTlsContext: alpn_protocols, the certificate by SDS 'default', the roots by SDS 'ROOTCA'
 * with match_subject_alt_names (exact) beside them, and tls_params the sidecar can meet.
 */
function commonContext(where: string, c: any): { alpn: string[]; sans: string[]; versions: TlsVersions } {
  if (c == null) fail(where, 'required (the certificate and the roots are named here)');
  for (const k of Object.keys(c)) {
    if (!['alpn_protocols', 'tls_certificate_sds_secret_configs', 'combined_validation_context', 'tls_params'].includes(k)) {
      const why = k === 'tls_certificates' ? 'inline certificates are not supported (name the secret "default" by SDS)' : k === 'validation_context' ? 'an inline validation context is not supported (combined_validation_context with the SDS secret "ROOTCA" is)' : k === 'validation_context_sds_secret_config' ? 'use combined_validation_context, with the SDS secret "ROOTCA"' : 'not supported';
      fail(`${where}.${k}`, why);
    }
  }
  const versions = tlsParams(`${where}.tls_params`, c.tls_params ?? {});
  const alpn: string[] = (c.alpn_protocols ?? []).map(String);
  for (const [i, p] of alpn.entries()) if (!p || p.length > 255) fail(`${where}.alpn_protocols[${i}]`, `"${p}" is no protocol name`);
  const certs: any[] = c.tls_certificate_sds_secret_configs ?? [];
  if (certs.length !== 1) fail(`${where}.tls_certificate_sds_secret_configs`, `exactly one secret, "${SECRET_CERT}", is supported (got ${certs.length})`);
  sdsSecret(`${where}.tls_certificate_sds_secret_configs[0]`, certs[0], SECRET_CERT);
  const cvc = c.combined_validation_context;
  if (cvc == null) fail(`${where}.combined_validation_context`, `required: peers are verified against the SDS secret "${SECRET_ROOTS}"`);
  const cw = `${where}.combined_validation_context`;
  for (const k of Object.keys(cvc)) if (k !== 'default_validation_context' && k !== 'validation_context_sds_secret_config') fail(`${cw}.${k}`, 'not supported');
  if (cvc.validation_context_sds_secret_config == null) fail(`${cw}.validation_context_sds_secret_config`, `required, the SDS secret "${SECRET_ROOTS}"`);
  sdsSecret(`${cw}.validation_context_sds_secret_config`, cvc.validation_context_sds_secret_config, SECRET_ROOTS);
  const dvc = cvc.default_validation_context ?? {};
  const dw = `${cw}.default_validation_context`;
  for (const k of Object.keys(dvc)) {
    if (k === 'trusted_ca') fail(`${dw}.trusted_ca`, `inline roots are not supported (the SDS secret "${SECRET_ROOTS}" is)`);
    if (k !== 'match_subject_alt_names') fail(`${dw}.${k}`, 'not supported (match_subject_alt_names, exact, is)');
  }
  const sans = (dvc.match_subject_alt_names ?? []).map((m: any, i: number) => {
    const mw = `${dw}.match_subject_alt_names[${i}]`;
    const keys = Object.keys(m ?? {});
    const other = keys.filter((k) => k !== 'exact' && k !== 'ignore_case');
    if (other.length) fail(`${mw}.${other[0]}`, 'only exact SAN matchers are supported');
    if ((m.ignore_case?.value ?? m.ignore_case) === true) fail(`${mw}.ignore_case`, 'not supported (SPIFFE ids are matched exactly)');
    if (typeof m.exact !== 'string' || !m.exact) fail(`${mw}.exact`, 'required');
    return m.exact as string;
  });
  return { alpn, sans, versions };
}

/** SDS by name only: the sidecar resolves 'default' and 'ROOTCA' itself; a stream to anywhere else is refused. */
function sdsSecret(where: string, s: any, expected: string): void {
  if (s?.name !== expected) fail(`${where}.name`, `the secret must be "${expected}" (the sidecar's own ${expected === SECRET_CERT ? 'workload certificate' : 'roots'}), got ${JSON.stringify(s?.name)}`);
  for (const k of Object.keys(s)) if (k !== 'name' && k !== 'sds_config') fail(`${where}.${k}`, 'not supported');
  const cfg = s.sds_config;
  if (cfg == null) return; // a bare name: the sidecar's own secret all the same
  // Istio's agent is reached over the 'sds-grpc' cluster (a UDS); the sidecar answers for it itself.
  const grpc = cfg.api_config_source?.grpc_services ?? [];
  const cluster = grpc[0]?.envoy_grpc?.cluster_name;
  const ads = cfg.ads != null;
  if (!ads && (grpc.length !== 1 || cluster !== 'sds-grpc')) fail(`${where}.sds_config`, "only the sidecar's own SDS ('sds-grpc', or ads) is supported");
}

const TLS_VERSIONS: Record<string, number> = { TLS_AUTO: 0, TLSv1_0: 10, TLSv1_1: 11, TLSv1_2: 12, TLSv1_3: 13 };

/**
 * tls_params the sidecar can meet: protocol versions within TLS 1.2-1.3 (it never speaks older;
 * a lower minimum is met by its own), applied to the connection; cipher suites, curves and
 * signature algorithms are refused, since Node cannot apply Envoy's names exactly (and a list the
 * sidecar ignored would be a policy not kept). TLS_AUTO: Envoy's defaults, 1.2 to 1.3.
 */
function tlsParams(where: string, p: any): TlsVersions {
  for (const k of Object.keys(p)) {
    if (k !== 'tls_minimum_protocol_version' && k !== 'tls_maximum_protocol_version') fail(`${where}.${k}`, 'not supported (tls_minimum_protocol_version and tls_maximum_protocol_version are)');
  }
  const min = TLS_VERSIONS[p.tls_minimum_protocol_version ?? 'TLS_AUTO'];
  const max = TLS_VERSIONS[p.tls_maximum_protocol_version ?? 'TLS_AUTO'];
  if (min === undefined) fail(`${where}.tls_minimum_protocol_version`, `unknown version ${p.tls_minimum_protocol_version}`);
  if (max === undefined) fail(`${where}.tls_maximum_protocol_version`, `unknown version ${p.tls_maximum_protocol_version}`);
  if (max !== 0 && max < 12) fail(`${where}.tls_maximum_protocol_version`, `${p.tls_maximum_protocol_version}: the sidecar speaks TLS 1.2 and 1.3 only`);
  if (min !== 0 && max !== 0 && min > max) fail(`${where}`, 'the minimum version is above the maximum');
  return { min: min === 13 ? 'TLSv1.3' : 'TLSv1.2', max: max === 12 ? 'TLSv1.2' : 'TLSv1.3' };
}

/**
 * Envoy's choice of an endpoint's transport socket: the first transport_socket_matches entry whose
 * match is a subset of the endpoint's envoy.transport_socket_match metadata, else the cluster's
 * transport_socket. undefined: plaintext.
 */
export function transportFor(cluster: { transportSocket?: UpstreamTls; transportSocketMatches?: readonly TransportSocketMatch[] }, ep: { socketMatch?: Readonly<Record<string, string>> }): UpstreamTls | undefined {
  const ms = cluster.transportSocketMatches;
  if (ms) {
    const meta = ep.socketMatch ?? {};
    for (const m of ms) {
      let ok = true;
      for (const k in m.match) if (meta[k] !== m.match[k]) ok = false;
      if (ok) return m.tls;
    }
  }
  return cluster.transportSocket;
}
