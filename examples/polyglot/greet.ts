// A gRPC client: `weft exec client -- node examples/polyglot/greet.ts NAME`. grpc-js honours
// http_proxy, which `weft exec` sets: it sends CONNECT greeter:50051 to the client's sidecar and
// speaks HTTP/2 inside the tunnel, which the sidecar routes like any other gRPC request.
import * as grpc from '@grpc/grpc-js';
import { GreeterClient } from './greeter-api.ts';

const client = new GreeterClient('greeter:50051', grpc.credentials.createInsecure());
client.sayHello({ name: process.argv[2] ?? 'mesh' }, { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null, reply: { message: string }) => {
  if (err) {
    console.error(`gRPC error ${err.code} (${grpc.status[err.code]}): ${err.details}`);
    process.exitCode = 1;
  } else console.log(reply.message);
  client.close();
});
