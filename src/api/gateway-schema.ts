// The shape of HTTPRoute, GRPCRoute and ReferenceGrant specs (gateway.networking.k8s.io),
// transcribed by hand from the OpenAPI v3 schemas of the Gateway API's standard-channel CRDs
// (kubernetes-sigs/gateway-api 4564255a, config/crd/standard; HTTPRoute v1 and v1beta1 are
// identical; ReferenceGrant from the standard CRD in ../shared/conformance/gateway-api/crds, whose
// v1 and v1beta1 are identical and which has no CEL rules). Descriptions, defaults
// and status are left out: defaults are not written into the stored spec, but the semantic rules
// (httproute.ts, grpcroute.ts, gateway-common.ts) read a missing field as its default, as the
// CRDs' CEL rules (which run after defaulting) do.
//
// From the experimental channel (config/crd/experimental at the same commit), where a comment says
// so: the rule fields `retry` (HTTPRoute) and `sessionPersistence`, which Weft applies or warns
// about, and the pattern on the values a header modifier writes (no control characters, so no
// header can be injected with CR LF), which the Gateway API's invalid examples test on the
// standard HeaderModifier filters. (Its pattern on HTTPRoute match values is not taken.)

import type { ArraySchema, BooleanSchema, IntegerSchema, ObjectSchema, Pattern, Schema, StringSchema } from './schema.ts';

// ---- building blocks ----

const BOOL: BooleanSchema = { type: 'boolean' };
const INT32: IntegerSchema = { type: 'integer', min: -2147483648, max: 2147483647 };
const PORT: IntegerSchema = { type: 'integer', min: 1, max: 65535 };

function str(opts: { min?: number; max?: number; pattern?: Pattern } = {}): StringSchema {
  return {
    type: 'string',
    ...(opts.min === undefined ? {} : { minLength: opts.min }),
    ...(opts.max === undefined ? {} : { maxLength: opts.max }),
    ...(opts.pattern === undefined ? {} : { pattern: opts.pattern }),
  };
}

function enumOf(...values: string[]): StringSchema {
  return { type: 'string', enum: values };
}

function list(items: Schema, opts: { max?: number; min?: number; set?: boolean; mapKeys?: readonly string[] } = {}): ArraySchema {
  return {
    type: 'array',
    items,
    ...(opts.max === undefined ? {} : { maxItems: opts.max }),
    ...(opts.min === undefined ? {} : { minItems: opts.min }),
    ...(opts.set ? { set: true } : {}),
    ...(opts.mapKeys ? { mapKeys: opts.mapKeys } : {}),
  };
}

function obj(props: Record<string, Schema>, required?: readonly string[]): ObjectSchema {
  return required ? { type: 'object', props, required } : { type: 'object', props };
}

// ---- patterns (Go regexps in the CRD; these are the same in JavaScript) ----

const DNS_SUBDOMAIN = '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*';

const HOSTNAME: Pattern = {
  re: new RegExp(`^(\\*\\.)?${DNS_SUBDOMAIN}$`),
  message: 'must be a lower-case DNS name, optionally starting with "*." (e.g. "example.com", "*.example.com")',
};
const PRECISE_HOSTNAME: Pattern = { re: new RegExp(`^${DNS_SUBDOMAIN}$`), message: 'must be a lower-case DNS name without wildcards (e.g. "example.com")' };
const SUBDOMAIN: Pattern = { re: new RegExp(`^${DNS_SUBDOMAIN}$`), message: 'must be a DNS subdomain: lower-case letters, digits, "-" and ".", starting and ending with a letter or digit' };
const GROUP_NAME: Pattern = { re: new RegExp(`^$|^${DNS_SUBDOMAIN}$`), message: 'must be empty (the core group) or a DNS subdomain such as "gateway.networking.k8s.io"' };
const KIND_NAME: Pattern = { re: /^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/, message: 'must be a kind such as "Service": letters, digits and "-", starting with a letter' };
const NAMESPACE_NAME: Pattern = {
  re: /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/,
  message: 'must be a DNS-1123 label: at most 63 lower-case letters, digits or "-", starting and ending with a letter or digit',
};
/** RFC 7230 token characters. */
const HEADER_NAME_PATTERN: Pattern = { re: /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/, message: "must be an HTTP header name: letters, digits and !#$%&'*+-.^_`|~" };
/** Experimental channel, on the values header modifiers write: printable ASCII words separated by one space or tab. */
const HEADER_VALUE_PATTERN: Pattern = {
  re: /^[!-~]+([\t ]?[!-~]+)*$/,
  message: 'must be printable ASCII, with single spaces or tabs between words: no control characters (such as CR or LF) and no leading or trailing white space',
};
export const GATEWAY_DURATION: Pattern = {
  re: /^([0-9]{1,5}(h|m|s|ms)){1,4}$/,
  message: 'must be a Gateway API duration: one to four whole numbers (up to 5 digits each) with a unit h, m, s or ms, e.g. "10s", "1h30m" or "500ms"',
};
const ORIGIN: Pattern = {
  re: /(^\*$)|(^(http(s)?):\/\/(((\*\.)?([a-zA-Z0-9\-]+\.)*[a-zA-Z0-9-]+|\*)(:([0-9]{1,5}))?)$)/,
  message: 'must be "*" or an origin such as "https://example.com", "https://*.example.com" or "http://example.com:8080"',
};

