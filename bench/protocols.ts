// HTTP/2 (cleartext, prior knowledge) and gRPC through two Weft sidecars, against a direct
// connection to the same server: `--only h2` and `--only grpc`.
//
// h2: a node:http2 server (bench/server.ts --proto h2), loaded by h2load. grpc: a grpc-js server
// (--proto grpc), loaded by bench/grpc-load.ts. The Weft path is a server-side sidecar (inbound ->
// that server, registered as service bench-h2 or bench-grpc) and a client-side sidecar whose
// outbound listener the load generator connects to, with :authority set to the service.
//
// A path that cannot carry the protocol is reported, not measured: one request through it is
// tried first, and if it fails (a connection or protocol error, a status other than 200) the
// result says so with the error. Nothing is measured on a path that failed, and the rest of the
// bench goes on. The direct path failing is the bench's own fault and fails the bench.
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { LoadError, type LoadResult, grpcLoad, h2load } from './load.ts';
import { CONNS, FIXED_S, MAX_CONNS, MAX_S, MAX_WARMUP_S, RATE, WARMUP_S, type Steps, measure } from './measure.ts';
import { Mesh, startServer } from './mesh.ts';
import { BenchError, stop } from './proc.ts';
import type { ProtoResult } from './report.ts';
import { BODY, GRPC_METHOD } from './server.ts';

export type Proto = 'h2' | 'grpc';

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

/**
 * One request through the path; undefined if it answered 200 (h2) or OK (gRPC), else what went
 * wrong, with what the listener answered to the HTTP/2 connection preface.
 */
export async function probe(proto: Proto, addr: string, authority: string | undefined): Promise<string | undefined> {
  const err = await (proto === 'h2' ? probeH2(addr, authority) : probeGrpc(addr, authority));
  if (!err) return undefined;
  const answer = await prefaceAnswer(addr);
  return answer ? `${err}; the listener answered the HTTP/2 connection preface with: ${answer}` : err;
}

/** What a listener sends back to HTTP/2's connection preface, when it is not HTTP/2: its first line, and the body's. */
function prefaceAnswer(addr: string): Promise<string | undefined> {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
  return new Promise((resolve) => {
    let got = '';
    const s = net.connect(port, host, () => s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
    const done = () => {
      s.destroy();
      clearTimeout(timer);
      if (!got.startsWith('HTTP/1')) return resolve(undefined); // binary HTTP/2 frames, or nothing
      const [head, body = ''] = got.split('\r\n\r\n');
      resolve(`"${head.split('\r\n')[0]}"${body.trim() ? ` ("${body.trim().split('\n')[0].slice(0, 160)}")` : ''}`);
    };
    const timer = setTimeout(done, 2000);
    s.setEncoding('latin1').on('data', (d: string) => (got += d));
    s.on('end', done);
    s.on('close', done);
    s.on('error', done);
  });
}

function probeH2(addr: string, authority: string | undefined): Promise<string | undefined> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (err?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      resolve(err);
    };
    const timer = setTimeout(() => done('no response within 5 s'), 5000);
    const session = http2.connect(`http://${addr}`);
    session.on('error', (e: NodeJS.ErrnoException) => done(`${e.code ? `${e.code}: ` : ''}${e.message}`));
    session.on('close', () => done('the connection closed before a response'));
    const req = session.request({ ':method': 'GET', ':path': '/', ...(authority ? { ':authority': authority } : {}) });
    req.on('error', (e: NodeJS.ErrnoException) => done(`${e.code ? `${e.code}: ` : ''}${e.message}`));
    req.on('response', (h) => {
      const status = Number(h[':status']);
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('end', () => done(status === 200 ? undefined : `status ${status}: ${body.slice(0, 200)}`));
    });
    req.end();
  });
}

