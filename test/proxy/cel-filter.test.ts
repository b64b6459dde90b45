// The sidecar's CEL access log filter (src/proxy/telemetry/cel-filter.ts): the expressions of
// Istio's and Envoy's docs on exchanges as the access log sees them, CEL's semantics where they
// matter to a filter (an error is false; && and || absorb errors; int arithmetic), and what it
// refuses when the config arrives. No sockets.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRandom } from '../fixtures/seeded.ts';
import { ATTRIBUTES, CelFilterError, compileCelFilter, compileCelValue } from '../../src/proxy/telemetry/cel-filter.ts';
import { CEL_ATTRIBUTES } from '../../src/api/cel-support.ts';
import type { LogEntry } from '../../src/proxy/telemetry/format.ts';

const headers = (h: Record<string, string>) => (n: string) => h[n];
const http = (over: Partial<LogEntry> = {}, req: Record<string, string> = {}): LogEntry => ({
  startMs: 0,
  durationMs: 3,
  method: 'GET',
  path: '/api/v1/items',
  query: 'page=2',
  authority: 'reviews:9080',
  protocol: 'HTTP/1.1',
  reqHeader: headers({ 'user-agent': 'curl/8', 'x-request-id': 'abc', ...req }),
  respHeader: headers({ 'content-type': 'text/plain' }),
  responseCode: 200,
  responseFlags: '-',
  responseCodeDetails: 'via_upstream',
  bytesReceived: 10,
  bytesSent: 20,
  upstreamHost: '127.0.0.1:8080',
  upstreamCluster: 'outbound|9080||reviews.default.svc.cluster.local',
  downstreamLocalAddress: '127.0.0.1:15001',
  downstreamRemoteAddress: '127.0.0.1:50000',
  routeName: 'default',
  ...over,
});
const tcp: LogEntry = { startMs: 0, durationMs: 1, responseCode: 0, responseFlags: '-', bytesReceived: 1, bytesSent: 2, upstreamCluster: 'outbound|5432||db.default.svc.cluster.local', downstreamPeerUriSan: 'spiffe://cluster.local/ns/default/sa/client' };

const logs = (expr: string, e: LogEntry) => compileCelFilter(expr)(e);

