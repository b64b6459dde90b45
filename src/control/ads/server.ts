// The ADS server: Envoy's Aggregated Discovery Service, state of the world, over gRPC.
//
// Per stream and per type it keeps what it last sent (version, nonce, a digest of the bytes) and
// what the proxy last ACKed or NACKed. A push recomputes every stream's resources and sends only
// the types whose bytes changed. A burst of changes is debounced into one push.
//
// Flow control: a stream has at most one response of each type that the proxy has not answered
// (ACK or NACK) yet. A push that finds one outstanding holds that type back, and the answer brings
// the proxy the latest state at once, however many pushes it missed (state of the world: the last
// response is all a proxy needs). A proxy slower than the pushes (busy, or reading its stream
// slowly) so gets fewer, newer responses instead of a queue of stale ones on its socket; when a
// thousand proxies connect at once, the control plane's memory and CPU no longer grow with the
// number of pushes during the ramp. A type held back holds back the types after it in PUSH_ORDER,
// so that a route still never names a cluster the proxy has not been sent.
import crypto from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import {
  ADS_METHOD,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type Node,
  PUSH_ORDER,
  type ResourceType,
  SHORT_NAME,
  TYPE,
  decodeRequest,
  decodeResponse,
  encode,
  encodeRequest,
  encodeResponse,
} from '../../xds/protos.ts';
import type { MeshSnapshot, Workload } from '../model/model.ts';
import type { Registry } from '../registry/registry.ts';
import type { XdsResources } from '../translate/translate.ts';
import { PushCache } from '../push/cache.ts';
import { Debouncer } from './debounce.ts';
import { workloadFromNode } from './node.ts';
import { META, META_PORTS, parseNodeId } from '../../xds/node-meta.ts';

/** How long close() lets calls end on their own before it ends them. */
export const SHUTDOWN_GRACE_MS = 2000;

export interface TypeStatus {
  type: string; // SDS (the roots), CDS, EDS, LDS, RDS
  sent?: string; // version last sent
  acked?: string; // version last ACKed
  /** A newer config is held back until the proxy answers the response it has (flow control). */
  held?: boolean;
  nack?: { version: string; reason: string };
  resources: number;
}

export interface ProxyStatus {
  id: string;
  workload: Workload;
  peer: string;
  connectedAt: string;
  /** The config revision (the store's, as `weft apply` prints it) whose resources the proxy has ACKed, every type. */
  revision?: number;
  /** The proxy has ACKed everything sent to it, for the store's current revision, and NACKed nothing. */
  current: boolean;
  types: TypeStatus[];
}

/**
 * Since the server started: streams accepted and refused, pushes to every proxy, DiscoveryResponses
 * sent, and times a push held a type back for a proxy that had not answered its last response of
 * that type; and whether a push is due.
 */
export interface AdsStats {
  streams: number;
  refused: number;
  pushes: number;
  responses: number;
  held: number;
  pushPending: boolean;
}

export interface AdsServerOptions {
  registry: Registry;
  /** The current config and registry, as one immutable snapshot: the same object while nothing changed. */
  snapshot: () => MeshSnapshot;
  /** Heartbeat: gRPC keepalive ping interval and timeout. A proxy that misses one is dropped. */
  heartbeatMs?: number;
  debounceMs?: number;
  maxDebounceMs?: number;
  /** Config for one proxy; translate() unless a test hands in its own. */
  generate?: (mesh: MeshSnapshot, proxy: Workload) => XdsResources;
  log?: (msg: string) => void;
  /**
   * Who the TLS peer of a call proved to be with its certificate (ca/service.ts's callerIdentity),
   * or undefined. A stream on the secure port needs one; the workload's namespace, service account
   * and name are then the certificate's, whatever its node metadata says.
   */
  identify?: (call: Call) => ProvenIdentity | undefined;
  /**
   * The secrets served over SDS on this stream, by name: the mesh roots, ROOTCA (docs/mtls.md).
   * The same objects while they do not change. Not config: they come from the CA, not translate.
   */
  secrets?: () => Record<string, object>;
}

export interface ProvenIdentity {
  namespace: string;
  serviceAccount: string;
  workload?: string;
}

/** Where a stream came in: the TLS port (a certificate needed) or the opt-in plain-text one. */
type Port = 'secure' | 'insecure';

