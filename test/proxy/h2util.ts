// Shared by the HTTP/2 and gRPC tests: a control plane whose clusters for chosen services speak
// HTTP/2 (set through the ADS server's generate hook, as translate() will for http2-/grpc- ports),
// and sidecar processes.
import { type ChildProcess, spawn } from 'node:child_process';
import http2 from 'node:http2';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.ts';
import { translate } from '../../src/control/translate/translate.ts';
import { TYPE } from '../../src/xds/types.ts';
import { CLI, lineMatching, tmpDir } from '../helpers.ts';
import { sidecarCredentials } from './mesh.ts';

export const H2_OPTIONS = {
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': TYPE.httpProtocolOptions, explicit_http_config: { http2_protocol_options: {} } },
};

/** A control plane that declares HTTP/2 on every cluster whose name matches `h2`, and on the inbound cluster of a service that does. */
export async function controlPlaneWithH2(h2: RegExp): Promise<ControlPlane> {
  return startControlPlane({
    dataDir: tmpDir('cp'),
    adminPort: 0,
    xdsPort: 0,
    heartbeatMs: 1000,
    generate: (mesh, proxy) => {
      const r = translate(mesh, proxy);
      const clusters: Record<string, object> = {};
      for (const [name, c] of Object.entries(r.clusters)) clusters[name] = h2.test(name) || (name.startsWith('inbound|') && proxy.service !== undefined && h2.test(proxy.service)) ? { ...c, typed_extension_protocol_options: H2_OPTIONS } : c;
      return { ...r, clusters };
    },
  });
}

export interface SidecarProc {
  proc: ChildProcess;
  admin: string;
  stop(): Promise<void>;
}

/** A real sidecar process; resolves once it says it is ready. */
export async function startSidecarProc(cp: ControlPlane, args: string[]): Promise<SidecarProc> {
  const creds = sidecarCredentials(cp, args);
  const proc = spawn(process.execPath, [CLI, 'proxy', '--xds', cp.xdsAddress, ...creds.args, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...creds.env } });
  const ready = await lineMatching(proc, /^WEFT_READY /);
  const admin = JSON.parse(ready.slice('WEFT_READY '.length)).admin as string;
  return {
    proc,
    admin,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

export interface H2Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders;
  /** The stream ended in a reset or error instead of END_STREAM. */
  reset?: string;
}

/** One request on `session`; resolves on END_STREAM or on a reset (never rejects). */
export function h2req(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer | string): Promise<H2Answer> {
  return new Promise((resolve) => {
    const s = session.request({ ':method': body === undefined ? 'GET' : 'POST', ':path': '/', ...headers }, { endStream: body === undefined });
    const a: H2Answer = { status: 0, headers: {}, body: Buffer.alloc(0), trailers: {} };
    const chunks: Buffer[] = [];
    s.on('response', (h) => {
      a.headers = h;
      a.status = Number(h[':status']);
    });
    s.on('trailers', (t) => (a.trailers = t));
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', (e) => (a.reset = e.message));
    s.on('close', () => {
      a.body = Buffer.concat(chunks);
      if (!a.reset && s.rstCode !== http2.constants.NGHTTP2_NO_ERROR) a.reset = `RST_STREAM ${s.rstCode}`;
      resolve(a);
    });
    s.resume();
    if (body !== undefined) s.end(body);
  });
}