describe('the expressions users write', () => {
  const cases: [string, LogEntry, boolean][] = [
    ['response.code >= 400', http({ responseCode: 503 }), true],
    ['response.code >= 400', http(), false],
    ['response.code >= 400', tcp, false], // no response code: an error, so not logged
    ["response.code >= 400 || xds.cluster_name == 'BlackHoleCluster' || xds.cluster_name == 'PassthroughCluster'", http({ upstreamCluster: 'PassthroughCluster' }), true],
    ["response.code >= 400 || xds.cluster_name == 'BlackHoleCluster'", tcp, false],
    ["request.headers['x-debug'] == 'true'", http({}, { 'x-debug': 'true' }), true],
    ["request.headers['X-Debug'] == 'true'", http({}, { 'x-debug': 'true' }), true], // Envoy lower-cases the key
    ["request.headers['x-debug'] == 'true'", http(), false], // no such key: an error
    ["!has(request.headers['x-debug'].foo) || true", http(), true],
    ["'x-debug' in request.headers", http({}, { 'x-debug': '1' }), true],
    ["!('x-debug' in request.headers)", http(), true],
    ['has(request.headers.x_debug)', http(), false],
    ['connection.mtls', tcp, true],
    ['connection.mtls', http(), false],
    ["(connection.mtls && request.headers['x-log-mtls'] == 'true') || request.url_path.contains('v1beta3')", http({ path: '/api/v1beta3/x' }), true],
    ["request.path == '/api/v1/items?page=2' && request.url_path == '/api/v1/items' && request.query == 'page=2'", http(), true],
    ["request.path.startsWith('/api') && !request.path.endsWith('.js') && request.method in ['GET', 'HEAD']", http(), true],
    ["request.url_path.matches('^/api/v[0-9]+/')", http(), true],
    ["matches(request.host, 'ratings')", http(), false],
    ['response.code / 100 == 5', http({ responseCode: 503 }), true],
    ['response.code % 100 == 3 && -response.code < 0 && response.code + 1 == 504 && response.code * 2 == 1006 && response.code - 3 == 500', http({ responseCode: 503 }), true],
    ['response.code >= 400.0', http({ responseCode: 503 }), true],
    ['int(request.headers["x-n"]) > 5 && double("1.5") < 2.0 && string(response.code) == "200" && uint(3) == 3u', http({}, { 'x-n': '7' }), true],
    ['size(request.url_path) == 13 && size([1, 2]) == 2 && {"a": 1}["a"] == 1', http(), true],
    ['source.address == "127.0.0.1" && source.port == 50000 && destination.port == 15001 && upstream.port == 8080', http(), true],
    ["response.headers['content-type'].startsWith('text/')", http(), true],
    ['request.size == 10 && response.size == 20 && request.useragent == "curl/8" && request.id == "abc" && request.protocol == "HTTP/1.1"', http(), true],
    ['xds.route_name == "default" && response.code_details == "via_upstream" && connection.requested_server_name == ""', http(), true],
    ['response.code > 100 ? request.method == "GET" : false', http(), true],
    ["request.duration > duration('2ms') && request.duration < duration('1s') && request.duration == duration('3ms') && duration('1m') == duration('60s')", http(), true],
    ["request.duration > duration('500ms')", http(), false],
    ['1 / 0 == 1 || true', http(), true], // || absorbs the error
    ['1 / 0 == 1 && false', http(), false],
    ['1 / 0 == 1', http(), false],
    ['9223372036854775807 + 1 > 0', http(), false], // int overflow: an error
    ['"a" + "b" == "ab" && [1] + [2] == [1, 2] && true != false && "a" < "b"', http(), true],
  ];
  for (const [expr, entry, want] of cases) test(`${expr} -> ${want}${entry === tcp ? ' (TCP)' : ''}`, () => assert.equal(logs(expr, entry), want));
});

describe('what the sidecar refuses when the config arrives (the listener is NACKed naming it)', () => {
  const refused: [string, RegExp][] = [
    ['response.flags > 0', /cannot be evaluated by this sidecar: unknown attribute response\.flags/],
    ['filter_state["x"] == "y"', /unknown attribute filter_state/],
    ['request == 1', /request is not an attribute by itself/],
    ['request.path.lowerAscii() == "x"', /function lowerAscii\(\) is not supported/],
    ['[1].exists(x, x > 0)', /the exists\(\) macro is not supported/],
    ['size(request.headers) > 2', /size\(\) of request\.headers is not supported/],
    ['request.path.matches("(")', /matches\("\("\): not an RE2 pattern/],
    ['request.path.matches("(?=x)")', /not an RE2 pattern/],
    ['response.code >=', /not a CEL expression/],
    ["request.duration > duration('soon')", /duration\("soon"\) is not a duration/],
  ];
  for (const [expr, why] of refused) {
    test(expr, () => {
      assert.throws(() => compileCelFilter(expr), (e: unknown) => e instanceof CelFilterError && why.test(e.message));
    });
  }
});

test("the attributes the sidecar evaluates are exactly those weft apply accepts (api/cel.ts)", () => {
  assert.deepEqual(Object.keys(ATTRIBUTES).sort(), [...CEL_ATTRIBUTES].sort());
});

