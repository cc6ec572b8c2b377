import { ServerInterceptingCall, type ServerInterceptingCallInterface, type ServerInterceptor, type ServerListener } from '@grpc/grpc-js';

/** The listener events one check takes part in for a call, or undefined when it has no say in it. */
export type CallCheck = (path: string, call: ServerInterceptingCallInterface) => ServerListener | undefined;

/**
 * The server's one interceptor: each check (authorization on a call's metadata, admission on its
 * message: src/server/authorization.ts, src/server/admission.ts) in one intercepting call. An interceptor
 * per check was a layer per check that grpc-js passed every event of every call through, ~7 µs of the
 * main thread per call each (docs/design-notes.md, "Two roles"). The checks take disjoint events, so a
 * call's listener is theirs put together; grpc-js runs metadata, message and half-close events in that
 * order, and an authorization refusal ends the call before admission sees it.
 */
export function gateInterceptor(checks: CallCheck[]): ServerInterceptor {
  return (method, call) => {
    let listener: ServerListener | undefined;
    for (const check of checks) {
      const own = check(method.path, call);
      if (own) listener = { ...listener, ...own };
    }
    return listener ? new ServerInterceptingCall(call, { start: (next) => next(listener) }) : new ServerInterceptingCall(call);
  };
}
