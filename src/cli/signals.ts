// `weft stat`, `weft top` and `weft tap`: the golden signals the control plane collects from the
// sidecars, and a workload's requests as they happen (admin API /api/v1/signals, /api/v1/tap).
import { CliError, UsageError, adminUrl, callAdmin, durationMs, printable, streamAdmin, table } from './common.ts';
import type { Command } from './commands.ts';

const ADMIN_OPT = { admin: { type: 'string' } } as const;
const ADMIN_HELP = `  --admin URL          the control plane's admin API (default: $WEFT_ADMIN, or the one 'weft up' started)\n`;

const VIEWS: Record<string, 'workload' | 'service' | 'edge'> = { workloads: 'workload', workload: 'workload', services: 'service', service: 'service', edges: 'edge', edge: 'edge' };

function viewOf(arg: string | undefined, allowEdges: boolean): 'workload' | 'service' | 'edge' {
  const by = VIEWS[arg ?? 'workloads'];
  if (!by || (by === 'edge' && !allowEdges)) throw new UsageError(`"${arg}": expected workloads, services${allowEdges ? ' or edges' : ''}`);
  return by;
}

function windowArg(v: string | undefined): string {
  if (v === undefined) return '1m';
  if (!/^\d+(s|m)$/.test(v)) throw new UsageError(`--window "${v}": expected a duration like 30s or 5m (at most 15m)`);
  return v;
}

function signalsPath(by: string, v: Record<string, any>): string {
  const q = new URLSearchParams({ by, window: windowArg(v.window) });
  if (v.namespace) q.set('namespace', v.namespace);
  return `/api/v1/signals?${q}`;
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '-' : `${(x * 100).toFixed(1)}%`);
const ms = (x: number | null | undefined) => (x === null || x === undefined ? '-' : x < 10 ? `${x.toFixed(2)}ms` : `${x.toFixed(0)}ms`);

/** The API's items as a table; latency "-" where no histogram was reported. */
function signalsTable(by: string, data: any): string {
  const head = by === 'edge' ? ['SOURCE', 'DESTINATION'] : [by === 'service' ? 'SERVICE' : 'WORKLOAD'];
  const rows = [[...head, 'REQUESTS', 'RPS', 'ERRORS', 'P50', 'P95', 'P99', 'MTLS']];
  for (const it of data.items) {
    const name = by === 'edge' ? [`${it.source.namespace}/${it.source.workload}`, `${it.destination.service} (${it.destination.namespace}/${it.destination.workload})`] : [it.name];
    rows.push([...name, String(it.requests), it.rps.toFixed(2), pct(it.errorRatio), ms(it.latencyMs?.p50), ms(it.latencyMs?.p95), ms(it.latencyMs?.p99), pct(it.mtls.share)]);
  }
  const w = data.window;
  const note = `by ${by} (reported by the ${data.reporter}), over the last ${w.seconds}s${w.covered < w.seconds ? ` (${w.covered.toFixed(0)}s of data)` : ''}`;
  return (data.items.length ? table(rows) : 'No requests in this window.\n') + note + '\n';
}

const COMMON_HELP = `  -n, --namespace NS   only this namespace (an edge: either end)
  --window DUR         the time to sum over, up to 15m (default: 1m)
${ADMIN_HELP}`;

const SIGNALS_NOTE = `The control plane scrapes every sidecar's Istio metrics (istio_requests_total and the
istio_request_duration_milliseconds histogram) every few seconds (weft control --scrape-interval).
Workloads and services count the requests their server-side sidecars reported, edges those the
client-side sidecars reported. ERRORS are 5xx responses and gRPC statuses other than OK. P50, P95
and P99 come from the duration histogram ("-" when no sidecar reports one). MTLS is the share of
requests that came over mutual TLS, as the servers saw them ("-" for edges, which the clients
report). docs/observability.md`;

