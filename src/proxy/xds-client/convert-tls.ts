// PURE: Envoy's TLS transport sockets -> what the sidecar's TLS layer (proxy/tls/) needs, for the
// shapes of the mTLS contract (Istio's automatic mTLS): UpstreamTlsContext on clusters (or in their
// transport_socket_matches), DownstreamTlsContext on listener filter chains, raw_buffer, and the
// endpoint metadata that picks a cluster's transport socket.
//
// The sidecar is its own SDS server: a context names its key and certificate 'default' and its
// roots 'ROOTCA' (as Istio's agent serves Envoy), which the sidecar resolves to its workload
// certificate (proxy/identity/workload-cert.ts). TLS origination (a DestinationRule's SIMPLE or
// MUTUAL) names files instead, as Istio's agent serves them: 'file-cert:<cert>~<key>' and
// 'file-root:<ca>' ('file-root:system': the default roots), or Envoy's filename data sources; the
// sidecar reads them (tls/origination.ts). Everything else a TLS context may say is refused
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
  /** TLS origination: the files the sidecar reads (tls/origination.ts); absent: the mesh's 'default' and 'ROOTCA'. */
  files?: OriginationFiles;
  /** The cluster's metadata istio.alpn_override is "false": the mesh's ALPN (istio-http/1.1, ...) is not offered (Istio's alpn filter). */
  noAlpnOverride?: boolean;
}

