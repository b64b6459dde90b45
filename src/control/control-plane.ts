// The control plane, assembled: store -> snapshot -> translate -> ADS, plus registry and admin API.
import fs from 'node:fs';
import type https from 'node:https';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { AdsServer, type AdsServerOptions } from './ads/server.ts';
import { createAdminServer } from './admin/server.ts';
import { Collector } from './signals/collector.ts';
import { loadOrCreateAdminToken } from './admin/token.ts';
import { JoinTokens } from './ca/join.ts';
import { CertificateAuthority } from './ca/ca.ts';
import { loadOrCreateKek } from './ca/kek.ts';
import { CERTIFICATE_SERVICE, callerIdentity, certificateHandlers } from './ca/service.ts';
import { controlPlaneTls } from './ca/tls.ts';
import { RootsSecret, followRotation } from './ca/rotation.ts';
import { DEFAULT_TRUST_DOMAIN, type MeshSnapshot, type Workload } from './model/model.ts';
import { Registry } from './registry/registry.ts';
import { SqliteStore } from './store/sqlite.ts';
import type { ConfigStore } from './store/store.ts';
import { WEFT_VERSION } from '../version.ts';
import { endpointName } from '../util/net.ts';
import { OidcDiscovery } from './oidc.ts';
import { MESH_CONFIGMAP, meshConfigOf } from '../api/index.ts';
import { TraceStore } from './traces/store.ts';
import { type TraceReceiver, startTraceReceiver } from './traces/receiver.ts';

export interface ControlPlaneOptions {
  dataDir: string;
  adminHost?: string;
  adminPort?: number;
  /** HTTPS for the admin API; by default, when adminHost is not a loopback address. */
  adminTls?: boolean;
  xdsHost?: string;
  xdsPort?: number;
  /**
   * A plain-text xDS port beside the TLS one, for proxyless gRPC clients (grpc-js-xds cannot
   * present a certificate); none unless given. What connects there is served as a client only.
   */
  insecureXdsPort?: number;
  heartbeatMs?: number;
  /** How often the sidecars' metrics are scraped for the golden signals (default 5 s; 0: never). docs/observability.md */
  scrapeIntervalMs?: number;
  /**
   * The built-in OTLP/HTTP trace receiver's port (POST /v1/traces), on xdsHost: where sidecars
   * send spans when tracing is on and no provider is configured (docs/observability.md). Any free
   * port when unset: sidecars learn it over xDS.
   */
  tracesPort?: number;
  /**
   * The address sidecars on other hosts reach this control plane at (an IP): where they send spans
   * to the built-in receiver. Default: xdsHost, or 127.0.0.1 where that is every address (0.0.0.0, ::).
   */
  advertiseAddress?: string;
  /**
   * A directory in Istio's cacerts layout (ca-cert.pem, ca-key.pem, cert-chain.pem,
   * root-cert.pem): the CA signs with that CA instead of a root of its own (docs/ca.md).
   */
  caDir?: string;
  /**
   * Weft's own CA signs through an intermediate under its root (docs/ca.md): made on this start if
   * the store's root has none, kept in the store (a later start without it keeps it).
   */
  caIntermediate?: boolean;
  log?: (msg: string) => void;
  /** Tests only: wraps translate() to adjust what proxies are sent. */
  generate?: AdsServerOptions['generate'];
}

export interface ControlPlane {
  adminUrl: string;
  /** What admin requests that change the mesh must carry (also in the data directory's admin.token). */
  adminToken: string;
  /** Join tokens for workloads: one buys a sidecar its first certificate. */
  joinTokens: JoinTokens;
  /** The mesh's certificate authority; its certificate API is served on the xDS port. */
  ca: CertificateAuthority;
  /** The xDS port (TLS; a sidecar proves itself with its certificate) and the certificate API. */
  xdsAddress: string;
  /** The plain-text xDS port, if one was asked for. */
  insecureXdsAddress?: string;
  /** The built-in trace receiver (host:port) and the traces it keeps. */
  tracesAddress: string;
  traces: TraceStore;
  /** The mesh's roots now, PEM (public), also written to the data directory as root-cert.pem. */
  readonly trustBundle: string;
  rootCertFile: string;
  store: ConfigStore;
  registry: Registry;
  ads: AdsServer;
  /** The golden signals, collected from the sidecars' metrics. */
  signals: Collector;
  close(): Promise<void>;
}

