// The admin API's traces (what the built-in receiver keeps: control/traces/store.ts):
//   GET /api/v1/traces[?limit=N]   recent traces, most recently updated first: id, root service,
//                                  operation, start, duration, span count, error, services
//   GET /api/v1/traces/<traceId>   one trace's spans: ids and parent ids, service, name, kind,
//                                  start, duration, attributes
import type { TraceStore } from '../traces/store.ts';

export function tracesRoute(store: TraceStore, method: string, parts: readonly string[], query: URLSearchParams): { status: number; body: unknown } {
  if (method !== 'GET') return { status: 405, body: { error: `${method} /api/v1/traces: the traces are read with GET` } };
  if (parts.length === 3) {
    const limit = Number(query.get('limit') ?? 100);
    if (!Number.isInteger(limit) || limit < 1) return { status: 400, body: { error: `limit must be a positive integer (got ${query.get('limit')})` } };
    return { status: 200, body: { ...store.stats(), items: store.list(limit) } };
  }
  const id = parts[3]!;
  if (parts.length !== 4 || !/^[0-9a-fA-F]{32}$/.test(id)) return { status: 404, body: { error: `no such admin endpoint: GET /api/v1/${parts.slice(2).join('/')} (a trace id is 32 hex digits)` } };
  const t = store.get(id);
  if (!t) return { status: 404, body: { error: `trace ${id} is not among the recent traces the control plane keeps (${store.stats().traces})` } };
  return { status: 200, body: t };
}
