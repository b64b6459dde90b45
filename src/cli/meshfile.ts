// The mesh file (weft.yaml) that `weft up` runs: which Istio config to apply and which
// workloads to start. Errors name the file and the field.
import YAML from 'yaml';
import { CliError } from './common.ts';

export interface MeshWorkload {
  name: string;
  namespace: string;
  service?: string;
  servicePort: number;
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
      if (!['name', 'namespace', 'service', 'servicePort', 'labels', 'command', 'env'].includes(k)) fail(`${at}.${k}`, 'unknown field (expected name, namespace, service, servicePort, labels, command, env)');
    }
    if (typeof o.name !== 'string' || !NAME.test(o.name)) fail(`${at}.name`, 'required: a DNS-1123 label such as hello-v1');
    const name = o.name as string;
    if (seen.has(name)) fail(`${at}.name`, `"${name}" is used twice`);
    seen.add(name);
    if (o.service !== undefined && (typeof o.service !== 'string' || !NAME.test(o.service))) fail(`${at}.service`, 'must be a DNS-1123 label');
    if (o.service !== undefined && o.command === undefined) fail(`${at}.command`, 'required when the workload serves a service');
    const port = o.servicePort ?? 80;
    if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) fail(`${at}.servicePort`, 'must be a port number (1-65535)');
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
      service: o.service as string | undefined,
      servicePort: port as number,
      labels: strMap(o.labels, `${at}.labels`),
      command: cmd as string[] | undefined,
      env: strMap(o.env, `${at}.env`),
    };
  });
  return { config: config as string[], workloads };
}

function isMap(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
