// PURE: the access_log of an HttpConnectionManager or a tcp_proxy (Envoy's
// envoy.config.accesslog.v3.AccessLog) -> the sidecar's access log config: the file logger
// (envoy.access_loggers.file) with a text_format_source or json_format, its format compiled
// (telemetry/format.ts), and its CEL filter compiled (telemetry/cel-filter.ts). Anything else (other
// loggers, other filters, formatters, typed JSON) is refused, naming the field, rather than logged
// otherwise than asked.
import { TYPE } from '../../xds/types.ts';
import { type CompiledFormat, FormatError, compileJson, compileText } from '../telemetry/format.ts';
import { fail } from './convert-util.ts';
import { CelFilterError, compileCelFilter, type CelFilter } from '../telemetry/cel-filter.ts';

const CEL_FILTER_NAME = 'envoy.access_loggers.extension_filters.cel';

export interface AccessLogConfig {
  /** The file ("/dev/stdout" for standard output). */
  path: string;
  format: CompiledFormat;
  /** Envoy's CEL filter: only the exchanges it is true of are logged. */
  filter?: CelFilter;
}

/** The filter of an access log: Envoy's CEL expression filter, the one Istio's Telemetry makes; others are refused. */
function celFilter(where: string, f: any): CelFilter {
  const ext = f.extension_filter;
  const tc = ext?.typed_config;
  if (!ext || Object.keys(f).length !== 1) fail(where, `only the CEL extension filter (${CEL_FILTER_NAME}) is supported`);
  if (tc?.['@type'] !== TYPE.celAccessLogFilter) fail(`${where}.extension_filter.typed_config`, `unsupported access log filter ${tc?.['@type'] ?? ext.name ?? '(none)'} (${TYPE.celAccessLogFilter} is supported)`);
  for (const k of Object.keys(tc)) if (k !== '@type' && k !== 'expression') fail(`${where}.extension_filter.typed_config.${k}`, 'not supported');
  if (typeof tc.expression !== 'string') fail(`${where}.extension_filter.typed_config.expression`, 'required');
  try {
    return compileCelFilter(tc.expression);
  } catch (e) {
    if (e instanceof CelFilterError) fail(`${where}.extension_filter.typed_config.expression`, `${JSON.stringify(tc.expression)} ${e.message}`);
    throw e;
  }
}

/** Envoy's default format when a file logger names none. */
const ENVOY_DEFAULT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n';

const FILE_FIELDS = new Set(['@type', 'path', 'log_format', 'format', 'json_format']);
const FORMAT_FIELDS = new Set(['text_format_source', 'text_format', 'json_format', 'json_format_options', 'content_type']);

/** The access_log list of a filter's typed_config (`where` names it); undefined when it has none. */
export function accessLogs(where: string, list: unknown): readonly AccessLogConfig[] | undefined {
  if (list == null) return undefined;
  if (!Array.isArray(list)) fail(`${where}.access_log`, 'must be a list');
  if (!list.length) return undefined;
  return Object.freeze(list.map((a, i) => accessLog(`${where}.access_log[${i}]`, a)));
}

function accessLog(where: string, a: any): AccessLogConfig {
  const filter = a?.filter ? celFilter(`${where}.filter`, a.filter) : undefined;
  const tc = a?.typed_config;
  if (tc?.['@type'] !== TYPE.fileAccessLog) fail(`${where}.typed_config`, `unsupported access logger ${tc?.['@type'] ?? a?.name ?? '(none)'} (envoy.access_loggers.file is supported)`);
  for (const k of Object.keys(tc)) if (!FILE_FIELDS.has(k)) fail(`${where}.typed_config.${k}`, 'not supported');
  const path = tc.path;
  if (typeof path !== 'string' || !path) fail(`${where}.typed_config.path`, 'required');
  try {
    return { path, format: formatOf(`${where}.typed_config`, tc), ...(filter ? { filter } : {}) };
  } catch (e) {
    if (e instanceof FormatError) fail(where, e.message);
    throw e;
  }
}

function formatOf(where: string, tc: any): CompiledFormat {
  if (tc.format != null) return { kind: 'text', parts: compileText(String(tc.format), `${where}.format`) };
  if (tc.json_format != null) return { kind: 'json', fields: compileJson(tc.json_format, `${where}.json_format`) };
  const lf = tc.log_format;
  if (lf == null) return { kind: 'text', parts: compileText(ENVOY_DEFAULT_FORMAT, 'the default format') };
  for (const k of Object.keys(lf)) if (!FORMAT_FIELDS.has(k)) fail(`${where}.log_format.${k}`, 'not supported (text_format_source inline_string and json_format are)');
  const opts = lf.json_format_options;
  if (opts && (opts.sort_properties?.value ?? opts.sort_properties) === true) fail(`${where}.log_format.json_format_options.sort_properties`, 'not supported (keys are written in the order given)');
  if (lf.json_format != null) {
    if (typeof lf.json_format !== 'object' || Array.isArray(lf.json_format)) fail(`${where}.log_format.json_format`, 'must be an object');
    return { kind: 'json', fields: compileJson(lf.json_format, `${where}.log_format.json_format`) };
  }
  if (lf.text_format != null) return { kind: 'text', parts: compileText(String(lf.text_format), `${where}.log_format.text_format`) };
  const src = lf.text_format_source;
  if (src == null) fail(`${where}.log_format`, 'needs text_format_source or json_format');
  if (typeof src.inline_string !== 'string') fail(`${where}.log_format.text_format_source`, 'only inline_string is supported');
  return { kind: 'text', parts: compileText(src.inline_string, `${where}.log_format.text_format_source.inline_string`) };
}
