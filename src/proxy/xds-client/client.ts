// The sidecar's ADS subscription. It opens one stream, subscribes to LDS and CDS (wildcard), then
// to the RDS and EDS names those resources mention, and hands every response to `apply`, which
// either accepts it (ACK) or returns a reason (NACK, and the last good config keeps serving).
// When the stream breaks it reconnects with exponential backoff and jitter, and keeps serving.
import { type BidiStream, type GrpcChannelOptions, type GrpcError, GrpcChannel, STATUS, STATUS_NAMES } from './grpc-stream.ts';
import {
  ADS_METHOD,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type Node,
  type ResourceType,
  SHORT_NAME,
  TYPE,
  decode,
  decodeResponse,
  encodeRequest,
} from '../../xds/protos.ts';

export interface XdsClientOptions {
  server: string; // host:port
  /** TLS to the server, read at each connection (the workload certificate is renewed in between). */
  tls?: GrpcChannelOptions['tls'];
  node: Node; // replaced by setNode()
  /** Accept (return undefined) or reject (return the reason) one response's resources. */
  apply: (type: ResourceType, resources: Record<string, any>[], version: string) => Promise<string | undefined>;
  /** After an accepted update: the names the new config needs, so the client can subscribe. */
  wanted: () => { routes: string[]; endpoints: string[] };
  /** Secrets to ask for over SDS on the stream (the sidecar: ROOTCA, the mesh roots), first of all. */
  secrets?: string[];
  log?: (msg: string) => void;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

interface TypeState {
  names: string[];
  version: string; // last ACKed
  nonce: string; // last received
}

export interface XdsClientStatus {
  connected: boolean;
  server: string;
  reconnects: number;
  lastError?: string;
  types: Record<string, { version: string; lastNack?: string }>;
}

export class XdsClient {
  private readonly opts: XdsClientOptions;
  private readonly client: GrpcChannel;
  private call: BidiStream<DiscoveryRequest, DiscoveryResponse> | undefined;
  private readonly state = new Map<ResourceType, TypeState>();
  private readonly nacks = new Map<ResourceType, string>();
  private backoff: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private connected = false;
  private reconnects = 0;
  private lastError: string | undefined;
  private readonly log: (msg: string) => void;

  constructor(opts: XdsClientOptions) {
    this.opts = opts;
    this.log = opts.log ?? (() => {});
    this.backoff = opts.minBackoffMs ?? 200;
    this.client = new GrpcChannel(opts.server, { keepaliveTimeMs: 15_000, keepaliveTimeoutMs: 10_000, tls: opts.tls });
  }

  start(): void {
    this.connect();
  }

  status(): XdsClientStatus {
    const types: XdsClientStatus['types'] = {};
    for (const [t, s] of this.state) types[SHORT_NAME[t]] = { version: s.version, lastNack: this.nacks.get(t) };
    return { connected: this.connected, server: this.opts.server, reconnects: this.reconnects, lastError: this.lastError, types };
  }

  /**
   * The node changed (its app's health, say). The stream stays: a DiscoveryRequest may carry the
   * node on any request, so the last request of one type is sent again, unchanged (same names,
   * version and nonce, so the control plane takes it as the ACK it already has), with the new node.
   * If nothing this stream sent answers a response yet, the next ACK carries the node instead.
   */
  setNode(node: Node): void {
    this.opts.node = node;
    if (!this.call) return; // the next stream's first request carries it
    this.nodeChanged = true;
    // An ACK rather than a NACK (which would be recorded again), and never a request without a
    // nonce: the server would take that for a new subscription and answer it.
    const last = [...this.lastSent.values()].filter((r) => r.response_nonce);
    const again = last.find((r) => !r.error_detail) ?? last[0];
    if (again) this.send({ ...again });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.call?.cancel();
    this.client.close();
  }

