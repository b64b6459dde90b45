// The access log's writer (telemetry/log-file.ts): a file that does not keep up (a FIFO nobody
// reads yet) never makes the writer's caller wait; past the backlog, lines are dropped and counted;
// every line it accepted arrives, whole and in order, once the reader comes. A path that cannot be
// opened is reported, never thrown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { LogFile, MAX_BACKLOG } from '../../src/proxy/telemetry/log-file.ts';
import type { LogEntry } from '../../src/proxy/telemetry/format.ts';
import { tmpDir } from '../helpers.ts';
import { seededRandom } from '../fixtures/seeded.ts';

test('a stalled file: writes never wait, lines past the backlog are dropped and counted, the accepted ones all arrive', async () => {
  const fifo = path.join(tmpDir('al-fifo'), 'log');
  execFileSync('mkfifo', [fifo]);
  const errors: string[] = [];
  const f = new LogFile(fifo, (_p, m) => errors.push(m));
  const line = `${'x'.repeat(1000)}\n`;
  const N = Math.ceil((3 * MAX_BACKLOG) / line.length);
  const t0 = performance.now();
  for (let i = 0; i < N; i++) f.write(`${String(i).padStart(8, '0')} ${line}`);
  const took = performance.now() - t0;
  // Nobody reads the FIFO: its open has not even completed.
  assert.ok(took < 2000, `writing ${N} lines took ${took} ms`);
  assert.ok(f.dropped > 0 && f.written > 0, `written ${f.written}, dropped ${f.dropped}`);
  assert.equal(f.written + f.dropped, N);
  assert.ok(f.written * line.length <= MAX_BACKLOG + line.length * 2, 'no more than the backlog is held');
  // The reader comes: every accepted line arrives, whole, in order.
  const got = await new Promise<string>((resolve, reject) => {
    let s = '';
    const r = fs.createReadStream(fifo, { encoding: 'latin1' });
    r.on('data', (d) => (s += d));
    r.on('end', () => resolve(s));
    r.on('error', reject);
    f.close();
  });
  const lines = got.split('\n').filter(Boolean);
  assert.equal(lines.length, f.written);
  lines.forEach((l, i) => assert.ok(l.startsWith(`${String(i).padStart(8, '0')} x`), `line ${i}`));
  assert.deepEqual(errors, []);
});

test('a path that cannot be opened: reported once with the reason, lines counted as dropped, nothing thrown', async () => {
  const errors: string[] = [];
  let reported!: () => void;
  const once = new Promise<void>((r) => (reported = r));
  const f = new LogFile('/nonexistent-weft-dir/a.log', (p, m) => {
    errors.push(`${p}: ${m}`);
    reported();
  });
  f.write('a\n');
  await once;
  f.write('b\n');
  f.write('c\n');
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /nonexistent-weft-dir\/a\.log: ENOENT/);
  assert.ok(f.failed);
  assert.equal(f.dropped + f.written, 3);
  assert.ok(f.dropped >= 2);
  // Its stream failed and closed already: closing the file does not wait for a 'close' that will not come (review defect).
  await f.close();
});

test("START_TIME's cached formatting writes exactly what Date.toISOString() writes, across seconds, fractions of a millisecond and years", async () => {
  const { isoTime } = await import('../../src/proxy/telemetry/format.ts');
  const at = [0, 999, 1000, 1000.9, Date.UTC(2026, 11, 6, 23, 59, 59, 999), Date.UTC(2026, 11, 7), -1, -1000.5, Date.UTC(1969, 0, 1, 0, 0, 0, 5)];
  for (let i = 0; i < 20_000; i++) at.push(Date.now() + (i * 7919.37) % 3e10 - 1.5e10);
  for (const ms of at) assert.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
});

test('lines are copied out of the JS heap byte for byte: multi-byte text across 64 KiB flushes and a line longer than the buffer arrive whole and in order', async () => {
  const file = path.join(tmpDir('al-bytes'), 'log');
  const f = new LogFile(file, (_p, m) => assert.fail(m));
  const want: string[] = [];
  for (let i = 0; i < 3000; i++) {
    // 1-, 2-, 3- and 4-byte UTF-8 (an astral character is two UTF-16 units), lengths that straddle the buffer's end.
    const line = i === 1500 ? `${i} ${'é'.repeat(70_000)}\n` : `${i} ${'aé€😀'.repeat(i % 97)}\n`;
    want.push(line);
    f.write(line);
  }
  assert.equal(f.written, 3000);
  await f.close();
  const expected = Buffer.from(want.join(''));
  assert.ok(fs.readFileSync(file).equals(expected), 'the file holds exactly the lines written, in order');
});

