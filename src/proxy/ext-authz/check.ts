// Envoy's ext_authz check, for the HTTP layer (http/ext-authz.ts) and for TCP connections
// (tcp/authz.ts): what is sent to the authorizer, and what its answer means.
//   - HTTP service: a request with the client's method and path (after path_prefix), the headers
//     always sent (:authority as Host, :method, :path, Content-Length, Authorization) and those
//     allowed_headers matches, the headers_to_add, and the body when with_request_body asks for
//     it (Content-Length 0 otherwise). 200 allows (allowed_upstream_headers of the answer go to
//     the upstream request, allowed_client_headers_on_success to the client's response); any other
//     status denies with that status, the answer's body and its allowed_client_headers (all but
//     Host and the framing headers when unset).
//   - gRPC service: envoy.service.auth.v3.Authorization/Check with a CheckRequest (source and
//     destination addresses and principals; for HTTP the request's method, path, host, headers,
//     protocol and body). status OK allows, with ok_response's header mutations; any other denies
//     with denied_response's status (403 when unset), headers and body.
//   - No answer (the authorizer down, refusing, or past the timeout): failure_mode_allow lets the
//     request through, else status_on_error (403) with no body.
import { protoRoot } from '../../xds/protos.ts';
import type { ExtAuthzConfig } from '../xds-client/convert.ts';
import type { HeaderList } from '../http/types.ts';
import { type ClusterCall, type ClusterCallContext, type Reply, callCluster } from './call.ts';

/** What the check says of the request or connection. */
export interface CheckRequestInput {
  source: { address: string; port: number; principal?: string };
  destination: { address: string; port: number; principal?: string };
  /** HTTP only. */
  http?: {
    method: string;
    /** Path and query, as the client sent them. */
    path: string;
    authority: string;
    /** End-to-end headers, lower-case names. */
    headers: HeaderList;
    /** "HTTP/1.1", "HTTP/2". */
    protocol: string;
    scheme: string;
    /** The body read for the check (with_request_body), if any. */
    body?: Buffer;
    /** The body's declared length, when known. */
    size?: number;
  };
}

export type CheckOutcome =
  | {
      kind: 'allow';
      /** Header edits for the request the app gets: set (replacing), appended, added where absent, replaced where present, removed. */
      upstreamSet: HeaderList;
      upstreamAppend: HeaderList;
      upstreamAddIfAbsent?: HeaderList;
      upstreamOverwriteIfExists?: HeaderList;
      upstreamRemove: string[];
      clientHeaders: HeaderList;
    }
  | { kind: 'deny'; status: number; headers: HeaderList; body: string; reason: string }
  | { kind: 'error'; reason: string };

export interface RunningCheck {
  readonly outcome: Promise<CheckOutcome>;
  abort(): void;
}

/** Sends the check; the outcome never rejects (a failure, even an answer that cannot be read, is an 'error' outcome). */
export function check(ctx: ClusterCallContext, c: ExtAuthzConfig, input: CheckRequestInput): RunningCheck {
  const failed = (e: unknown): CheckOutcome => ({ kind: 'error', reason: (e as Error)?.message ?? String(e) });
  let call: ClusterCall;
  try {
    call = c.service.kind === 'http' ? httpCall(ctx, c, input) : grpcCall(ctx, c, input);
  } catch (e) {
    return { outcome: Promise.resolve(failed(e)), abort: () => {} };
  }
  const read = c.service.kind === 'http' ? httpOutcome : grpcOutcome;
  const outcome = call.reply.then((r) => {
    try {
      return read(c, r);
    } catch (e) {
      return failed(e);
    }
  }, failed);
  return { outcome, abort: () => call.abort() };
}

const matchesAny = (ms: readonly ((v: string) => boolean)[] | undefined, name: string): boolean => ms !== undefined && ms.some((m) => m(name));

// ---- HTTP service ----

/** Headers an HTTP authorizer always gets (Envoy's defaults for the raw HTTP client). */
const ALWAYS = new Set(['authorization', 'content-length']);
/** Not copied between the client's request, the check and the answers: framing and hop-by-hop. */
const FRAMING = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'host', ':authority', ':status']);

