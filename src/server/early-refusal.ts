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
 * runs or the message is decoded (the daemon's requests are decoded by their handler:
 * src/server/service-definition.ts).
 *
 * `readToEnd`: the status waits until the client has sent its whole message (read, never decoded).
 * A status sent while the client is still sending makes its DATA frames arrive on a closed stream, and
 * after enough of them Node's HTTP/2 ends the whole connection (ENHANCE_YOUR_CALM), failing the
 * caller's other calls — 1,322 of 20,000 under an overload test did. That is right for a caller that
 * is only asked to come back later, not for one that may not make the call at all: its message is
 * not worth buffering, and its connection may go.
 */
export function earlyRefusal(paths: ReadonlySet<string>, refusal: EarlyRefusal, { readToEnd }: { readToEnd: boolean }): ServerInterceptor {
  return (method, call) => {
    if (!paths.has(method.path)) return new ServerInterceptingCall(call);
    let refused: PolicydError | undefined;
    const answer = () => call.sendStatus(toServiceError(refused) as never);
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next(
          new ServerListenerBuilder()
            .withOnReceiveMetadata((metadata, forward) => {
              refused = refusal(method.path, metadata, call);
              if (!refused) forward(metadata);
              else if (readToEnd) call.startRead();
              else answer();
            })
            .withOnReceiveMessage((message, forward) => {
              if (refused)
                call.startRead(); // on to the end of the client's stream
              else forward(message);
            })
            .withOnReceiveHalfClose((forward) => {
              if (refused) answer();
              else forward();
            })
            .build(),
        ),
    });
  };
}