test("a text format's lines written straight into the buffer are renderText's lines byte for byte: numbers, '-', cut values, non-ASCII, across flushes, longer than the buffer", async () => {
  const { compileText, renderText, writeText, NO_ROOM, NOT_ASCII } = await import('../../src/proxy/telemetry/format.ts');
  const { ISTIO_TEXT_FORMAT } = await import('../../src/control/translate/accesslog.ts');
  const parts = compileText(`${ISTIO_TEXT_FORMAT.trimEnd()} %REQ(X-USER):5% %DURATION% %REQ(:PATH)%\n`, 'test');
  const entry = (i: number) => ({
    startMs: Date.UTC(2026, 11, 6, 23, 0, 0, i % 1000) + 0.25,
    durationMs: i % 7 === 0 ? undefined : i * 1.7,
    method: 'GET',
    path: i === 40 ? `/${'p'.repeat(70_000)}` : `/r/${i}`,
    query: i % 3 ? '' : `q=${i}`,
    authority: 'reviews:9080',
    protocol: 'HTTP/1.1',
    reqHeader: (n: string) => (n === 'x-user' ? (i % 5 === 0 ? '' : i % 5 === 1 ? 'jason-the-user' : i % 5 === 2 ? 'jösé' : undefined) : n === 'user-agent' ? 'curl/8.5.0' : undefined),
    responseCode: i % 2 ? 200 : 503,
    responseFlags: i % 2 ? '-' : 'UF,URX',
    responseCodeDetails: 'via_upstream',
    bytesReceived: i * 1_000_003,
    bytesSent: 0,
    upstreamHost: '10.0.0.1:9080',
    upstreamCluster: 'outbound|9080||reviews.default.svc.cluster.local',
    downstreamRemoteAddress: '127.0.0.1:40000',
  });
  // The function itself: bytes as renderText's UTF-8, and where it cannot write a line it says why.
  const buf = Buffer.alloc(1024);
  for (const i of [1, 3, 5, 14, 21, 43]) {
    const e = entry(i);
    const end = writeText(parts, e, buf, 10);
    assert.deepEqual(Buffer.from(buf.subarray(10, end)), Buffer.from(renderText(parts, e)), `entry ${i}`);
  }
  // START_TIME outside the years its cached form writes (Date's own text then).
  for (const startMs of [Date.UTC(10001, 0, 1, 0, 0, 0, 7), -62198755200000 - 1]) {
    const e = { ...entry(1), startMs };
    assert.deepEqual(Buffer.from(buf.subarray(0, writeText(parts, e, buf, 0))), Buffer.from(renderText(parts, e)), new Date(startMs).toISOString());
  }
  assert.equal(writeText(parts, entry(1), buf, 1000), NO_ROOM);
  assert.equal(writeText(parts, entry(2), buf, 0), NOT_ASCII);
  // Through the file: 2,000 lines over several 64 KiB buffers, a line longer than the buffer, non-ASCII ones.
  const file = path.join(tmpDir('al-direct'), 'log');
  const f = new LogFile(file, (_p, m) => assert.fail(m));
  const want: string[] = [];
  for (let i = 0; i < 2000; i++) {
    want.push(renderText(parts, entry(i)));
    f.writeText(parts, entry(i));
  }
  assert.equal(f.written, 2000);
  assert.equal(f.dropped, 0);
  await f.close();
  assert.ok(fs.readFileSync(file).equals(Buffer.from(want.join(''))), 'the file holds exactly the lines renderText makes, in order');
});

