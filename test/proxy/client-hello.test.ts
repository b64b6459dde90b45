// The ClientHello reader (Envoy's tls_inspector): real hellos from node:tls, hand-made ones for the
// edge cases, and hostile flights (fragmented, garbage, oversized, mutated), none of which may
// throw, hang (need bytes that can never come) or keep more than the bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientHello } from '../fixtures/tls.ts';
import { ClientHelloReader, MAX_CLIENT_HELLO, type HelloOutcome } from '../../src/proxy/tcp/client-hello.ts';

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const u24 = (n: number) => Buffer.from([n >> 16, (n >> 8) & 0xff, n & 0xff]);

/** server_name extension data: entries of [type, name]. */
function sniData(entries: [number, Buffer | string][]): Buffer {
  const list = Buffer.concat(entries.map(([t, n]) => Buffer.concat([Buffer.from([t]), u16(Buffer.byteLength(n)), Buffer.from(n)])));
  return Buffer.concat([u16(list.length), list]);
}

const ext = (type: number, data: Buffer) => Buffer.concat([u16(type), u16(data.length), data]);

/** A ClientHello body: TLS 1.2 fields and the given extensions (none: no extensions block). */
function helloBody(exts?: Buffer[]): Buffer {
  const fixed = Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32, 7), Buffer.from([32]), Buffer.alloc(32, 9), u16(4), Buffer.from([0x13, 0x01, 0x13, 0x02]), Buffer.from([1, 0])]);
  if (!exts) return fixed;
  const all = Buffer.concat(exts);
  return Buffer.concat([fixed, u16(all.length), all]);
}

const handshake = (body: Buffer, type = 1) => Buffer.concat([Buffer.from([type]), u24(body.length), body]);

/** Handshake bytes in records of the given payload sizes (the last takes the rest). */
function records(hs: Buffer, sizes: number[] = [], type = 22): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (const n of [...sizes, hs.length]) {
    if (at >= hs.length) break;
    const part = hs.subarray(at, Math.min(hs.length, at + n));
    out.push(Buffer.from([type, 3, 1]), u16(part.length), part);
    at += part.length;
  }
  return Buffer.concat(out);
}

const withSni = (name: Buffer | string) => records(handshake(helloBody([ext(0, sniData([[0, name]]))])));

function read(flight: Buffer, chunk = flight.length): { outcome: HelloOutcome; reader: ClientHelloReader; fed: number } {
  const reader = new ClientHelloReader();
  let outcome: HelloOutcome = { kind: 'more' };
  let fed = 0;
  for (let i = 0; i < flight.length && outcome.kind === 'more'; i += chunk) {
    const part = flight.subarray(i, i + chunk);
    outcome = reader.feed(part);
    fed += part.length;
  }
  return { outcome, reader, fed };
}

test('a real ClientHello from node:tls: its SNI, the same however the flight is cut up, and the bytes unchanged', async () => {
  const hello = await clientHello({ servername: 'a.example.com' });
  for (const chunk of [hello.length, 1, 2, 7, 100]) {
    const { outcome, reader } = read(hello, chunk);
    assert.deepEqual(outcome, { kind: 'tls', serverName: 'a.example.com', alpn: [] }, `chunks of ${chunk}`);
    assert.ok(reader.bytes.equals(hello), 'every byte kept, unchanged');
  }
  // Every strict prefix asks for more: the decision needs the whole hello.
  for (let n = 0; n < hello.length; n += 13) assert.deepEqual(read(hello.subarray(0, n)).outcome, { kind: 'more' }, `${n} bytes`);
});

test('a real ClientHello without SNI (node sends none to an IP address)', async () => {
  assert.deepEqual(read(await clientHello({})).outcome, { kind: 'tls', serverName: undefined, alpn: [] });
});

test('server names are lower-cased; one Envoy could match no server name with is no name; no extensions at all is no name', () => {
  assert.deepEqual(read(withSni('A.Example.COM')).outcome, { kind: 'tls', serverName: 'a.example.com', alpn: [] });
  assert.deepEqual(read(withSni(Buffer.from([0x61, 0xff, 0x62]))).outcome, { kind: 'tls', serverName: undefined, alpn: [] });
  assert.deepEqual(read(withSni('a b')).outcome, { kind: 'tls', serverName: undefined, alpn: [] });
  assert.deepEqual(read(records(handshake(helloBody()))).outcome, { kind: 'tls', serverName: undefined, alpn: [] });
  assert.deepEqual(read(records(handshake(helloBody([ext(16, Buffer.from([0, 3, 2, 0x68, 0x32]))])))).outcome, { kind: 'tls', serverName: undefined, alpn: ['h2'] }, 'ALPN only');
});

