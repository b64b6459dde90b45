// TLS origination (a DestinationRule's SIMPLE or MUTUAL): the files an UpstreamTlsContext names
// (convert-tls.ts OriginationFiles) are read by the sidecar, as Istio's agent reads them for Envoy:
// when a cluster configuration arrives (loadClusterFiles), so a new push reads them again. A file
// that is missing or bad fails the whole update (a NACK naming the cluster and the file); the
// clusters already serving keep their contexts.
//
// The server is verified as Envoy does: its chain against the roots (the file's, or Node's default
// ones for 'system'; not at all for insecureSkipVerify), then match_subject_alt_names against
// every SAN of its certificate (a DNS SAN by DNS rules, "*.example.com" covering one label), no
// host name check besides. With auto_sni, an HTTP request's host is the SNI; with
// auto_san_validation, the certificate must name that host instead (requestTls).
import type { PeerCertificate, SecureContext } from 'node:tls';
import { createHash, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { OriginationFiles, TransportSocketMatch, UpstreamTls } from '../xds-client/convert-tls.ts';
import { ConvertError } from '../xds-client/convert-util.ts';

const tls = process.getBuiltinModule('node:tls');
const fs = process.getBuiltinModule('node:fs/promises');

interface Loaded {
  context: SecureContext;
  /** Of the files' contents: pools made with other contents are not shared. */
  digest: string;
}

/** A CA bundle of the whole web is about 200 KiB; a CRL can be larger. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

/** Per files object (shared by the UpstreamTls objects derived from one: requestTls). */
const loaded = new WeakMap<OriginationFiles, Loaded>();

/** The clusters whose TLS names files: reads those not read yet. Throws ConvertError (the NACK) naming the cluster and the file. */
export async function loadClusterFiles(clusters: Iterable<{ name: string; transportSocket?: UpstreamTls; transportSocketMatches?: readonly TransportSocketMatch[] }>): Promise<void> {
  for (const c of clusters) {
    const sockets: [string, UpstreamTls | undefined][] = [['transport_socket', c.transportSocket], ...(c.transportSocketMatches ?? []).map((m, i): [string, UpstreamTls | undefined] => [`transport_socket_matches[${i}]`, m.tls])];
    for (const [what, t] of sockets) {
      if (t?.files && !loaded.has(t.files)) loaded.set(t.files, await load(`cluster ${c.name}: ${what}`, t));
    }
  }
}

async function load(where: string, t: UpstreamTls): Promise<Loaded> {
  const f = t.files!;
  const read = async (what: string, path: string): Promise<string> => {
    let st;
    try {
      st = await fs.stat(path);
    } catch (e) {
      throw new ConvertError(`${where}: ${what} file ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    // A FIFO or a device would hold the update (and every later one) for as long as it gives nothing.
    if (!st.isFile()) throw new ConvertError(`${where}: ${what} file ${path} is not a regular file`);
    if (st.size > MAX_FILE_BYTES) throw new ConvertError(`${where}: ${what} file ${path} is ${st.size} bytes, more than the ${MAX_FILE_BYTES} a certificate file may be`);
    try {
      return await fs.readFile(path, 'utf8');
    } catch (e) {
      throw new ConvertError(`${where}: ${what} file ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  };
  const bad = (what: string, path: string, why: string) => new ConvertError(`${where}: ${what} file ${path}: ${why}`);
  const options: Parameters<typeof tls.createSecureContext>[0] = { minVersion: t.versions.min, maxVersion: t.versions.max };
  const parts: string[] = [];
  if (typeof f.roots === 'object') {
    const ca = await read('CA certificates', f.roots.caFile);
    const pems = ca.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    if (!pems.length) throw bad('CA certificates', f.roots.caFile, 'holds no PEM certificate');
    for (const pem of pems) {
      try {
        new X509Certificate(pem);
      } catch (e) {
        throw bad('CA certificates', f.roots.caFile, `a certificate cannot be parsed (${(e as Error).message})`);
      }
    }
    options.ca = ca;
    parts.push(ca);
  }
  if (f.cert) {
    options.cert = await read('client certificate', f.cert.certFile);
    options.key = await read('private key', f.cert.keyFile);
    parts.push(options.cert, options.key);
  }
  if (f.crlFile) {
    options.crl = await read('CRL', f.crlFile);
    parts.push(options.crl);
  }
  let context: SecureContext;
  try {
    context = tls.createSecureContext(options);
  } catch (e) {
    const file = f.crlFile && /CRL/i.test((e as Error).message) ? `CRL file ${f.crlFile}` : f.cert ? `client certificate ${f.cert.certFile} and private key ${f.cert.keyFile}` : 'files';
    throw new ConvertError(`${where}: ${file}: ${(e as Error).message}`);
  }
  return { context, digest: createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 16) };
}

/** The secure context of a loaded UpstreamTls (loadClusterFiles ran for its cluster). */
export function originationContext(t: UpstreamTls): SecureContext {
  const l = t.files && loaded.get(t.files);
  if (!l) throw Object.assign(new Error(`upstream TLS: the files of this cluster's TLS were not read`), { code: 'tls_handshake' });
  return l.context;
}

/** What tells pools apart: the context's settings and, for files, their contents. */
export function poolKey(t: UpstreamTls): string {
  const l = t.files && loaded.get(t.files);
  return l ? `${t.key}|${l.digest}` : t.key;
}

/** Where the server's certificate must come from, in words: for the handshake's error. */
export function rootsName(t: UpstreamTls): string {
  const r = t.files?.roots;
  if (r === undefined) return 'the mesh roots';
  if (r === 'system') return 'the default roots';
  if (r === 'none') return 'no roots';
  return `the roots of ${r.caFile}`;
}

/** The SANs of a certificate as Node lists them ("DNS:a, URI:b, IP Address:1.2.3.4"), by type. */
function sansOf(cert: PeerCertificate): { type: string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  // Node quotes a value holding a comma or a quote as a JSON string.
  for (const m of (cert.subjectaltname ?? '').matchAll(/(DNS|URI|IP Address|email):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g)) {
    out.push({ type: m[1]!, value: m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]! });
  }
  return out;
}

/** Envoy's dnsNameMatch: exact (case aside), or a "*." certificate name covering one label. */
function dnsMatch(want: string, san: string): boolean {
  const w = want.toLowerCase();
  const s = san.toLowerCase();
  if (w === s) return true;
  if (!s.startsWith('*.')) return false;
  const dot = w.indexOf('.');
  return dot > 0 && w.slice(dot) === s.slice(1);
}

/** Why the server's certificate names none of `sans` (undefined: it names one, or none are asked for). */
export function sanMismatchOf(sans: readonly string[], cert: PeerCertificate): string | undefined {
  if (!sans.length) return undefined;
  const have = sansOf(cert);
  for (const want of sans) {
    for (const s of have) if (s.type === 'DNS' ? dnsMatch(want, s.value) : s.value === want) return undefined;
  }
  const names = have.map((s) => s.value).join(', ') || 'no subject alt name';
  return `the server's certificate names ${names}, none of ${sans.join(', ')}`;
}

/** Derived contexts per request host, kept for the hosts seen most recently. */
const byHost = new WeakMap<UpstreamTls, Map<string, UpstreamTls>>();
const MAX_HOSTS = 256;

/**
 * The TLS of one HTTP request to a cluster with auto_sni / auto_san_validation: the request's
 * host (without its port) as SNI, unless it is an IP address; and as the one name the server's
 * certificate must have (an IP address too), as Envoy's router sets them.
 */
export function requestTls(t: UpstreamTls, auto: { sni: boolean; san: boolean }, authority: string): UpstreamTls {
  const host = hostOf(authority);
  if (!host) return t;
  let m = byHost.get(t);
  const hit = m?.get(host);
  if (hit) return hit;
  const setSni = auto.sni && !isIP(host);
  if (!setSni && !auto.san) return t;
  const derived: UpstreamTls = {
    ...t,
    ...(setSni ? { sni: host } : {}),
    ...(auto.san ? { sans: [host] } : {}),
    key: `${t.key}|host ${host}`,
  };
  if (!m) byHost.set(t, (m = new Map()));
  if (m.size >= MAX_HOSTS) m.delete(m.keys().next().value!);
  m.set(host, derived);
  return derived;
}

/** "api.example.com:8443" -> "api.example.com"; "[::1]:80" -> "::1". */
function hostOf(authority: string): string {
  if (authority.startsWith('[')) return authority.slice(1, authority.indexOf(']') > 0 ? authority.indexOf(']') : undefined);
  const colon = authority.lastIndexOf(':');
  return colon >= 0 && authority.indexOf(':') === colon ? authority.slice(0, colon) : authority;
}
