// Envoy's xDS v3 protos, from the copies that ship inside @grpc/grpc-js-xds (deps/: envoy-api,
// xds, googleapis, protoc-gen-validate), loaded once per process.
//
// Both sides use one protobufjs Root: the control plane to encode resources and the ADS
// stream, the sidecar to decode them. Resources are handled as "proto JSON" objects with
// snake_case field names (keepCase) and `google.protobuf.Any` written as
// `{ '@type': 'type.googleapis.com/...', ...fields }`, which protobufjs packs and unpacks.
import protobuf from 'protobufjs/light.js';

import { TYPE } from './types.ts';
export * from './types.ts';

// The descriptor is generated from the .proto files by src/xds/gen-protos.ts and pruned to the
// types Weft uses; protobufjs/light loads it without the .proto parser. Both save memory in every
// sidecar (docs/performance.md).
let cached: protobuf.Root | undefined;

/** The loaded Root, built once on first use. */
export function protoRoot(): protobuf.Root {
  if (cached) return cached;
  // Read and parsed here, not require()d: require keeps the parsed descriptor in its cache for the
  // life of the process, beside the Root built from it.
  const fs = process.getBuiltinModule('node:fs');
  const json = JSON.parse(fs.readFileSync(new URL('./envoy-protos.json', import.meta.url), 'utf8')) as protobuf.INamespace;
  cached = protobuf.Root.fromJSON(json);
  cached.resolveAll();
  return cached;
}

function lookupType(typeUrl: string): protobuf.Type {
  const name = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
  return protoRoot().lookupType(name);
}

const TO_OBJECT: protobuf.IConversionOptions = { json: true, enums: String, longs: Number, defaults: false };

/**
 * Proto JSON object -> bytes. protobufjs's fromObject drops fields it does not know, so the
 * translate tests round-trip every generated resource (encode, decode, compare) to catch typos.
 */
export function encode(typeUrl: string, obj: object): Uint8Array {
  const t = lookupType(typeUrl);
  return t.encode(t.fromObject(obj)).finish();
}

/** Bytes -> proto JSON object (Any unpacked to '@type' form). */
export function decode(typeUrl: string, bytes: Uint8Array): Record<string, any> {
  const t = lookupType(typeUrl);
  return t.toObject(t.decode(bytes), TO_OBJECT);
}

// ---- the ADS stream messages ---------------------------------------------------------------

export interface Node {
  id: string;
  cluster?: string;
  metadata?: Record<string, unknown>;
  user_agent_name?: string;
}

export interface DiscoveryRequest {
  version_info?: string;
  node?: Node;
  resource_names?: string[];
  type_url: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}

export interface DiscoveryResponse {
  version_info: string;
  resources: { type_url: string; value: Uint8Array }[];
  type_url: string;
  nonce: string;
}

// google.protobuf.Struct <-> plain JSON, for node.metadata. protobufjs bundles the well-known
// types with camelCase field names, whatever keepCase says.
function toStruct(obj: Record<string, unknown>): object {
  const value = (v: unknown): object => {
    if (v === null || v === undefined) return { nullValue: 0 };
    if (typeof v === 'number') return { numberValue: v };
    if (typeof v === 'boolean') return { boolValue: v };
    if (typeof v === 'string') return { stringValue: v };
    if (Array.isArray(v)) return { listValue: { values: v.map(value) } };
    return { structValue: toStruct(v as Record<string, unknown>) };
  };
  return { fields: Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, value(v)])) };
}

function fromStruct(s: any): Record<string, unknown> {
  const value = (v: any): unknown => {
    if (v == null) return null;
    if ('stringValue' in v) return v.stringValue;
    if ('numberValue' in v) return v.numberValue;
    if ('boolValue' in v) return v.boolValue;
    if ('listValue' in v) return (v.listValue?.values ?? []).map(value);
    if ('structValue' in v) return fromStruct(v.structValue);
    return null;
  };
  return Object.fromEntries(Object.entries(s?.fields ?? {}).map(([k, v]) => [k, value(v)]));
}

const STREAM_OPTS: protobuf.IConversionOptions = { enums: String, longs: Number, defaults: false, bytes: Buffer as any };

export function encodeRequest(req: DiscoveryRequest): Buffer {
  const t = protoRoot().lookupType('envoy.service.discovery.v3.DiscoveryRequest');
  const obj: any = { ...req };
  if (req.node) obj.node = { ...req.node, metadata: req.node.metadata ? toStruct(req.node.metadata) : undefined };
  return Buffer.from(t.encode(t.fromObject(obj)).finish());
}

export function decodeRequest(buf: Buffer): DiscoveryRequest {
  const t = protoRoot().lookupType('envoy.service.discovery.v3.DiscoveryRequest');
  const obj: any = t.toObject(t.decode(buf), STREAM_OPTS);
  if (obj.node) obj.node = { ...obj.node, metadata: obj.node.metadata ? fromStruct(obj.node.metadata) : undefined };
  obj.type_url ??= '';
  return obj as DiscoveryRequest;
}

export function encodeResponse(res: DiscoveryResponse): Buffer {
  const t = protoRoot().lookupType('envoy.service.discovery.v3.DiscoveryResponse');
  return Buffer.from(t.encode(t.fromObject(res)).finish());
}

export function decodeResponse(buf: Buffer): DiscoveryResponse {
  const t = protoRoot().lookupType('envoy.service.discovery.v3.DiscoveryResponse');
  const obj: any = t.toObject(t.decode(buf), STREAM_OPTS);
  obj.resources ??= [];
  obj.version_info ??= '';
  obj.nonce ??= '';
  return obj as DiscoveryResponse;
}
