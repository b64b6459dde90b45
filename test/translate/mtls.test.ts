// Automatic mTLS and PeerAuthentication in the xDS (docs/mtls.md), structurally: the inbound
// chains of each mode on each kind of port, the endpoints that take mTLS, the clusters' transport
// socket matches and their SANs, a PeerAuthentication change through the push step, and a
// protobuf round trip of every new shape. None of these load the config into the sidecar.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import type { MeshSnapshot, Workload } from '../../src/control/model/model.ts';
import { translate, type XdsResources } from '../../src/control/translate/translate.ts';
import { MTLS_ALPN } from '../../src/control/translate/mtls.ts';
import { PushCache } from '../../src/control/push/cache.ts';
import { TYPE, decode, encode } from '../../src/xds/protos.ts';
import { meshOf, provenServer, workload } from '../snapshot.ts';

const pa = (name: string, namespace: string, spec: object) => ({ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name, namespace }, spec });
const strict = (namespace = 'default') => pa('default', namespace, { mtls: { mode: 'STRICT' } });
const disable = (namespace = 'default') => pa('default', namespace, { mtls: { mode: 'DISABLE' } });

/** A proven server with an http, a tcp and an undeclared (detected) port. */
const server = provenServer();
const client = workload('client', { serviceAccount: 'client-sa', port: 42000 });

type Chain = { name?: string; filter_chain_match?: { transport_protocol?: string; application_protocols?: string[] }; transport_socket?: { typed_config: Record<string, any> }; filters: { name: string }[] };
type Listener = { listener_filters?: { name: string }[]; filter_chains: Chain[] };

function listenerOf(x: XdsResources, inboundPort: number): Listener {
  return x.listeners[`inbound|${inboundPort}`] as Listener;
}
const filterNames = (l: Listener) => (l.listener_filters ?? []).map((f) => f.name.replace('envoy.filters.listener.', ''));
/** Each chain as "name: transport/alpn... -> filter" for compact comparison. */
const chains = (l: Listener) =>
  l.filter_chains.map((c) => {
    const m = c.filter_chain_match;
    const match = m ? `${m.transport_protocol ?? '*'}/${(m.application_protocols ?? []).join(',')}` : 'any';
    return `${c.name ?? ''}: ${match}${c.transport_socket ? ' +tls' : ''} -> ${c.filters.map((f) => f.name.replace('envoy.filters.network.', '')).join(',')}`;
  });

const MTLS_HTTP = 'istio-http/1.0,istio-http/1.1,istio-h2';

