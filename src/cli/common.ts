// Shared by the CLI commands: error types, finding and calling the admin API.
import path from 'node:path';
import { CONTROL_PLANE_IDENTITY, type PeerIdentity, peerIdentity } from '../util/spiffe.ts';

// Not an ESM import, which runs the module's lazy getters (see src/proxy/sidecar.ts).
const fs = process.getBuiltinModule('node:fs');
const { isIP } = process.getBuiltinModule('node:net');

/** Wrong arguments: exit 2, with the command's usage hint. */
export class UsageError extends Error {}
/** The command could not do its job: exit 1, with the message on stderr. */
export class CliError extends Error {}

export function weftHome(): string {
  return path.resolve(process.env.WEFT_HOME || '.weft');
}

export interface UpState {
  admin: string;
  xds: string;
  pid: number;
  controlPid: number;
  controlArgs: string[];
  workloads: {
    name: string;
    namespace?: string;
    service?: string;
    outbound?: string;
    inbound?: string;
    app?: string;
    /** Every service port: its app port and the sidecar inbound listener behind the service port. */
    ports?: { name: string; port: number; protocol: string; inbound: string; app: string }[];
    admin?: string;
    sidecarPid?: number;
    appPid?: number;
  }[];
}

export function readUpState(): UpState | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(weftHome(), 'up.json'), 'utf8')) as UpState;
  } catch {
    return undefined;
  }
}

/**
 * TLS to an admin API served over HTTPS: trust only the mesh's root (WEFT_CA_CERT, else the local
 * data directory's root-cert.pem), and only a certificate for the control plane's identity (its
 * SPIFFE id, whatever address it is reached by).
 */
function adminTlsOptions(): { ca: string; checkServerIdentity: (host: string, cert: { subjectaltname?: string }) => Error | undefined } {
  const file = process.env.WEFT_CA_CERT || path.join(weftHome(), 'data', 'root-cert.pem');
  let ca: string;
  try {
    ca = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(`the admin API is served over HTTPS, and the mesh's root certificate to check it by cannot be read at ${file} (${(e as NodeJS.ErrnoException).code}): set WEFT_CA_CERT to the control plane's root-cert.pem`);
  }
  const isControlPlane = (id: PeerIdentity | undefined) => id?.namespace === CONTROL_PLANE_IDENTITY.namespace && id.serviceAccount === CONTROL_PLANE_IDENTITY.serviceAccount;
  return {
    ca,
    checkServerIdentity: (_host, cert) => (isControlPlane(peerIdentity(cert)) ? undefined : new Error(`the admin API's certificate is not the control plane's (${cert.subjectaltname ?? 'no SAN'})`)),
  };
}

export function adminUrl(flag: string | undefined): string {
  const url = flag || process.env.WEFT_ADMIN || readUpState()?.admin || 'http://127.0.0.1:15080';
  return url.replace(/\/+$/, '');
}

/**
 * The admin token, for requests that change the mesh: WEFT_ADMIN_TOKEN, else the admin.token of
 * the data directory `weft up` (or `weft control` by default) uses, $WEFT_HOME/data.
 */
