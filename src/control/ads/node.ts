// What a connecting proxy says about itself: the xDS node's metadata becomes a registry Workload.
// Weft's sidecar sends every key of META (src/xds/node-meta.ts); Envoy or a proxyless gRPC client
// that sends none is registered as a pure client (no service, no listeners of its own).
import type { Node } from '../../xds/protos.ts';
import { META, META_PORTS, PEER_EXCHANGE_ALPN } from '../../xds/node-meta.ts';
import type { Workload, WorkloadPort } from '../model/model.ts';
import { DEFAULT_NAMESPACE } from '../model/model.ts';


export function workloadFromNode(node: Node): { workload: Workload } | { error: string } {
  const m = node.metadata ?? {};
  const str = (k: string): string | undefined => (typeof m[k] === 'string' && m[k] !== '' ? (m[k] as string) : undefined);
  const port = (k: string): number | undefined | string => {
    const v = m[k];
    if (v === undefined || v === null || v === '') return undefined;
    const n = typeof v === 'number' ? v : Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 65535) return `metadata.${k}: must be a port number (1-65535), got ${JSON.stringify(v)}`;
    return n;
  };
  const ports: Record<string, number | undefined> = {};
  for (const k of ['servicePort', 'inboundPort', 'appPort', 'outboundPort', 'adminPort'] as const) {
    const p = port(META[k]);
    if (typeof p === 'string') return { error: p };
    ports[k] = p;
  }
  const labelsRaw = m[META.labels] ?? {};
  if (typeof labelsRaw !== 'object' || Array.isArray(labelsRaw)) return { error: `metadata.${META.labels}: must be a map of strings` };
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(labelsRaw as Record<string, unknown>)) {
    if (typeof v !== 'string') return { error: `metadata.${META.labels}.${k}: must be a string` };
    labels[k] = v;
  }
  const declared = portsFromMetadata(m);
  if (typeof declared === 'string') return { error: declared };
  if (declared) {
    // The older single-port keys, if sent at all, must agree; the first declared port is what they mean.
    ports.servicePort = declared[0].port;
    ports.inboundPort = declared[0].inboundPort;
    ports.appPort = declared[0].appPort;
  }
  const service = str(META.service);
  if (service && (ports.inboundPort === undefined || ports.appPort === undefined)) {
    return { error: `metadata.${META.service} is set, so ${META.inboundPort} and ${META.appPort} are required` };
  }
  return {
    workload: {
      proxyId: node.id,
      name: str(META.workload) ?? node.id,
      namespace: str(META.namespace) ?? DEFAULT_NAMESPACE,
      service,
      servicePort: ports.servicePort ?? 80,
      labels,
      address: str(META.address) ?? '127.0.0.1',
      inboundPort: ports.inboundPort,
      appPort: ports.appPort,
      outboundPort: ports.outboundPort,
      ...(ports.adminPort !== undefined ? { adminPort: ports.adminPort } : {}),
      ...(declared ? { ports: declared } : {}),
      healthy: m[META.healthy] !== false && m[META.healthy] !== 'false',
      // Weft's sidecar that says so and Istio's proxies (ISTIO_VERSION in their metadata) speak
      // Istio's TCP metadata exchange; an older Weft sidecar, a stock Envoy or a proxyless gRPC
      // client does not (translate/peer-metadata.ts).
      ...(m[META.peerExchange] === PEER_EXCHANGE_ALPN || typeof m.ISTIO_VERSION === 'string' ? { peerExchange: true } : {}),
    },
  };
}

// ---- Several service ports (branch tcp). Kept apart from META above so that moving the keys to
// src/xds/ merges easily. ------------------------------------------------------------------------

/**
 * PORTS: a list of {name, port, appProtocol?, inboundPort, appPort}, one per service port, as a
 * Kubernetes Service declares them. A sidecar that sends it also sends the first entry under the
 * single-port keys above, so that an older control plane still sees one port.
 */

function portsFromMetadata(m: Record<string, unknown>): WorkloadPort[] | undefined | string {
  const raw = m[META_PORTS];
  if (raw === undefined || raw === null) return undefined;
  const at = `metadata.${META_PORTS}`;
  if (!Array.isArray(raw) || raw.length === 0) return `${at}: must be a non-empty list of {name, port, inboundPort, appPort}`;
  const out: WorkloadPort[] = [];
  const names = new Set<string>();
  const numbers = new Set<number>();
  for (const [i, p] of raw.entries()) {
    if (typeof p !== 'object' || p === null || Array.isArray(p)) return `${at}[${i}]: must be a map`;
    const o = p as Record<string, unknown>;
    if (typeof o.name !== 'string' || o.name === '') return `${at}[${i}].name: required`;
    if (names.has(o.name)) return `${at}[${i}].name: "${o.name}" is used twice`;
    names.add(o.name);
    const num: Record<string, number> = {};
    for (const k of ['port', 'inboundPort', 'appPort']) {
      const n = typeof o[k] === 'number' ? o[k] : Number(o[k]);
      if (!Number.isInteger(n) || n < 1 || n > 65535) return `${at}[${i}].${k}: must be a port number (1-65535), got ${JSON.stringify(o[k])}`;
      num[k] = n;
    }
    if (numbers.has(num.port)) return `${at}[${i}].port: ${num.port} is used twice`;
    numbers.add(num.port);
    if (o.appProtocol !== undefined && typeof o.appProtocol !== 'string') return `${at}[${i}].appProtocol: must be a string`;
    out.push({ name: o.name, port: num.port, ...(o.appProtocol ? { appProtocol: o.appProtocol as string } : {}), inboundPort: num.inboundPort, appPort: num.appPort });
  }
  return out;
}