describe('inbound listeners by mode and port handling', () => {
  test('PERMISSIVE by default: tls_inspector first, mTLS chains, TLS passthrough on TCP and detected ports, then the plaintext chains as they were; a second for the first bytes', () => {
    const x = translate(meshOf([], [server, client]), server);
    const plain = translate(meshOf([disable()], [server, client]), server);
    for (const port of [41000, 41010, 41020]) {
      const l = listenerOf(x, port);
      const before = listenerOf(plain, port);
      assert.equal(filterNames(l)[0], 'tls_inspector');
      assert.deepEqual(l.filter_chains.slice(l.filter_chains.length - before.filter_chains.length), before.filter_chains, 'the plaintext chains are unchanged, last');
      // Server-first protocols (the client waits for the app's greeting) go to plain text after a second.
      assert.deepEqual([(l as any).listener_filters_timeout, (l as any).continue_on_listener_filters_timeout], [{ seconds: 1 }, true]);
    }
    assert.deepEqual(chains(listenerOf(x, 41000)), [`mtls: tls/${MTLS_ALPN.join(',')} +tls -> http_connection_manager`, ': any -> http_connection_manager']);
    // Istio's TCP metadata exchange first on the mTLS TCP chains (never where TLS passes through or on plain text).
    assert.deepEqual(chains(listenerOf(x, 41010)), [`mtls: tls/${MTLS_ALPN.join(',')} +tls -> istio.metadata_exchange,tcp_proxy`, 'tls-passthrough: tls/ -> tcp_proxy', ': any -> tcp_proxy']);
    assert.deepEqual(filterNames(listenerOf(x, 41020)), ['tls_inspector', 'http_inspector']);
    assert.deepEqual(chains(listenerOf(x, 41020)), [
      `mtls-http: tls/${MTLS_HTTP} +tls -> http_connection_manager`,
      'mtls-tcp: tls/istio,istio-peer-exchange +tls -> istio.metadata_exchange,tcp_proxy',
      'tls-passthrough: tls/ -> tcp_proxy',
      'http: */http/1.1,h2c -> http_connection_manager',
      'tcp: any -> tcp_proxy',
    ]);
  });

  test('STRICT: only the mTLS chains; a detected port keeps its http_inspector after the tls_inspector', () => {
    const x = translate(meshOf([strict()], [server, client]), server);
    assert.deepEqual(filterNames(listenerOf(x, 41000)), ['tls_inspector']);
    assert.deepEqual(chains(listenerOf(x, 41000)), [`mtls: tls/${MTLS_ALPN.join(',')} +tls -> http_connection_manager`]);
    assert.deepEqual(chains(listenerOf(x, 41010)), [`mtls: tls/${MTLS_ALPN.join(',')} +tls -> istio.metadata_exchange,tcp_proxy`]);
    assert.deepEqual(filterNames(listenerOf(x, 41020)), ['tls_inspector', 'http_inspector']);
    assert.deepEqual(chains(listenerOf(x, 41020)), [`mtls-http: tls/${MTLS_HTTP} +tls -> http_connection_manager`, 'mtls-tcp: tls/istio,istio-peer-exchange +tls -> istio.metadata_exchange,tcp_proxy']);
  });

  test("DISABLE: exactly today's listener, as a proxy that proved no identity gets by default", () => {
    const x = translate(meshOf([disable()], [server, client]), server);
    const { serviceAccount: _sa, ...unproven } = server;
    const today = translate(meshOf([], [unproven, client]), unproven);
    for (const port of [41000, 41010, 41020]) assert.deepEqual(listenerOf(x, port), listenerOf(today, port));
    assert.deepEqual(filterNames(listenerOf(x, 41000)), []);
    assert.deepEqual(filterNames(listenerOf(x, 41020)), ['http_inspector']);
  });

  test('the mTLS chain runs the same filters as the plaintext one, after a DownstreamTlsContext that requires a client certificate', () => {
    const l = listenerOf(translate(meshOf([], [server]), server), 41000);
    const [mtls, plain] = l.filter_chains;
    assert.deepEqual(mtls.filters, plain.filters);
    const tls = mtls.transport_socket!.typed_config;
    assert.equal(tls['@type'], TYPE.downstreamTls);
    assert.deepEqual(tls.require_client_certificate, { value: true });
    assert.deepEqual(tls.common_tls_context.alpn_protocols, ['h2', 'http/1.1']);
    assert.deepEqual(tls.common_tls_context.tls_certificate_sds_secret_configs.map((s: { name: string }) => s.name), ['default']);
    assert.equal(tls.common_tls_context.combined_validation_context.validation_context_sds_secret_config.name, 'ROOTCA');
  });

  test('portLevelMtls sets one service port apart from the workload mode', () => {
    const policy = pa('server', 'default', { selector: { matchLabels: { app: 'server' } }, mtls: { mode: 'STRICT' }, portLevelMtls: { '5432': { mode: 'DISABLE' }, '9000': { mode: 'PERMISSIVE' } } });
    const x = translate(meshOf([policy], [server, client]), server);
    assert.equal(chains(listenerOf(x, 41000)).length, 1, 'port 80: STRICT');
    assert.deepEqual(chains(listenerOf(x, 41010)), [': any -> tcp_proxy'], 'port 5432: DISABLE');
    assert.equal(chains(listenerOf(x, 41020)).length, 5, 'port 9000: PERMISSIVE');
  });

  test('a proxy that proved no identity: plaintext when PERMISSIVE (it has no certificate), still no plaintext when STRICT', () => {
    const { serviceAccount: _sa, ...unproven } = server;
    assert.deepEqual(filterNames(listenerOf(translate(meshOf([], [unproven]), unproven), 41000)), []);
    assert.deepEqual(chains(listenerOf(translate(meshOf([strict()], [unproven]), unproven), 41000)), [`mtls: tls/${MTLS_ALPN.join(',')} +tls -> http_connection_manager`]);
  });
});

