// AuthorizationPolicy through real sidecars, field by field, as istio.io's "Authorization Policy"
// reference defines each: httpbin (namespace foo, app=httpbin version=v1, service account
// httpbin) serves HTTP on 8000 and a TCP echo on 9000; sleep (foo, sa sleep) and other (bar, sa
// other) call it through their sidecars over mTLS, so httpbin's sidecar sees their SPIFFE ids; a
// client outside the mesh calls httpbin's sidecar in plaintext (PERMISSIVE), with no identity.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import net from 'node:net';
import { once } from 'node:events';
import { AuthzMesh, type Answer, call, tcpEcho } from '../fixtures/authz-mesh.ts';
import { checkResource } from '../../src/api/index.ts';

const mesh = new AuthzMesh();
let sleep = 0; // outbound ports
let other = 0;
let plain = 0; // httpbin's inbound port for 8000
let plainTcp = 0; // and for 9000 (the TCP echo)
let plainWs = 0; // and for 8002 (HTTP, an app that takes upgrades and echoes)
let plainDetect = 0; // and for 9100 (a port of undeclared protocol, the TCP echo behind it)
let httpbinAdmin = '';
const HOST = 'httpbin.foo:8000';

const fromSleep = (path = '/', o?: Parameters<typeof call>[3]) => call(sleep, HOST, path, o);
const fromOther = (path = '/', o?: Parameters<typeof call>[3]) => call(other, HOST, path, o);
const fromOutside = (path = '/', o?: Parameters<typeof call>[3]) => call(plain, HOST, path, o);
const status = async (a: Promise<Answer>) => (await a).status;

const policy = (name: string, spec: Record<string, unknown>, namespace = 'foo', annotations?: Record<string, string>) => ({
  metadata: { name, namespace, ...(annotations ? { annotations } : {}) },
  spec,
});
const httpbin = { matchLabels: { app: 'httpbin' } };

before(async () => {
  await mesh.start('authz');
  const app = await mesh.httpApp('httpbin');
  const echo = await mesh.echoApp();
  const grpc = await mesh.grpcApp();
  const ws = await mesh.upgradeApp();
  const h = await mesh.workload({ name: 'httpbin-v1', namespace: 'foo', sa: 'httpbin', service: 'httpbin', labels: { app: 'httpbin', version: 'v1' }, ports: [['http', 8000, app], ['tcp-echo', 9000, echo], ['grpc', 8001, grpc], ['http-ws', 8002, ws], ['unknown', 9100, echo]] });
  plain = h.inbound.get(8000)!;
  plainTcp = h.inbound.get(9000)!;
  plainWs = h.inbound.get(8002)!;
  plainDetect = h.inbound.get(9100)!;
  httpbinAdmin = h.proc.admin;
  sleep = (await mesh.workload({ name: 'sleep', namespace: 'foo', sa: 'sleep', outbound: true })).outbound;
  other = (await mesh.workload({ name: 'other', namespace: 'bar', sa: 'other', outbound: true })).outbound;
  await mesh.synced();
});
after(() => mesh.close());

test('no policy: everything is allowed', async () => {
  await mesh.setPolicies([]);
  assert.equal(await status(fromSleep()), 200);
  assert.equal(await status(fromOther()), 200);
  assert.equal(await status(fromOutside()), 200);
  assert.equal(await tcpEcho(sleep, 'httpbin.foo:9000'), 'echoed');
});

test('allow-nothing (an empty spec): every request is denied, 403 "RBAC: access denied", the policy named "none"', async () => {
  await mesh.setPolicies([policy('allow-nothing', {})]);
  const a = await fromSleep('/get');
  assert.equal(a.status, 403);
  assert.equal(a.body, 'RBAC: access denied');
  assert.equal(a.policy, 'none');
  assert.equal(await status(fromOutside()), 403);
  assert.equal(await tcpEcho(sleep, 'httpbin.foo:9000'), 'closed', 'TCP: the connection is closed');
});