test("writeText's bytes are renderText's line in UTF-8, or it says why not, on seeded random formats and entries (empty, undefined, non-ASCII, very long values; lines at the buffer's end), the sidecar's own entries too", async () => {
  const { compileText, renderText, writeText, NO_ROOM, NOT_ASCII } = await import('../../src/proxy/telemetry/format.ts');
  const { requestLogEntry } = await import('../../src/proxy/telemetry/access-log.ts');
  // Seeded: a failure is the same on every run.
  const random = seededRandom(0xa110c);
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const OPERATORS = ['START_TIME', 'START_TIME:10', 'PROTOCOL', 'RESPONSE_CODE', 'RESPONSE_CODE:2', 'RESPONSE_FLAGS', 'RESPONSE_CODE_DETAILS', 'CONNECTION_TERMINATION_DETAILS', 'UPSTREAM_TRANSPORT_FAILURE_REASON', 'BYTES_RECEIVED', 'BYTES_SENT', 'DURATION', 'UPSTREAM_HOST', 'UPSTREAM_CLUSTER', 'UPSTREAM_CLUSTER_RAW:7', 'UPSTREAM_LOCAL_ADDRESS', 'UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT', 'DOWNSTREAM_LOCAL_ADDRESS', 'DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT', 'DOWNSTREAM_REMOTE_ADDRESS', 'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT', 'REQUESTED_SERVER_NAME', 'ROUTE_NAME', 'DOWNSTREAM_PEER_URI_SAN', 'DOWNSTREAM_LOCAL_URI_SAN', 'UPSTREAM_PEER_URI_SAN', 'REQ(:METHOD)', 'REQ(:PATH)', 'REQ(X-ENVOY-ORIGINAL-PATH?:PATH)', 'REQ(:AUTHORITY)', 'REQ(HOST)', 'REQ(:SCHEME)', 'REQ(USER-AGENT)', 'REQ(X-USER?X-ALT)', 'REQ(X-USER):3', 'RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)', 'RESP(X-USER?CONTENT-TYPE)', 'DYNAMIC_METADATA(ns:k)', 'DYNAMIC_METADATA(ns)'];
  const LITERALS = [' ', '"', '" "', '[', '] ', '%%', '\t', ' - ', 'x'.repeat(40), '\n'];
  const format = (i: number) => {
    let f = '';
    for (let n = 1 + Math.floor(random() * 12); n > 0; n--) f += random() < 0.6 ? `%${pick(OPERATORS)}%` : pick(LITERALS);
    // Now and then a format whose own text is not plain ASCII.
    return `${f}${i % 25 === 0 ? ' → ' : ''}\n`;
  };
  const long = 'L'.repeat(5000);
  const STRINGS = [undefined, '', '-', 'GET', '/r/1', 'via_upstream', 'outbound|9080||reviews.default.svc.cluster.local', '10.0.0.1:9080', '[::1]:80', 'jösé', '→', '😀', '\ud800', `a${long}`, `${long}é`, 'ascii then ü at the end ü', '7c0cd8b9-1f5e-4f6a-9d4e-3b1a2c4d5e6f', `${'r'.repeat(40)}ü`, `é${'t'.repeat(60)}`, `${'u'.repeat(35)}\u0130`, `${'s'.repeat(33)}\ud800`, `${'v'.repeat(31)}ÿ`];
  const NUMBERS = [0, 7, 200, 503, 1_000_003, 2 ** 53 - 1, 2 ** 53, 1e21, -3, 1.5, Number.NaN];
  const str = () => pick(STRINGS);
  const headers = (): Record<string, string | undefined> => ({ 'user-agent': str(), 'x-user': str(), 'x-alt': str(), 'content-type': str(), 'x-envoy-original-path': random() < 0.2 ? str() : undefined, 'x-envoy-upstream-service-time': str() });
  const entry = (): LogEntry => {
    const req = headers();
    const resp = headers();
    return {
      startMs: random() < 0.05 ? pick([Date.UTC(10001, 0, 1), -62198755200001]) : Date.UTC(2026, 11, 6) + random() * 86_400_000,
      durationMs: random() < 0.2 ? undefined : pick(NUMBERS),
      method: str(),
      path: str(),
      query: pick(['', 'q=1', 'é=1', undefined]),
      authority: str(),
      protocol: str(),
      reqHeader: (n) => req[n],
      respHeader: (n) => resp[n],
      responseCode: pick(NUMBERS),
      responseFlags: pick(['-', 'UF,URX', 'ü']),
      responseCodeDetails: str(),
      connectionTerminationDetails: str(),
      upstreamTransportFailureReason: str(),
      bytesReceived: pick(NUMBERS),
      bytesSent: pick(NUMBERS),
      upstreamHost: str(),
      upstreamCluster: str(),
      upstreamLocalAddress: str(),
      downstreamLocalAddress: str(),
      downstreamRemoteAddress: str(),
      requestedServerName: str(),
      routeName: str(),
      downstreamPeerUriSan: str(),
      downstreamLocalUriSan: str(),
      upstreamPeerUriSan: str(),
      dynamicMetadata: random() < 0.5 ? { ns: { k: pick([str(), 5, { a: 'é' }, null]) } } : undefined,
    };
  };
  // The sidecar's own entries (access-log.ts HttpEntry): addresses that change from line to line or stay.
  const REMOTES: [string, number | undefined][] = [['10.0.0.7', 50000], ['10.0.0.7', 50001], ['::ffff:10.0.0.9', 40000], ['fe80::1', 443], ['10.0.0.7', undefined]];
  const hostPort = ([a, p]: [string, number | undefined]) => {
    const u = a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
    return p === undefined ? u : u.includes(':') ? `[${u}]:${p}` : `${u}:${p}`;
  };
  const sidecarEntry = (): LogEntry => {
    const remote = pick(REMOTES);
    const local = pick(REMOTES);
    const req = headers();
    const sni = str();
    const ds = {
      head: { method: pick(['GET', 'PÖST']), authority: str() ?? '', path: str() ?? '/', query: pick(['', 'a=b']), headers: Object.entries(req).flatMap(([k, v]) => (v === undefined ? [] : [k, v])), hasBody: false, protocol: 'HTTP/1.1' },
      listenerName: 'inbound|9080',
      remoteAddress: () => remote[0],
      remotePort: remote[1] === undefined ? undefined : () => remote[1],
      localAddress: () => ({ address: local[0], port: local[1] ?? 15006 }),
      requestedServerName: () => sni,
    };
    const e = { cluster: pick(['-', 'inbound|9080||']), status: pick([200, 503]), durationMs: random() * 100, endpoint: str(), route: str(), responseHeaders: ['x-user', str() ?? ''], ds };
    const entry = requestLogEntry(e as never, ds as never, () => 'spiffe://cluster.local/ns/default/sa/reviews');
    assert.equal(entry.downstreamRemoteAddress, hostPort(remote));
    assert.equal(entry.downstreamLocalAddress, hostPort([local[0], local[1] ?? 15006]));
    return entry;
  };
  const buf = Buffer.alloc(8192);
  const counts = { written: 0, noRoom: 0, notAscii: 0 };
  for (let i = 0; i < 400; i++) {
    const parts = compileText(format(i), `format ${i}`);
    for (let j = 0; j < 10; j++) {
      const e = j % 3 === 0 ? sidecarEntry() : entry();
      const line = renderText(parts, e);
      // Anywhere in the buffer, often where the line just fits or just does not.
      const at = j % 2 ? Math.floor(random() * buf.length) : Math.max(0, buf.length - line.length - 1 + Math.floor(random() * 3));
      const end = writeText(parts, e, buf, at);
      const ascii = !/[^\x00-\x7f]/.test(line);
      const why = `format ${i} entry ${j} at ${at}: ${JSON.stringify(line.slice(0, 200))}`;
      if (end >= 0) {
        counts.written++;
        assert.ok(Buffer.from(buf.subarray(at, end)).equals(Buffer.from(line)), why);
      } else if (end === NO_ROOM) {
        counts.noRoom++;
        assert.ok(at + line.length > buf.length, `NO_ROOM for a line that fits: ${why}`);
      } else {
        counts.notAscii++;
        assert.equal(end, NOT_ASCII, why);
        assert.ok(!ascii, `NOT_ASCII for a plain ASCII line: ${why}`);
      }
      // A plain ASCII line that fits is always written.
      if (ascii && at + line.length <= buf.length) assert.ok(end >= 0, why);
    }
  }
  assert.ok(counts.written > 500 && counts.noRoom > 100 && counts.notAscii > 500, JSON.stringify(counts));
});

