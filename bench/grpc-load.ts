// A small gRPC unary load generator (@grpc/grpc-js), run by bench/load.ts as its own process.
//
//   node bench/grpc-load.ts --target HOST:PORT [--authority NAME] --conns N --seconds S
//                           [--warmup S] (--rate R | --inflight K)
//
// Each of the N clients has its own HTTP/2 connection. --rate: R calls a second in all, on one
// even schedule (a call every 1000/R ms, the clients taking turns), so that the calls arrive as a
// stream and not in bursts; a call is sent at its slot even if earlier ones have not returned.
// --inflight: no rate limit, K calls in flight at all times, spread over the clients. Latency is
// from sending a call to its response, in the same process (performance.now(), microseconds).
// The warm-up runs the same load first and is not counted. Prints one line,
// `GRPC_LOAD_RESULT {json}`: ok and failed calls, the errors by message, seconds, percentiles.
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { BODY, GRPC_METHOD } from './server.ts';

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    authority: { type: 'string' },
    conns: { type: 'string', default: '16' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '0' },
    rate: { type: 'string' },
    inflight: { type: 'string' },
  },
});
if (!values.target || (!values.rate && !values.inflight)) throw new Error('usage: grpc-load.ts --target HOST:PORT --conns N --seconds S (--rate R | --inflight K)');
const conns = Number(values.conns);
const raw = (b: Buffer) => b;
const clients = Array.from(
  { length: conns },
  () =>
    new grpc.Client(values.target!, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1, // one connection per client
      ...(values.authority ? { 'grpc.default_authority': values.authority } : {}),
    }),
);

interface Tally {
  ok: number;
  failed: number;
  errors: Map<string, number>;
  latencies: number[];
}

function call(client: grpc.Client, t: Tally | undefined, done?: () => void): void {
  const t0 = performance.now();
  client.makeUnaryRequest(GRPC_METHOD, raw, raw, BODY, { deadline: Date.now() + 10_000 }, (err) => {
    if (t) {
      if (err) {
        t.failed++;
        const msg = `${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`;
        t.errors.set(msg, (t.errors.get(msg) ?? 0) + 1);
      } else {
        t.ok++;
        t.latencies.push(performance.now() - t0);
      }
    }
    done?.();
  });
}

/** Calls at `rate` a second for `seconds`, on one schedule; resolves when every call returned. */
function paced(rate: number, seconds: number, t: Tally | undefined): Promise<void> {
  return new Promise((resolve) => {
    const interval = 1000 / rate;
    const total = Math.round(rate * seconds);
    const start = performance.now();
    let sent = 0;
    let returned = 0;
    const tick = () => {
      const now = performance.now();
      while (sent < total && start + sent * interval <= now) {
        call(clients[sent % conns], t, () => {
          if (++returned === total) resolve();
        });
        sent++;
      }
      if (sent < total) setTimeout(tick, Math.max(0, start + sent * interval - performance.now()));
    };
    tick();
  });
}

/** `inflight` calls at all times for `seconds`; resolves when the last returned. */
function unpaced(inflight: number, seconds: number, t: Tally | undefined): Promise<void> {
  return new Promise((resolve) => {
    const end = performance.now() + seconds * 1000;
    let open = 0;
    const next = (i: number) => {
      if (performance.now() >= end) {
        if (--open === 0) resolve();
        return;
      }
      call(clients[i % conns], t, () => next(i));
    };
    for (let i = 0; i < inflight; i++) {
      open++;
      next(i);
    }
  });
}

const run = (t: Tally | undefined, seconds: number) => (values.rate ? paced(Number(values.rate), seconds, t) : unpaced(Number(values.inflight), seconds, t));
const tally: Tally = { ok: 0, failed: 0, errors: new Map(), latencies: [] };
if (Number(values.warmup) > 0) await run(undefined, Number(values.warmup));
const t0 = performance.now();
await run(tally, Number(values.seconds));
const seconds = (performance.now() - t0) / 1000;
for (const c of clients) c.close();
const lat = tally.latencies.sort((a, b) => a - b);
const q = (p: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.max(0, Math.ceil((p / 100) * lat.length) - 1))] : NaN);
process.stdout.write(
  `GRPC_LOAD_RESULT ${JSON.stringify({ ok: tally.ok, failed: tally.failed, errors: Object.fromEntries(tally.errors), seconds, latencyMs: { '50': q(50), '90': q(90), '99': q(99) } })}\n`,
);
