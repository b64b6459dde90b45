// Istio's Telemetry (telemetry.istio.io v1 and v1alpha1, one schema): its shape, transcribed from
// crd-all.gen.yaml (istio/istio 86c9f01f), the CRD's CEL rules, and Istio's webhook rules
// (ValidateTelemetry in pkg/config/validation/validation.go; the access log filter must parse as
// CEL, validation_istiod.go). Messages are ours; the rules are Istio's. What Weft applies of it is
// support.ts's to say (telemetrySupport); which Telemetries apply to a workload, telemetry-select.ts.

import type { FieldError } from './types.ts';
import { field, key, type ArraySchema, type ObjectSchema, type Schema, type StringSchema } from './schema.ts';
import { Findings, asObj, asStr, eachObj, entriesOf } from './common.ts';
import { WORKLOAD_PICKER, checkWorkloadPicker } from './authorizationpolicy.ts';
import { parseDuration } from './rules.ts';
import { celSyntaxError } from './cel.ts';

const STRING: StringSchema = { type: 'string' };
const WRAPPED_BOOL: Schema = { type: 'boolean', nullable: true };
const MODE: StringSchema = { type: 'string', enum: ['CLIENT_AND_SERVER', 'CLIENT', 'SERVER'] };
const PROVIDERS: ArraySchema = { type: 'array', items: { type: 'object', props: { name: { type: 'string', minLength: 1 } }, required: ['name'] } };

/** The Istio standard metrics a metrics override can name (MetricSelector.IstioMetric). */
export const ISTIO_METRICS = [
  'ALL_METRICS',
  'REQUEST_COUNT',
  'REQUEST_DURATION',
  'REQUEST_SIZE',
  'RESPONSE_SIZE',
  'TCP_OPENED_CONNECTIONS',
  'TCP_CLOSED_CONNECTIONS',
  'TCP_SENT_BYTES',
  'TCP_RECEIVED_BYTES',
  'GRPC_REQUEST_MESSAGES',
  'GRPC_RESPONSE_MESSAGES',
] as const;

/** Each of them (but ALL_METRICS) -> its name in Istio's stats filter and, after istio_, in Prometheus (pilot's metricToPrometheusMetric). */
export const PROMETHEUS_METRIC: Readonly<Record<string, string>> = {
  REQUEST_COUNT: 'requests_total',
  REQUEST_DURATION: 'request_duration_milliseconds',
  REQUEST_SIZE: 'request_bytes',
  RESPONSE_SIZE: 'response_bytes',
  TCP_OPENED_CONNECTIONS: 'tcp_connections_opened_total',
  TCP_CLOSED_CONNECTIONS: 'tcp_connections_closed_total',
  TCP_SENT_BYTES: 'tcp_sent_bytes_total',
  TCP_RECEIVED_BYTES: 'tcp_received_bytes_total',
  GRPC_REQUEST_MESSAGES: 'request_messages_total',
  GRPC_RESPONSE_MESSAGES: 'response_messages_total',
};

const ACCESS_LOGGING: ObjectSchema = {
  type: 'object',
  props: {
    match: { type: 'object', props: { mode: MODE } },
    providers: PROVIDERS,
    disabled: WRAPPED_BOOL,
    filter: { type: 'object', props: { expression: STRING } },
  },
};

const METRICS: ObjectSchema = {
  type: 'object',
  props: {
    providers: PROVIDERS,
    overrides: {
      type: 'array',
      items: {
        type: 'object',
        props: {
          match: { type: 'object', props: { metric: { type: 'string', enum: ISTIO_METRICS }, customMetric: { type: 'string', minLength: 1 }, mode: MODE }, oneOf: [['metric', 'customMetric']] },
          disabled: WRAPPED_BOOL,
          tagOverrides: { type: 'map', values: { type: 'object', props: { operation: { type: 'string', enum: ['UPSERT', 'REMOVE'] }, value: STRING } } },
        },
      },
    },
    reportingInterval: STRING,
  },
};

const NAMED_TAG: ObjectSchema = { type: 'object', props: { name: { type: 'string', minLength: 1 }, defaultValue: STRING }, required: ['name'] };
const CUSTOM_TAG: ObjectSchema = {
  type: 'object',
  props: {
    literal: { type: 'object', props: { value: { type: 'string', minLength: 1 } }, required: ['value'] },
    environment: NAMED_TAG,
    header: NAMED_TAG,
    formatter: { type: 'object', props: { value: { type: 'string', minLength: 1 } }, required: ['value'] },
  },
  oneOf: [['literal', 'environment', 'header', 'formatter']],
};

const TRACING: ObjectSchema = {
  type: 'object',
  props: {
    match: { type: 'object', props: { mode: MODE } },
    providers: PROVIDERS,
    randomSamplingPercentage: { type: 'number', min: 0, max: 100, nullable: true },
    disableSpanReporting: WRAPPED_BOOL,
    customTags: { type: 'map', values: CUSTOM_TAG },
    useRequestIdForTraceSampling: WRAPPED_BOOL,
    enableIstioTags: WRAPPED_BOOL,
    disableContextPropagation: WRAPPED_BOOL,
  },
};

export const TELEMETRY_SPEC: ObjectSchema = {
  type: 'object',
  props: {
    ...WORKLOAD_PICKER,
    tracing: { type: 'array', items: TRACING },
    metrics: { type: 'array', items: METRICS },
    accessLogging: { type: 'array', items: ACCESS_LOGGING },
  },
};

const ONE_MS = 1_000_000n;

export function validateTelemetry(spec: Record<string, unknown>): FieldError[] {
  const f = new Findings();
  checkWorkloadPicker(f, spec);
  for (const [m, p] of eachObj(spec.metrics, 'spec.metrics')) {
    const interval = asStr(m.reportingInterval);
    // CEL: duration(self) >= duration('1ms').
    if (interval !== undefined) {
      const nanos = parseDuration(interval);
      if (nanos === undefined || nanos < ONE_MS) f.report(field(p, 'reportingInterval'), 'must be a valid duration greater than 1ms');
    }
    for (const [o, op] of eachObj(m.overrides, field(p, 'overrides'))) {
      for (const [name, t] of entriesOf(o.tagOverrides)) {
        const tag = asObj(t);
        const tp = key(field(op, 'tagOverrides'), name);
        if (!tag) continue;
        const value = asStr(tag.value);
        // CEL: "value must be set when operation is UPSERT", "value must not be set when operation is REMOVE".
        if (tag.operation === 'UPSERT' && !value) f.report(tp, 'value must be set when operation is UPSERT');
        if (tag.operation === 'REMOVE' && tag.value !== undefined && tag.value !== null) f.report(tp, 'value must not be set when operation is REMOVE');
      }
    }
  }
  // The webhook: "tag name may not be empty".
  for (const [t, p] of eachObj(spec.tracing, 'spec.tracing')) {
    for (const [name] of entriesOf(t.customTags)) if (name === '') f.report(key(field(p, 'customTags'), name), 'tag name may not be empty');
  }
  for (const [l, p] of eachObj(spec.accessLogging, 'spec.accessLogging')) {
    const filter = asObj(l.filter);
    // Istio's webhook: a filter's expression must parse as CEL (cel.NewEnv().Parse); none is "", which does not.
    const expression = filter ? (asStr(filter.expression) ?? '') : undefined;
    if (expression !== undefined) f.report(`${p}.filter.expression`, celSyntaxError(expression));
  }
  return f.errors;
}