type Cla = { endpoints: { lb_endpoints: { endpoint: { address: { socket_address: { port_value: number } } }; metadata?: object }[] }[] };
const tlsPorts = (x: XdsResources, cluster: string) =>
  (x.endpoints[cluster] as Cla).endpoints.flatMap((g) => g.lb_endpoints).filter((e) => e.metadata).map((e) => e.endpoint.address.socket_address.port_value);
type Cluster = { transport_socket_matches?: { name: string; match: object; transport_socket: { typed_config: Record<string, any> } }[] };
const matchesOf = (x: XdsResources, cluster: string) => (x.clusters[cluster] as Cluster).transport_socket_matches;
const sansOf = (x: XdsResources, cluster: string) =>
  matchesOf(x, cluster)?.[0]?.transport_socket.typed_config.common_tls_context.combined_validation_context.default_validation_context.match_subject_alt_names?.map((m: { exact: string }) => m.exact);
const C = (host: string, port = 80, subset = '') => `outbound|${port}|${subset}|${host}.default.svc.cluster.local`;

describe('outbound: endpoints that take mTLS, and the clusters that reach them', () => {
  const api = (name: string, port: number, sa?: string, labels: Record<string, string> = {}) => workload(name, { service: 'api', port, labels: { app: 'api', ...labels }, ...(sa ? { serviceAccount: sa } : {}) });

  test('every distinct identity among the endpoints is a SAN, sorted, in the default trust domain cluster.local', () => {
    const mesh = meshOf([], [api('api-1', 41000, 'zeta'), api('api-2', 41100, 'alpha'), api('api-3', 41200, 'zeta'), client]);
    const x = translate(mesh, client);
    assert.deepEqual(sansOf(x, C('api')), ['spiffe://cluster.local/ns/default/sa/alpha', 'spiffe://cluster.local/ns/default/sa/zeta']);
    assert.equal(matchesOf(x, C('api'))![0].transport_socket.typed_config.sni, 'outbound_.80_._.api.default.svc.cluster.local');
    assert.deepEqual(tlsPorts(x, C('api')), [41000, 41100, 41200]);
  });

  test("the snapshot's trust domain names the SANs", () => {
    const x = translate({ ...meshOf([], [api('api-1', 41000, 'a'), client]), trustDomain: 'weft.example' }, client);
    assert.deepEqual(sansOf(x, C('api')), ['spiffe://weft.example/ns/default/sa/a']);
  });

  test("the mesh config's trust domain aliases: each identity is expected in the trust domain and in every alias (Istio's ExpandWithTrustDomains); a DestinationRule's own subjectAltNames are kept as written", () => {
    const mesh = { ...meshOf([], [api('api-1', 41000, 'a'), client]), trustDomain: 'new-td', meshConfig: { trustDomain: 'new-td', trustDomainAliases: ['old-td', 'cluster.local'] } };
    assert.deepEqual(sansOf(translate(mesh, client), C('api')), ['spiffe://cluster.local/ns/default/sa/a', 'spiffe://new-td/ns/default/sa/a', 'spiffe://old-td/ns/default/sa/a']);
    const dr = { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'api' }, spec: { host: 'api', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL', subjectAltNames: ['spiffe://new-td/ns/default/sa/x'] } } } };
    const own = translate({ ...mesh, ...meshOf([dr], [api('api-1', 41000, 'a'), client]), trustDomain: 'new-td', meshConfig: mesh.meshConfig }, client).clusters[C('api')] as { transport_socket: { typed_config: Record<string, any> } };
    assert.deepEqual(own.transport_socket.typed_config.common_tls_context.combined_validation_context.default_validation_context.match_subject_alt_names, [{ exact: 'spiffe://new-td/ns/default/sa/x' }]);
  });

  test("the mesh config's enableAutoMtls false: no automatic mTLS to endpoints that take it (plain text, as Istio); a DestinationRule's ISTIO_MUTUAL still originates it", () => {
    const eps = [api('api-1', 41000, 'a'), client];
    const off = { ...meshOf([], eps), meshConfig: { enableAutoMtls: false } };
    const x = translate(off, client);
    assert.equal(matchesOf(x, C('api')), undefined);
    assert.equal((x.clusters[C('api')] as { transport_socket?: unknown }).transport_socket, undefined);
    assert.deepEqual(sansOf(translate({ ...off, meshConfig: { enableAutoMtls: true } }, client), C('api')), ['spiffe://cluster.local/ns/default/sa/a']);
    const dr = { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'api' }, spec: { host: 'api', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } } };
    const on = translate({ ...meshOf([dr], eps), meshConfig: { enableAutoMtls: false } }, client).clusters[C('api')] as { transport_socket: { typed_config: Record<string, any> } };
    assert.deepEqual(on.transport_socket.typed_config.common_tls_context.combined_validation_context.default_validation_context.match_subject_alt_names, [{ exact: 'spiffe://cluster.local/ns/default/sa/a' }]);
  });

  test('a subset cluster lists only its own endpoints\' identities, and its SNI names the subset', () => {
    const dr = { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'api' }, spec: { host: 'api', subsets: [{ name: 'v2', labels: { version: 'v2' } }] } };
    const x = translate(meshOf([dr], [api('api-1', 41000, 'one', { version: 'v1' }), api('api-2', 41100, 'two', { version: 'v2' }), client]), client);
    assert.deepEqual(sansOf(x, C('api', 80, 'v2')), ['spiffe://cluster.local/ns/default/sa/two']);
    assert.equal(matchesOf(x, C('api', 80, 'v2'))![0].transport_socket.typed_config.sni, 'outbound_.80_.v2_.api.default.svc.cluster.local');
  });

  test('the tlsMode-istio match takes the marked endpoints, tlsMode-disabled (match {}) the rest, in plaintext', () => {
    const x = translate(meshOf([], [api('api-1', 41000, 'a'), api('api-2', 41100), client]), client);
    const ms = matchesOf(x, C('api'))!;
    // The first offers Istio's TCP metadata exchange, to endpoints whose sidecar runs it (peer-exchange.test.ts).
    assert.deepEqual(ms.map((m) => [m.name, m.match]), [['tlsMode-istio-peer-exchange', { tlsMode: 'istio', peerExchange: 'istio-peer-exchange' }], ['tlsMode-istio', { tlsMode: 'istio' }], ['tlsMode-disabled', {}]]);
    assert.equal(ms[0].transport_socket.typed_config['@type'], TYPE.upstreamTls);
    assert.deepEqual(ms[0].transport_socket.typed_config.common_tls_context.alpn_protocols, ['istio-peer-exchange', 'istio']);
    assert.deepEqual(ms[1].transport_socket.typed_config.common_tls_context.alpn_protocols, ['istio']);
    assert.equal(ms[2].transport_socket.typed_config['@type'], TYPE.rawBuffer);
    assert.deepEqual(tlsPorts(x, C('api')), [41000], 'only the proven endpoint is marked');
  });

  test("DestinationRule tls DISABLE: plain text to the mesh's own endpoints; ISTIO_MUTUAL: mTLS to every endpoint, the rule's SANs and sni; a subset's tls wins", () => {
    const dr = (tls: object, subsetTls?: object) => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'api' },
      spec: { host: 'api', trafficPolicy: { tls }, subsets: [{ name: 'v2', labels: { version: 'v2' }, ...(subsetTls ? { trafficPolicy: { tls: subsetTls } } : {}) }] },
    });
    const eps = [api('api-1', 41000, 'a', { version: 'v1' }), api('api-2', 41100, undefined, { version: 'v2' }), client];
    type Tls = { transport_socket?: { typed_config: Record<string, any> }; transport_socket_matches?: unknown };
    const tlsOf = (x: XdsResources, name: string) => x.clusters[name] as Tls;

    const off = translate(meshOf([dr({ mode: 'DISABLE' })], eps), client);
    assert.equal(tlsOf(off, C('api')).transport_socket_matches, undefined, 'no automatic mTLS');
    assert.equal(tlsOf(off, C('api')).transport_socket, undefined, 'plain text to every endpoint');

    const on = translate(meshOf([dr({ mode: 'ISTIO_MUTUAL', sni: 'api.example', subjectAltNames: ['spiffe://cluster.local/ns/default/sa/api-x'] })], eps), client);
    const t = tlsOf(on, C('api'));
    // One transport socket for every endpoint, proven or not; the one match offers the metadata exchange to those whose sidecar runs it.
    assert.deepEqual((t.transport_socket_matches as any[]).map((m) => [m.name, m.match]), [['tlsMode-istio-peer-exchange', { peerExchange: 'istio-peer-exchange' }]]);
    assert.equal(t.transport_socket!.typed_config['@type'], TYPE.upstreamTls);
    assert.equal(t.transport_socket!.typed_config.sni, 'api.example');
    assert.deepEqual(t.transport_socket!.typed_config.common_tls_context.combined_validation_context.default_validation_context.match_subject_alt_names, [{ exact: 'spiffe://cluster.local/ns/default/sa/api-x' }]);
    // Without subjectAltNames: the service's identities, and Istio's SNI.
    const bare = tlsOf(translate(meshOf([dr({ mode: 'ISTIO_MUTUAL' })], eps), client), C('api'));
    assert.deepEqual(bare.transport_socket!.typed_config.common_tls_context.combined_validation_context.default_validation_context.match_subject_alt_names, [{ exact: 'spiffe://cluster.local/ns/default/sa/a' }]);
    assert.equal(bare.transport_socket!.typed_config.sni, 'outbound_.80_._.api.default.svc.cluster.local');

    // The rule says ISTIO_MUTUAL, its subset v2 DISABLE: the subset's cluster is plain text.
    const mixed = translate(meshOf([dr({ mode: 'ISTIO_MUTUAL' }, { mode: 'DISABLE' })], eps), client);
    assert.ok(tlsOf(mixed, C('api')).transport_socket);
    assert.equal(tlsOf(mixed, C('api', 80, 'v2')).transport_socket, undefined);
    // The cluster-wide transport socket survives the protobuf encoder, SNI and SAN included.
    const back = decode(TYPE.cluster, encode(TYPE.cluster, on.clusters[C('api')])) as Tls;
    assert.equal(back.transport_socket!.typed_config.sni, 'api.example');
    assert.deepEqual(back.transport_socket!.typed_config.common_tls_context.combined_validation_context.default_validation_context.match_subject_alt_names, [{ exact: 'spiffe://cluster.local/ns/default/sa/api-x' }]);
  });

  test('no endpoint takes mTLS: no transport_socket_matches at all (a plaintext-only mesh is unchanged)', () => {
    const x = translate(meshOf([], [api('api-1', 41000), client]), client);
    assert.equal(matchesOf(x, C('api')), undefined);
    assert.deepEqual(tlsPorts(x, C('api')), []);
  });

  test("a server's DISABLE port gets plaintext from clients: no tlsMode, no matches; its other ports keep mTLS", () => {
    const policy = pa('server', 'default', { selector: { matchLabels: { app: 'server' } }, portLevelMtls: { '5432': { mode: 'DISABLE' } } });
    const x = translate(meshOf([policy], [server, client]), client);
    assert.equal(matchesOf(x, C('server', 5432)), undefined);
    assert.ok(matchesOf(x, C('server', 80)));
    assert.ok(matchesOf(x, C('server', 9000)));
    const ns = translate(meshOf([disable()], [server, client]), client);
    for (const port of [80, 5432, 9000]) assert.equal(matchesOf(ns, C('server', port)), undefined);
  });

  test('a WorkloadEntry labelled tlsMode istio takes mTLS (its serviceAccount the SAN); unlabelled ones and inline ServiceEntry endpoints do not', () => {
    const se = { apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'vms' }, spec: { hosts: ['vms.example'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'STATIC', workloadSelector: { labels: { app: 'vm' } } } };
    const we = (name: string, address: string, labels: object, serviceAccount?: string) => ({ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name }, spec: { address, labels: { app: 'vm', ...labels }, ...(serviceAccount ? { serviceAccount } : {}) } });
    const inline = { apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'ext' }, spec: { hosts: ['ext.example'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'STATIC', endpoints: [{ address: '10.0.0.9', labels: { 'security.istio.io/tlsMode': 'istio' } }] } };
    const mesh = meshOf([se, inline, we('vm-1', '10.0.0.1', { 'security.istio.io/tlsMode': 'istio' }, 'vm-sa'), we('vm-2', '10.0.0.2', {}), we('vm-3', '10.0.0.3', { 'security.istio.io/tlsMode': 'istio' })], [client]);
    const x = translate(mesh, client);
    const vms = 'outbound|80||vms.example';
    const marked = (x.endpoints[vms] as any).endpoints.flatMap((g: any) => g.lb_endpoints).filter((e: any) => e.metadata).map((e: any) => e.endpoint.address.socket_address.address);
    assert.deepEqual(marked, ['10.0.0.1', '10.0.0.3']);
    assert.deepEqual(sansOf(x, vms), ['spiffe://cluster.local/ns/default/sa/vm-sa'], 'vm-3 names no service account: no SAN for it');
    assert.equal(matchesOf(x, 'outbound|80||ext.example'), undefined);
  });
});

