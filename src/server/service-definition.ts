import { fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { PolicydError, errorMessage } from '../errors/policyd-error.js';

/**
 * A request message as it came off the wire, decoded only when its handler runs: a call refused
 * before that (authorization, admission) costs no decoding. A message that does not decode is the
 * caller's INVALID_ARGUMENT, where a throwing deserializer would make grpc-js answer INTERNAL.
 */
export class EncodedRequest {
  constructor(
    readonly schema: DescMessage,
    readonly bytes: Buffer,
  ) {}

  decode(): unknown {
    try {
      return fromBinary(this.schema, this.bytes);
    } catch (err) {
      throw new PolicydError(
        'INVALID_REQUEST',
        `the request is not a valid ${this.schema.typeName} message (${errorMessage(err)}); encode it with proto/policyengine/v1/engine.proto`,
      );
    }
  }
}

/**
 * A grpc-js service definition built from a protobuf-es descriptor, so the wire types come from
 * proto/ alone. Server and test clients both use it; `lazyRequests` (the daemon's own service) hands
 * handlers EncodedRequests instead of decoded messages.
 */
export function serviceDefinition<T extends GenServiceMethods>(
  service: GenService<T>,
  { lazyRequests = false }: { lazyRequests?: boolean } = {},
): ServiceDefinition {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    const input = method.input as DescMessage;
    const output = method.output as DescMessage;
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
      responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
      requestSerialize: (m) => Buffer.from(toBinary(input, m as MessageShape<DescMessage>)),
      requestDeserialize: lazyRequests ? (b: Buffer) => new EncodedRequest(input, b) : (b: Buffer) => fromBinary(input, b),
      responseSerialize: (m) => Buffer.from(toBinary(output, m as MessageShape<DescMessage>)),
      responseDeserialize: (b: Buffer) => fromBinary(output, b),
      originalName: method.localName,
    };
  }
  return definition as ServiceDefinition;
}
