// The mesh's certificate authority, in the control plane: a root generated on first start and
// kept in the store (its private key sealed with a key-encryption key that is not in the store),
// or the user's own CA plugged in from a cacerts directory (plugged.ts); and short-lived workload
// certificates issued from the sidecars' certificate requests. A generated root can be rotated
// (rotateRoot, useNewRoot, dropOldRoots: docs/ca.md) while the trust bundle holds old and new.
//
//   - Workload certificates carry one URI SAN, the SPIFFE identity
//     spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>, which the caller proved (a join
//     token, a Kubernetes token): whatever names the request itself asks for are ignored. The
//     trust domain is the mesh config's (meshConfig.trustDomain, setTrustDomain): a change applies
//     to the certificates issued from then on, as sidecars renew theirs at half their life.
//   - Keys are ECDSA P-256, made by the sidecar; a request for any other key is refused. Private
//     keys never reach the control plane.
//   - 24 h by default, never past the CA certificate that signs them; the root 10 years, an
//     intermediate 1 year.
// X.509 and PKCS #10 through @peculiar/x509 on Node's WebCrypto.
import { createHash } from 'node:crypto';
import type { ConfigStore } from '../store/store.ts';
import { x509 } from './x509.ts';
import { loadPluggedCa } from './plugged.ts';
import { BACKDATE_MS, INTERMEDIATE_RENEW_BEFORE_MS, type OpenCa, P256, type RootRecord, SIGNING, newIntermediate, newRoot, openKept, pemOf, serial } from './own.ts';
import { DEFAULT_TRUST_DOMAIN, spiffeUri } from '../../util/spiffe.ts';

export { DEFAULT_TRUST_DOMAIN };
export const DEFAULT_WORKLOAD_TTL_MS = 24 * 3600_000;
/** A PEM certificate request larger than this is no P-256 request: refused before parsing. */
const MAX_CSR_BYTES = 16 * 1024;
/** The secret the roots live in (store.getSecret): a CaRecord. */
const ROOT_SECRET = 'ca/root';

/** A refusal to issue, in words a sidecar's log can show. */
export class CaError extends Error {
  override name = 'CaError';
}

export interface WorkloadIdentity {
  namespace: string;
  serviceAccount: string;
  /** The workload's name, written as the subject's CN (src/util/spiffe.ts reads it back). */
  workload?: string;
}

/** Kubernetes names: what may stand in a SPIFFE path segment here (and in a join token's identity). */
export const KUBERNETES_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export function spiffeId(trustDomain: string, id: WorkloadIdentity): string {
  return spiffeUri(trustDomain, id.namespace, id.serviceAccount);
}

export interface CaOptions {
  store: Pick<ConfigStore, 'getSecret' | 'putSecretIfAbsent' | 'putSecret'>;
  /** 32 bytes that seal the roots' private keys in the store. */
  kek: Buffer;
  trustDomain?: string;
  workloadTtlMs?: number;
  /** A directory in Istio's cacerts layout (plugged.ts): sign with the user's CA instead of one made here. */
  caDir?: string;
  /**
   * Sign with an intermediate CA under the generated root (made now if the store's root has none).
   * Kept in the store: a later start without it goes on signing with the intermediate.
   */
  intermediate?: boolean;
  /** Where the CA says what it did by itself (an intermediate made or renewed). */
  log?: (msg: string) => void;
  /** The clock, for tests. */
  now?: () => number;
}

export interface Issued {
  /** The workload certificate, PEM. */
  certificate: string;
  /** The certificates between it and the root (an intermediate's, a plugged-in CA's), PEM, in order: TLS presents them after it. */
  chain: string[];
  /** The roots a peer's certificate must chain to, PEM. */
  trustBundle: string;
  notAfter: Date;
  spiffeId: string;
}

/** Where a root rotation stands (docs/ca.md): 'none' (one root), the new root in the bundle but the old one signing, or the new one signing while the old stays trusted. */
export type RotationPhase = 'none' | 'distributing' | 'signing-with-new-root';

export interface CertSummary {
  subject: string;
  sha256: string;
  notBefore: string;
  notAfter: string;
}