export function adminToken(): string | undefined {
  if (process.env.WEFT_ADMIN_TOKEN) return process.env.WEFT_ADMIN_TOKEN.trim();
  try {
    return fs.readFileSync(path.join(weftHome(), 'data', 'admin.token'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Calls the admin API; a non-2xx answer becomes a CliError carrying the server's own sentence. */
export async function callAdmin(base: string, method: string, pathname: string, body?: { text: string; type: string }): Promise<any> {
  // undici loads here, not with the module: a sidecar (weft proxy) never calls the admin API,
  // and undici costs every process that loads it about 3 MB of heap (docs/performance.md).
  const { request, Agent } = await import('undici');
  const token = method !== 'GET' ? adminToken() : undefined;
  // HTTPS (an admin API off loopback): the server must chain to the mesh's root and be the control plane.
  const dispatcher = base.startsWith('https:') ? new Agent({ connect: adminTlsOptions() }) : undefined;
  let res;
  try {
    res = await request(`${base}${pathname}`, {
      method: method as any,
      body: body?.text,
      headers: { ...(body ? { 'content-type': body.type } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      headersTimeout: 30_000,
      ...(dispatcher ? { dispatcher } : {}),
    });
  } catch (e) {
    const code = (e as { code?: string }).code ?? (e as Error).message;
    throw new CliError(`cannot reach the control plane admin API at ${base}: ${code}. Is 'weft up' or 'weft control' running? (set --admin or WEFT_ADMIN)`);
  }
  const text = await res.body.text();
  let data: any;
  try {
    data = JSON.parse(text);
  } catch {
    throw new CliError(`${method} ${base}${pathname}: answer is not JSON (status ${res.statusCode}): ${text.slice(0, 200)}`);
  }
  if (res.statusCode >= 400) throw new CliError(data.error ?? `status ${res.statusCode}`);
  return data;
}

/** Rows as a plain-text table: columns padded to their widest cell, three spaces apart. */
/**
 * Text from the mesh (label values a sidecar reported, request paths) as a terminal may show it:
 * control characters (C0, DEL, C1), which could move the cursor, clear the screen or write the
 * clipboard (OSC 52), become \u escapes.
 */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function table(rows: string[][]): string {
  rows = rows.map((r) => r.map((c) => printable(c ?? '')));
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('   ')).join('\n') + '\n';
}

/**
 * A streaming GET of the admin API that needs the admin token (tap): calls onLine for every line of
 * the answer as it comes, until the server ends it or `signal` aborts (then it resolves).
 */
export async function streamAdmin(base: string, pathname: string, onLine: (line: string) => void, signal: AbortSignal): Promise<void> {
  const { request, Agent } = await import('undici');
  const token = adminToken();
  const dispatcher = base.startsWith('https:') ? new Agent({ connect: adminTlsOptions() }) : undefined;
  let res;
  try {
    res = await request(`${base}${pathname}`, { method: 'GET', headers: token ? { authorization: `Bearer ${token}` } : {}, headersTimeout: 30_000, bodyTimeout: 0, signal, ...(dispatcher ? { dispatcher } : {}) });
  } catch (e) {
    if (signal.aborted) return;
    const code = (e as { code?: string }).code ?? (e as Error).message;
    throw new CliError(`cannot reach the control plane admin API at ${base}: ${code}. Is 'weft up' or 'weft control' running? (set --admin or WEFT_ADMIN)`);
  }
  if (res.statusCode >= 400) {
    const text = await res.body.text();
    let error: string | undefined;
    try {
      error = JSON.parse(text).error;
    } catch {
      // not JSON
    }
    throw new CliError(error ?? `GET ${pathname}: status ${res.statusCode}: ${text.slice(0, 200)}`);
  }
  let partial = '';
  try {
    for await (const chunk of res.body) {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop()!;
      for (const l of lines) if (l) onLine(l);
    }
  } catch (e) {
    if (!signal.aborted) throw new CliError(`GET ${pathname} broke off: ${(e as Error).message}`);
  }
}

export function int(flag: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--${flag}: "${v}" is not a port number (0-65535)`);
  return n;
}

/** An IP address option (v4 or v6), as a STATIC cluster's endpoint needs. */
export function ipAddress(flag: string, v: string): string {
  if (!isIP(v)) throw new UsageError(`--${flag}: "${v}" is not an IP address`);
  return v;
}

export function durationMs(flag: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(v);
  if (!m) throw new UsageError(`--${flag}: "${v}" is not a duration (like 500ms, 10s, 1m)`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] as 'ms' | 's' | 'm'];
}

/** The first line a long-running component prints on stdout, for whoever started it. */
export const READY_PREFIX = 'WEFT_READY ';

export function printReady(info: object): void {
  process.stdout.write(`${READY_PREFIX}${JSON.stringify(info)}\n`);
}

/**
 * Resolves on SIGINT/SIGTERM, or when the `weft up` that started this process is gone (it sets
 * WEFT_UP_PID): a killed `weft up` must not leave its sidecars and control plane behind.
 */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const upPid = Number(process.env.WEFT_UP_PID);
    const watchdog = upPid
      ? setInterval(() => {
          if (process.ppid === upPid) return;
          process.stderr.write(`weft: weft up (pid ${upPid}) is gone; stopping\n`);
          on('SIGTERM');
        }, 1000)
      : undefined;
    watchdog?.unref();
    const on = (s: NodeJS.Signals) => {
      if (watchdog) clearInterval(watchdog);
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(s);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
