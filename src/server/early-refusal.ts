import {
  type Metadata,
  type ServerInterceptingCallInterface,
  ServerInterceptingCall,
  ServerListenerBuilder,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import type { PolicydError } from '../errors/policyd-error.js';
import { toServiceError } from './status.js';

export type EarlyRefusal = (path: string, metadata: Metadata, call: ServerInterceptingCallInterface) => PolicydError | undefined;

/**
 * A server interceptor that may refuse a call of `paths` from its metadata alone, before the handler
 * runs or the message is read (the daemon's requests are decoded by their handler:
 * src/server/service-definition.ts). The status goes at once: the message of a caller that may not
 * make the call is not worth reading, and if it goes on sending, its connection may go (admission,
 * which refuses callers that may come back later, waits for theirs: src/server/admission.ts).
 */
export function earlyRefusal(paths: ReadonlySet<string>, refusal: EarlyRefusal): ServerInterceptor {
  return (method, call) => {
    if (!paths.has(method.path)) return new ServerInterceptingCall(call);
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next(
          new ServerListenerBuilder()
            .withOnReceiveMetadata((metadata, forward) => {
              const refused = refusal(method.path, metadata, call);
              if (refused) call.sendStatus(toServiceError(refused) as never);
              else forward(metadata);
            })
            .build(),
        ),
    });
  };
}