/** A generated root's intermediate CA, and when it is replaced by a new one under the same root (none: its root ends first). */
export type IntermediateSummary = CertSummary & { renewsAfter?: string };

/** What `weft ca status` shows: public facts only, never a key. */
export interface CaStatus {
  mode: 'generated' | 'plugged-in';
  caDir?: string;
  trustDomain: string;
  /** The certificate workload certificates are signed with now. */
  signing: CertSummary;
  /** A generated CA: workload certificates are signed by an intermediate under each root (--ca-intermediate), not by the root. */
  withIntermediate: boolean;
  /** The trust bundle, oldest first; with withIntermediate, each generated root's intermediate. */
  roots: (CertSummary & { signing: boolean; intermediate?: IntermediateSummary })[];
  rotation: { phase: RotationPhase; oldRootsNeededUntil?: string };
}

/**
 * The store's record: the roots, oldest first (own.ts), which of them signs, and whether each
 * signs through an intermediate. (One RootRecord alone: a store from before rotation.)
 */
interface CaRecord {
  roots: RootRecord[];
  signing: number;
  intermediate?: true;
}

/** A certificate that signs, its key and what it is presented with. */
interface Signer {
  cert: x509.X509Certificate;
  key: CryptoKey;
  algorithm: EcdsaParams | RsaHashedImportParams;
  chain: string[];
  /** No certificate it signs may outlive this (its own or its chain's end). */
  until: number;
}

/** A generated root, opened, with its record in the store. */
interface OwnRoot {
  root: OpenCa;
  record: RootRecord;
  /** Its intermediate, if it has one. */
  intermediate?: OpenCa;
  /** What signs under it: its intermediate, else the root itself. */
  signer: Signer;
  /** leavesUntil as stored when the CA opened (bounds the leaves earlier control planes signed). */
  leavesUntilAtOpen: number;
  /** The latest notAfter this process signed under it. */
  issuedUntil: number;
  /** Its intermediate's renewal, while one runs. */
  renewing?: Promise<void>;
}

/** How much a stored bound on leaves' lives runs ahead, so that it is not rewritten at every signature. */
const LEAVES_BOUND_STEP_MS = 10 * 60_000;

export class CertificateAuthority {
  private td: string;
  private aliases: readonly string[] = [];
  readonly mode: 'generated' | 'plugged-in';
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly opts: CaOptions;
  /** A plugged-in CA: its signer and its roots (PEM). */
  private readonly plugged: { signer: Signer; roots: string[] } | undefined;
  /** A generated CA: its record in the store and its roots, oldest first. */
  private record: CaRecord | undefined;
  private own: OwnRoot[] = [];
  private signingIndex = 0;
  private readonly listeners: ((change: 'roots' | 'signer') => Promise<void> | void)[] = [];

  private constructor(opts: CaOptions, plugged: CertificateAuthority['plugged']) {
    this.opts = opts;
    this.td = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    this.ttlMs = opts.workloadTtlMs ?? DEFAULT_WORKLOAD_TTL_MS;
    this.now = opts.now ?? Date.now;
    this.plugged = plugged;
    this.mode = plugged ? 'plugged-in' : 'generated';
  }

