import { create, type JsonObject } from '@bufbuild/protobuf';
import { DurationSchema } from '@bufbuild/protobuf/wkt';
import type { Metadata, sendUnaryData, ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import {
  EvaluateResponseSchema,
  Isolation,
  ListPoliciesResponseSchema,
  PolicyEngineService,
  LoadPolicyResponseSchema,
  LogLevel,
  PolicySchema,
  UnloadPolicyResponseSchema,
  ViolationSchema,
  type EvaluateRequest,
  type EvaluateResponse,
  type ListPoliciesResponse,
  type LoadPolicyRequest,
  type LoadPolicyResponse,
  type Policy,
  type UnloadPolicyRequest,
  type UnloadPolicyResponse,
} from '../gen/policyengine/v1/engine_pb.js';
import { PolicydError } from '../errors/policyd-error.js';
import type { Caller, EvaluationOutcome, GuestLogLevel, LoadResult, PolicyEngine, RequestedLimits } from '../engine/policy-engine.js';
import { SpanKind, contextFromMetadata, endSpan, trace, type Context, type Tracer } from '../telemetry/tracing.js';
import type { PolicySource } from '../policies/loader.js';
import { maxMemoryBytes, type LoadedPolicy } from '../policies/registry.js';
import { UndecodableRequest } from './service-definition.js';
import { toServiceError } from './status.js';

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

type Handler<Req, Res> = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void;
type Implementation<Req, Res> = (req: Req, call: ServerUnaryCall<Req, Res>, trace: Context | undefined) => Promise<Res> | Res;

/**
 * Wraps an async handler: errors become rich gRPC statuses, never an unhandled rejection; with a
 * tracer, the call is a SERVER span continuing the caller's `traceparent`.
 */
function handler<Req, Res>(method: string, tracer: Tracer | undefined, fn: Implementation<Req, Res>): Handler<Req, Res> {
  return (call, callback) => {
    const parent = tracer && contextFromMetadata(call.metadata);
    const span = tracer?.startSpan(
      `${SERVICE}/${method}`,
      { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.service': SERVICE, 'rpc.method': method } },
      parent,
    );
    Promise.resolve()
      .then(() => {
        const req: unknown = call.request;
        if (req instanceof UndecodableRequest) {
          throw new PolicydError(
            'INVALID_REQUEST',
            `the request is not a valid ${req.typeName} message (${req.reason}); encode it with proto/policyengine/v1/engine.proto`,
          );
        }
        return fn(call.request, call, span && trace.setSpan(parent!, span));
      })
      .then(
        (res) => {
          if (span) endSpan(span.setAttribute('rpc.grpc.status_code', 0));
          callback(null, res);
        },
        (err: unknown) => {
          const error = toServiceError(err);
          if (span) endSpan(span.setAttribute('rpc.grpc.status_code', error.code ?? 2), err);
          callback(error as never, null);
        },
      );
  };
}

const SERVICE = PolicyEngineService.typeName;

/** Milliseconds until the client's deadline, if it set one. */
function deadlineMs(call: ServerUnaryCall<unknown, unknown>): number | undefined {
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) && at > 0 ? Math.max(1, at - Date.now()) : undefined;
}

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

/** Authorization happens before these handlers, in the server's interceptor (authorization.ts). */
export function policyServiceImplementation(engine: PolicyEngine, options: ServiceOptions): UntypedServiceImplementation {
  const guard = () => {
    if (!options.accepting()) throw new PolicydError('SHUTTING_DOWN', 'the daemon is shutting down; retry on another replica');
  };
  const { tracer } = options;
  return {
    loadPolicy: handler<LoadPolicyRequest, LoadPolicyResponse>('LoadPolicy', tracer, async (req) => {
      guard();
      const limits = { timeoutMs: req.limits?.timeoutMs, maxMemoryBytes: Number(req.limits?.maxMemoryBytes ?? 0n) };
      const loaded = await engine.load(loadSource(req), limits);
      await options.store?.save(loaded, limits);
      return create(LoadPolicyResponseSchema, { policy: policyMessage(loaded.policy), alreadyLoaded: loaded.alreadyLoaded });
    }),
    evaluate: handler<EvaluateRequest, EvaluateResponse>('Evaluate', tracer, async (req, call, traceContext) => {
      guard();
      const material = req.material;
      if (!material) throw new PolicydError('INVALID_REQUEST', 'EvaluateRequest.material is required');
      const cancelled = new AbortController();
      // With a reason: the default one is a DOMException, whose construction showed in the profiles.
      call.on('cancelled', () => cancelled.abort(CLIENT_CANCELLED));
      const outcome = await engine.evaluate({
        policy: req.policy,
        material: {
          content: material.content,
          kind: material.kind,
          name: material.name,
          annotations: material.annotations,
          prepared: material.prepared,
        },
        args: req.args,
        timeoutMs: req.options?.timeoutMs || undefined,
        deadlineMs: deadlineMs(call as ServerUnaryCall<unknown, unknown>),
        includeRawData: req.options?.includeRawData,
        allowedHostnames: req.options?.allowedHostnames,
        signal: cancelled.signal,
        traceContext,
        // Worked out only if the decision log writes it: a token's fingerprint costs a hash per call.
        caller: options.identify && (() => options.identify!(call.metadata, call.getAuthContext().sslPeerCertificate)),
      });
      return evaluateResponse(outcome);
    }),
    listPolicies: handler<unknown, ListPoliciesResponse>('ListPolicies', tracer, () =>
      create(ListPoliciesResponseSchema, { policies: engine.policies().map(policyMessage) }),
    ),
    unloadPolicy: handler<UnloadPolicyRequest, UnloadPolicyResponse>('UnloadPolicy', tracer, async (req) => {
      const policy = engine.unload(req.policy);
      await options.store?.forget(policy.name, policy.digest);
      return create(UnloadPolicyResponseSchema, { policy: policyMessage(policy) });
    }),
  };
}