  private connect(): void {
    if (this.stopped) return;
    const call = this.client.bidiStream<DiscoveryRequest, DiscoveryResponse>(ADS_METHOD, encodeRequest, decodeResponse);
    this.call = call;
    let gotData = false;
    call.on('data', (res: DiscoveryResponse) => {
      if (!gotData) {
        gotData = true;
        this.connected = true;
        this.backoff = this.opts.minBackoffMs ?? 200;
        this.log(`connected to control plane ${this.opts.server}`);
      }
      // One response at a time, in order: applying may bind sockets, which is asynchronous.
      this.queue = this.queue
        .then(() => (this.call === call ? this.onResponse(res) : undefined))
        .catch((e: Error) => this.log(`could not handle a ${res.type_url} response: ${e.stack ?? e}`));
    });
    // Logged once per distinct reason: retries that fail the same way say nothing new.
    const broken = (why: string) => {
      if (this.call !== call || this.stopped) return;
      this.call = undefined;
      if (why !== this.lastError || this.connected) {
        this.log(`${this.connected ? 'lost' : 'cannot get config from'} control plane ${this.opts.server}: ${why}; serving the last good config and retrying with backoff`);
      }
      this.connected = false;
      this.lastError = why;
      this.scheduleReconnect();
    };
    call.on('error', (e: GrpcError) => {
      // The control plane turned this stream down (a node id already connected, bad metadata):
      // say so with the code, since retrying alone will not fix a misconfiguration.
      const refused = e.code === STATUS.ALREADY_EXISTS || e.code === STATUS.INVALID_ARGUMENT;
      broken(refused ? `refused this sidecar's stream (${STATUS_NAMES[e.code]}): ${e.details}` : e.details || e.message);
    });
    call.on('end', () => broken('stream ended'));
    // Subscribe. The first request of a stream carries the node; on a reconnect, the versions we
    // hold. Nonces belong to the stream that sent them, so the old ones are forgotten.
    this.sentNode = false;
    this.nodeChanged = false;
    this.lastSent.clear();
    for (const s of this.state.values()) s.nonce = '';
    if (this.opts.secrets?.length) {
      const s = this.state.get(TYPE.secret) ?? { names: [...this.opts.secrets].sort(), version: '', nonce: '' };
      this.state.set(TYPE.secret, s);
      this.send({ type_url: TYPE.secret, resource_names: s.names, version_info: s.version });
    }
    for (const t of [TYPE.cluster, TYPE.listener] as ResourceType[]) {
      const s = this.state.get(t) ?? { names: [], version: '', nonce: '' };
      this.state.set(t, s);
      this.send({ type_url: t, resource_names: [], version_info: s.version });
    }
    for (const t of [TYPE.endpoint, TYPE.route] as ResourceType[]) {
      const s = this.state.get(t);
      if (s && s.names.length) this.send({ type_url: t, resource_names: s.names, version_info: s.version });
    }
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const max = this.opts.maxBackoffMs ?? 5000;
    const delay = Math.min(max, this.backoff) * (0.5 + Math.random() / 2);
    this.backoff = Math.min(max, this.backoff * 2);
    this.reconnects += 1;
    this.timer = setTimeout(() => this.connect(), delay);
  }

  private sentNode = false;
  /** setNode() was called and no request has carried the new node yet. */
  private nodeChanged = false;
  /** The last request of each type on this stream, without its node. */
  private readonly lastSent = new Map<string, DiscoveryRequest>();
  private send(req: DiscoveryRequest): void {
    if (!this.call) return;
    this.lastSent.set(req.type_url, { ...req });
    // As Envoy does with set_node_on_first_message_only, the node goes with the first request of
    // each stream, and again only when it changed.
    if (!this.sentNode || this.nodeChanged) req.node = this.opts.node;
    this.sentNode = true;
    this.nodeChanged = false;
    this.call.write(req);
  }

  private queue: Promise<void> = Promise.resolve();

  private async onResponse(res: DiscoveryResponse): Promise<void> {
    const type = res.type_url as ResourceType;
    let s = this.state.get(type);
    if (!s) {
      s = { names: [], version: '', nonce: '' };
      this.state.set(type, s);
    }
    s.nonce = res.nonce;
    let error: string | undefined;
    let resources: Record<string, any>[] = [];
    try {
      resources = res.resources.map((r) => {
        if (r.type_url !== type) throw new Error(`resource of type ${r.type_url} in a ${type} response`);
        return decode(type, r.value);
      });
    } catch (e) {
      error = `could not decode ${SHORT_NAME[type] ?? type} response: ${(e as Error).message}`;
    }
    if (!error) {
      try {
        error = await this.opts.apply(type, resources, res.version_info);
      } catch (e) {
        error = `${SHORT_NAME[type] ?? type}: ${(e as Error).message}`;
      }
    }
    if (error) {
      this.nacks.set(type, error);
      this.log(`NACK ${SHORT_NAME[type] ?? type} version ${res.version_info}: ${error}`);
      this.send({ type_url: type, resource_names: s.names, version_info: s.version, response_nonce: res.nonce, error_detail: { code: 3, message: error } });
      return;
    }
    this.nacks.delete(type);
    s.version = res.version_info;
    this.send({ type_url: type, resource_names: s.names, version_info: s.version, response_nonce: res.nonce });
    // New listeners or clusters may need routes or endpoints we have not asked for yet.
    const want = this.opts.wanted();
    this.resubscribe(TYPE.route, want.routes);
    this.resubscribe(TYPE.endpoint, want.endpoints);
  }

  private resubscribe(type: ResourceType, names: string[]): void {
    const sorted = [...new Set(names)].sort();
    let s = this.state.get(type);
    if (s && s.names.length === sorted.length && s.names.every((n, i) => n === sorted[i])) return;
    if (!s) {
      s = { names: [], version: '', nonce: '' };
      this.state.set(type, s);
    }
    s.names = sorted;
    this.send({ type_url: type, resource_names: sorted, version_info: s.version, response_nonce: s.nonce || undefined });
  }
}
