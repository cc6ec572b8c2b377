import { receiveMessageOnPort } from 'node:worker_threads';
import { timeoutMessage } from '../errors/chainloop-messages.js';
import { PolicydError } from '../errors/policyd-error.js';
import { garbage } from '../runtime/garbage-budget.js';
import type { Evaluation } from './instances.js';
import type { HostChannel, HostRequest, HostResponse } from './protocol.js';

/**
 * Makes a host call that needs the main thread and blocks the guest until it is answered. The
 * evaluation deadline still applies: a worker stuck here is terminated like a spinning guest.
 */
export function callHost(channel: HostChannel, request: HostRequest): { status: number; body: Uint8Array | null } {
  const flag = new Int32Array(channel.flag);
  Atomics.store(flag, 0, 0);
  channel.port.postMessage(request);
  if (Atomics.wait(flag, 0, 0, channel.timeoutMs) === 'timed-out') {
    throw new PolicydError('POLICY_TIMEOUT', timeoutMessage());
  }
  // The answer is posted before the flag flips; the loop only covers delivery lagging the notify.
  for (let spins = 0; spins < 1000; spins++) {
    const received = receiveMessageOnPort(channel.port);
    if (received) {
      const res = received.message as HostResponse;
      if (!res.ok) throw PolicydError.from(res.error);
      // The body received, and the copy the SDK stores for the guest.
      garbage.took(2 * (res.body?.byteLength ?? 0));
      return res;
    }
    Atomics.wait(flag, 0, 1, 1);
  }
  throw new PolicydError('INTERNAL', `${request.op}: the main thread did not answer the host call`);
}

/** Counts a host call against the evaluation's budget: each holds the worker and reaches the network. */
export function chargeHostCall(evaluation: Evaluation): void {
  if (++evaluation.hostCalls > evaluation.task.maxHostCalls) {
    throw new PolicydError(
      'HOST_CALL_LIMIT',
      `the policy made more than ${evaluation.task.maxHostCalls} HTTP or discover calls in one evaluation (maxHostCalls); raise the limit if it needs them`,
    );
  }
}