  /**
   * The CA: the user's, from a cacerts directory (checked first: a CaCertsError says what is
   * wrong with which file); else the store's roots, or a new root, stored for every later start.
   */
  static async open(opts: CaOptions): Promise<CertificateAuthority> {
    if (opts.kek.length !== 32) throw new CaError(`the CA's key-encryption key must be 32 bytes, not ${opts.kek.length}`);
    const now = opts.now ?? Date.now;
    if (opts.caDir !== undefined && opts.intermediate) throw new CaError(`--ca-intermediate puts an intermediate under Weft's own root; the CA plugged in from ${opts.caDir} signs with its own ca-cert.pem (give one or the other)`);
    if (opts.caDir !== undefined) {
      const p = await loadPluggedCa(opts.caDir, now());
      const until = Math.min(p.cert.notAfter.getTime(), ...[...p.intermediates, ...p.roots].map((c) => new x509.X509Certificate(c).notAfter.getTime()));
      // Leaves are presented with the CA certificate and what lies between it and the root.
      const chain = [pemOf(p.cert), ...p.intermediates];
      return new CertificateAuthority(opts, { signer: { cert: p.cert, key: p.key, algorithm: p.signingAlgorithm as EcdsaParams, chain, until }, roots: p.roots });
    }
    const ca = new CertificateAuthority(opts, undefined);
    let stored = opts.store.getSecret(ROOT_SECRET);
    if (stored === undefined) {
      // Another control plane on the same store may make one at the same time: the first stored wins.
      const record: CaRecord = { roots: [await newRoot(ca.trustDomain, opts.kek, now())], signing: 0 };
      stored = opts.store.putSecretIfAbsent(ROOT_SECRET, JSON.stringify(record));
    }
    const parsed = JSON.parse(stored) as CaRecord | RootRecord;
    ca.record = 'roots' in parsed ? parsed : { roots: [parsed], signing: 0 };
    ca.own = await Promise.all(ca.record.roots.map((r) => openRoot(r, opts.kek, now())));
    ca.signingIndex = ca.record.signing;
    if (opts.intermediate && !ca.record.intermediate) {
      // Under the roots there are: nothing a sidecar trusts changes, and what the roots signed stays valid.
      ca.record.intermediate = true;
      for (const r of ca.own) await ca.renewIntermediate(r, true);
      ca.persist();
      ca.log(`CA: workload certificates are signed from now on by an intermediate CA under the root: ${ca.status().signing.subject}, until ${ca.status().signing.notAfter} (--ca-intermediate; kept in the store)`);
    } else if (ca.record.intermediate && !opts.intermediate) {
      ca.log(`CA: workload certificates are signed by the intermediate CA ${ca.status().signing.subject} kept in the store (made with --ca-intermediate, which a start without it does not undo; docs/ca.md)`);
    }
    return ca;
  }

  /** Called after the roots or the signing root changed (a rotation's steps), awaited by them. */
  onChange(fn: (change: 'roots' | 'signer') => Promise<void> | void): void {
    this.listeners.push(fn);
  }

  /** The trust domain of the certificates it issues (spiffe://<this>/ns/.../sa/...). */
  get trustDomain(): string {
    return this.td;
  }

  /**
   * The trust domains whose certificates prove a workload to the control plane (a renewal, an xDS
   * stream): the mesh's own, then its aliases (meshConfig.trustDomainAliases), so that sidecars still
   * holding a certificate of an earlier trust domain renew it into the new one.
   */
  trustDomains(): readonly string[] {
    return [this.td, ...this.aliases.filter((a) => a !== this.td)];
  }

  /** The mesh config's trustDomain and trustDomainAliases: certificates issued from now on are in `trustDomain`. */
  setTrustDomain(trustDomain: string, aliases: readonly string[] = []): void {
    this.td = trustDomain;
    this.aliases = [...aliases];
  }

  /** The roots, PEM: what every sidecar trusts. */
  trustBundle(): string {
    return this.plugged ? this.plugged.roots.join('') : this.own.map((r) => pemOf(r.root.cert)).join('');
  }

  status(): CaStatus {
    const signer = this.signer(false);
    const phase: RotationPhase = this.own.length < 2 ? 'none' : this.signingIndex < this.own.length - 1 ? 'distributing' : 'signing-with-new-root';
    const roots = this.plugged
      ? this.plugged.roots.map((pem) => ({ ...summary(new x509.X509Certificate(pem)), signing: false }))
      : this.own.map((r, i) => ({ ...summary(r.root.cert), signing: i === this.signingIndex, ...(r.intermediate ? { intermediate: intermediateSummary(r) } : {}) }));
    const until = phase === 'signing-with-new-root' ? this.oldRootsNeededUntil() : undefined;
    return {
      mode: this.mode,
      ...(this.opts.caDir !== undefined ? { caDir: this.opts.caDir } : {}),
      trustDomain: this.trustDomain,
      signing: summary(signer.cert),
      withIntermediate: this.record?.intermediate === true,
      roots,
      rotation: { phase, ...(until !== undefined ? { oldRootsNeededUntil: new Date(until).toISOString() } : {}) },
    };
  }

