// One entry per `weft` subcommand: its options, its --help, and what it does.
import { spawn } from 'node:child_process';
import type { ParseArgsConfig } from 'node:util';
import { WEFT_VERSION } from '../version.ts';
import { CliError, UsageError, adminUrl, callAdmin, durationMs, int, ipAddress, printReady, readUpState, table, untilSignal, weftHome } from './common.ts';
import { SIGNAL_COMMANDS } from './signals.ts';
import type { WorkloadPort } from '../control/model/model.ts';
import path from 'node:path';

// Not an ESM import, which runs the module's lazy getters (see src/proxy/sidecar.ts).
const fs = process.getBuiltinModule('node:fs');

// The config API (its YAML parser and schemas) and `weft up` load when a command needs them, so
// that `weft proxy`, the sidecar, never does: every sidecar would otherwise carry them in its heap.
const configApi = async () => ({ ...(await import('../api/index.ts')), ...(await import('../api/types.ts')), ...(await import('../api/kinds.ts')) });

export interface Command {
  options: NonNullable<ParseArgsConfig['options']>;
  help: string;
  run(values: Record<string, any>, positionals: string[], passthrough: string[]): Promise<number>;
}

const ADMIN_OPT = { admin: { type: 'string' } } as const;
const ADMIN_HELP = `  --admin URL          the control plane's admin API (default: $WEFT_ADMIN, or the one 'weft up' started)\n`;

