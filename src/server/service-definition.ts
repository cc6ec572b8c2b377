import { fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';

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
      requestDeserialize: (b: Buffer) => fromBinary(input, b),
      responseSerialize: (m) => Buffer.from(toBinary(output, m as MessageShape<DescMessage>)),
      responseDeserialize: (b: Buffer) => fromBinary(output, b),
      originalName: method.localName,
    };
  }
  return definition as ServiceDefinition;
}
