// Envoy's xDS v3 protos, from the copies that ship inside @grpc/grpc-js-xds (deps/: envoy-api,
// xds, googleapis, protoc-gen-validate), loaded once per process.
//
// Both sides use one protobufjs Root: the control plane to encode resources and the ADS
// stream, the sidecar to decode them. Resources are handled as "proto JSON" objects with
// snake_case field names (keepCase) and `google.protobuf.Any` written as
// `{ '@type': 'type.googleapis.com/...', ...fields }`, which protobufjs packs and unpacks.
import protobuf from 'protobufjs/light.js';

import { TYPE } from './types.ts';
import './struct.ts'; // Struct as plain JSON, before the Root is built
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

const STREAM_OPTS: protobuf.IConversionOptions = { enums: String, longs: Number, defaults: false, bytes: Buffer as any };

export function encodeRequest(req: DiscoveryRequest): Buffer {
  const t = protoRoot().lookupType('envoy.service.discovery.v3.DiscoveryRequest');
  // node.metadata is a Struct: written and read as plain JSON (struct.ts).
  return Buffer.from(t.encode(t.fromObject(req)).finish());
}

export function decodeRequest(buf: Buffer): DiscoveryRequest {
  const t = protoRoot().lookupType('envoy.service.discovery.v3.DiscoveryRequest');
  const obj: any = t.toObject(t.decode(buf), STREAM_OPTS);
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
