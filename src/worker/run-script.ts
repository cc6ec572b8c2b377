import { garbage } from '../runtime/garbage-budget.js';
import { epochMs } from '../telemetry/clock.js';
import { PAGE_BYTES } from '../wasm/memory-limit.js';
import { PolicydError, type ErrorData } from '../errors/policyd-error.js';
import { buildEvaluableInput } from '../materials/evaluable-input.js';
import { classifyGuestError } from './errors.js';
import { GuestLogs } from './guest-logs.js';
import { hostFor, type Host, type PolicyInstance } from './instances.js';
import { parseOutput } from './output.js';
import type { ReadyTask, ScriptOutcome, ScriptTask } from './protocol.js';

/**
 * A guest that trapped with its memory more than half way to the cap most likely failed to grow it
 * (memory.grow only returns -1; the guest then aborts), so the failure is reported as memory.
 */
function nearMemoryCap(instance: PolicyInstance, limitPages: number): boolean {
  return instance.memoryBytes * 2 > limitPages * PAGE_BYTES;
}

/**
 * One evaluation of one script: an instance of the cached compiled module in its new state, in a kept
 * Extism host (no guest state survives an evaluation: src/worker/instances.ts), `Execute` called with
 * the material, the output parsed by Chainloop's rules.
 */
export default async function runScript(received: ScriptTask): Promise<ScriptOutcome> {
  const started = received.timed ? epochMs() : 0;
  let task: ReadyTask;
  try {
    // In place, rather than a copy of the task's twenty-odd fields.
    if (!(received.input instanceof Uint8Array)) received.input = buildEvaluableInput(received.input);
    task = received as ReadyTask;
  } catch (err) {
    return { ok: false, error: PolicydError.of(err).toData(), logs: [] };
  }
  if (!task.timed) return evaluate(task);
  let instantiated = started;
  const outcome = await evaluate(task, () => {
    instantiated = epochMs();
  });
  return { ...outcome, timings: { started, instantiated, finished: epochMs() } };
}

async function evaluate(task: ReadyTask, onInstantiated?: () => void): Promise<ScriptOutcome> {
  const logs = new GuestLogs(task.maxLogEntries);
  const fail = (error: ErrorData): ScriptOutcome => ({ ok: false, error, logs: logs.finish() });
  let host: Host | undefined;
  let instance: PolicyInstance | undefined;
  try {
    try {
      host = await hostFor(task);
      instance = host.instance(task);
    } catch (err) {
      return fail(classifyGuestError(err, 'create'));
    }
    onInstantiated?.();
    if (task.probe) return { ok: true, result: { skipped: false, skipReason: '', violations: [], ignore: true }, logs: logs.finish() };
    let output: Uint8Array | null;
    try {
      output = await host.execute(instance, { task, logs, httpStatus: 0, hostCalls: 0 });
      garbage.took(output?.byteLength ?? 0);
    } catch (err) {
      const exhausted = logs.sawMemoryLimit || (err instanceof WebAssembly.RuntimeError && nearMemoryCap(instance, task.memoryLimitPages));
      return fail(classifyGuestError(err, 'call', exhausted));
    }
    if (output && output.byteLength > task.maxOutputBytes) {
      return fail({
        reason: 'OUTPUT_TOO_LARGE',
        message: `policy output of ${output.byteLength} bytes exceeds the ${task.maxOutputBytes}-byte limit`,
      });
    }
    try {
      const result = parseOutput(output, task.policyName);
      if (result.violations.length > task.maxViolations) {
        return fail({
          reason: 'OUTPUT_TOO_LARGE',
          message: `policy output has ${result.violations.length} violations, above the limit of ${task.maxViolations} (maxViolations)`,
        });
      }
      const raw = task.includeRawOutput && output ? { output: output.slice() } : {};
      return { ok: true, result, logs: logs.finish(), ...raw };
    } catch (err) {
      return fail(classifyGuestError(err, 'call'));
    }
  } finally {
    // The memory the instance took (all of a new one's, what a reset one grew by), the input and the
    // SDK's copy of it; the output is counted where it was read.
    garbage.took((instance?.takenBytes() ?? 0) + 2 * task.input.byteLength);
    // Once the result is on its way, this idle worker makes the next evaluation's instance.
    if (host) setImmediate(() => host!.prepare(task));
  }
}
