// The control plane's built-in OTLP/HTTP trace receiver: POST /v1/traces with an
// ExportTraceServiceRequest (application/x-protobuf), as any OpenTelemetry collector takes it.
// Sidecars send here when tracing is on and no provider is configured: translate/tracing.ts gives
// them a STATIC cluster (weft_traces_receiver) with this address. Plain HTTP, no authentication:
// it only adds spans to a bounded store (store.ts), and binds where xDS does.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeTraces, encodeExportResponse } from '../../xds/otlp.ts';
import type { TraceStore } from './store.ts';

/** An export request larger than this is refused (413). */
export const MAX_EXPORT_BYTES = 4 << 20;

export interface TraceReceiver {
  address: string;
  port: number;
  close(): Promise<void>;
}

export async function startTraceReceiver(store: TraceStore, host: string, port: number, log: (msg: string) => void): Promise<TraceReceiver> {
  let logged = 0;
  const server = http.createServer((req, res) => {
    const answer = (status: number, body: Uint8Array | string, type = 'text/plain') => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (req.method !== 'POST' || new URL(req.url ?? '/', 'http://x').pathname !== '/v1/traces') {
      req.resume();
      return answer(404, 'the trace receiver takes POST /v1/traces (OTLP/HTTP, application/x-protobuf)\n');
    }
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim();
    if (type !== 'application/x-protobuf') {
      req.resume();
      return answer(415, `content-type ${type || '(none)'} is not supported: OTLP/HTTP protobuf (application/x-protobuf) is\n`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_EXPORT_BYTES) {
        answer(413, `export requests are limited to ${MAX_EXPORT_BYTES} bytes\n`);
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_EXPORT_BYTES) return;
      try {
        store.add(decodeTraces(Buffer.concat(chunks)));
      } catch (e) {
        if (logged++ < 10) log(`trace receiver: an export request from ${req.socket.remoteAddress} is not an OTLP ExportTraceServiceRequest: ${(e as Error).message}`);
        return answer(400, `not an OTLP ExportTraceServiceRequest: ${(e as Error).message}\n`);
      }
      answer(200, encodeExportResponse(), 'application/x-protobuf');
    });
    req.on('error', () => {});
  });
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    address: a.address,
    port: a.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
