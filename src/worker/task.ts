import { DEFAULTS, MiB } from '../config/defaults.js';
import type { ModuleFacts } from '../wasm/inspect.js';
import type { ReadyTask, ScriptSetup } from './protocol.js';

/** What a setup needs besides its compiled module; limits left out take the daemon's defaults. */
export type SetupFields = Pick<ScriptSetup, 'id' | 'instanceKey' | 'policyName' | 'logLevel'> &
  Partial<Omit<ScriptSetup, 'module' | 'proxy' | 'useWasi' | 'reset' | 'memoryLimitPages'>>;

/**
 * The one way a ScriptSetup is built: from a compiled module's facts (module, host proxy, WASI, memory
 * cap) and the limits it runs under. The engine passes its configured limits; the benchmark and the
 * tests that run a worker's evaluation in process pass only what they vary.
 */
export function scriptSetup(facts: ModuleFacts, fields: SetupFields): ScriptSetup {
  return {
    module: facts.module,
    proxy: facts.proxy,
    useWasi: facts.usesWasi,
    reset: facts.reset,
    memoryLimitPages: facts.memoryLimitPages,
    maxOutputBytes: DEFAULTS.maxOutputMb * MiB,
    maxVarBytes: DEFAULTS.maxVarBytes,
    maxLogEntries: DEFAULTS.maxLogEntries,
    maxHostCalls: DEFAULTS.maxHostCalls,
    maxViolations: DEFAULTS.maxViolations,
    ...fields,
  };
}

/** A whole task for running a worker's evaluation in process (benchmark, tests). */
export function scriptTask(
  facts: ModuleFacts,
  fields: Omit<SetupFields, 'id'> & Pick<ReadyTask, 'input'> & Partial<Pick<ReadyTask, 'args' | 'includeRawOutput' | 'allowedHosts'>>,
): ReadyTask {
  const { input, args, includeRawOutput = false, allowedHosts = [], ...setup } = fields;
  return { ...scriptSetup(facts, { id: '', ...setup }), input, args, includeRawOutput, allowedHosts };
}
