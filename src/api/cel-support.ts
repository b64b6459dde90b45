// What of CEL Weft's sidecars evaluate in an access log filter: the attributes, functions and
// operators proxy/telemetry/cel-filter.ts implements (a test holds the lists equal), and what in a
// parsed expression falls outside them. `weft apply` warns of such an expression (the control plane
// then leaves the filter out); a sidecar handed one refuses it.
import { parseCel, type CelExpr } from './cel.ts';
import { parseDuration } from './duration.ts';

/** Envoy's attributes the sidecars know (envoy docs: "Attributes"), by their path. */
export const CEL_ATTRIBUTES: readonly string[] = [
  'request.path',
  'request.url_path',
  'request.host',
  'request.method',
  'request.headers',
  'request.referer',
  'request.useragent',
  'request.id',
  'request.protocol',
  'request.query',
  'request.size',
  'request.duration',
  'response.code',
  'response.code_details',
  'response.headers',
  'response.size',
  'source.address',
  'source.port',
  'destination.address',
  'destination.port',
  'connection.mtls',
  'connection.requested_server_name',
  'connection.uri_san_peer_certificate',
  'connection.uri_san_local_certificate',
  'upstream.address',
  'upstream.port',
  'upstream.uri_san_peer_certificate',
  'xds.cluster_name',
  'xds.route_name',
];

/** Functions and methods: CEL's standard ones that a filter has use for. Operators (&&, ||, !, ==, <, in, +, ...) and has() come with them. */
export const CEL_FUNCTIONS: readonly string[] = ['size', 'startsWith', 'endsWith', 'contains', 'matches', 'int', 'uint', 'double', 'string', 'duration'];

/** Operators and macros, by the names the parser gives them. */
const CEL_OPERATORS = new Set(['_&&_', '_||_', '!_', '-_', '_==_', '_!=_', '_<_', '_<=_', '_>_', '_>=_', '@in', '_+_', '_-_', '_*_', '_/_', '_%_', '_[_]', '_?_:_']);

/** The attribute path an expression names ("request.headers" for request.headers['x']), or undefined when it is no attribute. */
export function celAttributeOf(e: CelExpr): string | undefined {
  if (e.k === 'ident') return e.name;
  if (e.k === 'select') {
    const o = celAttributeOf(e.operand);
    return o === undefined ? undefined : `${o}.${e.field}`;
  }
  return undefined;
}

const ROOTS = new Set(CEL_ATTRIBUTES.map((a) => a.split('.')[0]));

/**
 * What in a valid expression Weft's sidecars cannot evaluate (the first thing), or undefined: an
 * attribute they do not know, a function, a macro, a message construction.
 */
export function celSupportProblem(e: CelExpr, bound: ReadonlySet<string> = new Set()): string | undefined {
  switch (e.k) {
    case 'lit':
      return e.v instanceof Uint8Array ? 'bytes literals are not supported' : undefined;
    case 'ident':
      if (bound.has(e.name)) return undefined;
      return ROOTS.has(e.name) ? `${e.name} is not an attribute by itself (name one of its fields: ${CEL_ATTRIBUTES.filter((a) => a.startsWith(`${e.name}.`)).join(', ')})` : `unknown attribute ${e.name} (supported: ${CEL_ATTRIBUTES.join(', ')})`;
    case 'select': {
      const path = celAttributeOf(e);
      if (path !== undefined && !bound.has(path.split('.')[0])) {
        if (CEL_ATTRIBUTES.includes(path)) return undefined;
        const map = CEL_ATTRIBUTES.find((a) => path.startsWith(`${a}.`) && a.endsWith('headers'));
        if (map) return undefined; // request.headers.foo: a map key
        return `unknown attribute ${path} (supported: ${CEL_ATTRIBUTES.join(', ')})`;
      }
      return celSupportProblem(e.operand, bound);
    }
    case 'call': {
      if (!CEL_OPERATORS.has(e.fn) && !CEL_FUNCTIONS.includes(e.fn)) return `function ${e.fn}() is not supported (supported: ${CEL_FUNCTIONS.join(', ')})`;
      const of = e.target ?? e.args[0];
      if (e.fn === 'duration' && of?.k === 'lit' && typeof of.v === 'string' && parseDuration(of.v) === undefined) return `duration(${JSON.stringify(of.v)}) is not a duration (such as "1.5s" or "100ms")`;
      if (e.fn === 'size' && of && celAttributeOf(of)?.endsWith('.headers')) return `size() of ${celAttributeOf(of)} is not supported (test a header with has() or "in")`;
      for (const x of [...(e.target ? [e.target] : []), ...e.args]) {
        const p = celSupportProblem(x, bound);
        if (p) return p;
      }
      return undefined;
    }
    case 'list':
      return e.items.map((x) => celSupportProblem(x, bound)).find(Boolean);
    case 'map':
      return e.entries.flatMap((x) => [celSupportProblem(x.key, bound), celSupportProblem(x.value, bound)]).find(Boolean);
    case 'struct':
      return `message construction (${e.name}{...}) is not supported`;
    case 'macro':
      return `the ${e.fn}() macro is not supported`;
  }
}

/** Why Weft's sidecars cannot evaluate `text`, or undefined (a syntax error is validation's to report). */
export function celUnsupported(text: string): string | undefined {
  let e: CelExpr;
  try {
    e = parseCel(text);
  } catch {
    return undefined;
  }
  return celSupportProblem(e);
}
