// extensions.path.match.uri_template.v3.UriTemplateMatchConfig, as Envoy's uri_template library
// parses it and turns it into an RE2 pattern: '*' one path segment, '**' any text (slashes too, and
// nothing after it may be a glob), {name} / {name=videos/*} variables, a literal suffix after the last
// segment ('/**.mpd'). Istio writes '/{*}' and '/{**}' paths as such templates. The pattern is
// refused where Envoy refuses it, so both accept and reject the same configs.
import { compileFullMatch } from '../http/regex.ts';
import { fail, fields, str } from './fields.ts';

export const URI_TEMPLATE_TYPE = 'type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig';

// RFC 3986 pchar, less '*' and '=' (Envoy's kLiteral).
const LITERAL = "a-zA-Z0-9-._~%!$&'()+,;:@";
const PATH_GLOB = `[${LITERAL}]+`;
const TEXT_GLOB = `[${LITERAL}/]*`;
const LITERAL_RE = new RegExp(`^[${LITERAL}]+$`);
const NAME_RE = /^[a-zA-Z][a-zA-Z0-9_]*$/;

type Seg = { lit: string } | { glob: 1 | 2 } | { name: string; match: ({ lit: string } | { glob: 1 | 2 })[] };

function escapeLiteral(s: string): string {
  return s.replace(/[$()+.]/g, (c) => '\\' + c);
}

/** The RE2 pattern for a path template, or an error message saying why Envoy would refuse it. */
export function uriTemplateRegex(template: string): string {
  if (!/^\/[\x21-\x7e]*$/.test(template)) throw new Error('invalid pattern');
  let rest = template.slice(1);
  const segs: Seg[] = [];
  let suffix = '';
  const literal = (): string => {
    const slash = rest.indexOf('/');
    const lit = slash < 0 ? rest : rest.slice(0, slash);
    if (!LITERAL_RE.test(lit)) throw new Error(`invalid literal ${JSON.stringify(lit)}`);
    rest = rest.slice(lit.length);
    return lit;
  };
  while (rest !== '') {
    if (rest.startsWith('**')) {
      segs.push({ glob: 2 });
      rest = rest.slice(2);
    } else if (rest.startsWith('*')) {
      segs.push({ glob: 1 });
      rest = rest.slice(1);
    } else if (rest.startsWith('{')) {
      const close = rest.indexOf('}');
      if (close < 0) throw new Error('unmatched variable bracket');
      const body = rest.slice(1, close);
      rest = rest.slice(close + 1);
      const eq = body.indexOf('=');
      const name = eq < 0 ? body : body.slice(0, eq);
      if (!NAME_RE.test(name)) throw new Error(`invalid variable name ${JSON.stringify(name)}`);
      const match: ({ lit: string } | { glob: 1 | 2 })[] = [];
      if (eq >= 0) {
        const parts = body.slice(eq + 1).split('/');
        if (parts.some((p) => p === '')) throw new Error('invalid variable match');
        for (const p of parts) {
          if (p === '**' || p === '*') match.push({ glob: p === '**' ? 2 : 1 });
          else if (LITERAL_RE.test(p)) match.push({ lit: p });
          else throw new Error(`invalid variable match ${JSON.stringify(p)}`);
        }
      }
      segs.push({ name, match });
    } else segs.push({ lit: literal() });
    if (rest === '') break;
    if (rest === '/') {
      segs.push({ lit: '' }); // a trailing slash
      break;
    }
    if (rest.startsWith('/')) rest = rest.slice(1);
    else {
      suffix = literal();
      if (rest !== '') throw new Error('prefix match not supported');
      break;
    }
  }
  const names = segs.flatMap((s) => ('name' in s ? [s.name] : []));
  if (names.length > 5) throw new Error('exceeded variable count limit');
  if (names.some((n) => n.length > 16)) throw new Error('invalid variable length');
  if (new Set(names).size !== names.length) throw new Error('repeated variable name');
  // Nothing that globs may follow '**'.
  let textGlob = false;
  const globs = segs.flatMap((s) => ('glob' in s ? [s.glob] : 'name' in s ? (s.match.length ? s.match.flatMap((m) => ('glob' in m ? [m.glob] : [])) : [1]) : []));
  for (const g of globs) {
    if (textGlob) throw new Error('glob after text glob');
    textGlob = g === 2;
  }
  const part = (s: { lit: string } | { glob: 1 | 2 }): string => ('lit' in s ? escapeLiteral(s.lit) : s.glob === 2 ? TEXT_GLOB : PATH_GLOB);
  const body = segs.map((s) => ('name' in s ? `(?P<${s.name}>${s.match.length ? s.match.map(part).join('/') : PATH_GLOB})` : part(s)));
  return '/' + body.join('/') + escapeLiteral(suffix);
}

/** Compiles a uri_template permission (core.v3.TypedExtensionConfig) to a match on the path without query. */
export function compileUriTemplate(where: string, ext: unknown): (path: string) => boolean {
  const f = fields(where, ext, ['name', 'typed_config']);
  const tc = fields(`${where}.typed_config`, f.typed_config, ['@type', 'path_template']);
  if (tc['@type'] !== URI_TEMPLATE_TYPE) fail(`${where}.typed_config`, `unsupported path matcher ${tc['@type'] ?? '(no @type)'}`);
  const template = str(`${where}.typed_config.path_template`, tc.path_template);
  let source: string;
  try {
    source = uriTemplateRegex(template);
  } catch (e) {
    fail(`${where}.typed_config.path_template`, `${JSON.stringify(template)}: ${(e as Error).message}`);
  }
  const re = compileFullMatch(source);
  return (p) => re.test(p);
}
