import { create } from '@bufbuild/protobuf';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { EvaluateResponseSchema, PolicyEngineService } from '../src/gen/policyengine/v1/engine_pb.js';
import { serviceDefinition } from '../src/server/service-definition.js';

/**
 * The transport ceiling: the same service and message types on grpc-js, answering Evaluate at once
 * with a fixed result. It decodes the request exactly as the daemon does. Prints its addresses.
 */
const response = create(EvaluateResponseSchema, {
  result: { violations: [], skipped: false },
  policyDigest: 'sha256:noop',
  evaluationId: 'noop',
});
const server = new Server({ 'grpc.max_receive_message_length': 64 * 2 ** 20 });
const fail = (_call: unknown, cb: (err: { code: number }) => void) => cb({ code: 12 });
server.addService(serviceDefinition(PolicyEngineService), {
  evaluate: (_call: unknown, cb: (err: null, res: unknown) => void) => cb(null, response),
  loadPolicy: fail,
  listPolicies: fail,
  unloadPolicy: fail,
});
const [tcp, unix] = [process.argv[2]!, process.argv[3]!];
const bind = (a: string) =>
  new Promise<number>((res, rej) => server.bindAsync(a, ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
const port = await bind(tcp);
await bind(unix);
process.stdout.write(`${JSON.stringify({ tcp: tcp.replace(/:0$/, `:${port}`), unix })}\n`);