function httpCall(ctx: ClusterCallContext, c: ExtAuthzConfig, input: CheckRequestInput): ClusterCall {
  const s = c.service;
  if (s.kind !== 'http' || !input.http) throw new Error('an HTTP authorizer checks HTTP requests only');
  const h = input.http;
  const headers: HeaderList = [];
  for (let i = 0; i < h.headers.length; i += 2) {
    const name = h.headers[i];
    if (name === 'content-length' || FRAMING.has(name)) continue;
    if (ALWAYS.has(name) || matchesAny(c.allowedHeaders, name)) headers.push(name, h.headers[i + 1]);
  }
  for (const [k, v] of s.headersToAdd) {
    for (let i = headers.length - 2; i >= 0; i -= 2) if (headers[i] === k) headers.splice(i, 2);
    headers.push(k, v);
  }
  const body = h.body;
  // Without a body the check still says Content-Length: 0, as Envoy's does.
  return callCluster(ctx, s.cluster, undefined, { method: h.method, target: s.pathPrefix + h.path, authority: h.authority, headers, body: body?.length ?? 0 }, body, c.timeoutMs);
}

function httpOutcome(c: ExtAuthzConfig, r: Reply): CheckOutcome {
  const s = c.service;
  if (s.kind !== 'http') throw new Error('unreachable');
  if (r.status === 200) {
    const pick = (ms: readonly ((v: string) => boolean)[] | undefined): HeaderList => {
      const out: HeaderList = [];
      for (let i = 0; i < r.headers.length; i += 2) if (!FRAMING.has(r.headers[i]) && matchesAny(ms, r.headers[i])) out.push(r.headers[i], r.headers[i + 1]);
      return out;
    };
    return { kind: 'allow', upstreamSet: pick(s.upstreamOnAllow), upstreamAppend: [], upstreamRemove: [], clientHeaders: pick(s.clientOnAllow) };
  }
  const headers: HeaderList = [];
  for (let i = 0; i < r.headers.length; i += 2) {
    const name = r.headers[i];
    if (FRAMING.has(name)) continue;
    // When set, the list plus what Envoy always adds (Path, Status, WWW-Authenticate, Location).
    if (s.clientOnDeny === undefined || name === 'www-authenticate' || name === 'location' || name === 'path' || matchesAny(s.clientOnDeny, name)) headers.push(name, r.headers[i + 1]);
  }
  return { kind: 'deny', status: r.status, headers, body: r.body.toString('utf8'), reason: `the authorizer answered ${r.status}` };
}

// ---- gRPC service ----

const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';

function grpcCall(ctx: ClusterCallContext, c: ExtAuthzConfig, input: CheckRequestInput): ClusterCall {
  const s = c.service;
  if (s.kind !== 'grpc') throw new Error('unreachable');
  const t = protoRoot().lookupType('envoy.service.auth.v3.CheckRequest');
  const message = t.encode(t.fromObject(checkRequest(c, input))).finish();
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  const headers = ['content-type', 'application/grpc', 'te', 'trailers'];
  if (Number.isFinite(c.timeoutMs)) headers.push('grpc-timeout', `${Math.max(1, Math.ceil(c.timeoutMs))}m`);
  return callCluster(ctx, s.cluster, 'http2', { method: 'POST', target: CHECK_PATH, authority: s.authority, headers, body: frame.length }, frame, c.timeoutMs);
}

const address = (a: { address: string; port: number }) => ({ socket_address: { address: a.address, port_value: a.port } });

function checkRequest(c: ExtAuthzConfig, input: CheckRequestInput): object {
  const peer = (p: CheckRequestInput['source']) => ({ address: address(p), ...(p.principal ? { principal: p.principal } : {}) });
  const now = Date.now();
  const attributes: Record<string, unknown> = { source: peer(input.source), destination: peer(input.destination) };
  const h = input.http;
  if (h) {
    const map: Record<string, string> = {};
    const add = (k: string, v: string) => (map[k] = map[k] === undefined ? v : `${map[k]},${v}`);
    const pseudo: [string, string][] = [[':authority', h.authority], [':method', h.method], [':path', h.path], [':scheme', h.scheme]];
    for (const [k, v] of pseudo) add(k, v);
    for (let i = 0; i < h.headers.length; i += 2) {
      const name = h.headers[i];
      if (c.allowedHeaders === undefined || ALWAYS.has(name) || matchesAny(c.allowedHeaders, name)) add(name, h.headers[i + 1]);
    }
    const q = h.path.indexOf('?');
    const body = h.body;
    attributes.request = {
      time: { seconds: Math.floor(now / 1000), nanos: (now % 1000) * 1e6 },
      http: {
        method: h.method,
        headers: map,
        path: h.path,
        host: h.authority,
        scheme: h.scheme,
        ...(q >= 0 ? { query: h.path.slice(q + 1) } : {}),
        size: h.size ?? (body ? body.length : 0),
        protocol: h.protocol,
        ...(body?.length ? (c.body?.packAsBytes ? { raw_body: body } : { body: body.toString('utf8') }) : {}),
      },
    };
  } else {
    attributes.request = { time: { seconds: Math.floor(now / 1000), nanos: (now % 1000) * 1e6 } };
  }
  return { attributes };
}

