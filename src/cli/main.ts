#!/usr/bin/env node
// The `weft` command. It talks to the control plane's admin API only, except `control` and
// `proxy`, which run those components in this process, and `up`, which starts them as children.
import type { ParseArgsConfig } from 'node:util';
import { WEFT_VERSION } from '../version.ts';
import { UsageError, CliError } from './common.ts';
import { COMMANDS } from './commands.ts';

// Not an ESM import, which runs the module's lazy getters (see src/proxy/sidecar.ts).
const { parseArgs } = process.getBuiltinModule('node:util');

const MAIN_HELP = `weft ${WEFT_VERSION}: a service mesh. Sidecars configured over Envoy xDS v3, Istio's config API.

Usage: weft <command> [options]

Commands:
  up <dir>                 run an example: control plane, workloads and their sidecars
  control                  run the control plane (config store, registry, xDS, admin API)
  proxy                    run one sidecar proxy
  apply -f <file>          create or update resources from YAML
  analyze -f <file>        check resources offline, as istioctl analyze does
  get <kind> [name]        show resources (virtualservices, destinationrules), proxies, endpoints
  delete <kind> <name>     delete a resource (or: delete -f <file>)
  token create             make a one-time join token for a workload identity
  ca status|rotate-root    the mesh's CA: its roots, and rotating the root (finish-rotation ends it)
  dashboard                print the URL of the dashboard the control plane serves
  exec <workload> -- <cmd> run a command whose outbound HTTP goes through that workload's sidecar
  stat [VIEW]              golden signals per workload, service or edge (VIEW: workloads,
                           services, edges): rate, errors, latency, mTLS share
  top [VIEW]               the same, as a live table
  tap <workload>           a workload's requests as they happen
  version                  print the version

Run 'weft <command> --help' for a command's options.
The CLI finds the control plane at --admin, else $WEFT_ADMIN, else the one 'weft up' started
(recorded in $WEFT_HOME/up.json, WEFT_HOME defaulting to ./.weft), else http://127.0.0.1:15080.
Changes (apply, delete) and tap carry the admin token: $WEFT_ADMIN_TOKEN, else $WEFT_HOME/data/admin.token,
which the control plane makes on its first start.
`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(MAIN_HELP);
    return name ? 0 : 2;
  }
  if (name === '--version') {
    process.stdout.write(`weft ${WEFT_VERSION}\n`);
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`weft: unknown command "${name}". Commands: ${Object.keys(COMMANDS).join(', ')}. See 'weft --help'.\n`);
    return 2;
  }
  // Everything after a bare "--" belongs to the command (weft exec client -- curl ...).
  const dash = rest.indexOf('--');
  const own = dash >= 0 ? rest.slice(0, dash) : rest;
  const passthrough = dash >= 0 ? rest.slice(dash + 1) : [];
  if (own.includes('--help') || own.includes('-h')) {
    process.stdout.write(cmd.help);
    return 0;
  }
  try {
    const config: ParseArgsConfig = { args: own, options: cmd.options, allowPositionals: true, strict: true };
    const parsed = parseArgs(config);
    return await cmd.run(parsed.values as Record<string, any>, parsed.positionals, passthrough);
  } catch (e) {
    if (e instanceof UsageError || (e as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`weft ${name}: ${(e as Error).message}\nSee 'weft ${name} --help'.\n`);
      return 2;
    }
    if (e instanceof CliError) {
      process.stderr.write(`weft ${name}: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`weft ${name}: ${(e as Error).stack ?? e}\n`);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
// Long-running commands (up, control, proxy) resolve only when they are done.
process.exitCode = code;
