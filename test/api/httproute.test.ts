// HTTPRoute validation: the CRD's shape (enums, patterns, lengths, ranges, list keys) and its CEL
// rules, each case naming the field it is about. What Weft refuses or warns about beyond that is
// in support.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertAccepted, httpRoute, validationProblems, type Spec } from './helpers.ts';

const PARENT = { group: '', kind: 'Service', name: 'reviews', port: 9080 };
const BACKEND = { name: 'reviews-v1', port: 9080 };

/** A mesh route for the reviews Service with one rule to reviews-v1, the rule merged with `rule`. */
const route = (rule: Spec = {}, extra: Spec = {}): Spec => ({ parentRefs: [PARENT], rules: [{ backendRefs: [BACKEND], ...rule }], ...extra });
const R0 = 'spec.rules[0]';
const filter = (type: string, settings: Spec = {}): Spec => ({ type, ...settings });
const rhm = (mod: Spec): Spec => filter('RequestHeaderModifier', { requestHeaderModifier: mod });
const redirect = (settings: Spec = { scheme: 'https' }): Spec => filter('RequestRedirect', { requestRedirect: settings });
const rewrite = (settings: Spec): Spec => filter('URLRewrite', { urlRewrite: settings });
const mirror = (settings: Spec): Spec => filter('RequestMirror', { requestMirror: { backendRef: { name: 'shadow', port: 80 }, ...settings } });
const prefixMatch = (value: string): Spec => ({ path: { type: 'PathPrefix', value } });
const pathMatch = (type: string | undefined, value: string): Spec => ({ matches: [{ path: type ? { type, value } : { value } }] });

const ORIGIN = 'must be "*" or an origin such as "https://example.com", "https://*.example.com" or "http://example.com:8080"';
const DURATION = 'must be a Gateway API duration: one to four whole numbers (up to 5 digits each) with a unit h, m, s or ms, e.g. "10s", "1h30m" or "500ms"';
const PATH_CHARS = `may contain only letters, digits, "%" followed by two hex digits, and the characters -/._~!$&'()*+,;=:@`;
const PREFIX_MATCH = 'ReplacePrefixMatch needs a rule with exactly one match, and that a PathPrefix path match (the prefix it replaces)';
const SERVICE_PORT = 'required for a Service backend (group "" and kind Service, the defaults)';