test('matches() with a pattern from the request: a short one matches; a long one (a{1000} x 1000) is an error (not logged) at once, never a compile of seconds on the event loop (review defect)', () => {
  const f = compileCelFilter("request.path.matches(request.headers['x-re'])");
  assert.equal(f(http({}, { 'x-re': '^/api/v[0-9]+/' })), true);
  const t0 = performance.now();
  assert.equal(f(http({}, { 'x-re': 'a{1000}'.repeat(1000) })), false);
  assert.ok(performance.now() - t0 < 500, `took ${performance.now() - t0} ms`);
  // More distinct patterns than the cache holds: each still evaluated, the literal ones kept.
  const g = compileCelFilter("request.url_path.matches('^/api/') && request.path.matches(request.headers['x-re'])");
  for (let i = 0; i < 200; i++) assert.equal(g(http({}, { 'x-re': `^/api/v1/items\\?page=${i % 3}` })), i % 3 === 2);
});

test("sixDigits prints a double as absl::StrCat (printf's %g) does, exact ties too, and on seeded random doubles as a reference %g does", async (t) => {
  const { sixDigits } = await import('../../src/proxy/telemetry/cel-filter.ts');
  assert.deepEqual([Number.NaN, Infinity, -Infinity, 0, -0, 1e21, 1e100, -2.5, 1e-300].map(sixDigits), ['nan', 'inf', '-inf', '0', '-0', '1e+21', '1e+100', '-2.5', '1e-300']);
  // Exact ties round to the even digit, as absl and glibc do (JS's own rounding goes up).
  const ties: [number, string][] = [[1234565, '1.23456e+06'], [1234575, '1.23458e+06'], [12345650000, '1.23456e+10'], [100000.5, '100000'], [123456.5, '123456'], [123457.5, '123458'], [12345.25, '12345.2'], [1234.125, '1234.12'], [0.1015625, '0.101562'], [-100000.5, '-100000'], [999999.5, '1e+06'], [0.00009999995, '0.0001']];
  for (const [x, want] of ties) assert.equal(sixDigits(x), want, `${x}`);
  // The reference: C's printf, by way of Python's "%g" (the same rules), where python3 is on the machine.
  const { spawnSync } = await import('node:child_process');
  const random = seededRandom(0x96);
  const xs = Array.from({ length: 2000 }, () => (random() < 0.5 ? -1 : 1) * random() * 10 ** Math.floor(random() * 24 - 10));
  const py = spawnSync('python3', ['-c', 'import sys\nfor l in sys.stdin: print("%g" % float(l))'], { input: xs.map((x) => x.toPrecision(17)).join('\n') + '\n', encoding: 'utf8' });
  if (py.error) return t.skip(`python3, the reference, cannot run here: ${py.error.message}`);
  assert.equal(py.status, 0, py.stderr);
  const want = py.stdout.trim().split('\n');
  xs.forEach((x, i) => assert.equal(sixDigits(x), want[i], `${x.toPrecision(17)}`));
});

describe("a metric label's value (a Telemetry tagOverride UPSERT): the expression's value, printed as Envoy prints a CEL value", () => {
  const value = (expr: string, e: LogEntry) => compileCelValue(expr)!(e);
  test('strings as they are, numbers in decimal, true/false, NULL; an error is "unknown"', () => {
    assert.equal(value("request.headers['user-agent']", http()), 'curl/8');
    assert.equal(value("request.headers['x-user']", http()), 'unknown', 'no such header');
    assert.equal(value('response.code', http({ responseCode: 503 })), '503');
    assert.equal(value('response.code', tcp), 'unknown', 'no response on TCP');
    assert.equal(value('response.code >= 500', http({ responseCode: 503 })), 'true');
    assert.equal(value('1.5 * 2.0', http()), '3');
    assert.equal(value('2.0 / 3.0', http()), '0.666667', "absl::StrCat's six significant digits");
    assert.equal(value('1000000.0', http()), '1e+06', 'printf %g: an exponent from 6 on');
    assert.equal(value('1234567.5', http()), '1.23457e+06');
    assert.equal(value('0.00001', http()), '1e-05', 'and below -4');
    assert.equal(value('0.0001', http()), '0.0001');
    assert.equal(value('999999.5', http()), '1e+06', 'the exponent after rounding');
    assert.equal(value('123456.7', http()), '123457');
    assert.equal(value('double(response.code) / 7.0', http({ responseCode: 200 })), '28.5714');
    assert.equal(value('string(1000000.0) + "|" + string(0.1 + 0.2)', http()), '1e+06|0.3', "string() of a double is cel-cpp's absl::StrCat too");
    assert.equal(value('null', http()), 'NULL');
    assert.equal(value("duration('1500ms')", http()), '1.5s');
    assert.equal(value("request.url_path + '?' + request.query", http()), '/api/v1/items?page=2');
  });
  test('an expression that does not parse is undefined (the stats filter leaves the label out); one the sidecar cannot evaluate is refused', () => {
    assert.equal(compileCelValue('request.headers['), undefined);
    assert.throws(() => compileCelValue('node.id'), CelFilterError);
  });
});

