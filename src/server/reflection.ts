import { create, toBinary } from '@bufbuild/protobuf';
import type { DescFile } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { loadFileDescriptorSetFromBuffer } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import type { Server } from '@grpc/grpc-js';

function withDependencies(file: DescFile, into: Map<string, DescFile>): void {
  for (const dep of file.dependencies) withDependencies(dep, into);
  into.set(file.name, file);
}

/**
 * Server reflection (grpcurl, Postman, grpc-go's reflection client) from the same generated
 * descriptors the service uses.
 */
export function addReflection(server: Server, files: DescFile[]): void {
  const all = new Map<string, DescFile>();
  for (const f of files) withDependencies(f, all);
  const set = create(FileDescriptorSetSchema, { file: [...all.values()].map((f) => f.proto) });
  const definition = loadFileDescriptorSetFromBuffer(Buffer.from(toBinary(FileDescriptorSetSchema, set)));
  new ReflectionService(definition).addToServer(server);
}