const REJECTED: [string, Spec, string[]][] = [
  // ---- shape: spec ----
  ['no rules (minItems 1)', { parentRefs: [PARENT], rules: [] }, ['spec.rules: must not be empty']],
  ['17 rules (maxItems 16)', { rules: Array.from({ length: 17 }, () => ({ backendRefs: [BACKEND] })) }, ['spec.rules: must have at most 16 items']],
  ['a hostname that is not a DNS name', route({}, { hostnames: ['http://a<'] }), ['spec.hostnames[0]: must be a lower-case DNS name, optionally starting with "*." (e.g. "example.com", "*.example.com")']],
  ['an upper-case hostname', route({}, { hostnames: ['Example.com'] }), ['spec.hostnames[0]: must be a lower-case DNS name, optionally starting with "*." (e.g. "example.com", "*.example.com")']],
  ['an unknown field', route({ retries: 3 }), [`${R0}.retries: unknown field`]],
  // ---- shape: parentRefs ----
  ['a parentRef without name', { parentRefs: [{ kind: 'Service', group: '' }] }, ['spec.parentRefs[0].name: required']],
  ['a parentRef namespace in upper case', { parentRefs: [{ ...PARENT, namespace: 'Prod' }] }, ['spec.parentRefs[0].namespace: must be a DNS-1123 label: at most 63 lower-case letters, digits or "-", starting and ending with a letter or digit']],
  ['a parentRef port 0', { parentRefs: [{ ...PARENT, port: 0 }] }, ['spec.parentRefs[0].port: must be between 1 and 65535']],
  ['a parentRef sectionName with "_"', { parentRefs: [{ name: 'gw', sectionName: 'http_1' }] }, ['spec.parentRefs[0].sectionName: must be a DNS subdomain: lower-case letters, digits, "-" and ".", starting and ending with a letter or digit']],
  ['a parentRef kind "*"', { parentRefs: [{ name: 'gw', kind: '*' }] }, ['spec.parentRefs[0].kind: must be a kind such as "Service": letters, digits and "-", starting with a letter']],
  ['an empty parentRef kind (minLength 1)', { parentRefs: [{ name: 'gw', kind: '' }] }, ['spec.parentRefs[0].kind: must not be empty']],
  // ---- shape: backendRefs ----
  ['a backendRef group "*"', route({ backendRefs: [{ ...BACKEND, group: '*' }] }), [`${R0}.backendRefs[0].group: must be empty (the core group) or a DNS subdomain such as "gateway.networking.k8s.io"`]],
  ['a backendRef port 800080', route({ backendRefs: [{ name: 'a', port: 800080 }] }), [`${R0}.backendRefs[0].port: must be between 1 and 65535`]],
  ['a backendRef weight over 1000000', route({ backendRefs: [{ ...BACKEND, weight: 1000001 }] }), [`${R0}.backendRefs[0].weight: must be between 0 and 1000000`]],
  ['a negative backendRef weight', route({ backendRefs: [{ ...BACKEND, weight: -1 }] }), [`${R0}.backendRefs[0].weight: must be between 0 and 1000000`]],
  ['a name longer than 253 characters', route({ backendRefs: [{ name: 'a'.repeat(254), port: 80 }] }), [`${R0}.backendRefs[0].name: must be at most 253 characters`]],
  // ---- shape: matches ----
  ['a header name with "/"', route({ matches: [{ headers: [{ name: 'magic/', value: 'foo' }] }] }), [`${R0}.matches[0].headers[0].name: must be an HTTP header name: letters, digits and !#$%&'*+-.^_\`|~`]],
  ['the same header matched twice (list-map key)', route({ matches: [{ headers: [{ name: 'foo', value: 'a' }, { name: 'foo', value: 'b' }] }] }), [`${R0}.matches[0].headers[1]: duplicate name "foo" (already at ${R0}.matches[0].headers[0])`]],
  ['the same query parameter matched twice', route({ matches: [{ queryParams: [{ name: 'q', value: 'a' }, { name: 'q', value: 'a' }] }] }), [`${R0}.matches[0].queryParams[1]: duplicate name "q" (already at ${R0}.matches[0].queryParams[0])`]],
  ['an empty header match value', route({ matches: [{ headers: [{ name: 'foo', value: '' }] }] }), [`${R0}.matches[0].headers[0].value: must not be empty`]],
  ['a header match without value', route({ matches: [{ headers: [{ name: 'foo' }] }] }), [`${R0}.matches[0].headers[0].value: required`]],
  ['an unknown method', route({ matches: [{ method: 'NOTREAL' }] }), [`${R0}.matches[0].method: must be one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH (got "NOTREAL")`]],
  ['an unknown path match type', route({ matches: [{ path: { type: 'Prefix', value: '/' } }] }), [`${R0}.matches[0].path.type: must be one of Exact, PathPrefix, RegularExpression (got "Prefix")`]],
  ['a header match type Prefix', route({ matches: [{ headers: [{ name: 'a', value: 'b', type: 'Prefix' }] }] }), [`${R0}.matches[0].headers[0].type: must be one of Exact, RegularExpression (got "Prefix")`]],
  ['65 matches in a rule (maxItems 64)', route({ matches: Array.from({ length: 65 }, (_, i) => prefixMatch(`/${i}`)) }), [`${R0}.matches: must have at most 64 items`]],
  // ---- shape: filters ----
  ['an experimental filter type', route({ filters: [{ type: 'ExternalAuth' }] }), [`${R0}.filters[0].type: must be one of RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, RequestRedirect, URLRewrite, ExtensionRef, CORS (got "ExternalAuth")`]],
  ['a filter without type', route({ filters: [{ requestHeaderModifier: { remove: ['a'] } }] }), [`${R0}.filters[0].type: required`]],
  ['a redirect status 300', { rules: [{ filters: [redirect({ statusCode: 300 })] }] }, [`${R0}.filters[0].requestRedirect.statusCode: must be one of 301, 302, 303, 307, 308 (got 300)`]],
  ['a redirect scheme ftp', { rules: [{ filters: [redirect({ scheme: 'ftp' })] }] }, [`${R0}.filters[0].requestRedirect.scheme: must be one of http, https (got "ftp")`]],
  ['a redirect hostname with a wildcard', { rules: [{ filters: [redirect({ hostname: '*.example.com' })] }] }, [`${R0}.filters[0].requestRedirect.hostname: must be a lower-case DNS name without wildcards (e.g. "example.com")`]],
  ['a rewrite path modifier without type', route({ filters: [rewrite({ path: { replaceFullPath: '/x' } })] }), [`${R0}.filters[0].urlRewrite.path.type: required`]],
  ['a mirror percent over 100', route({ filters: [mirror({ percent: 101 })] }), [`${R0}.filters[0].requestMirror.percent: must be between 0 and 100`]],
  ['a mirror fraction denominator 0', route({ filters: [mirror({ fraction: { numerator: 0, denominator: 0 } })] }), [`${R0}.filters[0].requestMirror.fraction.denominator: must be between 1 and 2147483647`]],
  ['a mirror fraction without numerator', route({ filters: [mirror({ fraction: { denominator: 10 } })] }), [`${R0}.filters[0].requestMirror.fraction.numerator: required`]],
  ['a header name with a space', route({ filters: [rhm({ set: [{ name: 'x y', value: '1' }] })] }), [`${R0}.filters[0].requestHeaderModifier.set[0].name: must be an HTTP header name: letters, digits and !#$%&'*+-.^_\`|~`]],
  [
    'a header value with CR LF (the experimental channel\'s pattern)',
    route({ filters: [filter('ResponseHeaderModifier', { responseHeaderModifier: { add: [{ name: 'X-Test', value: 'a\r\nSet-Cookie: x' }] } })] }),
    [`${R0}.filters[0].responseHeaderModifier.add[0].value: must be printable ASCII, with single spaces or tabs between words: no control characters (such as CR or LF) and no leading or trailing white space`],
  ],
  ['17 headers set (maxItems 16)', route({ filters: [rhm({ set: Array.from({ length: 17 }, (_, i) => ({ name: `x-${i}`, value: 'v' })) })] }), [`${R0}.filters[0].requestHeaderModifier.set: must have at most 16 items`]],
  ['a CORS origin without scheme', route({ filters: [filter('CORS', { cors: { allowOrigins: ['xpto.com'] } })] }), [`${R0}.filters[0].cors.allowOrigins[0]: ${ORIGIN}`]],
  ['a CORS origin with a path', route({ filters: [filter('CORS', { cors: { allowOrigins: ['http://www.example.com/cart'] } })] }), [`${R0}.filters[0].cors.allowOrigins[0]: ${ORIGIN}`]],
  ['a CORS origin with a six-digit port', route({ filters: [filter('CORS', { cors: { allowOrigins: ['http://www.example.com:111111'] } })] }), [`${R0}.filters[0].cors.allowOrigins[0]: ${ORIGIN}`]],
  ['a CORS origin with a partial wildcard', route({ filters: [filter('CORS', { cors: { allowOrigins: ['http://*bar.com'] } })] }), [`${R0}.filters[0].cors.allowOrigins[0]: ${ORIGIN}`]],
  ['a CORS method BAZINGA', route({ filters: [filter('CORS', { cors: { allowMethods: ['BAZINGA'] } })] }), [`${R0}.filters[0].cors.allowMethods[0]: must be one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH, * (got "BAZINGA")`]],
  ['a CORS maxAge 0', route({ filters: [filter('CORS', { cors: { maxAge: 0 } })] }), [`${R0}.filters[0].cors.maxAge: must be between 1 and 2147483647`]],
  ['a CORS method listed twice (list-type set)', route({ filters: [filter('CORS', { cors: { allowMethods: ['GET', 'GET'] } })] }), [`${R0}.filters[0].cors.allowMethods[1]: duplicate value "GET" (already at ${R0}.filters[0].cors.allowMethods[0])`]],
  // ---- shape: timeouts, retry, name ----
  ['a timeout with a fraction', route({ timeouts: { request: '0.5s' } }), [`${R0}.timeouts.request: ${DURATION}`]],
  ['a timeout in days', route({ timeouts: { request: '1d' } }), [`${R0}.timeouts.request: ${DURATION}`]],
  ['a timeout in microseconds', route({ timeouts: { backendRequest: '100us' } }), [`${R0}.timeouts.backendRequest: ${DURATION}`]],
  ['a timeout of six digits', route({ timeouts: { request: '100000s' } }), [`${R0}.timeouts.request: ${DURATION}`]],
  ['a retry backoff with a space', route({ retry: { backoff: '1s 5ms' } }), [`${R0}.retry.backoff: ${DURATION}`]],
  ['retry attempts 0 (experimental: minimum 1)', route({ retry: { attempts: 0 } }), [`${R0}.retry.attempts: must be at least 1`]],
  ['a retry code 399', route({ retry: { codes: [399] } }), [`${R0}.retry.codes[0]: must be between 400 and 599`]],
  ['a retry code listed twice', route({ retry: { codes: [503, 503] } }), [`${R0}.retry.codes[1]: duplicate value 503 (already at ${R0}.retry.codes[0])`]],
  ['a rule name with upper case', route({ name: 'Rule-1' }), [`${R0}.name: must be a DNS subdomain: lower-case letters, digits, "-" and ".", starting and ending with a letter or digit`]],

  // ---- CEL: path matches ----
  ['a PathPrefix value not starting with "/"', route(pathMatch('PathPrefix', 'foo')), [`${R0}.matches[0].path.value: must be an absolute path, starting with "/"`]],
  ['a path value without type (PathPrefix by default) not starting with "/"', route(pathMatch(undefined, 'foo')), [`${R0}.matches[0].path.value: must be an absolute path, starting with "/"`]],
  ['an Exact path with "//"', route(pathMatch('Exact', '/a//b')), [`${R0}.matches[0].path.value: must not contain "//"`]],
  ['an Exact path with "/./"', route(pathMatch('Exact', '/a/./b')), [`${R0}.matches[0].path.value: must not contain "/./"`]],
  ['a PathPrefix with "/../"', route(pathMatch('PathPrefix', '/a/../b')), [`${R0}.matches[0].path.value: must not contain "/../"`]],
  ['a PathPrefix with "%2f"', route(pathMatch('PathPrefix', '/a%2fb')), [`${R0}.matches[0].path.value: must not contain "%2f"`]],
  ['a PathPrefix with "%2F"', route(pathMatch('PathPrefix', '/a%2Fb')), [`${R0}.matches[0].path.value: must not contain "%2F"`]],
  ['a PathPrefix with "#"', route(pathMatch('PathPrefix', '/a#b')), [`${R0}.matches[0].path.value: must not contain "#"`]],
  ['a PathPrefix ending in "/.."', route(pathMatch('PathPrefix', '/a/..')), [`${R0}.matches[0].path.value: must not end with "/.."`]],
  ['a PathPrefix ending in "/."', route(pathMatch('PathPrefix', '/a/.')), [`${R0}.matches[0].path.value: must not end with "/."`]],
  ['a PathPrefix with "[]"', route(pathMatch('PathPrefix', '/my[/]path01')), [`${R0}.matches[0].path.value: ${PATH_CHARS}`]],
  ['an Exact path with "^"', route(pathMatch('Exact', '/^')), [`${R0}.matches[0].path.value: ${PATH_CHARS}`]],
  ['an Exact path with a bad %-escape', route(pathMatch('Exact', '/a%zz')), [`${R0}.matches[0].path.value: ${PATH_CHARS}`]],
  ['an empty Exact path', route(pathMatch('Exact', '')), [`${R0}.matches[0].path.value: must be an absolute path, starting with "/"`]],
  // ---- CEL: a filter's type and its field ----
  ['a RequestHeaderModifier filter without its field', route({ filters: [filter('RequestHeaderModifier')] }), [`${R0}.filters[0].requestHeaderModifier: required when type is RequestHeaderModifier`]],
  [
    'a RequestHeaderModifier filter with the field of another type',
    { rules: [{ filters: [filter('RequestHeaderModifier', { requestRedirect: { port: 443 } })] }] },
    [`${R0}.filters[0].requestHeaderModifier: required when type is RequestHeaderModifier`, `${R0}.filters[0].requestRedirect: must not be set when type is RequestHeaderModifier`],
  ],
  ['a CORS filter without its field', route({ filters: [filter('CORS')] }), [`${R0}.filters[0].cors: required when type is CORS`]],
  ['an ExtensionRef filter without its field', route({ filters: [filter('ExtensionRef')] }), [`${R0}.filters[0].extensionRef: required when type is ExtensionRef`]],
  [
    'a RequestMirror filter with a header modifier',
    route({ filters: [{ type: 'RequestMirror', requestHeaderModifier: { remove: ['a'] } }] }),
    [`${R0}.filters[0].requestHeaderModifier: must not be set when type is RequestMirror`, `${R0}.filters[0].requestMirror: required when type is RequestMirror`],
  ],
  ['a backendRef filter without its field', route({ backendRefs: [{ ...BACKEND, filters: [filter('ResponseHeaderModifier')] }] }), [`${R0}.backendRefs[0].filters[0].responseHeaderModifier: required when type is ResponseHeaderModifier`]],
  // ---- CEL: filters a list may hold once, and together ----
  ['two RequestHeaderModifier filters', route({ filters: [rhm({ add: [{ name: 'a', value: '1' }] }), rhm({ add: [{ name: 'b', value: '2' }] })] }), [`${R0}.filters[1]: only one RequestHeaderModifier filter is allowed here; the first is ${R0}.filters[0]`]],
  [
    'two ResponseHeaderModifier filters among others',
    route({ filters: [filter('ResponseHeaderModifier', { responseHeaderModifier: { remove: ['a'] } }), mirror({}), filter('ResponseHeaderModifier', { responseHeaderModifier: { remove: ['b'] } })] }),
    [`${R0}.filters[2]: only one ResponseHeaderModifier filter is allowed here; the first is ${R0}.filters[0]`],
  ],
  ['two URLRewrite filters', route({ filters: [rewrite({ hostname: 'a.example' }), rewrite({ hostname: 'b.example' })] }), [`${R0}.filters[1]: only one URLRewrite filter is allowed here; the first is ${R0}.filters[0]`]],
  ['two RequestRedirect filters', { rules: [{ filters: [redirect(), redirect()] }] }, [`${R0}.filters[1]: only one RequestRedirect filter is allowed here; the first is ${R0}.filters[0]`]],
  ['two CORS filters', route({ filters: [filter('CORS', { cors: {} }), filter('CORS', { cors: {} })] }), [`${R0}.filters[1]: only one CORS filter is allowed here; the first is ${R0}.filters[0]`]],
  [
    'two URLRewrite filters on a backendRef',
    route({ backendRefs: [{ ...BACKEND, filters: [rewrite({ hostname: 'a.example' }), rewrite({ hostname: 'b.example' })] }] }),
    [`${R0}.backendRefs[0].filters[1]: only one URLRewrite filter is allowed here; the first is ${R0}.backendRefs[0].filters[0]`],
  ],
  ['a redirect and a rewrite', { rules: [{ filters: [redirect(), rewrite({ hostname: 'a.example' })] }] }, [`${R0}.filters[1]: a URLRewrite filter cannot be used with a RequestRedirect filter (${R0}.filters[0])`]],
  [
    'a rewrite and a redirect on a backendRef',
    route({ backendRefs: [{ ...BACKEND, filters: [rewrite({ hostname: 'a.example' }), redirect()] }] }),
    [`${R0}.backendRefs[0].filters[0]: a URLRewrite filter cannot be used with a RequestRedirect filter (${R0}.backendRefs[0].filters[1])`],
  ],
  ['a redirect with backendRefs', route({ filters: [redirect()] }), [`${R0}.filters[0]: a RequestRedirect filter answers the request itself: it cannot be used in a rule with backendRefs`]],
  // ---- CEL: ReplacePrefixMatch needs one PathPrefix match ----
  [
    'a prefix redirect with two matches',
    { rules: [{ matches: [prefixMatch('/a'), prefixMatch('/b')], filters: [redirect({ path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/c' } })] }] },
    [`${R0}.filters[0].requestRedirect.path: ${PREFIX_MATCH}`],
  ],
  [
    'a prefix rewrite of an Exact match',
    route({ matches: [{ path: { type: 'Exact', value: '/a' } }], filters: [rewrite({ path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/b' } })] }),
    [`${R0}.filters[0].urlRewrite.path: ${PREFIX_MATCH}`],
  ],
  [
    'a prefix rewrite of a RegularExpression match',
    route({ matches: [{ path: { type: 'RegularExpression', value: '/a.*' } }], filters: [rewrite({ path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/b' } })] }),
    [`${R0}.filters[0].urlRewrite.path: ${PREFIX_MATCH}`],
  ],
  ['a prefix rewrite with matches: []', route({ matches: [], filters: [rewrite({ path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/b' } })] }), [`${R0}.filters[0].urlRewrite.path: ${PREFIX_MATCH}`]],
  [
    'a prefix rewrite on a backendRef, with two matches',
    route({ matches: [prefixMatch('/a'), prefixMatch('/b')], backendRefs: [{ ...BACKEND, filters: [rewrite({ path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/c' } })] }] }),
    [`${R0}.backendRefs[0].filters[0].urlRewrite.path: ${PREFIX_MATCH}`],
  ],
  // ---- CEL: path modifiers ----
  ['ReplaceFullPath without replaceFullPath', route({ filters: [rewrite({ path: { type: 'ReplaceFullPath' } })] }), [`${R0}.filters[0].urlRewrite.path.replaceFullPath: required when type is ReplaceFullPath`]],
  ['ReplacePrefixMatch without replacePrefixMatch', { rules: [{ filters: [redirect({ path: { type: 'ReplacePrefixMatch' } })] }] }, [`${R0}.filters[0].requestRedirect.path.replacePrefixMatch: required when type is ReplacePrefixMatch`]],
  [
    'ReplaceFullPath with replacePrefixMatch',
    route({ filters: [rewrite({ path: { type: 'ReplaceFullPath', replaceFullPath: '/a', replacePrefixMatch: '/b' } })] }),
    [`${R0}.filters[0].urlRewrite.path.replacePrefixMatch: must not be set when type is ReplaceFullPath`],
  ],
  // ---- header modifiers: a header once, names without case ----
  ['a header set and removed', route({ filters: [rhm({ set: [{ name: 'X-A', value: '1' }], remove: ['x-a'] })] }), [`${R0}.filters[0].requestHeaderModifier.remove[0]: header "x-a" is already modified at ${R0}.filters[0].requestHeaderModifier.set[0]: a modifier acts on a header once (names are case-insensitive)`]],
  ['a header set and added', route({ filters: [rhm({ set: [{ name: 'x-a', value: '1' }], add: [{ name: 'x-a', value: '2' }] })] }), [`${R0}.filters[0].requestHeaderModifier.add[0]: header "x-a" is already modified at ${R0}.filters[0].requestHeaderModifier.set[0]: a modifier acts on a header once (names are case-insensitive)`]],
  ['a header added twice in two cases', route({ filters: [rhm({ add: [{ name: 'x-a', value: '1' }, { name: 'X-A', value: '2' }] })] }), [`${R0}.filters[0].requestHeaderModifier.add[1]: header "X-A" is already modified at ${R0}.filters[0].requestHeaderModifier.add[0]: a modifier acts on a header once (names are case-insensitive)`]],
  ['a header added twice (list-map key)', route({ filters: [rhm({ add: [{ name: 'x-a', value: '1' }, { name: 'x-a', value: '2' }] })] }), [`${R0}.filters[0].requestHeaderModifier.add[1]: duplicate name "x-a" (already at ${R0}.filters[0].requestHeaderModifier.add[0])`]],
  ['a header removed twice (list-type set)', route({ filters: [rhm({ remove: ['foo', 'foo'] })] }), [`${R0}.filters[0].requestHeaderModifier.remove[1]: duplicate value "foo" (already at ${R0}.filters[0].requestHeaderModifier.remove[0])`]],
  [
    'a response header on a backendRef set twice',
    route({ backendRefs: [{ ...BACKEND, filters: [filter('ResponseHeaderModifier', { responseHeaderModifier: { set: [{ name: 'a', value: '1' }], remove: ['A'] } })] }] }),
    [`${R0}.backendRefs[0].filters[0].responseHeaderModifier.remove[0]: header "A" is already modified at ${R0}.backendRefs[0].filters[0].responseHeaderModifier.set[0]: a modifier acts on a header once (names are case-insensitive)`],
  ],
  // ---- CEL: mirrors ----
  ['a mirror with percent and fraction', route({ filters: [mirror({ percent: 10, fraction: { numerator: 1 } })] }), [`${R0}.filters[0].requestMirror: only one of percent or fraction may be set`]],
  ['a mirror fraction over 1', route({ filters: [mirror({ fraction: { numerator: 5, denominator: 4 } })] }), [`${R0}.filters[0].requestMirror.fraction: numerator (5) must not be greater than denominator (4)`]],
  ['a mirror fraction over the default denominator', route({ filters: [mirror({ fraction: { numerator: 101 } })] }), [`${R0}.filters[0].requestMirror.fraction: numerator (101) must not be greater than denominator (100, the default)`]],
  ['a mirror to a Service without port', route({ filters: [filter('RequestMirror', { requestMirror: { backendRef: { name: 'shadow' } } })] }), [`${R0}.filters[0].requestMirror.backendRef.port: ${SERVICE_PORT}`]],
  // ---- CEL: a Service backend has a port ----
  ['a backendRef without port (a Service by default)', route({ backendRefs: [{ name: 'foo' }] }), [`${R0}.backendRefs[0].port: ${SERVICE_PORT}`]],
  ['a Service backendRef without port', route({ backendRefs: [{ name: 'foo', kind: 'Service', group: '' }] }), [`${R0}.backendRefs[0].port: ${SERVICE_PORT}`]],
  // ---- CEL: timeouts ----
  ['a backend timeout longer than the request timeout', route({ timeouts: { request: '1s', backendRequest: '2s' } }), [`${R0}.timeouts.backendRequest: must not be longer than timeouts.request (1s)`]],
  ['a backend timeout of 1h1ms against 1h', route({ timeouts: { request: '1h', backendRequest: '1h1ms' } }), [`${R0}.timeouts.backendRequest: must not be longer than timeouts.request (1h)`]],
  // ---- CEL: CORS ----
  ['CORS origins "*" and another', route({ filters: [filter('CORS', { cors: { allowOrigins: ['*', 'https://a.example'] } })] }), [`${R0}.filters[0].cors.allowOrigins: "*" (any) cannot be listed with other origins`]],
  ['CORS methods "*" and GET', route({ filters: [filter('CORS', { cors: { allowMethods: ['GET', '*'] } })] }), [`${R0}.filters[0].cors.allowMethods: "*" (any) cannot be listed with other methods`]],
  ['CORS headers "*" and another', route({ filters: [filter('CORS', { cors: { allowHeaders: ['*', 'x-a'] } })] }), [`${R0}.filters[0].cors.allowHeaders: "*" (any) cannot be listed with other headers`]],
  // ---- CEL: parentRefs ----
  ['one Gateway twice', { parentRefs: [{ name: 'gw' }, { name: 'gw' }] }, ['spec.parentRefs[1]: duplicates spec.parentRefs[0]: references to one parent must differ in sectionName or port']],
  [
    'one Gateway with and without sectionName',
    { parentRefs: [{ name: 'gw' }, { name: 'gw', sectionName: 'http' }] },
    ['spec.parentRefs[1]: names the same parent as spec.parentRefs[0]: references to one parent must all set sectionName or all leave it out, and likewise port'],
  ],
  ['one Gateway section twice (defaults written out)', { parentRefs: [{ name: 'gw', sectionName: 'a' }, { name: 'gw', sectionName: 'a', group: 'gateway.networking.k8s.io', kind: 'Gateway' }] }, ['spec.parentRefs[1]: duplicates spec.parentRefs[0]: references to one parent must differ in sectionName or port']],
  ['one Service port twice', { parentRefs: [PARENT, PARENT] }, ['spec.parentRefs[1]: duplicates spec.parentRefs[0]: references to one parent must differ in sectionName or port']],
  [
    'one Service with and without port',
    { parentRefs: [PARENT, { group: '', kind: 'Service', name: 'reviews' }] },
    ['spec.parentRefs[1]: names the same parent as spec.parentRefs[0]: references to one parent must all set sectionName or all leave it out, and likewise port'],
  ],
  [
    'one Service with a sectionName, then with a sectionName and a port',
    { parentRefs: [{ group: '', kind: 'Service', name: 's', sectionName: 'http' }, { group: '', kind: 'Service', name: 's', sectionName: 'grpc', port: 80 }] },
    ['spec.parentRefs[1]: names the same parent as spec.parentRefs[0]: references to one parent must all set sectionName or all leave it out, and likewise port'],
  ],
  // ---- CEL: rules ----
  ['two rules named alike (experimental channel)', { parentRefs: [PARENT], rules: [{ name: 'a', backendRefs: [BACKEND] }, { name: 'b', backendRefs: [BACKEND] }, { name: 'a', backendRefs: [BACKEND] }] }, ['spec.rules[2].name: duplicate rule name "a" (already at spec.rules[0].name)']],
  [
    '129 matches in all',
    { rules: [0, 1, 2].map((r) => ({ matches: Array.from({ length: 43 }, (_, i) => prefixMatch(`/${r}/${i}`)), backendRefs: [BACKEND] })) },
    ['spec.rules: the rules have 129 matches in all; at most 128 are allowed'],
  ],
  [
    '128 matches and a rule without (which has one, by default)',
    { rules: [...[0, 1].map((r) => ({ matches: Array.from({ length: 64 }, (_, i) => prefixMatch(`/${r}/${i}`)), backendRefs: [BACKEND] })), { backendRefs: [BACKEND] }] },
    ['spec.rules: the rules have 129 matches in all; at most 128 are allowed'],
  ],
  // ---- CEL: sessionPersistence (experimental channel) ----
  ['session persistence without cookie (type Cookie by default)', route({ sessionPersistence: {} }), [`${R0}.sessionPersistence.cookie: required when type is Cookie (the default)`]],
  ['header session persistence without header', route({ sessionPersistence: { type: 'Header' } }), [`${R0}.sessionPersistence.header: required when type is Header`]],
  [
    'header session persistence with a cookie',
    route({ sessionPersistence: { type: 'Header', header: { name: 'x-session' }, cookie: { name: 'c' } } }),
    [`${R0}.sessionPersistence.cookie: must not be set when type is Header`],
  ],
  ['cookie session persistence with a header', route({ sessionPersistence: { cookie: { name: 'c' }, header: { name: 'x' } } }), [`${R0}.sessionPersistence.header: must not be set when type is Cookie`]],
  ['a permanent cookie without absoluteTimeout', route({ sessionPersistence: { cookie: { name: 'c', lifetimeType: 'Permanent' } } }), [`${R0}.sessionPersistence.absoluteTimeout: required when cookie.lifetimeType is Permanent`]],
];

describe('HTTPRoute: rejected, naming the field', () => {
  for (const [name, spec, problems] of REJECTED) {
    test(name, () => assert.deepEqual(validationProblems(httpRoute(spec)), problems));
  }

  test('the envelope: v1beta1 is read too; other versions are not', () => {
    assertAccepted({ ...httpRoute(route()), apiVersion: 'gateway.networking.k8s.io/v1beta1' });
    assert.deepEqual(validationProblems({ ...httpRoute(route()), apiVersion: 'gateway.networking.k8s.io/v1alpha2' }), [
      ': kind HTTPRoute (gateway.networking.k8s.io/v1alpha2) is not supported; Weft reads VirtualService, DestinationRule, ServiceEntry, WorkloadEntry and Sidecar (networking.istio.io/v1, v1beta1, v1alpha3); PeerAuthentication, AuthorizationPolicy and RequestAuthentication (security.istio.io/v1, v1beta1); LocalRateLimit (ratelimit.weft.io/v1alpha1); HTTPRoute and ReferenceGrant (gateway.networking.k8s.io/v1, v1beta1); GRPCRoute (gateway.networking.k8s.io/v1); Telemetry (telemetry.istio.io/v1, v1alpha1); ConfigMap (v1)',
    ]);
  });

  test('a field that breaks the schema gets one message, not the CEL rules on it too', () => {
    // "foo" breaks no pattern (the CRD gives value none) but the CEL rule; "x".repeat(1025) breaks maxLength only.
    assert.deepEqual(validationProblems(httpRoute(route(pathMatch('Exact', `/${'x'.repeat(1024)}`)))), [`${R0}.matches[0].path.value: must be at most 1024 characters`]);
  });
});

describe('HTTPRoute: accepted', () => {
  const ACCEPTED: [string, Spec][] = [
    ['a mesh route to a Service', route()],
    ['a route without parents or rules besides one', { rules: [{ backendRefs: [BACKEND] }] }],
    ['a route without rules (it has one by default)', { parentRefs: [PARENT] }],
    ['an empty rule', { parentRefs: [PARENT], rules: [{}] }],
    ['hostnames, wildcard too (mesh routes ignore them)', route({}, { hostnames: ['reviews.example.com', '*.example.com'] })],
    ['parentRefs in the core group spelled "core"', { parentRefs: [{ group: 'core', kind: 'Service', name: 'reviews', port: 9080 }], rules: [{ backendRefs: [BACKEND] }] }],
    ['one Service on two ports (experimental channel rule)', { parentRefs: [PARENT, { ...PARENT, port: 9081 }], rules: [{ backendRefs: [BACKEND] }] }],
    ['one Gateway on two sections', { parentRefs: [{ name: 'gw', sectionName: 'a' }, { name: 'gw', sectionName: 'b' }] }],
    ['one Gateway with and without a namespace (CEL compares namespaces as written)', { parentRefs: [{ name: 'gw', namespace: 'default' }, { name: 'gw' }] }],
    ['one Gateway section on two ports', { parentRefs: [{ name: 'gw', sectionName: 'a', port: 80 }, { name: 'gw', sectionName: 'a', port: 443 }] }],
    ['a custom backend without port (only a Service needs one)', route({ backendRefs: [{ group: 'acme.io', kind: 'CustomBackend', name: 'x' }] })],
    ['weights 0 to 1000000', route({ backendRefs: [{ ...BACKEND, weight: 0 }, { name: 'reviews-v2', port: 9080, weight: 1000000 }] })],
    [
      'every match kind',
      route({
        matches: [
          { path: { type: 'Exact', value: '/a' }, method: 'GET', headers: [{ name: 'x-user', value: 'jason' }, { name: 'X-User', value: 'other' }], queryParams: [{ name: 'q', value: '1', type: 'Exact' }] },
          { path: { type: 'RegularExpression', value: '/b/[0-9]+' }, headers: [{ name: 'x-r', value: '^a.*$', type: 'RegularExpression' }] },
          { path: { value: '/my%20path/123-._~!$&\'()*+,;=:@' } },
          { path: { type: 'PathPrefix' } },
          { headers: [{ name: 'magic', value: 'foo' }] },
        ],
      }),
    ],
    ['a regular expression that is not RE2 (the dialect is left to the implementation)', route(pathMatch('RegularExpression', '/(?<=a)b'))],
    ['an Exact "/" and a RegularExpression that would be no Exact path', route({ matches: [{ path: { type: 'Exact', value: '/' } }, { path: { type: 'RegularExpression', value: 'a//b#c' } }] })],
    [
      'every filter once, and RequestMirror and ExtensionRef repeated',
      route({
        filters: [
          rhm({ set: [{ name: 'x-a', value: '1' }], add: [{ name: 'x-b', value: 'two words\tand a tab' }], remove: ['x-c'] }),
          filter('ResponseHeaderModifier', { responseHeaderModifier: { set: [{ name: 'x-a', value: '1' }] } }),
          rewrite({ hostname: 'elsewhere.example', path: { type: 'ReplaceFullPath', replaceFullPath: 'no-slash-needed' } }),
          mirror({ percent: 50 }),
          mirror({ fraction: { numerator: 1, denominator: 3 } }),
          filter('ExtensionRef', { extensionRef: { group: 'acme.io', kind: 'Auth', name: 'a' } }),
          filter('ExtensionRef', { extensionRef: { group: '', kind: 'Service', name: 'b' } }),
          filter('CORS', { cors: { allowOrigins: ['https://www.foo.com', 'https://*.bar.com', 'http://a.example:8080'], allowMethods: ['GET', 'OPTIONS'], allowHeaders: ['*'], exposeHeaders: ['x-h'], allowCredentials: true, maxAge: 3600 } }),
        ],
      }),
    ],
    ['a redirect without backendRefs', { parentRefs: [PARENT], rules: [{ filters: [redirect({ scheme: 'https', hostname: 'a.example', port: 443, statusCode: 301, path: { type: 'ReplaceFullPath', replaceFullPath: '/x' } })] }] }],
    ['a prefix redirect of the default match (PathPrefix "/")', { rules: [{ filters: [redirect({ path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' } })] }] }],
    ['a prefix rewrite of a match without path (PathPrefix "/" by default)', route({ matches: [{ method: 'GET' }], filters: [rewrite({ path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } })] })],
    ['a prefix rewrite of a path match without type', route({ matches: [{ path: { value: '/a' } }], filters: [rewrite({ path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/b' } })] })],
    ['header modifiers on a backendRef', route({ backendRefs: [{ ...BACKEND, filters: [rhm({ set: [{ name: 'a', value: 'b' }] }), filter('ResponseHeaderModifier', { responseHeaderModifier: { remove: ['a'] } })] }] })],
    ['the same header in the request and the response modifier', route({ filters: [rhm({ set: [{ name: 'a', value: '1' }] }), filter('ResponseHeaderModifier', { responseHeaderModifier: { remove: ['a'] } })] })],
    ['timeouts: a backend timeout equal to the request timeout', route({ timeouts: { request: '10s', backendRequest: '10s' } })],
    ['timeouts: a request timeout of 0 (none) and any backend timeout', route({ timeouts: { request: '0s', backendRequest: '1h' } })],
    ['timeouts: 1h30m and 500ms; four parts', route({ timeouts: { request: '1h30m', backendRequest: '500ms' } }, {})],
    ['timeouts: four parts', route({ timeouts: { request: '1h2m3s4ms' } })],
    ['retry', route({ retry: { codes: [500, 502, 503, 504], attempts: 3, backoff: '100ms' } })],
    ['rule names, unique', { parentRefs: [PARENT], rules: [{ name: 'a', backendRefs: [BACKEND] }, { name: 'a.b-1', backendRefs: [BACKEND] }] }],
    ['128 matches in all', { rules: [0, 1].map((r) => ({ matches: Array.from({ length: 64 }, (_, i) => prefixMatch(`/${r}/${i}`)), backendRefs: [BACKEND] })) }],
    ['cookie session persistence', route({ sessionPersistence: { cookie: { name: 'session', lifetimeType: 'Permanent' }, absoluteTimeout: '1h' } })],
    ['header session persistence', route({ sessionPersistence: { type: 'Header', header: { name: 'x-session' } } })],
    ['null fields (pruned, as Kubernetes does)', route({ timeouts: null, matches: null })],
  ];
  for (const [name, spec] of ACCEPTED) {
    test(name, () => assertAccepted(httpRoute(spec)));
  }
});
