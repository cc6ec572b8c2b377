import { DEFAULTS, MiB } from '../config/defaults.js';
import type { ModuleFacts } from '../wasm/inspect.js';
import type { ScriptTask } from './protocol.js';

/** What a task needs besides its compiled module; limits left out take the daemon's defaults. */
export type TaskFields = Pick<ScriptTask, 'instanceKey' | 'input' | 'policyName' | 'logLevel'> &
  Partial<Omit<ScriptTask, 'module' | 'proxy' | 'useWasi' | 'memoryLimitPages'>>;

/**
 * The one way a ScriptTask is built: from a compiled module's facts (module, host proxy, WASI, memory
 * cap) and the fields of this evaluation. The engine passes its configured limits; the benchmark and
 * the tests that run a worker's evaluation in process pass only what they vary.
 */
export function scriptTask(facts: ModuleFacts, fields: TaskFields): ScriptTask {
  return {
    module: facts.module,
    proxy: facts.proxy,
    useWasi: facts.usesWasi,
    memoryLimitPages: facts.memoryLimitPages,
    maxOutputBytes: DEFAULTS.maxOutputMb * MiB,
    maxVarBytes: DEFAULTS.maxVarBytes,
    maxLogEntries: DEFAULTS.maxLogEntries,
    maxHostCalls: DEFAULTS.maxHostCalls,
    maxViolations: DEFAULTS.maxViolations,
    includeRawOutput: false,
    allowedHosts: [],
    ...fields,
  };
}
