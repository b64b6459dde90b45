// Weft's own LocalRateLimit (ratelimit.weft.io/v1alpha1): Istio has no resource for local rate
// limits (it takes an EnvoyFilter), so Weft has one. It limits the requests a workload's inbound
// side accepts, with token buckets, per route of the sidecar's inbound routes:
//
//   apiVersion: ratelimit.weft.io/v1alpha1
//   kind: LocalRateLimit
//   metadata: {name: reviews, namespace: default}
//   spec:
//     selector: {matchLabels: {app: reviews}}    # which workloads of the namespace; absent: all
//     limits:                                      # the first whose match holds applies
//     - name: writes                               # named in the 429 (default: limits[i])
//       match: {method: POST, path: {prefix: /api}} # absent: every request
//       requests: 10                               # tokens added per interval
//       per: 1s                                    # the interval
//       burst: 20                                  # the bucket's size (default: requests)
//
// Past the limit a request gets 429 naming the limit. One bucket per limit per sidecar.
import type { FieldError } from './types.ts';
import { field, type ObjectSchema } from './schema.ts';
import { Findings, asList, asNum, asObj, asStr, checkLabels, eachObj } from './common.ts';
import { checkDuration, parseDuration } from './rules.ts';

const STRING = { type: 'string' } as const;
const PATH_MATCH: ObjectSchema = { type: 'object', props: { exact: STRING, prefix: STRING }, oneOf: [['exact', 'prefix']] };

export const LOCAL_RATE_LIMIT_SPEC: ObjectSchema = {
  type: 'object',
  props: {
    selector: { type: 'object', props: { matchLabels: { type: 'map', values: STRING } } },
    limits: {
      type: 'array',
      maxItems: 64,
      items: {
        type: 'object',
        props: {
          name: STRING,
          match: { type: 'object', props: { method: STRING, path: PATH_MATCH } },
          requests: { type: 'integer', min: 1, max: 1_000_000_000 },
          per: { type: 'string', duration: 'min1ms' },
          burst: { type: 'integer', min: 1, max: 1_000_000_000 },
        },
        required: ['requests', 'per'],
      },
    },
  },
  required: ['limits'],
};

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);

export function validateLocalRateLimit(spec: Record<string, unknown>): FieldError[] {
  const f = new Findings();
  if (asList(spec.limits).length === 0) f.report('spec.limits', 'at least one limit is required');
  checkLabels(f, asObj(spec.selector)?.matchLabels, 'spec.selector.matchLabels');
  const names = new Set<string>();
  for (const [l, p] of eachObj(spec.limits, 'spec.limits')) {
    const name = asStr(l.name);
    if (name !== undefined) {
      if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name)) f.report(field(p, 'name'), 'must be a DNS-1123 label such as writes');
      if (names.has(name)) f.report(field(p, 'name'), `"${name}" is used twice`);
      names.add(name);
    }
    const per = asStr(l.per);
    if (per !== undefined) f.report(field(p, 'per'), checkDuration(parseDuration(per), 'min1ms'));
    const requests = asNum(l.requests);
    const burst = asNum(l.burst);
    if (requests !== undefined && burst !== undefined && burst < requests) f.report(field(p, 'burst'), `must be at least requests (${requests}): the bucket holds what one interval adds`);
    const method = asStr(asObj(l.match)?.method);
    if (method !== undefined && !METHODS.has(method)) f.report(field(field(p, 'match'), 'method'), `"${method}" is not an HTTP method`);
    const path = asObj(asObj(l.match)?.path);
    for (const k of ['exact', 'prefix']) {
      const v = asStr(path?.[k]);
      if (v !== undefined && !v.startsWith('/')) f.report(field(field(field(p, 'match'), 'path'), k), 'must start with /');
    }
  }
  return f.errors;
}

export interface LocalRateLimitSpec {
  selector?: { matchLabels?: Record<string, string> };
  limits: {
    name?: string;
    match?: { method?: string; path?: { exact?: string; prefix?: string } };
    requests: number;
    per: string;
    burst?: number;
  }[];
}
