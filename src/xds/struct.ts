// google.protobuf.Struct in its proto3 JSON mapping, both ways: `{ tlsMode: 'istio' }` rather than
// protobufjs's own `{ fields: { tlsMode: { stringValue: 'istio' } } }`. Resources are written as
// proto JSON (protos.ts), and Envoy's Structs (endpoint metadata, a transport_socket_match's
// `match`, node metadata) are written that way by everyone; without this protobufjs's fromObject
// would drop their fields in silence. Registered on protobufjs's wrappers before any Root is built.
import protobuf from 'protobufjs/light.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A JSON value as a google.protobuf.Value object (a nested object stays plain: it is a Struct, which this wrapper reads). */
function valueOf(v: unknown): object {
  if (v === null || v === undefined) return { nullValue: 0 };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(valueOf) } };
  return { structValue: v };
}

/** A decoded google.protobuf.Value object as JSON (a nested Struct is plain already). */
function jsonOf(v: any): Json {
  if (v === null || v === undefined) return null;
  if ('stringValue' in v) return v.stringValue;
  if ('numberValue' in v) return v.numberValue;
  if ('boolValue' in v) return v.boolValue;
  if ('listValue' in v) return (v.listValue?.values ?? []).map(jsonOf);
  if ('structValue' in v) return v.structValue ?? {};
  return null;
}

protobuf.wrappers['.google.protobuf.Struct'] = {
  fromObject(this: protobuf.Type, object: { [k: string]: any }): protobuf.Message {
    if (object instanceof protobuf.Message) return object;
    const fields = Object.fromEntries(Object.entries(object ?? {}).map(([k, v]) => [k, valueOf(v)]));
    return this.fromObject({ fields });
  },
  toObject(this: protobuf.Type, message: protobuf.Message, options?: protobuf.IConversionOptions): { [k: string]: any } {
    const o = this.toObject(message, options) as { fields?: Record<string, unknown> };
    return Object.fromEntries(Object.entries(o.fields ?? {}).map(([k, v]) => [k, jsonOf(v)]));
  },
};
