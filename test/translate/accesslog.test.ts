// The mesh config's access log in the xDS (translate/accesslog.ts), as Istio's pilot emits it, and
// as the sidecar loads it: every HCM and tcp_proxy of a proxy's own listeners (inbound, outbound,
// mTLS chains, the internal listeners that route TLS by server name) carries the file logger with
// Istio's default formats, a given format, or none; the sidecar compiles the format and NACKs an
// operator it does not implement, naming it. No sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MeshConfig } from '../../src/api/meshconfig.ts';
import type { MeshSnapshot } from '../../src/control/model/model.ts';
import { ISTIO_JSON_FORMAT, ISTIO_TEXT_FORMAT } from '../../src/control/translate/accesslog.ts';
import { ACCESS_LOG_ARG_OPERATORS, ACCESS_LOG_OPERATORS, accessLogProblem } from '../../src/api/accesslog-format.ts';
import { FormatError, compileText } from '../../src/proxy/telemetry/format.ts';
import { translate } from '../../src/control/translate/translate.ts';
import { convertListener } from '../../src/proxy/xds-client/convert.ts';
import { type LogEntry, render } from '../../src/proxy/telemetry/format.ts';
import { meshOf, sidecarSnapshot, workload } from '../snapshot.ts';

const pa = (mode: string) => ({ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: 'default' }, spec: { mtls: { mode } } });
const vs = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'secure', namespace: 'default' }, spec: { hosts: ['secure', 'a.example'], tls: [{ match: [{ sniHosts: ['a.example'] }], route: [{ destination: { host: 'secure' } }] }] } };
const server = workload('server', {
  service: 'server',
  serviceAccount: 'server-sa',
  ports: [
    { name: 'http', port: 80, inboundPort: 41000, appPort: 41001 },
    { name: 'tcp-db', port: 5432, inboundPort: 41010, appPort: 41011 },
    { name: 'legacy', port: 9000, inboundPort: 41020, appPort: 41021 },
  ],
});
const secure = workload('secure', { service: 'secure', port: 43000, ports: [{ name: 'tls', port: 443, inboundPort: 43000, appPort: 43001 }] });
const client = workload('client', { serviceAccount: 'client-sa', port: 42000 });

function mesh(mc: MeshConfig | undefined, mode = 'PERMISSIVE'): MeshSnapshot {
  return { ...meshOf([pa(mode), vs], [server, secure, client]), ...(mc ? { meshConfig: mc } : {}) };
}

/** Every access_log in a proxy's listeners, with where it is ("<listener> <filter>"). */
function accessLogs(m: MeshSnapshot, proxy = server): { where: string; log: any }[] {
  const out: { where: string; log: any }[] = [];
  const visit = (where: string, v: unknown): void => {
    if (Array.isArray(v)) v.forEach((x, i) => visit(`${where}[${i}]`, x));
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === 'access_log') for (const l of x as unknown[]) out.push({ where, log: l });
        else visit(`${where}.${k}`, x);
      }
    }
  };
  for (const [name, l] of Object.entries(translate(m, proxy).listeners)) visit(name, l);
  return out;
}

const filterCount = (m: MeshSnapshot, proxy = server) => {
  let n = 0;
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object') {
      const t = (v as { typed_config?: { '@type'?: string } }).typed_config?.['@type'] ?? '';
      if (/HttpConnectionManager$|TcpProxy$/.test(t)) n++;
      Object.values(v).forEach(visit);
    }
  };
  visit(Object.values(translate(m, proxy).listeners));
  return n;
};

test('no accessLogFile (or ""): no access log anywhere, as Istio', () => {
  assert.deepEqual(accessLogs(mesh(undefined)), []);
  assert.deepEqual(accessLogs(mesh({ accessLogFile: '' })), []);
  assert.deepEqual(accessLogs(mesh({ accessLogEncoding: 'JSON' })), []);
});