describe('PeerAuthentication changes reach the proxies through the push step', () => {
  test("a new policy changes the server's own listener and the clients' endpoints and clusters; a proxy it does not select keeps its listener", () => {
    const other = workload('other', { namespace: 'elsewhere', service: 'other', serviceAccount: 'other', port: 43000 });
    const before: MeshSnapshot = meshOf([], [server, client, other]);
    const after: MeshSnapshot = { ...meshOf([strict(), pa('server', 'default', { selector: { matchLabels: { app: 'server' } }, portLevelMtls: { '5432': { mode: 'DISABLE' } } })], [server, client, other]), revision: 2 };
    const cache = new PushCache();
    const get = (mesh: MeshSnapshot, w: Workload) => cache.resources(mesh, w);
    // The server: port 80 goes STRICT (a namespace-wide policy), port 5432 DISABLE (its own).
    assert.equal(chains(listenerOf(get(before, server), 41000)).length, 2);
    assert.equal(chains(listenerOf(get(after, server), 41000)).length, 1);
    assert.deepEqual(chains(listenerOf(get(after, server), 41010)), [': any -> tcp_proxy']);
    // A client: the server's 5432 endpoints lose their tlsMode, and the cluster its matches.
    assert.deepEqual(tlsPorts(get(before, client), C('server', 5432)), [41010]);
    assert.deepEqual(tlsPorts(get(after, client), C('server', 5432)), []);
    assert.equal(matchesOf(get(after, client), C('server', 5432)), undefined);
    // Another namespace: its listener is as it was.
    assert.deepEqual(get(after, other).listeners['inbound|43000'], get(before, other).listeners['inbound|43000']);
  });
});

test('every new shape survives a protobuf round trip (nothing dropped: Structs, BoolValues, transport sockets)', () => {
  const policy = pa('server', 'default', { selector: { matchLabels: { app: 'server' } }, mtls: { mode: 'STRICT' }, portLevelMtls: { '9000': { mode: 'PERMISSIVE' } } });
  const mesh = meshOf([policy], [server, client, workload('api-1', { service: 'api', serviceAccount: 'api', port: 44000 })]);
  for (const proxy of [server, client]) {
    const x = translate(mesh, proxy);
    const types = { listeners: TYPE.listener, clusters: TYPE.cluster, endpoints: TYPE.endpoint } as const;
    for (const [group, type] of Object.entries(types)) {
      for (const [name, res] of Object.entries(x[group as keyof typeof types])) {
        const back = decode(type, encode(type, res));
        assert.ok(isDeepStrictEqual(back, res), `${group} ${name} changed in a round trip:\n${JSON.stringify(res)}\n${JSON.stringify(back)}`);
      }
    }
  }
});
