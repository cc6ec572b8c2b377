import createPlugin, { type CallContext, type Plugin } from '@extism/extism';
import { DISCOVER_FUNCTION, DISCOVER_NAMESPACES, EXTISM_ENV } from '../wasm/host-surface.js';
import { classifyGuestError } from './errors.js';
import { GuestLogs } from './guest-logs.js';
import { httpFunctions } from './http-client.js';
import { parseOutput } from './output.js';
import type { ScriptOutcome, ScriptTask } from './protocol.js';

type HostFunctions = Record<string, Record<string, (cp: CallContext, ...args: any[]) => any>>;

/** No discovery backend is configured: Chainloop answers 0 when it has no control-plane connection. */
function discoverUnavailable(): bigint {
  return 0n;
}

/** A fresh object per plugin: the SDK binds (and in worker mode mutates) what it is given. */
function hostFunctions(task: ScriptTask): HostFunctions {
  const functions: HostFunctions = {};
  for (const ns of DISCOVER_NAMESPACES) functions[ns] = { [DISCOVER_FUNCTION]: discoverUnavailable };
  if (task.http) functions[EXTISM_ENV] = httpFunctions(task.http);
  return functions;
}

/**
 * One evaluation of one script: a fresh Extism plugin from the cached compiled module (no guest state
 * survives it), `Execute` called with the material, the output parsed by Chainloop's rules.
 */
export default async function runScript(task: ScriptTask): Promise<ScriptOutcome> {
  const logs = new GuestLogs(task.maxLogEntries);
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
        },
      );
    } catch (err) {
      return { ok: false, error: classifyGuestError(err, 'create'), logs: logs.finish() };
    }
    if (task.probe) return { ok: true, result: { skipped: false, skipReason: '', violations: [], ignore: true }, logs: logs.finish() };
    let output: Uint8Array | null;
    try {
      const out = await plugin.call('Execute', task.input);
      output = out ? out.bytes() : null;
    } catch (err) {
      return { ok: false, error: classifyGuestError(err, 'call'), logs: logs.finish() };
    }
    try {
      const result = parseOutput(output, task.policyName);
      const raw = task.includeRawOutput && output ? { output: output.slice() } : {};
      return { ok: true, result, logs: logs.finish(), ...raw };
    } catch (err) {
      return { ok: false, error: classifyGuestError(err, 'call'), logs: logs.finish() };
    }
  } finally {
    // Closing releases the WASI stdio handles; nothing waits for it.
    plugin?.close().catch(() => {});
  }
}