  /**
   * A certificate for `id`, for the key of a PKCS #10 request: its PEM, or the request readRequest
   * already read from it (so that it is not read and verified twice). The request must be signed
   * by its key, an ECDSA P-256 one; the names it asks for are ignored. `serving`: the control
   * plane's own certificate, signed by the oldest root while a rotation runs (every sidecar
   * trusts that one, whichever roots it holds).
   */
  async sign(request: string | x509.Pkcs10CertificateRequest, id: WorkloadIdentity, ttlMs: number = this.ttlMs, serving = false): Promise<Issued> {
    if (!KUBERNETES_NAME.test(id.namespace) || !KUBERNETES_NAME.test(id.serviceAccount) || (id.workload !== undefined && !KUBERNETES_NAME.test(id.workload))) {
      throw new CaError(`no certificate for namespace "${id.namespace}", service account "${id.serviceAccount}"${id.workload === undefined ? '' : `, workload "${id.workload}"`}: not Kubernetes names`);
    }
    const signer = await this.freshSigner(serving);
    const now = this.now();
    if (now >= signer.until) throw new CaError(`the CA certificate ${signer.cert.subject} (or its chain) expired at ${new Date(signer.until).toISOString()}: no certificate can be issued under it`);
    const csr = typeof request === 'string' ? await readRequest(request) : request;
    const uri = spiffeId(this.trustDomain, id);
    const notAfter = new Date(Math.min(now + ttlMs, signer.until));
    const publicKey = await csr.publicKey.export(P256, ['verify']);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: id.workload ? `CN=${id.workload}` : '',
      issuer: signer.cert.subject,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter,
      publicKey,
      signingKey: signer.key,
      signingAlgorithm: signer.algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        // Critical, as in Istio's certificates, whose subject is empty (RFC 5280 4.2.1.6).
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }], true),
        await x509.AuthorityKeyIdentifierExtension.create(signer.cert.publicKey),
      ],
    });
    if (!serving && !this.plugged) this.noteIssued(this.signingIndex, notAfter.getTime());
    return { certificate: pemOf(cert), chain: signer.chain, trustBundle: this.trustBundle(), notAfter, spiffeId: uri };
  }

  /**
   * Step 1 of a root rotation (docs/ca.md): a new root, added to the trust bundle; the old one
   * keeps signing until every sidecar holds the bundle (the control plane then calls useNewRoot).
   */
  async rotateRoot(): Promise<CaStatus> {
    if (this.plugged) throw new CaError(`the CA is plugged in from ${this.opts.caDir}: its root is the user's, rotated by changing that directory's files (docs/ca.md), not by Weft`);
    if (this.own.length > 1) throw new CaError(`a root rotation is under way (${this.status().rotation.phase}): finish it first (weft ca finish-rotation)`);
    const record = await newRoot(this.trustDomain, this.opts.kek, this.now());
    const fresh = await openRoot(record, this.opts.kek, this.now());
    // With intermediates, the new root's own: it signs when the root does (useNewRoot).
    if (this.record!.intermediate) await this.renewIntermediate(fresh, true);
    this.own.push(fresh);
    this.record!.roots.push(record);
    this.persist();
    await this.emit('roots');
    return this.status();
  }

  /** Step 2: the newest root signs from now on. False if it already does. */
  async useNewRoot(): Promise<boolean> {
    if (this.plugged || this.signingIndex === this.own.length - 1) return false;
    this.signingIndex = this.record!.signing = this.own.length - 1;
    this.persist();
    await this.emit('signer');
    return true;
  }

  /**
   * Step 3: the old roots leave the trust bundle, once no certificate they signed can still be
   * valid (or now, with `force`: sidecars still holding one then fail their handshakes).
   */
  async dropOldRoots(force = false): Promise<CaStatus> {
    if (this.plugged || this.own.length < 2) throw new CaError('no root rotation is under way: the trust bundle holds one root (weft ca rotate-root starts one)');
    if (this.signingIndex !== this.own.length - 1) {
      if (!force) throw new CaError('the new root does not sign yet: some connected sidecars do not hold the new trust bundle (weft ca status lists them); finishing now would break their connections, unless --force');
      await this.useNewRoot();
    }
    const until = this.oldRootsNeededUntil();
    if (!force && this.now() < until) {
      throw new CaError(`certificates signed by the old root may be in use until ${new Date(until).toISOString()}: the old root can leave the trust bundle then (or now with --force, failing the handshakes of sidecars that still hold one)`);
    }
    this.own = this.own.slice(this.signingIndex);
    this.record = { ...this.record!, roots: this.record!.roots.slice(this.signingIndex), signing: 0 };
    this.signingIndex = 0;
    this.persist();
    await this.emit('roots');
    return this.status();
  }

  private signer(serving: boolean): Signer {
    if (this.plugged) return this.plugged.signer;
    return this.own[serving ? 0 : this.signingIndex].signer;
  }

  /** What signs now, an intermediate due for renewal renewed first. */
  private async freshSigner(serving: boolean): Promise<Signer> {
    if (!this.plugged) await this.renewDue(this.own[serving ? 0 : this.signingIndex]);
    return this.signer(serving);
  }

  /** An intermediate in its last INTERMEDIATE_RENEW_BEFORE_MS is replaced by a new one, if its root outlives it (one renewal at a time per root). */
  private async renewDue(r: OwnRoot): Promise<void> {
    if (!r.intermediate) return;
    const end = r.intermediate.cert.notAfter.getTime();
    if (this.now() < end - INTERMEDIATE_RENEW_BEFORE_MS || r.root.cert.notAfter.getTime() <= end) return;
    r.renewing ??= this.renewIntermediate(r, false).finally(() => (r.renewing = undefined));
    await r.renewing;
  }

  /**
   * A new intermediate under r's root, then signing. The first one (at open, at a rotation) is
   * kept in the store by the caller, and a failure is the caller's. A renewal is kept here; one
   * that fails is logged, and the current intermediate signs on (no certificate outlives it) until
   * one succeeds.
   */
  private async renewIntermediate(r: OwnRoot, first: boolean): Promise<void> {
    const before = r.record.intermediate;
    try {
      const kept = await newIntermediate(r.root, this.trustDomain, this.opts.kek, this.now());
      const opened = await openKept(kept, this.opts.kek, 'intermediate', r.root.cert);
      r.record.intermediate = kept;
      if (!first) this.persist();
      r.intermediate = opened;
      r.signer = intermediateSigner(r.root, opened);
      if (!first) this.log(`CA: intermediate CA renewed under the same root: ${opened.cert.subject} (sha256 ${summary(opened.cert).sha256.slice(0, 16)}…), until ${opened.cert.notAfter.toISOString()}; certificates of the previous one stay valid`);
    } catch (e) {
      r.record.intermediate = before;
      if (first) throw e;
      this.log(`CA: the intermediate CA could not be renewed (tried again at the next signature; the current one signs until ${r.intermediate!.cert.notAfter.toISOString()}): ${(e as Error).message}`);
    }
  }

  private log(msg: string): void {
    this.opts.log?.(msg);
  }

  /** When the last certificate the roots older than the signing one signed expires. */
  private oldRootsNeededUntil(): number {
    return Math.max(0, ...this.own.slice(0, this.signingIndex).map((r) => Math.max(r.leavesUntilAtOpen, r.issuedUntil)));
  }

  /** A leaf signed under root i lives until notAfter: raise the stored bound if it passes it. */
  private noteIssued(i: number, notAfter: number): void {
    const r = this.own[i];
    r.issuedUntil = Math.max(r.issuedUntil, notAfter);
    const rec = this.record!.roots[i];
    if ((rec.leavesUntil ?? 0) >= notAfter) return;
    const before = rec.leavesUntil;
    rec.leavesUntil = notAfter + Math.min(LEAVES_BOUND_STEP_MS, Math.max(0, notAfter - this.now()));
    try {
      this.persist();
    } catch {
      // The store cannot be written now (closing): this process still knows (issuedUntil), and
      // the next signature tries again. A certificate is no less valid for it.
      rec.leavesUntil = before;
    }
  }

  private persist(): void {
    this.opts.store.putSecret(ROOT_SECRET, JSON.stringify(this.record));
  }

  private async emit(change: 'roots' | 'signer'): Promise<void> {
    for (const fn of this.listeners) await fn(change);
  }
}