const REGISTRY_FILE = 'registry.json';
/** The mesh's roots, for sidecars on this machine to trust (Istio's name for it). */
export const ROOT_CERT_FILE = 'root-cert.pem';
const REGISTRY_SAVE_MS = 500;

/** The store's kinds a mesh snapshot holds, each under its MeshSnapshot field. */
const SNAPSHOT_KINDS = {
  virtualServices: 'VirtualService',
  destinationRules: 'DestinationRule',
  rateLimits: 'LocalRateLimit',
  serviceEntries: 'ServiceEntry',
  workloadEntries: 'WorkloadEntry',
  sidecars: 'Sidecar',
  httpRoutes: 'HTTPRoute',
  grpcRoutes: 'GRPCRoute',
  peerAuthentications: 'PeerAuthentication',
  authorizationPolicies: 'AuthorizationPolicy',
  requestAuthentications: 'RequestAuthentication',
  telemetries: 'Telemetry',
} as const;
type StoredConfig = Pick<MeshSnapshot, keyof typeof SNAPSHOT_KINDS | 'meshConfig'>;

const MESH_CONFIG_KEY = { kind: 'ConfigMap', namespace: MESH_CONFIGMAP.namespace, name: MESH_CONFIGMAP.name };

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const log = opts.log ?? (() => {});
  const heartbeatMs = opts.heartbeatMs ?? 10_000;
  fs.mkdirSync(opts.dataDir, { recursive: true });
  const store = new SqliteStore(path.join(opts.dataDir, 'weft.db'));

  // The store's revision, kept here from its watch events (below): asking SQLite on every push to
  // every proxy showed up in the scale profile.
  let revision = store.revision();
  // Istio's mesh config; none (Istio's defaults) without its ConfigMap.
  const readMeshConfig = () => {
    const cm = store.get(MESH_CONFIG_KEY);
    return cm ? meshConfigOf(cm.spec) : undefined;
  };
  let cached: { revision: number; config: StoredConfig } | undefined;
  const config = () => {
    if (!cached || cached.revision !== revision) {
      const lists = Object.entries(SNAPSHOT_KINDS).map(([field, kind]) => [field, store.list(kind)]);
      cached = { revision, config: { ...(Object.fromEntries(lists) as unknown as StoredConfig), meshConfig: readMeshConfig() } };
    }
    return cached;
  };
  let ads: AdsServer | undefined;
  let closing = false;
  const registryFile = path.join(opts.dataDir, REGISTRY_FILE);
  // The registry file is rewritten at most every REGISTRY_SAVE_MS, not on every change: when a
  // thousand sidecars connect at once, writing it per registration was quadratic work.
  let saveTimer: NodeJS.Timeout | undefined;
  const registry = new Registry({
    onChange: () => {
      ads?.requestPush();
      // While closing, streams end one by one; the file keeps the list as it was, so that a
      // restarted control plane knows which endpoints to keep serving while sidecars reconnect.
      if (closing || saveTimer) return;
      saveTimer = setTimeout(() => {
        saveTimer = undefined;
        if (!closing) saveRegistry(registryFile, registry.connected());
      }, REGISTRY_SAVE_MS);
      saveTimer.unref();
    },
  });
  // One snapshot object per (config revision, registry version): the ADS server caches what it
  // computes from a snapshot by its identity.
  let snap: { key: string; mesh: MeshSnapshot } | undefined;
  let receiver: TraceReceiver | undefined;
  const snapshot = (): MeshSnapshot => {
    const c = config();
    const key = `${c.revision}/${registry.version()}/${oidc.version}`;
    if (snap?.key !== key) {
      // The mesh config's trust domain (the CA's): the SANs clients expect of mesh endpoints (translate/mtls.ts).
      // The key sets of issuers named without jwks or jwksUri, as far as OpenID discovery found them.
      const discoveredJwksUris = oidc.resolve(issuersToDiscover(c.config.requestAuthentications));
      snap = { key, mesh: { revision: c.revision, ...c.config, workloads: registry.list(), trustDomain: c.config.meshConfig?.trustDomain ?? DEFAULT_TRUST_DOMAIN, discoveredJwksUris, ...(receiver ? { tracesReceiver: receiverAddress(receiver, opts.advertiseAddress) } : {}) } };
    }
    return snap.mesh;
  };
  const oidc = new OidcDiscovery({ onChange: () => ads?.requestPush(), log });
  // The CA first: the xDS port serves its certificate, and proxies prove themselves with theirs.
  const joinTokens = new JoinTokens(store);
  let ca: CertificateAuthority;
  try {
    ca = await CertificateAuthority.open({ store, kek: loadOrCreateKek(opts.dataDir), ...(opts.caDir !== undefined ? { caDir: opts.caDir } : {}), ...(opts.caIntermediate ? { intermediate: true } : {}), log });
  } catch (e) {
    store.close();
    throw e;
  }
  if (opts.caDir !== undefined) log(`CA plugged in from ${opts.caDir}: workload certificates are signed by ${ca.status().signing.subject}`);
  const rootCertFile = path.join(opts.dataDir, ROOT_CERT_FILE);
  writeWhole(rootCertFile, ca.trustBundle()); // public: readable by all
  // The mesh config's trust domain and aliases, for the CA: certificates issued from now on, and
  // whose certificates prove a workload (below, and on renewal). Set again on every change.
  const useTrustDomain = () => {
    const mc = readMeshConfig() ?? {};
    const [td, aliases] = [mc.trustDomain ?? DEFAULT_TRUST_DOMAIN, mc.trustDomainAliases ?? []];
    if (td !== ca.trustDomain) log(`trust domain ${td}${aliases.length ? ` (aliases ${aliases.join(', ')})` : ''}: certificates issued from now on are in it; sidecars renew theirs at half their life`);
    ca.setTrustDomain(td, aliases);
  };
  useTrustDomain();
  // The roots, pushed to every sidecar over SDS (ROOTCA): one object per bundle, encoded once.
  const roots = new RootsSecret(ca);
  ads = new AdsServer({ registry, snapshot, heartbeatMs, log, generate: opts.generate, identify: (call) => callerIdentity(call, ca.trustDomains()), secrets: () => roots.secrets() });
  // Endpoints known before a restart serve for two heartbeats, long enough for their sidecars to return.
  registry.restore(loadRegistry(registryFile), 2 * heartbeatMs + 1000);
  const unwatch = store.watch((e) => {
    revision = e.revision;
    useTrustDomain();
    ads!.requestPush();
  });

  // The certificate API beside xDS: a workload's join token buys its first certificate.
  ads.addService(CERTIFICATE_SERVICE, certificateHandlers(ca, joinTokens, log));
  const tls = await controlPlaneTls(ca, log);
  const rotation = followRotation({ ca, ads, tls, log, onRoots: () => writeWhole(rootCertFile, ca.trustBundle()) });
  const xdsHost = opts.xdsHost ?? '127.0.0.1';
  // The trace receiver before xDS serves: every snapshot names it.
  const traces = new TraceStore();
  receiver = await startTraceReceiver(traces, xdsHost, opts.tracesPort ?? 0, log);
  if (opts.advertiseAddress && !isWildcard(xdsHost) && opts.advertiseAddress !== xdsHost) log(`the trace receiver listens on ${xdsHost} only, and is advertised to sidecars as ${opts.advertiseAddress}: spans reach it only if that address leads to ${xdsHost} (listen on it, or on every address, with --host)`);
  if (isWildcard(xdsHost) && !opts.advertiseAddress) log(`the trace receiver listens on every address but is advertised to sidecars as 127.0.0.1:${receiver.port}: sidecars on other hosts cannot send it spans; give the address they reach this host at (--advertise-address)`);
  const xdsPort = await ads.listen(endpointName(xdsHost, opts.xdsPort ?? 15012), tls.credentials);
  const insecurePort = opts.insecureXdsPort === undefined ? undefined : await ads.listenInsecure(endpointName(xdsHost, opts.insecureXdsPort));
  const adminToken = loadOrCreateAdminToken(opts.dataDir);
  // Off loopback the admin API speaks TLS, with the control plane's certificate: the admin token
  // and the mesh's config never cross a network in plain text.
  const adminTls = opts.adminTls ?? !isLoopback(opts.adminHost ?? '127.0.0.1');
  const signals = new Collector({ proxies: () => ads!.proxies(), intervalMs: opts.scrapeIntervalMs ?? 5000, log });
  signals.start();
  const admin = createAdminServer({ store, registry, ads, version: WEFT_VERSION, token: adminToken, joinTokens, ca, snapshot: () => snapshot(), signals, traces }, adminTls ? tls.context() : undefined);
  if (adminTls) tls.onRenewed((c) => (admin as https.Server).setSecureContext(c));
  await new Promise<void>((resolve, reject) => {
    admin.once('error', reject);
    admin.listen(opts.adminPort ?? 15080, opts.adminHost ?? '127.0.0.1', () => resolve());
  });
  const adminAddr = admin.address() as AddressInfo;
  return {
    adminUrl: `${adminTls ? 'https' : 'http'}://${endpointName(adminAddr.address, adminAddr.port)}`,
    adminToken,
    joinTokens,
    ca,
    xdsAddress: endpointName(xdsHost, xdsPort),
    tracesAddress: endpointName(receiverAddress(receiver, opts.advertiseAddress).address, receiver.port),
    traces,
    ...(insecurePort === undefined ? {} : { insecureXdsAddress: endpointName(xdsHost, insecurePort) }),
    get trustBundle() {
      return ca.trustBundle();
    },
    rootCertFile,
    store,
    registry,
    ads,
    signals,
    async close() {
      closing = true;
      await signals.stop();
      if (saveTimer) clearTimeout(saveTimer);
      unwatch();
      rotation.stop();
      tls.stop();
      oidc.close();
      admin.closeAllConnections();
      await new Promise<void>((resolve) => admin.close(() => resolve()));
      await ads!.close();
      await receiver?.close();
      store.close();
    },
  };
}

