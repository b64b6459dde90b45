// PURE: a proxy's access logs by its Telemetries' accessLogging, as Istio's pilot makes them
// (pilot/pkg/model/telemetry.go AccessLogging and mergeLogs, telemetry_logging.go,
// networking/core/accesslog.go buildAccessLogFromTelemetry):
//   - the Telemetries that apply (api/telemetry-select.ts: root, namespace, workload) are walked in
//     that order; an entry applies to the side its match.mode names (CLIENT: the outbound
//     listeners, SERVER: the inbound ones; none or CLIENT_AND_SERVER: both);
//   - the providers in scope are those of the last level that names some (else the mesh config's
//     defaultProviders.accessLogging); an entry without providers takes those of the entry before
//     it; `disabled: true` turns a provider off, a later entry on again; a provider's filter is
//     that of the last entry that names it;
//   - each provider in scope becomes one logger, in the order of their names: an
//     envoyFileAccessLog provider a file logger (the built-in `envoy`, with no logFormat of its
//     own, in the mesh config's accessLogEncoding and accessLogFormat), its filter Envoy's CEL
//     access log filter; providers of other kinds log nothing here (Weft has none of them:
//     `weft apply` warns);
//   - where no Telemetry has accessLogging and the mesh config has no default provider, or no
//     provider named is one the mesh has, the mesh config's accessLogFile applies (accesslog.ts).
// A filter the sidecars cannot evaluate is left out (every exchange is logged), as `weft apply`
// warns; sending it would make every sidecar refuse its listeners.
import type { MeshConfig, MeshExtensionProvider } from '../../api/meshconfig.ts';
import { findExtensionProvider } from '../../api/meshconfig.ts';
import type { ApplyingTelemetry } from '../../api/telemetry-select.ts';
import type { TelemetryAccessLogging } from '../../api/types.ts';
import { celUnsupported } from '../../api/cel-support.ts';
import { TYPE } from '../../xds/types.ts';
import { accessLogsOf, fileLog, meshFileLog, ISTIO_JSON_FORMAT } from './accesslog.ts';

/** Which side of the exchange a listener logs: CLIENT (outbound), SERVER (inbound). */
export type LogSide = 'CLIENT' | 'SERVER';

export const CEL_FILTER = 'envoy.access_loggers.extension_filters.cel';

interface ProviderLogging {
  disabled?: boolean;
  filter?: { expression?: string };
}

const BUILTIN_ENVOY = 'envoy';

const providerNames = (l: TelemetryAccessLogging) => (l.providers ?? []).map((p) => p.name);
const matches = (l: TelemetryAccessLogging, side: LogSide) => !l.match?.mode || l.match.mode === 'CLIENT_AND_SERVER' || l.match.mode === side;

/** Istio's mergeLogs: provider name -> how it logs; undefined when Telemetry does not configure access logging (the mesh config's applies). */
export function mergeLogs(applying: readonly ApplyingTelemetry[], mc: MeshConfig | undefined, side: LogSide): Map<string, ProviderLogging> | undefined {
  const levels = applying.map((a) => a.telemetry.spec.accessLogging ?? []).filter((l) => l.length > 0);
  const defaults = mc?.defaultProviders?.accessLogging ?? [];
  if (!levels.length && !defaults.length) return undefined;
  const out = new Map<string, ProviderLogging>();
  if (!levels.length) {
    for (const d of defaults) out.set(d, {});
    return out;
  }
  let inScope = defaults;
  const filters = new Map<string, ProviderLogging>();
  for (const level of levels) {
    const names = new Set<string>();
    for (const l of level) {
      if (!matches(l, side)) continue;
      for (const p of providerNames(l)) {
        names.add(p);
        filters.set(p, l.filter ? { filter: l.filter } : {});
      }
    }
    if (names.size) inScope = [...names];
  }
  let parent = defaults;
  for (const level of levels) {
    for (const l of level) {
      const named = providerNames(l);
      const names = named.length ? named : parent;
      parent = names;
      for (const p of names) {
        if (!inScope.includes(p) || !matches(l, side)) continue;
        out.set(p, l.disabled === true ? { disabled: true } : (filters.get(p) ?? {}));
      }
    }
  }
  return out;
}

/**
 * The access_log of a proxy's listeners of one side: by its Telemetries where they (or the mesh
 * config's defaultProviders) configure access logging, else the mesh config's accessLogFile.
 * undefined: no access log.
 */
export function accessLogsFor(applying: readonly ApplyingTelemetry[], mc: MeshConfig | undefined, side: LogSide): object[] | undefined {
  const merged = mergeLogs(applying, mc, side);
  const configs: { name: string; logger: object; logging: ProviderLogging }[] = [];
  for (const [name, logging] of merged ?? []) {
    const provider = findExtensionProvider(mc, name);
    const logger = provider && loggerOf(provider, mc);
    if (logger) configs.push({ name: provider.name, logger, logging });
  }
  // Istio: no logging config (no provider the mesh has that logs): the mesh config's applies.
  if (!configs.length) return accessLogsOf(mc);
  configs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const logs = configs.filter((c) => !c.logging.disabled).map((c) => withFilter(c.logger, c.logging.filter?.expression));
  return logs.length ? logs : undefined;
}

/** An envoyFileAccessLog provider's file logger (Istio's telemetryAccessLog); undefined for providers that log nothing here. */
function loggerOf(p: MeshExtensionProvider, mc: MeshConfig | undefined): object | undefined {
  const f = p.envoyFileAccessLog as { path?: string; logFormat?: { text?: string; labels?: Record<string, unknown> }; omitEmptyValues?: boolean } | undefined;
  if (!f || typeof f !== 'object') return undefined;
  const path = f.path || '/dev/stdout';
  if (p.name === BUILTIN_ENVOY && !f.logFormat && !f.omitEmptyValues) return meshFileLog(path, mc);
  const labels = f.logFormat?.labels;
  if (labels !== undefined && labels !== null) return fileLog(path, { json: Object.keys(labels).length ? labels : { ...ISTIO_JSON_FORMAT } });
  return fileLog(path, { text: f.logFormat?.text });
}

/** Envoy's CEL access log filter on a logger, where the sidecars can evaluate the expression. */
function withFilter(logger: object, expression: string | undefined): object {
  if (expression === undefined || celUnsupported(expression)) return logger;
  return { ...logger, filter: { extension_filter: { name: CEL_FILTER, typed_config: { '@type': TYPE.celAccessLogFilter, expression } } } };
}