test('a format whose own text is not plain ASCII writes its lines as renderText makes them', async () => {
  const { compileText, renderText } = await import('../../src/proxy/telemetry/format.ts');
  const parts = compileText('→ %REQ(:METHOD)% %RESPONSE_CODE% %REQ(X-USER)%\n', 'test');
  const file = path.join(tmpDir('al-utf8-format'), 'log');
  const f = new LogFile(file, (_p, m) => assert.fail(m));
  const want: string[] = [];
  for (let i = 0; i < 50; i++) {
    const e = { startMs: 0, durationMs: 1, method: 'GET', responseCode: 200 + i, responseFlags: '-', bytesReceived: 0, bytesSent: 0, reqHeader: (n: string) => (n === 'x-user' ? `ü${i}` : undefined) };
    want.push(renderText(parts, e));
    f.writeText(parts, e);
  }
  await f.close();
  assert.ok(fs.readFileSync(file).equals(Buffer.from(want.join(''))));
});

test("lines that copy the unchanged runs of the format's last line (an epoch given) are renderText's lines byte for byte: values that repeat or change, two formats in one buffer, flushes, a new buffer, lines cut short by the buffer's end or a non-ASCII value", async () => {
  const { compileText, renderText, writeText, NO_ROOM, NOT_ASCII } = await import('../../src/proxy/telemetry/format.ts');
  const { ISTIO_TEXT_FORMAT } = await import('../../src/control/translate/accesslog.ts');
  const random = seededRandom(0x1a57);
  // Each field from a few values, so that most lines repeat most of the last one: the same string,
  // an equal string made anew, a number, undefined against '' (both "-"), NaN (never equal), a cut
  // value; strings of one length that differ only inside, or only at one end; a slice of a longer
  // string (as the parser makes a header value) equal to a flat one.
  const one = <T,>(xs: readonly T[]): T => (random() < 0.7 ? xs[0]! : xs[Math.floor(random() * xs.length)]!);
  const fresh = (s: string) => [...s].join('');
  const sliced = (s: string) => `GET / HTTP/1.1\r\nx-request-id: ${s}\r\n`.slice(30, 30 + s.length);
  const formats = [
    compileText(ISTIO_TEXT_FORMAT, 'istio'),
    compileText('%START_TIME% %START_TIME% %REQ(X-USER):4%|%REQ(X-USER)%|%DURATION%|%BYTES_SENT%%BYTES_RECEIVED%|%UPSTREAM_HOST%\n', 'mixed'),
    compileText('%RESPONSE_CODE%\n', 'short'),
  ];
  const entry = (i: number): LogEntry => {
    const user = one(['jason', fresh('jason'), undefined, '', 'jösé', 'a-much-longer-user-name-than-the-last']);
    const ua = one(['curl/8.5.0', fresh('curl/8.5.0'), 'hey/0.0.1', 'agent-ü']);
    const id = one(['0f0e0d0c-0000-4000-8000-000000000001', fresh('0f0e0d0c-0000-4000-8000-000000000001'), sliced('0f0e0d0c-0000-4000-8000-000000000001'), sliced('0f0e0d0c-1111-4000-8000-000000000001'), '1f0e0d0c-0000-4000-8000-000000000001', '0f0e0d0c-0000-4000-8000-000000000002', `id-${i}`]);
    const took = one(['1', '2', undefined]);
    return {
      startMs: Date.UTC(2026, 11, 7) + one([0, 0.5, 1, 999, 1000, 61_000 + i]),
      durationMs: one([1, 1.9, 0, Number.NaN, undefined, 12345]),
      method: 'GET',
      path: one(['/', '/r/1', '/' + 'p'.repeat(300)]),
      query: '',
      authority: one(['reviews:9080', fresh('reviews:9080')]),
      protocol: 'HTTP/1.1',
      reqHeader: (n) => (n === 'x-user' ? user : n === 'user-agent' ? ua : n === 'x-request-id' ? id : undefined),
      respHeader: (n) => (n === 'x-envoy-upstream-service-time' ? took : undefined),
      responseCode: one([200, 503, 0]),
      responseFlags: one(['-', 'UF,URX']),
      responseCodeDetails: 'via_upstream',
      bytesReceived: one([0, 12, -0, 2 ** 53]),
      bytesSent: one([28, 28.5, 3]),
      upstreamHost: one(['10.0.0.1:9080', '10.0.0.2:9080', undefined]),
      upstreamCluster: 'outbound|9080||reviews.default.svc.cluster.local',
      upstreamLocalAddress: one(['127.0.0.1:40001', '127.0.0.1:40002']),
      downstreamRemoteAddress: one(['127.0.0.1:50001', '127.0.0.1:50002', '127.0.0.1:50003']),
      routeName: 'default',
    };
  };
  // A writer as LogFile is one: lines one after another; a flush starts the buffer again (kept or new) with a new epoch.
  let buf = Buffer.alloc(2048);
  let used = 0;
  let epoch = 0;
  const counts = { copied: 0, noRoom: 0, notAscii: 0, flushes: 0 };
  for (let i = 0; i < 6000; i++) {
    const parts = formats[random() < 0.8 ? 0 : random() < 0.5 ? 1 : 2]!;
    const e = entry(i);
    const line = Buffer.from(renderText(parts, e));
    const why = `line ${i}: ${JSON.stringify(line.toString().slice(0, 160))}`;
    let end = writeText(parts, e, buf, used, epoch);
    if (end === NO_ROOM) {
      counts.noRoom++;
      assert.ok(used + line.length > buf.length, `NO_ROOM for a line that fits: ${why}`);
      counts.flushes++;
      epoch++;
      used = 0;
      if (random() < 0.5) buf = Buffer.alloc(2048);
      end = writeText(parts, e, buf, used, epoch);
      if (end === NO_ROOM) {
        assert.ok(line.length > buf.length, why);
        continue;
      }
    }
    if (end === NOT_ASCII) {
      counts.notAscii++;
      assert.ok(/[^\x00-\x7f]/.test(line.toString()), `NOT_ASCII for a plain ASCII line: ${why}`);
      // What LogFile then does: the line's UTF-8 bytes after the others.
      if (used + line.length > buf.length) continue;
      buf.set(line, used);
      used += line.length;
      continue;
    }
    assert.ok(Buffer.from(buf.subarray(used, end)).equals(line), why);
    counts.copied++;
    used = end;
    // Now and then a flush with room left, as LogFile's timer makes one.
    if (random() < 0.02) {
      counts.flushes++;
      epoch++;
      used = 0;
    }
  }
  assert.ok(counts.copied > 3000 && counts.noRoom > 100 && counts.notAscii > 100 && counts.flushes > 200, JSON.stringify(counts));
});

