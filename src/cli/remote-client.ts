import {
  Metadata,
  credentials,
  makeGenericClientConstructor,
  type ChannelCredentials,
  type Client,
  type ClientUnaryCall,
  type ServiceError,
} from '@grpc/grpc-js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import {
  PolicyEngineService,
  type EvaluateRequestSchema,
  type EvaluateResponse,
  type ListPoliciesRequestSchema,
  type ListPoliciesResponse,
  type LoadPolicyRequestSchema,
  type LoadPolicyResponse,
  type UnloadPolicyRequestSchema,
  type UnloadPolicyResponse,
} from '../gen/policyengine/v1/engine_pb.js';
import { create } from '@bufbuild/protobuf';
import { serviceDefinition } from '../server/service-definition.js';

const Constructor = makeGenericClientConstructor(serviceDefinition(PolicyEngineService), PolicyEngineService.typeName);

export interface CallOptions {
  deadlineMs?: number;
  /** Cancels the call (the server sees CANCELLED). */
  signal?: AbortSignal;
}

/** A promise-returning PolicyEngineService client over real gRPC (TCP `host:port` or `unix:///path`). */
export class PolicyEngineClient {
  readonly raw: Client;

  readonly #metadata = new Metadata();

  constructor(address: string, options: { token?: string; credentials?: ChannelCredentials } = {}) {
    if (options.token) this.#metadata.set('authorization', `Bearer ${options.token}`);
    this.raw = new Constructor(address, options.credentials ?? credentials.createInsecure(), {
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
    });
  }

  #call<Res>(method: string, request: unknown, options: CallOptions = {}): Promise<Res> {
    const deadline = options.deadlineMs === undefined ? undefined : new Date(Date.now() + options.deadlineMs);
    return new Promise((resolve, reject) => {
      const fn = (this.raw as unknown as Record<string, (...args: unknown[]) => ClientUnaryCall>)[method]!;
      const call = fn.call(this.raw, request, this.#metadata, deadline ? { deadline } : {}, (err: ServiceError | null, res: Res) =>
        err ? reject(err) : resolve(res),
      );
      options.signal?.addEventListener('abort', () => call.cancel(), { once: true });
    });
  }

  loadPolicy(req: MessageInitShape<typeof LoadPolicyRequestSchema>, options?: CallOptions): Promise<LoadPolicyResponse> {
    return this.#call('loadPolicy', create(PolicyEngineService.method.loadPolicy.input, req), options);
  }

  evaluate(req: MessageInitShape<typeof EvaluateRequestSchema>, options?: CallOptions): Promise<EvaluateResponse> {
    return this.#call('evaluate', create(PolicyEngineService.method.evaluate.input, req), options);
  }

  listPolicies(req: MessageInitShape<typeof ListPoliciesRequestSchema> = {}, options?: CallOptions): Promise<ListPoliciesResponse> {
    return this.#call('listPolicies', create(PolicyEngineService.method.listPolicies.input, req), options);
  }

  unloadPolicy(req: MessageInitShape<typeof UnloadPolicyRequestSchema>, options?: CallOptions): Promise<UnloadPolicyResponse> {
    return this.#call('unloadPolicy', create(PolicyEngineService.method.unloadPolicy.input, req), options);
  }

  close(): void {
    this.raw.close();
  }
}
