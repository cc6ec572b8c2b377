import Piscina from 'piscina';
import { threadId } from 'node:worker_threads';
import { PAGE_BYTES } from '../wasm/memory-limit.js';
import type { ErrorData } from '../errors/policyd-error.js';
import { classifyGuestError } from './errors.js';
import { GuestLogs } from './guest-logs.js';
import { hostFor, type Host, type PolicyInstance } from './instances.js';
import { parseOutput } from './output.js';
import type { CompiledScript, ScriptMessage, ScriptOutcome, ScriptTask, WorkerReply } from './protocol.js';

/**
 * A guest that trapped with its memory more than half way to the cap most likely failed to grow it
 * (memory.grow only returns -1; the guest then aborts), so the failure is reported as memory.
 */
function nearMemoryCap(instance: PolicyInstance, limitPages: number): boolean {
  return instance.memory !== undefined && instance.memory.buffer.byteLength * 2 > limitPages * PAGE_BYTES;
}

/**
 * The compiled modules this worker was sent, by instanceKey. A module is hundreds of kilobytes that
 * structured clone copies on every message, so the pool sends it only until this worker has it.
 */
const compiled = new Map<string, CompiledScript>();
const MAX_COMPILED = 64;

/** The pool worker's entry: one script of one evaluation, with the modules the task names. */
export default async function runScript(message: ScriptMessage): Promise<WorkerReply> {
  if (message.module && message.proxy) {
    compiled.delete(message.instanceKey);
    if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value!);
    compiled.set(message.instanceKey, { module: message.module, proxy: message.proxy });
  }
  const modules = compiled.get(message.instanceKey);
  if (!modules) {
    const host = message.host && { ...message.host, port: Piscina.move(message.host.port) as typeof message.host.port };
    return { threadId, ok: 'needs-modules', input: Piscina.move(message.input) as Uint8Array, host };
  }
  return { threadId, ...(await evaluateScript({ ...message, ...modules })) };
}

/**
 * One evaluation of one script: a new instance of the cached compiled module in a kept Extism host
 * (no guest state survives an evaluation: src/worker/instances.ts), `Execute` called with the material,
 * the output parsed by Chainloop's rules.
 */
async function evaluateScript(task: ScriptTask): Promise<ScriptOutcome> {
  const logs = new GuestLogs(task.maxLogEntries);
  const fail = (error: ErrorData): ScriptOutcome => ({ ok: false, error, logs: logs.finish() });
  let host: Host | undefined;
  try {
    let instance: PolicyInstance;
    try {
      host = await hostFor(task);
      instance = host.instance(task);
    } catch (err) {
      return fail(classifyGuestError(err, 'create'));
    }
    if (task.probe) return { ok: true, result: { skipped: false, skipReason: '', violations: [], ignore: true }, logs: logs.finish() };
    let output: Uint8Array | null;
    try {
      output = await host.execute(instance, { task, logs, httpStatus: 0 });
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
      const raw = task.includeRawOutput && output ? { output: output.slice() } : {};
      return { ok: true, result, logs: logs.finish(), ...raw };
    } catch (err) {
      return fail(classifyGuestError(err, 'call'));
    }
  } finally {
    // Once the result is on its way, this idle worker makes the next evaluation's instance.
    if (host) setImmediate(() => host!.prepare(task));
  }
}
