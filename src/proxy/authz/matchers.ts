// config.rbac.v3.Permission and Principal compiled to predicates, one per node, as Envoy's
// source/extensions/filters/common/rbac/matchers.cc builds them. Compiling does all parsing
// (regexes, CIDRs, lower-casing); a predicate only reads the request through the Scratch, which
// parses each address and strips the query from the path at most once per request.
import { fail, fields, int, list, oneOf, str, bool } from './fields.ts';
import { AddressSlot, compileCidr } from './ip.ts';
import { compileMetadataMatcher } from './metadata-matcher.ts';
import { compileHeaderMatcher } from './header-matcher.ts';
import { type RbacRequest, headerValue, stripQuery } from './request.ts';
import { compileStringMatcher } from './string-matcher.ts';
import { compileUriTemplate } from './uri-template.ts';

/** Per-request derived values, reset for each evaluation (one instance per process: evaluation is synchronous). */
export class Scratch {
  req!: RbacRequest;
  readonly source = new AddressSlot();
  readonly directRemote = new AddressSlot();
  readonly remote = new AddressSlot();
  readonly destination = new AddressSlot();
  private pathDone = false;
  private stripped: string | undefined = undefined;

  reset(req: RbacRequest): this {
    this.req = req;
    this.pathDone = false;
    return this;
  }

  /** Lets go of the last request, so that the scratch does not keep its headers alive. */
  release(): void {
    this.req = undefined as unknown as RbacRequest;
    this.stripped = undefined;
  }

  /** :path without query string and fragment, as url_path and uri_template match it; undefined if no :path. */
  urlPath(): string | undefined {
    if (!this.pathDone) {
      const raw = this.req.path ?? headerValue(this.req.headers, ':path');
      this.stripped = raw === undefined ? undefined : stripQuery(raw);
      this.pathDone = true;
    }
    return this.stripped;
  }
}

export type Match = (s: Scratch) => boolean;

const ALWAYS: Match = () => true;

export function all(ms: Match[]): Match {
  if (ms.length === 1) return ms[0];
  return (s) => {
    for (const m of ms) if (!m(s)) return false;
    return true;
  };
}

export function some(ms: Match[]): Match {
  if (ms.length === 1) return ms[0];
  return (s) => {
    for (const m of ms) if (m(s)) return true;
    return false;
  };
}

/** Whether HTTP-only rules (headers, paths) are allowed: not in the network filter. */
export interface CompileOptions {
  readonly network: boolean;
}

function httpOnly(where: string, o: CompileOptions): void {
  if (o.network) fail(where, 'matches HTTP requests, but this is a network (TCP) RBAC filter');
}

const PERMISSION = ['and_rules', 'or_rules', 'any', 'header', 'url_path', 'destination_ip', 'destination_port', 'destination_port_range', 'metadata', 'not_rule', 'requested_server_name', 'matcher', 'uri_template', 'sourced_metadata'];

export function compilePermission(where: string, p: unknown, o: CompileOptions): Match {
  const f = fields(where, p, PERMISSION);
  const kind = oneOf(where, f, PERMISSION);
  const at = `${where}.${kind}`;
  const v = f[kind];
  switch (kind) {
    case 'and_rules':
    case 'or_rules': {
      const set = fields(at, v, ['rules']);
      const ms = list(`${at}.rules`, set.rules).map((r, i) => compilePermission(`${at}.rules[${i}]`, r, o));
      if (ms.length === 0) fail(`${at}.rules`, 'at least one rule is required');
      return kind === 'and_rules' ? all(ms) : some(ms);
    }
    case 'not_rule': {
      const m = compilePermission(at, v, o);
      return (s) => !m(s);
    }
    case 'any':
      return anyTrue(at, v);
    case 'header': {
      httpOnly(at, o);
      const m = compileHeaderMatcher(at, v);
      return (s) => m(s.req.headers);
    }
    case 'url_path':
      httpOnly(at, o);
      return compileUrlPath(at, v);
    case 'uri_template': {
      httpOnly(at, o);
      const m = compileUriTemplate(at, v);
      // Envoy matches the path value, '' when absent; no template matches ''.
      return (s) => m(s.urlPath() ?? '');
    }
    case 'destination_ip': {
      const m = compileCidr(at, v);
      return (s) => m(s.destination.set(s.req.destinationIp));
    }
    case 'destination_port': {
      const port = int(at, v);
      if (port < 0 || port > 65535) fail(at, 'must be between 0 and 65535');
      return (s) => s.req.destinationPort === port;
    }
    case 'destination_port_range': {
      const r = fields(at, v, ['start', 'end']);
      const start = int(`${at}.start`, r.start);
      const end = int(`${at}.end`, r.end);
      if (start < 0 || start > 65536) fail(`${at}.start`, `range start ${start} is out of bounds`);
      if (end < 0 || end > 65536) fail(`${at}.end`, `range end ${end} is out of bounds`);
      if (start >= end) fail(at, `range start ${start} cannot be greater or equal than range end ${end}`);
      return (s) => start <= s.req.destinationPort && s.req.destinationPort < end;
    }
    case 'metadata':
      return dynamicMetadata(at, v);
    case 'sourced_metadata':
      return sourcedMetadata(at, v);
    case 'requested_server_name': {
      const m = compileStringMatcher(at, v);
      // Envoy's requestedServerName() is '' when the client sent no SNI.
      return (s) => m(s.req.sni ?? '');
    }
    default:
      fail(at, 'RBAC matcher extensions are not supported');
  }
}

