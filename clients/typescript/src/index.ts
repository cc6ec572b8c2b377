/**
 * @wasm-policyd/client: a typed client for the wasm-policyd daemon. The explicit export list is the
 * package's whole surface (piscina's model): the client, its error, and the protobuf-es messages and
 * enums of `policyengine.v1`.
 */
export { type BatchOutcome, type CallOptions, type ClientOptions, PolicyEngineClient } from './client.js';
export { ERROR_DOMAIN, PolicydError } from './errors.js';
export {
  type EvaluateBatchRequest,
  EvaluateBatchRequestSchema,
  type EvaluateBatchResponse,
  type EvaluateRequest,
  EvaluateRequestSchema,
  type EvaluateResponse,
  EvaluateResponseSchema,
  Isolation,
  type ListPoliciesResponse,
  type LoadPolicyRequest,
  LoadPolicyRequestSchema,
  type LoadPolicyResponse,
  LogLevel,
  type Material,
  MaterialKind,
  type Policy,
  PolicyEngineService,
  type UnloadPolicyResponse,
  type Violation,
} from './gen/policyengine/v1/engine_pb.js';
