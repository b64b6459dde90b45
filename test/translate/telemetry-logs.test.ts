// A Telemetry's accessLogging in the xDS (translate/telemetry-logs.ts), as Istio's pilot merges it
// (pilot/pkg/model/telemetry_logging_test.go TestAccessLogging, its cases ported: which providers
// log, on which side), and as the sidecar loads it (its CEL filter compiled, or the listener NACKed
// naming what it cannot evaluate). No sockets.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MeshConfig } from '../../src/api/meshconfig.ts';
import type { Telemetry } from '../../src/api/types.ts';
import { checkResource } from '../../src/api/index.ts';
import type { MeshSnapshot } from '../../src/control/model/model.ts';
import { ISTIO_JSON_FORMAT, ISTIO_TEXT_FORMAT } from '../../src/control/translate/accesslog.ts';
import { translate } from '../../src/control/translate/translate.ts';
import { accessLogsFor } from '../../src/control/translate/telemetry-logs.ts';
import { applicableTelemetries } from '../../src/api/telemetry-select.ts';
import { convertListener } from '../../src/proxy/xds-client/convert.ts';
import { meshOf, workload } from '../snapshot.ts';

type Spec = Record<string, unknown>;
let created = 0;
const tel = (namespace: string, spec: Spec, name = `t${created}`): Telemetry => ({ ...(checkResource({ apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { name, namespace }, spec }, name) as Telemetry), created: ++created });

const MESH_FILE = '/var/log/mesh.log';
const JSON_FILE = '/var/log/envoy-json.log';
/** Istio's test mesh: the built-in providers, and envoy-json (a JSON file log); the mesh config's own access log file. */
const mc = (defaults?: string[]): MeshConfig => ({
  accessLogFile: MESH_FILE,
  extensionProviders: [{ name: 'envoy-json', envoyFileAccessLog: { path: JSON_FILE, logFormat: { labels: {} } } }],
  ...(defaults ? { defaultProviders: { accessLogging: defaults } } : {}),
});

const al = (entry: Spec) => ({ accessLogging: [entry] });
const envoy = al({ providers: [{ name: 'envoy' }] });
const client = al({ match: { mode: 'CLIENT' }, providers: [{ name: 'envoy' }] });
const clientDisabled = al({ match: { mode: 'CLIENT' }, providers: [{ name: 'envoy' }], disabled: true });
const sidecarClient = { selector: { matchLabels: { app: 'test' } }, ...client };
const server = al({ match: { mode: 'SERVER' }, providers: [{ name: 'envoy' }] });
const serverDisabled = al({ match: { mode: 'SERVER' }, providers: [{ name: 'envoy' }], disabled: true });
const serverAndClient = al({ match: { mode: 'CLIENT_AND_SERVER' }, providers: [{ name: 'envoy' }] });
const stackdriver = al({ providers: [{ name: 'stackdriver' }] });
const defaultJSON = al({ providers: [{ name: 'envoy-json' }] });
const disabled = al({ disabled: true });
const nonExistent = al({ providers: [{ name: 'custom-provider' }] });
const multi = { accessLogging: [{ providers: [{ name: 'envoy' }] }, { providers: [{ name: 'envoy-json' }] }] };
const multiWithDisabled = { accessLogging: [{ providers: [{ name: 'envoy' }] }, { providers: [{ name: 'envoy-json' }], disabled: true }] };
const multiProviders = { accessLogging: [{ providers: [{ name: 'envoy' }, { name: 'envoy-json' }] }, { providers: [{ name: 'envoy' }] }] };
const multiFilters = { accessLogging: [{ match: { mode: 'SERVER' }, providers: [{ name: 'envoy' }], filter: { expression: 'response.code >= 400' } }, { match: { mode: 'CLIENT_AND_SERVER' }, providers: [{ name: 'envoy' }], filter: { expression: 'response.code >= 500' } }] };
const multiFiltersDisabled = { accessLogging: [multiFilters.accessLogging[0], { ...multiFilters.accessLogging[1], disabled: true }] };
const serverAndClientDifferent = { accessLogging: [{ match: { mode: 'SERVER' }, providers: [{ name: 'envoy' }] }, { match: { mode: 'CLIENT' }, providers: [{ name: 'envoy-json' }] }] };
const prometheus = { metrics: [{ providers: [{ name: 'envoy' }] }] };