function readInput(file: string): string {
  try {
    return fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Files named by -f: a file, "-" for stdin, or a directory (its .yaml/.yml/.json files). */
function expandFiles(files: string[]): string[] {
  const out: string[] = [];
  for (const f of files) {
    if (f !== '-' && fs.existsSync(f) && fs.statSync(f).isDirectory()) {
      for (const e of fs.readdirSync(f).sort()) if (/\.(ya?ml|json)$/.test(e)) out.push(path.join(f, e));
    } else out.push(f);
  }
  return out;
}


/**
 * Where a workload's outbound listener is. A workload that `weft up` started is looked up in its
 * up.json first, so that `weft exec` keeps working while the control plane is down (the sidecars
 * do too); any other is asked of the control plane.
 */
async function outboundOf(workload: string, adminFlag: string | undefined): Promise<string> {
  // "name" or "namespace/name"; a bare name that two namespaces use is ambiguous.
  const mine = adminFlag || process.env.WEFT_ADMIN ? [] : (readUpState()?.workloads ?? []).filter((w) => w.outbound && (w.name === workload || `${w.namespace ?? 'default'}/${w.name}` === workload));
  if (mine.length > 1) throw new CliError(`workload "${workload}" is in several namespaces (${mine.map((w) => w.namespace ?? 'default').join(', ')}): say which, e.g. ${mine[0].namespace ?? 'default'}/${workload}`);
  if (mine[0]?.outbound) return mine[0].outbound;
  const data = await callAdmin(adminUrl(adminFlag), 'GET', '/api/v1/proxies');
  const matches = data.proxies.filter((p: any) => p.workload.name === workload || `${p.workload.namespace}/${p.workload.name}` === workload);
  if (!matches.length) {
    const names = data.proxies.map((p: any) => p.workload.name).sort().join(', ') || 'none';
    throw new CliError(`no sidecar for workload "${workload}" is connected to the control plane (connected: ${names})`);
  }
  const p = matches.find((m: any) => m.workload.outboundPort) ?? matches[0];
  if (!p.workload.outboundPort) throw new CliError(`workload "${workload}" has no outbound listener (its sidecar runs without --outbound-port)`);
  return `127.0.0.1:${p.workload.outboundPort}`;
}

/** `weft analyze` against the running mesh: its stored config, with what only its workloads can tell. */
async function analyzeLive(adminFlag: string | undefined): Promise<number> {
  const base = adminUrl(adminFlag);
  const { analyze, liveMeshOf } = await configApi();
  const { items } = await callAdmin(base, 'GET', '/api/v1/resources');
  const resources = items.map(({ revision: _r, warnings: _w, ...r }: any) => r);
  const { workloads } = await callAdmin(base, 'GET', '/api/v1/endpoints');
  let errors = 0;
  for (const m of analyze(resources, liveMeshOf(workloads))) {
    if (m.level === 'Error') errors++;
    process.stdout.write(`${m.level} [${m.code}] (${m.resource}) ${m.path}: ${m.message}\n`);
  }
  if (errors === 0) process.stdout.write(`\u2714 No validation issues found in the running mesh at ${base}: ${resources.length} resource(s), ${workloads.length} workload(s).\n`);
  return errors === 0 ? 0 : 1;
}

export const COMMANDS: Record<string, Command> = {
  version: {
    options: {},
    help: 'Usage: weft version\n\nPrints the version of this weft.\n',
    async run() {
      process.stdout.write(`weft ${WEFT_VERSION}\n`);
      return 0;
    },
  },

  control: {
    options: {
      'data-dir': { type: 'string' },
      host: { type: 'string' },
      'admin-port': { type: 'string' },
      'xds-port': { type: 'string' },
      'insecure-xds-port': { type: 'string' },
      'admin-tls': { type: 'boolean' },
      heartbeat: { type: 'string' },
      'ca-dir': { type: 'string' },
      'ca-intermediate': { type: 'boolean' },
      'scrape-interval': { type: 'string' },
      'traces-port': { type: 'string' },
      'advertise-address': { type: 'string' },
    },
    help: `Usage: weft control [options]

Runs the control plane: the config store (SQLite, in --data-dir), the workload registry, the
certificate authority, the xDS server (Envoy ADS v3 over gRPC, on TLS) and the admin API. Stops on
SIGINT or SIGTERM.

A sidecar proves who it is before it gets any config: its join token (weft token create) buys it
a workload certificate on the xDS port (Istio's certificate API), and its xDS stream presents that
certificate. The mesh's root certificate, which sidecars trust the control plane by, is written to
the data directory as root-cert.pem.

Options:
  --data-dir DIR       where config is stored (default: $WEFT_HOME/data)
  --host ADDR          address to listen on (default: 127.0.0.1)
  --admin-port PORT    admin API port (default: 15080; 0 picks a free one)
  --admin-tls          serve the admin API over HTTPS even on loopback; off loopback it always is
                       (with the control plane's certificate; the CLI checks it against the mesh
                       root: $WEFT_HOME/data/root-cert.pem, or WEFT_CA_CERT)
  --xds-port PORT      xDS and certificate API port, TLS (default: 15012; 0 picks a free one)
  --insecure-xds-port PORT
                       also serve xDS in plain text on this port (default: none), for proxyless
                       gRPC clients, which cannot present a certificate. What connects there
                       proves nothing, so it is served as a client only: it cannot be an
                       endpoint. Anyone who can reach the port can read the mesh's config.
  --heartbeat DUR      sidecar heartbeat interval; a sidecar silent for twice this is dropped (default: 10s)
  --scrape-interval DUR
                       how often each sidecar's /stats/prometheus is collected for the golden
                       signals (weft stat, top; default: 5s; 0 turns it off). docs/observability.md
  --traces-port PORT   the built-in trace receiver's port (OTLP/HTTP, POST /v1/traces), on --host
                       (default: 0, a free one; sidecars learn it over xDS)
  --advertise-address IP
                       the address sidecars on other hosts reach this control plane at: where they
                       send spans to the built-in receiver (default: --host, or 127.0.0.1 when
                       --host is 0.0.0.0 or ::, which only sidecars on this host can use)
  --ca-dir DIR         plug in your own CA, in Istio's cacerts layout: ca-cert.pem (the CA that
                       signs, an intermediate), ca-key.pem (its key, unencrypted), cert-chain.pem
                       (ca-cert.pem up to the root), root-cert.pem (the roots workloads trust).
                       Checked at start; without it the control plane makes a root of its own
                       (kept in the store). docs/ca.md
  --ca-intermediate    Weft's own root signs an intermediate CA (1 year, renewed under the same
                       root 90 days before it ends), and the intermediate signs workload
                       certificates; the trust bundle stays the root. Added under an existing
                       root without a trust change. Kept in the store: a later start without this
                       flag still signs with the intermediate. Not with --ca-dir. docs/ca.md

On start it prints one line, WEFT_READY {"admin": URL, "xds": HOST:PORT, "rootCert": FILE, ...}.
`,
    async run(v, pos) {
      if (pos.length) throw new UsageError(`unexpected argument "${pos[0]}"`);
      const { startControlPlane } = await import('../control/control-plane.ts');
      const cp = await startControlPlane({
        dataDir: v['data-dir'] ?? path.join(weftHome(), 'data'),
        adminHost: v.host,
        ...(v['admin-tls'] ? { adminTls: true } : {}),
        xdsHost: v.host,
        adminPort: int('admin-port', v['admin-port'], 15080),
        xdsPort: int('xds-port', v['xds-port'], 15012),
        ...(v['insecure-xds-port'] === undefined ? {} : { insecureXdsPort: int('insecure-xds-port', v['insecure-xds-port'], 0) }),
        heartbeatMs: durationMs('heartbeat', v.heartbeat, 10_000),
        scrapeIntervalMs: v['scrape-interval'] === '0' ? 0 : durationMs('scrape-interval', v['scrape-interval'], 5000),
        ...(v['ca-dir'] !== undefined ? { caDir: path.resolve(v['ca-dir']) } : {}),
        ...(v['ca-intermediate'] ? { caIntermediate: true } : {}),
        ...(v['traces-port'] !== undefined ? { tracesPort: int('traces-port', v['traces-port'], 0) } : {}),
        ...(v['advertise-address'] !== undefined ? { advertiseAddress: ipAddress('advertise-address', v['advertise-address']) } : {}),
        log: (m) => process.stderr.write(`[control] ${m}\n`),
      }).catch((e: NodeJS.ErrnoException) => {
        throw new CliError(`cannot start the control plane: ${e.code === 'EADDRINUSE' ? `address in use (${e.message})` : e.message}`);
      });
      printReady({ admin: cp.adminUrl, xds: cp.xdsAddress, ...(cp.insecureXdsAddress ? { insecureXds: cp.insecureXdsAddress } : {}), rootCert: cp.rootCertFile, pid: process.pid });
      process.stderr.write(`[control] admin API ${cp.adminUrl}, xDS ${cp.xdsAddress} (TLS)${cp.insecureXdsAddress ? ` and ${cp.insecureXdsAddress} (plain text, clients only)` : ''}, root certificate ${cp.rootCertFile}, config revision ${cp.store.revision()}\n`);
      await untilSignal();
      await cp.close();
      return 0;
    },
  },

  proxy: {
    options: {
      xds: { type: 'string' },
      workload: { type: 'string' },
      namespace: { type: 'string' },
      service: { type: 'string' },
      'service-port': { type: 'string' },
      label: { type: 'string', multiple: true },
      address: { type: 'string' },
      'inbound-port': { type: 'string' },
      'app-port': { type: 'string' },
      port: { type: 'string', multiple: true },
      'outbound-port': { type: 'string' },
      'admin-port': { type: 'string' },
      'ca-cert': { type: 'string' },
      'join-token-file': { type: 'string' },
      'cert-ttl': { type: 'string' },
      'no-istio-metrics': { type: 'boolean' },
    },
    help: `Usage: weft proxy --xds HOST:PORT --workload NAME [options]

Runs one sidecar proxy. All its routing comes from the control plane over xDS; these options only
say who it is and which ports are its own. Before anything else it proves who it is: its join
token (weft token create) buys it a workload certificate for the identity the token was made for,
and its xDS stream runs over mutual TLS with that certificate. Its namespace and workload name are
the certificate's, whatever --namespace and --workload say.

Options:
  --xds HOST:PORT        the control plane's xDS address (required)
  --ca-cert FILE         the mesh's root certificate, which the control plane's must chain to
                         (default: $WEFT_HOME/data/root-cert.pem, which the control plane writes)
  --join-token-file FILE a file holding the join token (or set WEFT_JOIN_TOKEN; one is required). Should
                         the certificate ever expire unrenewed (the control plane out of reach for
                         half its life), a new token written to this file buys a new one
  --cert-ttl DUR         the life to ask for each workload certificate, renewed at half of it
                         (default: the CA's, 24h)
  --workload NAME        this workload instance's name (required)
  --namespace NS         (default: default)
  --service NAME         the service this workload serves; needs --inbound-port and --app-port
  --service-port PORT    the port clients address the service on (default: 80)
  --label KEY=VALUE      a workload label (repeatable), e.g. --label version=v1
  --address ADDR         where the inbound listener binds and other sidecars connect (default: 127.0.0.1)
  --inbound-port PORT    the inbound listener's port
  --app-port PORT        the app's own port, on 127.0.0.1, behind the inbound listener
  --port NAME:PORT:INBOUND:APP[:APPPROTOCOL]
                         one service port (repeatable), instead of --service-port, --inbound-port
                         and --app-port: its name (whose prefix may choose the protocol, e.g.
                         http-web, tcp-db), the service port, the inbound listener port, the app
                         port, and optionally Kubernetes' appProtocol (e.g. grpc)
  --outbound-port PORT   the app's HTTP proxy on 127.0.0.1 (HTTP_PROXY=http://127.0.0.1:PORT)
  --admin-port PORT      the sidecar admin endpoint on 127.0.0.1 (default: 0, a free port): /ready,
                         /config_dump, /stats, /stats/prometheus, /memory, /tap. It is announced
                         to the control plane, which scrapes its metrics (weft stat)
  --no-istio-metrics     do not keep Istio's standard metrics (istio_*), as Envoy's bootstrap
                         stats_matcher reject_all turns its stats off; Weft's own weft_* stay. What
                         the bench's telemetry-off sidecars run with (docs/performance.md)

On start it prints one line, WEFT_READY {"admin": URL, ...}, once its config is complete. With the
mesh config's accessLogFile /dev/stdout, its access log follows on standard output; /stats/prometheus
has Istio's standard metrics (istio_requests_total, istio_request_duration_milliseconds, ...) and the
sidecar's own health (weft_*) (docs/observability.md).

Environment:
  WEFT_JOIN_TOKEN        the join token, unless --join-token-file gives it; good once
  WEFT_MAX_CONNECTIONS   client connections held at once, all listeners together (default: half
                         of what the file-descriptor limit leaves after 256); past it, refused
  WEFT_UPSTREAM_MAX_CONNECTIONS, WEFT_UPSTREAM_MAX_PENDING, WEFT_UPSTREAM_MAX_STREAMS
                         per-endpoint pool limits where a cluster's circuit_breakers set none
                         (default: 1024 each, Envoy's)
  WEFT_LOOP_BLOCKED_MS   milliseconds the event loop may be blocked (within one health check's
                         second) before this endpoint reports itself unhealthy to other sidecars
                         (default: 1000); raise it to run the sidecar under a profiler or valgrind
`,
    async run(v, pos) {
      if (pos.length) throw new UsageError(`unexpected argument "${pos[0]}"`);
      if (!v.xds) throw new UsageError('--xds is required');
      if (!v.workload) throw new UsageError('--workload is required');
      const labels: Record<string, string> = {};
      for (const l of (v.label as string[] | undefined) ?? []) {
        const i = l.indexOf('=');
        if (i <= 0) throw new UsageError(`--label "${l}": expected KEY=VALUE`);
        labels[l.slice(0, i)] = l.slice(i + 1);
      }
      // The control plane puts these ports into the listeners it sends, so they must be real ones.
      const opt = (f: string) => {
        if (v[f] === undefined) return undefined;
        const p = int(f, v[f], 0);
        if (p === 0) throw new UsageError(`--${f}: must be a port number from 1 to 65535 (the control plane configures the listener on it)`);
        return p;
      };
      let inboundPort = opt('inbound-port');
      let appPort = opt('app-port');
      let servicePort = int('service-port', v['service-port'], 80);
      const portList = v.port as string[] | undefined;
      let ports: WorkloadPort[] | undefined;
      if (portList?.length) {
        if (inboundPort !== undefined || appPort !== undefined || v['service-port'] !== undefined) throw new UsageError('--port replaces --service-port, --inbound-port and --app-port: give one or the other');
        ports = portList.map((spec) => {
          const parts = spec.split(':');
          const nums = parts.slice(1, 4).map(Number);
          if (parts.length < 4 || parts.length > 5 || !parts[0] || !nums.every((n) => Number.isInteger(n) && n >= 1 && n <= 65535)) {
            throw new UsageError(`--port "${spec}": expected NAME:PORT:INBOUND:APP[:APPPROTOCOL] with ports from 1 to 65535`);
          }
          return { name: parts[0], port: nums[0], inboundPort: nums[1], appPort: nums[2], ...(parts[4] ? { appProtocol: parts[4] } : {}) };
        });
        ({ port: servicePort, inboundPort, appPort } = ports[0]);
      }
      if (v.service && (inboundPort === undefined || appPort === undefined)) throw new UsageError('--service needs --inbound-port and --app-port, or --port');
      const outboundPort = opt('outbound-port');
      const { rootPem, joinToken, rejoin } = sidecarCredentials(v['ca-cert'], v['join-token-file']);
      const certTtl = v['cert-ttl'] === undefined ? undefined : durationMs('cert-ttl', v['cert-ttl'], 0);
      if (certTtl !== undefined && certTtl < 2000) throw new UsageError('--cert-ttl: at least 2s');
      const { startSidecar } = await import('../proxy/sidecar.ts');
      const sc = await startSidecar({
        xds: v.xds,
        rootPem,
        joinToken,
        ...(rejoin ? { rejoin } : {}),
        ...(certTtl === undefined ? {} : { certValidityS: Math.round(certTtl / 1000) }),
        workload: v.workload,
        namespace: v.namespace ?? 'default',
        service: v.service,
        servicePort,
        ports,
        labels,
        address: v.address ?? '127.0.0.1',
        inboundPort,
        appPort,
        outboundPort,
        adminHost: '127.0.0.1',
        adminPort: int('admin-port', v['admin-port'], 0),
        ...(v['no-istio-metrics'] ? { istioMetrics: false } : {}),
        log: (m) => process.stderr.write(`[${v.workload} sidecar] ${m}\n`),
      }).catch((e: Error) => {
        throw e.name === 'CertificateRefused' ? new CliError(e.message) : e;
      });
      const stop = untilSignal();
      const ready = await Promise.race([sc.ready().then(() => true), stop.then(() => false)]);
      if (ready) {
        printReady({ admin: sc.adminUrl, node: sc.nodeId, pid: process.pid });
        await stop;
      }
      await sc.close();
      return 0;
    },
  },

  apply: {
    options: { file: { type: 'string', short: 'f', multiple: true }, ...ADMIN_OPT },
    help: `Usage: weft apply -f FILE [-f FILE ...]

Creates or updates the resources in FILE (YAML, several documents allowed; "-" reads stdin; a
directory means its .yaml/.yml/.json files). Every resource is validated first; if any is invalid,
nothing is applied and the error names the resource and the field.

Options:
  -f, --file FILE      a file to apply (repeatable)
${ADMIN_HELP}`,
    async run(v, pos) {
      if (pos.length) throw new UsageError(`unexpected argument "${pos[0]}" (use -f FILE)`);
      const files = expandFiles((v.file as string[] | undefined) ?? []);
      if (!files.length) throw new UsageError('no file given: use -f FILE');
      const { parseConfig, ConfigError } = await configApi();
      // Check every file before sending any, so that nothing is half-applied.
      const texts = files.map((f) => {
        const text = readInput(f);
        const source = f === '-' ? 'stdin' : f;
        try {
          parseConfig(text, source);
        } catch (e) {
          if (e instanceof ConfigError) throw new CliError(e.message);
          throw e;
        }
        return { text, source };
      });
      const base = adminUrl(v.admin);
      const all = texts.map((t) => t.text.replace(/\n*$/, '\n')).join('---\n');
      const source = texts.map((t) => t.source).join(', ');
      const res = await callAdmin(base, 'POST', `/api/v1/apply?source=${encodeURIComponent(source)}`, { text: all, type: 'application/yaml' });
      for (const r of res.results) {
        process.stdout.write(`${r.resource} ${r.action}${r.action === 'unchanged' ? '' : ` (revision ${r.revision})`}\n`);
        for (const w of r.warnings ?? []) process.stderr.write(`Warning: ${w}\n`);
      }
      return 0;
    },
  },

  get: {
    options: { namespace: { type: 'string', short: 'n' }, output: { type: 'string', short: 'o' }, ...ADMIN_OPT },
    help: `Usage: weft get KIND [NAME] [-n NAMESPACE] [-o yaml|json]

KIND is virtualservices (vs), destinationrules (dr), any other kind Weft reads (configmaps (cm):
Istio's mesh config, istio in istio-system), proxies or endpoints.
  weft get vs                       list VirtualServices
  weft get vs my-backend-service -o yaml
  weft get proxies                  connected sidecars, the config revision each ACKed, whether it is current, any NACK
  weft get endpoints                workloads and the addresses they serve on
  weft get cm istio -n istio-system -o yaml   the mesh config, as kubectl shows it

Options:
  -n, --namespace NS   (default: all for lists, "default" for one resource)
  -o, --output FMT     yaml or json (default: a table)
${ADMIN_HELP}`,
    async run(v, pos) {
      const [kindArg, name, extra] = pos;
      if (!kindArg) throw new UsageError('which kind? e.g. weft get virtualservices');
      if (extra) throw new UsageError(`unexpected argument "${extra}"`);
      if (v.output && !['yaml', 'json'].includes(v.output)) throw new UsageError(`--output "${v.output}": expected yaml or json`);
      const base = adminUrl(v.admin);
      const emit = async (data: unknown) => {
        if (v.output === 'json') process.stdout.write(JSON.stringify(data, null, 2) + '\n');
        else {
          const YAML = (await import('yaml')).default;
          process.stdout.write(YAML.stringify(data));
        }
      };
      if (kindArg === 'proxies' || kindArg === 'proxy') {
        const data = await callAdmin(base, 'GET', '/api/v1/proxies');
        if (v.output) return emit(data.proxies).then(() => 0);
        // The config revision (as weft apply prints it) each proxy has ACKed in full, and whether
        // that is the store's latest; NACK reasons per type.
        const { revision: latest } = await callAdmin(base, 'GET', '/version');
        // SERVICE ACCOUNT: what the proxy's certificate proved ("-": nothing, on the plain-text port).
        const rows = [['WORKLOAD', 'SERVICE ACCOUNT', 'SERVICE', 'REVISION', 'STATUS', 'NACK']];
        for (const p of data.proxies) {
          const nack = p.types.filter((x: any) => x.nack).map((x: any) => `${x.type}: ${x.nack.reason}`).join('; ');
          const status = nack ? 'NACKed' : p.current ? 'current' : `syncing to ${latest}`;
          rows.push([`${p.workload.namespace}/${p.workload.name}`, p.workload.serviceAccount ?? '-', p.workload.service ?? '-', p.revision === undefined ? '-' : String(p.revision), status, nack || '-']);
        }
        process.stdout.write(table(rows));
        return 0;
      }
      if (kindArg === 'endpoints' || kindArg === 'endpoint') {
        const data = await callAdmin(base, 'GET', '/api/v1/endpoints');
        if (v.output) return emit(data.workloads).then(() => 0);
        const rows = [['WORKLOAD', 'SERVICE', 'LABELS', 'ENDPOINT', 'HEALTHY']];
        for (const w of data.workloads) {
          rows.push([
            `${w.namespace}/${w.name}`,
            w.service ? `${w.service}:${(w.ports?.map((p: any) => `${p.port}/${p.name}`) ?? [w.servicePort]).join(',')}` : '-',
            Object.entries(w.labels).map(([k, x]) => `${k}=${x}`).join(',') || '-',
            w.ports?.length ? w.ports.map((p: any) => `${w.address}:${p.inboundPort}`).join(',') : w.inboundPort ? `${w.address}:${w.inboundPort}` : '-',
            String(w.healthy),
          ]);
        }
        process.stdout.write(table(rows));
        return 0;
      }
      const { resolveKind, KIND_NAMES } = await configApi();
      const kind = resolveKind(kindArg);
      if (!kind) throw new UsageError(`unknown kind "${kindArg}"; Weft knows ${KIND_NAMES.join(', ')}, proxies, endpoints`);
      // Warnings go to stderr (as kubectl prints them), so that -o yaml stays what apply takes.
      const warn = (ws: string[] | undefined) => {
        for (const w of ws ?? []) process.stderr.write(`Warning: ${w}\n`);
      };
      if (name) {
        const ns = v.namespace ?? 'default';
        const r = await callAdmin(base, 'GET', `/api/v1/resources/${kind}/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`);
        const { revision, warnings, ...resource } = r;
        warn(warnings);
        if (v.output) return emit(resource).then(() => 0);
        process.stdout.write(table([['NAMESPACE', 'NAME', 'REVISION', 'WARNINGS'], [r.metadata.namespace, r.metadata.name, String(revision), String(warnings?.length ?? 0)]]));
        return 0;
      }
      const data = await callAdmin(base, 'GET', `/api/v1/resources/${kind}${v.namespace ? `/${encodeURIComponent(v.namespace)}` : ''}`);
      for (const r of data.items) warn(r.warnings);
      const items = data.items.map(({ revision: _r, warnings: _w, ...x }: any) => x);
      if (v.output === 'json') {
        // A List, as kubectl prints one: `weft apply -f` takes it back.
        process.stdout.write(JSON.stringify({ apiVersion: 'v1', kind: 'List', items }, null, 2) + '\n');
        return 0;
      }
      if (v.output === 'yaml') {
        // One YAML document per resource: `weft get vs -o yaml | weft apply -f -` round-trips.
        const YAML = (await import('yaml')).default;
        process.stdout.write(items.map((x: unknown) => YAML.stringify(x)).join('---\n'));
        return 0;
      }
      if (!data.items.length) {
        process.stdout.write(`No ${kind}s.\n`);
        return 0;
      }
      process.stdout.write(table([['NAMESPACE', 'NAME', 'REVISION', 'WARNINGS'], ...data.items.map((r: any) => [r.metadata.namespace, r.metadata.name, String(r.revision), String(r.warnings?.length ?? 0)])]));
      return 0;
    },
  },

  analyze: {
    options: { file: { type: 'string', short: 'f', multiple: true }, ...ADMIN_OPT },
    help: `Usage: weft analyze -f FILE [-f FILE ...]
       weft analyze [--admin URL]

Checks resources offline, as istioctl analyze does, without a control plane: every resource
against Istio's schema and rules (the Gateway API's CRDs for its kinds): IST0106; what Weft cannot
apply and weft apply refuses, in a resource valid in Istio: WEFT0004; then the files together: a
subset no DestinationRule defines (IST0101); two VirtualServices for one host (IST0109); two
Sidecars of a namespace with the same workloadSelector (IST0110) or without one (IST0111); a
VirtualService rule or match never used because an earlier one takes its requests (IST0130,
IST0131); a security policy whose selector has no labels, a DENY rule that denies every TCP
connection, a private key in a jwks (IST0133); fields Weft accepts but does not apply yet
(WEFT0001); a delegation that makes fewer routes than it names: a delegate missing, with hosts
or not exported to its root, a delegate route whose match conflicts with its root's, a delegate
no root names (WEFT0003); a Telemetry access log entry without providers (IST0157), two
Telemetries of a namespace without a selector (IST0160). Each message names the resource and the field.
Without -f, analyzes the running mesh instead: its stored config, and, with its workloads, a route
destination host that no workload serves and no ServiceEntry names (IST0101), a DestinationRule
subset that selects none of its host's workloads (WEFT0002), an AuthorizationPolicy,
PeerAuthentication or RequestAuthentication that applies to no workload (IST0127), an
AuthorizationPolicy source namespace no workload runs in (IST0101), a DestinationRule TLS
mode its host's workloads refuse by their PeerAuthentications (WEFT0005), a Telemetry selector
that selects no workload (IST0101) and a workload two Telemetries select (IST0159).
Exit status: 0 when nothing is an Error (warnings allowed), 1 otherwise.

Options:
  -f, --file FILE      a file or directory to analyze (repeatable; "-" reads stdin)
      --admin URL      without -f: the control plane's admin API (default: the running weft up, or WEFT_ADMIN)`,
    async run(v, pos) {
      if (pos.length) throw new UsageError(`unexpected argument "${pos[0]}" (use -f FILE)`);
      if (!(v.file as string[] | undefined)?.length) return analyzeLive(v.admin as string | undefined);
      const files = expandFiles((v.file as string[] | undefined) ?? []);
      if (!files.length) throw new UsageError('no file given: use -f FILE');
      const { parseConfig, ConfigError, analyze } = await configApi();
      const resources = [];
      let errors = 0;
      for (const f of files) {
        try {
          resources.push(...parseConfig(readInput(f), f === '-' ? 'stdin' : f, true));
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
          for (const line of e.message.split('\n')) process.stdout.write(`Error [IST0106] ${line}\n`);
          errors += e.message.split('\n').length;
        }
      }
      for (const m of analyze(resources)) {
        if (m.level === 'Error') errors++;
        process.stdout.write(`${m.level} [${m.code}] (${m.resource}) ${m.path}: ${m.message}\n`);
      }
      if (errors === 0) process.stdout.write(`\u2714 No validation issues found in ${files.length} file(s), ${resources.length} resource(s).\n`);
      return errors === 0 ? 0 : 1;
    },
  },

  dashboard: {
    options: { ...ADMIN_OPT },
    help: `Usage: weft dashboard [--admin URL]

Prints the URL of the dashboard the control plane serves, once it has checked the control plane
answers there. Open it in a browser: the service graph with each edge's rate, errors, p99 and mTLS,
each service's rate, errors and duration over the last 15 minutes, each VirtualService's weights
beside the split observed, recent traces, and the config: each resource's validation state, and
which config revision each proxy has ACKed, with NACK reasons. It updates itself every 1.5 s.
It is read-only, and loads nothing from anywhere but the control plane (docs/dashboard.md).
Served on the admin API's address: with 'weft control --admin-tls', the browser must trust the
mesh's root certificate.

Options:
${ADMIN_HELP}`,
    async run(v, pos) {
      if (pos.length) throw new UsageError(`unexpected argument "${pos[0]}"`);
      const base = adminUrl(v.admin);
      await callAdmin(base, 'GET', '/version');
      process.stdout.write(`${base}/dashboard/\n`);
      return 0;
    },
  },

  ca: {
    options: { force: { type: 'boolean' }, ...ADMIN_OPT },
    help: `Usage: weft ca status
       weft ca rotate-root
       weft ca finish-rotation [--force]

The mesh's certificate authority (docs/ca.md).
  status            the roots every sidecar trusts, which certificate signs (with
                    --ca-intermediate: each root's intermediate CA, its expiry and renewal), where
                    a root rotation stands, and which connected sidecars do not hold the trust
                    bundle yet
  rotate-root       starts a root rotation: a new root joins the trust bundle, which every
                    sidecar is sent; once every connected sidecar holds it, the new root signs
                    (sidecars move to it as they renew). The old root stays trusted meanwhile.
                    With --ca-intermediate, the new root comes with an intermediate of its own.
  finish-rotation   the old root leaves the trust bundle: refused while a certificate it signed
                    may still be valid (status says until when), unless --force
Not for a plugged-in CA (weft control --ca-dir): its roots are rotated by changing its files.

Options:
  --force              finish-rotation now, even if certificates of the old root may be in use
${ADMIN_HELP}`,
    async run(v, pos) {
      const [step, extra] = pos;
      if (extra) throw new UsageError(`unexpected argument "${extra}"`);
      const base = adminUrl(v.admin);
      let s: any;
      if (step === 'status' || step === undefined) s = await callAdmin(base, 'GET', '/api/v1/ca');
      else if (step === 'rotate-root') s = await callAdmin(base, 'POST', '/api/v1/ca/rotate-root', { text: '{}', type: 'application/json' });
      else if (step === 'finish-rotation') s = await callAdmin(base, 'POST', '/api/v1/ca/finish-rotation', { text: JSON.stringify({ force: v.force === true }), type: 'application/json' });
      else throw new UsageError(`unknown step "${step}": weft ca status | rotate-root | finish-rotation`);
      process.stdout.write(caStatusText(s));
      return 0;
    },
  },

  token: {
    options: { workload: { type: 'string' }, namespace: { type: 'string', short: 'n' }, 'service-account': { type: 'string' }, ttl: { type: 'string' }, ...ADMIN_OPT },
    help: `Usage: weft token create --workload NAME [-n NAMESPACE] [--service-account SA] [--ttl DURATION]

Makes a join token for one workload identity: good once, for a short time. The control plane
keeps only its hash; this is the one time it is shown (on stdout; what it is for, on stderr).
A sidecar started with it proves that identity: give it as WEFT_JOIN_TOKEN (or in a file, with
--join-token-file) to 'weft proxy', with --ca-cert the control plane's root-cert.pem. It buys the
sidecar its workload certificate (spiffe://cluster.local/ns/NAMESPACE/sa/SERVICE_ACCOUNT) and is
spent. 'weft up' makes one for each workload it starts.

Options:
  --workload NAME          the workload it is for (required)
  -n, --namespace NS       (default: default)
  --service-account SA     (default: default)
  --ttl DURATION           how long it is good, like 10m or 90s (default: 10m; at most 24h)
${ADMIN_HELP}`,
    async run(v, pos) {
      if (pos[0] !== 'create' || pos.length > 1) throw new UsageError('usage: weft token create --workload NAME');
      if (!v.workload) throw new UsageError('--workload is required');
      const ttl = v.ttl === undefined ? undefined : /^\d+h$/.test(v.ttl) ? Number(v.ttl.slice(0, -1)) * 3600_000 : durationMs('ttl', v.ttl, 0);
      const body = JSON.stringify({ workload: v.workload, namespace: v.namespace ?? 'default', serviceAccount: v['service-account'] ?? 'default', ...(ttl !== undefined ? { ttlMs: ttl } : {}) });
      const r = await callAdmin(adminUrl(v.admin), 'POST', '/api/v1/tokens', { text: body, type: 'application/json' });
      process.stdout.write(`${r.token}\n`);
      process.stderr.write(`join token for ${r.identity.namespace}/${r.identity.workload} (service account ${r.identity.serviceAccount}), good once until ${r.expiresAt}\n`);
      return 0;
    },
  },

  delete: {
    options: { namespace: { type: 'string', short: 'n' }, file: { type: 'string', short: 'f', multiple: true }, ...ADMIN_OPT },
    help: `Usage: weft delete KIND NAME [-n NAMESPACE]
       weft delete -f FILE

Deletes a resource, or every resource named in FILE (as kubectl does: one that is not
there is reported, the others are still deleted, and the exit code is 1).

Options:
  -n, --namespace NS   (default: default)
  -f, --file FILE      delete the resources this file describes
${ADMIN_HELP}`,
    async run(v, pos) {
      const base = adminUrl(v.admin);
      const { parseConfig, ConfigError, keyOf, describeKey, resolveKind, KIND_NAMES } = await configApi();
      const keys: { kind: string; namespace: string; name: string }[] = [];
      if (v.file) {
        if (pos.length) throw new UsageError('give either -f FILE or KIND NAME, not both');
        for (const f of expandFiles(v.file)) {
          try {
            for (const r of parseConfig(readInput(f), f)) keys.push(keyOf(r));
          } catch (e) {
            if (e instanceof ConfigError) throw new CliError(e.message);
            throw e;
          }
        }
      } else {
        const [kindArg, name, extra] = pos;
        if (!kindArg || !name) throw new UsageError('expected KIND NAME, e.g. weft delete vs my-backend-service');
        if (extra) throw new UsageError(`unexpected argument "${extra}"`);
        const kind = resolveKind(kindArg);
        if (!kind) throw new UsageError(`unknown kind "${kindArg}"; Weft knows ${KIND_NAMES.join(', ')}`);
        keys.push({ kind, namespace: v.namespace ?? 'default', name });
      }
      // As kubectl does: each resource is deleted on its own; one that is not there is reported
      // and the rest still go. Deleting is idempotent, so a rerun finishes the job.
      const failures: string[] = [];
      for (const k of keys) {
        try {
          const r = await callAdmin(base, 'DELETE', `/api/v1/resources/${k.kind}/${encodeURIComponent(k.namespace)}/${encodeURIComponent(k.name)}`);
          process.stdout.write(`${describeKey(k)} deleted (revision ${r.revision})\n`);
        } catch (e) {
          if (!(e instanceof CliError) || keys.length === 1) throw e;
          failures.push(e.message);
        }
      }
      if (failures.length) throw new CliError(failures.join('\n'));
      return 0;
    },
  },

  exec: {
    options: { ...ADMIN_OPT },
    help: `Usage: weft exec WORKLOAD -- COMMAND [ARGS...]

Runs COMMAND as WORKLOAD: its outbound HTTP goes through that workload's sidecar, which routes
it by the mesh's config. Sets HTTP_PROXY, http_proxy and NODE_USE_ENV_PROXY=1 for the command.
  weft exec client -- curl -s http://my-backend-service/hello

Options:
${ADMIN_HELP}`,
    async run(v, pos, rest) {
      const [workload, extra] = pos;
      if (!workload) throw new UsageError('which workload? e.g. weft exec client -- curl http://my-backend-service/hello');
      if (extra) throw new UsageError(`unexpected argument "${extra}" (put the command after --)`);
      if (!rest.length) throw new UsageError('no command: put it after --, e.g. weft exec client -- curl http://my-backend-service/hello');
      const outbound = await outboundOf(workload, v.admin);
      const proxy = `http://${outbound}`;
      const child = spawn(rest[0], rest.slice(1), {
        stdio: 'inherit',
        env: { ...process.env, HTTP_PROXY: proxy, http_proxy: proxy, NODE_USE_ENV_PROXY: '1', NO_PROXY: 'localhost,127.0.0.1,::1', no_proxy: 'localhost,127.0.0.1,::1' },
      });
      return new Promise((resolve, reject) => {
        child.on('error', (e: NodeJS.ErrnoException) => reject(new CliError(`cannot run ${rest[0]}: ${e.code === 'ENOENT' ? 'command not found' : e.message}`)));
        child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + (({ SIGINT: 2, SIGTERM: 15, SIGKILL: 9 }) as Record<string, number>)[signal] || 1 : 1)));
      });
    },
  },

  ...SIGNAL_COMMANDS,

  up: {
    options: { 'admin-port': { type: 'string' }, 'xds-port': { type: 'string' }, heartbeat: { type: 'string' }, 'reset-config': { type: 'boolean' }, 'ca-dir': { type: 'string' }, 'ca-intermediate': { type: 'boolean' } },
    help: `Usage: weft up DIR

Runs the mesh described by DIR/weft.yaml on this machine: the control plane (config in
$WEFT_HOME/data), every workload's app as its own process, and a sidecar process beside each.
Prints what runs where, and stops everything on Ctrl-C.

The Istio config files the mesh file lists are applied to a new store only. On a restart the
stored config is kept, changes made with 'weft apply' included, and weft up says so.
One weft up runs per $WEFT_HOME: a second one says where the first runs and changes nothing.

Options:
  --reset-config       start from the mesh file's config again: delete what is stored, apply the files
  --admin-port PORT    the control plane's admin API (default: 15080; 0 picks a free one)
  --xds-port PORT      the control plane's xDS port, TLS (default: 15012; 0 picks a free one)
  --heartbeat DUR      sidecar heartbeat interval (default: 10s)
  --ca-dir DIR         the control plane signs with this CA (Istio's cacerts layout; weft control --help)
  --ca-intermediate    the control plane signs through an intermediate CA under its own root
                       (kept once made; weft control --help)
`,
    async run(v, pos) {
      if (pos.length !== 1) throw new UsageError(pos.length ? `expected one directory, got ${pos.length} arguments` : 'which example? e.g. weft up examples/canary');
      const { runUp } = await import('./up.ts');
      return runUp(pos[0], {
        adminPort: int('admin-port', v['admin-port'], 15080),
        xdsPort: int('xds-port', v['xds-port'], 15012),
        heartbeat: v.heartbeat,
        resetConfig: v['reset-config'] === true,
        ...(v['ca-dir'] !== undefined ? { caDir: path.resolve(v['ca-dir']) } : {}),
        ...(v['ca-intermediate'] ? { caIntermediate: true } : {}),
      });
    },
  },
};

