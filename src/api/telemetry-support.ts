// What Weft applies of a Telemetry (telemetry.istio.io), field by field, and what it warns of
// (support.ts calls this; the rules are those of support.ts: nothing valid is dropped in silence).
// A Telemetry changes what is logged, measured and traced, never who may talk to whom: nothing of
// it is refused, what Weft cannot apply yet is accepted with a warning naming the field.
//   - accessLogging: applied by the sidecars' access logs (control/translate/accesslog.ts);
//   - metrics: not applied yet (warned);
//   - tracing: applied (control/translate/tracing.ts): providers (the first, an opentelemetry one),
//     match.mode, randomSamplingPercentage, disableSpanReporting, customTags (literal, environment,
//     header), enableIstioTags; the rest is warned;
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
    if (isObject(t)) tracingSupport(t, index('spec.tracing', i), warn);
  });
  list(spec.metrics).forEach((m, i) => {
    if (isObject(m)) warn(index('spec.metrics', i), "accepted, not applied yet: the sidecars' metrics are Istio's standard metrics, as without a Telemetry");
  });
  list(spec.accessLogging).forEach((l, i) => {
    if (isObject(l)) warn(index('spec.accessLogging', i), "accepted, not applied yet: the mesh config's access log (accessLogFile) applies");
  });
}

/** What a tracing entry has that the sidecars do not apply. */
function tracingSupport(t: Obj, p: string, warn: (path: string, message: string) => void): void {
  if (list(t.providers).length > 1) warn(`${p}.providers`, 'accepted, only the first provider is applied (as in Istio: one provider per mode)');
  if (t.useRequestIdForTraceSampling === false) warn(`${p}.useRequestIdForTraceSampling`, 'accepted, not applied yet: sampling is decided by the incoming trace context, else at random');
  if (t.disableContextPropagation === true) warn(`${p}.disableContextPropagation`, 'accepted, not applied yet: the sidecars propagate the trace context (traceparent, b3)');
  const tags = isObject(t.customTags) ? t.customTags : {};
  for (const [name, tag] of Object.entries(tags)) {
    if (isObject(tag) && tag.formatter != null) warn(`${p}.customTags.${name}.formatter`, 'accepted, not applied yet: the tag is not written (literal, environment and header tags are)');
  }
}
