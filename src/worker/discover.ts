import type { CallContext } from '@extism/extism';
import { callHost, chargeHostCall } from './host-call.js';
import type { Evaluation } from './instances.js';

/**
 * Chainloop's `chainloop_discover(digest, kind) -> offset`: the referrer JSON written as an Extism
 * block, or 0 when there is no discovery backend, the digest cannot be read, or the lookup fails.
 */
export function discoverFunction(evaluationOf: (cp: CallContext) => Evaluation | null) {
  return (cp: CallContext, digestOffset: bigint, kindOffset: bigint): bigint => {
    const evaluation = evaluationOf(cp);
    const channel = evaluation?.task.host;
    if (!evaluation || !channel) return 0n;
    chargeHostCall(evaluation);
    const digest = cp.read(digestOffset)?.text();
    if (digest === undefined) return 0n;
    const kind = kindOffset === 0n ? '' : (cp.read(kindOffset)?.text() ?? '');
    try {
      const { body } = callHost(channel, { op: 'discover', digest, kind });
      return body ? cp.store(body) : 0n;
    } catch {
      return 0n;
    }
  };
}
