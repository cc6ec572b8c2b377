import { create, fromBinary, type DescMessage, type MessageInitShape, type MessageShape, toBinary } from '@bufbuild/protobuf';
import {
  type ChannelCredentials,
  type Client,
  type ClientReadableStream,
  type ClientUnaryCall,
  credentials,
  Metadata,
  makeGenericClientConstructor,
  type ServiceDefinition,
  type ServiceError,
} from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { PolicydError } from './errors.js';
import {
  type EvaluateBatchRequestSchema,
  type EvaluateBatchResponse,
  type EvaluateRequestSchema,
  type EvaluateResponse,
  type ListPoliciesRequestSchema,
  type ListPoliciesResponse,
  type LoadPolicyRequestSchema,
  type LoadPolicyResponse,
  PolicyEngineService,
  type UnloadPolicyRequestSchema,
  type UnloadPolicyResponse,
} from './gen/policyengine/v1/engine_pb.js';

/** The grpc-js definition of PolicyEngineService, from the protobuf-es descriptors. */
function definition(): ServiceDefinition {
  const methods: Record<string, unknown> = {};
  for (const method of PolicyEngineService.methods) {
    const input = method.input as DescMessage;
    const output = method.output as DescMessage;
    methods[method.localName] = {
      path: `/${PolicyEngineService.typeName}/${method.name}`,
      requestStream: false,
      responseStream: method.methodKind === 'server_streaming',
      requestSerialize: (m: MessageShape<DescMessage>) => Buffer.from(toBinary(input, m)),
      requestDeserialize: (b: Buffer) => fromBinary(input, b),
      responseSerialize: (m: MessageShape<DescMessage>) => Buffer.from(toBinary(output, m)),
      responseDeserialize: (b: Buffer) => fromBinary(output, b),
      originalName: method.localName,
    };
  }
  return methods as ServiceDefinition;
}

const Constructor = makeGenericClientConstructor(definition(), PolicyEngineService.typeName);

export interface ClientOptions {
  /** Bearer token sent with every call (an admin or an evaluate token). */
  token?: string;
  /** TLS: PEM file paths; `cert` and `key` for mTLS. Default: plaintext (a unix socket or loopback). */
  tls?: { ca: string; cert?: string; key?: string };
  /** Any grpc-js credentials, instead of `tls`. */
  credentials?: ChannelCredentials;
}

/** One policy's outcome in an EvaluateBatch: its position in the request, and its response or error. */
export type BatchOutcome = { index: number } & ({ response: EvaluateResponse; error?: never } | { error: PolicydError; response?: never });

export interface CallOptions {
  /** The call's deadline, which bounds the evaluation in the daemon too. */
  deadlineMs?: number;
  /** Cancels the call (the daemon stops the evaluation and frees its worker). */
  signal?: AbortSignal;
  /** Extra metadata for this call, e.g. the W3C `traceparent` of the caller's span (the daemon's traces continue it). */
  metadata?: Record<string, string>;
}

function channelCredentials(options: ClientOptions): ChannelCredentials {
  if (options.credentials) return options.credentials;
  if (!options.tls) return credentials.createInsecure();
  const { ca, cert, key } = options.tls;
  return credentials.createSsl(readFileSync(ca), key ? readFileSync(key) : null, cert ? readFileSync(cert) : null);
}

/**
 * PolicyEngineService over gRPC: `host:port` (TLS with `tls`), or `unix:///path`. Every method
 * returns the protobuf-es response message, or rejects with a `PolicydError`.
 */
export class PolicyEngineClient {
  /** The underlying grpc-js client, for what this class does not cover. */
  readonly raw: Client;
  readonly #metadata = new Metadata();

  constructor(address: string, options: ClientOptions = {}) {
    if (options.token) this.#metadata.set('authorization', `Bearer ${options.token}`);
    this.raw = new Constructor(address, channelCredentials(options), {
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
    });
  }