test("where code cannot be made from strings (node --disallow-code-generation-from-strings), a text format's lines are still renderText's", async () => {
  const dir = tmpDir('al-nocodegen');
  const file = path.join(dir, 'log');
  const script = path.join(dir, 'write.ts');
  const src = (m: string) => JSON.stringify(new URL(`../../src/${m}`, import.meta.url).href);
  fs.writeFileSync(script, `
    import { LogFile } from ${src('proxy/telemetry/log-file.ts')};
    import { compileText, renderText } from ${src('proxy/telemetry/format.ts')};
    import { ISTIO_TEXT_FORMAT } from ${src('control/translate/accesslog.ts')};
    const parts = compileText(ISTIO_TEXT_FORMAT, 'istio');
    const f = new LogFile(${JSON.stringify(file)}, (_p, m) => { throw new Error(m); });
    const want = [];
    for (let i = 0; i < 200; i++) {
      const e = { startMs: Date.UTC(2026, 11, 7, 0, 0, 0, i), durationMs: i % 3, method: 'GET', path: '/r/' + (i % 4), query: '', authority: 'reviews:9080', protocol: 'HTTP/1.1', reqHeader: (n) => (n === 'x-request-id' ? 'id-' + i : undefined), respHeader: () => undefined, responseCode: 200, responseFlags: '-', bytesReceived: 0, bytesSent: 28 };
      want.push(renderText(parts, e));
      f.writeText(parts, e);
    }
    await f.close();
    process.stdout.write(JSON.stringify({ want: want.join(''), dropped: f.dropped, written: f.written }));
  `);
  const out = JSON.parse(execFileSync(process.execPath, ['--disallow-code-generation-from-strings', script], { encoding: 'utf8' }));
  assert.equal(out.written, 200);
  assert.equal(out.dropped, 0);
  assert.equal(fs.readFileSync(file, 'utf8'), out.want);
  // And code generation was refused there.
  assert.throws(() => execFileSync(process.execPath, ['--disallow-code-generation-from-strings', '-e', 'new Function("return 1")'], { stdio: 'pipe' }));
});

