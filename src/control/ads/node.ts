// What a connecting proxy says about itself: the xDS node's metadata becomes a registry Workload.
// Weft's sidecar sends every key of META (src/xds/node-meta.ts); Envoy or a proxyless gRPC client
// that sends none is registered as a pure client (no service, no listeners of its own).
import type { Node } from '../../xds/protos.ts';
import { META } from '../../xds/node-meta.ts';
import type { Workload } from '../model/model.ts';
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
  for (const k of ['servicePort', 'inboundPort', 'appPort', 'outboundPort'] as const) {
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
      healthy: m[META.healthy] !== false && m[META.healthy] !== 'false',
    },
  };
}