const PRINCIPAL = ['and_ids', 'or_ids', 'any', 'authenticated', 'source_ip', 'direct_remote_ip', 'remote_ip', 'header', 'url_path', 'metadata', 'filter_state', 'not_id', 'sourced_metadata', 'custom'];

export function compilePrincipal(where: string, p: unknown, o: CompileOptions): Match {
  const f = fields(where, p, PRINCIPAL);
  const kind = oneOf(where, f, PRINCIPAL);
  const at = `${where}.${kind}`;
  const v = f[kind];
  switch (kind) {
    case 'and_ids':
    case 'or_ids': {
      const set = fields(at, v, ['ids']);
      const ms = list(`${at}.ids`, set.ids).map((r, i) => compilePrincipal(`${at}.ids[${i}]`, r, o));
      if (ms.length === 0) fail(`${at}.ids`, 'at least one id is required');
      return kind === 'and_ids' ? all(ms) : some(ms);
    }
    case 'not_id': {
      const m = compilePrincipal(at, v, o);
      return (s) => !m(s);
    }
    case 'any':
      return anyTrue(at, v);
    case 'authenticated':
      return compileAuthenticated(at, v);
    case 'source_ip': {
      const m = compileCidr(at, v);
      return (s) => m(s.source.set(s.req.sourceIp));
    }
    case 'direct_remote_ip': {
      const m = compileCidr(at, v);
      return (s) => m(s.directRemote.set(s.req.directRemoteIp ?? s.req.sourceIp));
    }
    case 'remote_ip': {
      const m = compileCidr(at, v);
      return (s) => m(s.remote.set(s.req.remoteIp ?? s.req.sourceIp));
    }
    case 'header': {
      httpOnly(at, o);
      const m = compileHeaderMatcher(at, v);
      return (s) => m(s.req.headers);
    }
    case 'url_path':
      httpOnly(at, o);
      return compileUrlPath(at, v);
    case 'metadata':
      return dynamicMetadata(at, v);
    case 'sourced_metadata':
      return sourcedMetadata(at, v);
    case 'filter_state':
      fail(at, 'filter state is not supported');
    default:
      fail(at, 'principal extensions are not supported');
  }
}

function anyTrue(at: string, v: unknown): Match {
  // The proto requires any: true (validate const); false is invalid, not "never".
  if (v !== true) fail(at, 'must be true');
  return ALWAYS;
}

function dynamicMetadata(at: string, v: unknown): Match {
  const m = compileMetadataMatcher(at, v);
  return (s) => m(s.req.metadata);
}

function sourcedMetadata(at: string, v: unknown): Match {
  const f = fields(at, v, ['metadata_matcher', 'metadata_source']);
  const m = compileMetadataMatcher(`${at}.metadata_matcher`, f.metadata_matcher);
  const source = f.metadata_source ?? 'DYNAMIC';
  if (source === 'DYNAMIC' || source === 0) return (s) => m(s.req.metadata);
  // Envoy: no route, no match.
  if (source === 'ROUTE' || source === 1) return (s) => s.req.routeMetadata !== undefined && m(s.req.routeMetadata);
  fail(`${at}.metadata_source`, `unknown metadata source ${JSON.stringify(source)}`);
}

/** Principal.Authenticated: URI SANs, then DNS SANs, then the subject, any one matching. */
function compileAuthenticated(at: string, v: unknown): Match {
  const f = fields(at, v, ['principal_name']);
  if (f.principal_name === undefined) return (s) => s.req.peer !== undefined; // any TLS connection, as Envoy
  const m = compileStringMatcher(`${at}.principal_name`, f.principal_name);
  return (s) => {
    const peer = s.req.peer;
    if (peer === undefined) return false;
    // The shorthand names the URI SAN only; give a PeerCertificate for DNS SANs and the subject.
    if (typeof peer === 'string') return m(peer);
    for (const u of peer.uriSans) if (m(u)) return true;
    if (peer.dnsSans) for (const d of peer.dnsSans) if (m(d)) return true;
    return m(peer.subject ?? '');
  };
}

/** url_path, a type.matcher.v3.PathMatcher: a StringMatcher on the path without query; no :path, no match. */
function compileUrlPath(at: string, v: unknown): Match {
  const f = fields(at, v, ['path']);
  oneOf(at, f, ['path']);
  const m = compileStringMatcher(`${at}.path`, f.path);
  return (s) => {
    const p = s.urlPath();
    return p !== undefined && m(p);
  };
}