// ---- shared by HTTPRoute and GRPCRoute ----

const GROUP = str({ max: 253, pattern: GROUP_NAME });
const KIND = str({ min: 1, max: 63, pattern: KIND_NAME });
const OBJECT_NAME = str({ min: 1, max: 253 });
const NAMESPACE = str({ min: 1, max: 63, pattern: NAMESPACE_NAME });
const HEADER_NAME = str({ min: 1, max: 256, pattern: HEADER_NAME_PATTERN });
const DURATION = str({ pattern: GATEWAY_DURATION });
const MATCH_TYPE = enumOf('Exact', 'RegularExpression');

const PARENT_REFERENCE = obj(
  { group: GROUP, kind: KIND, name: OBJECT_NAME, namespace: NAMESPACE, port: PORT, sectionName: str({ min: 1, max: 253, pattern: SUBDOMAIN }) },
  ['name'],
);

const COMMON_SPEC = {
  hostnames: list(str({ min: 1, max: 253, pattern: HOSTNAME }), { max: 16 }),
  // The CEL rules on the list (one parent named twice) are in gateway-common.ts.
  parentRefs: list(PARENT_REFERENCE, { max: 32 }),
};

const BACKEND_OBJECT_REFERENCE_PROPS = { group: GROUP, kind: KIND, name: OBJECT_NAME, namespace: NAMESPACE, port: PORT };
const BACKEND_OBJECT_REFERENCE = obj(BACKEND_OBJECT_REFERENCE_PROPS, ['name']);

const HEADER = obj({ name: HEADER_NAME, value: str({ min: 1, max: 4096, pattern: HEADER_VALUE_PATTERN }) }, ['name', 'value']);
const HEADER_FILTER = obj({
  add: list(HEADER, { max: 16, mapKeys: ['name'] }),
  remove: list({ type: 'string' }, { max: 16, set: true }),
  set: list(HEADER, { max: 16, mapKeys: ['name'] }),
});

const REQUEST_MIRROR = obj(
  {
    backendRef: BACKEND_OBJECT_REFERENCE,
    fraction: obj({ denominator: { ...INT32, min: 1 }, numerator: { ...INT32, min: 0 } }, ['numerator']),
    percent: { type: 'integer', min: 0, max: 100 },
  },
  ['backendRef'],
);

const EXTENSION_REF = obj({ group: GROUP, kind: KIND, name: OBJECT_NAME }, ['group', 'kind', 'name']);

const HEADER_MATCH = obj({ name: HEADER_NAME, type: MATCH_TYPE, value: str({ min: 1, max: 4096 }) }, ['name', 'value']);
const HEADER_MATCHES = list(HEADER_MATCH, { max: 16, mapKeys: ['name'] });

const RULE_NAME = str({ min: 1, max: 253, pattern: SUBDOMAIN });
const HEADER_OR_COOKIE_NAME = str({ min: 1, max: 256, pattern: HEADER_NAME_PATTERN });

// Experimental channel (HTTPRoute and GRPCRoute rules); its CEL rules are in gateway-common.ts.
const SESSION_PERSISTENCE = obj({
  absoluteTimeout: DURATION,
  cookie: obj({ lifetimeType: enumOf('Permanent', 'Session'), name: HEADER_OR_COOKIE_NAME, path: str({ max: 1024 }) }),
  header: obj({ name: HEADER_OR_COOKIE_NAME }, ['name']),
  type: enumOf('Cookie', 'Header'),
});

// ---- HTTPRoute ----

const PATH_MODIFIER = obj(
  { replaceFullPath: str({ max: 1024 }), replacePrefixMatch: str({ max: 1024 }), type: enumOf('ReplaceFullPath', 'ReplacePrefixMatch') },
  ['type'],
);

const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];
const CORS_HEADER = str({ min: 1, max: 256, pattern: HEADER_NAME_PATTERN });

const CORS = obj({
  allowCredentials: BOOL,
  allowHeaders: list(CORS_HEADER, { max: 64, set: true }),
  allowMethods: list(enumOf(...HTTP_METHODS, '*'), { max: 9, set: true }),
  allowOrigins: list(str({ min: 1, max: 253, pattern: ORIGIN }), { max: 64, set: true }),
  exposeHeaders: list(CORS_HEADER, { max: 64, set: true }),
  maxAge: { ...INT32, min: 1 },
});