test('accessLogFile: every HCM and tcp_proxy of the proxy, inbound and outbound, mTLS chains and SNI listeners, gets the file logger with Istio default TEXT format', () => {
  for (const [proxy, mode] of [[server, 'PERMISSIVE'], [server, 'STRICT'], [server, 'DISABLE'], [client, 'PERMISSIVE']] as const) {
    const m = mesh({ accessLogFile: '/dev/stdout' }, mode);
    const logs = accessLogs(m, proxy);
    assert.equal(logs.length, filterCount(m, proxy), `${proxy.name} ${mode}: one access_log per HCM and tcp_proxy`);
    assert.ok(logs.length >= (proxy === server ? 4 : 2), `${proxy.name} ${mode}: ${logs.map((l) => l.where).join(', ')}`);
    for (const { where, log } of logs) {
      assert.deepEqual(log, {
        name: 'envoy.access_loggers.file',
        typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog', path: '/dev/stdout', log_format: { text_format_source: { inline_string: ISTIO_TEXT_FORMAT } } },
      }, where);
    }
  }
  // The client's outbound side: its HCM, and the tcp_proxies of the internal listener that routes secure:443 by server name.
  const where = accessLogs(mesh({ accessLogFile: '/dev/stdout' }), client).map((l) => l.where.split('.')[0]);
  assert.ok(where.includes('outbound'), where.join());
  assert.ok(where.some((w) => w.startsWith('sni|443||secure')), where.join());
});

test("Istio's default TEXT format, as pilot writes it (UPSTREAM_CLUSTER_RAW, RESPONSE_CODE_DETAILS, ...)", () => {
  assert.ok(ISTIO_TEXT_FORMAT.startsWith('[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%'));
  assert.ok(ISTIO_TEXT_FORMAT.endsWith('"%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n'));
});

test('a given TEXT format gets a newline where it has none; JSON gets Istio default keys, or the given object', () => {
  const fmt = (mc: MeshConfig) => accessLogs(mesh({ accessLogFile: '/tmp/x.log', ...mc }))[0]!.log.typed_config.log_format;
  assert.deepEqual(fmt({ accessLogFormat: '%RESPONSE_CODE% %DOWNSTREAM_PEER_URI_SAN%' }), { text_format_source: { inline_string: '%RESPONSE_CODE% %DOWNSTREAM_PEER_URI_SAN%\n' } });
  assert.deepEqual(fmt({ accessLogFormat: 'x\n' }), { text_format_source: { inline_string: 'x\n' } });
  assert.deepEqual(fmt({ accessLogEncoding: 'JSON' }), { json_format: { ...ISTIO_JSON_FORMAT }, json_format_options: { sort_properties: false } });
  assert.deepEqual(fmt({ accessLogEncoding: 'JSON', accessLogFormat: '{"code":"%RESPONSE_CODE%","peer":"%DOWNSTREAM_PEER_URI_SAN%"}' }).json_format, { code: '%RESPONSE_CODE%', peer: '%DOWNSTREAM_PEER_URI_SAN%' });
  // Not a JSON object: Istio's defaults (weft apply refuses such a mesh config: accessLogProblem).
  assert.deepEqual(fmt({ accessLogEncoding: 'JSON', accessLogFormat: '%RESPONSE_CODE%' }).json_format, { ...ISTIO_JSON_FORMAT });
});

test('the sidecar loads it over the wire: HCM and tcp_proxy access logs, compiled, and traffic_direction', () => {
  const cfg = sidecarSnapshot(mesh({ accessLogFile: '/tmp/a.log', accessLogEncoding: 'JSON' }, 'STRICT'), server);
  const http = cfg.listeners.get('inbound|41000')!;
  assert.equal(http.direction, 'inbound');
  assert.equal(http.accessLog?.[0]?.path, '/tmp/a.log');
  assert.equal(http.accessLog?.[0]?.format.kind, 'json');
  const tcp = cfg.listeners.get('inbound|41010')!;
  assert.equal(tcp.mtls?.chains[0]?.tcp?.accessLog?.[0]?.path, '/tmp/a.log', 'the mTLS chain tcp_proxy');
  assert.equal(tcp.mtls?.chains[0]?.tcp?.listener, 'inbound|41010');
  const out = sidecarSnapshot(mesh({ accessLogFile: '/tmp/a.log' }), client).listeners.get('outbound')!;
  assert.equal(out.direction, 'outbound');
  assert.equal(out.accessLog?.[0]?.format.kind, 'text');
});

/** The inbound listener of `server` with an access log in `format` (TEXT), converted as the sidecar does. */
function withFormat(format: string): () => unknown {
  const l = translate(mesh({ accessLogFile: '/tmp/a.log', accessLogFormat: format }, 'DISABLE'), server).listeners['inbound|41000'];
  return () => convertListener(JSON.parse(JSON.stringify(l)));
}