/**
 * What a sidecar proves itself with: the mesh root to trust (--ca-cert, or the one the local
 * control plane wrote) and its join token (--join-token-file, or WEFT_JOIN_TOKEN, taken out of the
 * environment once read, so that nothing this process starts inherits it).
 */
function sidecarCredentials(caCert: string | undefined, tokenFile: string | undefined): { rootPem: string; joinToken: string; rejoin?: () => string | undefined } {
  const caFile = caCert ?? path.join(weftHome(), 'data', 'root-cert.pem');
  let rootPem: string;
  try {
    rootPem = fs.readFileSync(caFile, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read the mesh's root certificate ${caFile} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): give --ca-cert FILE, the control plane's root-cert.pem`);
  }
  if (!rootPem.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`${caFile} holds no PEM certificate: give --ca-cert the control plane's root-cert.pem`);
  let joinToken = process.env.WEFT_JOIN_TOKEN;
  delete process.env.WEFT_JOIN_TOKEN;
  if (tokenFile !== undefined) {
    try {
      joinToken = fs.readFileSync(tokenFile, 'utf8').trim();
    } catch (e) {
      throw new UsageError(`cannot read --join-token-file ${tokenFile} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
  if (!joinToken) throw new UsageError('a sidecar needs a join token to prove who it is: set WEFT_JOIN_TOKEN or give --join-token-file (weft token create makes one)');
  // Should its certificate ever expire unrenewed, a token written to the file since is a way back.
  const rejoin = tokenFile === undefined ? undefined : () => {
    try {
      const t = fs.readFileSync(tokenFile, 'utf8').trim();
      return t && t !== joinToken ? t : undefined;
    } catch {
      return undefined;
    }
  };
  return { rootPem, joinToken, rejoin };
}

/** `weft ca`'s output: what the admin API's /api/v1/ca says, as a person reads it. */
function caStatusText(s: any): string {
  const phase: Record<string, string> = {
    none: 'none',
    distributing: 'the new root is being sent to every sidecar; the old root still signs',
    'signing-with-new-root': 'the new root signs; the old one is still trusted',
  };
  const lines = [
    `CA: ${s.mode === 'plugged-in' ? `plugged in from ${s.caDir}` : `generated by Weft${s.withIntermediate ? ', signing through an intermediate CA under each root' : ''}`} (trust domain ${s.trustDomain})`,
    `signing with: ${s.signing.subject}, until ${s.signing.notAfter}`,
    'trust bundle:',
    ...s.roots.flatMap((r: any) => [
      `  ${r.subject}  sha256 ${r.sha256}  until ${r.notAfter}${r.signing ? (r.intermediate ? '  (signs, through its intermediate)' : '  (signs)') : ''}`,
      ...(r.intermediate ? [`    intermediate: ${r.intermediate.subject}  sha256 ${r.intermediate.sha256}  until ${r.intermediate.notAfter}${r.intermediate.renewsAfter ? `  (renewed under the same root after ${r.intermediate.renewsAfter})` : ''}`] : []),
    ]),
    `root rotation: ${phase[s.rotation.phase] ?? s.rotation.phase}`,
  ];
  if (s.rotation.oldRootsNeededUntil) lines.push(`  the old root may leave the bundle (weft ca finish-rotation) after ${s.rotation.oldRootsNeededUntil}`);
  if (s.proxiesWithoutTrustBundle?.length) lines.push(`sidecars without the current trust bundle: ${s.proxiesWithoutTrustBundle.join(', ')}`);
  return lines.join('\n') + '\n';
}