test("a line written over a copy of the last one, where a value grew and the last line's rest no longer fits after it but the line does, is still written whole", async () => {
  const { compileText, renderText, writeText } = await import('../../src/proxy/telemetry/format.ts');
  const parts = compileText('%REQ(X-A)% %REQ(X-B)%\n', 'grow then shrink');
  const entry = (a: string, b: string): LogEntry => ({ startMs: 0, durationMs: 1, responseCode: 200, responseFlags: '-', bytesReceived: 0, bytesSent: 0, reqHeader: (n) => (n === 'x-a' ? a : n === 'x-b' ? b : undefined) });
  const first = entry('a', 'b'.repeat(100));
  const second = entry('a'.repeat(50), 'c');
  const firstLine = Buffer.from(renderText(parts, first));
  const secondLine = Buffer.from(renderText(parts, second));
  // Room for a copy of the first line after it, not for its "b"s moved 49 bytes on.
  const buf = Buffer.alloc(2 * firstLine.length + 24);
  const end = writeText(parts, first, buf, 0, 1);
  assert.ok(buf.subarray(0, end).equals(firstLine));
  assert.ok(end + firstLine.length <= buf.length && end + 50 + 1 + 100 + 1 > buf.length, 'the test is what it says: the copy fits, the rest after the longer value would not');
  const end2 = writeText(parts, second, buf, end, 1);
  assert.ok(end2 > 0, `written (${end2})`);
  assert.ok(buf.subarray(end, end2).equals(secondLine), buf.subarray(end, end2).toString());
});

