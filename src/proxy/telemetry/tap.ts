// Tap: the sidecar's requests as they happen, as NDJSON on its admin endpoint (/tap), for whoever
// listens (the control plane relays it: GET /api/v1/tap/NS/WORKLOAD). Subscribed to the request
// path's events only while someone listens; each event becomes one small line at once (the event's
// request is never kept) in the listener's bounded buffer, written a turn of the event loop later.
// A slow listener loses lines, counted and reported in a "dropped" line; the path never waits.
import type http from 'node:http';
import type { RuntimeConfig } from '../config.ts';
import type { RequestEvent, Telemetry } from './events.ts';
import { responseFlags } from './flags.ts';
import { guarded } from './guarded.ts';

// Not an ESM import, which runs the module's lazy getters (see src/proxy/sidecar.ts).
const { timingSafeEqual } = process.getBuiltinModule('node:crypto');

/** Does the header hold exactly these bytes? (In the same time whatever matches.) */
function sameBytes(header: string | undefined, want: Buffer): boolean {
  const got = Buffer.from(header ?? '');
  return got.length === want.length && timingSafeEqual(got, want);
}

/**
 * Lines held for one listener while its socket is not taking them, and their characters at most
 * (a request line carries its path and authority, up to the size of a request head); beyond
 * either, lines are dropped.
 */
export const TAP_BUFFER_LINES = 1000;
export const TAP_BUFFER_CHARS = 1024 * 1024;
/** Listeners at once, per sidecar. */
export const MAX_TAP_LISTENERS = 8;

interface Listener {
  res: http.ServerResponse;
  lines: string[];
  /** Their characters. */
  chars: number;
  dropped: number;
  /** The socket took everything so far (no backpressure). */
  writable: boolean;
  scheduled: boolean;
}

export class Tap {
  private readonly listeners = new Set<Listener>();
  private readonly onEvent = guarded((e: RequestEvent) => this.publish(e), (m) => this.log(m), 'tap');
  private readonly config: () => RuntimeConfig;
  private readonly principal: () => string | undefined;
  private readonly log: (msg: string) => void;
  private readonly telemetry: Telemetry;

  /** What a listener must send (Authorization: Bearer); undefined: anyone may listen (tests). */
  private readonly token: Buffer | undefined;

  constructor(telemetry: Telemetry, config: () => RuntimeConfig, principal: () => string | undefined, log: (msg: string) => void, token?: string) {
    this.token = token === undefined ? undefined : Buffer.from(`Bearer ${token}`);
    this.telemetry = telemetry;
    this.config = config;
    this.principal = principal;
    this.log = log;
  }

  /** Lines left out for slow listeners, since start. */
  private droppedTotal = 0;

  get size(): number {
    return this.listeners.size;
  }

  /** For /stats: listeners now, and lines dropped for slow ones since start. */
  stats(): { listeners: number; dropped: number } {
    return { listeners: this.listeners.size, dropped: this.droppedTotal };
  }

  /** Serves one listener until it leaves (or the sidecar closes). */
  serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method !== 'GET') {
      res.writeHead(405, { 'content-type': 'application/json', allow: 'GET' });
      res.end(JSON.stringify({ error: 'tap is GET only' }) + '\n');
      return;
    }
    if (this.token && !sameBytes(req.headers.authorization, this.token)) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: "tap needs this sidecar's tap token, which only the control plane has: use weft tap (GET /api/v1/tap/NAMESPACE/WORKLOAD on the control plane)" }) + '\n');
      return;
    }
    if (this.listeners.size >= MAX_TAP_LISTENERS) {
      res.writeHead(429, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `this sidecar already has ${MAX_TAP_LISTENERS} tap listeners` }) + '\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    res.flushHeaders();
    const l: Listener = { res, lines: [], chars: 0, dropped: 0, writable: true, scheduled: false };
    if (this.listeners.size === 0) this.telemetry.request.subscribe(this.onEvent);
    this.listeners.add(l);
    res.on('drain', () => {
      l.writable = true;
      this.flush(l);
    });
    res.on('close', () => {
      this.listeners.delete(l);
      if (this.listeners.size === 0) this.telemetry.request.unsubscribe(this.onEvent);
    });
  }

  /** Ends every listener (the sidecar is closing). */
  close(): void {
    for (const l of this.listeners) l.res.destroy();
  }

  private publish(e: RequestEvent): void {
    const ds = e.ds;
    if (!ds || !this.listeners.size) return;
    const inbound = ds.listenerName !== undefined && this.config().listeners.get(ds.listenerName)?.direction === 'inbound';
    const down = ds.sourcePrincipal?.();
    const me = this.principal();
    const line = JSON.stringify({
      type: 'request',
      time: new Date().toISOString(),
      direction: inbound ? 'inbound' : 'outbound',
      // A request refused before its head was read has none (http/refused.ts): '-', as the access log writes it.
      method: ds.head.method || '-',
      authority: ds.head.authority,
      path: ds.head.path,
      status: e.status,
      latencyMs: e.durationMs === undefined ? null : Math.round(e.durationMs * 1000) / 1000,
      flags: responseFlags(e.reason),
      cluster: e.cluster,
      source: { principal: (inbound ? down : e.upstreamPeer && me) || null },
      destination: { principal: (inbound ? down && me : e.upstreamPeer) || null },
    }) + '\n';
    for (const l of this.listeners) {
      if (l.lines.length >= TAP_BUFFER_LINES || l.chars + line.length > TAP_BUFFER_CHARS) {
        l.dropped++;
        this.droppedTotal++;
        continue;
      }
      l.lines.push(line);
      l.chars += line.length;
      if (!l.scheduled) {
        l.scheduled = true;
        setImmediate(() => {
          l.scheduled = false;
          this.flush(l);
        });
      }
    }
  }

  private flush(l: Listener): void {
    if (!l.writable || l.res.destroyed) return;
    if (l.dropped) {
      l.lines.push(JSON.stringify({ type: 'dropped', count: l.dropped }) + '\n');
      l.dropped = 0;
    }
    if (!l.lines.length) return;
    const text = l.lines.join('');
    l.lines = [];
    l.chars = 0;
    l.writable = l.res.write(text);
  }
}