interface Subscription {
  names: Set<string> | null; // null: wildcard
  sentVersion?: string;
  sentNonce?: string;
  /** The names and per-resource digests last sent, to skip a response that would change nothing. */
  sent?: { names: string[]; digests: string[] };
  /** What the proxy last ACKed: the `sent` it answered. */
  ackedSent?: { names: string[]; digests: string[] };
  sentCount: number;
  /** The response last sent (sentNonce) has not been answered with an ACK or NACK yet. */
  awaiting: boolean;
  /** A response is due (asked for, or a push came), and goes out once nothing before it awaits an answer. */
  due: boolean;
  acked?: string;
  nack?: { version: string; reason: string };
}

const SERVICE: grpc.ServiceDefinition = {
  StreamAggregatedResources: {
    path: ADS_METHOD,
    requestStream: true,
    responseStream: true,
    requestSerialize: encodeRequest,
    requestDeserialize: decodeRequest,
    responseSerialize: serializeResponse,
    responseDeserialize: decodeResponse,
    originalName: 'streamAggregatedResources',
  },
};

type Call = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;

class Connection {
  readonly id: string;
  readonly node: Node;
  /** Replaced when a later request reports a change of health. */
  workload: Workload;
  readonly peer: string;
  readonly connectedAt = new Date().toISOString();
  readonly subs = new Map<string, Subscription>();
  private nonce = 0;
  readonly call: Call;
  /** Came in on the TLS port, with a certificate: a proxy that speaks mTLS. */
  secure = false;
  /** The last complaint about a node sent again on this stream, so that repeats are not logged. */
  nodeWarning: string | undefined;
  /** The peer of the refused newcomer last logged, so that its retries are not. */
  refusedLogged: string | undefined;
  /** The config revision of the snapshot last sent from, and the last one ACKed in full. */
  sentRevision: number | undefined;
  ackedRevision: number | undefined;
  /** The resources last generated, for the snapshot and workload they were generated from; until the next push. */
  generated: { mesh: MeshSnapshot; workload: Workload; res: XdsResources } | undefined;

  constructor(id: string, node: Node, workload: Workload, call: Call) {
    this.id = id;
    this.node = node;
    this.workload = workload;
    this.call = call;
    this.peer = call.getPeer();
  }

  /** Nonces only need to be unique within one stream. */
  nextNonce(): string {
    this.nonce += 1;
    return String(this.nonce);
  }
}

export class AdsServer {
  private readonly server: grpc.Server;
  /** The plain-text port, when asked for (listenInsecure): proxies that prove nothing, as clients only. */
  private insecureServer: grpc.Server | undefined;
  private readonly serverOptions: grpc.ServerOptions;
  private readonly opts: AdsServerOptions;
  private readonly conns = new Map<string, Connection>();
  private readonly debouncer: Debouncer;
  private version = 0;
  private readonly count = { streams: 0, refused: 0, pushes: 0, responses: 0, held: 0 };
  private readonly log: (msg: string) => void;

  constructor(opts: AdsServerOptions) {
    this.opts = opts;
    this.log = opts.log ?? (() => {});
    const hb = opts.heartbeatMs ?? 10_000;
    this.serverOptions = {
      'grpc.keepalive_time_ms': hb,
      'grpc.keepalive_timeout_ms': hb,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': 1000,
      // Nothing reads channelz, and registering each of a thousand sockets in it showed in the scale profile.
      'grpc.enable_channelz': 0,
    };
    this.server = new grpc.Server(this.serverOptions);
    this.server.addService(SERVICE, { StreamAggregatedResources: (call: Call) => this.onStream(call, 'secure') });
    this.debouncer = new Debouncer(opts.debounceMs ?? 50, opts.maxDebounceMs ?? 300, () => this.pushAll());
  }

  /** Another gRPC service on the same port (the certificate API: ca/service.ts); before listen(). */
  addService(def: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation): void {
    this.server.addService(def, impl);
  }

  /**
   * The xDS port, with its credentials: TLS with the control plane's certificate (tls.ts), where a
   * proxy proves who it is with its own. (Plain-text credentials here are for tests of the
   * stream's own logic, which then take every proxy at its word, as `identify` says.)
   */
  async listen(address: string, credentials: grpc.ServerCredentials): Promise<number> {
    return bind(this.server, address, credentials);
  }

