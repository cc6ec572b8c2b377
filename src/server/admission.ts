import type { ServerInterceptor } from '@grpc/grpc-js';
import type { PolicydError } from '../errors/policyd-error.js';
import { PolicyEngineService } from '../gen/policyengine/v1/engine_pb.js';
import { earlyRefusal } from './early-refusal.js';

const EVALUATIONS = new Set(['Evaluate', 'EvaluateBatch'].map((m) => `/${PolicyEngineService.typeName}/${m}`));

/**
 * Refuses evaluations the daemon would refuse anyway (PolicyEngine.refusal: the queue is full, or the
 * event loop is late with no worker idle) as soon as a call's metadata arrives. Under overload the
 * main thread is the bottleneck and refusals are most of its work: a refusal that decoded the request
 * and ran the handler first left too little of it for the requests it admits (bench/RESULTS.md). It
 * comes after authorization in the server's interceptors (grpc-js passes a call's events through them
 * in that order), so an unauthenticated caller learns nothing of the daemon's load.
 */
export function admissionInterceptor(refusal: () => PolicydError | undefined): ServerInterceptor {
  return earlyRefusal(EVALUATIONS, () => refusal(), { readToEnd: true });
}