test('a ClientHello split over many records (as a large one must be) is put back together', () => {
  const hs = handshake(helloBody([ext(21, Buffer.alloc(40_000)), ext(0, sniData([[0, 'big.example.com']]))]));
  const flight = records(hs, [3, 1, 16_384, 16_384, 5]);
  for (const chunk of [flight.length, 4096, 1]) {
    const { outcome, reader } = read(flight, chunk);
    assert.deepEqual(outcome, { kind: 'tls', serverName: 'big.example.com', alpn: [] });
    assert.equal(reader.bytes.length, flight.length);
  }
});

test('what follows the ClientHello in the same read (early data) is kept too, not looked at', () => {
  const flight = Buffer.concat([withSni('a.example.com'), Buffer.from([23, 3, 3, 0, 2, 0xde, 0xad])]);
  const { outcome, reader } = read(flight);
  assert.deepEqual(outcome, { kind: 'tls', serverName: 'a.example.com', alpn: [] });
  assert.ok(reader.bytes.equals(flight));
});

test('not TLS: decided at the first byte that says so, with why', () => {
  const cases: [Buffer, RegExp][] = [
    [Buffer.from('GET / HTTP/1.1\r\n'), /first byte is not that of a TLS handshake record/],
    [Buffer.from([0x80, 0x2e, 0x01, 0x03, 0x01]), /SSLv2-format ClientHello/],
    [Buffer.from([22, 2, 0]), /record major version 2 is not TLS's/],
    [Buffer.from([22, 3, 1, 0, 0]), /a handshake record of 0 bytes/],
    [Buffer.from([22, 3, 1, 0x40, 0x01]), /a handshake record of 16385 bytes/],
    [records(handshake(helloBody(), 2)), /handshake message is of type 2, not a ClientHello/],
    [Buffer.concat([records(handshake(helloBody()).subarray(0, 10)), records(Buffer.from('xxxx'), [], 23)]), /a record of type 23 inside the ClientHello/],
  ];
  for (const [flight, why] of cases) {
    const { outcome, fed } = read(flight, 1);
    assert.equal(outcome.kind, 'not_tls', flight.toString('hex'));
    assert.match((outcome as { why: string }).why, why);
    assert.ok(fed <= flight.length);
  }
  assert.equal(read(Buffer.from('G'), 1).fed, 1, 'one byte is enough to tell');
});

test('malformed ClientHellos are not TLS (Envoy: no server name), never a throw', () => {
  const sni = (entries: [number, Buffer | string][]) => records(handshake(helloBody([ext(0, sniData(entries))])));
  const cases: [string, Buffer][] = [
    ['two host names', sni([[0, 'a.example.com'], [0, 'b.example.com']])],
    ['a name type other than host_name', sni([[1, 'a.example.com']])],
    ['an empty host name', sni([[0, '']])],
    ['a NUL in the host name', sni([[0, 'a\0.example.com']])],
    ['a host name over 255 bytes', sni([[0, 'a'.repeat(256)]])],
    ['server_name twice', records(handshake(helloBody([ext(0, sniData([[0, 'a.com']])), ext(0, sniData([[0, 'b.com']]))])))],
    ['a server_name list length that lies', records(handshake(helloBody([ext(0, Buffer.from([0, 9, 0, 0, 1, 0x61]))])))],
    ['an extension that runs past the message', records(handshake(Buffer.concat([helloBody(), u16(10), u16(0), u16(50)])))],
    ['bytes after the extensions', records(handshake(Buffer.concat([helloBody([ext(0, sniData([[0, 'a.com']]))]), Buffer.from([0])])))],
    ['an odd cipher suites length', records(handshake(Buffer.concat([Buffer.alloc(34), Buffer.from([0]), u16(3), Buffer.alloc(3), Buffer.from([1, 0])])))],
    ['a session id over 32 bytes', records(handshake(Buffer.concat([Buffer.alloc(34), Buffer.from([33]), Buffer.alloc(33), u16(2), Buffer.alloc(2), Buffer.from([1, 0])])))],
    ['no compression methods', records(handshake(Buffer.concat([Buffer.alloc(34), Buffer.from([0]), u16(2), Buffer.alloc(2), Buffer.from([0])])))],
    ['too short', records(handshake(Buffer.alloc(10)))],
  ];
  for (const [name, flight] of cases) assert.equal(read(flight).outcome.kind, 'not_tls', name);
});

test('oversized: a hello that says it is over 64 KiB is refused at its header; one that needs more than 64 KiB of flight when it is', () => {
  const { outcome, fed } = read(Buffer.concat([Buffer.from([22, 3, 1]), u16(4), Buffer.from([1]), u24(MAX_CLIENT_HELLO)]), 1);
  assert.deepEqual(outcome, { kind: 'too_large' });
  assert.equal(fed, 9, 'decided at the handshake header');
  // 1-byte records: 6 bytes of flight per byte of hello, so a 20,000-byte hello needs 120,000 bytes.
  const tiny = records(handshake(Buffer.alloc(20_000)), Array(20_004).fill(1));
  const r = read(tiny, 1000);
  assert.deepEqual(r.outcome, { kind: 'too_large' });
  assert.ok(r.fed >= MAX_CLIENT_HELLO && r.fed < MAX_CLIENT_HELLO + 1000, `stopped at the bound (${r.fed} bytes)`);
  assert.ok(r.reader.bytes.length <= MAX_CLIENT_HELLO + 1000);
});

test('hostile flights: random bytes and mutated hellos, in random pieces, never throw and never ask for more than the bound', async () => {
  let seed = 42;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const real = await clientHello({ servername: 'a.example.com' });
  const kinds = new Map<string, number>();
  for (let i = 0; i < 5000; i++) {
    let flight: Buffer;
    if (i % 2 === 0) {
      flight = Buffer.from(Array.from({ length: Math.floor(rand() * 600) }, () => Math.floor(rand() * 256)));
      if (rand() < 0.5 && flight.length > 3) flight[0] = 22, flight[1] = 3; // get past the first bytes more often
    } else {
      flight = Buffer.from(real);
      for (let k = 0; k < 1 + rand() * 4; k++) flight[Math.floor(rand() * flight.length)] = Math.floor(rand() * 256);
    }
    const reader = new ClientHelloReader();
    let outcome: HelloOutcome = { kind: 'more' };
    for (let at = 0; at < flight.length && outcome.kind === 'more'; ) {
      const n = 1 + Math.floor(rand() * 64);
      outcome = reader.feed(flight.subarray(at, at + n));
      at += n;
    }
    kinds.set(outcome.kind, (kinds.get(outcome.kind) ?? 0) + 1);
    if (outcome.kind === 'tls' && outcome.serverName !== undefined) assert.match(outcome.serverName, /^[\x21-\x7e]+$/);
  }
  // A flight that stays 'more' has asked for bytes it did not get: fine (the caller's timer ends it).
  assert.ok((kinds.get('not_tls') ?? 0) > 1000, JSON.stringify([...kinds]));
});

test("ALPN (for mTLS chains): a real hello's offer in its order; a malformed protocol list is no ClientHello", async () => {
  const hello = await clientHello({ servername: 'outbound_.80_._.app', ALPNProtocols: ['istio-h2', 'istio-peer-exchange', 'istio'] });
  assert.deepEqual(read(hello, 3).outcome, { kind: 'tls', serverName: 'outbound_.80_._.app', alpn: ['istio-h2', 'istio-peer-exchange', 'istio'] });
  const alpn = (data: Buffer) => read(records(handshake(helloBody([ext(16, data)])))).outcome.kind;
  assert.equal(alpn(Buffer.from([0, 0])), 'not_tls', 'an empty list');
  assert.equal(alpn(Buffer.from([0, 2, 0, 0x68])), 'not_tls', 'an empty name');
  assert.equal(alpn(Buffer.from([0, 3, 5, 0x68, 0x32])), 'not_tls', 'a name past the list');
  assert.equal(alpn(Buffer.from([0, 9, 2, 0x68, 0x32])), 'not_tls', 'a list length past the extension');
});