/** The message of a gRPC answer (the first, length-prefixed), and its status from trailers or a trailers-only head. */
function grpcOutcome(c: ExtAuthzConfig, r: Reply): CheckOutcome {
  const field = (name: string) => {
    for (const list of [r.trailers, r.headers]) for (let i = 0; i < list.length; i += 2) if (list[i] === name) return list[i + 1];
    return undefined;
  };
  const status = field('grpc-status');
  if (r.status !== 200 || status === undefined) return { kind: 'error', reason: `the authorizer answered HTTP ${r.status} without a gRPC status` };
  if (status !== '0') return { kind: 'error', reason: `the Check call failed: grpc-status ${status}${field('grpc-message') ? ` (${decodeURIComponent(field('grpc-message')!)})` : ''}` };
  if (r.body.length < 5 || r.body.readUInt32BE(1) + 5 > r.body.length) return { kind: 'error', reason: 'the authorizer\'s Check answer has no complete message' };
  let res: Record<string, any>;
  try {
    const t = protoRoot().lookupType('envoy.service.auth.v3.CheckResponse');
    res = t.toObject(t.decode(r.body.subarray(5, 5 + r.body.readUInt32BE(1))), { enums: String, longs: Number, bytes: String, defaults: false });
  } catch (e) {
    return { kind: 'error', reason: `the authorizer's CheckResponse cannot be decoded: ${(e as Error).message}` };
  }
  const code = Number(res.status?.code ?? 0);
  if (code === 0) {
    const ok = res.ok_response ?? {};
    const set: HeaderList = [];
    const append: HeaderList = [];
    const addIfAbsent: HeaderList = [];
    const overwriteIfExists: HeaderList = [];
    for (const o of ok.headers ?? []) {
      const k = String(o.header?.key ?? '').toLowerCase();
      const v = headerValueOf(o.header);
      if (!k || FRAMING.has(k)) continue;
      // HeaderValueOption, as Envoy's ext_authz reads it: append true appends; else append_action
      // (ADD_IF_ABSENT, OVERWRITE_IF_EXISTS); else the header is set, replacing the client's.
      if (o.append?.value === true || o.append === true) append.push(k, v);
      else if (o.append_action === 'ADD_IF_ABSENT') addIfAbsent.push(k, v);
      else if (o.append_action === 'OVERWRITE_IF_EXISTS') overwriteIfExists.push(k, v);
      else set.push(k, v);
    }
    const clientHeaders: HeaderList = [];
    for (const o of ok.response_headers_to_add ?? []) {
      const k = String(o.header?.key ?? '').toLowerCase();
      if (k && !FRAMING.has(k)) clientHeaders.push(k, headerValueOf(o.header));
    }
    return { kind: 'allow', upstreamSet: set, upstreamAppend: append, upstreamAddIfAbsent: addIfAbsent, upstreamOverwriteIfExists: overwriteIfExists, upstreamRemove: (ok.headers_to_remove ?? []).map((h: string) => h.toLowerCase()), clientHeaders };
  }
  const denied = res.denied_response ?? {};
  const values = protoRoot().lookupEnum('envoy.type.v3.StatusCode').values;
  const httpStatus = denied.status?.code ? (typeof denied.status.code === 'number' ? denied.status.code : values[denied.status.code]) || 403 : 403;
  const headers: HeaderList = [];
  for (const o of denied.headers ?? []) {
    const k = String(o.header?.key ?? '').toLowerCase();
    if (k && !FRAMING.has(k)) headers.push(k, headerValueOf(o.header));
  }
  return { kind: 'deny', status: httpStatus, headers, body: String(denied.body ?? ''), reason: `the authorizer denied it (status ${code}${res.status?.message ? `: ${res.status.message}` : ''})` };
}

function headerValueOf(h: { value?: string; raw_value?: string } | undefined): string {
  if (h?.value) return h.value;
  if (h?.raw_value) return Buffer.from(h.raw_value, 'base64').toString('latin1');
  return '';
}
