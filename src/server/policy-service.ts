import { create, type JsonObject } from '@bufbuild/protobuf';
import { DurationSchema } from '@bufbuild/protobuf/wkt';
import type {
  Metadata,
  sendUnaryData,
  ServerUnaryCall,
  ServerWritableStream,
  ServiceError,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import {
  EvaluateBatchResponseSchema,
  EvaluateResponseSchema,
  Isolation,
  ListPoliciesResponseSchema,
  PolicyEngineService,
  LoadPolicyResponseSchema,
  LogLevel,
  PolicySchema,
  UnloadPolicyResponseSchema,
  ViolationSchema,
  type EvaluateBatchRequest,
  type EvaluateBatchResponse,
  type EvaluateOptions,
  type EvaluateRequest,
  type EvaluateResponse,
  type Material,
  type ListPoliciesResponse,
  type LoadPolicyRequest,
  type LoadPolicyResponse,
  type Policy,
  type UnloadPolicyRequest,
  type UnloadPolicyResponse,
} from '../gen/policyengine/v1/engine_pb.js';
import { PolicydError } from '../errors/policyd-error.js';
import { DEFAULTS } from '../config/defaults.js';
import type {
  Caller,
  EvaluationOutcome,
  EvaluationRequest,
  GuestLogLevel,
  LoadResult,
  PolicyEngine,
  RequestedLimits,
} from '../engine/policy-engine.js';
import { SharedEvaluableInput, type MaterialInput } from '../materials/evaluable.js';
import { SpanKind, contextFromMetadata, endSpan, trace, type Context, type Tracer } from '../telemetry/tracing.js';
import type { PolicySource } from '../policies/loader.js';
import { maxMemoryBytes, type LoadedPolicy } from '../policies/registry.js';
import type { EncodedRequest } from './service-definition.js';
import { statusOf, toServiceError } from './status.js';

const CLIENT_CANCELLED = new Error('the client cancelled the call');

const LOG_LEVELS: Record<GuestLogLevel, LogLevel> = {
  trace: LogLevel.TRACE,
  debug: LogLevel.DEBUG,
  info: LogLevel.INFO,
  warn: LogLevel.WARN,
  error: LogLevel.ERROR,
};

export function policyMessage(p: LoadedPolicy): Policy {
  return create(PolicySchema, {
    name: p.name,
    digest: p.digest,
    description: p.description,
    findingType: p.findingType,
    limits: { timeoutMs: p.limits.timeoutMs, maxMemoryBytes: BigInt(maxMemoryBytes(p.limits)) },
    isolation: Isolation.FRESH_INSTANCE,
    scripts: p.scripts.map((s) => ({ kind: s.kind, digest: s.digest, sizeBytes: BigInt(s.sizeBytes) })),
    inputs: p.inputs.map((i) => ({
      name: i.name,
      description: i.description ?? '',
      required: i.required ?? false,
      default: i.default ?? '',
    })),
  });
}

function loadSource(req: LoadPolicyRequest): PolicySource {
  switch (req.source.case) {
    case 'policyDocument':
      return { type: 'document', bytes: req.source.value, scripts: req.scripts };
    case 'ref':
      return { type: 'ref', ref: req.source.value, scripts: req.scripts };
    case 'wasmModule':
      return { type: 'module', bytes: req.source.value, name: req.name, kinds: req.kinds };
    default:
      throw new PolicydError('INVALID_REQUEST', 'LoadPolicyRequest needs a source: policy_document, ref or wasm_module');
  }
}

function evaluateResponse(o: EvaluationOutcome): EvaluateResponse {
  const seconds = Math.floor(o.durationMs / 1000);
  return create(EvaluateResponseSchema, {
    result: {
      violations: o.result.violations.map((v) =>
        create(ViolationSchema, {
          subject: v.subject,
          message: v.message,
          finding: v.finding as JsonObject | undefined,
        }),
      ),
      skipped: o.result.skipped,
      skipReasons: o.result.skipReasons,
      ignored: o.result.ignored,
    },
    policyDigest: o.policy.digest,
    policyName: o.policy.name,
    evaluationId: o.evaluationId,
    duration: create(DurationSchema, { seconds: BigInt(seconds), nanos: Math.round((o.durationMs - seconds * 1000) * 1e6) }),
    logs: o.logs.map((l) => ({ level: LOG_LEVELS[l.level], message: l.message })),
    rawResults: o.raw,
  });
}

type Call<Req> = ServerUnaryCall<Req, unknown> | ServerWritableStream<Req, unknown>;
type Implementation<Req, C extends Call<Req>, Res> = (req: Req, call: C, trace: Context | undefined) => Promise<Res> | Res;

/**
 * Runs one call's implementation: decodes its request (one that does not decode is refused), errors
 * become rich gRPC statuses (never an unhandled rejection), and with a tracer the call is a SERVER
 * span continuing the caller's `traceparent`. `finish` answers the call.
 */
function serve<Req, C extends Call<Req>, Res>(
  method: string,
  tracer: Tracer | undefined,
  call: C,
  fn: Implementation<Req, C, Res>,
  finish: (error: Partial<ServiceError> | null, res?: Res) => void,
): void {
  const parent = tracer && contextFromMetadata(call.metadata);
  const span = tracer?.startSpan(
    `${SERVICE}/${method}`,
    { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.service': SERVICE, 'rpc.method': method } },
    parent,
  );
  Promise.resolve()
    .then(() => {
      const req = (call.request as unknown as EncodedRequest).decode() as Req;
      return fn(req, call, span && trace.setSpan(parent!, span));
    })
    .then(
      (res) => {
        if (span) endSpan(span.setAttribute('rpc.grpc.status_code', 0));
        finish(null, res);
      },
      (err: unknown) => {
        const error = toServiceError(err);
        if (span) endSpan(span.setAttribute('rpc.grpc.status_code', error.code ?? 2), err);
        finish(error);
      },
    );
}

function unary<Req, Res>(
  method: string,
  tracer: Tracer | undefined,
  fn: Implementation<Req, ServerUnaryCall<Req, Res>, Res>,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) =>
    serve(method, tracer, call, fn, (error, res) => (error ? callback(error as never, null) : callback(null, res!)));
}

/** A server-streaming call: `fn` writes the messages; its end (or error) ends the stream with a status. */
function serverStream<Req, Res>(
  method: string,
  tracer: Tracer | undefined,
  fn: Implementation<Req, ServerWritableStream<Req, Res>, void>,
): (call: ServerWritableStream<Req, Res>) => void {
  return (call) => serve(method, tracer, call, fn, (error) => (error ? call.emit('error', error) : call.end()));
}

const SERVICE = PolicyEngineService.typeName;

/** Milliseconds until the client's deadline, if it set one. */
function deadlineMs(call: Call<unknown>): number | undefined {
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) && at > 0 ? Math.max(1, at - Date.now()) : undefined;
}

