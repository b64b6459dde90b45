// The external authorization layer (Istio's CUSTOM AuthorizationPolicy, as Envoy's
// envoy.filters.http.ext_authz): one ext_authz filter of the listener's authorization steps
// (http/authz.ts runs them in order). It runs only for requests the RBAC filter before it marked
// (filter_enabled_metadata: Istio's istio_ext_authz_shadow_effective_policy_id), asks the
// authorizer (ext-authz/check.ts), and then:
//   - allowed: the answer's header edits go on the request (and on the client's response);
//   - denied: the authorizer's status, body and headers go to the client (errors.ts extAuthzDenied);
//   - no answer: failure_mode_allow lets it through, else status_on_error.
// With with_request_body, the body is read first (up to max_request_bytes; more is 413 unless
// allow_partial_message) and replayed to the upstream afterwards. A client that leaves cancels the
// check.
import { type ProxyError, extAuthzDenied } from '../errors.ts';
import { check, type CheckOutcome } from '../ext-authz/check.ts';
import type { ClusterCallContext } from '../ext-authz/call.ts';
import type { ExtAuthzFilterConfig } from '../xds-client/convert.ts';
import type { BodySink, Downstream, HeaderList } from './types.ts';
import { unmapped } from '../net/addresses.ts';

export interface ExtAuthzContext extends ClusterCallContext {
  /** This sidecar's SPIFFE id (the check's destination principal), when it has one. */
  localPrincipal?: () => string | undefined;
  destinationPort?: (listenerPort: number) => number;
}

/** Whether the filter runs for this request (its filter_enabled_metadata over the request's dynamic metadata). */
export function extAuthzEnabled(f: ExtAuthzFilterConfig, ds: Downstream): boolean {
  return f.extAuthz.enabled === undefined || f.extAuthz.enabled(ds.dynamicMetadata);
}

/**
 * Checks one request with the filter's authorizer: undefined when it may go on (with the answer's
 * edits applied), else the denial; `outcome` says what the authorizer did. `onCancel` is handed
 * the way to cancel what is under way (reading the body, then the check).
 */
export async function extAuthorize(ctx: ExtAuthzContext, listener: string, f: ExtAuthzFilterConfig, ds: Downstream, onCancel: (cancel: () => void) => void): Promise<{ denied?: ProxyError; outcome: CheckOutcome['kind'] }> {
  const c = f.extAuthz;
  let body: Buffer | undefined;
  if (c.body && ds.head.hasBody) {
    const read = await bufferBody(ds, c.body.maxBytes, c.body.allowPartial, onCancel);
    if (read === 'too_large') return { denied: extAuthzDenied(f.name, listener, 413, [], 'Payload Too Large', `the request body is larger than ${c.body.maxBytes} bytes (with_request_body.max_request_bytes)`), outcome: 'deny' };
    if (read === 'gone') return { outcome: 'error' };
    body = read;
  }
  const h = ds.head;
  const local = ds.localAddress?.() ?? { address: '', port: 0 };
  const source = ds.sourcePrincipal?.();
  // Over mTLS the sidecar's own certificate names it (Envoy's destination principal); plaintext has none.
  const own = source !== undefined ? ctx.localPrincipal?.() : undefined;
  const running = check(ctx, c, {
    source: { address: unmapped(ds.remoteAddress()), port: 0, ...(source ? { principal: source } : {}) },
    destination: { address: unmapped(local.address), port: ctx.destinationPort?.(local.port) ?? local.port, ...(own ? { principal: own } : {}) },
    http: {
      method: h.method,
      path: h.query ? `${h.path}?${h.query}` : h.path,
      authority: h.authority,
      headers: h.headers,
      protocol: h.protocol,
      scheme: 'http',
      ...(body ? { body } : {}),
      ...(h.contentLength !== undefined ? { size: h.contentLength } : {}),
    },
  });
  onCancel(running.abort);
  const o = await running.outcome;
  if (o.kind === 'allow') {
    applyAllow(ds, o);
    return { outcome: 'allow' };
  }
  if (o.kind === 'deny') return { denied: extAuthzDenied(f.name, listener, o.status, o.headers, o.body, o.reason), outcome: 'deny' };
  if (c.failOpen) return { outcome: 'error' };
  return { denied: extAuthzDenied(f.name, listener, c.statusOnError, [], '', `the authorizer could not be asked: ${o.reason}`), outcome: 'error' };
}

/** An allowing answer's edits: headers set, appended, added and removed on the request; headers for the client's response. */
function applyAllow(ds: Downstream, o: Extract<CheckOutcome, { kind: 'allow' }>): void {
  const addIfAbsent = o.upstreamAddIfAbsent ?? [];
  const overwrite = o.upstreamOverwriteIfExists ?? [];
  if (o.clientHeaders.length) ds.responseHeadersToAdd = [...(ds.responseHeadersToAdd ?? []), ...o.clientHeaders];
  if (!o.upstreamSet.length && !o.upstreamAppend.length && !o.upstreamRemove.length && !addIfAbsent.length && !overwrite.length) return;
  const hs = ds.head.headers;
  const present = new Set(hs.filter((_, i) => i % 2 === 0));
  const names = (l: HeaderList) => l.filter((_, i) => i % 2 === 0);
  const replaced = [...o.upstreamSet, ...overwrite.filter((_, i, l) => present.has(l[i - (i % 2)]))];
  const drop = new Set([...o.upstreamRemove, ...names(replaced)]);
  const kept: HeaderList = [];
  for (let i = 0; i < hs.length; i += 2) if (!drop.has(hs[i])) kept.push(hs[i], hs[i + 1]);
  const added = addIfAbsent.filter((_, i, l) => !present.has(l[i - (i % 2)]));
  ds.head.headers = [...kept, ...replaced, ...o.upstreamAppend, ...added];
}

/**
 * Reads the request body for the check: up to `max` bytes (the whole body when smaller), then
 * makes the body readable again from its start for the layers after (readBody replays what was
 * read, then passes on the rest).
 */
function bufferBody(ds: Downstream, max: number, allowPartial: boolean, onCancel: (cancel: () => void) => void): Promise<Buffer | 'too_large' | 'gone'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let ended: HeaderList | undefined;
    let target: BodySink | undefined;
    let settled = false;
    const settle = (v: Buffer | 'too_large' | 'gone') => {
      if (settled) return;
      settled = true;
      resolve(v);
    };
    onCancel(() => settle('gone'));
    const collector: BodySink = {
      data(chunk) {
        if (target) return target.data(chunk);
        chunks.push(chunk);
        bytes += chunk.length;
        if (bytes >= max) {
          if (bytes > max && !allowPartial) settle('too_large');
          else settle(Buffer.concat(chunks).subarray(0, max));
          return false; // held until the layers after read it
        }
        return true;
      },
      end(trailers) {
        if (target) return target.end(trailers);
        ended = trailers;
        settle(Buffer.concat(chunks));
      },
    };
    ds.readBody(collector);
    ds.readBody = (sink: BodySink) => {
      for (const c of chunks) sink.data(c);
      chunks.length = 0;
      if (ended) sink.end(ended);
      else {
        target = sink;
        ds.resumeBody();
      }
    };
  });
}
