// The mesh file (weft.yaml) that `weft up` runs: which Istio config to apply and which
// workloads to start. Errors name the file and the field.
import YAML from 'yaml';
import { CliError } from './common.ts';
import { portHandling } from '../control/model/protocol.ts';

/** A declared service port; its app port and sidecar inbound port are picked by `weft up`. */
export interface MeshPort {
  name: string;
  port: number;
  appProtocol?: string;
}

export interface MeshWorkload {
  name: string;
  namespace: string;
  /** The service account its certificate names (spiffe://<td>/ns/<namespace>/sa/<this>); Kubernetes' "default" unless given. */
  serviceAccount: string;
  service?: string;
  /** The service ports: `ports`, or the one HTTP port `servicePort` (80 by default) describes. */
  ports: MeshPort[];
  labels: Record<string, string>;
  command?: string[];
  env: Record<string, string>;
}

export interface MeshFile {
  config: string[];
  workloads: MeshWorkload[];
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function parseMeshFile(text: string, file: string): MeshFile {
  let doc: unknown;
  try {
    doc = YAML.parse(text, { prettyErrors: true });
  } catch (e) {
    throw new CliError(`${file}: YAML syntax error: ${(e as Error).message}`);
  }
  const fail = (path: string, msg: string): never => {
    throw new CliError(`${file}: ${path}: ${msg}`);
  };
  if (!isMap(doc)) fail('(top level)', 'must be a mapping with "workloads" (and optionally "config")');
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) if (!['config', 'workloads'].includes(k)) fail(k, 'unknown field (expected config, workloads)');
  const config = d.config ?? [];
  if (!Array.isArray(config) || !config.every((c) => typeof c === 'string')) fail('config', 'must be a list of file names');
  if (!Array.isArray(d.workloads) || d.workloads.length === 0) fail('workloads', 'must be a non-empty list');
  const seen = new Set<string>();
  const workloads = (d.workloads as unknown[]).map((w, i): MeshWorkload => {
    const at = `workloads[${i}]`;
    if (!isMap(w)) fail(at, 'must be a mapping');
    const o = w as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (!['name', 'namespace', 'serviceAccount', 'service', 'servicePort', 'ports', 'labels', 'command', 'env'].includes(k)) fail(`${at}.${k}`, 'unknown field (expected name, namespace, serviceAccount, service, servicePort, ports, labels, command, env)');
    }
    if (typeof o.name !== 'string' || !NAME.test(o.name)) fail(`${at}.name`, 'required: a DNS-1123 label such as hello-v1');
    const name = o.name as string;
    if (o.namespace !== undefined && (typeof o.namespace !== 'string' || !NAME.test(o.namespace))) fail(`${at}.namespace`, 'must be a DNS-1123 label such as default');
    if (o.serviceAccount !== undefined && (typeof o.serviceAccount !== 'string' || !NAME.test(o.serviceAccount))) fail(`${at}.serviceAccount`, 'must be a DNS-1123 label such as bookinfo-productpage');
    // Names are unique per namespace, as Kubernetes names are.
    const id = `${typeof o.namespace === 'string' ? o.namespace : 'default'}/${name}`;
    if (seen.has(id)) fail(`${at}.name`, `"${name}" is used twice in namespace ${id.split('/')[0]}`);
    seen.add(id);
    if (o.service !== undefined && (typeof o.service !== 'string' || !NAME.test(o.service))) fail(`${at}.service`, 'must be a DNS-1123 label');
    if (o.service !== undefined && o.command === undefined) fail(`${at}.command`, 'required when the workload serves a service');
    if (o.servicePort !== undefined && o.ports !== undefined) fail(`${at}.ports`, 'give either servicePort (one HTTP port) or ports, not both');
    let ports: MeshPort[];
    if (o.ports !== undefined) ports = parsePorts(o.ports, `${at}.ports`, fail);
    else {
      const port = o.servicePort ?? 80;
      if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) fail(`${at}.servicePort`, 'must be a port number (1-65535)');
      ports = [{ name: 'http', port: port as number }];
    }
    if (o.ports !== undefined && o.service === undefined) fail(`${at}.ports`, 'only a workload that serves a service has ports (set service too)');
    const strMap = (v: unknown, p: string): Record<string, string> => {
      if (v === undefined) return {};
      if (!isMap(v) || !Object.values(v as object).every((x) => typeof x === 'string')) fail(p, 'must be a map of strings');
      return v as Record<string, string>;
    };
    const cmd = o.command;
    if (cmd !== undefined && (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((c) => typeof c === 'string'))) fail(`${at}.command`, 'must be a non-empty list of strings');
    return {
      name,
      namespace: typeof o.namespace === 'string' ? o.namespace : 'default',
      serviceAccount: typeof o.serviceAccount === 'string' ? o.serviceAccount : 'default',
      service: o.service as string | undefined,
      ports,
      labels: strMap(o.labels, `${at}.labels`),
      command: cmd as string[] | undefined,
      env: strMap(o.env, `${at}.env`),
    };
  });
  return { config: config as string[], workloads };
}

const PORT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function parsePorts(v: unknown, at: string, fail: (path: string, msg: string) => never): MeshPort[] {
  if (!Array.isArray(v) || v.length === 0) fail(at, 'must be a non-empty list of {name, port, appProtocol}');
  const names = new Set<string>();
  const numbers = new Set<number>();
  const envNames = new Map<string, string>();
  return (v as unknown[]).map((p, i): MeshPort => {
    const pat = `${at}[${i}]`;
    if (!isMap(p)) fail(pat, 'must be a mapping with name and port');
    const o = p as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!['name', 'port', 'appProtocol'].includes(k)) fail(`${pat}.${k}`, 'unknown field (expected name, port, appProtocol)');
    if (typeof o.name !== 'string' || !PORT_NAME.test(o.name) || o.name.length > 63) fail(`${pat}.name`, 'required: a DNS-1123 label such as http-web or tcp-db; its prefix may choose the protocol');
    const name = o.name as string;
    if (names.has(name)) fail(`${pat}.name`, `"${name}" is used twice`);
    names.add(name);
    const env = portEnvName(name);
    if (envNames.has(env)) fail(`${pat}.name`, `"${name}" and "${envNames.get(env)}" both give the app $${env}`);
    envNames.set(env, name);
    if (!Number.isInteger(o.port) || (o.port as number) < 1 || (o.port as number) > 65535) fail(`${pat}.port`, 'required: a port number (1-65535)');
    if (numbers.has(o.port as number)) fail(`${pat}.port`, `${o.port} is used twice`);
    numbers.add(o.port as number);
    if (o.appProtocol !== undefined && (typeof o.appProtocol !== 'string' || o.appProtocol === '')) fail(`${pat}.appProtocol`, 'must be a protocol name such as http, http2, grpc, tcp, tls, mysql');
    const port: MeshPort = { name, port: o.port as number, ...(o.appProtocol !== undefined ? { appProtocol: o.appProtocol as string } : {}) };
    if (portHandling(port) === 'udp') fail(o.appProtocol !== undefined ? `${pat}.appProtocol` : `${pat}.name`, 'UDP is not supported: the sidecar proxies TCP only');
    return port;
  });
}

/** The variable that gives the app a port's own port number: "http-web" -> PORT_HTTP_WEB. */
export function portEnvName(name: string): string {
  return `PORT_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

function isMap(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
