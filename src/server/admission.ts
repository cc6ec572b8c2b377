import { ServerInterceptingCall, ServerListenerBuilder, type ServerInterceptor } from '@grpc/grpc-js';
import type { PolicydError } from '../errors/policyd-error.js';
import { PolicyEngineService } from '../gen/policyengine/v1/engine_pb.js';
import { toServiceError } from './status.js';

const EVALUATIONS = new Set(['Evaluate', 'EvaluateBatch'].map((m) => `/${PolicyEngineService.typeName}/${m}`));

/**
 * Refuses evaluations the daemon would refuse anyway (PolicyEngine.refusal: the queue is full, or the
 * event loop is late with no worker idle) as soon as a call's metadata arrives, before its message is
 * decoded. Under overload the main thread is the bottleneck and refusals are most of its work: a
 * refusal that decodes the request and runs the handler first left less of it for the requests it
 * admits (bench/RESULTS.md). Runs after authorization, so an unauthenticated caller learns nothing of
 * the daemon's load (grpc-js passes a call's events through the interceptors in list order).
 */
export function admissionInterceptor(refusal: () => PolicydError | undefined): ServerInterceptor {
  return (method, call) => {
    if (!EVALUATIONS.has(method.path)) return new ServerInterceptingCall(call);
    let refused: PolicydError | undefined;
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next(
          new ServerListenerBuilder()
            .withOnReceiveMetadata((metadata, forward) => {
              refused = refusal();
              if (!refused) return forward(metadata);
              // The handler never sees this call; its message is still read to the end, because a
              // status sent while the client is sending makes its DATA frames arrive on a closed stream,
              // and Node's HTTP/2 ends the whole connection (ENHANCE_YOUR_CALM) after enough of them.
              call.startRead();
            })
            .withOnReceiveMessage((message, forward) => {
              if (!refused) return forward(message);
              call.startRead(); // on to the end of the client's stream
            })
            .withOnReceiveHalfClose((forward) => {
              if (refused) call.sendStatus(toServiceError(refused) as never);
              else forward();
            })
            .build(),
        ),
    });
  };
}
