import type { Plugin } from '@extism/extism';
import { PAGE_BYTES } from '../wasm/memory-limit.js';
import type { ErrorData } from '../errors/policyd-error.js';
import { classifyGuestError } from './errors.js';
import { GuestLogs } from './guest-logs.js';
import { acquire, release, type Acquired } from './instances.js';
import { parseOutput } from './output.js';
import type { ScriptOutcome, ScriptTask } from './protocol.js';

/**
 * A guest that trapped with its memory more than half way to the cap most likely failed to grow it
 * (memory.grow only returns -1; the guest then aborts), so the failure is reported as memory.
 */
async function nearMemoryCap(plugin: Plugin, limitPages: number): Promise<boolean> {
  const memory = (await plugin.getInstance()).exports.memory as WebAssembly.Memory | undefined;
  return memory !== undefined && memory.buffer.byteLength * 2 > limitPages * PAGE_BYTES;
}

/**
 * One evaluation of one script: a never-used Extism plugin instance of the cached compiled module (no
 * guest state survives an evaluation) unless the policy opted into reused instances, `Execute` called
 * with the material, the output parsed by Chainloop's rules.
 */
export default async function runScript(task: ScriptTask): Promise<ScriptOutcome> {
  const logs = new GuestLogs(task.maxLogEntries);
  const fail = (error: ErrorData): ScriptOutcome => ({ ok: false, error, logs: logs.finish() });
  let instance: Acquired | undefined;
  let failed = true;
  try {
    try {
      instance = await acquire(task);
      instance.binding.task = task;
      instance.binding.logs = logs;
    } catch (err) {
      return fail(classifyGuestError(err, 'create'));
    }
    const { plugin } = instance;
    if (task.probe) return { ok: true, result: { skipped: false, skipReason: '', violations: [], ignore: true }, logs: logs.finish() };
    let output: Uint8Array | null;
    try {
      const out = await plugin.call('Execute', task.input);
      output = out ? out.bytes() : null;
    } catch (err) {
      const exhausted = logs.sawMemoryLimit || (err instanceof WebAssembly.RuntimeError && (await nearMemoryCap(plugin, task.memoryLimitPages)));
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
      const raw = task.includeRawOutput && output ? { output: output.slice() } : {};
      failed = false;
      return { ok: true, result, logs: logs.finish(), ...raw };
    } catch (err) {
      return fail(classifyGuestError(err, 'call'));
    }
  } finally {
    if (instance) release(task, instance, failed);
  }
}