/** The filters of a rule, and of a rule's backendRef: the same schema in the CRD. */
const HTTP_FILTER = obj(
  {
    cors: CORS,
    extensionRef: EXTENSION_REF,
    requestHeaderModifier: HEADER_FILTER,
    requestMirror: REQUEST_MIRROR,
    requestRedirect: obj({
      hostname: str({ min: 1, max: 253, pattern: PRECISE_HOSTNAME }),
      path: PATH_MODIFIER,
      port: PORT,
      scheme: enumOf('http', 'https'),
      statusCode: { type: 'integer', enum: [301, 302, 303, 307, 308] },
    }),
    responseHeaderModifier: HEADER_FILTER,
    type: enumOf('RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'RequestRedirect', 'URLRewrite', 'ExtensionRef', 'CORS'),
    urlRewrite: obj({ hostname: str({ min: 1, max: 253, pattern: PRECISE_HOSTNAME }), path: PATH_MODIFIER }),
  },
  ['type'],
);
const HTTP_FILTERS = list(HTTP_FILTER, { max: 16 });

const HTTP_ROUTE_MATCH = obj({
  headers: HEADER_MATCHES,
  method: enumOf(...HTTP_METHODS),
  // The CEL rules on the path value are in httproute.ts.
  path: obj({ type: enumOf('Exact', 'PathPrefix', 'RegularExpression'), value: str({ max: 1024 }) }),
  queryParams: list(obj({ name: HEADER_NAME, type: MATCH_TYPE, value: str({ min: 1, max: 1024 }) }, ['name', 'value']), { max: 16, mapKeys: ['name'] }),
});

const HTTP_ROUTE_RULE = obj({
  backendRefs: list(obj({ ...BACKEND_OBJECT_REFERENCE_PROPS, filters: HTTP_FILTERS, weight: { type: 'integer', min: 0, max: 1000000 } }, ['name']), { max: 16 }),
  filters: HTTP_FILTERS,
  matches: list(HTTP_ROUTE_MATCH, { max: 64 }),
  name: RULE_NAME,
  // Experimental channel.
  retry: obj({ attempts: { type: 'integer', min: 1 }, backoff: DURATION, codes: list({ type: 'integer', min: 400, max: 599 }, { set: true }) }),
  sessionPersistence: SESSION_PERSISTENCE,
  timeouts: obj({ backendRequest: DURATION, request: DURATION }),
});

export const HTTP_ROUTE_SPEC: ObjectSchema = obj({ ...COMMON_SPEC, rules: list(HTTP_ROUTE_RULE, { max: 16, min: 1 }) });

// ---- GRPCRoute ----

const GRPC_FILTER = obj(
  {
    extensionRef: EXTENSION_REF,
    requestHeaderModifier: HEADER_FILTER,
    requestMirror: REQUEST_MIRROR,
    responseHeaderModifier: HEADER_FILTER,
    type: enumOf('ResponseHeaderModifier', 'RequestHeaderModifier', 'RequestMirror', 'ExtensionRef'),
  },
  ['type'],
);
const GRPC_FILTERS = list(GRPC_FILTER, { max: 16 });

const GRPC_ROUTE_RULE = obj({
  backendRefs: list(obj({ ...BACKEND_OBJECT_REFERENCE_PROPS, filters: GRPC_FILTERS, weight: { type: 'integer', min: 0, max: 1000000 } }, ['name']), { max: 16 }),
  filters: GRPC_FILTERS,
  matches: list(
    obj({
      headers: HEADER_MATCHES,
      // The CEL rules on service and method are in grpcroute.ts.
      method: obj({ method: str({ max: 1024 }), service: str({ max: 1024 }), type: MATCH_TYPE }),
    }),
    { max: 64 },
  ),
  name: RULE_NAME,
  // Experimental channel.
  sessionPersistence: SESSION_PERSISTENCE,
});

export const GRPC_ROUTE_SPEC: ObjectSchema = obj({ ...COMMON_SPEC, rules: list(GRPC_ROUTE_RULE, { max: 16 }) });

// ---- ReferenceGrant ----
// Lists of type atomic: an entry may repeat. Whether a grant permits a reference is
// referencegrant.ts's.

const REFERENCE_GRANT_FROM = obj({ group: GROUP, kind: KIND, namespace: NAMESPACE }, ['group', 'kind', 'namespace']);
const REFERENCE_GRANT_TO = obj({ group: GROUP, kind: KIND, name: OBJECT_NAME }, ['group', 'kind']);

export const REFERENCE_GRANT_SPEC: ObjectSchema = obj(
  { from: list(REFERENCE_GRANT_FROM, { max: 16, min: 1 }), to: list(REFERENCE_GRANT_TO, { max: 16, min: 1 }) },
  ['from', 'to'],
);
