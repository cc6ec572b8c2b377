// Only grpc-js's constants: pool workers load this file, and all of grpc-js would add 3 MB to the heap
// their frequent mark-compacts walk (test/unit/worker-footprint.test.ts).
import { Status as status } from '@grpc/grpc-js/build/src/constants.js';

/**
 * Why a request failed, in words a caller can act on. `code` is the gRPC status the server answers
 * with; `reason` is the stable machine-readable name carried in google.rpc.ErrorInfo.
 */
export type Reason =
  | 'INVALID_DOCUMENT'
  | 'UNSUPPORTED_SCRIPT'
  | 'INVALID_MODULE'
  | 'MISSING_EXECUTE'
  | 'UNSATISFIED_IMPORT'
  | 'SCRIPT_NOT_FOUND'
  | 'DIGEST_MISMATCH'
  | 'UNSUPPORTED_REF'
  | 'ARTIFACT_NOT_FOUND'
  | 'INVALID_ARTIFACT'
  | 'REGISTRY_DENIED'
  | 'REGISTRY_UNAVAILABLE'
  | 'SIGNATURE_NOT_VERIFIED'
  | 'INVALID_REQUEST'
  | 'INVALID_MATERIAL'
  | 'MISSING_INPUT'
  | 'POLICY_NOT_FOUND'
  | 'POLICY_TIMEOUT'
  | 'POLICY_MEMORY'
  | 'OUTPUT_TOO_LARGE'
  | 'VAR_STORE_FULL'
  | 'HOST_CALL_LIMIT'
  | 'HTTP_FORBIDDEN'
  | 'HOSTNAME_NOT_PERMITTED'
  | 'POLICY_PANIC'
  | 'POLICY_ERROR'
  | 'INVALID_OUTPUT'
  | 'NO_RESULT'
  | 'OVERLOADED'
  | 'POLICY_BUDGET'
  | 'CANCELLED'
  | 'SHUTTING_DOWN'
  | 'WORKER_LOST'
  | 'STATE_NOT_SAVED'
  | 'UNAUTHENTICATED'
  | 'NOT_PERMITTED'
  | 'INTERNAL';

const CODES: Record<Reason, status> = {
  INVALID_DOCUMENT: status.INVALID_ARGUMENT,
  UNSUPPORTED_SCRIPT: status.UNIMPLEMENTED,
  INVALID_MODULE: status.INVALID_ARGUMENT,
  MISSING_EXECUTE: status.INVALID_ARGUMENT,
  UNSATISFIED_IMPORT: status.INVALID_ARGUMENT,
  SCRIPT_NOT_FOUND: status.INVALID_ARGUMENT,
  DIGEST_MISMATCH: status.INVALID_ARGUMENT,
  UNSUPPORTED_REF: status.INVALID_ARGUMENT,
  ARTIFACT_NOT_FOUND: status.NOT_FOUND,
  INVALID_ARTIFACT: status.INVALID_ARGUMENT,
  // The daemon's registry account, not the caller, lacks the right: the caller can fix nothing by retrying.
  REGISTRY_DENIED: status.FAILED_PRECONDITION,
  REGISTRY_UNAVAILABLE: status.UNAVAILABLE,
  SIGNATURE_NOT_VERIFIED: status.FAILED_PRECONDITION,
  INVALID_REQUEST: status.INVALID_ARGUMENT,
  INVALID_MATERIAL: status.INVALID_ARGUMENT,
  MISSING_INPUT: status.INVALID_ARGUMENT,
  POLICY_NOT_FOUND: status.NOT_FOUND,
  POLICY_TIMEOUT: status.DEADLINE_EXCEEDED,
  POLICY_MEMORY: status.RESOURCE_EXHAUSTED,
  OUTPUT_TOO_LARGE: status.RESOURCE_EXHAUSTED,
  VAR_STORE_FULL: status.RESOURCE_EXHAUSTED,
  HOST_CALL_LIMIT: status.RESOURCE_EXHAUSTED,
  HTTP_FORBIDDEN: status.PERMISSION_DENIED,
  HOSTNAME_NOT_PERMITTED: status.PERMISSION_DENIED,
  POLICY_PANIC: status.ABORTED,
  POLICY_ERROR: status.ABORTED,
  INVALID_OUTPUT: status.ABORTED,
  NO_RESULT: status.FAILED_PRECONDITION,
  OVERLOADED: status.RESOURCE_EXHAUSTED,
  POLICY_BUDGET: status.RESOURCE_EXHAUSTED,
  CANCELLED: status.CANCELLED,
  SHUTTING_DOWN: status.UNAVAILABLE,
  WORKER_LOST: status.UNAVAILABLE,
  STATE_NOT_SAVED: status.UNAVAILABLE,
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  NOT_PERMITTED: status.PERMISSION_DENIED,
  INTERNAL: status.INTERNAL,
};

/** Plain-data form, safe to post between threads. */
export interface ErrorData {
  reason: Reason;
  message: string;
  metadata?: Record<string, string>;
}

export class PolicydError extends Error {
  readonly code: status;
  readonly metadata: Record<string, string>;

  constructor(
    readonly reason: Reason,
    message: string,
    metadata: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'PolicydError';
    this.code = CODES[reason];
    this.metadata = metadata;
  }

  static from(data: ErrorData): PolicydError {
    return new PolicydError(data.reason, data.message, data.metadata);
  }

  /** Any thrown value as the error a caller gets: a PolicydError as it is, anything else INTERNAL. */
  static of(err: unknown): PolicydError {
    return err instanceof PolicydError ? err : new PolicydError('INTERNAL', `internal error: ${errorMessage(err)}`);
  }

  toData(): ErrorData {
    return { reason: this.reason, message: this.message, metadata: this.metadata };
  }

  /** The same error, naming the policy it concerns. */
  forPolicy(policy: string): PolicydError {
    return new PolicydError(this.reason, this.message, { ...this.metadata, policy });
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