const W = { namespace: 'default', labels: { app: 'test' } };
/** Which files a proxy's listeners of that side log to: "mesh" (the mesh config's file), "envoy" (stdout), "envoy-json". */
function files(telemetries: Telemetry[], side: 'CLIENT' | 'SERVER', defaults?: string[]): string[] {
  const logs = accessLogsFor(applicableTelemetries(telemetries, W), mc(defaults), side) ?? [];
  return logs.map((l: any) => ({ [MESH_FILE]: 'mesh', '/dev/stdout': 'envoy', [JSON_FILE]: 'envoy-json' })[l.typed_config.path as string] ?? l.typed_config.path);
}

describe("which providers log, on which side (Istio's TestAccessLogging, as the xDS has it)", () => {
  const O = 'CLIENT';
  const I = 'SERVER';
  // name, Telemetries (oldest first), side, defaultProviders, the files logged to.
  const cases: [string, Spec[][], 'CLIENT' | 'SERVER', string[] | undefined, string[]][] = [
    ['empty: the mesh config applies', [], O, undefined, ['mesh']],
    ['metrics only (mesh): the mesh config applies', [['istio-system', prometheus] as never], O, undefined, ['mesh']],
    ['default provider only', [], O, ['envoy'], ['envoy']],
    ['provider only', [['istio-system', envoy] as never], O, undefined, ['envoy']],
    ['client - outbound', [['istio-system', client] as never], O, undefined, ['envoy']],
    ['client - inbound: configured, nothing logs', [['istio-system', client] as never], I, undefined, ['mesh']],
    ['client - disabled server', [['istio-system', client], ['default', serverDisabled]] as never, O, undefined, ['envoy']],
    ['client - disabled client', [['istio-system', client], ['default', clientDisabled]] as never, O, undefined, []],
    ['client - disabled - enabled (workload)', [['istio-system', client], ['default', clientDisabled], ['default', sidecarClient]] as never, O, undefined, ['envoy']],
    ['server - inbound', [['istio-system', server] as never], I, undefined, ['envoy']],
    ['server - outbound', [['istio-system', server] as never], O, undefined, ['mesh']],
    ['server and client - inbound', [['istio-system', serverAndClient] as never], I, undefined, ['envoy']],
    ['server and client - outbound', [['istio-system', serverAndClient] as never], O, undefined, ['envoy']],
    ['override default', [['istio-system', envoy] as never], O, ['stackdriver'], ['envoy']],
    ['override namespace', [['istio-system', envoy], ['default', defaultJSON]] as never, O, undefined, ['envoy-json']],
    ['empty config inherits', [['istio-system', envoy], ['default', {}]] as never, O, undefined, ['envoy']],
    ['stackdriver: logs nothing in a file, so the mesh config applies', [['istio-system', envoy], ['default', stackdriver]] as never, O, undefined, ['mesh']],
    ['default envoy JSON', [['istio-system', defaultJSON] as never], O, undefined, ['envoy-json']],
    ['disable config', [['istio-system', envoy], ['default', disabled]] as never, O, undefined, []],
    ['disable default', [['default', disabled] as never], O, ['envoy'], []],
    ['non existing: no provider, so the mesh config applies', [['default', nonExistent] as never], O, ['envoy'], ['mesh']],
    ['server - multi filters', [['istio-system', multiFilters] as never], O, undefined, ['envoy']],
    ['server - multi filters disabled', [['istio-system', multiFiltersDisabled] as never], O, undefined, []],
    ['multi accesslogging', [['istio-system', envoy], ['default', multi]] as never, O, undefined, ['envoy', 'envoy-json']],
    ['multi accesslogging with disabled', [['istio-system', envoy], ['default', multiWithDisabled]] as never, O, undefined, ['envoy']],
    ['multi accesslogging - multi providers', [['istio-system', envoy], ['default', multiProviders]] as never, O, undefined, ['envoy', 'envoy-json']],
    ['server and client different - inbound', [['istio-system', serverAndClientDifferent] as never], I, undefined, ['envoy']],
    ['server and client different - outbound', [['istio-system', serverAndClientDifferent] as never], O, undefined, ['envoy-json']],
  ];
  for (const [name, ts, side, defaults, want] of cases) {
    test(name, () => assert.deepEqual(files((ts as unknown as [string, Spec][]).map(([ns, spec]) => tel(ns, spec)), side, defaults), want));
  }
});