/** Policies one EvaluateBatch may name: as many as a daemon may hold by default. */
const MAX_BATCH_POLICIES = DEFAULTS.maxPolicies;

/** Keeps what LoadPolicy and UnloadPolicy change, so a restarted daemon has it (the daemon's state directory). */
export interface PolicyStore {
  save(loaded: LoadResult, limits: RequestedLimits): Promise<void>;
  forget(name: string, digest: string): Promise<void>;
}

export interface ServiceOptions {
  /** False once the daemon drains. */
  accepting: () => boolean;
  store?: PolicyStore;
  /** Makes a SERVER span of every call (src/telemetry/tracing.ts). */
  tracer?: Tracer;
  /** Who a call comes from, as authorization saw it; passed to the engine for its decision log. */
  identify?: (metadata: Metadata, peer: PeerCertificate | undefined) => Caller;
}

/**
 * What an evaluation asks of the engine besides its policy and args, from the call: the material,
 * the options, the caller's deadline and cancellation, the trace, and who the caller is.
 */
function evaluationOf(
  call: Call<unknown>,
  message: string,
  material: Material | undefined,
  options: EvaluateOptions | undefined,
  traceContext: Context | undefined,
  identify: ServiceOptions['identify'],
): Omit<EvaluationRequest, 'policy'> & { material: MaterialInput; signal: AbortSignal } {
  if (!material) throw new PolicydError('INVALID_REQUEST', `${message}.material is required`);
  const cancelled = new AbortController();
  // With a reason: the default one is a DOMException, whose construction showed in the profiles.
  call.on('cancelled', () => cancelled.abort(CLIENT_CANCELLED));
  return {
    material: {
      content: material.content,
      kind: material.kind,
      name: material.name,
      annotations: material.annotations,
      prepared: material.prepared,
    },
    timeoutMs: options?.timeoutMs || undefined,
    deadlineMs: deadlineMs(call),
    includeRawData: options?.includeRawData,
    allowedHostnames: options?.allowedHostnames,
    signal: cancelled.signal,
    traceContext,
    // Worked out only if the decision log writes it: a token's fingerprint costs a hash per call.
    caller: identify && (() => identify(call.metadata, call.getAuthContext().sslPeerCertificate)),
  };
}