test('deny-all (DENY with one empty rule): denied, naming the policy', async () => {
  await mesh.setPolicies([policy('deny-all', { action: 'DENY', rules: [{}] })]);
  const a = await fromSleep();
  assert.deepEqual([a.status, a.body, a.policy], [403, 'RBAC: access denied', 'ns[foo]-policy[deny-all]-rule[0]']);
  assert.equal(await tcpEcho(sleep, 'httpbin.foo:9000'), 'closed');
});

const SLEEP = 'cluster.local/ns/foo/sa/sleep';
const OTHER = 'cluster.local/ns/bar/sa/other';

/** The statuses of sleep, other and the client outside the mesh for `path`. */
async function who(path = '/', o?: Parameters<typeof call>[3]): Promise<{ sleep: number; other: number; outside: number }> {
  return { sleep: await status(fromSleep(path, o)), other: await status(fromOther(path, o)), outside: await status(fromOutside(path, o)) };
}

describe('from.source', () => {
  test('principals: ALLOW only sleep\'s SPIFFE id (plaintext has no principal)', async () => {
    await mesh.setPolicies([policy('p', { selector: httpbin, rules: [{ from: [{ source: { principals: [SLEEP] } }] }] })]);
    assert.deepEqual(await who(), { sleep: 200, other: 403, outside: 403 });
    const a = await fromSleep();
    assert.equal(a.body, 'httpbin GET /');
  });
  test('principals with wildcards: a suffix (*/sa/other) and a prefix (cluster.local/ns/foo/*)', async () => {
    await mesh.setPolicies([policy('p', { rules: [{ from: [{ source: { principals: ['*/sa/other'] } }] }] })]);
    assert.deepEqual(await who(), { sleep: 403, other: 200, outside: 403 });
    await mesh.setPolicies([policy('p', { rules: [{ from: [{ source: { principals: ['cluster.local/ns/foo/*'] } }] }] })]);
    assert.deepEqual(await who(), { sleep: 200, other: 403, outside: 403 });
    await mesh.setPolicies([policy('p', { rules: [{ from: [{ source: { principals: ['*'] } }] }] })]);
    assert.deepEqual(await who(), { sleep: 200, other: 200, outside: 403 }, '"*" is any authenticated peer');
  });
  test('notPrincipals: DENY everyone but sleep (plaintext too: it has no principal, so it is not sleep)', async () => {
    await mesh.setPolicies([policy('p', { action: 'DENY', rules: [{ from: [{ source: { notPrincipals: [SLEEP] } }] }] })]);
    assert.deepEqual(await who(), { sleep: 200, other: 403, outside: 403 });
    assert.equal((await fromOther()).policy, 'ns[foo]-policy[p]-rule[0]');
  });
  test('namespaces and notNamespaces', async () => {
    await mesh.setPolicies([policy('p', { rules: [{ from: [{ source: { namespaces: ['bar'] } }] }] })]);
    assert.deepEqual(await who(), { sleep: 403, other: 200, outside: 403 });
    await mesh.setPolicies([policy('p', { action: 'DENY', rules: [{ from: [{ source: { notNamespaces: ['foo'] } }] }] })]);
    assert.deepEqual(await who(), { sleep: 200, other: 403, outside: 403 });
  });
  test('ipBlocks and notIpBlocks: every client here comes from 127.0.0.1', async () => {
    await mesh.setPolicies([policy('p', { rules: [{ from: [{ source: { ipBlocks: ['127.0.0.1'] } }] }] })]);
    assert.deepEqual(await who(), { sleep: 200, other: 200, outside: 200 });
    await mesh.setPolicies([policy('p', { rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/8'] } }] }] })]);
    assert.deepEqual(await who(), { sleep: 403, other: 403, outside: 403 });
    await mesh.setPolicies([policy('p', { action: 'DENY', rules: [{ from: [{ source: { notIpBlocks: ['10.0.0.0/8'] } }] }] })]);
    assert.deepEqual(await who(), { sleep: 403, other: 403, outside: 403 });
    await mesh.setPolicies([policy('p', { action: 'DENY', rules: [{ from: [{ source: { ipBlocks: ['127.0.0.0/8'] } }] }] })]);
    assert.deepEqual(await who(), { sleep: 403, other: 403, outside: 403 });
  });
});

describe('to.operation', () => {
  test('hosts: exact (case-insensitive), prefix and suffix wildcards; notHosts', async () => {
    for (const [hosts, want] of [[['httpbin.foo:8000'], 200], [['HTTPBIN.FOO:8000'], 200], [['httpbin.*'], 200], [['*:8000'], 200], [['httpbin.foo'], 403], [['other.com'], 403]] as const) {
      await mesh.setPolicies([policy('p', { rules: [{ to: [{ operation: { hosts } }] }] })]);
      assert.equal(await status(fromSleep()), want, JSON.stringify(hosts));
    }
    await mesh.setPolicies([policy('p', { action: 'DENY', rules: [{ to: [{ operation: { notHosts: ['httpbin.*'] } }] }] })]);
    assert.equal(await status(fromSleep()), 200);
  });
  test('ports: the service port (HTTP on 8000, TCP on 9000); a TCP connection a policy denies is closed', async () => {
    await mesh.setPolicies([policy('p', { rules: [{ to: [{ operation: { ports: ['8000'] } }] }] })]);
    assert.equal(await status(fromSleep()), 200);
    assert.equal(await tcpEcho(sleep, 'httpbin.foo:9000'), 'closed');
    await mesh.setPolicies([policy('p', { rules: [{ to: [{ operation: { ports: ['9000'] } }] }] })]);
    assert.equal(await status(fromSleep()), 403);
    assert.equal(await tcpEcho(sleep, 'httpbin.foo:9000'), 'echoed');
    await mesh.setPolicies([policy('p', { action: 'DENY', rules: [{ to: [{ operation: { notPorts: ['8000'] } }] }] })]);
    assert.equal(await status(fromSleep()), 200);
    assert.equal(await tcpEcho(sleep, 'httpbin.foo:9000'), 'closed');
  });
  test('methods and notMethods; an ALLOW rule with HTTP-only fields never matches TCP, so TCP is denied', async () => {
    await mesh.setPolicies([policy('p', { rules: [{ to: [{ operation: { methods: ['GET', 'HEAD'] } }] }] })]);
    assert.equal(await status(fromSleep('/', { method: 'GET' })), 200);
    assert.equal(await status(fromSleep('/', { method: 'POST' })), 403);
    assert.equal(await tcpEcho(sleep, 'httpbin.foo:9000'), 'closed');
    await mesh.setPolicies([policy('p', { action: 'DENY', rules: [{ to: [{ operation: { notMethods: ['GET'] } }] }] })]);
    assert.equal(await status(fromSleep('/', { method: 'GET' })), 200);
    assert.equal(await status(fromSleep('/', { method: 'DELETE' })), 403);
    // A DENY rule's HTTP-only fields are dropped on TCP, so it is narrowed to what TCP can see: it denies every connection.
    assert.equal(await tcpEcho(sleep, 'httpbin.foo:9000'), 'closed');
  });
  test('paths: exact, prefix, suffix, presence and {*}/{**} templates, after path normalization, the query ignored; notPaths', async () => {
    await mesh.setPolicies([policy('p', { rules: [{ to: [{ operation: { paths: ['/get', '/status/*', '*.png', '/ip/{*}/x', '/deep/{**}'] } }] }] })]);
    const cases: [string, number][] = [
      ['/get', 200],
      ['/get?x=1', 200],
      ['/get/', 403],
      ['/a/../get', 200], // normalized to /get before authorization, as routing sees it
      ['/status/418', 200],
      ['/status', 403],
      ['/img/a.png', 200],
      ['/ip/1/x', 200],
      ['/ip/1/2/x', 403],
      ['/deep/a/b/c', 200],
      ['/other', 403],
    ];
    for (const [path, want] of cases) assert.equal(await status(fromSleep(path)), want, path);
    await mesh.setPolicies([policy('p', { action: 'DENY', rules: [{ to: [{ operation: { notPaths: ['/public/*'] } }] }] })]);
    assert.equal(await status(fromSleep('/public/x')), 200);
    assert.equal(await status(fromSleep('/private')), 403);
  });
});

describe('when', () => {
  test('source.principal, source.namespace and request.headers', async () => {
    await mesh.setPolicies([policy('p', { rules: [{ when: [{ key: 'source.principal', values: [OTHER] }] }] })]);
    assert.deepEqual(await who(), { sleep: 403, other: 200, outside: 403 });
    await mesh.setPolicies([policy('p', { rules: [{ when: [{ key: 'source.namespace', values: ['foo'] }] }] })]);
    assert.deepEqual(await who(), { sleep: 200, other: 403, outside: 403 });
    await mesh.setPolicies([policy('p', { rules: [{ when: [{ key: 'request.headers[x-token]', values: ['secret', 'admin-*'] }] }] })]);
    assert.equal(await status(fromSleep('/', { headers: { 'x-token': 'secret' } })), 200);
    assert.equal(await status(fromSleep('/', { headers: { 'x-token': 'admin-1' } })), 200);
    assert.equal(await status(fromSleep('/', { headers: { 'x-token': 'wrong' } })), 403);
    assert.equal(await status(fromSleep('/')), 403);
    await mesh.setPolicies([policy('p', { action: 'DENY', rules: [{ when: [{ key: 'request.headers[x-token]', notValues: ['secret'] }] }] })]);
    assert.equal(await status(fromSleep('/', { headers: { 'x-token': 'secret' } })), 200);
    assert.equal(await status(fromSleep('/', { headers: { 'x-token': 'other' } })), 403);
  });
  test('destination.port and destination.ip', async () => {
    await mesh.setPolicies([policy('p', { rules: [{ when: [{ key: 'destination.port', values: ['8000'] }, { key: 'destination.ip', values: ['127.0.0.1'] }] }] })]);
    assert.equal(await status(fromSleep()), 200);
    assert.equal(await tcpEcho(sleep, 'httpbin.foo:9000'), 'closed');
    await mesh.setPolicies([policy('p', { rules: [{ when: [{ key: 'destination.port', values: ['9000'] }] }] })]);
    assert.equal(await status(fromSleep()), 403);
    assert.equal(await tcpEcho(sleep, 'httpbin.foo:9000'), 'echoed');
  });
  test('connection.sni: the SNI the client sidecar sends over mTLS (plaintext has none)', async () => {
    await mesh.setPolicies([policy('p', { rules: [{ when: [{ key: 'connection.sni', values: ['outbound_.8000_._.httpbin.foo.svc.cluster.local'] }] }] })]);
    assert.deepEqual(await who(), { sleep: 200, other: 200, outside: 403 });
    await mesh.setPolicies([policy('p', { rules: [{ when: [{ key: 'connection.sni', values: ['*.example.com'] }] }] })]);
    assert.equal(await status(fromSleep()), 403);
  });
});

describe('actions and their order', () => {
  test('DENY wins over ALLOW, whatever the order of the policies', async () => {
    await mesh.setPolicies([
      policy('allow-sleep', { rules: [{ from: [{ source: { principals: [SLEEP] } }] }] }),
      policy('deny-admin', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }] }),
    ]);
    assert.equal(await status(fromSleep('/')), 200);
    const a = await fromSleep('/admin');
    assert.deepEqual([a.status, a.policy], [403, 'ns[foo]-policy[deny-admin]-rule[0]']);
    assert.equal((await fromOther('/')).policy, 'none', 'no ALLOW policy matched other');
  });
  test('no ALLOW policy: what no DENY policy matches is allowed', async () => {
    await mesh.setPolicies([policy('deny-admin', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin'] } }] }] })]);
    assert.deepEqual(await who('/'), { sleep: 200, other: 200, outside: 200 });
    assert.deepEqual(await who('/admin'), { sleep: 403, other: 403, outside: 403 });
  });
  test('a policy in the root namespace applies mesh-wide; one of another namespace or selecting other labels does not', async () => {
    await mesh.setPolicies([policy('deny-all', { action: 'DENY', rules: [{}] }, 'istio-system')]);
    assert.equal(await status(fromSleep()), 403);
    await mesh.setPolicies([policy('deny-all', { action: 'DENY', rules: [{}] }, 'bar'), policy('deny-other', { action: 'DENY', selector: { matchLabels: { app: 'other' } }, rules: [{}] })]);
    assert.equal(await status(fromSleep()), 200);
  });
  test('AUDIT decides nothing', async () => {
    await mesh.setPolicies([policy('audit', { action: 'AUDIT', rules: [{}] })]);
    assert.equal(await status(fromSleep()), 200);
  });
  test('dry-run: a DENY policy is evaluated and counted as shadow, never enforced; /stats counts the decisions', async () => {
    await mesh.setPolicies([policy('dry-deny', { action: 'DENY', rules: [{}] }, 'foo', { 'istio.io/dry-run': 'true' }), policy('dry-allow', { rules: [{ from: [{ source: { principals: [OTHER] } }] }] }, 'foo', { 'istio.io/dry-run': 'true' })]);
    const before = ((await (await request(`${httpbinAdmin}/stats`)).body.json()) as any).authz;
    assert.deepEqual(await who(), { sleep: 200, other: 200, outside: 200 });
    assert.equal(await tcpEcho(sleep, 'httpbin.foo:9000'), 'echoed');
    const s = ((await (await request(`${httpbinAdmin}/stats`)).body.json()) as any).authz;
    assert.equal(s.denied - before.denied, 0);
    assert.equal(s.allowed - before.allowed, 4);
    // Each decision has two shadow results: dry-deny denies all four; dry-allow lets only other in.
    assert.equal(s.shadowDenied - before.shadowDenied, 4 + 3);
    assert.equal(s.shadowAllowed - before.shadowAllowed, 1);
    assert.equal(s.shadowDeniedBy['ns[foo]-policy[dry-deny]-rule[0]'] - (before.shadowDeniedBy['ns[foo]-policy[dry-deny]-rule[0]'] ?? 0), 4);
  });
  test('gRPC over HTTP/2 between the sidecars: the server sidecar sees the peer and the port on an HTTP/2 stream too', async () => {
    const grpcCall = async (from: number) => {
      const r = await request(`http://127.0.0.1:${from}/pkg.Svc/Method`, { method: 'POST', headers: { host: 'httpbin.foo:8001', 'content-type': 'application/grpc', te: 'trailers' }, body: Buffer.alloc(5) });
      await r.body.dump();
      return [r.statusCode, r.headers['grpc-status'], r.headers['x-weft-authz-policy']];
    };
    await mesh.setPolicies([policy('p', { rules: [{ from: [{ source: { principals: [SLEEP] } }], to: [{ operation: { ports: ['8001'], methods: ['POST'], paths: ['/pkg.Svc/*'] } }] }] })]);
    assert.deepEqual(await grpcCall(sleep), [200, '0', undefined]);
    assert.deepEqual(await grpcCall(other), [200, '7', 'none']);
  });
  test('/stats counts denials by policy; a gRPC request is denied with PERMISSION_DENIED', async () => {
    await mesh.setPolicies([policy('deny-all', { action: 'DENY', rules: [{}] })]);
    const before = ((await (await request(`${httpbinAdmin}/stats`)).body.json()) as any).authz;
    const r = await request(`http://127.0.0.1:${sleep}/pkg.Svc/Method`, { method: 'POST', headers: { host: HOST, 'content-type': 'application/grpc', te: 'trailers' }, body: Buffer.alloc(5) });
    await r.body.dump();
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['grpc-status'], '7');
    assert.equal(r.headers['grpc-message'], 'RBAC: access denied');
    assert.equal(r.headers['x-weft-authz-policy'], 'ns[foo]-policy[deny-all]-rule[0]');
    const s = ((await (await request(`${httpbinAdmin}/stats`)).body.json()) as any).authz;
    assert.equal(s.denied - before.denied, 1);
    assert.equal(s.deniedBy['ns[foo]-policy[deny-all]-rule[0]'] - (before.deniedBy['ns[foo]-policy[deny-all]-rule[0]'] ?? 0), 1);
    const rows = ((await (await request(`${httpbinAdmin}/stats`)).body.json()) as any).requests;
    assert.ok(rows.some((row: any) => row.code === 403 && row.reason === 'rbac_denied'), JSON.stringify(rows));
  });
});

describe('a policy change applies to connections already open', () => {
  /** A TCP tunnel through `outbound` to `target`, kept open: echo() sends and waits for the echo; `closed` settles when it closes. */
  async function openTunnel(outbound: number, target: string) {
    const s = net.connect(outbound, '127.0.0.1');
    s.on('error', () => {});
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    await once(s, 'connect');
    s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    let buf = '';
    let wake = () => {};
    s.on('data', (d) => {
      buf += d.toString('latin1');
      wake();
    });
    const until = async (what: string, ok: () => boolean) => {
      while (!ok()) {
        if (s.destroyed) return `closed before ${what}`;
        await Promise.race([new Promise<void>((r) => (wake = r)), closed]);
      }
      return 'ok';
    };
    assert.equal(await until('the tunnel', () => buf.includes('\r\n\r\n')), 'ok');
    assert.match(buf, /^HTTP\/1\.1 200/);
    buf = buf.slice(buf.indexOf('\r\n\r\n') + 4);
    return {
      socket: s,
      closed,
      echo: async (payload: string) => {
        s.write(payload);
        return until(`the echo of ${payload}`, () => buf.includes(payload));
      },
    };
  }

  /** PeerAuthentication STRICT in foo, until the test ends; resolves once every sidecar has it. */
  async function strictInFoo(t: { after(fn: () => Promise<void>): void }): Promise<void> {
    const store = mesh.cp.store;
    t.after(async () => {
      store.delete({ kind: 'PeerAuthentication', namespace: 'foo', name: 'strict' });
      await mesh.synced();
    });
    store.apply([checkResource({ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'strict', namespace: 'foo' }, spec: { mtls: { mode: 'STRICT' } } }, 'strict')]);
    await mesh.synced();
  }

  /** Waits for `p`, failing with `what` after 20 s (the sidecar closes it as soon as it ACKs the policy). */
  const within = (p: Promise<void>, what: string) =>
    Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: still open 20 s after every sidecar ACKed the policy`)), 20_000).unref())]);

  test('TCP: an open connection a new policy denies is closed at once; one it still allows keeps working', async () => {
    await mesh.setPolicies([]);
    const fromSleepTunnel = await openTunnel(sleep, 'httpbin.foo:9000');
    const fromOtherTunnel = await openTunnel(other, 'httpbin.foo:9000');
    assert.equal(await fromSleepTunnel.echo('one'), 'ok');
    assert.equal(await fromOtherTunnel.echo('one'), 'ok');
    // Only sleep may call httpbin now: other's open connection is closed, sleep's carries on.
    await mesh.setPolicies([policy('only-sleep', { rules: [{ from: [{ source: { principals: [SLEEP] } }] }] })]);
    await within(fromOtherTunnel.closed, "other's connection");
    assert.equal(await fromSleepTunnel.echo('two'), 'ok', "sleep's connection is still allowed, and still open");
    // Then nobody may: sleep's is closed too.
    await mesh.setPolicies([policy('deny-all', { action: 'DENY', rules: [{}] })]);
    await within(fromSleepTunnel.closed, "sleep's connection");
    assert.equal(await tcpEcho(sleep, 'httpbin.foo:9000'), 'closed', 'and new connections are refused');
  });

  test('PeerAuthentication STRICT closes a plain-text TCP connection opened while PERMISSIVE; the mTLS one from sleep carries on', async (t) => {
    await mesh.setPolicies([]);
    const fromSleepTunnel = await openTunnel(sleep, 'httpbin.foo:9000');
    assert.equal(await fromSleepTunnel.echo('one'), 'ok');
    // A client outside the mesh, straight to httpbin's sidecar in plain text (PERMISSIVE lets it in).
    const outside = net.connect(plainTcp, '127.0.0.1');
    outside.on('error', () => {});
    const outsideClosed = new Promise<void>((resolve) => outside.once('close', () => resolve()));
    outside.write('hello');
    await once(outside, 'data');
    await strictInFoo(t);
    await within(outsideClosed, 'the plain-text connection');
    assert.equal(await fromSleepTunnel.echo('two'), 'ok', "sleep's mTLS connection is still open");
    fromSleepTunnel.socket.destroy();
  });

  /** A plain-text connection straight to httpbin's sidecar, as a client outside the mesh has: echo() sends and waits for the echo, or says it closed. */
  async function outsideConnection(port: number) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    let buf = '';
    let wake = () => {};
    const closed = new Promise<void>((resolve) => s.once('close', () => (resolve(), wake())));
    s.on('data', (d) => {
      buf += d.toString('latin1');
      wake();
    });
    await once(s, 'connect');
    const until = async (ok: () => boolean) => {
      while (!ok()) {
        if (s.destroyed) return 'closed';
        await new Promise<void>((r) => (wake = r));
      }
      return 'ok';
    };
    return { socket: s, closed, until, text: () => buf, echo: (p: string) => (s.destroyed ? Promise.resolve('closed') : (s.write(p), until(() => buf.includes(p)))) };
  }

  const upgraded = async () => {
    const c = await outsideConnection(plainWs);
    c.socket.write('GET /ws HTTP/1.1\r\nHost: httpbin.foo:8002\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    assert.equal(await c.until(() => c.text().includes('\r\n\r\n')), 'ok');
    assert.match(c.text(), /^HTTP\/1\.1 101/);
    assert.equal(await c.echo('one'), 'ok');
    return c;
  };

  test('found by review: an upgraded (WebSocket) connection is decided again too: a DENY policy closes it at once', async () => {
    await mesh.setPolicies([]);
    const c = await upgraded();
    await mesh.setPolicies([policy('deny-all', { action: 'DENY', rules: [{}] })]);
    await within(c.closed, 'the upgraded connection');
    await mesh.setPolicies([]);
  });

  test('found by review: STRICT closes an upgraded plain-text connection too', async (t) => {
    await mesh.setPolicies([]);
    const c = await upgraded();
    await strictInFoo(t);
    await within(c.closed, 'the upgraded plain-text connection');
  });

  test('found by review: a client that connected before a DENY policy and speaks only after it is refused (a port of undeclared protocol)', async () => {
    await mesh.setPolicies([]);
    const c = await outsideConnection(plainDetect);
    await mesh.setPolicies([policy('deny-all', { action: 'DENY', rules: [{}] })]);
    assert.equal(await c.echo('hello'), 'closed');
    await mesh.setPolicies([]);
    const d = await outsideConnection(plainDetect);
    assert.equal(await d.echo('hello'), 'ok', 'with no policy, the port echoes');
    d.socket.destroy();
  });

  test('found by review: a client that connected while PERMISSIVE and speaks only after STRICT is refused', async (t) => {
    await mesh.setPolicies([]);
    const c = await outsideConnection(plainDetect);
    await strictInFoo(t);
    assert.equal(await c.echo('hello'), 'closed');
  });
});