  /**
   * A plain-text xDS port beside it, for the xDS clients that cannot present a certificate
   * (proxyless gRPC: grpc-js-xds speaks only plain text to its server). What connects here proved
   * nothing, so it is served as a client only: a node that would be an endpoint is refused.
   */
  async listenInsecure(address: string): Promise<number> {
    this.insecureServer = new grpc.Server(this.serverOptions);
    this.insecureServer.addService(SERVICE, { StreamAggregatedResources: (call: Call) => this.onStream(call, 'insecure') });
    return bind(this.insecureServer, address, grpc.ServerCredentials.createInsecure());
  }

  /** Config or registry changed: push to every proxy after the debounce. */
  requestPush(): void {
    this.debouncer.trigger();
  }

  stats(): AdsStats {
    return { ...this.count, pushPending: this.debouncer.pending };
  }

  proxies(): ProxyStatus[] {
    const byName = (a: Connection, b: Connection) => `${a.workload.namespace}/${a.workload.name}`.localeCompare(`${b.workload.namespace}/${b.workload.name}`) || a.id.localeCompare(b.id);
    const latest = this.opts.snapshot().revision;
    return [...this.conns.values()].sort(byName).map((c) => ({
      id: c.id,
      workload: c.workload,
      peer: c.peer,
      connectedAt: c.connectedAt,
      revision: c.ackedRevision,
      current: c.ackedRevision === latest && allAcked(c),
      types: PUSH_ORDER.filter((t) => c.subs.has(t)).map((t) => {
        const s = c.subs.get(t)!;
        return { type: SHORT_NAME[t], sent: s.sentVersion, acked: s.acked, nack: s.nack, resources: s.sentCount, ...(s.due ? { held: true } : {}) };
      }),
    }));
  }

  /** The tap token (node metadata TAP_TOKEN) of a connected proxy on the TLS port, if it sent one: what its /tap asks for. */
  tapToken(id: string): string | undefined {
    const c = this.conns.get(id);
    const t = c?.secure ? c.node.metadata?.[META.tapToken] : undefined;
    return typeof t === 'string' && t ? t : undefined;
  }

  /**
   * The proxies on the TLS port that do not hold the current version of secret `name` (never
   * subscribed to it, not yet sent it, or not yet ACKed it): until there are none, a CA rotating
   * its root keeps signing with the old one (ca/rotation.ts).
   */
  withoutSecret(name: string): string[] {
    const obj = this.opts.secrets?.()[name];
    if (!obj) return [];
    const digest = this.encode(TYPE.secret, obj).digest;
    const out: string[] = [];
    for (const c of this.conns.values()) {
      if (!c.secure) continue;
      const acked = c.subs.get(TYPE.secret)?.ackedSent;
      const i = acked?.names.indexOf(name) ?? -1;
      if (i < 0 || acked!.digests[i] !== digest) out.push(c.id);
    }
    return out.sort();
  }