export const SIGNAL_COMMANDS: Record<string, Command> = {
  stat: {
    options: { namespace: { type: 'string', short: 'n' }, output: { type: 'string', short: 'o' }, window: { type: 'string' }, ...ADMIN_OPT },
    help: `Usage: weft stat [workloads|services|edges] [-n NAMESPACE] [--window 1m] [-o json]

Prints the golden signals once, as a table: requests, requests per second, error ratio, latency
percentiles and mTLS share, per workload (default), per service, or per edge (source workload to
destination service and workload).

${SIGNALS_NOTE}

Options:
  -o, --output json    the admin API's answer as it is (GET /api/v1/signals)
${COMMON_HELP}`,
    async run(v, pos) {
      if (pos.length > 1) throw new UsageError(`unexpected argument "${pos[1]}"`);
      if (v.output && v.output !== 'json') throw new UsageError(`--output "${v.output}": expected json`);
      const by = viewOf(pos[0], true);
      const data = await callAdmin(adminUrl(v.admin), 'GET', signalsPath(by, v));
      process.stdout.write(v.output === 'json' ? JSON.stringify(data, null, 2) + '\n' : signalsTable(by, data));
      return 0;
    },
  },

  top: {
    options: { namespace: { type: 'string', short: 'n' }, window: { type: 'string' }, interval: { type: 'string' }, once: { type: 'boolean' }, ...ADMIN_OPT },
    help: `Usage: weft top [workloads|services|edges] [-n NAMESPACE] [--window 1m] [--interval 2s] [--once]

The golden signals as a live table, refreshed every --interval until Ctrl-C: requests, requests
per second, error ratio, latency percentiles and mTLS share, busiest first.

${SIGNALS_NOTE}

Options:
  --interval DUR       how often to refresh (default: 2s)
  --once               print the table once and exit (for scripts)
${COMMON_HELP}`,
    async run(v, pos) {
      if (pos.length > 1) throw new UsageError(`unexpected argument "${pos[1]}"`);
      const by = viewOf(pos[0], true);
      const every = durationMs('interval', v.interval, 2000);
      if (every < 200) throw new UsageError('--interval: at least 200ms');
      const base = adminUrl(v.admin);
      const path = signalsPath(by, v);
      const show = async () => {
        const data = await callAdmin(base, 'GET', path);
        data.items.sort((a: any, b: any) => b.rps - a.rps || a.name.localeCompare(b.name));
        return `weft top: ${new Date().toISOString()}, refreshed every ${every / 1000}s\n\n${signalsTable(by, data)}`;
      };
      if (v.once) {
        process.stdout.write(await show());
        return 0;
      }
      const tty = process.stdout.isTTY;
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        while (!stop.signal.aborted) {
          const text = await show();
          // On a terminal the table is redrawn in place; into a pipe each refresh follows the last.
          process.stdout.write(tty ? `\x1b[H\x1b[2J${text}` : `${text}\n`);
          await new Promise<void>((r) => {
            const t = setTimeout(r, every);
            stop.signal.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
          });
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      return 0;
    },
  },

  tap: {
    options: { namespace: { type: 'string', short: 'n' }, output: { type: 'string', short: 'o' }, ...ADMIN_OPT },
    help: `Usage: weft tap WORKLOAD [-n NAMESPACE] [-o json]

Shows a workload's requests as they happen, one line each, until Ctrl-C: when, direction
(inbound: to the workload; outbound: from it), method, authority and path, status, latency, and
the SPIFFE ids of both ends ("-" over plain text). Every sidecar of the workload is tapped.

A sidecar serves the tap on its admin endpoint (/tap) only while someone listens, and never lets
a slow listener hold up a request: it drops lines instead, and says how many. Tap shows request
paths, so the control plane asks for the admin token (as for weft apply: $WEFT_ADMIN_TOKEN, else
$WEFT_HOME/data/admin.token).

Options:
  -n, --namespace NS   the workload's namespace (default: default; or give WORKLOAD as NS/NAME)
  -o, --output json    the admin API's NDJSON lines as they come (GET /api/v1/tap/NS/WORKLOAD)
${ADMIN_HELP}`,
    async run(v, pos) {
      if (pos.length !== 1) throw new UsageError(pos.length ? `unexpected argument "${pos[1]}"` : 'which workload? e.g. weft tap httpbin-v1 -n foo');
      if (v.output && v.output !== 'json') throw new UsageError(`--output "${v.output}": expected json`);
      const slash = pos[0]!.indexOf('/');
      const [ns, name] = slash >= 0 ? [pos[0]!.slice(0, slash), pos[0]!.slice(slash + 1)] : [v.namespace ?? 'default', pos[0]!];
      const abort = new AbortController();
      const onSignal = () => abort.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      let failed = 0;
      try {
        await streamAdmin(adminUrl(v.admin), `/api/v1/tap/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`, (line) => {
          let e: any;
          try {
            e = JSON.parse(line);
          } catch {
            return;
          }
          if (e.type === 'error') failed++;
          if (v.output === 'json') return void process.stdout.write(line + '\n');
          if (e.type === 'request') process.stdout.write(printable(tapLine(e)) + '\n');
          else if (e.type === 'dropped') process.stdout.write(`(${e.count} request(s) of ${e.proxy} left out: this tap did not keep up)\n`);
          else if (e.type === 'listening') process.stderr.write(`tapping ${e.proxy}\n`);
          else if (e.type === 'error') process.stderr.write(`${e.proxy}: ${e.error}\n`);
        }, abort.signal);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      if (!abort.signal.aborted && failed) throw new CliError(`the tap of ${ns}/${name} ended`);
      return 0;
    },
  },
};

/** One request as a line: time, direction, source -> destination, method, authority and path, status, latency. */
function tapLine(e: any): string {
  const lat = typeof e.latencyMs === 'number' ? `${e.latencyMs.toFixed(1)}ms` : '-';
  return `${e.time} ${String(e.direction).padEnd(8)} ${e.method} ${e.authority ?? ''}${e.path} ${e.status} ${lat} ${e.source?.principal ?? '-'} -> ${e.destination?.principal ?? '-'}${e.flags && e.flags !== '-' ? ` ${e.flags}` : ''}`;
}
