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
  const details = statusOf(err);
  const metadata = new Metadata();
  metadata.set('grpc-status-details-bin', Buffer.from(toBinary(StatusSchema, details)));
  return { code: details.code, details: details.message, metadata };
}

/** The google.rpc.Status of an error: its code, message and ErrorInfo (also one batch item's error). */
export function statusOf(err: unknown): Status {
  const e = PolicydError.of(err);
  const info = create(ErrorInfoSchema, { reason: e.reason, domain: ERROR_DOMAIN, metadata: e.metadata });
  return create(StatusSchema, { code: e.code, message: e.message, details: [anyPack(ErrorInfoSchema, info)] });
}
