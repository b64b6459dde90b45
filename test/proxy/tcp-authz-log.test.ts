// The access log line of a TCP connection network authorization denies (Envoy's tcp_proxy writes one
// for a connection its RBAC filter closed): it goes to the access log of the chain the connection
// came on, not to another chain's of the same listener, and it starts when the connection was
// accepted, with the time until it was closed as its duration (an external authorizer may take a while).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EMPTY_CONFIG, type RuntimeConfig } from '../../src/proxy/config.ts';
import { admitConnection } from '../../src/proxy/tcp/authz.ts';
import { AccessLogger } from '../../src/proxy/telemetry/access-log.ts';
import { Telemetry } from '../../src/proxy/telemetry/events.ts';
import { accessLogs } from '../../src/proxy/xds-client/convert-accesslog.ts';
import { splitNetworkRbac } from '../../src/proxy/xds-client/convert-authz.ts';
import { socketPair } from '../fixtures/socket-pair.ts';
import { once } from 'node:events';

const denyAll = splitNetworkRbac('x', [
  { name: 'envoy.filters.network.rbac', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC', stat_prefix: 'tcp.', rules: { action: 'DENY', policies: { 'ns[foo]-policy[deny-all]-rule[0]': { permissions: [{ any: true }], principals: [{ any: true }] } } } } },
]).rbac;

const logTo = (file: string, chain: string) =>
  accessLogs('x', [{ name: 'envoy.access_loggers.file', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog', path: file, log_format: { text_format_source: { inline_string: `${chain} %START_TIME% %DURATION% %CONNECTION_TERMINATION_DETAILS%\n` } } } }])!;

test("a denied TCP connection's line: its own chain's access log, START_TIME when it was accepted, DURATION until it was closed", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-tcp-deny-'));
  const [a, b] = [path.join(dir, 'a.log'), path.join(dir, 'b.log')];
  // Two mTLS chains of one listener, each with its own tcp_proxy access log.
  const chainA = logTo(a, 'A');
  const chainB = logTo(b, 'B');
  const listeners = new Map([['inbound|9000', { name: 'inbound|9000', direction: 'inbound', mtls: { chains: [{ name: 'a', tcp: { accessLog: chainA } }, { name: 'b', tcp: { accessLog: chainB } }] } }]]);
  const config = () => ({ ...EMPTY_CONFIG, listeners }) as unknown as RuntimeConfig;
  const telemetry = new Telemetry();
  const logger = new AccessLogger({ config, identity: () => undefined, log: () => {} });
  logger.subscribe(telemetry);
  const { server: sock, close } = await socketPair();
  try {
    const acceptedAt = Date.parse('2026-12-07T01:00:00.000Z');
    const before = Date.now();
    const closed = once(sock, 'close');
    const verdict = admitConnection({ telemetry, log: () => {} }, 'inbound|9000', sock, () => denyAll as never, { accessLog: chainB, acceptedAt });
    assert.equal(verdict, false);
    await closed; // the line is written when the connection closes
    logger.retain(true); // flushes and closes the files
    const line = await waitForLine(b);
    const [chain, start, duration, details] = line.trim().split(' ');
    assert.equal(chain, 'B', 'the chain the connection came on');
    assert.equal(start, '2026-12-07T01:00:00.000Z');
    assert.ok(Number(duration) >= before - acceptedAt, `the duration runs from the accept: ${duration} ms`);
    assert.equal(details, 'rbac_access_denied_matched_policy[ns[foo]-policy[deny-all]-rule[0]]');
    assert.equal(fs.existsSync(a) ? fs.readFileSync(a, 'utf8') : '', '', "nothing in the other chain's log");
  } finally {
    close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("with the RBAC filter's delay_deny the line is written when the connection closes, after the delay, its DURATION the whole of it (as Envoy's)", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-tcp-deny-'));
  const file = path.join(dir, 'c.log');
  const log = logTo(file, 'C');
  const config = () => ({ ...EMPTY_CONFIG, listeners: new Map() }) as unknown as RuntimeConfig;
  const telemetry = new Telemetry();
  const logger = new AccessLogger({ config, identity: () => undefined, log: () => {} });
  logger.subscribe(telemetry);
  const delayed = splitNetworkRbac('x', [
    { name: 'envoy.filters.network.rbac', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC', stat_prefix: 'tcp.', delay_deny: { seconds: 0, nanos: 300_000_000 }, rules: { action: 'DENY', policies: { 'ns[foo]-policy[deny-all]-rule[0]': { permissions: [{ any: true }], principals: [{ any: true }] } } } } },
  ]).rbac;
  const { server: sock, close } = await socketPair();
  try {
    const acceptedAt = Date.now();
    const closed = once(sock, 'close');
    assert.equal(admitConnection({ telemetry, log: () => {} }, 'inbound|9000', sock, () => delayed as never, { accessLog: log, acceptedAt }), false);
    assert.ok(!fs.existsSync(file) || fs.readFileSync(file, 'utf8') === '', 'nothing yet: the connection is still open');
    await closed;
    logger.retain(true);
    const [, , duration] = (await waitForLine(file)).trim().split(' ');
    assert.ok(Number(duration) >= 300, `the delay is in the duration: ${duration} ms`);
  } finally {
    close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** The file's first line, once the logger's asynchronous write has reached it (10 s at most). */
async function waitForLine(file: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    if (text.includes('\n')) return text;
    if (Date.now() > deadline) assert.fail(`no line in ${file} after 10 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