/**
 * A PKCS #10 request a workload may have a certificate for: PEM, at most 16 KiB, an ECDSA P-256
 * key, signed by that key. Anything else is a CaError saying why. (Checked before a credential
 * is spent on it.)
 */
export async function readRequest(csrPem: string): Promise<x509.Pkcs10CertificateRequest> {
  if (typeof csrPem !== 'string' || csrPem.length > MAX_CSR_BYTES) throw new CaError(`the certificate request is not a PEM request of at most ${MAX_CSR_BYTES} bytes`);
  let csr: x509.Pkcs10CertificateRequest;
  let alg: EcKeyAlgorithm;
  try {
    // DER, decoded here with one linear check: the library's own PEM parser backtracks
    // exponentially on crafted header lines (a few hundred bytes would block the control plane).
    csr = new x509.Pkcs10CertificateRequest(derOf(csrPem));
    alg = csr.publicKey.algorithm as EcKeyAlgorithm;
  } catch (e) {
    throw new CaError(`the certificate request cannot be read: ${e instanceof CaError ? e.message : (e as Error).message}`);
  }
  if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') throw new CaError(`the certificate request's key is ${alg.name}${alg.namedCurve ? ` ${alg.namedCurve}` : ''}; workload keys are ECDSA P-256`);
  let signed = false;
  try {
    signed = await csr.verify();
  } catch {
    signed = false;
  }
  if (!signed) throw new CaError('the certificate request is not signed by its own key');
  return csr;
}

/** A stored root opened, with its intermediate if it has one (own.ts checks each key against its certificate). */
async function openRoot(record: RootRecord, kek: Buffer, now: number): Promise<OwnRoot> {
  const root = await openKept(record, kek, 'root');
  const intermediate = record.intermediate && (await openKept(record.intermediate, kek, 'intermediate', root.cert));
  const signer: Signer = intermediate ? intermediateSigner(root, intermediate) : { ...root, algorithm: SIGNING, chain: [], until: root.cert.notAfter.getTime() };
  // A store from before leaves were counted: what earlier control planes signed lives at most a default life from now.
  const leavesUntilAtOpen = record.leavesUntil ?? now + DEFAULT_WORKLOAD_TTL_MS;
  return { root, record, ...(intermediate ? { intermediate } : {}), signer, leavesUntilAtOpen, issuedUntil: 0 };
}

/** An intermediate signs; its certificates are presented with it, and outlive neither it nor its root. */
function intermediateSigner(root: OpenCa, intermediate: OpenCa): Signer {
  const until = Math.min(intermediate.cert.notAfter.getTime(), root.cert.notAfter.getTime());
  return { ...intermediate, algorithm: SIGNING, chain: [pemOf(intermediate.cert)], until };
}

function summary(c: x509.X509Certificate): CertSummary {
  return { subject: c.subject, sha256: createHash('sha256').update(Buffer.from(c.rawData)).digest('hex'), notBefore: c.notBefore.toISOString(), notAfter: c.notAfter.toISOString() };
}

function intermediateSummary(r: OwnRoot): IntermediateSummary {
  const c = r.intermediate!.cert;
  const renews = c.notAfter.getTime() - INTERMEDIATE_RENEW_BEFORE_MS;
  return { ...summary(c), ...(r.root.cert.notAfter.getTime() > c.notAfter.getTime() ? { renewsAfter: new Date(renews).toISOString() } : {}) };
}

const PEM_CSR = /^-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END (?:NEW )?CERTIFICATE REQUEST-----\s*$/;

/** A PEM certificate request's DER: one block, base64 only (no headers), a DER SEQUENCE. */
function derOf(pem: string): ArrayBuffer {
  const m = PEM_CSR.exec(pem);
  if (!m) throw new CaError('not one PEM CERTIFICATE REQUEST block');
  const der = Buffer.from(m[1].replace(/[\r\n]/g, ''), 'base64');
  if (der.length < 2 || der[0] !== 0x30) throw new CaError('its content is no DER sequence');
  return der.buffer.slice(der.byteOffset, der.byteOffset + der.length) as ArrayBuffer;
}