  /** The generated method, the call's metadata and its grpc-js options (deadline). */
  #method<C>(method: string, options: CallOptions): [(...args: unknown[]) => C, Metadata, { deadline?: Date }] {
    const fn = (this.raw as unknown as Record<string, (...args: unknown[]) => C>)[method]!.bind(this.raw);
    let metadata = this.#metadata;
    if (options.metadata) {
      metadata = this.#metadata.clone();
      for (const [key, value] of Object.entries(options.metadata)) metadata.set(key, value);
    }
    return [fn, metadata, options.deadlineMs === undefined ? {} : { deadline: new Date(Date.now() + options.deadlineMs) }];
  }

  #call<Res>(method: string, request: unknown, options: CallOptions = {}): Promise<Res> {
    return new Promise((resolve, reject) => {
      if (options.signal?.aborted) return reject(options.signal.reason);
      const [fn, metadata, callOptions] = this.#method<ClientUnaryCall>(method, options);
      const call = fn(request, metadata, callOptions, (err: ServiceError | null, res: Res) =>
        err ? reject(new PolicydError(err)) : resolve(res),
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

  /**
   * Evaluates one material against several policies (EvaluateBatch; the policy input is built once):
   * yields each policy's outcome as soon as it finishes — `response`, or `error` for a policy that could
   * not be evaluated — with its `index` in `req.policies`. Throws a PolicydError when the call itself
   * fails. Leaving the loop early cancels the rest.
   */
  async *evaluateBatch(
    req: MessageInitShape<typeof EvaluateBatchRequestSchema>,
    options: CallOptions = {},
  ): AsyncGenerator<BatchOutcome, void, undefined> {
    if (options.signal?.aborted) throw options.signal.reason;
    const [fn, metadata, callOptions] = this.#method<ClientReadableStream<EvaluateBatchResponse>>('evaluateBatch', options);
    const stream = fn(create(PolicyEngineService.method.evaluateBatch.input, req), metadata, callOptions);
    const cancel = () => stream.cancel();
    options.signal?.addEventListener('abort', cancel, { once: true });
    try {
      for await (const m of stream as AsyncIterable<EvaluateBatchResponse>) {
        if (m.outcome.case === 'response') yield { index: m.index, response: m.outcome.value };
        else if (m.outcome.case === 'error') yield { index: m.index, error: PolicydError.fromStatus(m.outcome.value) };
      }
    } catch (err) {
      throw options.signal?.aborted ? options.signal.reason : new PolicydError(err as ServiceError);
    } finally {
      options.signal?.removeEventListener('abort', cancel);
      stream.cancel();
    }
  }

  listPolicies(req: MessageInitShape<typeof ListPoliciesRequestSchema> = {}, options?: CallOptions): Promise<ListPoliciesResponse> {
    return this.#call('listPolicies', create(PolicyEngineService.method.listPolicies.input, req), options);
  }

  unloadPolicy(req: MessageInitShape<typeof UnloadPolicyRequestSchema>, options?: CallOptions): Promise<UnloadPolicyResponse> {
    return this.#call('unloadPolicy', create(PolicyEngineService.method.unloadPolicy.input, req), options);
  }

  /**
   * Evaluates by digest on a replica that may not have the policy (stateless replicas): on
   * NOT_FOUND, loads it with `load` (a no-op where the content is already there) and retries once.
   */
  async evaluateOrLoad(
    load: MessageInitShape<typeof LoadPolicyRequestSchema>,
    req: MessageInitShape<typeof EvaluateRequestSchema>,
    options?: CallOptions,
  ): Promise<EvaluateResponse> {
    try {
      return await this.evaluate(req, options);
    } catch (err) {
      if (!(err instanceof PolicydError) || !err.notFound) throw err;
      await this.loadPolicy(load, options);
      return this.evaluate(req, options);
    }
  }

  close(): void {
    this.raw.close();
  }
}