test('a log that keeps up writes each flush from a buffer it used before, not a new one (new ones, promoted and counted against V8 limits until freed, made a full collection every 25 s), and every line arrives whole and in order', async () => {
  const file = path.join(tmpDir('al-reuse'), 'access.log');
  const { FLUSH_BYTES } = await import('../../src/proxy/telemetry/log-file.ts');
  const made = { count: 0 };
  const allocUnsafeSlow = Buffer.allocUnsafeSlow;
  Buffer.allocUnsafeSlow = (n: number) => {
    if (n === FLUSH_BYTES) made.count++;
    return allocUnsafeSlow(n);
  };
  const f = new LogFile(file, (_p, m) => assert.fail(m));
  try {
    const line = (i: number) => `${String(i).padStart(8, '0')} ${'y'.repeat(991)}\n`;
    const flushes = 20;
    // A flush at FLUSH_BYTES - 512 buffered: each round's last line flushes them all.
    const perFlush = Math.ceil((FLUSH_BYTES - 512) / 1000);
    let n = 0;
    for (let k = 0; k < flushes; k++) {
      for (let i = 0; i < perFlush; i++) f.write(line(n++));
      // Until the file holds every line so far (the stream has written them): a log that keeps up.
      const deadline = Date.now() + 10_000;
      while (!fs.existsSync(file) || fs.statSync(file).size < n * 1000) {
        assert.ok(Date.now() < deadline, `flush ${k}: the file did not grow`);
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    // The first buffer, the first flush's second, and one now and then where the stream's callback
    // came after the next flush: a few, where a new buffer per flush made one more than flushes.
    assert.ok(made.count <= 5, `${made.count} new ${FLUSH_BYTES}-byte buffers for ${flushes} flushes`);
    await f.close();
    const lines = fs.readFileSync(file, 'latin1').split('\n').filter(Boolean);
    assert.equal(lines.length, n);
    lines.forEach((l, i) => assert.equal(l, line(i).slice(0, -1), `line ${i}`));
  } finally {
    Buffer.allocUnsafeSlow = allocUnsafeSlow;
    await f.close();
  }
});
