import { create, toBinary } from '@bufbuild/protobuf';
import { anyPack } from '@bufbuild/protobuf/wkt';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { ErrorInfoSchema } from '../gen/google/rpc/error_details_pb.js';
import { StatusSchema, type Status } from '../gen/google/rpc/status_pb.js';
import { PolicydError } from '../errors/policyd-error.js';

export const ERROR_DOMAIN = 'policyengine.v1';

/**
 * A gRPC error with the standard rich-status trailer (grpc-status-details-bin: google.rpc.Status
 * holding a google.rpc.ErrorInfo), which grpc-go's status.FromError exposes as Details().
 */
export function toServiceError(err: unknown): Partial<ServiceError> {
  const e = PolicydError.of(err);
  let details = encoded.get(e);
  if (!details) {
    details = Buffer.from(toBinary(StatusSchema, statusOf(e)));
    encoded.set(e, details);
  }
  const metadata = new Metadata();
  metadata.set('grpc-status-details-bin', details);
  return { code: e.code, details: e.message, metadata };
}

/**
 * Each error's encoded status, kept while the error is: the pool answers every queue-full refusal with
 * one error object, and under overload encoding its status again for each was most of a refusal's
 * protobuf work.
 */
const encoded = new WeakMap<PolicydError, Buffer>();

/** The google.rpc.Status of an error: its code, message and ErrorInfo (also one batch item's error). */
export function statusOf(err: unknown): Status {
  const e = PolicydError.of(err);
  const info = create(ErrorInfoSchema, { reason: e.reason, domain: ERROR_DOMAIN, metadata: e.metadata });
  return create(StatusSchema, { code: e.code, message: e.message, details: [anyPack(ErrorInfoSchema, info)] });
}
