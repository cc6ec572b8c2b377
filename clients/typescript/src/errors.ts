import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import { Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { ErrorInfoSchema } from './gen/google/rpc/error_details_pb.js';
import { type Status, StatusSchema } from './gen/google/rpc/status_pb.js';

/** The google.rpc.ErrorInfo domain of the daemon's errors. */
export const ERROR_DOMAIN = 'policyengine.v1';

/**
 * A failed call: the gRPC status (it is still a grpc-js `ServiceError`: `code`, `details`,
 * `metadata`) and what the daemon's `google.rpc.ErrorInfo` says — `reason` (POLICY_NOT_FOUND,
 * OVERLOADED, POLICY_PANIC, …) and the `policy` it concerns. `message` is Chainloop's text.
 */
export class PolicydError extends Error implements ServiceError {
  override readonly name = 'PolicydError';
  readonly code: status;
  readonly details: string;
  readonly metadata: Metadata;
  /** ErrorInfo.reason; empty for a status the gRPC library produced itself. */
  readonly reason: string;
  readonly policy: string | undefined;
  /** The rest of ErrorInfo.metadata. */
  readonly info: Record<string, string>;

  constructor(err: ServiceError) {
    super(err.details || err.message);
    this.code = err.code;
    this.details = err.details;
    this.metadata = err.metadata;
    let reason = '';
    let info: Record<string, string> = {};
    const raw = err.metadata?.get('grpc-status-details-bin')[0];
    if (raw instanceof Uint8Array) {
      try {
        for (const detail of fromBinary(StatusSchema, raw).details) {
          const found = anyUnpack(detail, ErrorInfoSchema);
          if (found && found.domain === ERROR_DOMAIN) {
            reason = found.reason;
            info = found.metadata;
          }
        }
      } catch {
        // A trailer that does not decode leaves the status as it is.
      }
    }
    this.reason = reason;
    this.info = info;
    this.policy = info.policy;
  }

  /** One policy's error inside an EvaluateBatch stream, as if a call had failed with that status. */
  static fromStatus(s: Status): PolicydError {
    const metadata = new Metadata();
    metadata.set('grpc-status-details-bin', Buffer.from(toBinary(StatusSchema, s)));
    return new PolicydError(Object.assign(new Error(s.message), { code: s.code, details: s.message, metadata }));
  }

  /** Unknown policy or digest on this daemon: load it there and retry. */
  get notFound(): boolean {
    return this.code === status.NOT_FOUND;
  }

  /** Refused to protect the calls it has, or a worker was lost: retry with backoff. */
  get retryable(): boolean {
    return this.code === status.RESOURCE_EXHAUSTED || this.code === status.UNAVAILABLE;
  }

  get timedOut(): boolean {
    return this.code === status.DEADLINE_EXCEEDED;
  }
}