/** Runs `fn` over `items`, at most `limit` at a time, starting no more once `signal` is aborted. */
async function eachConcurrently<T>(
  items: T[],
  limit: number,
  signal: AbortSignal,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length && !signal.aborted) {
      const index = next++;
      await fn(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/** Authorization happens before these handlers, in the server's interceptor (authorization.ts, gate.ts). */
export function policyServiceImplementation(engine: PolicyEngine, options: ServiceOptions): UntypedServiceImplementation {
  const guard = () => {
    if (!options.accepting()) throw new PolicydError('SHUTTING_DOWN', 'the daemon is shutting down; retry on another replica');
  };
  const { tracer } = options;

  return {
    loadPolicy: unary<LoadPolicyRequest, LoadPolicyResponse>('LoadPolicy', tracer, async (req) => {
      guard();
      const limits = { timeoutMs: req.limits?.timeoutMs, maxMemoryBytes: Number(req.limits?.maxMemoryBytes ?? 0n) };
      const loaded = await engine.load(loadSource(req), limits);
      await options.store?.save(loaded, limits);
      return create(LoadPolicyResponseSchema, { policy: policyMessage(loaded.policy), alreadyLoaded: loaded.alreadyLoaded });
    }),
    evaluate: unary<EvaluateRequest, EvaluateResponse>('Evaluate', tracer, async (req, call, traceContext) => {
      guard();
      const outcome = await engine.evaluate({
        ...evaluationOf(call, 'EvaluateRequest', req.material, req.options, traceContext, options.identify),
        policy: req.policy,
        args: req.args,
      });
      return evaluateResponse(outcome);
    }),
    evaluateBatch: serverStream<EvaluateBatchRequest, EvaluateBatchResponse>('EvaluateBatch', tracer, async (req, call, traceContext) => {
      guard();
      const common = evaluationOf(call, 'EvaluateBatchRequest', req.material, req.options, traceContext, options.identify);
      if (req.policies.length === 0 || req.policies.length > MAX_BATCH_POLICIES) {
        throw new PolicydError(
          'INVALID_REQUEST',
          `EvaluateBatchRequest.policies names ${req.policies.length} policies; name from 1 to ${MAX_BATCH_POLICIES} (split larger batches)`,
        );
      }
      const shared = new SharedEvaluableInput(common.material);
      // At most one evaluation of the batch per worker at a time: a batch never fills the queue with its
      // own evaluations (which would refuse its later ones as OVERLOADED); it runs beside other callers.
      await eachConcurrently(req.policies, engine.pool.threads, common.signal, async ({ policy, args }, index) => {
        const outcome: EvaluateBatchResponse['outcome'] = await engine.evaluate({ ...common, shared, policy, args }).then(
          (o) => ({ case: 'response', value: evaluateResponse(o) }),
          (err: unknown) => ({ case: 'error', value: statusOf(err) }),
        );
        if (!common.signal.aborted) call.write(create(EvaluateBatchResponseSchema, { index, outcome }));
      });
    }),
    listPolicies: unary<unknown, ListPoliciesResponse>('ListPolicies', tracer, () =>
      create(ListPoliciesResponseSchema, { policies: engine.policies().map(policyMessage) }),
    ),
    unloadPolicy: unary<UnloadPolicyRequest, UnloadPolicyResponse>('UnloadPolicy', tracer, async (req) => {
      const policy = engine.unload(req.policy);
      await options.store?.forget(policy.name, policy.digest);
      return create(UnloadPolicyResponseSchema, { policy: policyMessage(policy) });
    }),
  };
}
