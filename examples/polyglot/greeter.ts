// A gRPC service (port 50051, appProtocol grpc): the sidecars speak HTTP/2 to it and between them.
import * as grpc from '@grpc/grpc-js';
import { Greeter } from './greeter-api.ts';

const server = new grpc.Server();
server.addService(Greeter, {
  sayHello: (call: grpc.ServerUnaryCall<{ name?: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
    if (!call.request.name) return cb({ code: grpc.status.INVALID_ARGUMENT, details: 'name is required' });
    cb(null, { message: `Hello, ${call.request.name}! (from greeter)` });
  },
});
server.bindAsync(`127.0.0.1:${process.env.PORT ?? 50051}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
