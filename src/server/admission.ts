import type { PolicydError } from '../errors/policyd-error.js';
import { PolicyEngineService } from '../gen/policyengine/v1/engine_pb.js';
import type { CallCheck } from './gate.js';
import { toServiceError } from './status.js';

const EVALUATIONS = new Set(['Evaluate', 'EvaluateBatch'].map((m) => `/${PolicyEngineService.typeName}/${m}`));

/**
 * Why an evaluation arriving now would be refused (PolicyEngine.refusal: the queue is full, or the
 * event loop is late with no worker idle), counting `admitted` calls this interceptor let through whose
 * handler has not taken them yet.
 */
export type Admission = (admitted: number) => PolicydError | undefined;

/**
 * Refuses evaluations the daemon would refuse anyway as soon as a call's message has arrived, before it
 * is decoded or its handler runs (the daemon's requests are decoded by their handler:
 * src/server/service-definition.ts). Under overload the main thread is the bottleneck and refusals are
 * most of its work: a refusal that decoded the request and ran the handler first left too little of it
 * for the requests it admits (bench/RESULTS.md).
 *
 * Calls let through are counted until their handler takes them: when calls' messages arrive before
 * their streams end (a client or proxy that ends a stream in a frame of its own), grpc-js passes on
 * every message of a burst before it runs any handler, and while only the pool counted, each of them
 * found the queue as empty as the first did and was refused only after decoding (test/e2e/limits.test.ts).
 *
 * The decision waits for the message, not the metadata. Under load a call's HEADERS and DATA come in
 * different reads, and calls judged between them take the places it was judged by: a call let through
 * at its metadata was then refused by its handler, after decoding — a third of the refusals of an
 * overload run (bench/RESULTS.md). And a call counted from its metadata on would hold a place while its
 * client took its time sending, so a few slow uploads could have every other caller refused.
 *
 * A refused call's message is read, never decoded, and the status waits for the
 * end of the client's stream: answering while the client is still sending makes its DATA frames land
 * on a closed stream, and after enough of them Node's HTTP/2 ends the whole connection
 * (ENHANCE_YOUR_CALM), failing the caller's other calls — 1,322 of 20,000 under an overload test did.
 *
 * It runs after authorization, which judges the call's metadata (src/server/gate.ts), so an
 * unauthenticated caller learns nothing of the daemon's load. Returns, per call, the listener events
 * admission takes part in (none for methods other than evaluations).
 */
export function admissionListener(admission: Admission): CallCheck {
  // Counted from a call's message until its handler takes it, and never past the turn of the event loop
  // the message came in: a burst's messages come in one, and a client that sends a message but never
  // ends its stream must not hold a place in the queue.
  let turn = 0;
  let admitted = 0;
  let turnEnds = false;
  const endTurn = () => {
    turn++;
    admitted = 0;
    turnEnds = false;
  };
  return (path, call) => {
    if (!EVALUATIONS.has(path)) return undefined;
    let refused: PolicydError | undefined;
    let countedIn: number | undefined;
    const handedOver = () => {
      if (countedIn === turn) admitted--;
      countedIn = undefined;
    };
    return {
      onReceiveMessage: (message, forward) => {
        refused ??= admission(admitted);
        if (refused) return call.startRead(); // on to the end of the client's stream
        if (countedIn === undefined) {
          countedIn = turn;
          admitted++;
          if (!turnEnds) setImmediate(endTurn);
          turnEnds = true;
        }
        forward(message);
      },
      onReceiveHalfClose: (forward) => {
        if (refused) return call.sendStatus(toServiceError(refused) as never);
        handedOver();
        forward();
      },
      onCancel: handedOver, // grpc-js tells the next listener itself
    };
  };
}