  async close(): Promise<void> {
    this.debouncer.cancel();
    for (const c of this.conns.values()) c.call.end();
    for (const server of [this.server, this.insecureServer]) {
      if (!server) continue;
      // Graceful for at most SHUTDOWN_GRACE_MS, then forced: grpc-js's tryShutdown was seen never
      // to call back (a CI run's teardown waited on it until the test timed out, with no
      // connection left open), and a control plane that is stopping must stop.
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, SHUTDOWN_GRACE_MS);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      });
      server.forceShutdown();
    }
  }

  private onStream(call: Call, port: Port): void {
    let conn: Connection | undefined;
    let refused = false;
    const drop = () => {
      if (!conn || this.conns.get(conn.id) !== conn) return;
      this.conns.delete(conn.id);
      this.opts.registry.unregister(conn.id);
      this.log(`proxy ${conn.id} disconnected`);
    };
    const refuse = (code: grpc.status, details: string) => {
      refused = true;
      call.emit('error', { code, details }); // grpc-js: ends the stream with this status
    };
    call.on('data', (req: DiscoveryRequest) => {
      if (refused) return;
      try {
        if (!conn) {
          if (!req.node?.id) return refuse(grpc.status.INVALID_ARGUMENT, 'the first DiscoveryRequest on a stream must carry node.id');
          const parsed = workloadFromNode(req.node);
          if ('error' in parsed) return refuse(grpc.status.INVALID_ARGUMENT, `node ${req.node.id}: ${parsed.error}`);
          const proven = this.prove(call, port, req.node, parsed.workload);
          if ('code' in proven) return refuse(proven.code, proven.details);
          const old = this.conns.get(proven.key);
          if (old && !old.call.cancelled && !old.call.destroyed) return this.refuseDuplicate(old, call, refuse);
          if (old) this.conns.delete(old.id); // its transport is gone and its close not yet seen: the newcomer replaces it
          conn = new Connection(proven.key, req.node, { ...proven.workload, proxyId: proven.key }, call);
          conn.secure = port === 'secure';
          this.count.streams += 1;
          this.conns.set(conn.id, conn);
          this.log(`proxy ${conn.id} connected from ${conn.peer}`);
          this.opts.registry.register(conn.workload); // triggers a push to everyone (debounced)
        } else if (req.node) {
          this.onNodeAgain(conn, req.node);
        }
        this.onRequest(conn, req);
      } catch (e) {
        this.log(`ADS stream error: ${(e as Error).stack}`);
      }
    });
    call.on('end', () => {
      drop();
      call.end();
    });
    call.on('error', drop);
    call.on('cancelled', drop);
    call.on('close', drop);
  }

  /**
   * The workload as its certificate proves it, and the key its stream and registry entry go by;
   * or why the stream is refused.
   *   - On the secure port, the namespace, service account and name are the certificate's: node
   *     metadata that says otherwise is overruled (and logged). An Istio-style node id must name
   *     the certificate's namespace and workload (else it could take the id of another proxy, and
   *     lock that proxy out); another id (Envoy's, a gRPC client's) is keyed by the identity too.
   *   - On the insecure port, a node is a client only: nothing that would make it an endpoint
   *     (a service, ports, an inbound or app port: a ServiceEntry's workloadSelector picks
   *     endpoints by those) is taken. Its key is apart from every proven proxy's.
   */
  private prove(call: Call, port: Port, node: Node, w: Workload): { workload: Workload; key: string } | { code: grpc.status; details: string } {
    if (port === 'insecure') {
      const endpointKeys = [w.service !== undefined && META.service, w.ports !== undefined && META_PORTS, w.inboundPort !== undefined && META.inboundPort, w.appPort !== undefined && META.appPort].filter(Boolean);
      if (endpointKeys.length) {
        return { code: grpc.status.PERMISSION_DENIED, details: `node ${node.id}: metadata ${endpointKeys.join(', ')}: a proxy on the plain-text xDS port proved no identity, so it cannot be an endpoint; a sidecar connects to the TLS xDS port with a join token (weft token create)` };
      }
      return { workload: w, key: `plaintext~${node.id}` };
    }
    if (!this.opts.identify) return { workload: w, key: node.id };
    const id = this.opts.identify(call);
    if (!id) {
      return { code: grpc.status.UNAUTHENTICATED, details: `node ${node.id}: xDS on this port needs a certificate of this mesh in the TLS handshake; a sidecar gets one with a join token (weft token create)` };
    }
    const parts = parseNodeId(node.id);
    if (parts && parts.namespace !== id.namespace) {
      return { code: grpc.status.PERMISSION_DENIED, details: `node ${node.id}: its id names namespace ${parts.namespace}, but its certificate is for ${id.namespace}/${id.serviceAccount}` };
    }
    if (parts && id.workload && parts.pod !== id.workload && !parts.pod.startsWith(`${id.workload}-`)) {
      return { code: grpc.status.PERMISSION_DENIED, details: `node ${node.id}: its id names pod ${parts.pod}, but its certificate is for workload ${id.namespace}/${id.workload} (a sidecar's pod is its workload's name and an instance suffix)` };
    }
    const key = parts ? node.id : `${id.namespace}/${id.serviceAccount}/${id.workload ?? '-'}~${node.id}`;
    const proven: Workload = { ...w, namespace: id.namespace, serviceAccount: id.serviceAccount, name: id.workload ?? w.name };
    const overruled = (['namespace', 'name'] as const).filter((f) => w[f] !== proven[f] && !(f === 'name' && w.name === node.id));
    if (overruled.length) {
      this.log(`proxy ${node.id}: node metadata ${overruled.map((f) => `${f === 'name' ? META.workload : META.namespace} ${w[f]}`).join(', ')} overruled by its certificate (${id.namespace}/${proven.name}, service account ${id.serviceAccount})`);
    }
    return { workload: proven, key };
  }

  /**
   * A second stream for a node id that is connected: two proxies claim one identity, or one proxy
   * reconnects while its old stream looks alive here (a network blip the heartbeat has not caught
   * yet). Either way the live stream is kept, untouched, and the newcomer is refused. A sidecar
   * retries with backoff and gets in once the old stream closes or misses its heartbeats.
   */
  private refuseDuplicate(old: Connection, call: Call, refuse: (code: grpc.status, details: string) => void): void {
    this.count.refused += 1;
    const peer = call.getPeer();
    const hb = Math.round((this.opts.heartbeatMs ?? 10_000) / 1000);
    refuse(
      grpc.status.ALREADY_EXISTS,
      `node id ${old.id} is already connected from ${old.peer} (since ${old.connectedAt}); this second stream for it is refused. ` +
        `Each proxy needs its own node id. If this is that proxy reconnecting, it gets in once its old stream closes or misses its heartbeats (about ${2 * hb} s).`,
    );
    // Logged once per newcomer's peer, not on every retry.
    if (old.refusedLogged === peer) return;
    old.refusedLogged = peer;
    this.log(`refused a second stream for node ${old.id} from ${peer} (ALREADY_EXISTS): it is already connected from ${old.peer} since ${old.connectedAt}`);
  }

  /**
   * A node on a later request of the stream. Envoy sends one on every request by default; Weft's
   * sidecar sends one when its app's health changes. Only health may change on a live stream: it
   * updates the registry, and the push that follows tells every proxy. Who the proxy is (its id,
   * workload, namespace, service, labels, address, ports) is fixed for the life of the stream;
   * a change there is ignored, with a log line, and takes a new stream.
   */
  private onNodeAgain(c: Connection, node: Node): void {
    if (this.conns.get(c.id) !== c) return;
    const warn = (msg: string) => {
      if (c.nodeWarning === msg) return; // Envoy repeats the node on every request: say it once
      c.nodeWarning = msg;
      this.log(`proxy ${c.id}: ${msg}`);
    };
    if (node.id && node.id !== c.node.id) return warn(`sent node id ${node.id} on its stream; a node id cannot change on a stream, so this node is ignored`);
    const parsed = workloadFromNode({ ...node, id: c.id });
    if ('error' in parsed) return warn(`sent a node that cannot be used (${parsed.error}); ignored`);
    // What the certificate proved stands as it was overruled on the first request.
    const { namespace, name, serviceAccount } = c.workload;
    const w = serviceAccount === undefined ? parsed.workload : { ...parsed.workload, namespace, name, serviceAccount };
    const changed = IDENTITY_FIELDS.filter(([f]) => canonical(w[f]) !== canonical(c.workload[f])).map(([, key]) => key);
    if (changed.length) warn(`node metadata ${changed.join(', ')} changed on a live stream; only ${META.healthy} may, so the rest is ignored (a new stream may change it)`);
    else c.nodeWarning = undefined;
    if (w.healthy === c.workload.healthy) return;
    c.workload = { ...c.workload, healthy: w.healthy };
    this.log(`proxy ${c.id} reports its app ${w.healthy ? 'healthy' : 'unhealthy'}`);
    this.opts.registry.register(c.workload); // triggers a push to everyone (debounced)
  }

  private onRequest(c: Connection, req: DiscoveryRequest): void {
    const type = req.type_url as ResourceType;
    if (!PUSH_ORDER.includes(type)) {
      this.log(`proxy ${c.id} asked for unsupported type ${req.type_url}; ignored`);
      return;
    }
    let sub = c.subs.get(type);
    const names = req.resource_names ?? [];
    const wildcard = names.length === 0 && (type === TYPE.listener || type === TYPE.cluster);
    if (sub && req.response_nonce) {
      // A reply to what we sent. Stale nonces (for a response we since replaced) are ignored.
      if (req.response_nonce !== sub.sentNonce) return;
      sub.awaiting = false;
      if (req.error_detail?.message) {
        const again = sub.nack?.version === (sub.sentVersion ?? '') && sub.nack.reason === req.error_detail.message;
        sub.nack = { version: sub.sentVersion ?? '', reason: req.error_detail.message };
        if (!again) this.log(`proxy ${c.id} NACKed ${SHORT_NAME[type]} version ${sub.sentVersion}: ${req.error_detail.message}`);
      } else {
        sub.acked = req.version_info;
        sub.ackedSent = sub.sent;
        sub.nack = undefined;
        if (allAcked(c)) c.ackedRevision = c.sentRevision;
      }
      const newNames = wildcard ? null : new Set(names);
      if (!sameNames(sub.names, newNames)) {
        sub.names = newNames; // other names asked for: they are due
        sub.due = true;
      }
      // A plain ACK/NACK with nothing held back: nothing new to send.
      if (![...c.subs.values()].some((s) => s.due)) return;
    } else {
      sub = { names: wildcard ? null : new Set(names), sentCount: 0, awaiting: false, due: true };
      if (req.version_info) sub.acked = req.version_info;
      c.subs.set(type, sub);
    }
    // Answered from the snapshot of the last push: when a thousand proxies connect at once, each
    // registration changes the registry, and translating afresh for each new stream was quadratic.
    // The push that every registration schedules brings everyone, this proxy too, up to date.
    this.flush(c, this.pushed ?? (this.pushed = this.opts.snapshot()));
  }

  /**
   * Sends the types that are due, in PUSH_ORDER, from `mesh`. One that awaits the answer to its
   * last response holds back itself and the types after it (flow control, above).
   */
  private flush(c: Connection, mesh: MeshSnapshot): void {
    let res: XdsResources | undefined;
    for (const t of PUSH_ORDER) {
      const s = c.subs.get(t);
      if (!s?.due) continue;
      if (s.awaiting) break;
      res ??= this.generate(c, mesh);
      s.due = false;
      c.sentRevision = mesh.revision;
      this.send(c, t, res);
    }
    // Nothing was sent (no type changed), or all of it is ACKed already: this revision is the proxy's.
    if (allAcked(c)) c.ackedRevision = c.sentRevision;
  }

  // Translations per snapshot and scope (control/push/), and encoded bytes and digests per resource
  // object: with the default generator, proxies of one scope get the very same route, cluster and
  // endpoint objects, so a push to N proxies translates and encodes them once per scope, not N
  // times. (The snapshot callback returns the same object while nothing changed.)
  private readonly cache = new PushCache();
  private readonly encoded = new WeakMap<object, { field: Buffer; digest: string }>();
  /** The snapshot the last push was made from. */
  private pushed: MeshSnapshot | undefined;

  private generate(c: Connection, mesh: MeshSnapshot): XdsResources {
    const g = c.generated;
    if (g && g.mesh === mesh && g.workload === c.workload) return g.res;
    const res = this.opts.generate ? this.opts.generate(mesh, c.workload) : this.cache.resources(mesh, c.workload);
    c.generated = { mesh, workload: c.workload, res };
    return res;
  }

  /** A resource as the `resources` field of a DiscoveryResponse (an Any), encoded once per object. */
  private encode(type: ResourceType, obj: object): { field: Buffer; digest: string } {
    let e = this.encoded.get(obj);
    if (!e) {
      const bytes = encode(type, obj);
      e = { field: anyField(type, bytes), digest: crypto.createHash('sha256').update(bytes).digest('base64') };
      this.encoded.set(obj, e);
    }
    return e;
  }

  private pushAll(): void {
    this.version += 1;
    this.count.pushes += 1;
    const mesh = (this.pushed = this.opts.snapshot());
    for (const c of this.conns.values()) {
      // Every type is due; those that await an answer are held back (flow control, above), and a
      // proxy that awaits one on its first type costs this push nothing more.
      for (const s of c.subs.values()) {
        s.due = true;
        if (s.awaiting) this.count.held += 1;
      }
      c.generated = undefined; // a push generates afresh, whether or not the snapshot changed
      try {
        this.flush(c, mesh);
      } catch (e) {
        this.log(`could not generate or send config for ${c.id}: ${(e as Error).stack}`);
      }
    }
  }

  private send(c: Connection, type: ResourceType, res: XdsResources): void {
    const sub = c.subs.get(type)!;
    const all = type === TYPE.secret ? (this.opts.secrets?.() ?? {}) : byType(res, type, sub.names === null);
    const names = Object.keys(all).filter((n) => sub.names === null || sub.names.has(n)).sort();
    const enc = names.map((n) => this.encode(type, all[n]));
    // Unchanged if the same names have the same per-resource digests as last sent: comparing
    // the cached digest strings costs far less than hashing a combined digest for every proxy.
    const prev = sub.sent;
    if (prev && prev.names.length === names.length && names.every((n, i) => n === prev.names[i] && enc[i].digest === prev.digests[i])) return;
    sub.sent = { names, digests: enc.map((e) => e.digest) };
    const version = String(this.version);
    const nonce = c.nextNonce();
    sub.sentVersion = version;
    sub.sentNonce = nonce;
    sub.sentCount = enc.length;
    sub.awaiting = true;
    this.count.responses += 1;
    // The DiscoveryResponse is assembled from the resources' cached encodings; protobufjs would
    // re-encode every resource for every proxy.
    const body = Buffer.concat([stringField(1, version), ...enc.map((e) => e.field), stringField(4, type), stringField(5, nonce)]);
    c.call.write(body as unknown as DiscoveryResponse);
  }
}

