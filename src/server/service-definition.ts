import { fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';

/**
 * What the server's deserializer returns for bytes that are not a valid request message: the handler
 * answers INVALID_ARGUMENT with this reason, where a throwing deserializer makes grpc-js answer INTERNAL.
 */
export class UndecodableRequest {
  constructor(
    readonly typeName: string,
    readonly reason: string,
  ) {}
}

function decodeRequest(input: DescMessage, bytes: Buffer): unknown {
  try {
    return fromBinary(input, bytes);
  } catch (err) {
    return new UndecodableRequest(input.typeName, err instanceof Error ? err.message : String(err));
  }
}

/**
 * A grpc-js service definition built from a protobuf-es descriptor, so the wire types come from
 * proto/ alone. Server and test clients both use it.
 */
export function serviceDefinition<T extends GenServiceMethods>(service: GenService<T>): ServiceDefinition {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    const input = method.input as DescMessage;
    const output = method.output as DescMessage;
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
      responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
      requestSerialize: (m) => Buffer.from(toBinary(input, m as MessageShape<DescMessage>)),
      requestDeserialize: (b: Buffer) => decodeRequest(input, b),
      responseSerialize: (m) => Buffer.from(toBinary(output, m as MessageShape<DescMessage>)),
      responseDeserialize: (b: Buffer) => fromBinary(output, b),
      originalName: method.localName,
    };
  }
  return definition as ServiceDefinition;
}
