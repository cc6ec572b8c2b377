import { credentials, loadPackageDefinition, makeGenericClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { service as healthService } from 'grpc-health-check';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const HealthClient = makeGenericClientConstructor(healthService as never, 'grpc.health.v1.Health');

/** grpc.health.v1 Check for one service name ("" = the whole server). */
export function checkHealth(address: string, service: string): Promise<string> {
  const client = new HealthClient(address, credentials.createInsecure());
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, (...args: unknown[]) => unknown>).check!(
      { service },
      (err: ServiceError | null, res: { status: string }) => {
        client.close();
        return err ? reject(err) : resolve(res.status);
      },
    );
  });
}

const reflectionProto = join(
  dirname(createRequire(import.meta.url).resolve('@grpc/reflection')),
  '../proto/grpc/reflection/v1/reflection.proto',
);

/** The services a server lists through grpc.reflection.v1 (what grpcurl does first). */
export function reflectedServices(address: string): Promise<string[]> {
  const pkg = loadPackageDefinition(loadSync(reflectionProto, { keepCase: true })) as any;
  const client = new pkg.grpc.reflection.v1.ServerReflection(address, credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const call = client.ServerReflectionInfo();
    call.on('data', (res: { list_services_response?: { service: { name: string }[] } }) => {
      resolve((res.list_services_response?.service ?? []).map((s) => s.name).sort());
      call.end();
      client.close();
    });
    call.on('error', reject);
    call.write({ list_services: '' });
  });
}
