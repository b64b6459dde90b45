// What Weft applies of a Telemetry (telemetry.istio.io), field by field, and what it warns of
// (support.ts calls this; the rules are those of support.ts: nothing valid is dropped in silence).
// A Telemetry changes what is logged, measured and traced, never who may talk to whom: nothing of
// it is refused, what Weft cannot apply yet is accepted with a warning naming the field.
//   - accessLogging: applied by the sidecars' access logs (control/translate/accesslog.ts);
//   - metrics: not applied yet (warned);
//   - tracing: not applied yet (warned);
//   - targetRef(s): for gateways, waypoints and services, never a sidecar (as in Istio): warned.
import type { FieldError } from './types.ts';
import { index, isObject, type Obj } from './schema.ts';

const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

export function telemetrySupport(spec: Obj, out: { warnings: FieldError[] }): void {
  const warn = (path: string, message: string) => out.warnings.push({ path, message });
  for (const k of ['targetRef', 'targetRefs']) {
    if (spec[k] !== undefined && spec[k] !== null) warn(`spec.${k}`, 'accepted, not applied: a Telemetry with a targetRef applies to Gateways, waypoints and services, never to sidecars (as in Istio); Weft has neither, so it applies to no workload');
  }
  list(spec.tracing).forEach((t, i) => {
    if (isObject(t)) warn(index('spec.tracing', i), 'accepted, not applied yet: no spans are reported');
  });
  list(spec.metrics).forEach((m, i) => {
    if (isObject(m)) warn(index('spec.metrics', i), "accepted, not applied yet: the sidecars' metrics are Istio's standard metrics, as without a Telemetry");
  });
  list(spec.accessLogging).forEach((l, i) => {
    if (isObject(l)) warn(index('spec.accessLogging', i), "accepted, not applied yet: the mesh config's access log (accessLogFile) applies");
  });
}