function probeGrpc(addr: string, authority: string | undefined): Promise<string | undefined> {
  const client = new grpc.Client(addr, grpc.credentials.createInsecure(), authority ? { 'grpc.default_authority': authority } : {});
  const raw = (b: Buffer) => b;
  return new Promise<string | undefined>((resolve) => {
    client.makeUnaryRequest(GRPC_METHOD, raw, raw, BODY, { deadline: Date.now() + 5000 }, (err) =>
      // grpc-js puts a timestamp and an empty resolution note into the details: not part of the error.
      resolve(err ? `gRPC status ${grpc.status[err.code] ?? err.code}: ${(err.details || err.message).replace(/ \(\d{4}-\d\d-\d\dT[\d:.]+Z\)/, '').replace(/\s*Resolution note:\s*$/, '')}` : undefined),
    );
  }).finally(() => client.close());
}

function steps(proto: Proto, h2loadBin: string | undefined, name: string, addr: string, authority: string | undefined): Steps {
  if (proto === 'h2') {
    const url = `http://${addr}/`;
    const run = (label: string, o: { seconds: number; conns: number; rate?: number }): Promise<LoadResult> => h2load(h2loadBin!, `${name} ${label}`, url, { ...o, authority });
    return {
      warmup: () => run('warm-up', { seconds: WARMUP_S, conns: CONNS, rate: RATE }),
      fixed: () => run('fixed rate', { seconds: FIXED_S, conns: CONNS, rate: RATE }),
      maxWarmup: () => run('max warm-up', { seconds: MAX_WARMUP_S, conns: MAX_CONNS }),
      max: () => run('max throughput', { seconds: MAX_S, conns: MAX_CONNS }),
    };
  }
  const run = (label: string, o: { seconds: number; rate?: number; inflight?: number }): Promise<LoadResult> => grpcLoad(`${name} ${label}`, addr, { ...o, conns: CONNS, authority });
  return {
    warmup: () => run('warm-up', { seconds: WARMUP_S, rate: RATE }),
    fixed: () => run('fixed rate', { seconds: FIXED_S, rate: RATE }),
    maxWarmup: () => run('max warm-up', { seconds: MAX_WARMUP_S, inflight: MAX_CONNS }),
    max: () => run('max throughput', { seconds: MAX_S, inflight: MAX_CONNS }),
  };
}

export const PROTO_NAME: Record<Proto, string> = { h2: 'HTTP/2', grpc: 'gRPC' };

export async function runProtocol(proto: Proto, h2loadBin: string | undefined, tmp: string): Promise<ProtoResult> {
  const name = PROTO_NAME[proto];
  const server = await startServer(proto);
  try {
    const direct = `127.0.0.1:${server.port}`;
    const err = await probe(proto, direct, undefined);
    if (err) throw new BenchError(`${name} direct: one request to the bench's own ${name} server failed: ${err}`);
    const directResult = await measure(`${name} direct`, [{ label: server.proc.label, pid: server.proc.proc.pid! }], steps(proto, h2loadBin, `${name} direct`, direct, undefined));

    const mesh = await Mesh.start(path.join(tmp, `control-${proto}`));
    try {
      await mesh.warmCompileCache();
      const service = `bench-${proto}`;
      const ss = await mesh.serverSidecar('Weft sidecar (server side)', `${service}-server`, service, server.port, proto === 'grpc' ? 'grpc' : 'http2');
      const cs = await mesh.clientSidecar('Weft sidecar (client side)', `${service}-client`, [service]);
      const perr = await probe(proto, cs.outbound, service);
      if (perr) {
        const notMeasured = `not measured: one ${name} request through the two sidecars failed (${perr})`;
        log(`${name} Weft: ${notMeasured}`);
        return { proto, direct: directResult, weft: { notMeasured } };
      }
      const watched = [
        { label: 'Weft sidecar (client side)', pid: cs.proc.proc.pid! },
        { label: 'Weft sidecar (server side)', pid: ss.proc.proc.pid! },
      ];
      try {
        return { proto, direct: directResult, weft: await measure(`${name} Weft`, watched, steps(proto, h2loadBin, `${name} Weft`, cs.outbound, service)) };
      } catch (e) {
        if (!(e instanceof LoadError)) throw e;
        const notMeasured = `not measured: one request went through, but requests failed under load (error: ${e.detail})`;
        log(`${name} Weft: ${notMeasured}`);
        return { proto, direct: directResult, weft: { notMeasured } };
      }
    } finally {
      await mesh.stop();
    }
  } finally {
    await stop(server.proc);
  }
}
