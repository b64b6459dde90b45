// PURE: the mesh config's access log (MeshConfig accessLogFile, accessLogEncoding,
// accessLogFormat) as Envoy's access_log of every HttpConnectionManager and tcp_proxy of a sidecar,
// inbound and outbound, as Istio's pilot emits it (pilot/pkg/networking/core/accesslog.go and
// model.FileAccessLogFromMeshConfig): one envoy.access_loggers.file logger writing to the file,
// with Istio's default TEXT format string, a given format string (a newline added where missing),
// or for JSON Istio's default keys or the given JSON object. Where a Telemetry (or the mesh config's
// defaultProviders) configures access logging, it decides instead (telemetry-logs.ts).
import type { MeshConfig } from '../../api/meshconfig.ts';
import { TYPE } from '../../xds/types.ts';

export const FILE_ACCESS_LOG = 'envoy.access_loggers.file';

/** Istio's default TEXT format (model.EnvoyTextLogFormat, Istio 1.9 onwards). */
export const ISTIO_TEXT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% ' +
  '%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% ' +
  '%DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" ' +
  '"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% ' +
  '%DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

/** Istio's default JSON keys (model.EnvoyJSONLogFormatIstio). */
export const ISTIO_JSON_FORMAT: Readonly<Record<string, string>> = Object.freeze({
  start_time: '%START_TIME%',
  route_name: '%ROUTE_NAME%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  protocol: '%PROTOCOL%',
  response_code: '%RESPONSE_CODE%',
  response_flags: '%RESPONSE_FLAGS%',
  response_code_details: '%RESPONSE_CODE_DETAILS%',
  connection_termination_details: '%CONNECTION_TERMINATION_DETAILS%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  duration: '%DURATION%',
  upstream_service_time: '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%',
  x_forwarded_for: '%REQ(X-FORWARDED-FOR)%',
  user_agent: '%REQ(USER-AGENT)%',
  request_id: '%REQ(X-REQUEST-ID)%',
  authority: '%REQ(:AUTHORITY)%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_cluster: '%UPSTREAM_CLUSTER_RAW%',
  upstream_local_address: '%UPSTREAM_LOCAL_ADDRESS%',
  downstream_local_address: '%DOWNSTREAM_LOCAL_ADDRESS%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%',
  requested_server_name: '%REQUESTED_SERVER_NAME%',
  upstream_transport_failure_reason: '%UPSTREAM_TRANSPORT_FAILURE_REASON%',
});

/**
 * The access_log list every HCM and tcp_proxy of a sidecar gets from the mesh config; undefined
 * when accessLogFile is unset or "" (no access log, Istio's default).
 */
export function accessLogsOf(mc: MeshConfig | undefined): object[] | undefined {
  const path = mc?.accessLogFile;
  if (!path) return undefined;
  return [meshFileLog(path, mc)];
}

/** Istio's FileAccessLogFromMeshConfig: a file logger to `path` in the mesh config's encoding and format. */
export function meshFileLog(path: string, mc: MeshConfig | undefined): object {
  const json = mc?.accessLogEncoding === 'JSON';
  return fileLog(path, json ? { json: jsonFormatOf(mc?.accessLogFormat) } : { text: mc?.accessLogFormat });
}

/** A file logger with a text format (Istio's default when none or "", a newline added where missing) or JSON keys. */
export function fileLog(path: string, format: { text?: string; json?: Record<string, unknown> }): object {
  if (format.json) return { name: FILE_ACCESS_LOG, typed_config: { '@type': TYPE.fileAccessLog, path, log_format: { json_format: format.json, json_format_options: { sort_properties: false } } } };
  const f = format.text;
  const text = !f ? ISTIO_TEXT_FORMAT : f.endsWith('\n') ? f : `${f}\n`; // "Istio will insert a newline on all formats (if missing)"
  return { name: FILE_ACCESS_LOG, typed_config: { '@type': TYPE.fileAccessLog, path, log_format: { text_format_source: { inline_string: text } } } };
}

/**
 * The JSON keys: accessLogFormat parsed as a JSON object, else Istio's defaults (as Istio falls back
 * when the format does not parse; `weft apply` refuses such a mesh config: api/accesslog-format.ts).
 */
function jsonFormatOf(format: string | undefined): Record<string, unknown> {
  if (!format) return { ...ISTIO_JSON_FORMAT };
  const parsed = parseJsonObject(format);
  return parsed && Object.keys(parsed).length ? parsed : { ...ISTIO_JSON_FORMAT };
}

function parseJsonObject(s: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(s);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