test('an operator the sidecar does not implement is refused (NACK naming it and where), never met at request time', () => {
  assert.throws(withFormat('%RESPONSE_CODE% %UPSTREAM_WIRE_BYTES_SENT%'), /inbound\|41000.*access_log\[0\].*unsupported access log command operator %UPSTREAM_WIRE_BYTES_SENT%/);
  assert.throws(withFormat('%START_TIME(%s)%'), /START_TIME/);
  assert.throws(withFormat('%REQ%'), /%REQ%: needs a header name/);
  assert.throws(withFormat('100%'), /unterminated command operator/);
  assert.doesNotThrow(withFormat('%% %DYNAMIC_METADATA(istio_authn:request.auth.principal)% %REQ(X-A?X-B):5% %UPSTREAM_PEER_URI_SAN%'));
});

const ENTRY: LogEntry = {
  startMs: Date.UTC(2026, 11, 6, 14, 0, 0, 123),
  durationMs: 12.7,
  method: 'GET',
  path: '/a',
  query: 'b=1',
  authority: 'server',
  protocol: 'HTTP/1.1',
  reqHeader: (n) => ({ 'user-agent': 'curl/8', 'x-request-id': 'r1' })[n],
  respHeader: () => undefined,
  responseCode: 403,
  responseFlags: '-',
  responseCodeDetails: 'rbac_access_denied_matched_policy[ns[default]-policy[deny]-rule[0]]',
  bytesReceived: 0,
  bytesSent: 19,
  downstreamRemoteAddress: '127.0.0.1:5555',
  downstreamPeerUriSan: 'spiffe://cluster.local/ns/default/sa/client-sa',
};

test("rendering: Istio's TEXT line, and JSON with typed values (numbers, null for none)", () => {
  const cfg = sidecarSnapshot(mesh({ accessLogFile: '/tmp/a.log' }, 'DISABLE'), server);
  const text = render(cfg.listeners.get('inbound|41000')!.accessLog![0]!.format, ENTRY);
  assert.equal(text, '[2026-12-06T14:00:00.123Z] "GET /a?b=1 HTTP/1.1" 403 - rbac_access_denied_matched_policy[ns[default]-policy[deny]-rule[0]] - "-" 0 19 12 - "-" "curl/8" "r1" "server" "-" - - - 127.0.0.1:5555 - -\n');
  const json = sidecarSnapshot(mesh({ accessLogFile: '/tmp/a.log', accessLogEncoding: 'JSON' }, 'DISABLE'), server);
  const line = render(json.listeners.get('inbound|41000')!.accessLog![0]!.format, ENTRY);
  assert.ok(line.endsWith('}\n'));
  const o = JSON.parse(line);
  assert.deepEqual(Object.keys(o), Object.keys(ISTIO_JSON_FORMAT));
  assert.equal(o.response_code, 403);
  assert.equal(o.bytes_sent, 19);
  assert.equal(o.duration, 12);
  assert.equal(o.upstream_host, null);
  assert.equal(o.path, '/a?b=1');
  assert.equal(o.start_time, '2026-12-06T14:00:00.123Z');
});

test("the operators weft apply accepts in accessLogFormat are exactly those the sidecar compiles", () => {
  for (const op of ACCESS_LOG_OPERATORS) assert.doesNotThrow(() => compileText(`%${op}%`, 'x'), op);
  for (const op of ACCESS_LOG_ARG_OPERATORS) assert.doesNotThrow(() => compileText(`%${op}(x-a)%`, 'x'), op);
  for (const bad of ['%UPSTREAM_WIRE_BYTES_SENT%', '%START_TIME(%s)%', '%REQ%', '%HOSTNAME%', '100%', '%CEL(x)%']) {
    assert.throws(() => compileText(bad, 'x'), FormatError, bad);
    assert.ok(accessLogProblem({ accessLogFormat: bad }), bad);
  }
  assert.equal(accessLogProblem({ accessLogFormat: ISTIO_TEXT_FORMAT }), undefined);
  assert.equal(accessLogProblem({ accessLogEncoding: 'JSON', accessLogFormat: JSON.stringify(ISTIO_JSON_FORMAT) }), undefined);
  assert.match(accessLogProblem({ accessLogEncoding: 'JSON', accessLogFormat: '{"a":"%NOPE%"}' })!.message, /key a: command operator %NOPE%/);
  assert.match(accessLogProblem({ accessLogEncoding: 'JSON', accessLogFormat: '%RESPONSE_CODE%' })!.message, /JSON object/);
});
