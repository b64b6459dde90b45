// Istio's RequestAuthentication (security.istio.io v1 and v1beta1, one schema): its shape,
// transcribed from crd-all.gen.yaml (istio/istio 86c9f01f), the CRD's CEL rules, and Istio's
// webhook rules (ValidateRequestAuthentication and validateJwtRule in
// pkg/config/validation/validation.go, with security.ParseJwksURI). Messages are ours; the rules
// are Istio's.

import type { FieldError } from './types.ts';
import { field, type ArraySchema, type ObjectSchema, type StringSchema } from './schema.ts';
import { Findings, asObj, asStr, eachObj, isSet } from './common.ts';
import { WORKLOAD_PICKER, checkWorkloadPicker } from './authorizationpolicy.ts';
import { parseDuration } from './rules.ts';

const STRING: StringSchema = { type: 'string' };
const NON_EMPTY: StringSchema = { type: 'string', minLength: 1 };
const NON_EMPTY_LIST: ArraySchema = { type: 'array', items: NON_EMPTY };
const JWKS_URI: StringSchema = { type: 'string', minLength: 1, maxLength: 2048 };

const JWT_RULE: ObjectSchema = {
  type: 'object',
  props: {
    issuer: NON_EMPTY,
    audiences: NON_EMPTY_LIST,
    jwksUri: JWKS_URI,
    // protobuf's own field name: the same field as jwksUri, which the CRD lists too.
    jwks_uri: JWKS_URI,
    jwks: STRING,
    fromHeaders: { type: 'array', items: { type: 'object', props: { name: NON_EMPTY, prefix: STRING }, required: ['name'] } },
    fromParams: NON_EMPTY_LIST,
    fromCookies: NON_EMPTY_LIST,
    outputPayloadToHeader: STRING,
    forwardOriginalToken: { type: 'boolean' },
    outputClaimToHeaders: {
      type: 'array',
      items: {
        type: 'object',
        props: {
          header: { type: 'string', minLength: 1, pattern: { re: /^[-_A-Za-z0-9]+$/, message: 'must be a header name of letters, digits, "-" and "_"' } },
          claim: NON_EMPTY,
        },
        required: ['header', 'claim'],
      },
    },
    presence: { type: 'string', enum: ['OPTIONAL', 'REQUIRED'] },
    spaceDelimitedClaims: { type: 'array', items: NON_EMPTY, maxItems: 64 },
    timeout: STRING,
  },
};

export const REQUEST_AUTHENTICATION_SPEC: ObjectSchema = {
  type: 'object',
  props: {
    ...WORKLOAD_PICKER,
    jwtRules: { type: 'array', items: JWT_RULE, maxItems: 4096 },
  },
};

export function validateRequestAuthentication(spec: Record<string, unknown>): FieldError[] {
  const f = new Findings();
  checkWorkloadPicker(f, spec);
  for (const [rule, p] of eachObj(spec.jwtRules, 'spec.jwtRules')) checkJwtRule(f, rule, p);
  return f.errors;
}

function checkJwtRule(f: Findings, rule: Record<string, unknown>, p: string): void {
  // validateJwtRule: an issuer or a jwksUri. A rule without an issuer takes tokens of any issuer
  // that its key set verifies (Envoy checks no issuer where none is given).
  if (!asStr(rule.issuer) && !asStr(rule.jwksUri) && !asStr(rule.jwks_uri)) f.report(field(p, 'issuer'), 'required unless jwksUri is set (a rule without an issuer takes tokens of any issuer that its jwksUri key set verifies)');
  // CEL on the rule: one key source.
  const sources = ['jwksUri', 'jwks_uri', 'jwks'].filter((k) => isSet(rule[k]));
  if (sources.length > 1) f.report(p, `only one of jwks and jwksUri can be set (got ${sources.join(', ')})`);
  for (const k of ['jwksUri', 'jwks_uri']) {
    const uri = asStr(rule[k]);
    if (uri) f.report(field(p, k), checkJwksUri(uri));
  }
  const jwks = asStr(rule.jwks);
  if (jwks) f.report(field(p, 'jwks'), checkJwks(jwks));
  const timeout = asStr(rule.timeout);
  if (timeout !== undefined) {
    const nanos = parseDuration(timeout);
    if (nanos === undefined) f.report(field(p, 'timeout'), 'must be a duration such as "5s" or "500ms"');
    else if (nanos < 1_000_000n) f.report(field(p, 'timeout'), 'must be a valid duration greater than 1ms');
  }
}

/** security.ParseJwksURI and the CRD's CEL: an http or https URL with a host and, if any, a numeric port. */
export function checkJwksUri(uri: string): string | undefined {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return `"${uri}" is not a URL`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'url must have scheme http:// or https://';
  if (!u.hostname) return 'url must name a host';
  return undefined;
}

/**
 * Istio parses jwks with jwk.Parse: JSON holding one key or a set of keys, each with a key type.
 * The keys themselves are checked where they are used (the sidecar), as Envoy does.
 */
function checkJwks(text: string): string | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return `jwks parse error: not JSON (${(e as Error).message})`;
  }
  const o = asObj(v);
  if (!o) return 'jwks parse error: must be a JSON object (a key set {"keys": [...]}, or one key)';
  const keys = 'keys' in o ? o.keys : [o];
  if (!Array.isArray(keys)) return 'jwks parse error: "keys" must be a list of keys';
  const bad = keys.findIndex((k) => typeof asObj(k)?.kty !== 'string');
  return bad >= 0 ? `jwks parse error: key ${bad} has no "kty" (key type)` : undefined;
}