// Protobuf wire format, just enough for DiscoveryResponse: version_info = 1, resources = 2
// (google.protobuf.Any: type_url = 1, value = 2), type_url = 4, nonce = 5. Fields may come in any
// order and repeated fields need not be contiguous, so concatenating fields is a valid message.
function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

function lenField(field: number, bytes: Uint8Array): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(bytes.length), bytes]);
}

function stringField(field: number, s: string): Buffer {
  return lenField(field, Buffer.from(s, 'utf8'));
}

function anyField(typeUrl: string, value: Uint8Array): Buffer {
  return lenField(2, Buffer.concat([stringField(1, typeUrl), lenField(2, value)]));
}

/** The stream's serializer: pre-assembled bytes pass through; anything else is encoded. */
function serializeResponse(res: DiscoveryResponse | Buffer): Buffer {
  return Buffer.isBuffer(res) ? res : encodeResponse(res);
}

function byType(res: XdsResources, type: Exclude<ResourceType, typeof TYPE.secret>, wildcard: boolean): Record<string, object> {
  switch (type) {
    case TYPE.listener:
      return wildcard ? res.listeners : { ...res.apiListeners, ...res.listeners };
    case TYPE.route:
      return res.routes;
    case TYPE.cluster:
      return res.clusters;
    case TYPE.endpoint:
      return res.endpoints;
  }
}

