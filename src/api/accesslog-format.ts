// The access log format strings Weft's sidecars can write (meshConfig accessLogFormat), checked
// when the mesh config is applied: an Envoy command operator the sidecars do not implement would
// make every sidecar refuse its listeners (Envoy NACKs it too), so the ConfigMap is refused instead,
// naming the operator. The sidecar's own compiler (src/proxy/telemetry/format.ts) implements
// exactly these (a test holds the two lists equal).

/** Operators without an argument. */
export const ACCESS_LOG_OPERATORS: readonly string[] = [
  'START_TIME',
  'PROTOCOL',
  'RESPONSE_CODE',
  'RESPONSE_FLAGS',
  'RESPONSE_CODE_DETAILS',
  'CONNECTION_TERMINATION_DETAILS',
  'UPSTREAM_TRANSPORT_FAILURE_REASON',
  'BYTES_RECEIVED',
  'BYTES_SENT',
  'DURATION',
  'UPSTREAM_HOST',
  'UPSTREAM_CLUSTER',
  'UPSTREAM_CLUSTER_RAW',
  'UPSTREAM_LOCAL_ADDRESS',
  'UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT',
  'DOWNSTREAM_LOCAL_ADDRESS',
  'DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT',
  'DOWNSTREAM_REMOTE_ADDRESS',
  'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT',
  'REQUESTED_SERVER_NAME',
  'ROUTE_NAME',
  'DOWNSTREAM_PEER_URI_SAN',
  'DOWNSTREAM_LOCAL_URI_SAN',
  'UPSTREAM_PEER_URI_SAN',
];

/** Operators that take an argument: REQ(header?alt), RESP(header?alt), DYNAMIC_METADATA(namespace:key...). */
export const ACCESS_LOG_ARG_OPERATORS: readonly string[] = ['REQ', 'RESP', 'DYNAMIC_METADATA'];

/** What is wrong with a format string (the first problem), or undefined. */
export function accessLogFormatProblem(format: string): string | undefined {
  for (let i = 0; i < format.length; i++) {
    if (format[i] !== '%') continue;
    if (format[i + 1] === '%') {
      i++;
      continue;
    }
    const end = format.indexOf('%', i + 1);
    if (end < 0) return `unterminated command operator at character ${i}`;
    const token = format.slice(i + 1, end);
    const m = /^([A-Z_]+)(?:\(([^)]*)\))?(?::\d+)?$/.exec(token);
    const name = m?.[1] ?? token;
    const arg = m?.[2];
    if (!m || !(ACCESS_LOG_OPERATORS.includes(name) ? arg === undefined : ACCESS_LOG_ARG_OPERATORS.includes(name) && !!arg)) {
      return `command operator %${token}% is not supported by Weft's sidecars (supported: ${[...ACCESS_LOG_OPERATORS, ...ACCESS_LOG_ARG_OPERATORS.map((o) => `${o}(...)`)].join(', ')})`;
    }
    i = end;
  }
  return undefined;
}

/** The mesh config's access log settings' problem, naming the field, or undefined. */
export function accessLogProblem(mesh: { accessLogEncoding?: unknown; accessLogFormat?: unknown }): { path: string; message: string } | undefined {
  const f = mesh.accessLogFormat;
  if (typeof f !== 'string' || f === '') return undefined;
  if (mesh.accessLogEncoding === 'JSON') {
    let o: unknown;
    try {
      o = JSON.parse(f);
    } catch (e) {
      return { path: 'accessLogFormat', message: `with accessLogEncoding JSON it must be a JSON object of keys and format strings: ${(e as Error).message}` };
    }
    if (o === null || typeof o !== 'object' || Array.isArray(o)) return { path: 'accessLogFormat', message: 'with accessLogEncoding JSON it must be a JSON object of keys and format strings' };
    const walk = (x: Record<string, unknown>, at: string): { path: string; message: string } | undefined => {
      for (const [k, v] of Object.entries(x)) {
        if (typeof v === 'string') {
          const p = accessLogFormatProblem(v);
          if (p) return { path: 'accessLogFormat', message: `key ${at}${k}: ${p}` };
        } else if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
          const p = walk(v as Record<string, unknown>, `${at}${k}.`);
          if (p) return p;
        } else if (Array.isArray(v)) return { path: 'accessLogFormat', message: `key ${at}${k}: lists are not supported` };
      }
      return undefined;
    };
    return walk(o as Record<string, unknown>, '');
  }
  const p = accessLogFormatProblem(f);
  return p ? { path: 'accessLogFormat', message: p } : undefined;
}
