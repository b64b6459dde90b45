// The sidecar's config snapshot for a mesh, as the sidecar builds it: the control plane's full
// translation for one proxy, loaded type by type through the sidecar's own conversion (a NACK
// throws). For tests that run the request path's pure parts, or the request path in process.
import type { MeshSnapshot, Workload } from '../src/control/model/model.ts';
import { translate } from '../src/control/translate/translate.ts';
import { EMPTY_CONFIG, type RuntimeConfig, nextConfig } from '../src/proxy/config.ts';
import { TYPE } from '../src/xds/types.ts';

export function sidecarSnapshot(mesh: MeshSnapshot, proxy: Workload): RuntimeConfig {
  const x = translate(mesh, proxy);
  let cfg = EMPTY_CONFIG;
  cfg = nextConfig(cfg, TYPE.listener, Object.values(x.listeners) as any[], '1');
  cfg = nextConfig(cfg, TYPE.cluster, Object.values(x.clusters) as any[], '1');
  cfg = nextConfig(cfg, TYPE.route, Object.values(x.routes) as any[], '1');
  cfg = nextConfig(cfg, TYPE.endpoint, Object.values(x.endpoints) as any[], '1');
  return cfg;
}
