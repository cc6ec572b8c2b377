import createPlugin, { type CallContext, type Plugin } from '@extism/extism';
import { DISCOVER_FUNCTION, DISCOVER_NAMESPACES, EXTISM_ENV } from '../wasm/host-surface.js';
import { PAGE_BYTES } from '../wasm/memory-limit.js';
import type { ErrorData } from '../errors/policyd-error.js';
import { classifyGuestError } from './errors.js';
import { discoverFunction } from './discover.js';
import { GuestLogs } from './guest-logs.js';
import { httpFunctions } from './http-client.js';
import { parseOutput } from './output.js';
import type { ScriptOutcome, ScriptTask } from './protocol.js';

type HostFunctions = Record<string, Record<string, (cp: CallContext, ...args: any[]) => any>>;

/**
 * The SDK's var_set only logs when the store is full and carries on; Chainloop's host panics
 * ("Variable store is full"), so the evaluation fails instead of running on without the value.
 */
function varSet(cp: CallContext, keyOffset: bigint, valueOffset: bigint): void {
  const key = cp.read(keyOffset)?.text();
  if (key === undefined) throw new Error('var_set: invalid key address');
  if (valueOffset === 0n) {
    cp.deleteVariable(key);
    return;
  }
  const value = cp.read(valueOffset);
  if (!value) throw new Error('var_set: invalid value address');
  cp.setVariable(key, value.bytes().slice());
}

/** A fresh object per plugin: the SDK binds (and in worker mode mutates) what it is given. */
function hostFunctions(task: ScriptTask): HostFunctions {
  const functions: HostFunctions = { [EXTISM_ENV]: { var_set: varSet, ...httpFunctions(task.host, task.allowedHosts) } };
  const discover = discoverFunction(task.host);
  for (const ns of DISCOVER_NAMESPACES) functions[ns] = { [DISCOVER_FUNCTION]: discover };
  return functions;
}

/**
 * A guest that trapped with its memory more than half way to the cap most likely failed to grow it
 * (memory.grow only returns -1; the guest then aborts), so the failure is reported as memory.
 */
async function nearMemoryCap(plugin: Plugin, limitPages: number): Promise<boolean> {
  const memory = (await plugin.getInstance()).exports.memory as WebAssembly.Memory | undefined;
  return memory !== undefined && memory.buffer.byteLength * 2 > limitPages * PAGE_BYTES;
}

/**
 * One evaluation of one script: a fresh Extism plugin from the cached compiled module (no guest state
 * survives it), `Execute` called with the material, the output parsed by Chainloop's rules.
 */
export default async function runScript(task: ScriptTask): Promise<ScriptOutcome> {
  const logs = new GuestLogs(task.maxLogEntries);
  const fail = (error: ErrorData): ScriptOutcome => ({ ok: false, error, logs: logs.finish() });
  let plugin: Plugin | undefined;
  try {
    try {
      plugin = await createPlugin(
        { wasm: [{ module: task.module }], config: task.args === undefined ? {} : { args: task.args } },
        {
          useWasi: task.useWasi,
          enableWasiOutput: false,
          functions: hostFunctions(task),
          logger: logs.console as unknown as Console,
          logLevel: task.logLevel,
          runInWorker: false,
          memory: {
            // Extism's blocks (input, output, allocations) live outside linear memory: the same cap, plus the input.
            maxPages: task.memoryLimitPages + Math.ceil(task.input.byteLength / PAGE_BYTES) + 1,
            maxVarBytes: task.maxVarBytes,
          },
        },
      );
    } catch (err) {
      return fail(classifyGuestError(err, 'create'));
    }
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
      return { ok: true, result, logs: logs.finish(), ...raw };
    } catch (err) {
      return fail(classifyGuestError(err, 'call'));
    }
  } finally {
    // Closing releases the WASI stdio handles; nothing waits for it.
    plugin?.close().catch(() => {});
  }
}