/** The files of TLS origination, as paths the sidecar reads. */
export interface OriginationFiles {
  /** The client's certificate chain and key (MUTUAL); none: no client certificate. */
  cert?: { certFile: string; keyFile: string };
  /** The roots the server's certificate must chain to: a file, the default roots ('system'), or 'none' (not verified: insecureSkipVerify). */
  roots: { caFile: string } | 'system' | 'none';
  /** default_validation_context.crl: a certificate it revokes is refused. */
  crlFile?: string;
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
  // Istio's AddALPNOverrideToMetadata: TLS of the user's own (SIMPLE, MUTUAL) keeps its ALPN.
  const noOverride = plainStruct(c.metadata?.filter_metadata?.istio).alpn_override === 'false';
  const upstreamSocket = (w: string, ts: any) => {
    const t = upstreamTlsOf(w, ts);
    return t && noOverride ? { ...t, noAlpnOverride: true } : t;
  };
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
function upstreamTlsOf(where: string, ts: any): UpstreamTls | undefined {
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
  const common = commonContext(`${w}.common_tls_context`, u.common_tls_context, true);
  const key = JSON.stringify([sni ?? '', common.alpn, common.sans, common.versions, common.files ?? null]);
  return { ...(sni !== undefined ? { sni } : {}), alpn: common.alpn, sans: common.sans, versions: common.versions, key, ...(common.files ? { files: common.files } : {}) };
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
  const common = commonContext(`${w}.common_tls_context`, d.common_tls_context, false);
  // A server-side SAN list would restrict which clients of the mesh may connect: that is
  // authorization's business (AuthorizationPolicy), which the contract leaves out here.
  if (common.sans.length) fail(`${w}.common_tls_context.combined_validation_context.default_validation_context.match_subject_alt_names`, 'not supported on a server-side context');
  return { alpn: common.alpn, requireClientCert: true, versions: common.versions };
}

/**
 * CommonTlsContext: alpn_protocols, tls_params the sidecar can meet, and either the mesh's secrets
 * (the certificate by SDS 'default', the roots by SDS 'ROOTCA', match_subject_alt_names exact) or,
 * on the client side only (`upstream`), TLS origination's files (originationSecrets).
 */
function commonContext(where: string, c: any, upstream: boolean): { alpn: string[]; sans: string[]; versions: TlsVersions; files?: OriginationFiles } {
  if (c == null) fail(where, 'required (the certificate and the roots are named here)');
  for (const k of Object.keys(c)) {
    if (!['alpn_protocols', 'tls_certificate_sds_secret_configs', 'combined_validation_context', 'tls_params', ...(upstream ? ['tls_certificates', 'validation_context'] : [])].includes(k)) {
      const why = k === 'tls_certificates' ? 'inline certificates are not supported (name the secret "default" by SDS)' : k === 'validation_context' ? 'an inline validation context is not supported (combined_validation_context with the SDS secret "ROOTCA" is)' : k === 'validation_context_sds_secret_config' ? 'use combined_validation_context, with the SDS secret "ROOTCA"' : 'not supported';
      fail(`${where}.${k}`, why);
    }
  }
  const versions = tlsParams(`${where}.tls_params`, c.tls_params ?? {});
  const alpn: string[] = (c.alpn_protocols ?? []).map(String);
  for (const [i, p] of alpn.entries()) if (!p || p.length > 255) fail(`${where}.alpn_protocols[${i}]`, `"${p}" is no protocol name`);
  if (upstream && isOrigination(c)) return { alpn, versions, ...originationSecrets(where, c) };
  if (c.tls_certificates != null) fail(`${where}.tls_certificates`, 'inline certificates do not go with the mesh\'s secrets (name the secret "default" by SDS)');
  if (c.validation_context != null) fail(`${where}.validation_context`, 'an inline validation context does not go with the mesh\'s secrets (combined_validation_context with the SDS secret "ROOTCA" does)');
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
  return { alpn, sans: exactSans(`${dw}.match_subject_alt_names`, dvc.match_subject_alt_names), versions };
}

/** match_subject_alt_names: exact matchers only. */
function exactSans(where: string, list: any): string[] {
  return (list ?? []).map((m: any, i: number) => {
    const mw = `${where}[${i}]`;
    const keys = Object.keys(m ?? {});
    const other = keys.filter((k) => k !== 'exact' && k !== 'ignore_case');
    if (other.length) fail(`${mw}.${other[0]}`, 'only exact SAN matchers are supported');
    if ((m.ignore_case?.value ?? m.ignore_case) === true) fail(`${mw}.ignore_case`, 'not supported (SANs are matched exactly)');
    if (typeof m.exact !== 'string' || !m.exact) fail(`${mw}.exact`, 'required');
    return m.exact as string;
  });
}

/** Istio's SDS names for files (security.SdsCertificateConfig): what its agent reads for Envoy, and Weft's sidecar itself. */
const FILE_CERT = 'file-cert:';
const FILE_ROOT = 'file-root:';

/** A context that names no mesh secret: TLS origination (files, or no verification at all). */
function isOrigination(c: any): boolean {
  const names = [...(c.tls_certificate_sds_secret_configs ?? []).map((s: any) => s?.name), c.combined_validation_context?.validation_context_sds_secret_config?.name];
  return !names.includes(SECRET_CERT) && !names.includes(SECRET_ROOTS);
}

/**
 * TLS origination's secrets, as Istio's constructUpstreamTLS names them: the client certificate
 * by SDS 'file-cert:<cert>~<key>' (or tls_certificates with filename data sources), none for
 * SIMPLE; the roots by SDS 'file-root:<ca>' ('file-root:system': the default roots) with
 * match_subject_alt_names and crl beside them (or validation_context with trusted_ca); an empty
 * validation_context: the server is not verified (insecureSkipVerify).
 */
function originationSecrets(where: string, c: any): { sans: string[]; files: OriginationFiles } {
  const sdsCerts: any[] = c.tls_certificate_sds_secret_configs ?? [];
  const inline: any[] = c.tls_certificates ?? [];
  if (sdsCerts.length + inline.length > 1) fail(where, 'at most one client certificate is supported');
  let cert: OriginationFiles['cert'];
  if (sdsCerts.length) {
    const w = `${where}.tls_certificate_sds_secret_configs[0]`;
    const name = String(sdsCerts[0]?.name ?? '');
    sdsSource(w, sdsCerts[0]);
    const m = name.startsWith(FILE_CERT) ? /^([^~]+)~([^~]+)$/.exec(name.slice(FILE_CERT.length)) : null;
    if (!m) fail(`${w}.name`, `"${name}" is no secret this sidecar has: "${SECRET_CERT}" (with "${SECRET_ROOTS}") or "${FILE_CERT}<certificate file>~<key file>"`);
    cert = { certFile: m[1]!, keyFile: m[2]! };
  } else if (inline.length) {
    const w = `${where}.tls_certificates[0]`;
    for (const k of Object.keys(inline[0] ?? {})) if (k !== 'certificate_chain' && k !== 'private_key') fail(`${w}.${k}`, 'not supported (certificate_chain and private_key, as filenames, are)');
    cert = { certFile: filename(`${w}.certificate_chain`, inline[0].certificate_chain), keyFile: filename(`${w}.private_key`, inline[0].private_key) };
  }
  const cvc = c.combined_validation_context;
  const vc = c.validation_context;
  if ((cvc == null) === (vc == null)) fail(where, 'needs one of combined_validation_context and validation_context (an empty one: the server is not verified)');
  let dvc: any;
  let dw: string;
  let roots: OriginationFiles['roots'];
  if (cvc != null) {
    const cw = `${where}.combined_validation_context`;
    for (const k of Object.keys(cvc)) if (k !== 'default_validation_context' && k !== 'validation_context_sds_secret_config') fail(`${cw}.${k}`, 'not supported');
    const sw = `${cw}.validation_context_sds_secret_config`;
    const name = String(cvc.validation_context_sds_secret_config?.name ?? '');
    if (!name.startsWith(FILE_ROOT) || name.length === FILE_ROOT.length) fail(`${sw}.name`, `"${name}" is no secret this sidecar has: "${SECRET_ROOTS}" (with "${SECRET_CERT}") or "${FILE_ROOT}<CA file>" ("${FILE_ROOT}system": the default roots)`);
    sdsSource(sw, cvc.validation_context_sds_secret_config);
    const path = name.slice(FILE_ROOT.length);
    roots = path === 'system' ? 'system' : { caFile: path };
    dvc = cvc.default_validation_context ?? {};
    dw = `${cw}.default_validation_context`;
    if (dvc.trusted_ca != null) fail(`${dw}.trusted_ca`, 'the roots are the SDS secret beside it');
  } else {
    dvc = vc;
    dw = `${where}.validation_context`;
    roots = vc.trusted_ca == null ? 'none' : { caFile: filename(`${dw}.trusted_ca`, vc.trusted_ca) };
  }
  for (const k of Object.keys(dvc)) if (!['match_subject_alt_names', 'crl', 'trusted_ca'].includes(k)) fail(`${dw}.${k}`, 'not supported (trusted_ca, match_subject_alt_names, exact, and crl are)');
  const sans = exactSans(`${dw}.match_subject_alt_names`, dvc.match_subject_alt_names);
  if (roots === 'none' && (sans.length || dvc.crl != null)) fail(dw, 'subject alt names and a CRL need roots to verify the server against (trusted_ca)');
  const crlFile = dvc.crl == null ? undefined : filename(`${dw}.crl`, dvc.crl);
  return { sans, files: { ...(cert ? { cert } : {}), roots, ...(crlFile ? { crlFile } : {}) } };
}

/** A DataSource the sidecar reads: a filename only (inline bytes and environment variables are not supported). */
function filename(where: string, d: any): string {
  const keys = Object.keys(d ?? {}).filter((k) => d[k] != null && d[k] !== '');
  if (keys.length !== 1 || keys[0] !== 'filename' || typeof d.filename !== 'string') fail(where, 'only a filename data source is supported');
  return d.filename;
}

/** A file secret's SDS source: the sidecar's own ('sds-grpc' or ads), which it answers by reading the file. */
function sdsSource(where: string, s: any): void {
  for (const k of Object.keys(s)) if (k !== 'name' && k !== 'sds_config') fail(`${where}.${k}`, 'not supported');
  const cfg = s.sds_config;
  if (cfg == null || cfg.ads != null) return;
  const grpc = cfg.api_config_source?.grpc_services ?? [];
  if (grpc.length !== 1 || grpc[0]?.envoy_grpc?.cluster_name !== 'sds-grpc') fail(`${where}.sds_config`, "only the sidecar's own SDS ('sds-grpc', or ads) is supported");
}

/** SDS by name only: the sidecar resolves 'default' and 'ROOTCA' itself; a stream to anywhere else is refused. */
function sdsSecret(where: string, s: any, expected: string): void {
  if (s?.name !== expected) fail(`${where}.name`, `the secret must be "${expected}" (the sidecar's own ${expected === SECRET_CERT ? 'workload certificate' : 'roots'}), got ${JSON.stringify(s?.name)}`);
  sdsSource(where, s);
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
