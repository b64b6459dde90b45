// The Greeter service's definition, shared by the server (greeter.ts) and the client (greet.ts).
// Messages are JSON, to keep the example free of generated code; the wire is ordinary gRPC.
import * as grpc from '@grpc/grpc-js';

const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()),
};

export const Greeter = {
  sayHello: {
    path: '/example.Greeter/SayHello',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
} as grpc.ServiceDefinition;

export const GreeterClient = grpc.makeGenericClientConstructor(Greeter, 'Greeter');