describe('the loggers and their filter, as Istio builds them', () => {
  test('the built-in envoy provider writes to stdout in the mesh config\'s format; a provider\'s own text or labels otherwise', () => {
    const mesh: MeshConfig = {
      accessLogEncoding: 'JSON',
      extensionProviders: [
        { name: 'text', envoyFileAccessLog: { path: '/tmp/a.log', logFormat: { text: '%RESPONSE_CODE% %REQ(:PATH)%' } } },
        { name: 'plain', envoyFileAccessLog: {} },
        { name: 'json', envoyFileAccessLog: { path: '/tmp/b.log', logFormat: { labels: { code: '%RESPONSE_CODE%' } } } },
      ],
    };
    const t = tel('istio-system', { accessLogging: [{ providers: [{ name: 'envoy' }, { name: 'text' }, { name: 'plain' }, { name: 'json' }] }] });
    const logs = accessLogsFor(applicableTelemetries([t], W), mesh, 'SERVER') as any[];
    assert.deepEqual(
      logs.map((l) => [l.typed_config.path, l.typed_config.log_format]),
      [
        ['/dev/stdout', { json_format: ISTIO_JSON_FORMAT, json_format_options: { sort_properties: false } }],
        ['/tmp/b.log', { json_format: { code: '%RESPONSE_CODE%' }, json_format_options: { sort_properties: false } }],
        ['/dev/stdout', { text_format_source: { inline_string: ISTIO_TEXT_FORMAT } }],
        ['/tmp/a.log', { text_format_source: { inline_string: '%RESPONSE_CODE% %REQ(:PATH)%\n' } }],
      ],
    );
  });

  test("a filter becomes Envoy's CEL access log filter, the last entry naming the provider deciding", () => {
    const logs = accessLogsFor(applicableTelemetries([tel('istio-system', multiFilters)], W), mc(), 'SERVER') as any[];
    assert.deepEqual(logs.map((l) => l.filter), [
      { extension_filter: { name: 'envoy.access_loggers.extension_filters.cel', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter', expression: 'response.code >= 500' } } },
    ]);
  });

  test("an entry without providers takes the providers above it, not its filter (Istio's mergeLogs)", () => {
    const logs = accessLogsFor(applicableTelemetries([tel('istio-system', envoy), tel('default', al({ filter: { expression: 'response.code >= 400' } }))], W), mc(), 'SERVER') as any[];
    assert.deepEqual(logs.map((l) => [l.typed_config.path, l.filter]), [['/dev/stdout', undefined]]);
  });

  test('a filter the sidecars cannot evaluate is left out (every exchange logged), as weft apply warns', () => {
    const logs = accessLogsFor(applicableTelemetries([tel('istio-system', al({ providers: [{ name: 'envoy' }], filter: { expression: 'filter_state["x"] == "y"' } }))], W), mc(), 'SERVER') as any[];
    assert.equal(logs.length, 1);
    assert.equal(logs[0].filter, undefined);
  });
});

describe("a proxy's listeners", () => {
  const server = workload('server', { service: 'server', labels: { app: 'server' }, ports: [{ name: 'http', port: 80, inboundPort: 41000, appPort: 41001 }, { name: 'tcp-db', port: 5432, inboundPort: 41010, appPort: 41011 }] });
  const other = workload('other', { service: 'other', labels: { app: 'other' }, port: 42000 });
  const secure = workload('secure', { service: 'secure', labels: { app: 'secure' }, port: 43000, ports: [{ name: 'tls', port: 443, inboundPort: 43000, appPort: 43001 }] });
  // TLS routed by server name: every proxy gets an internal SNI listener, a client-side one.
  const vs = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'secure', namespace: 'default' }, spec: { hosts: ['secure', 'a.example'], tls: [{ match: [{ sniHosts: ['a.example'] }], route: [{ destination: { host: 'secure' } }] }] } };
  const telemetry = (name: string, spec: Spec) => ({ apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { name, namespace: 'default' }, spec });
  const mesh = (objs: object[]): MeshSnapshot => ({ ...meshOf([vs, ...objs], [server, other, secure]), meshConfig: { accessLogFile: MESH_FILE } });
  /** listener (and, for filter chains, the filter) -> its loggers' paths and filter expressions. */
  const logsOf = (m: MeshSnapshot, proxy = server) => {
    const out: Record<string, string[]> = {};
    const visit = (where: string, v: unknown): void => {
      if (Array.isArray(v)) v.forEach((x) => visit(where, x));
      else if (v && typeof v === 'object') {
        for (const [k, x] of Object.entries(v)) {
          if (k === 'access_log') (out[where] ??= []).push(...(x as any[]).map((l) => `${l.typed_config.path}${l.filter ? ` if ${l.filter.extension_filter.typed_config.expression}` : ''}`));
          else visit(where, x);
        }
      }
    };
    for (const [name, l] of Object.entries(translate(m, proxy).listeners)) visit(name, l);
    return out;
  };

  test('SERVER: the inbound listeners (HTTP and TCP, plain and mTLS chains) log by the Telemetry; CLIENT: the outbound and the internal SNI listeners', () => {
    const server400 = { match: { mode: 'SERVER' }, providers: [{ name: 'envoy' }], filter: { expression: 'response.code >= 400' } };
    const IF_400 = '/dev/stdout if response.code >= 400';
    assert.deepEqual(logsOf(mesh([telemetry('ns', { accessLogging: [server400, { match: { mode: 'CLIENT' }, disabled: true, providers: [{ name: 'envoy' }] }] })])), {
      'inbound|41000': [IF_400],
      'inbound|41010': [IF_400],
    });
    // The client side by the mesh config (no Telemetry entry for it): its file, on every outbound HCM and tcp_proxy.
    assert.deepEqual(logsOf(mesh([telemetry('ns', { accessLogging: [server400] })])), {
      'sni|443||secure.default.svc.cluster.local': [MESH_FILE, MESH_FILE],
      outbound: [MESH_FILE],
      'inbound|41000': [IF_400],
      'inbound|41010': [IF_400],
    });
  });

  test("a workload's own Telemetry changes its internal SNI listeners too (they are per scope)", () => {
    const m = mesh([telemetry('client-json', { selector: { matchLabels: { app: 'server' } }, accessLogging: [{ match: { mode: 'CLIENT' }, providers: [{ name: 'envoy' }] }] })]);
    assert.deepEqual(logsOf(m)['sni|443||secure.default.svc.cluster.local'], ['/dev/stdout', '/dev/stdout']);
    assert.deepEqual(logsOf(m, other)['sni|443||secure.default.svc.cluster.local'], [MESH_FILE, MESH_FILE]);
  });

  test('a Telemetry with a selector applies to the workloads it selects only, over the namespace one', () => {
    const m = mesh([telemetry('ns', { accessLogging: [{ providers: [{ name: 'envoy' }] }] }), telemetry('quiet-server', { selector: { matchLabels: { app: 'server' } }, accessLogging: [{ disabled: true }] })]);
    assert.deepEqual(logsOf(m), {});
    const otherLogs = logsOf(m, other);
    assert.ok(Object.keys(otherLogs).length >= 2, JSON.stringify(otherLogs));
    for (const l of Object.values(otherLogs)) assert.deepEqual(new Set(l), new Set(['/dev/stdout']));
  });

  test('the sidecar loads the filter: compiled, and a listener whose filter it cannot evaluate is NACKed naming it', () => {
    const m = mesh([telemetry('ns', { accessLogging: [{ providers: [{ name: 'envoy' }], filter: { expression: "response.code >= 400 || request.headers['x-debug'] == 'true'" } }] })]);
    const l = translate(m, server).listeners['inbound|41000'];
    const converted = convertListener(l) as any;
    assert.equal(typeof converted.accessLog[0].filter, 'function');
    const bad = JSON.parse(JSON.stringify(l).replace('response.code >= 400', 'response.flags > 0'));
    assert.throws(() => convertListener(bad), /access_log\[0\]\.filter\.extension_filter\.typed_config\.expression: "response\.flags > 0 \|\| .*" cannot be evaluated by this sidecar: unknown attribute response\.flags/);
  });
});