/** Where sidecars reach the receiver: the advertised address, else its own, or loopback where it listens on every address. */
export function receiverAddress(r: { address: string; port: number }, advertise: string | undefined): { address: string; port: number } {
  if (advertise) return { address: advertise, port: r.port };
  return { address: isWildcard(r.address) ? '127.0.0.1' : r.address, port: r.port };
}

const isWildcard = (a: string) => a === '0.0.0.0' || a === '::';

/** The issuers of RequestAuthentication rules with neither jwks nor jwksUri: their keys are found by OpenID discovery. */
function issuersToDiscover(all: MeshSnapshot['requestAuthentications']): string[] {
  const out = new Set<string>();
  for (const ra of all ?? []) {
    for (const r of ra.spec.jwtRules ?? []) if (r.issuer && r.jwks === undefined && r.jwksUri === undefined && r.jwks_uri === undefined) out.add(r.issuer);
  }
  return [...out];
}

/** Written whole or not at all: a reader (a sidecar, a restarted control plane) never sees half of it. */
function writeWhole(file: string, content: string, mode = 0o644): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content, { mode });
  fs.renameSync(tmp, file);
}

function isLoopback(host: string): boolean {
  return /^(127\.|::1$|::ffff:127\.|localhost$)/.test(host);
}

function saveRegistry(file: string, workloads: Workload[]): void {
  writeWhole(file, JSON.stringify(workloads));
}

function loadRegistry(file: string): Workload[] {
  try {
    const list = JSON.parse(fs.readFileSync(file, 'utf8'));
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}