/** A workload's fields that a node on a later request may not change, with the metadata key each comes from. */
const IDENTITY_FIELDS: [keyof Workload, string][] = [
  ['name', META.workload],
  ['namespace', META.namespace],
  ['labels', META.labels],
  ['service', META.service],
  ['servicePort', META.servicePort],
  ['address', META.address],
  ['inboundPort', META.inboundPort],
  ['appPort', META.appPort],
  ['outboundPort', META.outboundPort],
  ['adminPort', META.adminPort],
];

/** A field's value as a string to compare, with map keys in order. */
function canonical(v: unknown): string {
  return JSON.stringify(v && typeof v === 'object' ? Object.entries(v).sort(([a], [b]) => a.localeCompare(b)) : v) ?? 'undefined';
}

/** Every subscription has ACKed the last version sent to it, none is NACKed, and none has a response due. */
function allAcked(c: Connection): boolean {
  for (const s of c.subs.values()) if (s.nack || s.due || (s.sentVersion !== undefined && s.acked !== s.sentVersion)) return false;
  return true;
}

function sameNames(a: Set<string> | null, b: Set<string> | null): boolean {
  if (a === null || b === null) return a === b;
  return a.size === b.size && [...a].every((n) => b.has(n));
}

function bind(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync(address, credentials, (err, port) => (err ? reject(err) : resolve(port))));
}
