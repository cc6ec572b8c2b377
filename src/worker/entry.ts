import { BroadcastChannel } from 'node:worker_threads';
import { RETIRED_SETUPS_CHANNEL, UNKNOWN_SETUP, type ScriptCall, type ScriptOutcome, type ScriptSetup } from './protocol.js';
import { oneAtATime } from './run-board.js';
import runScript from './run-script.js';

/**
 * The pool worker's task function (piscina's `filename`): a call joined with the setup it names, then
 * run. A worker learns each setup the first time a call carries it and keeps it, so later calls carry
 * only their own part; a call naming one this worker does not know (a worker started after the last
 * time it was sent, or one that forgot it) is answered UNKNOWN_SETUP, and the pool sends it again with
 * the setup.
 */

/** Setups kept per worker, least recently used forgotten first (forgetting costs one round trip). */
const MAX_SETUPS = 64;
const setups = new Map<string, ScriptSetup>();

// Setups of policies the engine unloaded or replaced are forgotten at once, not when newer ones push
// them out: each holds compiled modules. A call still naming one is answered UNKNOWN_SETUP as usual.
const retired = new BroadcastChannel(RETIRED_SETUPS_CHANNEL);
retired.onmessage = (event) => {
  for (const id of (event as { data: string[] }).data) setups.delete(id);
};
retired.unref();

function setupFor(named: ScriptCall['setup']): ScriptSetup | undefined {
  const id = typeof named === 'string' ? named : named.id;
  const setup = typeof named === 'string' ? setups.get(id) : named;
  if (!setup) return undefined;
  setups.delete(id);
  setups.set(id, setup);
  if (setups.size > MAX_SETUPS) setups.delete(setups.keys().next().value as string);
  return setup;
}

export function evaluateCall(call: ScriptCall): Promise<ScriptOutcome> | typeof UNKNOWN_SETUP {
  const setup = setupFor(call.setup);
  if (!setup) return UNKNOWN_SETUP;
  const { id: _, ...shared } = setup;
  const { setup: __, ...own } = call;
  return runScript({ ...shared, ...own });
}

/** What piscina calls: a worker holds several tasks, and runs them one at a time (worker/run-board.ts). */
export default oneAtATime<ScriptCall, ScriptOutcome | typeof UNKNOWN_SETUP>(evaluateCall);