test("an exchange's entry as the sidecar makes it (access-log.ts requestLogEntry) answers every attribute as the literal entry does: headers, addresses, identities", async () => {
  const { requestLogEntry } = await import('../../src/proxy/telemetry/access-log.ts');
  const ds = {
    head: { method: 'POST', authority: 'reviews:9080', path: '/api/v1/items', query: 'page=2', headers: ['user-agent', 'curl/8', 'x-request-id', 'abc', 'referer', 'r.example'], hasBody: true, protocol: 'HTTP/2' },
    listenerName: 'virtualInbound',
    remoteAddress: () => '::ffff:10.0.0.7',
    remotePort: () => 50000,
    localAddress: () => ({ address: '10.0.0.8', port: 15006 }),
    sourcePrincipal: () => 'spiffe://cluster.local/ns/default/sa/client',
    requestedServerName: () => 'outbound_.9080_._.reviews.default.svc.cluster.local',
  };
  const e = { cluster: 'inbound|9080||', status: 503, reason: 'connect_failed', durationMs: 4.5, bytesReceived: 10, bytesSent: 20, endpoint: '127.0.0.1:8080', route: 'default', responseHeaders: ['content-type', 'text/plain'], ds };
  const entry = requestLogEntry(e as never, ds as never, () => 'spiffe://cluster.local/ns/default/sa/reviews');
  const literal: LogEntry = {
    startMs: entry.startMs,
    durationMs: 4.5,
    method: 'POST',
    path: '/api/v1/items',
    query: 'page=2',
    authority: 'reviews:9080',
    protocol: 'HTTP/2',
    reqHeader: headers({ 'user-agent': 'curl/8', 'x-request-id': 'abc', referer: 'r.example' }),
    respHeader: headers({ 'content-type': 'text/plain' }),
    responseCode: 503,
    responseFlags: entry.responseFlags,
    responseCodeDetails: entry.responseCodeDetails,
    bytesReceived: 10,
    bytesSent: 20,
    upstreamHost: '127.0.0.1:8080',
    upstreamCluster: 'inbound|9080||',
    downstreamLocalAddress: '10.0.0.8:15006',
    downstreamRemoteAddress: '10.0.0.7:50000',
    requestedServerName: 'outbound_.9080_._.reviews.default.svc.cluster.local',
    routeName: 'default',
    downstreamPeerUriSan: 'spiffe://cluster.local/ns/default/sa/client',
    downstreamLocalUriSan: 'spiffe://cluster.local/ns/default/sa/reviews',
  };
  assert.equal(entry.responseFlags, 'UF');
  for (const name of Object.keys(ATTRIBUTES)) {
    const expr = name === 'request.headers' ? "request.headers['user-agent']" : name === 'response.headers' ? "response.headers['content-type']" : name;
    const value = compileCelValue(expr);
    if (!value) continue;
    assert.equal(value(entry), value(literal), name);
  }
  assert.equal(compileCelValue("response.headers['content-type']")!(entry), 'text/plain');
  assert.equal(compileCelValue("request.headers['x-request-id']")!(entry), 'abc');
});
