import { create, type MessageShape } from '@bufbuild/protobuf';
import { Metadata, credentials, makeGenericClientConstructor, type Client, type ClientUnaryCall, type ServiceError } from '@grpc/grpc-js';
import {
  ReferrerService,
  ReferrerServiceDiscoverPrivateRequestSchema,
  type ReferrerServiceDiscoverPrivateResponse,
} from '../gen/controlplane/v1/referrer_pb.js';
import { serviceDefinition } from '../server/service-definition.js';
import type { DiscoveryBackend } from './backend.js';
import { referrerItemJson } from './referrer-json.js';

const Constructor = makeGenericClientConstructor(serviceDefinition(ReferrerService), ReferrerService.typeName);

export interface GrpcDiscoveryOptions {
  /** host:port or unix:///path of a Chainloop control plane (or anything serving ReferrerService). */
  address: string;
  /** Sent as `authorization: Bearer <token>`, as the Chainloop CLI does. */
  token?: string;
  /** TLS to the control plane (system roots); off for loopback and unix sockets. */
  tls?: boolean;
  timeoutMs?: number;
}

/** Discovery through Chainloop's `controlplane.v1.ReferrerService/DiscoverPrivate`. */
export class GrpcDiscovery implements DiscoveryBackend {
  readonly #client: Client;

  constructor(private readonly options: GrpcDiscoveryOptions) {
    this.#client = new Constructor(options.address, options.tls ? credentials.createSsl() : credentials.createInsecure());
  }

  discover(digest: string, kind: string, signal: AbortSignal): Promise<string | null> {
    const metadata = new Metadata();
    if (this.options.token) metadata.set('authorization', `Bearer ${this.options.token}`);
    const request = create(ReferrerServiceDiscoverPrivateRequestSchema, { digest, kind });
    const deadline = new Date(Date.now() + (this.options.timeoutMs ?? 10_000));
    return new Promise((resolve) => {
      const call = (this.#client as unknown as Record<string, (...args: unknown[]) => ClientUnaryCall>).discoverPrivate!.call(
        this.#client,
        request,
        metadata,
        { deadline },
        (err: ServiceError | null, res: MessageShape<typeof ReferrerService.method.discoverPrivate.output> | null) =>
          resolve(err || !res ? null : referrerItemJson((res as ReferrerServiceDiscoverPrivateResponse).result)),
      );
      signal.addEventListener('abort', () => call.cancel(), { once: true });
    });
  }

  close(): void {
    this.#client.close();
  }
}
